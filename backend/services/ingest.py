"""Ingestion of the live protocol: validate on the event loop, apply in the writer."""

from __future__ import annotations

import binascii
import enum
import functools
import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from backend.db import repository
from backend.db.connection import Reader
from backend.db.repository import BeforeStart, ExperimentRecord
from backend.db.writer import WriteContext, cache_safe, heavy, shares_deferred
from backend.services import events, quotas, status
from backend.services.errors import InvalidInput, MissingScope, NotAuthenticated, TooLarge
from backend.services.image_types import image_type
from shared.flatten import metrics_tree
from shared.images import too_many_scans
from shared.live import (
    MAX_NAME,
    MAX_STEP,
    DataEvent,
    DoneEvent,
    LiveEvent,
    StartEvent,
    decode_live_event,
    is_wrapper_name,
)
from shared.repo_url import InvalidRepoUrl, repo_key, repo_name, subdir_key, without_credentials
from shared.text import control_problem
from shared.values import parse_number

METRICS_DIR = "plots/metrics/"
IMAGES_DIR = "plots/images/"
MAX_PLOTS = 200
MAX_PLOT_BYTES = 10_000_000
"""The clients' own limit on an image, on the base64 text they measure (dvc-studio-client
skips bigger plots): a bigger one comes from something else, and is refused alike..."""
MAX_IMAGE_BYTES = MAX_PLOT_BYTES // 4 * 3
"""...which is an image of more than this many bytes once decoded."""
LARGE_BODY = 1 << 20
"""From this size on, a body's params and metrics are walked to bound them instead of its
brackets and commas counted first: such a body is mostly images (their base64 holds none),
and the four scans of a 30 MB one took 34 ms while every other request waited."""
HEAVY_IMAGES = 1 << 20
"""From this many bytes of images, a post's transaction runs off the event loop (``heavy``)."""
INGEST_SCOPE = "EXPERIMENTS"
# last_used_at is informative; writing it on every post would double the write load.
TOUCH_EVERY = 60.0
UPDATED_AT_PRECISION = 1.0
# Posts with at most this many new rows are appended to the points log...
LOG_MAX_ROWS = 64
# ...which is filed into the points once it holds this many rows, the oldest
# FILE_CHUNK at a time: filing 4,096 at once paused every request for 5-10 ms. Under
# sustained load the log then stays near FILE_AT, which a read of a series (it files the
# whole log first) and the sweeper's timer file in one go: kept small for them.
FILE_AT = 1024
FILE_CHUNK = 256
SLICE_ROWS = 2048
"""A post with more plot rows is stored in transactions of this many, letting others through."""
MAX_DEPTH = 32
"""Deepest nesting accepted in params, metrics, machine and env (Hydra configs use ~6)."""
MAX_VALUES = 100_000
"""Most values (dict entries and list items, at every level) in params, metrics, machine or
env: a 100-by-100 confusion matrix fits; a million keys (tens of MB stored in the run's row,
sent to every member's snapshot) does not."""


class ParsedEvent(msgspec.Struct, frozen=True):
    """A validated live event with its series rows and images pulled out."""

    event: LiveEvent
    repo_key: str
    series: dict[str, list[tuple[int, float]]] = {}
    images: dict[str, bytes] = {}
    points_only: bool = False
    """A later slice of a large post: only its rows are stored (see ``slices``)."""

    def slices(self) -> list[ParsedEvent]:
        """The event, then the rest of its rows in parts of at most ``SLICE_ROWS``.

        A 30 MB post of plot rows stored in one transaction would hold the event loop
        (and so every other request) for seconds. Stored in slices, each its own short
        transaction, it lets other requests through in between; the post is answered
        once the last slice is committed. Re-sent rows overwrite, so a post that fails
        half-way is simply sent again by the client.
        """
        if not self.series or sum(len(rows) for rows in self.series.values()) <= SLICE_ROWS:
            return [self]
        parts: list[dict[str, list[tuple[int, float]]]] = [{}]
        size = 0
        for name, rows in self.series.items():
            for start in range(0, len(rows), SLICE_ROWS):
                chunk = rows[start : start + SLICE_ROWS]
                if size + len(chunk) > SLICE_ROWS and size:
                    parts.append({})
                    size = 0
                parts[-1].setdefault(name, []).extend(chunk)
                size += len(chunk)
        first = ParsedEvent(self.event, self.repo_key, parts[0], self.images)
        rest = [ParsedEvent(self.event, self.repo_key, p, points_only=True) for p in parts[1:]]
        return [first, *rest]


def token_hash(token: str) -> bytes:
    """How access and session tokens are stored: they are random, so SHA-256 suffices."""
    return hashlib.sha256(token.encode()).digest()


