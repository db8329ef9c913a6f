"""The real DVCLive and DVC, unmodified, streaming into a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Server, User

TRAIN = """
import sys
from dvclive import Live
from PIL import Image

with Live(save_dvc_exp=False) as live:
    live.log_params({"lr": 0.1, "model": {"layers": 3}})
    for step in range(5):
        live.log_metric("train/loss", 1.0 / (step + 1))
        live.log_metric("acc", step / 10)
        live.log_image("sample.png", "pixel.png")
        live.log_image("photo.jpg", Image.open("pixel.png").convert("RGB"))
        live.next_step()
    if "--fail" in sys.argv:
        raise SystemExit(3)
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def make_dvc_repo(repo: Path, remote: str) -> Path:
    """A committed Git + DVC repository with the training script, one image and a stage."""
    from PIL import Image

    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", remote)
    (repo / "train.py").write_text(TRAIN)
    Image.new("RGB", (4, 4), (200, 30, 30)).save(repo / "pixel.png")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    write_stage(repo, "python train.py")
    return repo


def write_stage(repo: Path, cmd: str) -> None:
    """Set the one stage's command and commit it."""
    (repo / "dvc.yaml").write_text(
        f"stages:\n  train:\n    cmd: {cmd}\n    deps:\n      - train.py\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", cmd)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_dvc_repo(tmp_path / "mnist", "git@github.com:Acme/Mnist.git")


def client_env(server: Server, user: User) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_STUDIO_URL": server.url,
        "DVC_STUDIO_TOKEN": user.token,
        "DVC_NO_ANALYTICS": "1",
        "DVCLIVE_LOGLEVEL": "DEBUG",
        # dvc exp run commits; do not depend on the machine's git identity.
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }


def only_experiment(user: User) -> dict:
    projects = user.client.get("/api/projects").json()
    assert [p["name"] for p in projects] == ["mnist"]
    rows = user.client.get(f"/api/projects/{projects[0]['id']}/experiments").json()
    assert len(rows) == 1
    return rows[0]


