"""Resources that live as long as the server: writer, reader, sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.channels import ChannelsPlugin

from backend import metrics
from backend.context import Backend
from backend.db.connection import connect_async
from backend.db.maintenance import instance_id
from backend.db.writer import Writer
from backend.services.broadcast import Broadcaster, follow_other_writers
from backend.services.sweeper import run_sweeper
from backend.services.throttle_sync import ThrottleSync
from backend.services.watcher import Watcher
from backend.settings import Settings

YOUNG_COLLECTION_EVERY = 7000
"""Net allocations of tracked objects between two young collections (CPython: 700)."""


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Open the database (migrating it), start the sweeper and the watch evaluator; close all."""
    settings: Settings = app.state.settings
    channels = app.plugins.get(ChannelsPlugin)
    publish = Broadcaster(channels).publish
    writer: Writer
    if settings.engine == "postgresql":
        from backend.db.pg_writer import PostgresWriter

        writer = PostgresWriter(
            settings.database_url, publish, write_timeout=settings.write_timeout
        )
    else:
        writer = Writer(
            settings.db,
            publish,
            write_timeout=settings.write_timeout,
            disk_reserve=settings.disk_reserve,
        )
    await writer.start()
    reader = await connect_async(settings.database)
    if settings.redis_url:
        from backend.services.redis_fanout import ResilientRedisBackend

        fanout = channels._backend
        assert isinstance(fanout, ResilientRedisBackend)
        # Clusters sharing one Redis keep to their own channels.
        fanout.namespace = await instance_id(reader)
    backend = Backend(settings=settings, writer=writer, reader=reader, channels=channels)
    app.state.backend = backend
    sweeper = asyncio.create_task(run_sweeper(writer, settings, backend.clock))
    others = asyncio.create_task(follow_other_writers(reader, backend.streams))
    sharing = None
    if settings.redis_url:  # several processes: limits hold for all of them together
        sharing = asyncio.create_task(
            ThrottleSync(channels, backend.logins, backend.device_starts).run()
        )
    watcher = asyncio.create_task(
        Watcher(writer, reader, channels, settings, lambda: backend.clock()).supervise()
    )
    recording = None
    if metrics.several_processes():
        metrics.forget_dead_processes()  # a worker that died and was replaced
        recording = asyncio.create_task(metrics.record_process_forever())
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # garbage collector's full passes, which otherwise add tens of ms to tail latency.
    # (No collection first: it took ~0.1 s of every start to free a few import leftovers.)
    gc.freeze()
    # At CPython's default (a young collection per 700 net allocations) the collector ran
    # ~90 times a second under load for 2-3 % of the server's CPU; ten times the threshold
    # cut that to 0.1-0.2 % (gc callbacks, wrk at 8 and 64 connections), and what a
    # request allocates is freed by reference counting anyway.
    threshold = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *threshold[1:])
    ssh = None
    if settings.ssh_port:
        from backend.ssh.server import start_ssh

        ssh = await start_ssh(backend)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if ssh is not None:
            await ssh.close()
        tasks = [t for t in (sweeper, watcher, sharing, recording, others) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.stop()
        await reader.close()
