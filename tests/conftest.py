"""Shared fixtures: small simulated federations written as real bundle files."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

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
