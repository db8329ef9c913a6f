"""Existing DVC tooling against livestudio: device login, exp push, and `livestudio run`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.db.connection import connect_sync
from tests.conftest import Server, User, fixture_bodies
from tests.e2e.test_real_clients import git, make_dvc_repo, write_stage
from tui.settings import Session, TuiSettings

BODY = fixture_bodies("dvclive_basic")[0]


def dvc_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DVC_STUDIO", "STUDIO_", "LIVESTUDIO_"))
    }
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
            "DVC_NO_ANALYTICS": "1",
            "LIVESTUDIO_CONFIG_DIR": str(tmp_path / "livestudio-config"),
            "GIT_AUTHOR_NAME": "ci",
            "GIT_AUTHOR_EMAIL": "ci@example.com",
            "GIT_COMMITTER_NAME": "ci",
            "GIT_COMMITTER_EMAIL": "ci@example.com",
        }
    )
    return env


def start_dvc_login(
    server: Server, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dvc",
            "studio",
            "login",
            "--hostname",
            server.url,
            "--no-open",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"(http\S+/device)\?code=(\S+)", line)
        if match:
            return proc, match[2]
    raise AssertionError(f"DVC printed no link: {proc.stderr.read() if proc.stderr else ''}")


def saved_dvc_token(env: dict[str, str]) -> str:
    text = (Path(env["DVC_GLOBAL_CONFIG_DIR"]) / "config").read_text()
    match = re.search(r"token\s*=\s*(\S+)", text)
    assert match, text
    return match[1]


def test_dvc_studio_login_completes_through_livestudio_approve(
    server: Server, alice: User, tmp_path: Path
) -> None:
    env = dvc_env(tmp_path)
    proc, code = start_dvc_login(server, env, "-n", "ci-laptop", "-s", "EXPERIMENTS")
    page = httpx.get(f"{server.url}/device", params={"code": code})
    assert page.status_code == 200 and code in page.text and "livestudio approve" in page.text
    # Codes are never listed; the one who typed the code sees what it belongs to.
    assert alice.client.get("/api/device-login/pending").status_code in (404, 405)
    found = alice.client.post("/api/device-login/lookup", json={"user_code": code}).json()
    assert (found["user_code"], found["client_name"], found["token_name"], found["scopes"]) == (
        code,
        "DVC",
        "ci-laptop",
        ["EXPERIMENTS"],
    )
    wrong = alice.client.post("/api/device-login/approve", json={"user_code": "BBBB-BBBB"})
    assert wrong.status_code == 404 and "No pending device login" in wrong.json()["detail"]
    # An access token cannot approve (that would let a CI token mint more tokens).
    by_token = httpx.post(
        f"{server.url}/api/device-login/approve",
        json={"user_code": code},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert by_token.status_code == 403 and "login session" in by_token.json()["detail"]

    settings = TuiSettings(session_file=Path(env["LIVESTUDIO_CONFIG_DIR"]) / "session.json")
    settings.save_session(Session(server.url, "alice", alice.client.headers["Authorization"][7:]))
    approved = subprocess.run(
        [sys.executable, "-m", "cli.main", "approve", code.lower(), "--server", server.url],
        env=env,
        capture_output=True,
        text=True,
    )
    # Without a terminal to confirm on, the CLI asks for --yes rather than approving blindly.
    assert approved.returncode == 1 and "--yes" in approved.stderr
    assert "DVC asks for the access token 'ci-laptop' (EXPERIMENTS)" in approved.stdout
    approved = subprocess.run(
        [sys.executable, "-m", "cli.main", "approve", code, "--yes", "--server", server.url],
        env=env,
        capture_output=True,
        text=True,
    )
    assert approved.returncode == 0, approved.stderr
    assert "ci-laptop" in approved.stdout
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Authentication complete" in out

    token = saved_dvc_token(env)
    assert token.startswith("lst_")
    live = httpx.post(
        f"{server.url}/api/live", json=BODY, headers={"Authorization": f"token {token}"}
    )
    assert live.status_code == 200
    client_tokens = alice.client.get("/api/user").json()["client_tokens"]
    assert [(t["name"], t["scopes"], t["kind"]) for t in client_tokens] == [
        ("ci-laptop", ["EXPERIMENTS"], "client")
    ]
    # Single use: the device code is spent, and the token can be revoked on its own.
    assert (
        alice.client.post("/api/device-login/approve", json={"user_code": code}).status_code == 404
    )
    assert alice.client.delete(f"/api/user/tokens/{client_tokens[0]['id']}").status_code == 204
    again = httpx.post(
        f"{server.url}/api/live", json=BODY, headers={"Authorization": f"token {token}"}
    )
    assert again.status_code == 401
    assert alice.client.get("/api/user").json()["profile_token"] is not None  # untouched


def test_expired_code_gives_dvcs_own_error(make_server, tmp_path: Path) -> None:
    server = make_server(LIVESTUDIO_DEVICE_CODE_TTL="1")
    alice = server.add_user("alice")
    proc, code = start_dvc_login(server, dvc_env(tmp_path))
    time.sleep(1.2)
    late = alice.client.post("/api/device-login/approve", json={"user_code": code})
    assert late.status_code == 404
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "device_code' has expired" in err


def test_guessing_codes_is_rate_limited(server: Server, alice: User) -> None:
    answers = [
        alice.client.post(
            "/api/device-login/approve", json={"user_code": f"BBBB-BBB{c}"}
        ).status_code
        for c in "BCDFGHJKLMN"
    ]
    assert answers[:10] == [404] * 10
    assert answers[10] == 429
    resp = httpx.post(f"{server.url}/api/token", json={"code": "made-up"})
    assert resp.status_code == 400 and resp.json()["detail"] == "invalid_device_code"


@pytest.fixture
def pushable_repo(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    repo = make_dvc_repo(tmp_path / "work", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo


def test_dvc_exp_run_and_push_with_token_from_dvc_config(
    server: Server, alice: User, pushable_repo: Path, tmp_path: Path
) -> None:
    env = dvc_env(tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    for key, value in (("studio.url", server.url), ("studio.token", alice.token)):
        subprocess.run(
            [*dvc, "config", "--global", key, value], env=env, check=True, cwd=pushable_repo
        )
    ran = subprocess.run(
        [*dvc, "exp", "run"], cwd=pushable_repo, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    name = re.search(r"Ran experiment\(s\): (\S+)", ran.stdout)[1]  # type: ignore[index]
    project = alice.client.get("/api/projects").json()[0]
    row = alice.client.get(f"/api/projects/{project['id']}/experiments").json()[0]
    assert (row["name"], row["status"], row["pushed"]) == (name, "completed", False)

    pushed = subprocess.run(
        [*dvc, "exp", "push", "origin", name],
        cwd=pushable_repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "failed to notify" not in (pushed.stdout + pushed.stderr).lower()
    row = alice.client.get(f"/api/experiments/{row['id']}").json()
    assert row["pushed"] is True


RUN_SCRIPT = """
import os, signal, sys
from dvclive import Live

