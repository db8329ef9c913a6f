"""``POST /api/live`` in the OpenAPI document.

Litestar documents the handlers it dispatches itself; ``/api/live`` is a plain ASGI handler
(see ``backend.api.live``), so its operation is written here from the same msgspec
structs that decode it, when the document is first served.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Litestar, Request
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    PathItem,
    RequestBody,
    Schema,
)

from shared.api import LiveAccepted
from shared.live import LiveEvent

_REFS = "#/components/schemas/{name}"
_REFUSALS = {
    "400": "the body is not JSON or not the protocol; `detail` names the field",
    "401": "no token, or an invalid or revoked one",
    "403": "the token lacks the EXPERIMENTS scope",
    "413": "over 30 MB, more than 200 plots, or an image over 10 MB",
    "503": "the database is busy elsewhere; retry after `Retry-After`",
    "507": "the server's disk is full",
}


def _json(schema: dict[str, Any]) -> dict[str, OpenAPIMediaType]:
    return {"application/json": OpenAPIMediaType(schema=cast(Schema, schema))}


def add_live_once(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of the schema's routes: the document is built (~0.1 s) when it is
    first asked for, not at every start of every process."""
    paths = request.app.openapi_schema.paths
    if not paths or "/api/live" not in paths:
        document_live(request.app)


def document_live(app: Litestar) -> None:
    """Add the live endpoint to the app's OpenAPI document."""
    openapi = app.openapi_schema
    (event, accepted), components = msgspec.json.schema_components(
        [LiveEvent, LiveAccepted], ref_template=_REFS
    )
    schemas = openapi.components.schemas
    if schemas is None:
        schemas = openapi.components.schemas = {}
    for name, schema in components.items():
        schemas.setdefault(name, cast(Schema, schema))
    error = {"type": "object", "properties": {"status_code": {}, "detail": {"type": "string"}}}
    responses = {"200": OpenAPIResponse(description="committed", content=_json(accepted))}
    for status, why in _REFUSALS.items():
        responses[status] = OpenAPIResponse(description=why, content=_json(error))
    operation = Operation(
        summary="A DVCLive/DVC live event (start, data, done)",
        description="The Studio live-metrics protocol; a 200 means the event is committed.",
        tags=["live"],
        request_body=RequestBody(content=_json(event), required=True),
        responses=cast(Any, responses),
    )
    ok = {"type": "object", "properties": {"status": {"const": "ok"}}}
    check = Operation(
        summary="Whether a token may post live events",
        description="Nothing is stored; `livestudio run` asks before it starts a command.",
        tags=["live"],
        responses=cast(
            Any,
            {
                "200": OpenAPIResponse(description="it may", content=_json(ok)),
                **{
                    status: OpenAPIResponse(description=_REFUSALS[status], content=_json(error))
                    for status in ("401", "403")
                },
            },
        ),
    )
    if openapi.paths is None:
        openapi.paths = {}
    openapi.paths["/api/live"] = PathItem(post=operation, get=check)
