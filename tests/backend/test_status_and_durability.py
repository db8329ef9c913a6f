"""Stale runs become Stopped on a timer; acknowledged data survives kill -9."""

import functools
import threading
import time

import httpx

from tests.conftest import Server, User, fixture_bodies

BODIES = fixture_bodies("dvclive_basic")


def data(name: str, step: int, loss: float) -> dict[str, object]:
    """A DVCLive post of one step's loss, metrics and plot row together."""
    metrics = {"dvclive/metrics.json": {"data": {"loss": loss, "step": step}}}
    plots = {"dvclive/plots/metrics/loss.tsv": {"data": [{"step": step, "loss": loss}]}}
    return {**BODIES[1], "name": name, "step": step, "metrics": metrics, "plots": plots}


def _posted(user: User, body: dict[str, object]) -> int:
    """Post ``body`` as ``user``; the experiment id of the 200."""
    response = user.live(body)
    assert response.status_code == 200, response.text
    return int(response.json()["experiment_id"])


def test_silent_run_becomes_stopped_without_any_request_then_resumes(make_server) -> None:
    server = make_server(LIVESTUDIO_STALE_AFTER="1", LIVESTUDIO_SWEEP_INTERVAL="0.2")
    alice = server.add_user("alice")
    experiment_id = alice.live(BODIES[1]).json()["experiment_id"]
    assert alice.client.get(f"/api/experiments/{experiment_id}").json()["status"] == "running"
    time.sleep(1.8)  # no request in between: the sweeper alone must notice
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["status"] == "stopped"
    assert alice.client.get("/api/projects").json()[0]["running"] == 0
    alice.live(BODIES[1])  # the same step again, after a network blip: running again
    assert alice.client.get(f"/api/experiments/{experiment_id}").json()["status"] == "running"


def test_a_start_then_silence_leaves_the_earlier_run_as_it_ended(make_server) -> None:
    """A name run anew whose process died before its first post: the earlier Completed run
    was Running, then Stopped by the sweeper, for good."""
    server = make_server(LIVESTUDIO_STALE_AFTER="1", LIVESTUDIO_SWEEP_INTERVAL="0.2")
    alice = server.add_user("alice")
    start, step0 = BODIES[0], BODIES[1]
    experiment_id = alice.live(step0).json()["experiment_id"]
    alice.live({**start, "type": "done"})
    assert alice.live(start).status_code == 200  # and then nothing
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["status"] == "running"
    time.sleep(1.8)
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["status"] == "completed" and row["name"] == step0["name"]
    assert alice.client.get("/api/projects").json()[0]["running"] == 0


def test_manual_fail_and_delete(server: Server) -> None:
    alice = server.add_user("alice")
    experiment_id = alice.live(BODIES[1]).json()["experiment_id"]
    failed = alice.client.post(f"/api/experiments/{experiment_id}/fail")
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert failed.json()["errors"][0]["text"] == "marked failed by alice"
    assert alice.client.delete(f"/api/experiments/{experiment_id}").status_code == 204
    assert alice.client.get(f"/api/experiments/{experiment_id}").status_code == 404
    assert alice.client.get("/api/projects").json()[0]["experiments"] == 0


def test_a_run_going_on_after_its_failure_drops_the_old_reason(server: Server) -> None:
    alice = server.add_user("alice")
    experiment_id = alice.live(BODIES[1]).json()["experiment_id"]
    alice.client.post(f"/api/experiments/{experiment_id}/fail")
    alice.live(BODIES[3])  # it was alive after all: its next step
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert (row["status"], row["errors"]) == ("running", [])


