"""The small form ``!`` opens: what to watch for, on this experiment or the whole project."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from shared.watches import (
    DEFAULT_STALL_FACTOR,
    STALL_FACTORS,
    WatchCondition,
    WatchCreate,
    WatchInfo,
    webhook_url_problem,
)
from tui.sanitize import plain
from tui.screens.dialogs import SendingDialog

WHEN = (
    ("failed", "its status becomes Failed"),
    ("ended", "its status becomes Failed or Stopped"),
    ("completed", "its status becomes Completed"),
    ("nonfinite", "a value is NaN or infinite"),
    ("threshold", "a value crosses a threshold"),
    ("stalled", "no new step for N times its usual interval"),
)
HINTS = {
    "failed": "",
    "ended": "",
    "completed": "",
    "nonfinite": "the metric (blank: any metric)",
    "threshold": "metric, comparison, value: val/loss < 0.1",
    "stalled": f"N (default {DEFAULT_STALL_FACTOR:g})",
}
_THRESHOLD = re.compile(r"^\s*(.+?)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class WatchTarget:
    """What the form was opened on: an experiment of a project, or (when a watch is
    changed) only what that watch is on."""

    experiment_id: int | None
    experiment_name: str
    project_id: int | None
    project_name: str
    metric: str | None = None
    value: float | None = None
    """The metric's value now: the form suggests an alert once it gets better than that."""
    lower_better: bool = True
    known_metrics: frozenset[str] = frozenset()
    """The metrics the project's experiments log (empty: not known, no check)."""


def unknown_metric(watch: WatchCreate, known: frozenset[str]) -> str | None:
    """What to say when the watch names a metric no experiment logs (a typo can never
    fire); None when it is known, or nothing is known to check it against."""
    if not known or watch.metric is None or watch.metric in known:
        return None
    close = difflib.get_close_matches(watch.metric, sorted(known), n=1)
    guess = f" Did you mean {close[0]}?" if close else ""
    return (
        f"No experiment here logs {watch.metric} (yet).{guess} Save again to watch for it anyway."
    )


def target_of(watch: WatchInfo) -> WatchTarget:
    """What a stored watch is on (changing a watch keeps its experiment or project)."""
    if watch.experiment_id is not None:
        return WatchTarget(watch.experiment_id, watch.target, None, "")
    return WatchTarget(None, "", watch.project_id, watch.target)


_STATUS_CHOICES = {
    ("failed",): "failed",
    ("failed", "stopped"): "ended",
    ("completed",): "completed",
}
_STATUSES = "status:"
"""A choice for any other set of statuses (made through the API): ``status:a,b``."""


def form_of(watch: WatchCondition) -> tuple[str, str]:
    """The form's choice and condition text that ``build_watch`` turns back into ``watch``."""
    if watch.kind == "status":
        statuses = tuple(sorted(set(watch.statuses or ["failed"])))
        return _STATUS_CHOICES.get(statuses, _STATUSES + ",".join(statuses)), ""
    if watch.kind == "nonfinite":
        return "nonfinite", watch.metric or ""
    if watch.kind == "threshold":
        return "threshold", f"{watch.metric} {watch.op} {_exact(watch.threshold or 0.0)}"
    return "stalled", _exact(watch.factor or DEFAULT_STALL_FACTOR)


def when_choices(when: str) -> list[tuple[str, str]]:
    """The form's choices (label, key), with ``when`` among them."""
    choices = [(label, key) for key, label in WHEN]
    if when.startswith(_STATUSES):
        statuses = " or ".join(when.removeprefix(_STATUSES).split(","))
        choices.insert(0, (f"its status becomes {statuses}", when))
    return choices


def _exact(number: float) -> str:
    """The number as written back exactly (``:g`` would round it to 6 digits)."""
    text = repr(number)
    return text.removesuffix(".0")


def build_watch(
    when: str, scope: str, condition: str, webhook: str, target: WatchTarget
) -> WatchCreate:
    """The watch the form describes; ``ValueError`` says what to fix."""
    fields: dict[str, object] = {
        "experiment_id" if scope == "experiment" else "project_id": (
            target.experiment_id if scope == "experiment" else target.project_id
        ),
        "webhook_url": webhook.strip() or None,
    }
    condition = condition.strip()
    if when in ("failed", "completed"):
        fields.update(kind="status", statuses=[when])
    elif when == "ended":
        fields.update(kind="status", statuses=["failed", "stopped"])
    elif when.startswith(_STATUSES):
        fields.update(kind="status", statuses=when.removeprefix(_STATUSES).split(","))
    elif when == "nonfinite":
        fields.update(kind="nonfinite", metric=condition or None)
    elif when == "threshold":
        match = _THRESHOLD.match(condition)
        if match is None:
            raise ValueError("Write the threshold as metric, comparison, value: val/loss < 0.1")
        metric, op, raw = match.groups()
        fields.update(kind="threshold", metric=metric, op=op, threshold=_number(raw))
    else:
        factor = _number(condition) if condition else DEFAULT_STALL_FACTOR
        fields.update(kind="stalled", factor=factor)
    webhook_url = fields["webhook_url"]
    if isinstance(webhook_url, str):
        problem = webhook_url_problem(webhook_url)
        if problem is not None:
            raise ValueError(problem)
    if fields.get("kind") == "stalled":
        low, high = STALL_FACTORS
        if not low <= float(fields["factor"]) <= high:  # type: ignore[arg-type]
            raise ValueError(f"N must be between {low:g} and {high:g} (times the interval).")
    try:
        return msgspec.convert(fields, WatchCreate)
    except msgspec.ValidationError as exc:
        raise ValueError(f"That watch is not valid: {exc}.") from None