with Live(save_dvc_exp=False, exp_name=os.environ.get("OWN_NAME")) as live:
    live.log_param("mode", sys.argv[1])
    for step in range(3):
        live.log_metric("loss", 1 / (step + 1))
        live.next_step()
    print("trained", flush=True)
    # DVCLive posts from a thread: what follows must not overtake the last step's post.
    live._wait_for_studio_updates_posted()
    if sys.argv[1] == "raise":
        raise ValueError("loss exploded at step 3")
    if sys.argv[1] == "wait":
        import time
        time.sleep(60)
    if sys.argv[1] == "move":  # someone commits and repoints the remote meanwhile
        import subprocess
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "meanwhile"], check=True)
        subprocess.run(["git", "remote", "set-url", "origin", "git@h:acme/other.git"], check=True)
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[1] == "lost":  # the server goes down as training ends
        import pathlib, time
        pathlib.Path("trained.flag").touch()
        while not pathlib.Path("down.flag").exists():
            time.sleep(0.05)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "lost":  # DVCLive's `done` failed; the server is back before the end
    pathlib.Path("ended.flag").touch()
    while not pathlib.Path("back.flag").exists():
        time.sleep(0.05)
if sys.argv[1] == "exit3":  # fails after DVCLive said the run completed
    sys.exit(3)