def parse(body: bytes) -> ParsedEvent:
    """Decode and validate a ``POST /api/live`` body; raises ``InvalidInput``."""
    try:
        event = decode_live_event(body)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Invalid base64"):
            raise InvalidInput(_bad_image(body)) from None
        raise InvalidInput(f"Invalid live event: {exc}.") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InvalidInput(
            f"The request body is nested too deeply; keep params and metrics within {MAX_DEPTH}"
            " levels."
        ) from None
    _check_text(event)
    if len(body) >= LARGE_BODY:
        _check_depth(event)
        event = _within_size(event)
    else:
        # A document with fewer brackets than the depth limit cannot nest deeper than
        # it: the usual post skips the walk (bytes.count runs at memory speed).
        lists = body.count(b"[")
        if body.count(b"{") + lists > MAX_DEPTH:
            _check_depth(event)
        # Every dict entry has its colon, every list item its comma or its list's bracket.
        if body.count(b":") + body.count(b",") + lists > MAX_VALUES:
            event = _within_size(event)
    for file, content in (event.metrics or {}).items():
        data = content.get("data")
        if type(data) is dict:
            _check_numeric(data, file)
    try:
        key = repo_key(event.repo_url)
    except InvalidRepoUrl as exc:
        raise InvalidInput(f"{exc} (at `$.repo_url`).") from None
    if not isinstance(event, DataEvent) or not event.plots:
        return ParsedEvent(event, key)
    if len(event.plots) > MAX_PLOTS:
        raise TooLarge(
            f"Too many plots in one request ({len(event.plots)}); send at most {MAX_PLOTS}."
        )
    series: dict[str, list[tuple[int, float]]] = {}
    images: dict[str, bytes] = {}
    for path, plot in event.plots.items():
        if plot.data is not None and plot.image is not None:
            raise InvalidInput(f"Plot `$.plots.{path}` has both `data` and `image`; send one.")
        if plot.image is not None:
            image = plot.image
            if len(image) > MAX_IMAGE_BYTES:
                raise TooLarge(
                    f"Image `$.plots.{path}` is over the {MAX_PLOT_BYTES:,}-byte limit of"
                    f" base64 text ({MAX_IMAGE_BYTES:,} bytes of picture); send it smaller."
                )
            problem = too_many_scans(image)
            if problem is not None:
                raise InvalidInput(
                    f"Image `$.plots.{path}` is {problem}: no camera or plotting library"
                    " writes that many, and every viewer would decode them all; send it"
                    " as a PNG or a baseline JPEG."
                )
            # Not a picture we know: most often DVCLive read the file while the next
            # step's log_image rewrote it (empty or cut short). That image is left out
            # and the step's metrics kept: refusing the post lost them (seen in CI).
            if image_type(image) is not None:
                images[_checked_name(path, _image_name(path))] = image
            else:
                _checked_name(path, _image_name(path))
        elif plot.data is not None and METRICS_DIR in path:
            name = _series_name(path)
            series[name] = _series_rows(path, name, plot.data)
    return ParsedEvent(event, key, series, images)


def _check_text(event: LiveEvent) -> None:
    """Identifiers reach every member's terminal: no control or bidi characters in them."""
    subdir = event.subdir if isinstance(event, StartEvent) else None
    problem = _identifier_problem(event.name, event.repo_url, subdir)
    if problem is not None:
        raise InvalidInput(problem)


@functools.lru_cache(maxsize=4096)  # a run sends the same name and URL with every post
def _identifier_problem(name: str, repo_url: str, subdir: str | None) -> str | None:
    for field_name, value in (("name", name), ("repo_url", repo_url), ("subdir", subdir or "")):
        problem = control_problem(f"`$.{field_name}`", value, invisible=True)
        if problem is not None:
            return f"{problem}; send plain text."
    if not name.strip():  # (drawn as a blank row nobody could tell or pick)
        return "`$.name` is blank; name the experiment (DVC_EXP_NAME, or Live(exp_name=…))."
    return None


def _check_depth(event: LiveEvent) -> None:
    """Bound the nesting of the free-form dicts (our own code recurses through them)."""
    for field_name in ("params", "metrics", "machine", "env"):
        tree = getattr(event, field_name)
        if tree and _depth(tree) > MAX_DEPTH:
            raise InvalidInput(
                f"`$.{field_name}` is nested more than {MAX_DEPTH} levels deep; flatten it."
            )


TOO_LARGE = "(too large)"
"""The name a params or metrics file (or machine, env) that was not kept is shown under."""
_NOT_KEPT = f"more than {MAX_VALUES:,} values: not kept"


