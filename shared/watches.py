"""Watches and alerts on the wire: what a user asks the server to watch for, and firings.

The condition is evaluated by the server (``backend.services.watcher``); the same
``describe`` text is shown in the TUI, in alert messages and in webhook posts.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from shared.api import ExperimentRow, Id
from shared.text import control_problem
from shared.values import parse_number

WatchKind = Literal["status", "nonfinite", "threshold", "stalled"]
Op = Literal["<", "<=", ">", ">="]
EndStatus = Literal["failed", "stopped", "completed"]
END_STATUSES: tuple[EndStatus, ...] = ("failed", "stopped", "completed")
MetricName = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
WebhookUrl = Annotated[str, msgspec.Meta(max_length=2048)]
DEFAULT_STALL_FACTOR = 5.0
STALL_FACTORS = (1.5, 1000.0)
"""The least and the most times its usual step interval a run may be silent for a watch."""
MIN_STALL_SECONDS = 3.0
"""A run is never called stalled sooner than this after its last step (network jitter)."""


def is_stalled(row: ExperimentRow, now: float) -> bool:
    """Running, yet silent for several times its usual step interval (long before the
    sweep calls it Stopped): what the TUI and ``ssh … ls`` show as "◌ stalled"."""
    if row.status != "running" or not row.steps_per_s:
        return False
    silent = now - row.updated_at.timestamp()
    return silent > max(DEFAULT_STALL_FACTOR / row.steps_per_s, MIN_STALL_SECONDS)


class WatchCondition(msgspec.Struct, frozen=True, kw_only=True):
    """What a watch waits for."""

    kind: WatchKind
    metric: MetricName | None = None
    """``threshold``: the metric compared; ``nonfinite``: the metric (None: any metric)."""
    op: Op | None = None
    threshold: float | None = None
    statuses: list[EndStatus] = []
    """``status``: the statuses that fire it (empty: Failed)."""
    factor: float | None = None
    """``stalled``: silent for this many times the run's usual step interval."""

    def describe(self) -> str:
        """The condition in a few words (``val/loss < 0.1``, ``status becomes failed``)."""
        if self.kind == "status":
            return "status becomes " + " or ".join(self.statuses or ["failed"])
        if self.kind == "nonfinite":
            return f"{self.metric or 'any metric'} is NaN or infinite"
        if self.kind == "threshold":
            return f"{self.metric} {self.op} {self.threshold:g}"
        return f"no new step for {self.factor or DEFAULT_STALL_FACTOR:g}x its usual interval"

    def crossed(self, value: object) -> bool:
        """Whether a metric value meets a ``threshold`` condition (NaN never does)."""
        number = parse_number(value)
        if number is None or math.isnan(number) or self.threshold is None:
            return False
        limit = self.threshold
        return {
            "<": number < limit,
            "<=": number <= limit,
            ">": number > limit,
            ">=": number >= limit,
        }.get(self.op or "<", False)


class WatchCreate(WatchCondition, frozen=True, kw_only=True):
    """Body of ``POST /api/watches``: a condition on one experiment or a whole project."""

    experiment_id: Id | None = None
    project_id: Id | None = None
    webhook_url: WebhookUrl | None = None
    """Also post each firing here (Slack- and Discord-compatible JSON)."""


class WatchInfo(WatchCreate, frozen=True, kw_only=True):
    """A stored watch."""

    id: int
    target: str
    """The experiment's or the project's name."""
    created_at: datetime


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt to post an alert to its watch's webhook."""

    attempt: int
    at: datetime
    status: int | None = None
    """The HTTP status the receiver answered (None: no answer)."""
    error: str | None = None
    """Why the attempt failed (None: delivered)."""


class AlertInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One firing of a watch, as the ``alert`` event and ``GET /api/alerts`` show it."""

    id: int
    watch_id: int | None
    experiment_id: int
    experiment_name: str
    project_id: int | None
    fired_at: datetime
    title: str
    """One line: what happened to which run."""
    detail: str
    """Which watch fired, and the value or status that fired it."""
    webhook: bool = False
    """Whether the watch posts to a webhook (``deliveries`` log the attempts)."""
    deliveries: list[Delivery] = []


class BaselineSet(msgspec.Struct, frozen=True):
    """Body of ``PUT /api/projects/{id}/baseline``."""

    experiment_id: Id


class Baseline(msgspec.Struct, frozen=True):
    """The experiment a user compares a project's runs against (None: no baseline)."""

    experiment_id: int | None = None


def webhook_url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, in a sentence; None when it is a usable one.

    (Where it points is checked when it is posted to: see ``backend.services.webhooks``.)
    """
    if control_problem("The webhook URL", url) is not None or any(c.isspace() for c in url):
        return "The webhook URL must be one plain http(s) URL without spaces."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
        host = parts.hostname or ""
        host.encode("idna")
    except (ValueError, UnicodeError):
        return "The webhook URL is not a valid URL; copy it again from your chat's settings."
    if parts.scheme not in ("http", "https") or not host:
        return (
            "The webhook URL must start with https:// (or http://) and name a host,"
            " as Slack's and Discord's incoming webhooks do."
        )
    if parts.username is not None or parts.password is not None:
        return "The webhook URL must not hold a user name or password."
    return None
