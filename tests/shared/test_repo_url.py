import pytest

from shared.repo_url import InvalidRepoUrl, repo_key, repo_name, without_credentials


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:Acme/Vision.git",
        "https://github.com/acme/vision",
        "ssh://git@github.com/acme/vision.git",
        "github:acme/vision",
        "https://user:secret@github.com:443/acme/vision.git/",
    ],
)
def test_every_spelling_gives_one_key(url: str) -> None:
    assert repo_key(url) == "github.com/acme/vision"


def test_other_hosts_and_local_paths_stay_distinct() -> None:
    assert (
        repo_key("git@gitlab.example.com:team/sub/proj.git") == "gitlab.example.com/team/sub/proj"
    )
    assert repo_key("/srv/git/proj.git") == "local/srv/git/proj"
    assert repo_key("file:///srv/git/proj.git") == "local/srv/git/proj"
    assert repo_name("git@github.com:acme/vision.git") == "vision"


@pytest.mark.parametrize("url", ["", "   ", "not a url", "https:///nohost", "github:"])
def test_garbage_is_refused_with_a_sentence(url: str) -> None:
    with pytest.raises(InvalidRepoUrl, match="repo_url"):
        repo_key(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # An http(s) user and password are secrets (GitLab CI's job token, a PAT).
        (
            "https://gitlab-ci-token:t0k@gitlab.example.com/a/b.git",
            "https://gitlab.example.com/a/b.git",
        ),
        ("https://ghp_x@github.com/a/b", "https://github.com/a/b"),
        ("http://u:p@[::1]:8080/a/b", "http://[::1]:8080/a/b"),
        ("HTTPS://u:p%40x@h/a/b?x#y", "https://h/a/b?x#y"),
        # An SSH user is not (it is how to connect); only a password goes.
        ("ssh://git@github.com/a/b.git", "ssh://git@github.com/a/b.git"),
        ("git+ssh://git@github.com/a/b.git", "git+ssh://git@github.com/a/b.git"),
        ("ssh+git://git@h/a/b", "ssh+git://git@h/a/b"),
        ("ssh://u:p@h/a/b", "ssh://u@h/a/b"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("https://github.com/a/b@c", "https://github.com/a/b@c"),
    ],
)
def test_credentials_are_dropped_and_the_repository_stays_the_same(url: str, shown: str) -> None:
    assert without_credentials(url) == shown
    assert repo_key(shown) == repo_key(url)
