"""Nothing a client sends takes the server down: bounded input, 400s that name the field."""

from __future__ import annotations

import base64
import io
import json
import resource
from pathlib import Path

import httpx
import pytest

from shared.live import MAX_STEP
from tests.conftest import (
    ENGINE,
    Server,
    User,
    drop_pg_database,
    fixture_bodies,
    free_port,
    new_pg_database,
)

BODY = fixture_bodies("dvclive_basic")[1]
LOSS = "dvclive/plots/metrics/train/loss.tsv"


def post(server: Server, token: str, body: object) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/live", json=body, headers={"Authorization": f"token {token}"}, timeout=30
    )


def nested(depth: int) -> dict[str, object]:
    tree: dict[str, object] = {"leaf": 1}
    for _ in range(depth):
        tree = {"k": tree}
    return tree


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"step": None}, "`step`"),
        ({"step": 2**63}, "`$.step`"),
        ({"step": MAX_STEP + 1}, "`$.step`"),
        ({"plots": {LOSS: {"data": [{"step": 2**63, "loss": 1.0}]}}}, "data[0]"),
        ({"params": {"params.yaml": nested(500)}}, "nested"),
        ({"params": {"params.yaml": nested(40)}}, "`$.params`"),
        ({"machine": nested(40)}, "`$.machine`"),
        ({"name": "run\x1b]52;c;aGk=\x07"}, "`$.name`"),
        ({"name": "\u202egnp.exe"}, "U+202E"),
        # One line each: a newline in a name forged a second line in an alert's chat text.
        ({"name": "build ok\n[ALERT RESOLVED] ignore"}, "U+000A"),
        ({"name": "tab\tname"}, "U+0009"),
        ({"repo_url": "https://github.com/acme/r1\n"}, "`$.repo_url`"),
        ({"repo_url": "git@github.com:a/b\x00.git"}, "`$.repo_url`"),
        ({"plots": {"dvclive/plots/metrics/\x1b[2Jx.tsv": {"data": []}}}, "control character"),
        ({"metrics": {"m.json": {"data": {"a": 10**400}}}}, "`$.metrics.m.json.data.a`"),
        ({"plots": {LOSS: {"data": [{"step": 1, "loss": 10**400}]}}}, "data[0]"),
        ({"repo_url": "https://[::1/x"}, "not a valid URL"),
        # Invisible characters: `f1` and `f1` + a zero-width space would read as one run.
        ({"name": "f1\u200b"}, "invisible character U+200B"),
        ({"name": "f1\u3164"}, "invisible character U+3164"),
        ({"repo_url": "git@github.com:acme/f1\u200b.git"}, "`$.repo_url`"),
        # Plot paths are bounded like every other key a client chooses (they key caches).
        ({"plots": {"A" * 5000 + "/plots/metrics/x.tsv": {"data": []}}}, "`$.plots`"),
        ({"metrics": {"m" * 5000: {"data": {"a": 1}}}}, "`$.metrics`"),
    ],
)
def test_hostile_bodies_get_a_400_naming_the_field(
    shared_server: Server, shared_alice: User, change: dict[str, object], fragment: str
) -> None:
    server, alice = shared_server, shared_alice
    body = {**BODY, **change}
    if change.get("step", 0) is None:
        del body["step"]
    resp = post(server, alice.token, body)
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert fragment in detail and "\n" not in detail
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_nan_and_inf_metrics_are_still_numbers(server: Server, alice: User) -> None:
    body = {**BODY, "metrics": {"m.json": {"data": {"step": 0, "a": "nan", "b": "-inf", "c": 2}}}}
    assert post(server, alice.token, body).status_code == 200


def test_project_names_with_escape_sequences_are_refused(shared_alice: User) -> None:
    alice = shared_alice
    for name, url in (
        ("x\x1b[31m", "git@h:o/r.git"),
        ("ok", "git@h:o/r\u2066.git"),
        ("p\tq", "git@h:o/r.git"),
        ("ok", "https://github.com/acme/x\n"),
    ):
        resp = alice.client.post("/api/projects", json={"name": name, "repo_url": url})
        assert resp.status_code == 400 and "control character" in resp.json()["detail"]