def test_kill_9_keeps_every_acknowledged_point_and_resend_does_not_duplicate(
    make_server,
) -> None:
    server: Server = make_server()
    alice = server.add_user("alice")
    acked: dict[str, list[int]] = {}
    stop = threading.Event()
    base = BODIES[2]

    def writer(name: str) -> None:
        steps = acked.setdefault(name, [])
        with httpx.Client(timeout=5) as client:
            for step in range(100_000):
                if stop.is_set():
                    return
                body = {
                    **base,
                    "name": name,
                    "step": step,
                    "plots": {
                        "dvclive/plots/metrics/loss.tsv": {
                            "data": [{"step": step, "loss": step / 10}]
                        }
                    },
                }
                try:
                    resp = client.post(
                        f"{server.url}/api/live",
                        json=body,
                        headers={"Authorization": f"token {alice.token}"},
                    )
                except httpx.HTTPError:
                    return
                if resp.status_code == 200:
                    steps.append(step)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    server.stop(kill=True)
    stop.set()
    for t in threads:
        t.join(10)
    assert all(acked[f"w{i}"] for i in range(4)), acked

    server.start()
    alice.client = server.login("alice")
    project = alice.client.get("/api/projects").json()[0]
    rows = {
        r["name"]: r for r in alice.client.get(f"/api/projects/{project['id']}/experiments").json()
    }
    for name, steps in acked.items():
        series = alice.client.get(f"/api/experiments/{rows[name]['id']}/series").json()["loss"]
        stored = [p[0] for p in series]
        assert set(steps) <= set(stored), f"{name} lost acknowledged points"
        # Re-sending the last acknowledged post does not duplicate its point.
        body = {
            **base,
            "name": name,
            "step": steps[-1],
            "plots": {
                "dvclive/plots/metrics/loss.tsv": {
                    "data": [{"step": steps[-1], "loss": steps[-1] / 10}]
                }
            },
        }
        assert alice.live(body).status_code == 200
        again = alice.client.get(f"/api/experiments/{rows[name]['id']}/series").json()["loss"]
        assert len(again) == len(series)


def test_a_late_post_of_an_older_step_leaves_newer_params_and_metrics(
    server: Server, alice: User
) -> None:
    """Events arrive in any order (SPEC §3): the newest step's params and metrics win."""
    base = {**fixture_bodies("dvclive_basic")[1], "name": "late-params"}

    def at(step: int) -> dict[str, object]:
        return {
            **base,
            "step": step,
            "params": {"params.yaml": {"v": step}},
            "metrics": {"m.json": {"data": {"step": step, "loss": 1.0 / (step + 1)}}},
        }

    for step in (0, 5, 3):  # step 3's post arrives after step 5's
        response = alice.live(at(step))
        assert response.status_code == 200, response.text
    experiment_id = response.json()["experiment_id"]
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["params"]["v"] == 5 and row["metrics"]["loss"] == 1.0 / 6
    server.stop()  # and after a restart (the guard is stored, not only cached)
    server.start()
    alice.live(at(4))
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["params"]["v"] == 5
    # A new run under the same name starts its steps again: its params are taken, in an
    # experiment of its own; the earlier run keeps its own as `late-params (1)`.
    start = {**fixture_bodies("dvclive_basic")[0], "name": "late-params"}
    assert alice.live(start).status_code == 200
    new_run = at(0) | {"params": {"params.yaml": {"v": 100}}}
    assert alice.live(new_run).json()["experiment_id"] == experiment_id  # (held: no rows)
    again = alice.live(new_run).json()["experiment_id"]  # no rows again: from step 0, new
    assert again != experiment_id
    assert alice.client.get(f"/api/experiments/{again}").json()["params"]["v"] == 100
    earlier = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert earlier["name"] == "late-params (1)" and earlier["params"]["v"] == 5