def _within_size(event: LiveEvent) -> LiveEvent:
    """The event with the files that would take params or metrics past ``MAX_VALUES``
    (biggest first), and a machine or env that does, each replaced by a note saying so.

    The rest of the step is kept: refused whole, every post of such a run was, and the
    run kept no metrics or plots at all.
    """
    changes: dict[str, object] = {}
    for field_name in ("params", "metrics"):
        files: dict[str, Any] | None = getattr(event, field_name)
        if not files:
            continue
        # Each file counts with its own entry; a file not kept still costs its note's.
        sizes = {name: 1 + _size(tree) for name, tree in files.items()}
        total = sum(sizes.values())
        if total <= MAX_VALUES:
            continue
        kept = dict(files)
        note = {TOO_LARGE: _NOT_KEPT}
        for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
            if total <= MAX_VALUES or sizes[name] <= 3:
                break
            kept[name] = {"data": note} if field_name == "metrics" else note
            total -= sizes[name] - (3 if field_name == "metrics" else 2)
        if total > MAX_VALUES:  # too many files, each small: nothing to cut but all of it
            raise TooLarge(
                f"`$.{field_name}` holds more than {MAX_VALUES:,} values in {len(files):,}"
                " files; send fewer."
            )
        changes[field_name] = kept
    for field_name in ("machine", "env"):
        tree = getattr(event, field_name)
        if tree and _size(tree) > MAX_VALUES:
            changes[field_name] = {TOO_LARGE: _NOT_KEPT}
    return msgspec.structs.replace(event, **changes) if changes else event


def _size(tree: object) -> int:
    """How many dict entries and list items ``tree`` holds at every level (iteratively)."""
    total = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        total += len(children)  # type: ignore[arg-type]
        if total > MAX_VALUES:
            return total
        stack.extend(c for c in children if isinstance(c, dict | list))  # type: ignore[attr-defined]
    return total


