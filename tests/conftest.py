"""Shared fixtures: small simulated federations written as real bundle files."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import os
import re
import secrets
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from fedpetition.simulate import SimulationResult, SimulationSpec, simulate
from fedpetition.verify.archive import ZipBundleWriter

Build = Callable[..., tuple[bytes, SimulationResult]]


def build_bundle(nodes: int = 3, signatures: int = 700, duplicates: int = 40,
                 withdrawals: int = 25, seed: int = 11) -> tuple[bytes, SimulationResult]:
    buffer = io.BytesIO()
    with ZipBundleWriter(buffer) as writer:
        result = simulate(SimulationSpec(nodes, signatures, duplicates, withdrawals, seed),
                          writer.add)
    return buffer.getvalue(), result


@pytest.fixture(scope="session")
def small_bundle() -> tuple[bytes, SimulationResult]:
    """3 nodes, 700 sign entries (40 duplicated signers, 25 withdrawals): tiles of
    every kind, full and partial, and a receipt."""
    return build_bundle()


@pytest.fixture
def bundle_file(tmp_path: Path, small_bundle: tuple[bytes, SimulationResult]) -> Path:
    path = tmp_path / "federation.zip"
    path.write_bytes(small_bundle[0])
    return path


# -- storage backends ------------------------------------------------------------
# Every test that stores something takes ``databases`` and runs once per backend.
# PostgreSQL runs where FEDPETITION_TEST_POSTGRES names a server (``.ci/run`` sets
# it, and there those tests are required); elsewhere they skip, saying why. A test
# session gets its own database, dropped at the end; each node its own schema.
POSTGRES_ENV = "FEDPETITION_TEST_POSTGRES"
BACKENDS = ("sqlite", "postgresql")


def _with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A database of its own for this test session, on the server the variable names
    (None without the variable). Set up outside any event loop."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        yield None
        return
    import asyncpg

    name = f"fedpetition_test_{os.getpid()}_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server, name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Databases:
    """Hands out a fresh, empty database URL per node (None: the node's own SQLite file)."""

    def __init__(self, backend: str, postgres: str | None, folder: Path) -> None:
        self.backend = backend
        self.postgres = postgres
        self.folder = folder
        self.schemas: list[str] = []

    def new(self) -> str | None:
        if self.postgres is None:
            return None
        schema = f"node_{secrets.token_hex(6)}"
        self.schemas.append(schema)
        return f"{self.postgres}?schema={schema}"

    def url(self) -> str:
        """A URL for a storage opened directly (a SQLite file in the test's folder)."""
        url = self.new()
        if url is not None:
            return url
        path = self.folder / f"db-{secrets.token_hex(4)}.sqlite3"
        return f"sqlite://{path.as_posix()}"

    async def drop(self) -> None:
        if self.postgres is None or not self.schemas:
            return
        import asyncpg

        connection = await asyncpg.connect(self.postgres)
        try:
            for schema in self.schemas:
                await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()


@pytest.fixture(params=BACKENDS)
async def databases(request: pytest.FixtureRequest, tmp_path: Path,
                    postgres_database: str | None) -> AsyncIterator[Databases]:
    if request.param == "postgresql" and postgres_database is None:
        pytest.skip(f"PostgreSQL backend: set {POSTGRES_ENV}=postgresql://... to run "
                    "these tests (.ci/run does, and requires them)")
    postgres = postgres_database if request.param == "postgresql" else None
    found = Databases(request.param, postgres, tmp_path)
    yield found
    await found.drop()


# -- a real SMTP server receiving the node's mail ---------------------------------
MAIL_WAIT_SECONDS = 10.0
SIGNER_LINK = re.compile(r"https?://[^\s/]+(/s/[A-Za-z0-9_-]{20,})")


@dataclass
class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    async def wait_for(self, recipient: str, count: int = 1) -> list[Envelope]:
        """The messages to ``recipient`` once there are ``count`` (bounded wait)."""
        deadline = time.monotonic() + MAIL_WAIT_SECONDS
        while True:
            found = [e for e in self.envelopes if recipient in e.rcpt_tos]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, (
                f"{len(found)} of {count} mails to {recipient} after {MAIL_WAIT_SECONDS} s; "
                f"received for {[e.rcpt_tos for e in self.envelopes]}"
            )
            await asyncio.sleep(0.02)


    async def link(self, recipient: str, count: int = 1) -> str:
        """The path of the signer link in the ``count``-th mail to ``recipient``."""
        content = (await self.wait_for(recipient, count))[count - 1].content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        assert body is not None
        match = SIGNER_LINK.search(body.get_content())
        assert match, "no signer link in the mail"
        return match.group(1)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on a loopback port, in a thread: (its inbox, its port)."""
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


# -- running nodes -----------------------------------------------------------------
@pytest.fixture
async def two(tmp_path: Path, databases: Databases) -> AsyncIterator[list[Any]]:
    """Two running nodes (tests/federation/nodes.py) on the backend under test."""
    from tests.federation.nodes import running_nodes

    async with running_nodes(tmp_path, 2, databases=databases) as nodes:
        yield nodes


@pytest.fixture
async def three(tmp_path: Path, databases: Databases) -> AsyncIterator[list[Any]]:
    """Three running nodes (tests/federation/nodes.py) on the backend under test."""
    from tests.federation.nodes import running_nodes

    async with running_nodes(tmp_path, 3, databases=databases) as nodes:
        yield nodes