def _number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number.") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number; give one like 0.1 or 1e-3.")
    return number


class WatchDialog(SendingDialog[WatchCreate | None]):
    """Pick a condition and a scope; ``enter`` in the last field or Watch saves it.

    Given ``editing`` (a stored watch), the form starts from it and keeps its scope.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        target: WatchTarget,
        editing: WatchInfo | None = None,
        send: Callable[[WatchCreate], Awaitable[object]] | None = None,
    ) -> None:
        """``send``: saves the watch from the form, which stays open with the server's
        reason while it is refused (a webhook URL it will not call, say)."""
        super().__init__()
        self.target = target
        self.editing = editing
        self._send = send
        self._warned_about: str | None = None

    def compose(self) -> ComposeResult:
        target = self.target
        when = "threshold" if target.metric else "failed"
        condition = ""
        if target.metric:
            # Better than now, exactly: a value rounded for display could already be
            # past it, and the watch would fire the moment it is made.
            op = "<" if target.lower_better else ">"
            now = "" if target.value is None else _exact(target.value)
            condition = f"{target.metric} {op} {now}".strip()
        if self.editing is not None:
            when, condition = form_of(self.editing)
        # What each kind's box starts with: its text fits one kind only (a threshold's
        # "loss < 0.1" is no stall factor), so changing the kind changes the text too.
        self.starts = {when: condition}
        if target.metric:
            self.starts["nonfinite"] = target.metric
        self.kind = when
        scopes = []
        if target.experiment_id is not None:
            scopes.append((plain(f"experiment {target.experiment_name}"), "experiment"))
        if target.project_id is not None:
            scopes.append((plain(f"any experiment of {target.project_name}"), "project"))
        with Vertical(classes="dialog", id="watch-form"):
            yield Label("Alert me when")
            yield Select(when_choices(when), value=when, allow_blank=False, id="when")
            yield Select(scopes, value=scopes[0][1], allow_blank=False, id="scope")
            box = Input(condition, placeholder=HINTS.get(when, ""), id="condition")
            box.border_title = "condition (enter: to the webhook)"
            yield box
            webhook = Input(
                self.editing.webhook_url or "" if self.editing else "",
                placeholder="also post to a webhook URL (optional)",
                id="webhook",
            )
            webhook.border_title = "webhook URL, optional (enter saves)"
            yield webhook
            yield Label("", id="problem", classes="hint problem")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Save" if self.editing else "Watch", variant="primary", id="save")

    def on_mount(self) -> None:
        self._hint()
        # Opened on a metric, the threshold is what is to be typed: in the "when" selector
        # typed keys did nothing. On a status, choosing is all there is to do.
        box = self.query_one("#condition", Input)
        (box if box.display else self.query_one("#when", Select)).focus()

    @on(Select.Changed, "#when")
    def _hint(self) -> None:
        when = str(self.query_one("#when", Select).value)
        box = self.query_one("#condition", Input)
        if when != self.kind:
            self.starts[self.kind] = box.value  # kept, should the kind come back
            box.value = self.starts.get(when, "")
            self.kind = when
        box.placeholder = HINTS.get(when, "")
        box.display = bool(HINTS.get(when, ""))  # a status needs no condition: no empty box

    @on(Input.Changed, "#condition")
    def _forget_question(self) -> None:
        # What it said was about the condition as it was ("Did you mean train/loss?"
        # stayed after the typo was corrected); a typo typed again is asked about again.
        self._warned_about = None
        if not self.sending:
            self.query_one("#problem", Label).update("")

    @on(Input.Changed, "#webhook")
    def _forget_refusal(self) -> None:
        if not self.sending and self._warned_about is None:  # (a question stays)
            self.query_one("#problem", Label).update("")

    @on(Input.Submitted, "#condition")
    def _next(self) -> None:
        self.query_one("#webhook", Input).focus()

    @on(Input.Submitted, "#webhook")
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        try:
            watch = build_watch(
                str(self.query_one("#when", Select).value),
                str(self.query_one("#scope", Select).value),
                self.query_one("#condition", Input).value,
                self.query_one("#webhook", Input).value,
                self.target,
            )
        except ValueError as exc:
            self.query_one("#problem", Label).update(str(exc))
            self._to_fix("#webhook" if "webhook" in str(exc).lower() else "#condition")
            return
        warning = unknown_metric(watch, self.target.known_metrics)
        if warning is not None and watch.metric != self._warned_about:
            self._warned_about = watch.metric  # a second save means it
            self.query_one("#problem", Label).update(plain(warning))
            self._to_fix("#condition")
            return
        send = self._send
        self.answer(watch, None if send is None else lambda: send(watch))

    def _to_fix(self, field: str) -> None:
        """Focus the field a problem is about (focus stayed where save was pressed, and
        keys meant to correct a typo went elsewhere)."""
        box = self.query_one(field, Input)
        if box.display:
            box.focus()
            box.cursor_position = len(box.value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.close(None)
