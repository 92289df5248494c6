"""PostgreSQL storage: several processes (web workers, machines) serve one node.

Every storage method is one transaction on a connection of an asyncpg pool. The
node's guarantees hold across processes because no method trusts what it read
earlier: a read-modify-write locks the rows it reads (``SELECT ... FOR UPDATE``)
or is one conditional statement (``UPDATE ... WHERE``, ``INSERT ... ON
CONFLICT``) whose affected rows say whether it applied. A batch commits only on
the log size it was built from (compare-and-swap: two sequencers cannot fork a
log); the sequencer lease is a session advisory lock, freed by the server as soon
as its holder's connection ends; rate limits are counters in an unlogged table.

The URL may name a schema (``?schema=NAME``) holding the node's tables, so one
database can hold several nodes. Migrations are the numbered SQL files under
``migrations/postgresql``, each applied in its own transaction under an advisory
lock, so processes starting together migrate once.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from fedpetition.core.witness import Evidence
from fedpetition.core.witness import LogRecord as WitnessRecord
from fedpetition.federation.delivery import Delivery, PeerState
from fedpetition.node.errors import ConfigError, NodeError, StorageError

from .base import (
    COUNTED,
    SIGN,
    WITHDRAWN,
    Follower,
    HostRequest,
    LogRecord,
    Organiser,
    PetitionRecord,
    QueuedEntry,
    SignatureRecord,
    StaleLogError,
    Storage,
    Table,
    check_table,
    evidence_row,
    first,
    lacking,
    migrations,
    note_size,
    pending_after,
)

log = logging.getLogger("fedpetition.storage")

# asyncpg ships no type information: its pools and connections are Any here.
Connection = Any

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DEFAULT_PORT = 5432
POOL_MIN, POOL_MAX = 1, 10
CONNECT_TIMEOUT = 10.0  # seconds to reach the server
ALIVE_TIMEOUT = 2.0  # seconds the lease's connection has to answer
# The server probes the lease's connection when idle, so a holder whose machine
# vanished (no FIN, no RST) frees the lease after about 10 + 3 x 5 = 25 s.
LEASE_KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                    "tcp_keepalives_count": "3"}

# Tables whose ids an identity column hands out (moved past the ids an import brings).
IDENTITY_TABLES = ("organisers", "petitions", "signatures", "queue", "deliveries",
                   "witness_evidence")

# Errors meaning the server cannot be reached or the connection is gone.
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                      asyncpg.InternalClientError)

_SIGNATURE_COLUMNS = ("id", "petition", "email_index", "status", "sealed", "region", "created",
                      "confirmed", "expires", "nullifier", "commitment", "version",
                      "log_index")
_SIGNATURES = f"SELECT {', '.join(_SIGNATURE_COLUMNS)} FROM signatures"
_PETITIONS = (
    "SELECT id, slug, petition_id, organiser, status, created, closed_at, roster, origin_key, "
    "origin_url, ARRAY(SELECT document FROM petition_versions v WHERE v.petition = p.id "
    "ORDER BY v.number) FROM petitions p")
# The end of an insert of a petition ($1 its slug, $2 its id), unless one has either.
# NOT EXISTS first: a refused insert takes no id, so ids follow as in SQLite.
_NEW_PETITION = ("WHERE NOT EXISTS (SELECT 1 FROM petitions WHERE slug = $1 OR "
                 "petition_id = $2) ON CONFLICT DO NOTHING RETURNING id")
# The node's one sequencer: a session lock per schema, so nodes sharing a database
# each have their own.
_LEASE = ("SELECT pg_try_advisory_lock(hashtext('fedpetition-sequencer'), "
          "hashtext(current_schema()))")
_MIGRATION_LOCK = ("SELECT pg_advisory_xact_lock(hashtext('fedpetition-migrate'), "
                   "hashtext(coalesce($1::text, current_schema(), '')))")


class PostgreSQLStorage(Storage):
    """A node's rows in PostgreSQL, shared by every process that serves the node."""

    shared = True

    def __init__(self, url: str) -> None:
        self._dsn, self.schema, self._where, self._secrets = _parse_url(url)
        self._settings = {"search_path": f'"{self.schema}"'} if self.schema else {}
        self._pool: Any = None
        self._leader: Connection | None = None  # tries for, then holds, the sequencer lease
        self._holding = False
        self._lease_lock = asyncio.Lock()

    def _db(self) -> Any:
        if self._pool is None:
            raise NodeError("storage is not open")
        return self._pool

    def _acquire(self) -> Any:
        """A connection of the pool, for a method of several statements."""
        return self._db().acquire()

    def _reason(self, error: BaseException) -> str:
        """An error's text without any secret the URL held."""
        text = str(error).strip() or type(error).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def open(self, *, migrate: bool = True, check: bool = True) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=POOL_MIN, max_size=POOL_MAX,
                server_settings=self._settings, timeout=CONNECT_TIMEOUT)
        except (*_CONNECTION_ERRORS, ValueError) as e:  # ValueError: a malformed URL
            raise ConfigError(f"[database] cannot connect to PostgreSQL at {self._where}: "
                              f"{self._reason(e)}") from None
        try:
            if migrate:
                await self.migrate()
                return
            pending = await self.pending_migrations() if check else []
        except BaseException:
            await self.close()
            raise
        if pending:
            await self.close()
            raise lacking(pending)

    async def close(self) -> None:
        async with self._lease_lock:
            leader, self._leader, self._holding = self._leader, None, False
        if leader is not None:
            await _close(leader)  # the server ends the session: the lease is free
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def schema_version(self) -> int:
        async with self._acquire() as db:
            return await _schema_version(db)

    async def migrate(self) -> list[int]:
        applied = []
        async with self._acquire() as db:
            async with db.transaction():
                await db.execute(_MIGRATION_LOCK, self.schema)
                if self.schema is not None:
                    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                                 "(version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)")
                pending = await _pending(db)
            for number, script in migrations("postgresql"):
                if number not in pending:
                    continue
                async with db.transaction():
                    await db.execute(_MIGRATION_LOCK, self.schema)
                    if await _schema_version(db) >= number:
                        continue  # another process applied it meanwhile
                    await db.execute(script)
                    await db.execute(
                        "INSERT INTO schema_migrations (version, applied) "
                        "VALUES ($1, extract(epoch FROM now())::bigint)", number)
                applied.append(number)
        return applied

    async def pending_migrations(self) -> list[int]:
        async with self._acquire() as db:
            return await _pending(db)

    # -- several processes, one sequencer --------------------------------------
    async def lead(self) -> bool:
        async with self._lease_lock:
            if self._pool is None:
                return False
            if self._leader is None:  # one connection kept for the lease, held or not
                try:
                    self._leader = await asyncpg.connect(
                        self._dsn, server_settings={**self._settings, **LEASE_KEEPALIVES},
                        timeout=CONNECT_TIMEOUT)
                except _CONNECTION_ERRORS as e:
                    log.warning("cannot connect to PostgreSQL at %s for the sequencer "
                                "lease: %s", self._where, self._reason(e))
                    return False
                self._holding = False
            try:
                if self._holding:  # still ours while its session lives
                    await self._leader.fetchval("SELECT 1", timeout=ALIVE_TIMEOUT)
                else:
                    self._holding = bool(await self._leader.fetchval(
                        _LEASE, timeout=ALIVE_TIMEOUT))
            except _CONNECTION_ERRORS as e:
                if self._holding:
                    log.warning("sequencer lease lost: %s", self._reason(e))
                self._leader.terminate()
                self._leader, self._holding = None, False
            return self._holding

    async def count_event(self, key: str, window: int, now: int) -> int:
        start = now - now % window
        return int(await self._db().fetchval(
            "INSERT INTO rate_limits AS r (key, window_start, ends, count) "
            "VALUES ($1, $2, $3, 1) ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN r.window_start < excluded.window_start THEN 1 "
            "ELSE r.count + 1 END, "
            "window_start = greatest(r.window_start, excluded.window_start), "
            "ends = greatest(r.ends, excluded.ends) RETURNING count",
            f"{window}:{key}", start, start + window))

    # -- export and import ------------------------------------------------------
    async def export_rows(self, table: Table, chunk: int
                          ) -> AsyncIterator[list[tuple[Any, ...]]]:
        check_table(table)
        columns, key = ", ".join(table.columns), ", ".join(table.key_columns)
        marks = ", ".join(f"${i}" for i in range(1, table.key + 1))
        first = f"SELECT {columns} FROM {table.name} ORDER BY {key} LIMIT {int(chunk)}"
        after = (f"SELECT {columns} FROM {table.name} WHERE ({key}) > ({marks}) "
                 f"ORDER BY {key} LIMIT {int(chunk)}")
        last: tuple[Any, ...] | None = None
        while True:
            if last is None:
                found = await self._db().fetch(first)
            else:
                found = await self._db().fetch(after, *last[:table.key])
            rows = [tuple(row) for row in found]
            if not rows:
                return
            yield rows
            last = rows[-1]

    async def import_rows(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        check_table(table)
        if not rows:
            return
        async with self._acquire() as db:
            await db.copy_records_to_table(table.name, records=[tuple(row) for row in rows],
                                           columns=list(table.columns))

    async def finish_import(self) -> None:
        async with self._acquire() as db, db.transaction():
            for name in IDENTITY_TABLES:
                await db.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                 f"coalesce(max(id), 0) + 1, false) FROM {name}")

    async def is_empty(self) -> bool:
        return bool(await self._db().fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM organisers) AND NOT EXISTS "
            "(SELECT 1 FROM petitions) AND NOT EXISTS (SELECT 1 FROM signatures)"))

    # -- organisers -------------------------------------------------------------
    async def create_organiser(self, name: str, password_hash: bytes, token_hash: bytes,
                               now: int) -> int:
        # NOT EXISTS first: a refused insert takes no id, so ids follow as in SQLite.
        organiser = await self._db().fetchval(
            "INSERT INTO organisers (name, password_hash, token_hash, created) "
            "SELECT $1::text, $2::bytea, $3::bytea, $4::bigint WHERE NOT EXISTS "
            "(SELECT 1 FROM organisers WHERE name = $1) ON CONFLICT (name) DO NOTHING "
            "RETURNING id", name, password_hash, token_hash, now)
        if organiser is None:
            raise NodeError(f"an organiser named {name!r} already exists")
        return int(organiser)

    async def organiser_by_name(self, name: str) -> Organiser | None:
        return await self._organiser("name = $1", name)

    async def organiser_by_token(self, token_hash: bytes) -> Organiser | None:
        return await self._organiser("token_hash = $1", token_hash)

    async def _organiser(self, where: str, *args: Any) -> Organiser | None:
        row = await self._db().fetchrow(
            f"SELECT id, name, password_hash FROM organisers WHERE {where}", *args)
        return Organiser(*row) if row else None

    async def organiser_count(self) -> int:
        return int(await self._db().fetchval("SELECT count(*) FROM organisers"))

    async def set_organiser_token(self, name: str, token_hash: bytes) -> bool:
        return await self._changes("UPDATE organisers SET token_hash = $1 WHERE name = $2",
                                   token_hash, name) == 1

    async def create_session(self, token_hash: bytes, organiser: int, expires: int) -> None:
        await self._changes("INSERT INTO sessions (token_hash, organiser, expires) "
                            "VALUES ($1, $2, $3)", token_hash, organiser, expires)

    async def organiser_by_session(self, token_hash: bytes, now: int) -> Organiser | None:
        row = await self._db().fetchrow(
            "SELECT o.id, o.name, o.password_hash FROM sessions s JOIN organisers o "
            "ON o.id = s.organiser WHERE s.token_hash = $1 AND s.expires > $2",
            token_hash, now)
        return Organiser(*row) if row else None

    async def delete_session(self, token_hash: bytes) -> None:
        await self._changes("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def _changes(self, sql: str, *args: Any) -> int:
        """One write statement; the number of rows it changed."""
        return _affected(await self._db().execute(sql, *args))

    # -- petitions --------------------------------------------------------------
    async def create_petition(self, slug: str, petition_id: str, organiser: int | None,
                              version: bytes, roster: bytes, now: int) -> int:
        async with self._acquire() as db, db.transaction():
            petition = await db.fetchval(
                "INSERT INTO petitions (slug, petition_id, organiser, created, roster) "
                f"SELECT $1::text, $2::text, $3::bigint, $4::bigint, $5::bytea {_NEW_PETITION}",
                slug, petition_id, organiser, now, roster)
            if petition is None:
                raise NodeError(f"a petition named {slug!r} already exists")
            await db.execute("INSERT INTO petition_versions (petition, number, document, "
                             "created) VALUES ($1, 1, $2, $3)", petition, version, now)
            return int(petition)

    async def add_version(self, petition: int, number: int, document: bytes, now: int) -> None:
        await self._changes("INSERT INTO petition_versions (petition, number, document, "
                            "created) VALUES ($1, $2, $3, $4)", petition, number, document, now)

    async def close_petition(self, petition: int, now: int) -> bool:
        return await self._changes(
            "UPDATE petitions SET status = 'closed', closed_at = $1 WHERE id = $2 AND "
            "status = 'open'", now, petition) == 1

    async def petitions(self) -> list[PetitionRecord]:
        return await self._petitions("")

    async def petition_by_slug(self, slug: str) -> PetitionRecord | None:
        return first(await self._petitions("WHERE slug = $1", slug))

    async def petition_by_id(self, petition: int) -> PetitionRecord | None:
        return first(await self._petitions("WHERE id = $1", petition))

    async def _petitions(self, where: str, *args: Any) -> list[PetitionRecord]:
        # One statement: the petitions and their versions come from one snapshot.
        rows = await self._db().fetch(f"{_PETITIONS} {where} ORDER BY id", *args)
        return [PetitionRecord(
            id=row[0], slug=row[1], petition_id=row[2], organiser_id=row[3], status=row[4],
            created=row[5], closed_at=row[6], versions=tuple(row[10]), roster=row[7],
            origin_key=row[8], origin_url=row[9]) for row in rows]

    # -- signatures -------------------------------------------------------------
    async def signature_by_index(self, petition: int, email_index: bytes
                                 ) -> SignatureRecord | None:
        return await self._signature("petition = $1 AND email_index = $2", petition,
                                     email_index)

    async def signature_by_token(self, token_hash: bytes) -> SignatureRecord | None:
        return await self._signature("token_hash = $1", token_hash)

    async def _signature(self, where: str, *args: Any) -> SignatureRecord | None:
        row = await self._db().fetchrow(f"{_SIGNATURES} WHERE {where}", *args)
        return SignatureRecord(*row) if row else None

    async def signatures_by_indexes(self, pairs: Sequence[tuple[int, bytes]]
                                    ) -> list[SignatureRecord]:
        if not pairs:
            return []
        columns = ", ".join(f"s.{column}" for column in _SIGNATURE_COLUMNS)
        rows = await self._db().fetch(
            f"SELECT {columns} FROM unnest($1::bigint[], $2::bytea[]) WITH ORDINALITY "
            "AS p (petition, email_index, n) JOIN signatures s ON s.petition = p.petition "
            "AND s.email_index = p.email_index ORDER BY p.n",
            [petition for petition, _ in pairs], [index for _, index in pairs])
        return [SignatureRecord(*row) for row in rows]

    async def signatures_of(self, petition: int, status: str, after: int, limit: int
                            ) -> list[SignatureRecord]:
        rows = await self._db().fetch(
            f"{_SIGNATURES} WHERE petition = $1 AND status = $2 AND sealed IS NOT NULL AND "
            "id > $3 ORDER BY id LIMIT $4", petition, status, after, limit)
        return [SignatureRecord(*row) for row in rows]

    async def create_pending(self, petition: int, email_index: bytes, sealed: bytes,
                             region: str | None, token_hash: bytes, now: int,
                             expires: int) -> int | None:
        # One statement (one round trip, atomic): a new row, or a withdrawn or expired
        # one made pending again; nothing (None) if the index has a live signature.
        try:
            signature = await self._db().fetchval(
                "INSERT INTO signatures AS s (petition, email_index, token_hash, status, "
                "sealed, region, created, expires) VALUES ($1, $2, $3, 'pending', $4, $5, "
                "$6, $7) ON CONFLICT (petition, email_index) DO UPDATE SET token_hash = "
                "excluded.token_hash, status = 'pending', sealed = excluded.sealed, region = "
                "excluded.region, created = excluded.created, expires = excluded.expires, "
                "confirmed = NULL, version = NULL, nullifier = NULL, commitment = NULL, "
                "log_index = NULL WHERE s.status = 'withdrawn' OR (s.status = 'pending' AND "
                "s.expires <= $6) RETURNING id",
                petition, email_index, token_hash, sealed, region, now, expires)
        except asyncpg.UniqueViolationError:  # the token of another signature: never, really
            return None
        return None if signature is None else int(signature)

    async def rotate_token(self, signature: int, token_hash: bytes, now: int,
                           expires: int | None) -> bool:
        return await self._changes(
            "UPDATE signatures SET token_hash = $1, expires = CASE WHEN status = 'pending' "
            "THEN $2::bigint ELSE expires END WHERE id = $3",
            token_hash, expires, signature) == 1

    async def confirm(self, signature: int, token_hash: bytes, now: int, version: int,
                      nullifier: bytes | None, commitment: bytes) -> bool:
        # One statement: the state change and, with a nullifier, the queued sign entry.
        done = await self._db().fetchval(
            "WITH c AS (UPDATE signatures SET status = 'confirmed', confirmed = $1, "
            "expires = NULL, version = $2, nullifier = $3, commitment = $4 WHERE id = $5 AND "
            "token_hash = $6 AND status = 'pending' AND expires > $1 RETURNING id, petition, "
            "nullifier, commitment, version, region, confirmed), q AS (INSERT INTO queue "
            "(petition, signature, kind, nullifier, commitment, version, region, at) SELECT "
            "petition, id, 'sign', nullifier, commitment, version, region, confirmed FROM c "
            "WHERE nullifier IS NOT NULL) SELECT count(*) FROM c",
            now, version, nullifier, commitment, signature, token_hash)
        return int(done) == 1

    async def awaiting_nullifiers(self, limit: int) -> list[SignatureRecord]:
        rows = await self._db().fetch(
            f"{_SIGNATURES} WHERE status = 'confirmed' AND nullifier IS NULL "
            "ORDER BY confirmed, id LIMIT $1", limit)
        return [SignatureRecord(*row) for row in rows]

    async def set_nullifiers(self, items: Sequence[tuple[int, bytes]]) -> int:
        done = 0
        async with self._acquire() as db, db.transaction():
            for signature, nullifier in items:
                status = await db.execute(
                    "UPDATE signatures SET nullifier = $1 WHERE id = $2 AND "
                    "status = 'confirmed' AND nullifier IS NULL", nullifier, signature)
                if _affected(status) == 1:
                    await _queue_sign(db, signature)
                    done += 1
        return done

    async def request_withdrawal(self, signature: int, token_hash: bytes, now: int,
                                 version: int) -> bool:
        async with self._acquire() as db, db.transaction():
            # Still awaiting its nullifier: it never reached the log, nothing to withdraw there.
            if _affected(await db.execute(
                    "UPDATE signatures SET status = 'withdrawn' WHERE id = $1 AND "
                    "token_hash = $2 AND status = 'confirmed' AND nullifier IS NULL",
                    signature, token_hash)) == 1:
                return True
            if _affected(await db.execute(
                    "UPDATE signatures SET status = 'withdrawing' WHERE id = $1 AND "
                    "token_hash = $2 AND status IN ('confirmed', 'counted')",
                    signature, token_hash)) != 1:
                return False
            await db.execute(
                "INSERT INTO queue (petition, signature, kind, nullifier, commitment, version, "
                "region, at) SELECT petition, id, 'withdraw', nullifier, NULL::bytea, "
                "$1::bigint, NULL::text, $2::bigint FROM signatures WHERE id = $3",
                version, now, signature)
            return True

    async def erase_signatures(self, ids: Sequence[int]) -> int:
        return await self._changes("DELETE FROM signatures WHERE id = ANY($1::bigint[])",
                                   list(ids))

    async def delete_expired_pending(self, now: int) -> int:
        async with self._acquire() as db, db.transaction():
            deleted = _affected(await db.execute(
                "DELETE FROM signatures WHERE status = 'pending' AND expires <= $1", now))
            await db.execute("DELETE FROM rate_limits WHERE ends <= $1", now)
            return deleted

    async def purge_closed(self, closed_before: int) -> int:
        # Signatures still waiting for the log keep their row until sequenced.
        return await self._changes(
            "DELETE FROM signatures WHERE petition IN (SELECT id FROM petitions WHERE "
            "status = 'closed' AND closed_at < $1) AND status NOT IN ('confirmed', "
            "'withdrawing')", closed_before)

    # -- the log ----------------------------------------------------------------
    async def log(self, petition: int) -> LogRecord | None:
        row = await self._db().fetchrow("SELECT petition, size, state, checkpoint, last_time "
                                        "FROM logs WHERE petition = $1", petition)
        return LogRecord(*row) if row else None

    async def queued(self, limit: int) -> list[QueuedEntry]:
        rows = await self._db().fetch(
            "SELECT id, petition, signature, kind, nullifier, commitment, version, region, "
            "at FROM queue ORDER BY id LIMIT $1", limit)
        return [QueuedEntry(*row) for row in rows]

    async def commit_batch(self, petition: int, previous_size: int | None,
                           queue_ids: Sequence[int], log: LogRecord,
                           files: Sequence[tuple[str, bytes]],
                           sequenced: Sequence[tuple[int, str, int]],
                           dropped: Sequence[int]) -> None:
        async with self._acquire() as db, db.transaction():
            # The log's row stays locked until the batch commits: a sequencer in another
            # process waits here, then sees the new size and gives up.
            previous = await db.fetchval("SELECT size FROM logs WHERE petition = $1 FOR UPDATE",
                                         petition)
            if (None if previous is None else int(previous)) != previous_size:
                raise StaleLogError(f"the log of petition {petition} moved on")
            if log.size < (previous_size or 0):
                raise NodeError("refusing to shrink a log")
            values = (petition, log.size, log.state, log.checkpoint, log.last_time)
            if previous_size is None:
                # No row to lock yet: of two first batches, the second inserts nothing.
                if await db.fetchval(
                        "INSERT INTO logs (petition, size, state, checkpoint, last_time) "
                        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (petition) DO NOTHING "
                        "RETURNING 1", *values) is None:
                    raise StaleLogError(f"the log of petition {petition} moved on")
            else:
                await db.execute("UPDATE logs SET size = $2, state = $3, checkpoint = $4, "
                                 "last_time = $5 WHERE petition = $1", *values)
            if files:
                await db.executemany(
                    "INSERT INTO log_files (petition, path, data) VALUES ($1, $2, $3) "
                    "ON CONFLICT (petition, path) DO UPDATE SET data = excluded.data",
                    [(petition, path, data) for path, data in files])
            await db.execute("INSERT INTO checkpoints (petition, size, note) VALUES ($1, $2, $3) "
                             "ON CONFLICT DO NOTHING", petition, log.size, log.checkpoint)
            if sequenced:
                await db.executemany(
                    "UPDATE signatures SET status = $1, log_index = CASE WHEN $2::text = "
                    "'sign' THEN $3::bigint ELSE log_index END WHERE id = $4",
                    # By id (stably): rows locked in one order by every writer.
                    [(COUNTED if kind == SIGN else WITHDRAWN, kind, index, signature)
                     for signature, kind, index in sorted(sequenced, key=lambda s: s[0])])
            if dropped:
                await db.execute("DELETE FROM signatures WHERE id IN (SELECT signature FROM "
                                 "queue WHERE id = ANY($1::bigint[]))", list(dropped))
            handled = [*queue_ids, *dropped]
            deleted = _affected(await db.execute(
                "DELETE FROM queue WHERE id = ANY($1::bigint[])", handled))
            if deleted != len(set(handled)):  # another sequencer took some of them
                raise StaleLogError(f"queued entries of petition {petition} were sequenced "
                                    "meanwhile")

    async def read_file(self, petition: int, path: str) -> bytes | None:
        data = await self._db().fetchval(
            "SELECT data FROM log_files WHERE petition = $1 AND path = $2", petition, path)
        return None if data is None else bytes(data)

    async def checkpoints(self, petition: int) -> list[tuple[int, bytes]]:
        rows = await self._db().fetch("SELECT size, note FROM checkpoints WHERE petition = $1 "
                                      "ORDER BY size", petition)
        return [(int(size), bytes(note)) for size, note in rows]

    async def published(self, petition: int) -> bytes | None:
        note = await self._db().fetchval("SELECT published FROM logs WHERE petition = $1",
                                         petition)
        return None if note is None else bytes(note)

    async def set_published(self, petition: int, note: bytes, size: int) -> bool:
        async with self._acquire() as db, db.transaction():
            row = await db.fetchrow("SELECT published FROM logs WHERE petition = $1 FOR UPDATE",
                                    petition)
            if row is None:
                return False
            # The size is in the note's second line; stored notes are ours and well formed.
            if row[0] is not None and note_size(bytes(row[0])) > size:
                return False
            await db.execute("UPDATE logs SET published = $1 WHERE petition = $2", note,
                             petition)
            return True

    # -- federation: hosting ----------------------------------------------------
    async def create_hosted_petition(self, slug: str, petition_id: str,
                                     versions: Sequence[bytes], roster: bytes, origin_key: str,
                                     origin_url: str, now: int) -> int:
        async with self._acquire() as db, db.transaction():
            petition = await db.fetchval(
                "INSERT INTO petitions (slug, petition_id, organiser, created, roster, "
                "origin_key, origin_url) SELECT $1::text, $2::text, NULL, $3::bigint, "
                f"$4::bytea, $5::text, $6::text {_NEW_PETITION}",
                slug, petition_id, now, roster, origin_key, origin_url)
            if petition is None:
                raise NodeError(f"a petition named {slug!r} or with id {petition_id!r} "
                                "already exists here")
            if versions:
                await db.executemany(
                    "INSERT INTO petition_versions (petition, number, document, created) "
                    "VALUES ($1, $2, $3, $4)",
                    [(petition, number, document, now)
                     for number, document in enumerate(versions, start=1)])
            return int(petition)

    async def petition_by_petition_id(self, petition_id: str) -> PetitionRecord | None:
        return first(await self._petitions("WHERE petition_id = $1", petition_id))

    async def set_roster(self, petition: int, roster: bytes) -> None:
        await self._changes("UPDATE petitions SET roster = $1 WHERE id = $2", roster, petition)

    async def add_evaluations(self, petition: int, node: str, count: int) -> None:
        await self._changes(
            "INSERT INTO evaluations (petition, node, count) VALUES ($1, $2, $3) ON CONFLICT "
            "(petition, node) DO UPDATE SET count = evaluations.count + excluded.count",
            petition, node, count)

    async def evaluations(self, petition: int) -> dict[str, int]:
        rows = await self._db().fetch("SELECT node, count FROM evaluations WHERE petition = $1 "
                                      "ORDER BY node", petition)
        return {node: int(count) for node, count in rows}

    async def put_host_request(self, request: HostRequest) -> None:
        await self._changes(
            "INSERT INTO host_requests (petition, node, vkey, inbox, activity, status, at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (petition, node) DO UPDATE SET "
            "vkey = excluded.vkey, inbox = excluded.inbox, activity = excluded.activity, "
            "status = excluded.status, at = excluded.at",
            request.petition, request.node, request.vkey, request.inbox, request.activity,
            request.status, request.at)

    async def host_requests(self, petition: int) -> list[HostRequest]:
        rows = await self._db().fetch(
            "SELECT petition, node, vkey, inbox, activity, status, at FROM host_requests "
            "WHERE petition = $1 ORDER BY at, node", petition)
        return [HostRequest(*row) for row in rows]

    async def add_follower(self, follower: Follower) -> None:
        await self._changes(
            "INSERT INTO followers (petition, actor, inbox, follow_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (petition, actor) DO UPDATE SET inbox = excluded.inbox, "
            "follow_id = excluded.follow_id",
            follower.petition, follower.actor, follower.inbox, follower.follow_id)

    async def remove_follower(self, petition: int, actor: str) -> bool:
        return await self._changes("DELETE FROM followers WHERE petition = $1 AND actor = $2",
                                   petition, actor) == 1

    async def followers(self, petition: int) -> list[Follower]:
        rows = await self._db().fetch("SELECT petition, actor, inbox, follow_id FROM followers "
                                      "WHERE petition = $1 ORDER BY actor", petition)
        return [Follower(*row) for row in rows]

    async def remember_activity(self, activity_id: str, expires: int, now: int) -> bool:
        async with self._acquire() as db, db.transaction():
            # One statement decides: the id is ours if absent or expired. It runs first,
            # holding no lock, so two processes never wait on each other in a cycle.
            claimed = await db.fetchval(
                "INSERT INTO seen_activities AS s (id, expires) VALUES ($1, $2) "
                "ON CONFLICT (id) DO UPDATE SET expires = excluded.expires "
                "WHERE s.expires < $3 RETURNING 1", activity_id, expires, now) is not None
            # Forget expired ids; rows another process is deleting are left to it.
            await db.execute("DELETE FROM seen_activities WHERE id IN (SELECT id FROM "
                             "seen_activities WHERE expires < $1 AND id <> $2 "
                             "FOR UPDATE SKIP LOCKED)", now, activity_id)
            return claimed

    async def forget_activity(self, activity_id: str) -> None:
        await self._changes("DELETE FROM seen_activities WHERE id = $1", activity_id)

    # -- federation: delivery queue ---------------------------------------------
    async def enqueue_deliveries(self, items: Sequence[tuple[str, str, bytes]], now: int
                                 ) -> list[int]:
        ids = []
        async with self._acquire() as db, db.transaction():
            for peer, url, body in items:
                ids.append(int(await db.fetchval(
                    "INSERT INTO deliveries (peer, url, body, next_at, created) "
                    "VALUES ($1, $2, $3, $4, $4) RETURNING id", peer, url, body, now)))
        return ids

    async def due_deliveries(self, now: int, limit: int) -> list[Delivery]:
        rows = await self._db().fetch(
            "SELECT id, peer, url, body, attempts, next_at, created FROM deliveries "
            "WHERE next_at <= $1 ORDER BY next_at, id LIMIT $2", now, limit)
        return [Delivery(*row) for row in rows]

    async def delivered(self, delivery_id: int) -> None:
        await self._changes("DELETE FROM deliveries WHERE id = $1", delivery_id)

    async def reschedule_delivery(self, delivery_id: int, attempts: int, next_at: int,
                                  error: str) -> None:
        await self._changes("UPDATE deliveries SET attempts = $1, next_at = $2, "
                            "last_error = $3 WHERE id = $4",
                            attempts, next_at, error[:500], delivery_id)

    async def drop_delivery(self, delivery_id: int, error: str) -> None:
        await self._changes("DELETE FROM deliveries WHERE id = $1", delivery_id)

    async def peer_state(self, peer: str) -> PeerState:
        row = await self._db().fetchrow(
            "SELECT name, failures, unavailable_since, next_probe, probe_interval FROM peers "
            "WHERE name = $1", peer)
        return PeerState(*row) if row else PeerState(peer)

    async def set_peer_state(self, state: PeerState) -> None:
        await self._changes(
            "INSERT INTO peers (name, failures, unavailable_since, next_probe, probe_interval) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET failures = "
            "excluded.failures, unavailable_since = excluded.unavailable_since, next_probe = "
            "excluded.next_probe, probe_interval = excluded.probe_interval",
            state.name, state.failures, state.unavailable_since, state.next_probe,
            state.probe_interval)

    async def wake_peer(self, peer: str, now: int) -> None:
        await self._changes("UPDATE deliveries SET next_at = $1 WHERE peer = $2 AND "
                            "next_at > $1", now, peer)

    async def pending_deliveries(self) -> int:
        return int(await self._db().fetchval("SELECT count(*) FROM deliveries"))

    # -- federation: the witness ------------------------------------------------
    async def witnessed(self, origins: Sequence[str]) -> dict[str, WitnessRecord]:
        if not origins:
            return {}
        rows = await self._db().fetch("SELECT origin, size, root, note FROM witnessed "
                                      "WHERE origin = ANY($1::text[])", list(origins))
        stored = {row[0]: WitnessRecord(int(row[1]), bytes(row[2]), row[3]) for row in rows}
        return {origin: stored[origin] for origin in origins if origin in stored}

    async def update_witnessed(self, origin: str, previous: WitnessRecord | None,
                               record: WitnessRecord) -> bool:
        async with self._acquire() as db, db.transaction():
            row = await db.fetchrow("SELECT size, root, note FROM witnessed WHERE origin = $1 "
                                    "FOR UPDATE", origin)
            current = WitnessRecord(int(row[0]), bytes(row[1]), row[2]) if row else None
            if current != previous:
                return False
            values = (origin, record.size, record.root_hash, record.note)
            if current is None:
                # Nothing to lock: of two first records, the second inserts nothing.
                return await db.fetchval(
                    "INSERT INTO witnessed (origin, size, root, note) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (origin) DO NOTHING RETURNING 1", *values) is not None
            await db.execute("UPDATE witnessed SET size = $2, root = $3, note = $4 "
                             "WHERE origin = $1", *values)
            return True

    async def add_evidence(self, evidence: Evidence, at: int) -> None:
        await self._changes(
            "INSERT INTO witness_evidence (origin, kind, recorded, offending, proof, at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            evidence.origin, evidence.kind, evidence.recorded_note, evidence.offending_note,
            b"".join(evidence.proof), at)

    async def evidence(self) -> list[tuple[int, Evidence]]:
        rows = await self._db().fetch("SELECT at, origin, kind, recorded, offending, proof "
                                      "FROM witness_evidence ORDER BY id")
        return [evidence_row(row) for row in rows]


# -- helpers -----------------------------------------------------------------------

def _parse_url(url: str) -> tuple[str, str | None, str, list[str]]:
    """The DSN for asyncpg (``schema`` taken out), the schema it names, the server's
    host:port for messages, and the URL's secrets (kept out of messages)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as e:
        raise ConfigError(f"[database] url: not a valid PostgreSQL URL ({e})") from None
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    names = [value for key, value in query if key == "schema"]
    if len(names) > 1:
        raise ConfigError("[database] url: name one schema (?schema=...)")
    schema = names[0] if names else None
    if schema is not None and (not SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_")):
        raise ConfigError(f"[database] url: schema {schema[:70]!r} is not a lowercase name "
                          "of at most 63 letters, digits and '_' that starts with a letter "
                          "or '_' (and not pg_, which PostgreSQL reserves)")
    dsn = url
    if schema is not None:
        # Cut by hand: urlunsplit would turn postgresql:///db (no host) into postgresql:/db.
        rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
        dsn = url.split("?", 1)[0] + (f"?{rest}" if rest else "")
    hosts = parts.netloc.rpartition("@")[2] or dict(query).get("host", "") or "localhost"
    if "," not in hosts and ":" not in hosts.rpartition("]")[2] and "/" not in hosts:
        hosts = f"{hosts}:{DEFAULT_PORT}"
    secrets = []
    if parts.password:
        secrets = [parts.password, urllib.parse.unquote(parts.password)]
    secrets += [value for key, value in query if key == "password" and value]
    return dsn, schema, hosts, secrets


def _affected(status: str) -> int:
    """The number of rows a command changed, from its status (``UPDATE 3``)."""
    return int(status.rsplit(" ", 1)[-1])


async def _close(connection: Connection) -> None:
    try:
        await connection.close(timeout=ALIVE_TIMEOUT)
    except _CONNECTION_ERRORS:
        connection.terminate()


async def _schema_version(db: Connection) -> int:
    if not await db.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return 0
    return int(await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def _pending(db: Connection) -> list[int]:
    current = await _schema_version(db)
    return pending_after("postgresql", current)


async def _queue_sign(db: Connection, signature: int) -> None:
    """Queue the sign entry of a confirmed signature that has its nullifier."""
    await db.execute(
        "INSERT INTO queue (petition, signature, kind, nullifier, commitment, version, region, "
        "at) SELECT petition, id, 'sign', nullifier, commitment, version, region, confirmed "
        "FROM signatures WHERE id = $1", signature)


# -- database failures become the node's errors ----------------------------------------

def _translated(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The method, with database failures raised as StorageError: 503 when the server is
    away or restarting (callers retry), 400 for a value it cannot hold (a NUL in text)."""

    @functools.wraps(method)
    async def wrapper(self: PostgreSQLStorage, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except asyncpg.DataError as e:
            raise StorageError(f"the database cannot store this value: {self._reason(e)}",
                               status=400) from None
        except (*_CONNECTION_ERRORS, ConnectionError) as e:
            raise StorageError(f"database unavailable: {type(e).__name__}: "
                               f"{self._reason(e)}") from None

    return wrapper


for _name, _method in list(vars(PostgreSQLStorage).items()):
    if (_name in Storage.__abstractmethods__ and _name not in ("open", "close", "lead")
            and inspect.iscoroutinefunction(_method)):
        setattr(PostgreSQLStorage, _name, _translated(_method))