"""


@pytest.mark.parametrize(
    ("mode", "exit_code", "status", "reason"),
    [
        ("clean", 0, "completed", None),
        ("raise", 1, "failed", {"cls": "ValueError", "text": "loss exploded at step 3"}),
        ("kill", 137, "failed", {"cls": "ExitStatus", "text": "killed by SIGKILL"}),
    ],
)
def test_livestudio_run_reports_how_the_command_ended(
    server: Server, alice: User, tmp_path: Path, mode: str, exit_code: int, status: str, reason
) -> None:
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", sys.executable, "train.py", mode],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == exit_code
    assert "trained" in done.stdout  # output passes through
    if mode == "raise":
        assert "Traceback" in done.stderr and "ValueError: loss exploded" in done.stderr
    project = alice.client.get("/api/projects").json()[0]
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert len(rows) == 1
    row = rows[0]
    assert row["name"].startswith("run-")
    assert row["status"] == status
    assert row["params"] == {"mode": mode}
    if reason is None:
        assert row["errors"] == []
        assert "is Completed" not in done.stderr  # DVCLive's own `done` arrived
    else:
        first = row["errors"][0]
        assert first["cls"] == reason["cls"] and first["text"].startswith(reason["text"])


def _wrapping(
    tmp_path: Path, server: Server, alice: User, mode: str, **popen: Any
) -> tuple[Path, subprocess.Popen[str]]:
    """``livestudio run -- python train.py MODE`` started in a new runner repository."""
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    command = [sys.executable, "-m", "cli.main", "run", "--", sys.executable, "train.py", mode]
    return repo, subprocess.Popen(
        command,
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _wait_for(flag: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {flag.name}"
        time.sleep(0.05)


def test_livestudio_run_ends_a_run_completed_whose_dvclive_done_was_lost(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """The server restarted as training ended: DVCLive's `done` never arrived, and the run
    ended Stopped though the command succeeded. The wrapper finishes it."""
    repo, wrapped = _wrapping(tmp_path, server, alice, "lost")
    _wait_for(repo / "trained.flag", wrapped)
    server.stop(kill=True)
    (repo / "down.flag").touch()
    _wait_for(repo / "ended.flag", wrapped)  # DVCLive has tried to send its `done`
    server.start()
    alice = User(alice.name, alice.token, server.login(alice.name))
    (project,) = alice.client.get("/api/projects").json()
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert (row["status"], row["step"]) == ("running", 2)  # the `done` was lost
    (repo / "back.flag").touch()
    _, stderr = wrapped.communicate(timeout=60)
    assert wrapped.returncode == 0, stderr
    assert f"{row['name']} is Completed" in stderr
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert (row["status"], row["errors"], row["step"]) == ("completed", [], 2)


def test_livestudio_run_of_a_command_without_dvclive_leaves_no_run(
    server: Server, alice: User, tmp_path: Path
) -> None:
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    done = _wrapped(repo, env, "true")
    assert (done.returncode, done.stderr) == (0, "")
    assert alice.client.get("/api/projects").json() == []


def test_livestudio_run_without_a_token_says_what_to_do(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", "true"],
        env=dvc_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "DVC_STUDIO_TOKEN" in done.stderr and done.stderr.count("\n") == 1


def test_livestudio_run_of_a_command_that_cannot_run_exits_as_a_shell_would(
    server: Server, alice: User, tmp_path: Path
) -> None:
    env = {
        **dvc_env(tmp_path),
        "DVC_STUDIO_URL": server.url,
        "DVC_STUDIO_TOKEN": alice.token,
        "DVC_STUDIO_REPO_URL": "git@github.com:acme/runner.git",  # (no repository here)
    }
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    for command, code in (("no-such-command-here", 127), (str(script), 126)):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "run", "--", command],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == code, done.stderr
        assert done.stderr.startswith("livestudio: Cannot run") and done.stderr.count("\n") == 1


TRAIN_RAISES = [sys.executable, "train.py", "raise"]


def _dvc_configured(repo: Path, env: dict[str, str], *settings: tuple[str, str, str]) -> None:
    """``dvc init`` in ``repo``, then ``dvc config SCOPE KEY VALUE`` for each setting."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=repo, env=env, check=True)
    for scope, key, value in settings:
        subprocess.run([*dvc, "config", scope, key, value], cwd=repo, env=env, check=True)


