"""``POST /webhook/dvc``: what ``dvc exp push`` sends after pushing experiments."""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, post
from litestar.params import JSONBody

from backend.api.deps import BackendDep
from backend.api.live import MISSING_TOKEN
from backend.services import push
from backend.services.accounts import parse_authorization
from backend.services.errors import NotAuthenticated


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

    @post("/webhook/dvc", status_code=200)
    async def notify(
        self, request: Request, data: JSONBody[Notification], backend: BackendDep
    ) -> Recorded:
        """Record which experiments were pushed; the TUI marks them."""
        token = parse_authorization(request.headers.get("authorization"))
        if token is None:
            raise NotAuthenticated(MISSING_TOKEN)
        counts = await push.notify(
            backend.writer,
            token,
            data.repo_url,
            data.refs.pushed,
            data.refs.removed,
            backend.clock(),
        )
        return Recorded(status="ok", **counts)
