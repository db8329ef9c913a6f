"""The Studio live-metrics protocol (``POST /api/live``) as msgspec Structs.

Field names and shapes follow what the released DVCLive and DVC clients send
(see the team's PROTOCOL.md); unknown fields are ignored so newer clients keep working.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any, Literal

import msgspec

MAX_STEP = 2**53
"""The highest step accepted: every step is exact as a float (plots, JSON clients) and
block arithmetic stays far from the 64-bit limit of the storage engines."""
MAX_ERRORS = 100

Sha = Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{40}$")]
MAX_NAME = 255
"""The longest experiment name (in characters)."""
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
Step = Annotated[int, msgspec.Meta(ge=0, le=MAX_STEP)]
Client = Literal["dvclive", "dvc"]
RepoUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Short = Annotated[str, msgspec.Meta(max_length=1024)]


class ErrorInfo(msgspec.Struct, frozen=True):
    """One error a client reports for its run."""

    cls: Annotated[str, msgspec.Meta(max_length=255)] = ""
    text: Annotated[str, msgspec.Meta(max_length=65_536)] = ""


class Plot(msgspec.Struct, frozen=True):
    """One plot file: metric rows (``data``) or a base64 PNG (``image``).

    ``image`` is decoded from base64 by msgspec as it reads the body, strictly (padding,
    no line breaks), at ~1.5 GB/s: Python's ``b64decode`` took ~30 ms for each 10 MB
    image, with every other request waiting."""

    data: list[dict[str, Any]] | None = None
    image: bytes | None = None
    props: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class _Event(msgspec.Struct, frozen=True, tag_field="type"):
    repo_url: RepoUrl
    baseline_sha: Sha
    name: Name
    client: Client
    params: dict[Short, dict[str, Any]] | None = None
    metrics: dict[Short, dict[str, Any]] | None = None
    machine: dict[str, Any] | None = None
    errors: Annotated[list[ErrorInfo], msgspec.Meta(max_length=MAX_ERRORS)] | None = None
    env: dict[str, Any] | None = None


class StartEvent(_Event, frozen=True, tag="start"):
    """A run began; ``message`` is the commit-title-like description."""

    message: Short | None = None
    subdir: Short | None = None


class DataEvent(_Event, frozen=True, tag="data", kw_only=True):
    """A step's latest metrics/params, or its new plot rows and images.

    ``step`` is required, as DVC's own client requires it.
    """

    step: Step
    plots: dict[Short, Plot] | None = None


class DoneEvent(_Event, frozen=True, tag="done"):
    """The run ended; ``experiment_rev`` is the saved experiment commit, if any."""

    experiment_rev: Sha | None = None


LiveEvent = StartEvent | DataEvent | DoneEvent

_decoder = msgspec.json.Decoder(LiveEvent)


def decode_live_event(body: bytes) -> LiveEvent:
    """Decode one request body; raises ``msgspec.DecodeError`` naming the offending field."""
    return _decoder.decode(body)


WRAPPER_NAME = re.compile(r"run-[0-9a-f]{6}")
"""The name ``livestudio run`` gives its command's run when nothing else does."""


def new_wrapper_name() -> str:
    """A name of ``WRAPPER_NAME``'s shape, for a wrapped command's run (``DVC_EXP_NAME``
    unset)."""
    return f"run-{secrets.token_hex(3)}"


def is_wrapper_name(name: str) -> bool:
    """Whether ``name`` has the shape of a name ``livestudio run`` gave (``run-1a2b3c``):
    the run of another wrapped command, never found for this one by ``/api/live/finish``."""
    return WRAPPER_NAME.fullmatch(name) is not None