def train(
    repo: Path, server: Server, user: User, exit_code: int = 0
) -> subprocess.CompletedProcess[str]:
    """`python train.py` (real DVCLive) in the repository, posting to the server as ``user``."""
    done = subprocess.run(
        [sys.executable, "train.py"],
        cwd=repo,
        env=client_env(server, user),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == exit_code, done.stderr
    return done


def test_dvclive_run_streams_everything(server: Server, alice: User, repo: Path) -> None:
    done = train(repo, server, alice)
    assert "Failed to post to Studio" not in done.stderr
    row = only_experiment(alice)
    assert row["status"] == "completed"
    assert row["client"] == "dvclive"
    assert row["step"] == 4
    assert row["metrics"] == {"train/loss": 0.2, "acc": 0.4}
    assert row["params"] == {"lr": 0.1, "model/layers": 3}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    assert row["baseline_sha"] == head.stdout.strip()
    series = alice.client.get(f"/api/experiments/{row['id']}/series").json()
    assert series["train/loss"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert series["acc"] == [[s, s / 10] for s in range(5)]
    detail = alice.client.get(f"/api/experiments/{row['id']}").json()
    assert sorted(i["path"] for i in detail["images"]) == ["photo.jpg", "sample.png"]
    for path, media_type in (("sample.png", "image/png"), ("photo.jpg", "image/jpeg")):
        image = alice.client.get(f"/api/experiments/{row['id']}/images/{path}")
        assert image.content == (repo / "dvclive" / "plots" / "images" / path).read_bytes()
        assert image.headers["content-type"] == media_type


def dvc_exp_run(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`dvc exp run` in the repository, as a user would type it."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "run"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )


def test_dvc_exp_run_completes_and_failed_stage_fails(
    server: Server, alice: User, repo: Path
) -> None:
    env = client_env(server, alice)
    ran = dvc_exp_run(repo, env)
    assert ran.returncode == 0, ran.stderr
    row = only_experiment(alice)
    assert row["status"] == "completed"
    assert row["client"] == "dvc"
    assert len(row["experiment_rev"]) == 40
    assert row["metrics"]["train/loss"] == 0.2

    write_stage(repo, "python train.py --fail")
    failed = dvc_exp_run(repo, env)
    assert failed.returncode != 0
    projects = alice.client.get("/api/projects").json()
    rows = alice.client.get(f"/api/projects/{projects[0]['id']}/experiments").json()
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["completed", "failed"]


CRASH = """
from dvclive import Live

with Live(save_dvc_exp=False) as live:
    for step in range(4):
        live.log_metric("loss", 1.0 / (step + 1))
        if step == 3:
            raise SystemExit("diverged")  # after logging step 3, before next_step()
        live.next_step()
"""


def test_a_run_that_raised_mid_step_shows_the_step_its_values_are_from(
    server: Server, alice: User, tmp_path: Path
) -> None:
    repo = tmp_path / "crash"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "git@github.com:acme/crash.git")
    (repo / "train.py").write_text(CRASH)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "crash")
    done = train(repo, server, alice, exit_code=1)
    assert "diverged" in done.stderr
    projects = alice.client.get("/api/projects").json()
    (row,) = alice.client.get(f"/api/projects/{projects[0]['id']}/experiments").json()
    series = alice.client.get(f"/api/experiments/{row['id']}/series").json()
    # DVCLive posts step 3's values under step 2: the step shown is the values' own.
    assert series["loss"][-1] == [3, 0.25] and row["metrics"]["loss"] == 0.25
    assert row["step"] == 3


RERUN = """
import sys
from dvclive import Live

steps, scale, resume = int(sys.argv[1]), float(sys.argv[2]), "--resume" in sys.argv
with Live(exp_name="dup-run", save_dvc_exp=False, resume=resume) as live:
    if "--from" in sys.argv:  # resumed from a checkpoint: its step, as Lightning sets it
        live.step = int(sys.argv[sys.argv.index("--from") + 1])
    for _ in range(steps):
        live.log_metric("loss", scale / (live.step + 1))
        live.next_step()
"""


def test_a_name_run_again_keeps_each_run_apart_and_a_resume_goes_on(
    server: Server, alice: User, repo: Path
) -> None:
    """`Live(exp_name=…)` run again on the same commit: the new run's steps overwrote the
    old run's and its later steps followed on (0.33 at step 2, then 25). The earlier run
    is now kept whole as `dup-run (1)`, also when the new one logs the same values; a
    resumed run stays one experiment."""
    (repo / "rerun.py").write_text(RERUN)

    def rerun(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "rerun.py", *args],
            cwd=repo,
            env=client_env(server, alice),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and "Failed to post" not in done.stderr, done.stderr

    def runs() -> dict[str, dict]:
        project = alice.client.get("/api/projects").json()[0]["id"]
        rows = alice.client.get(f"/api/projects/{project}/experiments").json()
        return {row["name"]: row for row in rows}

    def loss(row: dict) -> list[list[float]]:
        return alice.client.get(f"/api/experiments/{row['id']}/series").json()["loss"]

    rerun("8", "100")
    first = runs()["dup-run"]
    rerun("3", "1")
    both = runs()
    assert sorted(both) == ["dup-run", "dup-run (1)"]
    earlier, latest = both["dup-run (1)"], both["dup-run"]
    assert earlier["id"] == first["id"] and earlier["status"] == "completed"
    assert loss(earlier) == [[s, 100 / (s + 1)] for s in range(8)] and earlier["step"] == 7
    assert loss(latest) == [[s, 1 / (s + 1)] for s in range(3)] and latest["step"] == 2
    assert latest["status"] == "completed" and latest["metrics"] == {"loss": 1 / 3}

    rerun("2", "1", "--resume")  # DVCLive reads its step back: the same run goes on
    resumed = runs()
    assert sorted(resumed) == ["dup-run", "dup-run (1)"]
    assert resumed["dup-run"]["id"] == latest["id"] and resumed["dup-run"]["step"] == 4
    assert [s for s, _ in loss(resumed["dup-run"])] == [0, 1, 2, 3, 4]

    rerun("2", "1", "--resume", "--from", "3")  # from a checkpoint: a step reached before
    assert sorted(runs()) == ["dup-run", "dup-run (1)"] and runs()["dup-run"]["step"] == 4
    rerun("1", "1")  # once more, the same values (a seeded run): the next number
    assert sorted(runs()) == ["dup-run", "dup-run (1)", "dup-run (2)"]
    assert runs()["dup-run (2)"]["id"] == latest["id"] and runs()["dup-run"]["step"] == 0