def test_a_name_run_anew_sets_the_earlier_run_aside_with_its_own_end(
    server: Server, alice: User
) -> None:
    """The earlier run keeps how it ended (a failure and its reason), though the new run's
    `start` made the experiment Running before its first step told the two apart; a run
    killed before its end is Stopped; a start sent again with the same values is no new run."""
    start = BODIES[0]

    post = functools.partial(_posted, alice)

    def row(experiment_id: int) -> dict:
        return alice.client.get(f"/api/experiments/{experiment_id}").json()

    error = {"cls": "ValueError", "text": "loss diverged"}
    failed = post({**start, "name": "failing"})
    for step in range(3):
        post(data("failing", step, 1.0 + step))
    post({**start, "type": "done", "name": "failing", "errors": [error]})
    killed = post({**start, "name": "killed"})
    for step in range(3):
        post(data("killed", step, 1.0 + step))
    for name in ("failing", "killed"):
        post({**start, "name": name})
        post({**start, "name": name})  # (sent twice: the first keeps the earlier end)
        assert row(failed if name == "failing" else killed)["status"] == "running"
        again = post(data(name, 0, 0.5))  # another value at step 0: a new run
        assert again not in (failed, killed)
    earlier = row(failed)
    assert earlier["name"] == "failing (1)" and earlier["status"] == "failed"
    assert earlier["errors"] == [error] and earlier["step"] == 2
    # Its last post's time, not the new run's start.
    assert earlier["updated_at"] <= earlier["finished_at"]
    assert row(killed)["name"] == "killed (1)" and row(killed)["status"] == "stopped"
    # Resumed: DVCLive sends the run's rows from its first step again in its first post.
    same = post({**start, "name": "failing"})
    resumed = data("failing", 1, 0.25)
    resumed["plots"] = {
        "dvclive/plots/metrics/loss.tsv": {
            "data": [{"step": 0, "loss": 0.5}, {"step": 1, "loss": 0.25}]
        }
    }
    assert post(resumed) == same
    names = sorted(r["name"] for r in alice.client.get("/api/projects/1/experiments").json())
    assert names == ["failing", "failing (1)", "killed", "killed (1)"]


def test_resumes_from_a_checkpoint_stay_one_run_and_dvc_params_go_with_their_run(
    server: Server, alice: User
) -> None:
    """A run resumed from a checkpoint goes on from that checkpoint's step with values of
    its own: one experiment. `dvc exp run` run anew sends its params in its `start`, before
    the data tells a new run: the earlier run keeps its own params, the new run gets its."""
    start = BODIES[0]

    def ids() -> dict[str, int]:
        rows = alice.client.get("/api/projects/1/experiments").json()
        return {r["name"]: r["id"] for r in rows}

    for step in range(6):
        alice.live(data("ckpt", step, 1.0 + step))
    alice.live({**start, "name": "ckpt"})
    # From the checkpoint at step 3, with other values: DVCLive resumed sends the rows of
    # its folder from the first step again (those past the checkpoint too) in its first post.
    first = data("ckpt", 3, 0.3)
    first["plots"] = {
        "dvclive/plots/metrics/loss.tsv": {
            "data": [{"step": s, "loss": 1.0 + s} for s in range(6)] + [{"step": 3, "loss": 0.3}]
        }
    }
    assert alice.live(first).status_code == 200
    for step in (4, 5, 6):
        assert alice.live(data("ckpt", step, 0.1 * step)).status_code == 200
    assert list(ids()) == ["ckpt"]
    series = alice.client.get(f"/api/experiments/{ids()['ckpt']}/series").json()["loss"]
    assert series[:3] == [[0, 1.0], [1, 2.0], [2, 3.0]] and series[3] == [3, 0.3]

    dvc = fixture_bodies("dvc_exp_run")
    for body in dvc:
        assert alice.live(body).status_code == 200
    name = dvc[0]["name"]
    first = ids()[name]
    again = [{**dvc[0], "params": {"params.yaml": {"lr": 0.5, "batch": 32}}}]
    again += [data(name, 0, 7.0) | {"client": "dvclive", "baseline_sha": dvc[0]["baseline_sha"]}]
    for body in again:
        assert alice.live(body).status_code == 200
    now = ids()
    assert now[f"{name} (1)"] == first and now[name] != first
    earlier = alice.client.get(f"/api/experiments/{first}").json()
    latest = alice.client.get(f"/api/experiments/{now[name]}").json()
    assert earlier["params"]["params.yaml:lr"] == 0.2 and earlier["status"] == "completed"
    assert latest["params"]["params.yaml:lr"] == 0.5 and latest["client"] == "dvc"


