"""``serve --workers``' metrics folder: a dead worker's live figures are forgotten."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend import metrics


def test_dead_and_foreign_pids_are_forgotten_and_own_files_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    never = 2**22 + 1  # above Linux's largest pid: no process has it
    names = {
        "dead": f"gauge_livesum_{never}.db",
        "foreign": "gauge_liveall_1.db",  # init: alive, but no worker of this server
        "own": f"gauge_livesum_{os.getpid()}.db",
        "counter": f"counter_{never}.db",  # counts of the dead still add up: kept
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"")
    metrics.forget_dead_processes()
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names["own"], names["counter"]}
    # Another worker starting at the same moment finds the files gone: no error.
    (tmp_path / names["dead"]).write_bytes(b"")
    real_remove = os.remove

    def raced(path: str) -> None:
        real_remove(path)
        raise FileNotFoundError(path)  # as if the other worker removed it first

    monkeypatch.setattr(os, "remove", raced)
    metrics.forget_dead_processes()
    assert not (tmp_path / names["dead"]).exists()


def test_figures_folders_of_dead_parents_are_removed_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A `serve --workers` parent killed with kill -9 cannot remove its folder; the next
    # one to start removes the folders of parents that are gone, and only those.
    import subprocess
    import tempfile

    from cli import serve

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"{serve.METRICS_PREFIX}{gone.pid}-x1"
    alive = tmp_path / f"{serve.METRICS_PREFIX}{os.getpid()}-x2"
    other = tmp_path / "livestudio-metrics-notapid"
    for folder in (dead, alive, other):
        folder.mkdir()
    serve._forget_dead_metrics_dirs()
    assert not dead.exists() and alive.exists() and other.exists()