def test_ids_are_never_reused(server: Server, alice: User) -> None:
    first = post(server, alice.token, {**BODY, "name": "one"}).json()["experiment_id"]
    newest = post(server, alice.token, {**BODY, "name": "two"}).json()["experiment_id"]
    assert alice.client.delete(f"/api/experiments/{newest}").status_code == 204
    again = post(server, alice.token, {**BODY, "name": "three"}).json()["experiment_id"]
    assert again > newest > first
    made = alice.client.post("/api/projects", json={"name": "p", "repo_url": "git@h:o/p.git"})
    assert alice.client.delete(f"/api/projects/{made.json()['id']}").status_code == 204
    remade = alice.client.post("/api/projects", json={"name": "q", "repo_url": "git@h:o/q.git"})
    assert remade.json()["id"] > made.json()["id"]
    # Tokens, watches and SSH keys too: a regenerated token took its predecessor's id, and
    # a TUI still listing the old one would have revoked the new one.
    tokens = [alice.client.post("/api/user/token").json()["info"]["id"] for _ in range(3)]
    assert tokens == sorted(set(tokens)), tokens
    watch = {"kind": "status", "experiment_id": again}
    watches = []
    for _ in range(2):
        watches.append(alice.client.post("/api/watches", json=watch).json()["id"])
        assert alice.client.delete(f"/api/watches/{watches[-1]}").status_code == 204
    assert watches[1] > watches[0]
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl k"
    keys = []
    for _ in range(2):
        added = alice.client.post("/api/user/keys", json={"public_key": key})
        assert added.status_code == 201, added.text
        keys.append(added.json()["id"])
        assert alice.client.delete(f"/api/user/keys/{keys[-1]}").status_code == 204
    assert keys[1] > keys[0]


def test_an_image_path_starting_with_a_slash_can_be_fetched(server: Server, alice: User) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    body = {**BODY, "plots": {"/abs/pic.png": {"image": png}}}
    experiment_id = post(server, alice.token, body).json()["experiment_id"]
    images = alice.client.get(f"/api/experiments/{experiment_id}").json()["images"]
    assert [i["path"] for i in images] == ["abs/pic.png"]
    fetched = alice.client.get(f"/api/experiments/{experiment_id}/images/abs/pic.png")
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")


def _cap_memory() -> None:
    # The server gets 1.5 GB of address space: far-apart steps once needed 10-24 GB.
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


def test_far_apart_steps_cost_what_the_data_costs(tmp_path: Path) -> None:
    server = Server(
        db=tmp_path / "far.db",
        port=free_port(),
        database_url=new_pg_database() if ENGINE == "postgresql" else "",
    )
    server.start_with(preexec_fn=_cap_memory)
    try:
        alice = server.add_user("alice")
        rows = [{"step": s, "loss": 1.0} for s in (0, 1, 10**12, 10**12 + 3, MAX_STEP)]
        for row in rows:  # one row per post: the points log path
            assert post(server, alice.token, {**BODY, "plots": {LOSS: {"data": [row]}}}).is_success
        spread = [{"step": 10**9 * i, "loss": float(i)} for i in range(200)]
        body = {**BODY, "plots": {LOSS: {"data": spread}}}  # many rows: the direct path
        experiment_id = post(server, alice.token, body).json()["experiment_id"]
        series = alice.client.get(f"/api/experiments/{experiment_id}/series")
        assert series.status_code == 200
        steps = [step for step, _ in series.json()["train/loss"]]
        assert steps[0] == 0 and steps[-1] == MAX_STEP and len(steps) == 204
        small = alice.client.get(
            f"/api/experiments/{experiment_id}/series", params={"max_points": 20}
        ).json()["train/loss"]
        assert 2 <= len(small) <= 20 and small[-1][0] == MAX_STEP
        # Restarted on the same data (the rows were filed, nothing is left to crash on).
        server.stop()
        server.start_with(preexec_fn=_cap_memory)
        assert alice.client.get(f"/api/experiments/{experiment_id}").status_code == 200
    finally:
        server.stop()
        if server.database_url:
            drop_pg_database(server.database_url)
    assert "MemoryError" not in (server.log.read_text() if server.log else "")


def test_nesting_deep_enough_to_exhaust_recursion_is_a_400(
    shared_server: Server, shared_alice: User
) -> None:
    server, alice = shared_server, shared_alice
    raw = json.dumps({**BODY, "params": None}).encode()
    deep = raw[:-1] + b', "env": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
    resp = httpx.post(
        f"{server.url}/api/live",
        content=deep,
        headers={"Authorization": f"token {alice.token}"},
        timeout=30,
    )
    assert resp.status_code == 400 and "nested" in resp.json()["detail"]


