"""Whole series are read page by page and sent as they are read (bounded memory)."""

import math

from backend.services.experiments import PAGE_POINTS
from tests.conftest import Server, User, fixture_bodies

BASE = fixture_bodies("dvclive_basic")[2]
LOSS = "dvclive/plots/metrics/loss.tsv"
ACC = "dvclive/plots/metrics/acc.tsv"


def test_a_series_longer_than_a_page_comes_whole_and_in_order(shared_alice: User) -> None:
    total = PAGE_POINTS + 50
    rows: list[tuple[int, object]] = [(s, math.sin(s / 100)) for s in range(total)]
    # Non-finite values on both sides of the page boundary keep their spelling.
    rows[PAGE_POINTS - 1] = (PAGE_POINTS - 1, "nan")
    rows[PAGE_POINTS] = (PAGE_POINTS, "inf")
    rows[-1] = (total - 1, "-inf")
    body = {**BASE, "name": "paged-read", "step": total - 1}
    experiment_id = 0
    for start in range(0, total, 5000):
        chunk = rows[start : start + 5000]
        plots = {LOSS: {"data": [{"step": s, "loss": v} for s, v in chunk]}}
        if start == 0:
            plots[ACC] = {"data": [{"step": s, "acc": s / 10} for s in range(3)]}
        response = shared_alice.live({**body, "plots": plots})
        assert response.status_code == 200, response.text
        experiment_id = response.json()["experiment_id"]
    url = f"/api/experiments/{experiment_id}/series"

    response = shared_alice.client.get(f"{url}?names=loss,acc,loss")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "content-length" not in response.headers  # streamed, not built whole
    got = response.json()
    assert list(got) == ["loss", "acc"]  # a name asked twice is sent once
    assert [tuple(p) for p in got["loss"]] == rows
    assert got["acc"] == [[0, 0.0], [1, 0.1], [2, 0.2]]

    timed = shared_alice.client.get(f"{url}?times=true").json()  # every series, with times
    assert sorted(timed) == ["acc", "loss"]
    assert [(p[0], p[1]) for p in timed["loss"]] == rows
    assert all(isinstance(p[2], float) and p[2] > 0 for p in timed["loss"])

    assert shared_alice.client.get(f"{url}?names=nothing").json() == {"nothing": []}

    # One point each, exact: at a step, or the last before it (a plot's step cursor).
    at = shared_alice.client.get(f"{url}?names=loss,acc,nothing&at=500").json()
    assert at == {"loss": [list(rows[500])], "acc": [[2, 0.2]], "nothing": []}
    timed_at = shared_alice.client.get(f"{url}?names=acc&at=1&times=true").json()
    assert timed_at["acc"][0][:2] == [1, 0.1] and timed_at["acc"][0][2] > 0
    both = shared_alice.client.get(f"{url}?names=acc&at=1&max_points=10")
    assert both.status_code == 400 and "not both" in both.json()["detail"]


def test_a_series_read_is_refused_before_anything_is_sent(
    shared_alice: User, shared_server: Server
) -> None:
    other = shared_server.add_user("mallory-series")
    response = shared_alice.live({**BASE, "name": "private-read"})
    experiment_id = response.json()["experiment_id"]
    refused = other.client.get(f"/api/experiments/{experiment_id}/series")
    assert refused.status_code == 404 and "does not exist" in refused.json()["detail"]
    stranger = shared_server.client().get(f"/api/experiments/{experiment_id}/series")
    assert stranger.status_code == 401
    bad = shared_alice.client.get(f"/api/experiments/{experiment_id}/series?max_points=1")
    assert bad.status_code == 400 and "max_points" in bad.json()["detail"]


def test_a_series_named_with_a_comma_is_read_by_name(shared_alice: User) -> None:
    """``names=a,b`` reads two; a name holding a comma goes as ``name=``, alone or with it."""
    plots = {
        f"dvclive/plots/metrics/{n}.tsv": {"data": [{"step": 0, n: 0.5}]}
        for n in ("a,b", "a", "b", "c")
    }
    posted = shared_alice.live({**BASE, "name": "commas", "step": 0, "plots": plots})
    url = f"/api/experiments/{posted.json()['experiment_id']}/series"
    read = shared_alice.client.get(url, params={"names": "c", "name": ["a,b"]})
    assert read.status_code == 200 and sorted(read.json()) == ["a,b", "c"]
    assert sorted(shared_alice.client.get(url, params={"names": "a,b"}).json()) == ["a", "b"]
    at = shared_alice.client.get(url, params={"name": ["a,b"], "at": 0}).json()
    assert at == {"a,b": [[0, 0.5]]}
    assert shared_alice.client.get(url, params={"name": [""]}).json() == {}  # none, not all
