"""SQLite storage (the embedded default): one WAL database file, aiosqlite.

Commits are durable (``synchronous=FULL``): a signature confirmed to its signer
survives a crash or kill -9. Migrations are the numbered SQL files under
``migrations/sqlite``, applied in order inside one transaction each.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
from collections.abc import Sequence
from typing import Any

import aiosqlite

from fedpetition.node.errors import ConfigError, NodeError

from .base import (
    COUNTED,
    PENDING,
    SIGN,
    WITHDRAWN,
    LogRecord,
    Organiser,
    PetitionRecord,
    QueuedEntry,
    SignatureRecord,
    Storage,
)

_SIGNATURE_COLUMNS = (
    "id, petition, email_index, status, sealed, region, created, confirmed, expires, "
    "nullifier, commitment, version, log_index"
)


def migrations() -> list[tuple[int, str]]:
    """The numbered migrations shipped with the package, in order."""
    folder = importlib.resources.files(__package__).joinpath("migrations/sqlite")
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), item.read_text(encoding="utf-8")))
    return sorted(found)


class SQLiteStorage(Storage):
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # One connection serves every coroutine: a transaction holds the lock from
        # BEGIN to COMMIT, so no other statement runs inside it (or starts another).
        self._lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise NodeError("storage is not open")
        return self._db

    async def open(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ConfigError(f"[database] url: folder {folder} does not exist")
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._migrate()

    async def _migrate(self) -> None:
        await self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "applied INTEGER NOT NULL)"
        )
        current = await self.schema_version()
        known = migrations()
        if current > (known[-1][0] if known else 0):
            raise ConfigError(
                f"database schema {current} is newer than this fedpetition "
                "knows: upgrade fedpetition"
            )
        for number, script in known:
            if number <= current:
                continue
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(script):
                    await self.db.execute(statement)
                await self.db.execute(
                    "INSERT INTO schema_migrations (version, applied) "
                    "VALUES (?, strftime('%s', 'now'))",
                    (number,),
                )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def schema_version(self) -> int:
        row = await self._one("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    # -- helpers --------------------------------------------------------------
    async def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        async with self._lock, self.db.execute(sql, args) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        async with self._lock, self.db.execute(sql, args) as cursor:
            return list(await cursor.fetchall())

    async def _write(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; returns the rows changed."""
        async with self._lock, self.db.execute(sql, args) as cursor:
            return cursor.rowcount

    class _Transaction:
        def __init__(self, db: aiosqlite.Connection, lock: asyncio.Lock) -> None:
            self.db = db
            self.lock = lock

        async def __aenter__(self) -> aiosqlite.Connection:
            await self.lock.acquire()
            try:
                await self.db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.lock.release()
                raise
            return self.db

        async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                await self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.lock.release()

    def _transaction(self) -> SQLiteStorage._Transaction:
        return SQLiteStorage._Transaction(self.db, self._lock)

    # -- organisers -----------------------------------------------------------
    async def create_organiser(
        self, name: str, password_hash: bytes, token_hash: bytes, now: int
    ) -> int:
        async with self._lock, self.db.execute(
            "INSERT INTO organisers (name, password_hash, token_hash, created) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, password_hash, token_hash, now),
        ) as cursor:
            if cursor.rowcount == 0:
                raise NodeError(f"an organiser named {name!r} already exists")
            return int(cursor.lastrowid or 0)

    async def organiser_by_name(self, name: str) -> Organiser | None:
        row = await self._one(
            "SELECT id, name, password_hash FROM organisers WHERE name = ?", (name,)
        )
        return Organiser(*row) if row else None

    async def organiser_by_token(self, token_hash: bytes) -> Organiser | None:
        row = await self._one(
            "SELECT id, name, password_hash FROM organisers WHERE token_hash = ?", (token_hash,)
        )
        return Organiser(*row) if row else None

    async def set_organiser_token(self, name: str, token_hash: bytes) -> bool:
        return (
            await self._write(
                "UPDATE organisers SET token_hash = ? WHERE name = ?", (token_hash, name)
            )
            == 1
        )

    async def create_session(self, token_hash: bytes, organiser: int, expires: int) -> None:
        await self._write(
            "INSERT INTO sessions (token_hash, organiser, expires) VALUES (?, ?, ?)",
            (token_hash, organiser, expires),
        )

    async def organiser_by_session(self, token_hash: bytes, now: int) -> Organiser | None:
        row = await self._one(
            "SELECT o.id, o.name, o.password_hash FROM sessions s JOIN organisers o "
            "ON o.id = s.organiser WHERE s.token_hash = ? AND s.expires > ?",
            (token_hash, now),
        )
        return Organiser(*row) if row else None

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    # -- petitions ------------------------------------------------------------
    async def create_petition(
        self,
        slug: str,
        petition_id: str,
        organiser: int | None,
        version: bytes,
        roster: bytes,
        now: int,
    ) -> int:
        async with self._transaction() as db:
            async with db.execute(
                "INSERT INTO petitions (slug, petition_id, organiser, created, roster) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (slug, petition_id, organiser, now, roster),
            ) as cursor:
                if cursor.rowcount == 0:
                    raise NodeError(f"a petition named {slug!r} already exists")
                petition = int(cursor.lastrowid or 0)
            await db.execute(
                "INSERT INTO petition_versions (petition, number, document, "
                "created) VALUES (?, 1, ?, ?)",
                (petition, version, now),
            )
        return petition

    async def add_version(self, petition: int, number: int, document: bytes, now: int) -> None:
        await self._write(
            "INSERT INTO petition_versions (petition, number, document, created) "
            "VALUES (?, ?, ?, ?)",
            (petition, number, document, now),
        )

    async def close_petition(self, petition: int, now: int) -> bool:
        return (
            await self._write(
                "UPDATE petitions SET status = 'closed', closed_at = ? "
                "WHERE id = ? AND status = 'open'",
                (now, petition),
            )
            == 1
        )

    async def _petitions(self, where: str, args: Sequence[Any]) -> list[PetitionRecord]:
        rows = await self._all(
            "SELECT id, slug, petition_id, organiser, status, created, closed_at, roster "
            f"FROM petitions {where} ORDER BY id",
            args,
        )
        result = []
        for row in rows:
            versions = await self._all(
                "SELECT document FROM petition_versions WHERE petition = ? ORDER BY number",
                (row[0],),
            )
            result.append(
                PetitionRecord(
                    id=row[0], slug=row[1], petition_id=row[2], organiser_id=row[3],
                    status=row[4], created=row[5], closed_at=row[6],
                    versions=tuple(v[0] for v in versions), roster=row[7],
                )
            )
        return result

    async def petitions(self) -> list[PetitionRecord]:
        return await self._petitions("", ())

    async def petition_by_slug(self, slug: str) -> PetitionRecord | None:
        found = await self._petitions("WHERE slug = ?", (slug,))
        return found[0] if found else None

    async def petition_by_id(self, petition: int) -> PetitionRecord | None:
        found = await self._petitions("WHERE id = ?", (petition,))
        return found[0] if found else None

    # -- signatures -----------------------------------------------------------
    async def signature_by_index(self, petition: int, email_index: bytes) -> SignatureRecord | None:
        row = await self._one(
            f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE petition = ? AND email_index = ?",
            (petition, email_index),
        )
        return SignatureRecord(*row) if row else None

    async def signature_by_token(self, token_hash: bytes) -> SignatureRecord | None:
        row = await self._one(
            f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE token_hash = ?", (token_hash,)
        )
        return SignatureRecord(*row) if row else None

    async def signatures_by_indexes(
        self, pairs: Sequence[tuple[int, bytes]]
    ) -> list[SignatureRecord]:
        found = []
        for petition, index in pairs:
            record = await self.signature_by_index(petition, index)
            if record is not None:
                found.append(record)
        return found

    async def create_pending(
        self,
        petition: int,
        email_index: bytes,
        sealed: bytes,
        region: str | None,
        token_hash: bytes,
        now: int,
        expires: int,
    ) -> int | None:
        async with self._transaction() as db:
            row = await (
                await db.execute(
                    "SELECT id, status, expires FROM signatures WHERE petition = ? "
                    "AND email_index = ?",
                    (petition, email_index),
                )
            ).fetchone()
            if row is not None:
                existing, status, expiry = row
                reusable = status == WITHDRAWN or (status == PENDING and expiry <= now)
                if not reusable:
                    return None
                await db.execute(
                    "UPDATE signatures SET token_hash = ?, status = 'pending', sealed = ?, "
                    "region = ?, created = ?, expires = ?, confirmed = NULL, version = NULL, "
                    "nullifier = NULL, commitment = NULL, log_index = NULL WHERE id = ?",
                    (token_hash, sealed, region, now, expires, existing),
                )
                return int(existing)
            async with db.execute(
                "INSERT INTO signatures (petition, email_index, token_hash, status, sealed, "
                "region, created, expires) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                (petition, email_index, token_hash, sealed, region, now, expires),
            ) as cursor:
                return int(cursor.lastrowid or 0)

    async def rotate_token(
        self, signature: int, token_hash: bytes, now: int, expires: int | None
    ) -> bool:
        return (
            await self._write(
                "UPDATE signatures SET token_hash = ?, expires = CASE WHEN status = 'pending' "
                "THEN ? ELSE expires END WHERE id = ?",
                (token_hash, expires, signature),
            )
            == 1
        )

    async def confirm(
        self,
        signature: int,
        token_hash: bytes,
        now: int,
        version: int,
        nullifier: bytes,
        commitment: bytes,
    ) -> bool:
        async with self._transaction() as db:
            async with db.execute(
                "UPDATE signatures SET status = 'confirmed', confirmed = ?, expires = NULL, "
                "version = ?, nullifier = ?, commitment = ? WHERE id = ? AND token_hash = ? "
                "AND status = 'pending' AND expires > ?",
                (now, version, nullifier, commitment, signature, token_hash, now),
            ) as cursor:
                if cursor.rowcount != 1:
                    return False
            await db.execute(
                "INSERT INTO queue (petition, signature, kind, nullifier, commitment, version, "
                "region, at) SELECT petition, id, 'sign', nullifier, commitment, version, "
                "region, ? FROM signatures WHERE id = ?",
                (now, signature),
            )
        return True

    async def request_withdrawal(
        self, signature: int, token_hash: bytes, now: int, version: int
    ) -> bool:
        async with self._transaction() as db:
            async with db.execute(
                "UPDATE signatures SET status = 'withdrawing' WHERE id = ? AND token_hash = ? "
                "AND status IN ('confirmed', 'counted')",
                (signature, token_hash),
            ) as cursor:
                if cursor.rowcount != 1:
                    return False
            await db.execute(
                "INSERT INTO queue (petition, signature, kind, nullifier, commitment, version, "
                "region, at) SELECT petition, id, 'withdraw', nullifier, NULL, ?, NULL, ? "
                "FROM signatures WHERE id = ?",
                (version, now, signature),
            )
        return True

    async def erase_signatures(self, ids: Sequence[int]) -> int:
        erased = 0
        async with self._transaction() as db:
            for signature in ids:
                async with db.execute(
                    "DELETE FROM signatures WHERE id = ?", (signature,)
                ) as cursor:
                    erased += cursor.rowcount
        return erased

    async def delete_expired_pending(self, now: int) -> int:
        return await self._write(
            "DELETE FROM signatures WHERE status = 'pending' AND expires <= ?", (now,)
        )

    async def purge_closed(self, closed_before: int) -> int:
        return await self._write(
            "DELETE FROM signatures WHERE petition IN (SELECT id FROM petitions WHERE "
            "status = 'closed' AND closed_at < ?) AND status NOT IN ('confirmed', "
            "'withdrawing')",
            (closed_before,),
        )

    # -- the log --------------------------------------------------------------
    async def log(self, petition: int) -> LogRecord | None:
        row = await self._one(
            "SELECT petition, size, state, checkpoint, last_time FROM logs WHERE petition = ?",
            (petition,),
        )
        return LogRecord(*row) if row else None

    async def queued(self, limit: int) -> list[QueuedEntry]:
        rows = await self._all(
            "SELECT id, petition, signature, kind, nullifier, commitment, version, region, at "
            "FROM queue ORDER BY id LIMIT ?",
            (limit,),
        )
        return [QueuedEntry(*row) for row in rows]

    async def commit_batch(
        self,
        petition: int,
        queue_ids: Sequence[int],
        log: LogRecord,
        files: Sequence[tuple[str, bytes]],
        sequenced: Sequence[tuple[int, str, int]],
        dropped: Sequence[int],
    ) -> None:
        async with self._transaction() as db:
            previous = await (
                await db.execute("SELECT size FROM logs WHERE petition = ?", (petition,))
            ).fetchone()
            if previous is not None and previous[0] > log.size:
                raise NodeError("refusing to shrink a log")
            await db.executemany(
                "INSERT INTO log_files (petition, path, data) VALUES (?, ?, ?) "
                "ON CONFLICT (petition, path) DO UPDATE SET data = excluded.data",
                [(petition, path, data) for path, data in files],
            )
            await db.execute(
                "INSERT INTO logs (petition, size, state, checkpoint, last_time) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (petition) DO UPDATE SET size = "
                "excluded.size, state = excluded.state, checkpoint = excluded.checkpoint, "
                "last_time = excluded.last_time",
                (petition, log.size, log.state, log.checkpoint, log.last_time),
            )
            await db.execute(
                "INSERT INTO checkpoints (petition, size, note) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (petition, log.size, log.checkpoint),
            )
            await db.executemany(
                "UPDATE signatures SET status = ?, log_index = CASE WHEN ? = 'sign' THEN ? "
                "ELSE log_index END WHERE id = ?",
                [
                    (COUNTED if kind == SIGN else WITHDRAWN, kind, index, signature)
                    for signature, kind, index in sequenced
                ],
            )
            await db.executemany(
                "DELETE FROM signatures WHERE id = (SELECT signature FROM queue WHERE id = ?)",
                [(q,) for q in dropped],
            )
            await db.executemany(
                "DELETE FROM queue WHERE id = ?", [(q,) for q in (*queue_ids, *dropped)]
            )

    async def read_file(self, petition: int, path: str) -> bytes | None:
        row = await self._one(
            "SELECT data FROM log_files WHERE petition = ? AND path = ?", (petition, path)
        )
        return bytes(row[0]) if row else None

    async def checkpoints(self, petition: int) -> list[tuple[int, bytes]]:
        rows = await self._all(
            "SELECT size, note FROM checkpoints WHERE petition = ? ORDER BY size", (petition,)
        )
        return [(int(size), bytes(note)) for size, note in rows]

    # -- rate limits ----------------------------------------------------------
    async def hit(self, key: str, window: int, now: int) -> int:
        start = now - now % window
        async with self._transaction() as db:
            await db.execute("DELETE FROM rate_limits WHERE key = ? AND window < ?", (key, start))
            await db.execute(
                "INSERT INTO rate_limits (key, window, count) VALUES (?, ?, 1) "
                "ON CONFLICT (key, window) DO UPDATE SET count = count + 1",
                (key, start),
            )
            row = await (
                await db.execute(
                    "SELECT count FROM rate_limits WHERE key = ? AND window = ?", (key, start)
                )
            ).fetchone()
        assert row is not None
        return int(row[0])


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations have no ';' in literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