def test_odd_urls_and_huge_ids_are_never_a_500(shared_server: Server, shared_alice: User) -> None:
    server, alice = shared_server, shared_alice
    made = alice.client.post("/api/projects", json={"name": "x", "repo_url": "https://[::1/x"})
    assert made.status_code == 400 and "not a valid URL" in made.json()["detail"]
    pushed = httpx.post(
        f"{server.url}/webhook/dvc",
        json={"repo_url": "http://[x", "client": "dvc", "refs": {"pushed": []}},
        headers={"Authorization": f"token {alice.token}"},
    )
    assert pushed.status_code == 400
    huge = 10**20
    for method, path in (
        ("GET", f"/api/experiments/{huge}"),
        ("GET", f"/api/experiments/{huge}/series"),
        ("GET", f"/api/projects/{huge}/experiments"),
        ("GET", f"/api/projects/{huge}/members"),
        ("POST", f"/api/experiments/{huge}/fail"),
        ("DELETE", f"/api/projects/{huge}"),
        ("DELETE", f"/api/user/tokens/{huge}"),
        ("POST", f"/api/invitations/{huge}/accept"),
    ):
        resp = alice.client.request(method, path)
        assert resp.status_code == 404, (method, path, resp.text)
    # In a body, a huge id is that field's fault (a 404 said the URL was wrong), and a
    # number no float holds is said in words (it pointed "at `$[...]`").
    project = alice.client.post("/api/projects", json={"name": "ids", "repo_url": "git@h:a/ids"})
    for method, path, body in (
        ("PUT", f"/api/projects/{project.json()['id']}/baseline", {"experiment_id": huge}),
        ("POST", "/api/watches", {"kind": "status", "experiment_id": huge}),
        ("POST", "/api/watches", {"kind": "status", "project_id": 0}),
    ):
        resp = alice.client.request(method, path, json=body)
        assert resp.status_code == 400, (path, resp.text)
        assert "(in experiment_id)" in resp.json()["detail"] or "(in project_id)" in resp.text
    far = alice.client.post(
        "/api/watches",
        content=b'{"kind": "threshold", "experiment_id": 4, "metric": "loss", "op": ">",'
        b' "threshold": 1e309}',
        headers={"Content-Type": "application/json"},
    )
    assert far.status_code == 400
    assert far.json()["detail"].startswith("The request body is not valid: number out of range")
    listed = alice.client.put(
        f"/api/projects/{project.json()['id']}/baseline",
        content=b"[1e999]",
        headers={"Content-Type": "application/json"},
    )
    assert listed.status_code == 400
    assert "number out of range (at `$[0]`)" in listed.json()["detail"], listed.text
    deep = alice.client.post(
        "/api/watches",
        content=b'{"a": {"b": [{"c": 1e999}]}}',
        headers={"Content-Type": "application/json"},
    )
    assert "number out of range (in one of its values)" in deep.json()["detail"], deep.text


def test_a_dvc_done_with_text_metrics_completes_the_run(server: Server, alice: User) -> None:
    """``dvc exp run`` sends whatever its metrics files hold; the run must still end."""
    start, *_, done = fixture_bodies("dvc_exp_run")
    assert post(server, alice.token, start).status_code == 200
    text = {"acc": 0.9, "model": "resnet", "ok": True, "shape": [3, 224], "note": None}
    response = post(server, alice.token, {**done, "metrics": {"metrics.json": {"data": text}}})
    assert response.status_code == 200, response.text
    experiment_id = response.json()["experiment_id"]
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["status"] == "completed"
    assert row["metrics"]["model"] == "resnet" and row["metrics"]["shape"] == [3, 224]


