"""SQLite storage (the embedded default): one WAL database file, one database thread.

Every storage method is one function run on the thread that owns the
connection, so a method costs one hop between the event loop and that thread,
and methods never interleave. Writes are group-committed: the writes waiting
when the thread is free run together, each in its own savepoint, under one
``COMMIT`` (one fsync with ``synchronous=FULL``). A method's coroutine returns
only after that commit: a signature confirmed to its signer survives a crash or
kill -9, and under load many confirmations share one fsync.

Migrations are the numbered SQL files under ``migrations/sqlite``, applied in
order, each in its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fedpetition.core.witness import Evidence
from fedpetition.core.witness import LogRecord as WitnessRecord
from fedpetition.federation.delivery import Delivery, PeerState
from fedpetition.node.errors import ConfigError, NodeError
from fedpetition.node.ratelimit import RateLimiter

from .base import (
    COUNTED,
    PENDING,
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

T = TypeVar("T")
Connection = sqlite3.Connection

_SIGNATURE_COLUMNS = (
    "id, petition, email_index, status, sealed, region, created, confirmed, expires, "
    "nullifier, commitment, version, log_index"
)
MAX_GROUP = 512  # writes committed together at most


@dataclass
class _Job:
    fn: Callable[[Connection], Any]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_Outcome = tuple[_Job, Any, BaseException | None]  # a job, its result, or its error


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand results to the coroutines awaiting them: one wake-up of each event loop for
    all the jobs done together, rather than one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, settled in by_loop.items():
        # A closed loop has nobody waiting for the result; the thread must live on.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_apply, settled)


def _apply(outcomes: list[_Outcome]) -> None:
    for job, result, error in outcomes:
        if job.future.done():
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)


_STOP = object()


class _DatabaseThread(threading.Thread):
    """Owns the connection; runs reads as they come and writes in groups."""

    def __init__(self, path: str) -> None:
        super().__init__(name="fedpetition-sqlite", daemon=True)
        self.path = path
        self.jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                           "busy_timeout=5000"):
                conn.execute(f"PRAGMA {pragma}")
        except sqlite3.Error as e:
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: Connection) -> None:
        while True:
            first = self.jobs.get()
            if first is _STOP:
                return
            pending: list[Any] = [first]
            while len(pending) < MAX_GROUP:
                try:
                    pending.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in pending
            jobs = [job for job in pending if job is not _STOP]
            # Reads are answered before the writes' commit, which waits for an fsync.
            _settle([self._read(conn, job) for job in jobs if not job.write])
            writes = [job for job in jobs if job.write]
            if writes:
                _settle(self._write_group(conn, writes))
            if stop:
                return

    @staticmethod
    def _read(conn: Connection, job: _Job) -> _Outcome:
        try:
            return job, job.fn(conn), None
        except Exception as e:  # handed to the awaiting coroutine
            return job, None, e

    @staticmethod
    def _write_group(conn: Connection, jobs: list[_Job]) -> list[_Outcome]:
        results: list[_Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(conn)
                except Exception as e:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((job, None, e))
                else:
                    conn.execute("RELEASE job")
                    results.append((job, result, None))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(job, None, NodeError(f"database write failed: {e}")) for job in jobs]
        return results


class SQLiteStorage(Storage):
    """One process serves a node on SQLite: it holds the sequencer lease, and its rate
    limits live in its memory (a write per counted request would cost the signing
    path a share of an fsync for nothing another process could read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread: _DatabaseThread | None = None
        self._limiters: dict[int, RateLimiter] = {}

    async def _call(self, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        if self._thread is None:
            raise NodeError("storage is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._thread.jobs.put(_Job(fn, write, loop, future))
        return await future

    async def open(self, *, migrate: bool = True, check: bool = True) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ConfigError(f"[database] url: folder {folder} does not exist")
        thread = _DatabaseThread(self.path)
        thread.start()
        await asyncio.to_thread(thread.ready.wait)
        if thread.error is not None:
            raise ConfigError(f"[database] cannot open {self.path}: {thread.error}")
        self._thread = thread
        if migrate:
            await self.migrate()
            return
        pending = await self.pending_migrations() if check else []
        if pending:
            await self.close()
            raise lacking(pending)

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.jobs.put(_STOP)
            await asyncio.to_thread(thread.join)

    async def schema_version(self) -> int:
        return await self._call(_schema_version)

    async def migrate(self) -> list[int]:
        return await self._call(_migrate)

    async def pending_migrations(self) -> list[int]:
        return await self._call(_pending)

    # -- one process ----------------------------------------------------------
    async def lead(self) -> bool:
        return self._thread is not None

    async def count_event(self, key: str, window: int, now: int) -> int:
        limiter = self._limiters.setdefault(window, RateLimiter(window))
        return limiter.hit(key, now)

    # -- export and import ----------------------------------------------------
    async def export_rows(self, table: Table, chunk: int
                          ) -> AsyncIterator[list[tuple[Any, ...]]]:
        check_table(table)
        columns, key = ", ".join(table.columns), ", ".join(table.key_columns)
        first = f"SELECT {columns} FROM {table.name} ORDER BY {key} LIMIT {int(chunk)}"
        after = (f"SELECT {columns} FROM {table.name} WHERE ({key}) > "
                 f"({', '.join('?' for _ in table.key_columns)}) ORDER BY {key} "
                 f"LIMIT {int(chunk)}")
        last: tuple[Any, ...] | None = None
        while True:
            sql, args = (first, ()) if last is None else (after, last[:table.key])

            def fn(db: Connection, sql: str = sql, args: Sequence[Any] = args
                   ) -> list[tuple[Any, ...]]:
                return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                        for row in db.execute(sql, args).fetchall()]

            rows = await self._call(fn)
            if not rows:
                return
            yield rows
            last = rows[-1]

    async def import_rows(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        check_table(table)
        sql = (f"INSERT INTO {table.name} ({', '.join(table.columns)}) "
               f"VALUES ({', '.join('?' for _ in table.columns)})")
        await self._call(lambda db: db.executemany(sql, rows), write=True)

    async def finish_import(self) -> None:
        """SQLite's rowids follow the largest id by themselves."""

    async def is_empty(self) -> bool:
        def fn(db: Connection) -> bool:
            return not any(db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                           for table in ("organisers", "petitions", "signatures"))

        return await self._call(fn)

    # -- organisers -----------------------------------------------------------
    async def create_organiser(self, name: str, password_hash: bytes, token_hash: bytes,
                               now: int) -> int:
        def fn(db: Connection) -> int:
            cursor = db.execute(
                "INSERT INTO organisers (name, password_hash, token_hash, created) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, password_hash, token_hash, now))
            if cursor.rowcount == 0:
                raise NodeError(f"an organiser named {name!r} already exists")
            return int(cursor.lastrowid or 0)

        return await self._call(fn, write=True)

    async def organiser_by_name(self, name: str) -> Organiser | None:
        return await self._call(lambda db: _organiser(db, "name = ?", (name,)))

    async def organiser_by_token(self, token_hash: bytes) -> Organiser | None:
        return await self._call(lambda db: _organiser(db, "token_hash = ?", (token_hash,)))

    async def organiser_count(self) -> int:
        return await self._call(
            lambda db: int(db.execute("SELECT COUNT(*) FROM organisers").fetchone()[0]))

    async def set_organiser_token(self, name: str, token_hash: bytes) -> bool:
        return await self._changes("UPDATE organisers SET token_hash = ? WHERE name = ?",
                                   (token_hash, name)) == 1

    async def create_session(self, token_hash: bytes, organiser: int, expires: int) -> None:
        await self._changes("INSERT INTO sessions (token_hash, organiser, expires) "
                            "VALUES (?, ?, ?)", (token_hash, organiser, expires))

    async def organiser_by_session(self, token_hash: bytes, now: int) -> Organiser | None:
        def fn(db: Connection) -> Organiser | None:
            row = db.execute(
                "SELECT o.id, o.name, o.password_hash FROM sessions s JOIN organisers o "
                "ON o.id = s.organiser WHERE s.token_hash = ? AND s.expires > ?",
                (token_hash, now)).fetchone()
            return Organiser(*row) if row else None

        return await self._call(fn)

    async def delete_session(self, token_hash: bytes) -> None:
        await self._changes("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    async def _changes(self, sql: str, args: Sequence[Any]) -> int:
        """One write statement; the number of rows it changed."""
        return await self._call(lambda db: db.execute(sql, args).rowcount, write=True)

    # -- petitions ------------------------------------------------------------
    async def create_petition(self, slug: str, petition_id: str, organiser: int | None,
                              version: bytes, roster: bytes, now: int) -> int:
        def fn(db: Connection) -> int:
            cursor = db.execute(
                "INSERT INTO petitions (slug, petition_id, organiser, created, roster) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (slug, petition_id, organiser, now, roster))
            if cursor.rowcount == 0:
                raise NodeError(f"a petition named {slug!r} already exists")
            petition = int(cursor.lastrowid or 0)
            db.execute("INSERT INTO petition_versions (petition, number, document, created) "
                       "VALUES (?, 1, ?, ?)", (petition, version, now))
            return petition

        return await self._call(fn, write=True)

    async def add_version(self, petition: int, number: int, document: bytes, now: int) -> None:
        await self._changes("INSERT INTO petition_versions (petition, number, document, "
                            "created) VALUES (?, ?, ?, ?)", (petition, number, document, now))

    async def close_petition(self, petition: int, now: int) -> bool:
        return await self._changes(
            "UPDATE petitions SET status = 'closed', closed_at = ? WHERE id = ? AND "
            "status = 'open'", (now, petition)) == 1

    async def petitions(self) -> list[PetitionRecord]:
        return await self._call(lambda db: _petitions(db, "", ()))

    async def petition_by_slug(self, slug: str) -> PetitionRecord | None:
        return await self._call(lambda db: first(_petitions(db, "WHERE slug = ?", (slug,))))

    async def petition_by_id(self, petition: int) -> PetitionRecord | None:
        return await self._call(lambda db: first(_petitions(db, "WHERE id = ?", (petition,))))

    # -- signatures -----------------------------------------------------------
    async def signature_by_index(self, petition: int, email_index: bytes
                                 ) -> SignatureRecord | None:
        return await self._call(lambda db: _signature(
            db, "petition = ? AND email_index = ?", (petition, email_index)))

    async def signature_by_token(self, token_hash: bytes) -> SignatureRecord | None:
        return await self._call(lambda db: _signature(db, "token_hash = ?", (token_hash,)))

    async def signatures_by_indexes(self, pairs: Sequence[tuple[int, bytes]]
                                    ) -> list[SignatureRecord]:
        def fn(db: Connection) -> list[SignatureRecord]:
            found = (_signature(db, "petition = ? AND email_index = ?", pair) for pair in pairs)
            return [record for record in found if record is not None]

        return await self._call(fn)

    async def signatures_of(self, petition: int, status: str, after: int, limit: int
                            ) -> list[SignatureRecord]:
        def fn(db: Connection) -> list[SignatureRecord]:
            rows = db.execute(
                f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE petition = ? AND "
                "status = ? AND sealed IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                (petition, status, after, limit)).fetchall()
            return [SignatureRecord(*row) for row in rows]

        return await self._call(fn)

    async def create_pending(self, petition: int, email_index: bytes, sealed: bytes,
                             region: str | None, token_hash: bytes, now: int,
                             expires: int) -> int | None:
        def fn(db: Connection) -> int | None:
            row = db.execute("SELECT id, status, expires FROM signatures WHERE petition = ? "
                             "AND email_index = ?", (petition, email_index)).fetchone()
            if row is not None:
                existing, status, expiry = row
                if not (status == WITHDRAWN or (status == PENDING and expiry <= now)):
                    return None
                db.execute(
                    "UPDATE signatures SET token_hash = ?, status = 'pending', sealed = ?, "
                    "region = ?, created = ?, expires = ?, confirmed = NULL, version = NULL, "
                    "nullifier = NULL, commitment = NULL, log_index = NULL WHERE id = ?",
                    (token_hash, sealed, region, now, expires, existing))
                return int(existing)
            cursor = db.execute(
                "INSERT INTO signatures (petition, email_index, token_hash, status, sealed, "
                "region, created, expires) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                (petition, email_index, token_hash, sealed, region, now, expires))
            return int(cursor.lastrowid or 0)

        return await self._call(fn, write=True)

    async def rotate_token(self, signature: int, token_hash: bytes, now: int,
                           expires: int | None) -> bool:
        return await self._changes(
            "UPDATE signatures SET token_hash = ?, expires = CASE WHEN status = 'pending' "
            "THEN ? ELSE expires END WHERE id = ?", (token_hash, expires, signature)) == 1

    async def confirm(self, signature: int, token_hash: bytes, now: int, version: int,
                      nullifier: bytes | None, commitment: bytes) -> bool:
        def fn(db: Connection) -> bool:
            cursor = db.execute(
                "UPDATE signatures SET status = 'confirmed', confirmed = ?, expires = NULL, "
                "version = ?, nullifier = ?, commitment = ? WHERE id = ? AND token_hash = ? "
                "AND status = 'pending' AND expires > ?",
                (now, version, nullifier, commitment, signature, token_hash, now))
            if cursor.rowcount != 1:
                return False
            if nullifier is not None:
                _queue_sign(db, signature)
            return True

        return await self._call(fn, write=True)

    async def awaiting_nullifiers(self, limit: int) -> list[SignatureRecord]:
        def fn(db: Connection) -> list[SignatureRecord]:
            rows = db.execute(
                f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE status = 'confirmed' AND "
                "nullifier IS NULL ORDER BY confirmed, id LIMIT ?", (limit,)).fetchall()
            return [SignatureRecord(*row) for row in rows]

        return await self._call(fn)

    async def set_nullifiers(self, items: Sequence[tuple[int, bytes]]) -> int:
        def fn(db: Connection) -> int:
            done = 0
            for signature, nullifier in items:
                if db.execute("UPDATE signatures SET nullifier = ? WHERE id = ? AND status = "
                              "'confirmed' AND nullifier IS NULL",
                              (nullifier, signature)).rowcount == 1:
                    _queue_sign(db, signature)
                    done += 1
            return done

        return await self._call(fn, write=True)

    async def request_withdrawal(self, signature: int, token_hash: bytes, now: int,
                                 version: int) -> bool:
        def fn(db: Connection) -> bool:
            # Still awaiting its nullifier: it never reached the log, nothing to withdraw there.
            if db.execute("UPDATE signatures SET status = 'withdrawn' WHERE id = ? AND "
                          "token_hash = ? AND status = 'confirmed' AND nullifier IS NULL",
                          (signature, token_hash)).rowcount == 1:
                return True
            cursor = db.execute(
                "UPDATE signatures SET status = 'withdrawing' WHERE id = ? AND token_hash = ? "
                "AND status IN ('confirmed', 'counted')", (signature, token_hash))
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO queue (petition, signature, kind, nullifier, commitment, version, "
                "region, at) SELECT petition, id, 'withdraw', nullifier, NULL, ?, NULL, ? "
                "FROM signatures WHERE id = ?", (version, now, signature))
            return True

        return await self._call(fn, write=True)

    async def erase_signatures(self, ids: Sequence[int]) -> int:
        def fn(db: Connection) -> int:
            return sum(db.execute("DELETE FROM signatures WHERE id = ?", (i,)).rowcount
                       for i in ids)

        return await self._call(fn, write=True)

    async def delete_expired_pending(self, now: int) -> int:
        return await self._changes(
            "DELETE FROM signatures WHERE status = 'pending' AND expires <= ?", (now,))

    async def purge_closed(self, closed_before: int) -> int:
        # Signatures still waiting for the log keep their row until sequenced.
        return await self._changes(
            "DELETE FROM signatures WHERE petition IN (SELECT id FROM petitions WHERE "
            "status = 'closed' AND closed_at < ?) AND status NOT IN ('confirmed', "
            "'withdrawing')", (closed_before,))

    # -- the log --------------------------------------------------------------
    async def log(self, petition: int) -> LogRecord | None:
        def fn(db: Connection) -> LogRecord | None:
            row = db.execute("SELECT petition, size, state, checkpoint, last_time FROM logs "
                             "WHERE petition = ?", (petition,)).fetchone()
            return LogRecord(*row) if row else None

        return await self._call(fn)

    async def queued(self, limit: int) -> list[QueuedEntry]:
        def fn(db: Connection) -> list[QueuedEntry]:
            rows = db.execute(
                "SELECT id, petition, signature, kind, nullifier, commitment, version, region, "
                "at FROM queue ORDER BY id LIMIT ?", (limit,)).fetchall()
            return [QueuedEntry(*row) for row in rows]

        return await self._call(fn)

    async def commit_batch(self, petition: int, previous_size: int | None,
                           queue_ids: Sequence[int], log: LogRecord,
                           files: Sequence[tuple[str, bytes]],
                           sequenced: Sequence[tuple[int, str, int]],
                           dropped: Sequence[int]) -> None:
        def fn(db: Connection) -> None:
            previous = db.execute("SELECT size FROM logs WHERE petition = ?",
                                  (petition,)).fetchone()
            if (None if previous is None else int(previous[0])) != previous_size:
                raise StaleLogError(f"the log of petition {petition} moved on")
            if log.size < (previous_size or 0):
                raise NodeError("refusing to shrink a log")
            db.executemany(
                "INSERT INTO log_files (petition, path, data) VALUES (?, ?, ?) "
                "ON CONFLICT (petition, path) DO UPDATE SET data = excluded.data",
                [(petition, path, data) for path, data in files])
            db.execute(
                "INSERT INTO logs (petition, size, state, checkpoint, last_time) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (petition) DO UPDATE SET size = "
                "excluded.size, state = excluded.state, checkpoint = excluded.checkpoint, "
                "last_time = excluded.last_time",
                (petition, log.size, log.state, log.checkpoint, log.last_time))
            db.execute("INSERT INTO checkpoints (petition, size, note) VALUES (?, ?, ?) "
                       "ON CONFLICT DO NOTHING", (petition, log.size, log.checkpoint))
            db.executemany(
                "UPDATE signatures SET status = ?, log_index = CASE WHEN ? = 'sign' THEN ? "
                "ELSE log_index END WHERE id = ?",
                [(COUNTED if kind == SIGN else WITHDRAWN, kind, index, signature)
                 for signature, kind, index in sequenced])
            db.executemany("DELETE FROM signatures WHERE id = (SELECT signature FROM queue "
                           "WHERE id = ?)", [(q,) for q in dropped])
            handled = {*queue_ids, *dropped}
            deleted = sum(db.execute("DELETE FROM queue WHERE id = ?", (q,)).rowcount
                          for q in handled)
            if deleted != len(handled):  # another sequencer took some of them
                raise StaleLogError(f"queued entries of petition {petition} were sequenced "
                                    "meanwhile")

        await self._call(fn, write=True)

    async def read_file(self, petition: int, path: str) -> bytes | None:
        def fn(db: Connection) -> bytes | None:
            row = db.execute("SELECT data FROM log_files WHERE petition = ? AND path = ?",
                             (petition, path)).fetchone()
            return bytes(row[0]) if row else None

        return await self._call(fn)

    async def checkpoints(self, petition: int) -> list[tuple[int, bytes]]:
        def fn(db: Connection) -> list[tuple[int, bytes]]:
            rows = db.execute("SELECT size, note FROM checkpoints WHERE petition = ? "
                              "ORDER BY size", (petition,)).fetchall()
            return [(int(size), bytes(note)) for size, note in rows]

        return await self._call(fn)

    async def published(self, petition: int) -> bytes | None:
        def fn(db: Connection) -> bytes | None:
            row = db.execute("SELECT published FROM logs WHERE petition = ?",
                             (petition,)).fetchone()
            return bytes(row[0]) if row and row[0] is not None else None

        return await self._call(fn)

    async def set_published(self, petition: int, note: bytes, size: int) -> bool:
        def fn(db: Connection) -> bool:
            # The size is in the note's second line; stored notes are ours and well formed.
            row = db.execute("SELECT published FROM logs WHERE petition = ?",
                             (petition,)).fetchone()
            if row is None:
                return False
            if row[0] is not None and note_size(bytes(row[0])) > size:
                return False
            db.execute("UPDATE logs SET published = ? WHERE petition = ?", (note, petition))
            return True

        return await self._call(fn, write=True)

    # -- federation: hosting --------------------------------------------------
    async def create_hosted_petition(self, slug: str, petition_id: str,
                                     versions: Sequence[bytes], roster: bytes, origin_key: str,
                                     origin_url: str, now: int) -> int:
        def fn(db: Connection) -> int:
            cursor = db.execute(
                "INSERT INTO petitions (slug, petition_id, organiser, created, roster, "
                "origin_key, origin_url) VALUES (?, ?, NULL, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (slug, petition_id, now, roster, origin_key, origin_url))
            if cursor.rowcount == 0:
                raise NodeError(f"a petition named {slug!r} or with id {petition_id!r} "
                                "already exists here")
            petition = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO petition_versions (petition, number, document, created) "
                "VALUES (?, ?, ?, ?)",
                [(petition, number, document, now)
                 for number, document in enumerate(versions, start=1)])
            return petition

        return await self._call(fn, write=True)

    async def petition_by_petition_id(self, petition_id: str) -> PetitionRecord | None:
        return await self._call(
            lambda db: first(_petitions(db, "WHERE petition_id = ?", (petition_id,))))

    async def set_roster(self, petition: int, roster: bytes) -> None:
        await self._changes("UPDATE petitions SET roster = ? WHERE id = ?", (roster, petition))

    async def add_evaluations(self, petition: int, node: str, count: int) -> None:
        await self._changes(
            "INSERT INTO evaluations (petition, node, count) VALUES (?, ?, ?) ON CONFLICT "
            "(petition, node) DO UPDATE SET count = count + excluded.count",
            (petition, node, count))

    async def evaluations(self, petition: int) -> dict[str, int]:
        def fn(db: Connection) -> dict[str, int]:
            rows = db.execute("SELECT node, count FROM evaluations WHERE petition = ? "
                              "ORDER BY node", (petition,)).fetchall()
            return {node: int(count) for node, count in rows}

        return await self._call(fn)

    async def put_host_request(self, request: HostRequest) -> None:
        await self._changes(
            "INSERT INTO host_requests (petition, node, vkey, inbox, activity, status, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (petition, node) DO UPDATE SET "
            "vkey = excluded.vkey, inbox = excluded.inbox, activity = excluded.activity, "
            "status = excluded.status, at = excluded.at",
            (request.petition, request.node, request.vkey, request.inbox, request.activity,
             request.status, request.at))

    async def host_requests(self, petition: int) -> list[HostRequest]:
        def fn(db: Connection) -> list[HostRequest]:
            rows = db.execute("SELECT petition, node, vkey, inbox, activity, status, at FROM "
                              "host_requests WHERE petition = ? ORDER BY at, node",
                              (petition,)).fetchall()
            return [HostRequest(*row) for row in rows]

        return await self._call(fn)

    async def add_follower(self, follower: Follower) -> None:
        await self._changes(
            "INSERT INTO followers (petition, actor, inbox, follow_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (petition, actor) DO UPDATE SET inbox = excluded.inbox, "
            "follow_id = excluded.follow_id",
            (follower.petition, follower.actor, follower.inbox, follower.follow_id))

    async def remove_follower(self, petition: int, actor: str) -> bool:
        return await self._changes("DELETE FROM followers WHERE petition = ? AND actor = ?",
                                   (petition, actor)) == 1

    async def followers(self, petition: int) -> list[Follower]:
        def fn(db: Connection) -> list[Follower]:
            rows = db.execute("SELECT petition, actor, inbox, follow_id FROM followers WHERE "
                              "petition = ? ORDER BY actor", (petition,)).fetchall()
            return [Follower(*row) for row in rows]

        return await self._call(fn)

    async def remember_activity(self, activity_id: str, expires: int, now: int) -> bool:
        def fn(db: Connection) -> bool:
            db.execute("DELETE FROM seen_activities WHERE expires < ?", (now,))
            cursor = db.execute("INSERT INTO seen_activities (id, expires) VALUES (?, ?) "
                                "ON CONFLICT DO NOTHING", (activity_id, expires))
            return cursor.rowcount == 1

        return await self._call(fn, write=True)

    async def forget_activity(self, activity_id: str) -> None:
        await self._changes("DELETE FROM seen_activities WHERE id = ?", (activity_id,))

    # -- federation: delivery queue -------------------------------------------
    async def enqueue_deliveries(self, items: Sequence[tuple[str, str, bytes]], now: int
                                 ) -> list[int]:
        def fn(db: Connection) -> list[int]:
            return [int(db.execute("INSERT INTO deliveries (peer, url, body, next_at, created) "
                                   "VALUES (?, ?, ?, ?, ?)",
                                   (peer, url, body, now, now)).lastrowid or 0)
                    for peer, url, body in items]

        return await self._call(fn, write=True)

    async def due_deliveries(self, now: int, limit: int) -> list[Delivery]:
        def fn(db: Connection) -> list[Delivery]:
            rows = db.execute("SELECT id, peer, url, body, attempts, next_at, created FROM "
                              "deliveries WHERE next_at <= ? ORDER BY next_at, id LIMIT ?",
                              (now, limit)).fetchall()
            return [Delivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

        return await self._call(fn)

    async def delivered(self, delivery_id: int) -> None:
        await self._changes("DELETE FROM deliveries WHERE id = ?", (delivery_id,))

    async def reschedule_delivery(self, delivery_id: int, attempts: int, next_at: int,
                                  error: str) -> None:
        await self._changes("UPDATE deliveries SET attempts = ?, next_at = ?, last_error = ? "
                            "WHERE id = ?", (attempts, next_at, error[:500], delivery_id))

    async def drop_delivery(self, delivery_id: int, error: str) -> None:
        await self._changes("DELETE FROM deliveries WHERE id = ?", (delivery_id,))

    async def peer_state(self, peer: str) -> PeerState:
        def fn(db: Connection) -> PeerState:
            row = db.execute("SELECT name, failures, unavailable_since, next_probe, "
                             "probe_interval FROM peers WHERE name = ?", (peer,)).fetchone()
            return PeerState(*row) if row else PeerState(peer)

        return await self._call(fn)

    async def set_peer_state(self, state: PeerState) -> None:
        await self._changes(
            "INSERT INTO peers (name, failures, unavailable_since, next_probe, probe_interval) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET failures = "
            "excluded.failures, unavailable_since = excluded.unavailable_since, next_probe = "
            "excluded.next_probe, probe_interval = excluded.probe_interval",
            (state.name, state.failures, state.unavailable_since, state.next_probe,
             state.probe_interval))

    async def wake_peer(self, peer: str, now: int) -> None:
        await self._changes("UPDATE deliveries SET next_at = ? WHERE peer = ? AND next_at > ?",
                            (now, peer, now))

    async def pending_deliveries(self) -> int:
        return await self._call(
            lambda db: int(db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]))

    # -- federation: the witness ----------------------------------------------
    async def witnessed(self, origins: Sequence[str]) -> dict[str, WitnessRecord]:
        def fn(db: Connection) -> dict[str, WitnessRecord]:
            found = {}
            for origin in origins:
                row = db.execute("SELECT size, root, note FROM witnessed WHERE origin = ?",
                                 (origin,)).fetchone()
                if row is not None:
                    found[origin] = WitnessRecord(int(row[0]), bytes(row[1]), row[2])
            return found

        return await self._call(fn)

    async def update_witnessed(self, origin: str, previous: WitnessRecord | None,
                               record: WitnessRecord) -> bool:
        def fn(db: Connection) -> bool:
            row = db.execute("SELECT size, root, note FROM witnessed WHERE origin = ?",
                             (origin,)).fetchone()
            current = WitnessRecord(int(row[0]), bytes(row[1]), row[2]) if row else None
            if current != previous:
                return False
            db.execute("INSERT INTO witnessed (origin, size, root, note) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = "
                       "excluded.root, note = excluded.note",
                       (origin, record.size, record.root_hash, record.note))
            return True

        return await self._call(fn, write=True)

    async def add_evidence(self, evidence: Evidence, at: int) -> None:
        await self._changes(
            "INSERT INTO witness_evidence (origin, kind, recorded, offending, proof, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (evidence.origin, evidence.kind, evidence.recorded_note, evidence.offending_note,
             b"".join(evidence.proof), at))

    async def evidence(self) -> list[tuple[int, Evidence]]:
        def fn(db: Connection) -> list[tuple[int, Evidence]]:
            rows = db.execute("SELECT at, origin, kind, recorded, offending, proof FROM "
                              "witness_evidence ORDER BY id").fetchall()
            return [evidence_row(row) for row in rows]

        return await self._call(fn)


# -- functions run on the database thread ---------------------------------------

def _queue_sign(db: Connection, signature: int) -> None:
    """Queue the sign entry of a confirmed signature that has its nullifier."""
    db.execute(
        "INSERT INTO queue (petition, signature, kind, nullifier, commitment, version, region, "
        "at) SELECT petition, id, 'sign', nullifier, commitment, version, region, confirmed "
        "FROM signatures WHERE id = ?", (signature,))


def _schema_version(db: Connection) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _pending(db: Connection) -> list[int]:
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
               "applied INTEGER NOT NULL)")
    current = _schema_version(db)
    return pending_after("sqlite", current)


def _migrate(db: Connection) -> list[int]:
    pending = _pending(db)
    for number, script in migrations("sqlite"):
        if number not in pending:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (version, applied) "
                       "VALUES (?, strftime('%s', 'now'))", (number,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return pending


def _organiser(db: Connection, where: str, args: Sequence[Any]) -> Organiser | None:
    row = db.execute(f"SELECT id, name, password_hash FROM organisers WHERE {where}",
                     args).fetchone()
    return Organiser(*row) if row else None


def _signature(db: Connection, where: str, args: Sequence[Any]) -> SignatureRecord | None:
    row = db.execute(f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE {where}",
                     args).fetchone()
    return SignatureRecord(*row) if row else None


def _petitions(db: Connection, where: str, args: Sequence[Any]) -> list[PetitionRecord]:
    rows = db.execute("SELECT id, slug, petition_id, organiser, status, created, closed_at, "
                      f"roster, origin_key, origin_url FROM petitions {where} ORDER BY id",
                      args).fetchall()
    result = []
    for row in rows:
        versions = db.execute("SELECT document FROM petition_versions WHERE petition = ? "
                              "ORDER BY number", (row[0],)).fetchall()
        result.append(PetitionRecord(
            id=row[0], slug=row[1], petition_id=row[2], organiser_id=row[3], status=row[4],
            created=row[5], closed_at=row[6], versions=tuple(bytes(v[0]) for v in versions),
            roster=bytes(row[7]), origin_key=row[8], origin_url=row[9]))
    return result


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations have no ';' in literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def backup_file(source_path: Path, out: Path) -> int:
    """Copy a live database file consistently with SQLite's online backup API (a copy
    of one moment, the WAL's committed writes in it); check the copy's integrity and
    return its pages. A failed copy is removed."""
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(out)
    done = False
    try:
        source.backup(target)
        pages = int(target.execute("PRAGMA page_count").fetchone()[0])
        if target.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise NodeError("the copy fails SQLite's integrity check")
        done = True
        return pages
    except sqlite3.Error as e:
        raise NodeError(f"backup failed: {e}") from None
    finally:
        target.close()
        source.close()
        if not done:
            out.unlink(missing_ok=True)
