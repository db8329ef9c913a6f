"""``POST /webhook/dvc``: what ``dvc exp push`` sends after pushing experiments."""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, post
from litestar.params import JSONBody

from backend.api.deps import BackendDep
from backend.api.guards import bearer_token, token_first
from backend.services import push


class Refs(msgspec.Struct, frozen=True):
    """Experiment refs that were pushed or removed."""

    pushed: list[str] = []
    removed: list[str] = []


class Notification(msgspec.Struct, frozen=True):
    """DVC's notification body."""

    repo_url: str
    refs: Refs
    client: str = "dvc"


class Recorded(msgspec.Struct, frozen=True):
    """How many experiments changed."""

    status: str
    pushed: int
    removed: int


class WebhookController(Controller):
    """DVC's push notifications."""

    @post("/webhook/dvc", status_code=200, guards=[token_first])
    async def notify(
        self, request: Request, data: JSONBody[Notification], backend: BackendDep
    ) -> Recorded:
        """Record which experiments were pushed; the TUI marks them."""
        counts = await push.notify(
            backend.writer,
            bearer_token(request),
            data.repo_url,
            data.refs.pushed,
            data.refs.removed,
            backend.clock(),
        )
        return Recorded(status="ok", **counts)