def test_a_long_name_run_anew_again_and_again_gets_a_number_each_time(
    server: Server, alice: User
) -> None:
    start, step0, *_ = BODIES
    name = "n" * 253

    def run(loss: float) -> None:
        assert alice.live({**start, "name": name}).status_code == 200
        metrics = {"dvclive/metrics.json": {"data": {"loss": loss, "step": 0}}}
        body = {**step0, "name": name, "step": 0, "metrics": metrics}
        body["plots"] = {"dvclive/plots/metrics/loss.tsv": {"data": [{"step": 0, "loss": loss}]}}
        assert alice.live(body).status_code == 200, alice.live(body).text
        assert alice.live({**body, "step": 1}).status_code == 200

    for loss in (1.0, 2.0, 3.0, 4.0):
        run(loss)
    names = sorted(r["name"] for r in alice.client.get("/api/projects/1/experiments").json())
    assert names == sorted([name, *(name[: 255 - len(f" ({n})")] + f" ({n})" for n in (1, 2, 3))])


def test_what_follows_a_start_decides_at_once(server: Server, alice: User) -> None:
    """A run that logged only step 0 (an evaluation) run anew with another value is a new
    run; a start followed by its done alone (nothing logged) is a new run that leaves the
    earlier one's end alone; the latest of two starts gives the new run its params; a
    start with another sub-project moves the earlier run back where it was."""
    start = BODIES[0]

    post = functools.partial(_posted, alice)

    def rows() -> dict[str, dict]:
        listed = alice.client.get("/api/projects/1/experiments").json()
        return {r["name"]: r for r in listed}

    done = {**start, "type": "done"}
    for loss in (1.0, 2.0):  # an evaluation run twice: step 0 only
        post({**start, "name": "eval"})
        post(data("eval", 0, loss))
        post({**done, "name": "eval"})
    assert rows()["eval"]["metrics"] == {"loss": 2.0}
    assert rows()["eval (1)"]["metrics"] == {"loss": 1.0}

    error = {"cls": "ValueError", "text": "diverged"}
    post({**start, "name": "crash"})
    post(data("crash", 0, 1.0))
    post({**done, "name": "crash", "errors": [error]})
    post({**start, "name": "crash"})
    post({**done, "name": "crash"})  # crashed again before logging anything
    assert rows()["crash (1)"]["status"] == "failed" and rows()["crash (1)"]["errors"] == [error]
    assert rows()["crash"]["status"] == "completed" and rows()["crash"]["step"] is None

    post({**start, "name": "early"})
    post({**done, "name": "early", "errors": [error]})  # failed before it logged a step
    post({**start, "name": "early"})
    post(data("early", 0, 1.0))  # run again: the failure stays a run of its own
    assert rows()["early (1)"]["status"] == "failed" and rows()["early (1)"]["step"] is None
    assert rows()["early (1)"]["errors"] == [error]
    assert rows()["early"]["status"] == "running" and rows()["early"]["step"] == 0

    # Marked failed by hand before its first step (a stage that seemed stuck), then begun:
    # the same run, with the params its first start gave it.
    slow = post({**start, "name": "slow", "params": {"params.yaml": {"lr": 0.1}}})
    assert alice.client.post(f"/api/experiments/{slow}/fail").status_code == 200
    post({**start, "name": "slow"})
    post(data("slow", 0, 1.0))
    assert "slow (1)" not in rows() and rows()["slow"]["params"]["params.yaml:lr"] == 0.1

    post({**start, "name": "p", "params": {"params.yaml": {"lr": 0.1}}})
    post(data("p", 0, 1.0))
    post({**start, "name": "p", "params": {"params.yaml": {"lr": 0.2}}})
    post({**start, "name": "p", "params": {"params.yaml": {"lr": 0.3}}})
    post(data("p", 0, 1.0))  # the same loss, other params: a new run
    assert rows()["p"]["params"]["params.yaml:lr"] == 0.3
    assert rows()["p (1)"]["params"]["params.yaml:lr"] == 0.1

    post({**start, "name": "sub", "subdir": "proj-a"})
    post(data("sub", 0, 1.0))
    post({**start, "name": "sub", "subdir": "proj-b"})
    post(data("sub", 0, 5.0))
    shown = {
        r["name"]: r["subdir"]
        for r in alice.client.get("/api/projects").json()
        for r in alice.client.get(f"/api/projects/{r['id']}/experiments").json()
        if r["name"].startswith("sub")
    }
    assert shown == {"sub (1)": "proj-a", "sub": "proj-b"}


