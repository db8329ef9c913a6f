import pytest

from shared.repo_url import InvalidRepoUrl, repo_key, repo_name


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