def test_params_and_metrics_are_bounded_in_values(
    shared_server: Server, shared_alice: User
) -> None:
    # A million keys in a run's metrics would be stored in its row and sent with every
    # snapshot of the project; a confusion matrix of 100 by 100 is fine.
    matrix = [[i * 100 + j for j in range(100)] for i in range(100)]
    fine = {**BODY, "metrics": {"m.json": {"data": {"confusion": matrix, "acc": 0.5}}}}
    assert post(shared_server, shared_alice.token, fine).status_code == 200
    # Beyond the bound, that file is not kept, and says so; the rest of the step is (a
    # 413 refused every post of such a run, which kept nothing at all).
    many = {f"k{i}": i for i in range(100_001)}
    huge = {
        **BODY,
        "name": "huge",
        "metrics": {"m.json": {"data": many}, "small.json": {"data": {"acc": 0.5}}},
        "params": {"p.yaml": {"weights": list(range(100_001))}, "q.yaml": {"lr": 0.1}},
    }
    resp = post(shared_server, shared_alice.token, huge)
    assert resp.status_code == 200, resp.text
    row = shared_alice.client.get(f"/api/experiments/{resp.json()['experiment_id']}").json()
    note = "more than 100,000 values: not kept"
    assert row["metrics"]["acc"] == 0.5 and note in str(row["metrics"])
    assert row["params"]["lr"] == 0.1 and note in str(row["params"])
    assert len(str(row)) < 10_000


def test_a_plot_row_naming_another_field_is_read_for_that_row_only(
    server: Server, alice: User
) -> None:
    rows = [{"step": 0, "accuracy": 0.1}, {"step": 1, "acc": 0.5, "accuracy": 0.9}]
    rows.append({"step": 2, "acc": 0.7})
    body = {**BODY, "step": 2, "plots": {"dvclive/plots/metrics/acc.tsv": {"data": rows}}}
    resp = post(server, alice.token, body)
    assert resp.status_code == 200, resp.text
    experiment_id = resp.json()["experiment_id"]
    series = alice.client.get(f"/api/experiments/{experiment_id}/series", params={"names": "acc"})
    assert series.json()["acc"] == [[0, 0.1], [1, 0.5], [2, 0.7]]


def test_big_channel_messages_are_not_kept_by_the_hundred() -> None:
    # Every stream and the watch evaluator decode each committed message through one
    # cache: 256 posts of 30 MB kept there held gigabytes.
    import msgspec

    from backend.db.repository import StoredEvent
    from backend.services import broadcast

    def message(size: int, n: int) -> bytes:
        return msgspec.msgpack.encode([StoredEvent(kind="points", data=b"x" * size, id=n)])

    small = message(100, 1)
    assert broadcast.decode_message(small) is broadcast.decode_message(small)  # decoded once
    for n in range(10):
        big = message(broadcast.CACHE_AT_MOST * 4, n)
        assert broadcast.decode_message(big)[0].id == n
        assert broadcast.decode_message(big) is broadcast.decode_message(big)
    assert broadcast._decode_big.cache_info().currsize <= 2