def test_a_second_live_in_its_own_folder_is_the_same_run(server: Server, alice: User) -> None:
    """`livestudio run` gives every `Live` of its command one name: a second `Live`, in a
    folder of its own, starts at step 0 too, and is no new run of the name."""
    start, step0, *_ = BODIES

    def data(folder: str, step: int) -> dict[str, object]:
        metrics = {f"{folder}/metrics.json": {"data": {"loss": 1.0 + step, "step": step}}}
        rows = [{"step": step, "loss": 1.0 + step}]
        plots = {f"{folder}/plots/metrics/{folder}_loss.tsv": {"data": rows}}
        body = {**step0, "name": "two", "step": step, "metrics": metrics, "plots": plots}
        return body | {"params": {f"{folder}/params.yaml": {"folder": folder}}}

    first = alice.live({**start, "name": "two"}).json()["experiment_id"]
    for step in range(3):
        assert alice.live(data("train", step)).json()["experiment_id"] == first
    assert alice.live({**start, "name": "two"}).json()["experiment_id"] == first
    assert alice.live(data("eval", 0)).json()["experiment_id"] == first
    names = [r["name"] for r in alice.client.get("/api/projects/1/experiments").json()]
    assert names == ["two"]


def test_dvclive_posts_metrics_then_rows_and_the_rows_tell_a_resume_from_a_new_run(
    server: Server, alice: User
) -> None:
    """DVCLive posts a step's metrics, then its rows: the first post after a `start` has
    no rows to tell a resume (which re-sends its folder's rows) from a new run. It is held
    back until the rows come: a resume at a step already reached (killed at step 0, or
    from a checkpoint) was split off as a new run."""
    start, step0, *_ = BODIES

    def metrics(name: str, step: int, loss: float) -> dict[str, object]:
        files = {"dvclive/metrics.json": {"data": {"loss": loss, "step": step}}}
        return {**step0, "name": name, "step": step, "metrics": files}

    def rows(name: str, step: int, values: dict[int, float]) -> dict[str, object]:
        data = [{"step": s, "loss": v} for s, v in values.items()]
        plots = {"dvclive/plots/metrics/loss.tsv": {"data": data}}
        return {
            **step0,
            "name": name,
            "step": step,
            "plots": plots,
            "params": None,
            "metrics": None,
        }

    post = functools.partial(_posted, alice)

    def names() -> dict[str, dict]:
        listed = alice.client.get("/api/projects/1/experiments").json()
        return {r["name"]: r for r in listed}

    for name in ("ckpt", "anew"):
        post({**start, "name": name})
        for step in range(4):
            post(metrics(name, step, 1.0 + step))
            post(rows(name, step, {step: 1.0 + step}))
    # Resumed from the checkpoint at step 2: its folder's rows come again, with the new.
    first = names()["ckpt"]["id"]
    post({**start, "name": "ckpt"})
    post(metrics("ckpt", 2, 0.5))
    assert post(rows("ckpt", 2, {0: 1.0, 1: 2.0, 2: 0.5})) == first
    assert sorted(names()) == ["anew", "ckpt"]
    assert names()["ckpt"]["metrics"] == {"loss": 0.5}
    # Run anew: its rows are of step 0 only; the held metrics go with the new run.
    earlier = names()["anew"]["id"]
    post({**start, "name": "anew"})
    post(metrics("anew", 0, 9.0))
    new = post(rows("anew", 0, {0: 9.0}))
    assert new != earlier
    assert names()["anew (1)"]["metrics"] == {"loss": 4.0}
    assert names()["anew"]["metrics"] == {"loss": 9.0} and names()["anew"]["step"] == 0
