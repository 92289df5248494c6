"""Several real nodes on loopback ports, each a full app with its background work.

Each node has its own folder, keys, SQLite file and mail sink, and serves its
real aiohttp application on ``127.0.0.1:<port>``, which is also its name: the
nodes find and call each other by those names, over real HTTP, with every
server-to-server request signed. The development setting that lets federation
peers be loopback addresses is on, as in ``nodes/``; nothing else is relaxed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from fedpetition.core.log import LogAppender
from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.federation import Federation
from fedpetition.node.mail import MemoryMailer
from fedpetition.node.sequencer import encode_state
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node
from fedpetition.node.storage import LogRecord
from tests.conftest import Databases
from tests.node.conftest import PASSWORD, free_port

# Faster than the defaults, so that tests take seconds.
FAST = {
    "# dev_allow_loopback = false": "dev_allow_loopback = true",
    "# period_seconds = 1.0": "period_seconds = 0.1",
    "# refresh_seconds = 30.0": "refresh_seconds = 0.5",
}


@dataclass
class RunningNode:
    folder: Path
    port: int
    token: str
    mail: MemoryMailer
    node: Node | None = None
    runner: web.AppRunner | None = None

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.name}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def federation(self) -> Federation:
        assert self.node is not None and isinstance(self.node.federation, Federation)
        return self.node.federation

    async def start(self) -> None:
        node = await build_node(load_config(self.folder / "fedpetition.toml"))
        node.mailer = self.mail
        self.node = node
        self.runner = web.AppRunner(make_app(node), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.runner = None
        self.node = None

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        # A bound on every request: a stuck node fails the test instead of hanging it.
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
                method, self.url + path, **kwargs) as response:
            body = await response.read()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, body

    async def create_petition(self, slug: str = "clean-air") -> str:
        status, body = await self.request("POST", "/api/petitions", headers=self.auth, json={
            "slug": slug, "languages": ["fr", "en"],
            "title": {"fr": "Pour un air propre", "en": "For clean air"},
            "text": {"fr": "Nous demandons de l'air propre.", "en": "We ask for clean air."},
            "addressee": "Ministère", "deadline": int(time.time()) + 30 * 86400,
            "thresholds": [10]})
        assert status == 201, body
        return f"{self.url}/petitions/{slug}"

    async def host(self, petition_url: str) -> dict[str, Any]:
        status, body = await self.request("POST", "/api/hosting", headers=self.auth,
                                          json={"url": petition_url})
        assert status == 202, body
        result: dict[str, Any] = body
        return result

    async def sign_and_confirm(self, slug: str, email: str, region: str = "FR-IDF") -> str:
        status, body = await self.request("POST", f"/api/petitions/{slug}/signatures",
                                          json={"name": "A Signer", "email": email,
                                                "region": region})
        assert status == 202, body
        token = self.mail.last_token(email.lower())
        status, body = await self.request("POST", f"/api/signatures/{token}/confirm")
        assert status == 200, body
        return token

    async def append_raw(self, slug: str, entries: list[bytes], last_time: int) -> None:
        """Misbehave: append ``entries`` to our log as the sequencer would, unchecked,
        sign the checkpoint and have it witnessed and published."""
        assert self.node is not None
        record = await self.node.storage.petition_by_slug(slug)
        assert record is not None
        current = self.node.sequencer.logs[record.id]
        appender = LogAppender(current.origin, current.state)
        files = appender.append(entries) + appender.partial_files()
        note = appender.signed_checkpoint(self.node.signer).encode()
        batch = LogRecord(record.id, appender.size, encode_state(appender.state()), note,
                          last_time)
        await self.node.storage.commit_batch(record.id, current.state.size, [], batch, files,
                                             [], [])
        current.state, current.checkpoint, current.note = (
            appender.state(), appender.checkpoint(), note)
        current.last_time = last_time
        await self.federation._committed(current)

    async def federated(self, slug: str) -> dict[str, Any]:
        status, body = await self.request("GET", f"/api/petitions/{slug}/federated")
        assert status == 200, body
        result: dict[str, Any] = body
        return result


async def make_nodes(tmp_path: Path, count: int, *, accept: str = '["*"]',
                     databases: Databases | None = None) -> list[RunningNode]:
    """``count`` running nodes, on the backend of ``databases`` (SQLite files if None)."""
    nodes = []
    for i in range(count):
        port = free_port()
        name = f"127.0.0.1:{port}"
        folder = tmp_path / f"node{i}"
        config = await init_node(folder, name, f"http://{name}", listen_port=port,
                                 database_url=databases.new() if databases else None)
        text = config.read_text()
        for old, new in {**FAST, "# accept_hosts = []": f"accept_hosts = {accept}"}.items():
            assert old in text, old
            text = text.replace(old, new)
        config.write_text(text)
        sink = MemoryMailer()
        running = RunningNode(folder, port, "", sink)
        await running.start()
        assert running.node is not None
        running.token = await running.node.create_organiser("alice", PASSWORD)
        nodes.append(running)
    return nodes


@contextlib.asynccontextmanager
async def running_nodes(tmp_path: Path, count: int, *, accept: str = '["*"]',
                        databases: Databases | None = None) -> AsyncIterator[list[RunningNode]]:
    """:func:`make_nodes`, stopped again on the way out."""
    nodes = await make_nodes(tmp_path, count, accept=accept, databases=databases)
    try:
        yield nodes
    finally:
        for running in nodes:
            await running.stop()


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 20.0
                   ) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
