"""A small SSE reader for tests: events land in a queue from a background thread."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse


@dataclass
class Event:
    id: str
    event: str
    data: Any


class Listener:
    """Reads one event stream until closed; comments are recorded too."""

    def __init__(self, url: str, path: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.comments = 0
        self.connected = threading.Event()
        self.ended = threading.Event()
        """Set when the server ended the stream (or it failed)."""
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=60))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path, headers), daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "stream did not open"

    def _run(self, path: str, headers: dict[str, str]) -> None:
        try:
            self._read(path, headers)
        finally:
            self.ended.set()

    def _read(self, path: str, headers: dict[str, str]) -> None:
        try:
            with connect_sse(self._client, "GET", path, headers=headers) as source:
                source.response.raise_for_status()
                for line in source.response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.comments += 1
                        self.connected.set()
                        continue
                    self._feed(line)
        except httpx.HTTPError:
            return

    _pending: dict[str, str] | None = None

    def _feed(self, line: str) -> None:
        if self._pending is None:
            self._pending = {}
        if line == "":
            if "data" in self._pending:
                self.events.put(
                    Event(
                        self._pending.get("id", ""),
                        self._pending.get("event", "message"),
                        json.loads(self._pending["data"]),
                    )
                )
            self._pending = {}
            return
        key, _, value = line.partition(":")
        self._pending[key] = value[1:] if value.startswith(" ") else value

    def take(self, count: int, timeout: float = 10) -> list[Event]:
        return [self.events.get(timeout=timeout) for _ in range(count)]

    def take_until(self, kind: str, timeout: float = 10) -> list[Event]:
        got = []
        while True:
            event = self.events.get(timeout=timeout)
            got.append(event)
            if event.event == kind:
                return got

    def close(self) -> None:
        self._stop.set()
        self._client.close()