def test_invisible_characters_in_metric_names_never_cost_a_step(
    shared_server: Server, shared_alice: User
) -> None:
    # A run's name tells runs apart: invisible characters are refused there. A metric's
    # is kept as sent: DVCLive sends all of a step's plots in one post, and refusing one
    # name lost every metric's points (control characters in it are drawn escaped).
    plots = {
        "dvclive/plots/metrics/acc\u200b.tsv": {"data": [{"step": 0, "acc\u200b": 0.5}]},
        LOSS: {"data": [{"step": 0, "loss": 0.9}]},
    }
    body = {**BODY, "name": "keeps-all", "metrics": {"m.json": {"data": {"x\u00ad": 1}}}}
    resp = post(shared_server, shared_alice.token, {**body, "plots": plots})
    assert resp.status_code == 200, resp.text
    experiment_id = resp.json()["experiment_id"]
    names = "acc\u200b,train/loss"
    series = shared_alice.client.get(
        f"/api/experiments/{experiment_id}/series", params={"names": names}
    ).json()
    assert series == {"acc\u200b": [[0, 0.5]], "train/loss": [[0, 0.9]]}
    # Flags and scripts that need joiners are names like any other.
    for name in (
        "run-\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    ):
        assert post(shared_server, shared_alice.token, {**BODY, "name": name}).status_code == 200


def test_many_small_files_cannot_pass_the_values_bound(
    shared_server: Server, shared_alice: User
) -> None:
    files = {f"p{i}.yaml": {"a": i} for i in range(60_000)}
    resp = post(shared_server, shared_alice.token, {**BODY, "params": files})
    assert resp.status_code == 413, resp.text
    assert "in 60,000 files" in resp.json()["detail"]


def test_big_bodies_are_bounded_by_walking_them_and_images_to_the_clients_limit(
    shared_server: Server, shared_alice: User
) -> None:
    """Bodies of a megabyte or more are walked, not scanned for brackets (mostly images):
    the bounds hold all the same; an image is taken up to the clients' own limit (10 MB of
    base64 text, 7.5 MB of picture) and refused one byte beyond."""
    from backend.services.ingest import LARGE_BODY, MAX_IMAGE_BYTES

    server, alice = shared_server, shared_alice
    biggest = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (MAX_IMAGE_BYTES // 256)
    biggest += b"\0" * (MAX_IMAGE_BYTES - len(biggest))
    image = {"image": base64.b64encode(biggest).decode()}
    assert len(image["image"]) == 10_000_000
    deep = {**BODY, "name": "deep", "env": nested(40), "plots": {"pics/a.png": image}}
    resp = post(server, alice.token, deep)
    assert resp.status_code == 400 and "`$.env` is nested more than" in resp.json()["detail"]
    taken = post(server, alice.token, {**BODY, "name": "big", "plots": {"pics/a.png": image}})
    assert taken.status_code == 200, taken.text
    experiment_id = taken.json()["experiment_id"]
    fetched = alice.client.get(f"/api/experiments/{experiment_id}/images/pics/a.png")
    assert fetched.content == biggest  # whole, byte for byte
    over = {"image": base64.b64encode(biggest + b"\0").decode()}
    resp = post(server, alice.token, {**BODY, "name": "big", "plots": {"pics/a.png": over}})
    assert resp.status_code == 413
    assert resp.json()["detail"] == (
        "Image `$.plots.pics/a.png` is over the 10,000,000-byte limit of base64 text"
        " (7,500,000 bytes of picture); send it smaller."
    )
    assert len(json.dumps(deep)) > LARGE_BODY


def test_a_jpeg_of_too_many_scans_is_refused_and_a_progressive_one_kept(
    shared_server: Server, shared_alice: User
) -> None:
    """Every scan is a pass over the whole picture in every viewer: 20,000 of them in a
    1 MB file took an hour of a member's CPU (an SSH TUI's: the server's)."""
    from shared.images import MAX_JPEG_SCANS, jpeg_scans
    from tests.conftest import progressive_jpeg

    server, alice = shared_server, shared_alice
    for scans, status in ((0, 200), (MAX_JPEG_SCANS, 400)):
        data = progressive_jpeg(repeat_last_scan=scans)
        plots = {"pics/p.jpg": {"image": base64.b64encode(data).decode()}}
        resp = post(server, alice.token, {**BODY, "name": f"jpeg{scans}", "plots": plots})
        assert resp.status_code == status, resp.text
        if status == 400:
            assert resp.json()["detail"].startswith(
                f"Image `$.plots.pics/p.jpg` is a JPEG of {jpeg_scans(data)} scans (at most"
                f" {MAX_JPEG_SCANS} are decoded)"
            )
            continue
        experiment_id = resp.json()["experiment_id"]
        fetched = alice.client.get(f"/api/experiments/{experiment_id}/images/pics/p.jpg")
        assert fetched.content == data


def test_credentials_in_a_repository_url_are_never_stored_or_shown(
    server: Server, alice: User
) -> None:
    """GitLab CI's origin is https://gitlab-ci-token:TOKEN@host/...: DVCLive sends it as is,
    and every member, invitee and stream was shown the token."""
    secret = "glcbt-SECRET123"
    url = f"https://gitlab-ci-token:{secret}@gitlab.example.com/team/proj.git"
    resp = post(server, alice.token, {**BODY, "type": "start", "repo_url": url})
    assert resp.status_code == 200, resp.text
    experiment_id = resp.json()["experiment_id"]
    typed = alice.client.post(
        "/api/projects", json={"name": "typed", "repo_url": "https://me:s3cret@example.org/a/b"}
    )
    assert typed.status_code == 201, typed.text
    shown = (
        alice.client.get("/api/projects").text
        + alice.client.get(f"/api/experiments/{experiment_id}").text
    )
    assert secret not in shown and "s3cret" not in shown and "gitlab-ci-token" not in shown
    assert "https://gitlab.example.com/team/proj.git" in shown
    assert "https://example.org/a/b" in shown
    # The same repository still: posts with or without the credentials are one run.
    plain = {**BODY, "repo_url": "https://gitlab.example.com/team/proj.git"}
    assert post(server, alice.token, plain).json()["experiment_id"] == experiment_id
