"""``create_app(settings)``: the one way to build the server application."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.channels import ChannelsPlugin
from litestar.datastructures import ResponseHeader, State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from backend.api.auth import AuthController
from backend.api.device import DeviceController
from backend.api.experiments import ExperimentController
from backend.api.health import health, prometheus
from backend.api.live import live
from backend.api.live_docs import add_live_once
from backend.api.projects import InvitationController, ProjectController
from backend.api.run_finish import RunFinishController
from backend.api.stream import StreamController
from backend.api.user import UserController
from backend.api.watches import AlertController, BaselineController, WatchController
from backend.api.webhook import WebhookController
from backend.context import provide_backend, provide_reader
from backend.errors import EXCEPTION_HANDLERS, PRIVATE_HEADERS
from backend.lifespan import lifespan
from backend.services.broadcast import CHANNEL
from backend.services.fanout import channels_backend
from backend.services.throttle_sync import CHANNEL as THROTTLE_CHANNEL
from backend.settings import Settings

API_MAX_BODY = 1 << 20
"""The largest body of a request to the API's own endpoints (logins, projects, watches…):
only live events and DVC's push notifications carry more (``Settings.max_body``). Several
of these endpoints answer strangers, who must not make the server read 30 MB each."""


PRIVATE = [ResponseHeader(name=name, value=value) for name, value in PRIVATE_HEADERS.items()]


def create_app(settings: Settings) -> Litestar:
    """Build the app; nothing is opened until its lifespan starts."""
    channels = ChannelsPlugin(
        backend=channels_backend(settings.redis_url),
        channels=[CHANNEL, THROTTLE_CHANNEL],
        # Each stream client drains this into its own bounded queue at once; the bound
        # here only guards against a stalled event loop.
        subscriber_max_backlog=settings.subscriber_backlog * 2,
        subscriber_backlog_strategy="dropleft",
    )
    return Litestar(
        route_handlers=[
            live,
            AuthController,
            DeviceController,
            UserController,
            # DVC's push notifications name every ref pushed (refused before the body
            # without a valid token).
            Router(
                "/", route_handlers=[WebhookController], request_max_body_size=settings.max_body
            ),
            RunFinishController,
            ProjectController,
            InvitationController,
            ExperimentController,
            StreamController,
            WatchController,
            AlertController,
            BaselineController,
            health,
            prometheus,
        ],
        dependencies={
            "backend": Provide(provide_backend, sync_to_thread=False),
            "user": Provide(provide_reader),
        },
        plugins=[channels],
        lifespan=[lifespan],
        state=State({"settings": settings}),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=min(settings.max_body, API_MAX_BODY),
        response_headers=PRIVATE,
        openapi_config=OpenAPIConfig(
            title="livestudio",
            version="0.1.0",
            openapi_router=Router("/schema", route_handlers=[], before_request=add_live_once),
        ),
        debug=False,
        # Logging is the host's business (uvicorn's config for `serve`, a file for the demo).
        logging_config=None,
    )