def _depth(tree: object) -> int:
    """How deeply dicts and lists nest in ``tree`` (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                return deepest
        children = node.values() if isinstance(node, dict) else node
        for child in children:  # type: ignore[attr-defined]
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest


_BIG = 2**63  # beyond this, an integer is checked for whether it fits a float at all


def _check_numeric(tree: dict[str, Any], where: str) -> None:
    """Metric values are kept as they come, except integers no float can hold.

    DVCLive logs numbers (NaN and infinity spelled as strings), but ``dvc exp run`` sends
    whatever the stage's metrics files hold — text (``"model": "resnet"``), booleans,
    lists — with its ``done``: refusing them refused the end of a real run, which then
    never completed. They are shown as text and never compared as numbers (watches,
    deltas and sorting read them as not-a-number).
    """
    for key, value in tree.items():
        kind = type(value)
        if kind is dict:
            _check_numeric(value, f"{where}.{key}")
        elif kind is int and not -_BIG < value < _BIG and parse_number(value) is None:
            raise InvalidInput(
                f"Metric `$.metrics.{where}.data.{key}` is an integer too large for any"
                " number type; send it as a float or a string."
            )


@functools.lru_cache(maxsize=4096)  # series and image names repeat with every step
def _name_problem(path: str, name: str) -> str | None:
    problem = control_problem(f"Plot `$.plots.{path}`", name)
    return None if problem is None else f"{problem}; rename it."


def _checked_name(path: str, name: str) -> str:
    """A series or image name, checked like other identifiers."""
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"Plot `$.plots.{path}` needs a name of 1-{MAX_NAME} characters.")
    problem = _name_problem(path, name)
    if problem is not None:
        raise InvalidInput(problem)
    return name


@functools.lru_cache(maxsize=4096)  # a run sends the same plot paths with every step
def _series_name(path: str) -> str:
    """The checked series name of a plot path under ``plots/metrics/``."""
    name = path.split(METRICS_DIR, 1)[1]
    stem, dot, suffix = name.rpartition(".")
    return _checked_name(path, stem if dot and suffix in {"tsv", "csv", "json", "yaml"} else name)


def _image_name(path: str) -> str:
    # A leading "/" would make the image's URL ambiguous (``/images//a.png``).
    name = path.split(IMAGES_DIR, 1)[1] if IMAGES_DIR in path else path
    return name.lstrip("/")


def _bad_image(body: bytes) -> str:
    """Which image is not base64 (msgspec says only `$.plots[...].image`), read again:
    this runs only for a body refused anyway, whatever else is wrong with it."""
    try:
        plots = msgspec.json.decode(body).get("plots")
        for path, plot in plots.items():
            image = plot.get("image") if isinstance(plot, dict) else None
            if not isinstance(image, str):
                continue
            try:
                binascii.a2b_base64(image, strict_mode=True)
            except (binascii.Error, ValueError):
                return (
                    f"Image `$.plots.{path}.image` is not valid base64; send the PNG"
                    " base64-encoded."
                )
    except Exception:  # (a duplicate key, trailing bytes, deep nesting…): say it plainly
        pass
    return "An image in `$.plots` is not valid base64; send the PNG base64-encoded."


def _series_rows(path: str, name: str, rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    field_name = name.rpartition("/")[2]
    parsed: list[tuple[int, float]] = []
    for i, row in enumerate(rows):
        step = row.get("step")
        if type(step) is not int or step < 0 or step > MAX_STEP:
            raise InvalidInput(
                f"Row {_where(path, i)} needs an integer `step` from 0 to {MAX_STEP}."
            )
        field = field_name
        raw = row.get(field)
        if raw is None:
            # Not named after the file: the row's one other field, for this row only (a
            # later row may name the file's field again).
            others = [k for k in row if k not in {"step", "timestamp"}]
            if not others:
                raise InvalidInput(f"Row {_where(path, i)} has no value besides `step`.")
            field = others[0]
            raw = row[field]
        value = raw if type(raw) is float else parse_number(raw)
        if value is None:
            raise InvalidInput(
                f"Row {_where(path, i)} field `{field}` must be a number or 'nan', 'inf', '-inf'."
            )
        parsed.append((step, value))
    return parsed


def _where(path: str, index: int) -> str:
    return f"`$.plots.{path}.data[{index}]`"


def ingest_job(
    token: str, parsed: ParsedEvent, clock: Callable[[], float]
) -> Callable[[WriteContext], int]:
    """A writer job that authorises the token and applies the event; returns the experiment id.

    The token is checked inside the write transaction (through the writer's cache, which
    every token change clears), so a token deleted a moment ago is refused by the very
    next batch.
    """
    hashed = token_hash(token)

    @shares_deferred
    def job(ctx: WriteContext) -> int:
        now = clock()
        principal = authorize(ctx, hashed, now)
        return apply(ctx, principal.user_id, parsed, now)

    if sum(map(len, parsed.images.values())) >= HEAVY_IMAGES:
        heavy(job)
    return job


OPEN = frozenset({"running", "stopped"})
"""A run that may still be finished by ``finish_job``: it has not reported its end."""


def finish_job(
    token: str, parsed: ParsedEvent, since: float, clock: Callable[[], float]
) -> Callable[[WriteContext], int | None]:
    """A writer job applying a ``done`` to the poster's run only if that run exists and
    posted at ``since`` or later, and (a ``done`` without errors) has not ended; returns
    its id, or None when there was nothing to finish.

    ``livestudio run`` sends it when its command ended: DVCLive's own ``done`` may have
    been lost (the server restarting), and the run would end Stopped though it completed;
    or the command failed, though DVCLive said ``done`` (it does when training raised). A
    command that never used DVCLive gets no empty experiment from it, and an old run of
    the same name (``DVC_EXP_NAME`` reused) is neither turned Completed nor Failed. A
    failure of a script that names its run itself (``Live(exp_name=…)``, which wins over
    the wrapper's ``DVC_EXP_NAME``) goes to the one run of that commit that began since the
    command did and is not named as another wrapped command's would be; with none or
    several, nothing is finished. A success never looks further than the name: a run
    still going would be ended Completed by another command's end.
    """
    hashed = token_hash(token)
    failed = isinstance(parsed.event, DoneEvent) and bool(parsed.event.errors)

    @shares_deferred  # it reads and applies as the ingest job does (no cache to clear)
    def job(ctx: WriteContext) -> int | None:
        now = clock()
        principal = authorize(ctx, hashed, now)
        record = _poster_run(ctx, principal.user_id, parsed)
        target = parsed
        if record is None or record.updated_at < since:
            record = _only_run_since(ctx, principal.user_id, parsed, since) if failed else None
            if record is None:
                return None
            target = msgspec.structs.replace(
                parsed, event=msgspec.structs.replace(parsed.event, name=record.name)
            )
        if not failed and record.status not in OPEN:
            return None
        return apply(ctx, principal.user_id, target, now)

    return job


def _only_run_since(
    ctx: WriteContext, poster_id: int, parsed: ParsedEvent, since: float
) -> ExperimentRecord | None:
    """The poster's one run of the event's commit begun since ``since`` (a run going on
    from before is not this command's), if exactly one was, and not under a name another
    ``livestudio run`` gave (that command reports its own run)."""
    sha = parsed.event.baseline_sha.lower()
    begun = repository.experiments_begun_since(
        ctx.conn, poster_id, parsed.repo_key, sha, since, limit=FINISH_LOOKS_AT
    )
    runs = [run for run in begun if not is_wrapper_name(run.name)]
    return runs[0] if len(runs) == 1 and len(begun) < FINISH_LOOKS_AT else None


FINISH_LOOKS_AT = 50
"""Runs of one commit begun since a command started that ``_only_run_since`` reads (more
than that, and it cannot tell which one is the command's)."""


INVALID_TOKEN = (
    "The access token is invalid or has been revoked; create a new one with"
    " `livestudio token create` or in the TUI profile screen."
)


def _check_scope(principal: repository.Principal) -> None:
    if principal.scopes and INGEST_SCOPE not in principal.scopes:
        raise MissingScope(
            f"This access token lacks the {INGEST_SCOPE} scope needed to send experiments."
        )


async def check_token(db: Reader, token: str) -> None:
    """Refuse an unknown or unscoped token early (before a large body is read).

    The writer checks again inside the transaction, which is what makes a revocation
    take effect at once; this only spares the server work for a stranger's post.
    """
    principal = await repository.token_principal(db, token_hash(token))
    if principal is None:
        raise NotAuthenticated(INVALID_TOKEN)
    _check_scope(principal)


def authorize(ctx: WriteContext, hashed: bytes, now: float) -> repository.Principal:
    """The user behind an access token allowed to send experiments (inside the transaction)."""
    principal = ctx.cache.principals.get(hashed)
    if principal is None:
        principal = repository.token_principal_sync(ctx.conn, hashed)
    if principal is None:
        raise NotAuthenticated(INVALID_TOKEN)
    _check_scope(principal)
    ctx.cache.principals[hashed] = principal
    token_id = principal.token_id or 0
    last_used = ctx.cache.touched.get(token_id, principal.last_used_at)
    if last_used is None or now - last_used > TOUCH_EVERY:
        repository.touch_token(ctx.conn, token_id, now)
        ctx.cache.touched[token_id] = now
    return principal


def _poster_run(ctx: WriteContext, poster_id: int, parsed: ParsedEvent) -> ExperimentRecord | None:
    """The poster's run the event is of, if it exists (through the writer's cache)."""
    event = parsed.event
    identity = (poster_id, parsed.repo_key, event.baseline_sha.lower(), event.name)
    cached = ctx.cache.experiments.get(identity)
    if cached is not None:
        return cached
    found = repository.find_experiment(ctx.conn, *identity)
    return ctx.cache.recall(found) if found is not None else None


def apply(ctx: WriteContext, poster_id: int, parsed: ParsedEvent, now: float) -> int:
    """Apply one validated event for its poster; emits the stream events."""
    event = parsed.event
    sha = event.baseline_sha.lower()
    record = _poster_run(ctx, poster_id, parsed)
    if parsed.points_only and record is not None:
        changed = _store_points(ctx, record.id, parsed.series, now)
        if changed:
            events.points_added(ctx, record, changed)
        return record.id
    went_on, held = False, None
    if record is not None and record.before_start is not None and not isinstance(event, StartEvent):
        after = _after_start(ctx, record, parsed, now)
        if after is None:  # held back, stored with the run (not a value of it yet)
            return record.id
        # Written whole, went on or set aside (the progress write leaves ``before_start``;
        # a run set aside is the new one, inserted whole anyway).
        (record, held), went_on = after, True
    created = record is None or record.id == 0
    if record is None:
        record = _new_run(
            poster_id,
            parsed.repo_key,
            without_credentials(event.repo_url),
            sha,
            event.name,
            event.client,
            now,
        )
    before, subdir_before = record.status, record.subdir
    if held is not None:  # the post held back, before this one
        _merge(record, held, now)
    change = _merge(record, event, now)
    if went_on:
        change = Change.FULL
    if isinstance(event, DataEvent) and parsed.series:
        change = _reach_rows(record, parsed.series, change, now)
    moved = not created and record.subdir != subdir_before
    # A post that only proves the run is alive (DVCLive's plot-rows post) is not worth a
    # row write and a full-row event each time: its points event shows the activity, and
    # updated_at is written at least every UPDATED_AT_PRECISION seconds for stale checks.
    write_row = change is not Change.NONE or now - record.saved_updated_at >= UPDATED_AT_PRECISION
    if created:
        repository.insert_experiment(ctx.conn, record)
        _ensure_visible(ctx, record, record.repo_url)
    elif change is Change.FULL:
        repository.update_experiment(ctx.conn, record)
        if moved:  # another sub-project's run now: it must still show somewhere
            _ensure_visible(ctx, record, record.repo_url)
            events.experiment_moved(ctx, record, subdir_before)
    if created or write_row:
        record.saved_updated_at = record.updated_at
    ctx.cache.remember(record)
    changed = _store_points(ctx, record.id, parsed.series, now)
    step = event.step if isinstance(event, DataEvent) else record.step or 0
    for path, png in parsed.images.items():
        repository.upsert_image(ctx.conn, record.id, path, step, png, now)
    if created or change is Change.FULL:
        counts_changed = created or moved or before != record.status
        events.experiment_changed(ctx, record, counts_changed=counts_changed)
    elif write_row:
        ctx.progress(record)  # written with the batch's other progress (see WriteContext)
    if changed or parsed.images:
        # A viewer refetches an image by its path: the event names the images just stored.
        events.points_added(ctx, record, changed, dict.fromkeys(parsed.images, step))
    if record.status != "running":  # it ended: its next post, if any, reads it again
        ctx.ended(record)
    return record.id


def _new_run(
    poster_id: int,
    repo_key: str,
    repo_url: str,
    sha: str,
    name: str,
    client: str,
    now: float,
    **known: Any,
) -> ExperimentRecord:
    """A run's record before its first write (``id`` 0): running since ``now``."""
    return ExperimentRecord(
        id=0,
        poster_id=poster_id,
        repo_key=repo_key,
        repo_url=repo_url,
        baseline_sha=sha,
        name=name,
        client=client,
        status="running",
        started_at=now,
        updated_at=now,
        **known,
    )


def _after_start(
    ctx: WriteContext, record: ExperimentRecord, parsed: ParsedEvent, now: float
) -> tuple[ExperimentRecord, DataEvent | None] | None:
    """Decide what the ``start`` before this post began (``_verdict``): the run this post
    goes to (a new one, not stored yet, if the name was run anew) and the post held back
    before it. None: this post is held back with the run.
    """
    kept = record.before_start
    assert kept is not None
    verdict = _verdict(record, parsed)
    if verdict is None:
        kept.held = msgspec.json.encode(parsed.event)
        record.updated_at = now
        repository.update_experiment(ctx.conn, record)
        ctx.cache.remember(record)
        return None
    held = _held(kept)
    if verdict is Verdict.ANEW:
        return _set_aside(ctx, record, now), held
    record.before_start = None  # resumed (or its start sent again): it goes on
    return record, held


class Verdict(enum.Enum):
    """What the post after a ``start`` tells of it (``_verdict``)."""

    ANEW = "anew"
    """The name run anew: the earlier run is set aside."""
    SAME = "same"
    """The same run, resumed (or its start sent again)."""


def _verdict(record: ExperimentRecord, parsed: ParsedEvent) -> Verdict | None:
    """Whether the ``start`` before this post began the name anew; None: this post cannot
    tell, the next one will (``apply`` holds it back until then).

    DVCLive posts a step's metrics, then its plot rows. Resumed (``resume=True``), it
    re-sends its folder's rows from the first step in its first rows post, and goes on
    past the last step or from a checkpoint's; run anew, its folder starts empty, so its
    first rows are of its own step only, at a step the experiment had reached. A run that
    logs no plot rows tells only by its step: anew from step 0; an earlier run that ended
    before it logged a step leaves nothing to resume. A ``done`` straight after
    the ``start`` is of a run that logged nothing.
    """
    event = parsed.event
    kept = record.before_start
    assert kept is not None
    if isinstance(event, DoneEvent):
        held = _held(kept)
        return Verdict.ANEW if held is None or held.step == 0 else Verdict.SAME
    assert isinstance(event, DataEvent)
    if record.step is None:  # the earlier run ended before it logged a step
        return Verdict.ANEW
    if event.step > record.step:
        return Verdict.SAME
    files = {*(event.metrics or {}), *(event.params or {})}
    if files and files.isdisjoint({*record.metrics, *kept.params}):
        # Another `Live` of the same command, in a folder of its own (its files are
        # named by it), under the one name ``livestudio run`` gives both: the same run.
        return Verdict.SAME
    if any(parsed.series.values()):
        resent = any(step < event.step for rows in parsed.series.values() for step, _ in rows)
        return Verdict.SAME if resent else Verdict.ANEW
    if kept.held is None:
        return None  # (a step's metrics: its rows come next)
    return Verdict.ANEW if event.step == 0 else Verdict.SAME


def _ran(record: ExperimentRecord) -> bool:
    """Whether a ``start`` for this run may be of its name run anew: it logged a step, or
    its client ended it before it did (a failure before DVCLive posted, kept as such, not
    merged into the next run). One that logged nothing and never said it ended (killed
    before its first step, swept as Stopped) holds nothing to keep: the next run of its name
    takes it up, as does one marked failed by hand (a first stage that seemed stuck: the
    run DVCLive then begins is the same one, with the params DVC's ``start`` gave it)."""
    if record.step is not None:
        return True
    by_hand = bool(record.errors) and record.errors[-1].cls == status.MARKED_FAILED
    return record.status in ("completed", "failed") and not by_hand


def _held(kept: BeforeStart) -> DataEvent | None:
    """The post held back after a ``start`` until the next one tells what it began."""
    if kept.held is None:
        return None
    event = decode_live_event(kept.held)
    assert isinstance(event, DataEvent)
    return event


def _set_aside(ctx: WriteContext, record: ExperimentRecord, now: float) -> ExperimentRecord:
    """Keep the earlier run of a name run anew under a name of its own, ``name (1)``, with
    what the new run's ``start`` changed given back; returns the new run's record, with
    what its start said (not stored yet).

    Its points stay its own: merged with the new run's, the new steps overwrote the old
    ones and the old run's later steps followed on from them (0.33 at step 2, then 25).
    """
    kept = record.before_start
    assert kept is not None
    new = _new_run(
        record.poster_id,
        record.repo_key,
        record.repo_url,
        record.baseline_sha,
        record.name,
        record.client,
        now,
        message=record.message,
        subdir=record.subdir,
        machine=record.machine,
        params=kept.start_params,
    )
    name = _set_aside_name(ctx, record)
    ctx.cache.forget(record)
    before, subdir = record.status, record.subdir
    status.restore(record, kept, now)
    record.before_start = None
    record.name = name
    repository.rename_experiment(ctx.conn, record)
    if record.subdir != subdir:  # the new run's start had moved it: back where it was
        _ensure_visible(ctx, record, record.repo_url)
        events.experiment_moved(ctx, record, subdir)
    events.experiment_changed(ctx, record, counts_changed=before != record.status)
    return new


def _set_aside_name(ctx: WriteContext, record: ExperimentRecord) -> str:
    """``name (n)``, n one above the poster's highest for this name and commit; a name too
    long for its number loses its end."""
    number = 1 + repository.last_set_aside(
        ctx.conn, record.poster_id, record.repo_key, record.baseline_sha, record.name, MAX_NAME
    )
    suffix = f" ({number})"
    name = record.name[: MAX_NAME - len(suffix)] + suffix
    if repository.find_experiment(
        ctx.conn, record.poster_id, record.repo_key, record.baseline_sha, name
    ):  # (another run took this name for itself)
        raise InvalidInput(
            f"`$.name` was run again, and its earlier run cannot keep a name of its own"
            f" ({name!r} is taken); name the new run otherwise."
        )
    return name


def _store_points(
    ctx: WriteContext, experiment_id: int, series: dict[str, list[tuple[int, float]]], now: float
) -> dict[str, list[tuple[int, float | None]]]:
    """Store the rows of every series; returns the new or changed rows by series name.

    The usual post, a few new steps past each series' end, is appended to the points log
    (one page written, whatever the number of series). Anything else (a re-sent row, a
    history) is filed straight into the points after the log, so the latest row wins and
    an unchanged re-send is not reported again.
    """
    if not series:
        return {}
    ids: dict[str, int] = {}
    tops: dict[int, int | None] = {}
    for name in series:
        key = (experiment_id, name)
        series_id = ctx.cache.series.get(key)
        if series_id is None:
            series_id = repository.series_id(ctx.conn, experiment_id, name)
            ctx.cache.remember_series(experiment_id, name, series_id)
        ids[name] = series_id
        top = ctx.cache.series_top.get(series_id)
        tops[series_id] = repository.series_max_step(ctx.conn, series_id) if top is None else top
    appended, count = _appended(series, ids, tops)
    if appended and count <= LOG_MAX_ROWS:
        repository.log_points(
            ctx.conn,
            [(ids[name], step, value) for name, rows in series.items() for step, value in rows],
            now,
        )
        changed: dict[str, list[tuple[int, float | None]]] = {
            name: list(rows) for name, rows in series.items() if rows
        }
        for name, rows in changed.items():
            ctx.cache.series_top[ids[name]] = rows[-1][0]
        if _count_logged(ctx, count) >= FILE_AT:
            filed = repository.file_points(ctx.conn, FILE_CHUNK)
            ctx.cache.logged_points = (ctx.cache.logged_points or 0) - filed
        return changed
    _file(ctx)
    stored = repository.upsert_points_many(
        ctx.conn,
        [(ids[name], step, value) for name, rows in series.items() for step, value in rows],
        now,
    )
    changed = {}
    for name, series_id in ids.items():
        new_rows = stored.get(series_id)
        top = tops[series_id]
        if new_rows:
            changed[name] = new_rows
            ctx.cache.series_top[series_id] = repository.summarise_changes(
                ctx.conn,
                series_id,
                top,
                {step >> repository.BLOCK_BITS for step, _ in new_rows},
                max(step for step, _ in new_rows),
            )
        elif top is not None:
            ctx.cache.series_top[series_id] = top
    return changed


def _appended(
    series: dict[str, list[tuple[int, float]]], ids: dict[str, int], tops: dict[int, int | None]
) -> tuple[bool, int]:
    """Whether every row is a new step past its series' end, in order; and the row count."""
    count = 0
    for name, rows in series.items():
        count += len(rows)
        top = tops[ids[name]]
        last = -1 if top is None else top
        for step, _ in rows:
            if step <= last:
                return False, count
            last = step
    return True, count


def _count_logged(ctx: WriteContext, added: int) -> int:
    logged = ctx.cache.logged_points
    if logged is None:  # forgotten with the rest of the cache: count again
        logged = repository.logged_points(ctx.conn)
    else:
        logged += added
    ctx.cache.logged_points = logged
    return logged


def _file(ctx: WriteContext) -> None:
    """File the points log now (the summaries it updates are not cached)."""
    if ctx.cache.logged_points != 0:
        repository.file_points(ctx.conn)
        ctx.cache.logged_points = 0


@cache_safe
def file_points_job(ctx: WriteContext) -> int:
    """A writer job that files the points log; returns how many rows it filed."""
    filed = repository.file_points(ctx.conn)
    ctx.cache.logged_points = 0
    return filed


class Change(enum.Enum):
    """What merging an event changed in an experiment's row."""

    NONE = "none"
    """Only ``updated_at``."""
    PROGRESS = "progress"
    """Only what every step changes: step and metrics (the cheap row write)."""
    FULL = "full"
    """Anything else: status, params, message, machine, errors..."""


def _merge(record: ExperimentRecord, event: LiveEvent, now: float) -> Change:
    """Apply the event to the record; says what changed besides ``updated_at``."""
    # Kept until the post after it tells whether this start is of the name run anew
    # (``_set_aside``) or of the same run resumed. A start sent twice keeps the run as the
    # first found it, and the params the latest brought.
    full = False
    if isinstance(event, StartEvent) and _ran(record):
        full = True  # (``before_start`` is written with the row)
        if record.before_start is None:
            record.before_start = status.before_start(record, event)
        else:
            record.before_start.start_params = dict(event.params or {})
    record.updated_at = now
    before = _settled(record)
    step_before = record.step
    progress = False
    if status.resumes(record, event):
        status.resume(record)
    if isinstance(event, StartEvent):
        # A new run (or a resumed one) under this name: its steps may start again at 0,
        # so the newest-step guards on metrics and params start again too.
        if record.metrics_step is not None or record.params_step is not None:
            record.metrics_step = record.params_step = None
            full = True
        record.forget_rate()
        record.client = event.client
        if event.message is not None:
            record.message = event.message
        if event.subdir:
            record.subdir = subdir_key(event.subdir)
    event_step = event.step if isinstance(event, DataEvent) else None
    # A late, re-sent post must not overwrite newer params with older ones either.
    late = event_step is not None and (record.params_step or 0) > event_step
    for file, tree in (event.params or {}).items():
        if tree and not late:
            old = record.params.get(file, {})
            if tree == old:
                continue  # DVCLive re-sends the same params with every step
            merged = _deep_merge(old, tree)
            if merged != old:
                record.params[file] = merged
                if event_step is not None:
                    record.params_step = max(record.params_step or 0, event_step)
                full = True
    if event.machine:
        record.machine = event.machine
    if event.errors:
        record.errors = list(event.errors)
    if event_step is not None:
        record.step = event_step if record.step is None else max(record.step, event_step)
        if record.step != step_before:
            record.note_step(now)
    if event.metrics:
        metrics_step = event_step if event_step is not None else record.step
        # A late, re-sent post must not overwrite the latest values with older ones.
        if record.metrics_step is None or (metrics_step or 0) >= record.metrics_step:
            tree = metrics_tree(event.metrics)
            if any(record.metrics.get(f) != t for f, t in tree.items()):
                record.metrics.update(tree)
                progress = True
            record.metrics_step = metrics_step
    if isinstance(event, DoneEvent):
        status.finish(record, event, now)
    if full or isinstance(event, DoneEvent) or before != _settled(record):
        return Change.FULL
    return Change.PROGRESS if progress or record.step != step_before else Change.NONE


def _reach_rows(
    record: ExperimentRecord, series: dict[str, list[tuple[int, float]]], change: Change, now: float
) -> Change:
    """The run's step is at least its newest plot row's.

    A run that raised after logging a step's metrics, before ``next_step()``, has DVCLive
    post that step's rows (and its latest metrics) under the step before: the table said
    59 with the plots and the values at 60.
    """
    top = max((step for rows in series.values() for step, _ in rows), default=None)
    if top is None or (record.step is not None and top <= record.step):
        return change
    record.step = top
    record.note_step(now)
    return Change.PROGRESS if change is Change.NONE else change


def _settled(record: ExperimentRecord) -> tuple[object, ...]:
    """The fields besides params that rarely change once a run is going."""
    return (
        record.status,
        record.message,
        record.subdir,
        record.client,
        record.machine,
        record.errors,
        record.done_step,
        record.finished_at,
        record.experiment_rev,
    )


def _deep_merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _ensure_visible(ctx: WriteContext, record: ExperimentRecord, repo_url: str) -> None:
    """No accepted data is ever invisible: give the poster a project for the repo if needed."""
    if repository.project_ids_showing(ctx.conn, record.repo_key, record.subdir, record.poster_id):
        return
    ctx.flush()  # a new member's stream starts after the newest event id, written ones only
    quotas.check_may_own_another(ctx, record.poster_id)
    repository.insert_project(
        ctx.conn,
        name=repo_name(repo_url),
        repo_url=repo_url,
        repo_key=record.repo_key,
        subdir=None,
        owner_id=record.poster_id,
    )