def _wrapped(repo: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """``livestudio run -- COMMAND`` in ``repo``."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", *command],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )


def test_livestudio_run_reads_the_repositorys_dvc_config_as_dvclive_does(
    server: Server, alice: User, tmp_path: Path
) -> None:
    repo = _runner_repo(tmp_path)
    env = dvc_env(tmp_path)  # no DVC_STUDIO_* variables: only DVC's config
    _dvc_configured(
        repo,
        env,
        ("--global", "studio.url", server.url),
        ("--global", "studio.token", alice.token),
        ("--project", "studio.repo_url", "https://github.com/acme/other-repo"),
    )
    done = _wrapped(repo, env, *TRAIN_RAISES)
    assert done.returncode == 1, done.stderr
    # DVCLive's own posts and the wrapper's failure land on one row of one project.
    (project,) = alice.client.get("/api/projects").json()
    assert project["name"] == "other-repo"
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["status"] == "failed" and row["params"] == {"mode": "raise"}
    assert row["errors"][0]["cls"] == "ValueError"


def test_livestudio_run_takes_no_server_or_token_from_a_cloned_repositorys_config(
    server: Server, alice: User, tmp_path: Path
) -> None:
    from tests.e2e.test_real_clients import git as git_

    repo = _runner_repo(tmp_path)
    env = dvc_env(tmp_path)
    # Whoever wrote the repository committed their own server and token; the user's own
    # settings (dvc studio login) name the real ones.
    _dvc_configured(
        repo,
        env,
        ("--project", "studio.url", "http://127.0.0.1:9"),
        ("--project", "studio.token", "lst_someone_elses"),
        ("--global", "studio.url", server.url),
        ("--global", "studio.token", alice.token),
    )
    # Nor one in config.local, which may come with a clone (here forced into Git).
    local = repo / ".dvc" / "config.local"
    local.write_text("[studio]\n    url = http://127.0.0.1:9\n    token = lst_someone_elses\n")
    git_(repo, "add", "-f", ".dvc/config.local")
    done = _wrapped(repo, env, *TRAIN_RAISES)
    assert done.returncode == 1, done.stderr
    (project,) = alice.client.get("/api/projects").json()
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["status"] == "failed" and row["errors"][0]["cls"] == "ValueError"


@pytest.mark.parametrize(
    ("remote", "fragment"),
    [
        (None, "found no Git remote naming this repository, so DVCLive may send nothing"),
        ("not a url", "the server will refuse DVCLive's posts: repo_url 'not a url'"),
    ],
)
def test_livestudio_run_warns_at_once_when_dvclive_may_not_name_the_run(
    server: Server, alice: User, tmp_path: Path, remote: str | None, fragment: str
) -> None:
    """Without a repository URL DVCLive sends nothing, and with one the server refuses it
    stops sending at `start`: hours of training went unseen, said only at the end. Said
    at the start now, and only said: DVCLive may know better (it reads Git with dulwich)."""
    from tests.e2e.test_real_clients import git as git_

    repo = _runner_repo(tmp_path)
    git_(repo, "remote", "remove", "origin")
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    if remote is not None:
        env["DVC_STUDIO_REPO_URL"] = remote
    done = _wrapped(repo, env, sys.executable, "train.py", "clean")
    assert done.returncode == 0 and "trained" in done.stdout
    warning = done.stderr.splitlines()[0]
    assert warning.startswith("livestudio: ") and fragment in warning, done.stderr
    assert "set DVC_STUDIO_REPO_URL" in warning
    said = [line for line in done.stderr.splitlines() if line.startswith("livestudio:")]
    assert said == [warning]  # and nothing at the end (no finish of a run that cannot be)
    assert alice.client.get("/api/projects").json() == []  # DVCLive indeed sent nothing
    # The variable names one: the run is seen, and nothing is said.
    env["DVC_STUDIO_REPO_URL"] = "git@github.com:acme/named.git"
    done = _wrapped(repo, env, sys.executable, "train.py", "clean")
    assert done.returncode == 0 and "livestudio:" not in done.stderr, done.stderr
    assert [p["repo_url"] for p in alice.client.get("/api/projects").json()] == [
        "git@github.com:acme/named.git"
    ]


def test_livestudio_run_names_the_repository_as_dvc_does(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """DVCLive asks DVC first (it makes a DVC repository of a Git one): DVC_EXP_GIT_REMOTE
    or `exp.git_remote`, a remote's name or a URL. The wrapper reported the failure on
    `origin`: a second, empty run in another project, and the real one Completed."""
    from tests.e2e.test_real_clients import git as git_

    repo = _runner_repo(tmp_path)  # Git only: no .dvc yet
    git_(repo, "remote", "add", "upstream", "git@github.com:acme/upstream.git")
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    done = _wrapped(repo, {**env, "DVC_EXP_GIT_REMOTE": "upstream"}, *TRAIN_RAISES)
    assert done.returncode == 1, done.stderr
    (project,) = alice.client.get("/api/projects").json()
    assert project["repo_url"] == "git@github.com:acme/upstream.git"
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert [(r["status"], r["step"], r["errors"][0]["cls"]) for r in rows] == [
        ("failed", 2, "ValueError")  # DVCLive's run itself, with the failure
    ]
    assert (repo / ".dvc").is_dir()  # DVCLive made a DVC repository of it
    # The setting, a URL this time.
    dvc_config = [sys.executable, "-m", "dvc", "config", "exp.git_remote"]
    subprocess.run([*dvc_config, "git@github.com:acme/exp.git"], cwd=repo, env=env, check=True)
    done = _wrapped(repo, env, *TRAIN_RAISES)
    assert done.returncode == 1, done.stderr
    urls = sorted(p["repo_url"] for p in alice.client.get("/api/projects").json())
    assert urls == ["git@github.com:acme/exp.git", "git@github.com:acme/upstream.git"]


def test_livestudio_run_around_dvc_repro_names_the_repository_as_dvclive_does_in_a_stage(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """In a stage (DVC_ROOT set) DVCLive does not ask DVC: `origin` it is, even with
    `exp.git_remote` set, and the failure goes to that run."""
    from tests.e2e.test_real_clients import write_stage

    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    _dvc_configured(repo, env, ("--project", "exp.git_remote", "git@github.com:acme/exp.git"))
    write_stage(repo, "python train.py raise")
    done = _wrapped(repo, env, "dvc", "-q", "repro")  # (its options before the command too)
    assert done.returncode != 0, done.stderr
    (project,) = alice.client.get("/api/projects").json()
    assert project["repo_url"] == "git@github.com:acme/runner.git"
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert [(r["status"], r["step"]) for r in rows] == [("failed", 2)]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root, to give the repository to another user (as a container's bind mount)",
)
def test_livestudio_run_reads_a_repository_another_user_owns_as_dvclive_does(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """git refuses a repository of another owner ("dubious ownership") and said nothing;
    DVCLive (dulwich) reads it: the failure went unreported, the run stayed Running."""
    from tests.e2e.test_real_clients import git as git_

    repo = _runner_repo(tmp_path)
    env = dvc_env(tmp_path)
    _dvc_configured(
        repo, env, ("--global", "studio.url", server.url), ("--global", "studio.token", alice.token)
    )
    # A server in a config.local that came with the clone (forced into Git): git, refusing
    # the repository, could not tell it was tracked, and it got the user's token.
    (repo / ".dvc" / "config.local").write_text("[studio]\n    url = http://127.0.0.1:9\n")
    git_(repo, "add", "-A")
    git_(repo, "add", "-f", ".dvc/config.local")
    git_(repo, "commit", "-qm", "dvc")
    subprocess.run(["chown", "-R", "1234:1234", str(repo)], check=True)
    done = _wrapped(repo, env, *TRAIN_RAISES)
    assert done.returncode == 1 and "livestudio: found no Git remote" not in done.stderr
    (project,) = alice.client.get("/api/projects").json()
    assert project["repo_url"] == "git@github.com:acme/runner.git"
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["status"] == "failed" and row["baseline_sha"] != "0" * 40


def test_livestudio_run_does_not_finish_an_old_run_of_a_reused_name(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """A run that crashed long ago (Stopped) and `DVC_EXP_NAME` reused by a command that
    succeeded without DVCLive: the crash was made Completed."""
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    env["DVC_EXP_NAME"] = "reused"
    crashed = _wrapped(repo, env, sys.executable, "train.py", "kill")
    assert crashed.returncode == 137
    (project,) = alice.client.get("/api/projects").json()
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["status"] == "failed"  # reported; now make it look like a run left open
    # (after any post the killed process had sent: on a loaded machine one can land late)
    time.sleep(1.0)
    with closing(connect_sync(server.database)) as conn:
        conn.execute("BEGIN")
        conn.execute("UPDATE experiments SET status = 'stopped', errors = '[]', row_json = NULL")
        conn.execute("COMMIT")
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["status"] == "stopped"
    # At once: the server says its time to the microsecond (its Date, whole seconds less
    # one, took a run posted up to ~2 s earlier for the command's).
    done = _wrapped(repo, env, "true")
    assert (done.returncode, done.stderr) == (0, "")
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["status"] == "stopped"


def test_livestudio_run_failing_before_dvclive_leaves_an_earlier_run_as_it_ended(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """`DVC_EXP_NAME` reused by a command that failed before DVCLive said a word: its
    failure turned the earlier Completed run Failed. It is now a run of its own."""
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    env["DVC_EXP_NAME"] = "reused"
    assert _wrapped(repo, env, sys.executable, "train.py", "clean").returncode == 0
    (project,) = alice.client.get("/api/projects").json()
    (first,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert first["status"] == "completed"
    failed = _wrapped(repo, env, sys.executable, "-c", "raise SystemExit(3)")  # at once
    assert failed.returncode == 3, failed.stderr
    rows = {
        r["name"]: r for r in alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    }
    assert rows["reused (1)"]["id"] == first["id"] and rows["reused (1)"]["status"] == "completed"
    assert rows["reused"]["status"] == "failed"
    assert rows["reused"]["errors"][-1]["cls"] == "ExitStatus"


def test_livestudio_run_reports_the_failure_on_a_run_the_script_named_itself(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """`Live(exp_name=...)` wins over the wrapper's `DVC_EXP_NAME`: the failure went to an
    empty run of the wrapper's name, and the script's run read Completed."""
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    env["OWN_NAME"] = "mine"
    failed = _wrapped(repo, env, sys.executable, "train.py", "exit3")
    assert failed.returncode == 3, failed.stderr
    (project,) = alice.client.get("/api/projects").json()
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert row["name"] == "mine" and row["status"] == "failed" and row["step"] == 2
    assert row["errors"][-1]["cls"] == "ExitStatus"


def test_a_cloned_dvc_folder_laid_out_as_a_repository_cannot_pass_its_server_as_the_users(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """Asked from inside .dvc, git took a cloned .dvc laid out as a bare repository of its
    own for the project's, found config.local untracked there, and its server got the
    user's token and stderr."""
    from tests.e2e.test_real_clients import git as git_

    repo = _runner_repo(tmp_path)
    env = dvc_env(tmp_path)
    _dvc_configured(
        repo, env, ("--global", "studio.url", server.url), ("--global", "studio.token", alice.token)
    )
    dvc = repo / ".dvc"
    (dvc / "HEAD").write_text("ref: refs/heads/main\n")
    for folder in ("objects", "refs"):
        (dvc / folder).mkdir(exist_ok=True)
        (dvc / folder / ".keep").write_text("")
    (dvc / "config").write_text("[core]\n\tworktree = ..\n")
    (dvc / "config.local").write_text("[studio]\n    url = http://127.0.0.1:9\n")
    git_(repo, "add", "-A")
    git_(repo, "add", "-f", ".dvc")
    git_(repo, "commit", "-qm", "a .dvc that looks like a repository")
    done = _wrapped(repo, env, *TRAIN_RAISES)  # reported to the user's own server
    assert done.returncode == 1 and "127.0.0.1:9" not in done.stderr, done.stderr
    (project,) = alice.client.get("/api/projects").json()
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    # (The odd layout confuses DVCLive's own reading of the repository: its run is apart,
    # or it fails; either way the failure was reported to the user's own server.)
    assert [r["status"] for r in rows if r["errors"]] == ["failed"]


def test_livestudio_run_takes_no_server_from_any_repository_file_and_outside_git_no_git_remote(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """A `.dvc/config.local` may come with a download (an archive has no Git to ask) or a
    clone (git can be fooled about what it tracks): never trusted with a server or token.
    And outside Git DVCLive asks DVC for no repository name (the wrapper used
    DVC_EXP_GIT_REMOTE: a second run in another project)."""
    work = tmp_path / "nogit"
    work.mkdir()
    (work / "train.py").write_text(RUN_SCRIPT)
    env = {
        **dvc_env(tmp_path),
        "DVC_STUDIO_REPO_URL": "git@github.com:acme/named.git",
        "DVC_EXP_GIT_REMOTE": "git@github.com:acme/elsewhere.git",
    }
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q", "--no-scm"], cwd=work, env=env, check=True)
    for key, value in (("studio.url", server.url), ("studio.token", alice.token)):
        subprocess.run([*dvc, "config", "--local", key, value], cwd=work, env=env, check=True)
    refused = _wrapped(work, env, *TRAIN_RAISES)
    assert refused.returncode == 1 and "trained" not in refused.stdout
    assert "a repository's own .dvc config is not trusted with them" in refused.stderr
    env.update({"DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token})
    done = _wrapped(work, env, *TRAIN_RAISES)
    assert done.returncode == 1 and "trained" in done.stdout, done.stderr
    (project,) = alice.client.get("/api/projects").json()
    assert project["repo_url"] == "git@github.com:acme/named.git"
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert [(r["status"], r["step"]) for r in rows] == [("failed", 2)]


def test_dvc_config_values_are_read_as_dvcs_configobj_reads_them(tmp_path: Path) -> None:
    """A hand-edited `offline = false#yes` read as sending turned off, and an inline
    comment as part of a remote's name."""
    from configobj import ConfigObj

    from cli.run import _studio_section

    config = tmp_path / "config"
    config.write_text(
        "[studio]\n"
        "    offline = false#yes\n"
        '    repo_url = "git@github.com:acme/q.git" # quoted\n'
        "[exp]\n"
        "    git_remote = upstream  # the fork\n"
    )
    read = ConfigObj(str(config))  # what DVC reads
    assert _studio_section(config) == {
        "offline": read["studio"]["offline"],
        "repo_url": read["studio"]["repo_url"],
        "exp.git_remote": read["exp"]["git_remote"],
    }
    assert _studio_section(config)["offline"] == "false"


def test_livestudio_run_offline_only_runs_the_command(
    server: Server, alice: User, tmp_path: Path
) -> None:
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_OFFLINE": "true"}
    done = _wrapped(repo, env, *TRAIN_RAISES)
    assert done.returncode == 1 and "trained" in done.stdout
    assert "ValueError: loss exploded" in done.stderr and "livestudio:" not in done.stderr
    assert alice.client.get("/api/projects").json() == []


def test_livestudio_run_server_flag_wins_over_the_environment(
    server: Server, alice: User, tmp_path: Path
) -> None:
    repo = _runner_repo(tmp_path)
    # Nothing listens on DVC_STUDIO_URL: the run is reported only if the flag is used.
    env = {
        **dvc_env(tmp_path),
        "DVC_STUDIO_URL": "http://127.0.0.1:9",
        "DVC_STUDIO_TOKEN": alice.token,
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--server", server.url, "--", *TRAIN_RAISES],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "could not report" not in done.stderr
    project = alice.client.get("/api/projects").json()[0]
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert [row["status"] for row in rows] == ["failed"]


@pytest.mark.parametrize(
    ("flag", "env", "said"),
    [
        (["--server", "127.0.0.1:8000"], {}, "--server '127.0.0.1:8000'"),
        (["--server="], {}, "--server ''"),
        ([], {"DVC_STUDIO_URL": "ftp://studio"}, "DVC_STUDIO_URL 'ftp://studio'"),
        ([], {"LIVESTUDIO_SERVER": "nonsense"}, "LIVESTUDIO_SERVER 'nonsense'"),
    ],
)
def test_livestudio_run_refuses_a_server_that_is_not_a_url_before_running(
    tmp_path: Path, flag: list[str], env: dict[str, str], said: str
) -> None:
    marker = tmp_path / "ran"
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", *flag, "--", "touch", str(marker)],
        env={**dvc_env(tmp_path), "DVC_STUDIO_TOKEN": "lst_x", **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and not marker.exists()
    assert said in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("url", "token", "said"),
    [
        (None, "lst_not-a-token", "refused the token: The access token is invalid"),
        ("http://127.0.0.1:9", None, "Cannot reach http://127.0.0.1:9: nothing answers there"),
        # PostgreSQL's port: "the connection dropped" said nothing of a wrong port.
        ("http://127.0.0.1:5432", None, "without an HTTP answer (is that livestudio's port?)"),
        (None, "lst_é", "holds a space, a line break or a letter no token has"),
        (None, "lst_abc\n", "holds a space, a line break or a letter no token has"),
        # The server's URL with a path: the fix named where it was set, not `--server`.
        ("/api", None, "where the server's address is wanted: set DVC_STUDIO_URL=http://"),
    ],
)
def test_livestudio_run_refuses_to_start_when_dvclive_could_not_send(
    server: Server, alice: User, tmp_path: Path, url: str | None, token: str | None, said: str
) -> None:
    """It ran the whole command first, and only then said the server refused its report
    (or could not be reached): hours of training with no live view and no failure noted."""
    marker = tmp_path / "ran"
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", "touch", str(marker)],
        env={
            **dvc_env(tmp_path),
            "DVC_STUDIO_URL": server.url + url if url and url[0] == "/" else url or server.url,
            "DVC_STUDIO_TOKEN": token or alice.token,
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and not marker.exists()
    assert said in done.stderr and "Nothing was started" in done.stderr
    assert done.stderr.count("\n") == 1 and '{"' not in done.stderr  # words, not raw JSON


def test_livestudio_run_says_when_something_else_answers_at_the_servers_url(
    alice: User, tmp_path: Path
) -> None:
    """A web server on that port printed its whole HTML page, escaped, as the reason."""
    import http.server
    import threading

    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{page.server_address[1]}"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "run", "--", "true"],
            cwd=tmp_path,
            env={**dvc_env(tmp_path), "DVC_STUDIO_URL": url, "DVC_STUDIO_TOKEN": alice.token},
            capture_output=True,
            text=True,
        )
    finally:
        page.shutdown()
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert f"{url} answered 404 File not found without livestudio's explanation" in done.stderr
    assert "<" not in done.stderr and "Nothing was started" in done.stderr


def test_livestudio_run_names_the_repository_as_dvclive_does_whatever_git_rewrites(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """``url.<base>.insteadOf`` (a mirror for GitHub URLs): DVCLive names the remote as
    configured; ``git ls-remote --get-url`` rewrote it, and the failure landed elsewhere."""
    from tests.e2e.test_real_clients import git as git_

    repo = _runner_repo(tmp_path)
    git_(repo, "config", f"url.{tmp_path / 'mirror.git'}.insteadOf", "git@github.com:acme/")
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", *TRAIN_RAISES],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    projects = alice.client.get("/api/projects").json()
    assert [p["repo_url"] for p in projects] == ["git@github.com:acme/runner.git"]
    rows = alice.client.get(f"/api/projects/{projects[0]['id']}/experiments").json()
    assert [(r["status"], r["errors"][0]["cls"]) for r in rows] == [("failed", "ValueError")]


def test_livestudio_run_reports_on_the_run_as_it_started_whatever_git_does_meanwhile(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """The repository and commit were read when the command ended: a commit during hours of
    training sent the failure to a new, empty experiment (the run stayed Running), and a
    repointed remote to another project."""
    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    done = _wrapped(repo, env, sys.executable, "train.py", "move")
    assert done.returncode == 137, done.stderr
    (project,) = alice.client.get("/api/projects").json()  # no "other" project
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert [(r["status"], r["step"], r["errors"]) for r in rows] == [
        ("failed", 2, [{"cls": "ExitStatus", "text": "killed by SIGKILL"}])
    ]


def test_livestudio_run_around_dvc_exp_run_leaves_reporting_to_dvc(
    server: Server, alice: User, pushable_repo: Path, tmp_path: Path
) -> None:
    write_stage(pushable_repo, "python train.py --fail")
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", "dvc", "exp", "run"],
        cwd=pushable_repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    project = alice.client.get("/api/projects").json()[0]
    rows = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    assert [r["status"] for r in rows] == ["failed"]  # one row, marked by DVC itself
    assert rows[0]["client"] == "dvc"


def _runner_repo(tmp_path: Path) -> Path:
    from tests.e2e.test_real_clients import git as git_

    repo = tmp_path / "proj"
    repo.mkdir()
    git_(repo, "init", "-q", "-b", "main")
    git_(repo, "remote", "add", "origin", "git@github.com:acme/runner.git")
    (repo / "train.py").write_text(RUN_SCRIPT)
    git_(repo, "add", "-A")
    git_(repo, "commit", "-qm", "init")
    return repo


def _interrupted_run(alice: User) -> dict:
    project = alice.client.get("/api/projects").json()[0]
    (row,) = alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    return row


def test_ctrl_c_at_a_terminal_on_livestudio_run_reports_the_run_failed(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """Ctrl-C at a real terminal (a pty) signals the wrapper and the command alike: the
    wrapper waits for the command's own clean-up, then reports how it ended."""
    import os
    import pty
    import select

    repo = _runner_repo(tmp_path)
    env = {**dvc_env(tmp_path), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": alice.token}
    command = [sys.executable, "-m", "cli.main", "run", "--", sys.executable, "train.py", "wait"]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session of its own on the pty, in its foreground group
        os.chdir(repo)
        os.execvpe(command[0], command, env)
    seen = b""
    try:
        while b"trained" not in seen:
            ready, _, _ = select.select([terminal], [], [], 90)
            assert ready, seen.decode(errors="replace")
            seen += os.read(terminal, 4096)
        os.write(terminal, b"\x03")  # Ctrl-C
        while True:
            ready, _, _ = select.select([terminal], [], [], 90)
            assert ready, seen.decode(errors="replace")
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the pty closed: everything exited
                break
            if not chunk:
                break
            seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 130, seen.decode(errors="replace")
    assert b"KeyboardInterrupt" in seen
    row = _interrupted_run(alice)
    assert (row["status"], row["step"]) == ("failed", 2)
    assert row["errors"][-1]["text"].startswith("killed by SIGINT")


def test_sigint_to_livestudio_run_alone_is_passed_on(
    server: Server, alice: User, tmp_path: Path
) -> None:
    """A supervisor's SIGINT to the wrapper (no terminal) stops the command too."""
    import os
    import signal

    _, wrapper = _wrapping(
        tmp_path, server, alice, "wait", stdin=subprocess.DEVNULL, start_new_session=True
    )  # (a new session: no controlling terminal)
    try:
        assert wrapper.stdout is not None
        while wrapper.stdout.readline() not in ("trained\n", ""):  # DVCLive speaks first
            pass
        os.kill(wrapper.pid, signal.SIGINT)  # the wrapper alone
        _, stderr = wrapper.communicate(timeout=90)
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGKILL)
    assert wrapper.returncode == 130, stderr
    row = _interrupted_run(alice)
    assert row["status"] == "failed"
    assert row["errors"][-1]["text"].startswith("killed by SIGINT")


def test_a_signal_while_the_command_starts_is_passed_on_and_ignored_ones_stay_ignored() -> None:
    """The wrapper listens before it starts the command: a SIGTERM that comes meanwhile is
    not lost (nor does it kill the wrapper before it can report), it reaches the command.
    A signal the wrapper was told to ignore (``nohup``) stays ignored, for the command too."""
    import os
    import signal

    from cli.run import _SignalForwarder

    ignored = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    terminate = signal.getsignal(signal.SIGTERM)
    forwarder = _SignalForwarder()
    child = None
    try:
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # not caught...
        inherited = subprocess.run(
            [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGHUP))"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert inherited.stdout.strip() in ("1", "Handlers.SIG_IGN")  # ...and ignored there
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, here, by the forwarder
        assert forwarder.early == [signal.SIGTERM]
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        forwarder.attach(child)
        assert child.wait(timeout=30) == -signal.SIGTERM
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        forwarder.restore()
        signal.signal(signal.SIGHUP, ignored)
    assert signal.getsignal(signal.SIGTERM) is terminate  # put back as it was


def test_a_thread_started_inside_blocked_keeps_the_signals_blocked() -> None:
    """What keeps the stderr pump thread from taking a signal meant for the wrapper's main
    thread (whose wait it must interrupt): threads inherit the mask they start with."""
    import signal
    import threading

    from cli.run import FORWARDED, _blocked

    masks: list[set[signal.Signals]] = []
    with _blocked(FORWARDED):
        thread = threading.Thread(
            target=lambda: masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        )
        thread.start()
    thread.join()
    assert set(FORWARDED) <= masks[0]
    assert not set(FORWARDED) & signal.pthread_sigmask(signal.SIG_BLOCK, [])  # main: unblocked


def test_livestudio_run_trusts_the_private_ca_dvclive_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DVCLive sends with requests, which reads REQUESTS_CA_BUNDLE: the wrapper's check
    (httpx) refused a server with a private CA that DVCLive reached."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from cli.admin import CliError
    from cli.run import trusted_certificates

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "team private CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert trusted_certificates() is True  # the system's, as before
    for variable in ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(variable, str(bundle))
        context = trusted_certificates()
        assert not isinstance(context, bool)
        subjects = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
        assert {"commonName": "team private CA"} in subjects
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(CliError, match="Cannot read the certificates in"):
        trusted_certificates()
