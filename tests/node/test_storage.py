"""Both storage backends keep the node's guarantees, and keep them alike.

Each test runs once per backend (the ``databases`` fixture; PostgreSQL where
FEDPETITION_TEST_POSTGRES names a server). Several storage objects opened on one
database stand for several processes of one node: on PostgreSQL they share the
sequencer lease and the rate-limit counters, and every compare-and-swap holds
between them. A node exported from one backend and imported into the other
exports the same rows again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fedpetition.core.witness import Evidence
from fedpetition.core.witness import LogRecord as WitnessRecord
from fedpetition.federation.delivery import PeerState
from fedpetition.node.config import DatabaseSection
from fedpetition.node.errors import ConfigError, NodeError, StorageError
from fedpetition.node.storage import open_storage, storage_for
from fedpetition.node.storage.base import (
    EXPORT_TABLES,
    Follower,
    HostRequest,
    LogRecord,
    StaleLogError,
    Storage,
    Table,
    migrations,
)
from tests.conftest import POSTGRES_ENV, Databases

Rows = dict[str, list[tuple[Any, ...]]]


def section(url: str) -> DatabaseSection:
    """The ``[database]`` section a config with this URL gives."""
    if url.startswith("sqlite:"):
        return DatabaseSection(url, Path(url.removeprefix("sqlite://")))
    return DatabaseSection(url, None)


@contextlib.asynccontextmanager
async def opened(url: str, *, migrate: bool = True) -> AsyncIterator[Storage]:
    storage = await open_storage(section(url), migrate=migrate)
    try:
        yield storage
    finally:
        await storage.close()


@contextlib.asynccontextmanager
async def processes(url: str, count: int) -> AsyncIterator[list[Storage]]:
    """``count`` storages on one database, as ``count`` processes of a node open it."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(opened(url)) for _ in range(count)]


async def execute(url: str, sql: str) -> None:
    """Run SQL on a node's database behind its storage's back."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
            db.execute(sql)
            db.commit()
        return
    parts = urllib.parse.urlsplit(url)
    schema = dict(urllib.parse.parse_qsl(parts.query))["schema"]
    connection = await asyncpg.connect(urllib.parse.urlunsplit(parts._replace(query="")),
                                       server_settings={"search_path": schema})
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def known_versions(backend: str) -> list[int]:
    return [number for number, _ in migrations(backend)]


async def new_petition(storage: Storage, slug: str = "clean-air") -> int:
    organiser = await storage.create_organiser(f"organiser-{slug}", b"hash", slug.encode(), 100)
    return await storage.create_petition(slug, f"id-{slug}", organiser, b"version 1",
                                         b"roster", 100)


async def queued_signature(storage: Storage, petition: int, name: bytes, now: int = 200
                           ) -> int:
    """A confirmed signature with its nullifier: its sign entry is queued."""
    signature = await storage.create_pending(petition, b"index-" + name, b"sealed-" + name,
                                             None, b"token-" + name, now, now + 3600)
    assert signature is not None
    assert await storage.confirm(signature, b"token-" + name, now + 1, 1,
                                 b"nullifier-" + name, b"commitment-" + name)
    return signature


def checkpoint(size: int, root: bytes = b"root") -> bytes:
    return b"example.org/clean-air\n%d\n%s\n" % (size, root)


# -- migrations ---------------------------------------------------------------------

async def test_a_fresh_database_gets_every_migration_once(databases: Databases) -> None:
    url = databases.url()
    async with opened(url) as storage:
        assert await storage.schema_version() == known_versions(databases.backend)[-1]
        assert await storage.pending_migrations() == []
        assert await storage.migrate() == []
        assert await storage.is_empty()
    async with opened(url, migrate=False) as storage:
        assert await storage.schema_version() == known_versions(databases.backend)[-1]


async def test_an_unmigrated_database_is_refused_without_migrate(databases: Databases
                                                                 ) -> None:
    url = databases.url()
    with pytest.raises(ConfigError, match="fedpetition migrate"):
        await open_storage(section(url), migrate=False)
    async with opened(url) as storage:
        assert await storage.pending_migrations() == []


async def test_a_database_newer_than_the_code_is_refused(databases: Databases) -> None:
    url = databases.url()
    async with opened(url):
        pass
    await execute(url, "INSERT INTO schema_migrations (version, applied) VALUES (999, 0)")
    for migrate in (True, False):
        with pytest.raises(ConfigError, match="upgrade fedpetition"):
            await open_storage(section(url), migrate=migrate)


async def test_processes_starting_together_migrate_once(databases: Databases) -> None:
    if databases.backend == "sqlite":
        pytest.skip("one process serves a node on SQLite")
    url = databases.url()
    storages = await asyncio.gather(*(open_storage(section(url)) for _ in range(4)))
    try:
        for storage in storages:
            assert await storage.pending_migrations() == []
        await new_petition(storages[0])
        assert len(await storages[3].petitions()) == 1
    finally:
        for storage in storages:
            await storage.close()


# -- the log: compare-and-swap ----------------------------------------------------------

async def test_a_batch_on_a_stale_log_stores_nothing(databases: Databases) -> None:
    async with opened(databases.url()) as storage:
        petition = await new_petition(storage)
        first = await queued_signature(storage, petition, b"a")
        second = await queued_signature(storage, petition, b"b")
        entries = await storage.queued(10)
        assert [entry.signature for entry in entries] == [first, second]

        await storage.commit_batch(
            petition, None, [entries[0].id], LogRecord(petition, 1, b"state-1", checkpoint(1),
                                                       201),
            [("tile/0/000.p/1", b"tile-1")], [(first, "sign", 0)], [])
        for stale in (None, 0, 2):
            with pytest.raises(StaleLogError):
                await storage.commit_batch(
                    petition, stale, [entries[1].id],
                    LogRecord(petition, 2, b"state-2", checkpoint(2), 202),
                    [("tile/0/000.p/2", b"tile-2")], [(second, "sign", 1)], [])

        assert await storage.log(petition) == LogRecord(petition, 1, b"state-1", checkpoint(1),
                                                        201)
        assert await storage.checkpoints(petition) == [(1, checkpoint(1))]
        assert await storage.read_file(petition, "tile/0/000.p/1") == b"tile-1"
        assert await storage.read_file(petition, "tile/0/000.p/2") is None
        assert [entry.id for entry in await storage.queued(10)] == [entries[1].id]
        record = await storage.signature_by_index(petition, b"index-b")
        assert record is not None and (record.status, record.log_index) == ("confirmed", None)
        counted = await storage.signature_by_index(petition, b"index-a")
        assert counted is not None and (counted.status, counted.log_index) == ("counted", 0)

        with pytest.raises(NodeError, match="shrink"):
            await storage.commit_batch(petition, 1, [],
                                       LogRecord(petition, 0, b"", checkpoint(0), 203), [], [],
                                       [])


async def test_of_two_sequencers_on_one_log_size_one_commits(databases: Databases) -> None:
    async with processes(databases.url(), 3) as storages:
        petition = await new_petition(storages[0])
        size: int | None = None
        for round_ in range(4):
            new = (size or 0) + 1
            results = await asyncio.gather(
                *(storage.commit_batch(
                    petition, size, [],
                    LogRecord(petition, new, b"state", checkpoint(new, b"by-%d" % i), round_),
                    [(f"tile/0/{new:03d}", b"by-%d" % i)], [], [])
                  for i, storage in enumerate(storages)),
                return_exceptions=True)
            winners = [i for i, result in enumerate(results) if result is None]
            assert len(winners) == 1, results
            assert all(isinstance(result, StaleLogError) for result in results
                       if result is not None), results
            assert await storages[1].read_file(petition, f"tile/0/{new:03d}") == (
                b"by-%d" % winners[0])
            assert (await storages[2].checkpoints(petition))[-1] == (
                new, checkpoint(new, b"by-%d" % winners[0]))
            size = new
        assert len(await storages[0].checkpoints(petition)) == 4


# -- several processes, one sequencer ---------------------------------------------------

async def test_one_process_leads(databases: Databases) -> None:
    url = databases.url()
    if databases.backend == "sqlite":
        async with opened(url) as storage:
            assert not storage.shared
            assert await storage.lead()
            assert await storage.lead()
        assert not await storage.lead()
        return
    async with opened(url) as second:
        assert second.shared
        async with opened(url) as first:
            assert await first.lead()
            assert not await second.lead()
            assert await first.lead()  # kept
            assert not await second.lead()
        assert await second.lead()  # the holder closed: the lease is free
        async with opened(url) as third:
            assert not await third.lead()


async def test_the_lease_goes_when_its_connection_dies(databases: Databases) -> None:
    if databases.backend == "sqlite":
        pytest.skip("on SQLite the lease is the open storage itself")
    url = databases.url()
    schema = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["schema"]
    async with processes(url, 2) as (first, second):
        assert await first.lead()
        assert not await second.lead()
        # The server ends the holder's session, as when its process or host dies.
        await execute(url, "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE "
                           "locktype = 'advisory' AND granted AND objsubid = 2 AND objid = "
                           f"(hashtext('{schema}')::bigint & 4294967295)::oid")
        assert not await first.lead()
        assert await second.lead()
        assert not await first.lead()  # tries again on a new connection: taken


# -- shared state -----------------------------------------------------------------------

async def test_count_event_counts_per_key_in_fixed_windows(databases: Databases) -> None:
    async with processes(databases.url(), 2) as (first, second):
        assert [await first.count_event("10.0.0.1", 60, now) for now in (120, 150, 179)] == [
            1, 2, 3]
        assert await first.count_event("10.0.0.2", 60, 179) == 1
        assert await first.count_event("10.0.0.1", 3600, 179) == 1  # another window length
        assert await first.count_event("10.0.0.1", 60, 180) == 1  # the next window
        assert await first.count_event("10.0.0.1", 60, 239) == 2
        if first.shared:
            # Every process counts in one counter, and housekeeping drops ended windows.
            assert await second.count_event("10.0.0.1", 60, 239) == 3
            assert await second.delete_expired_pending(240) == 0
            assert await first.count_event("10.0.0.1", 60, 239) == 1
        else:
            assert await second.count_event("10.0.0.1", 60, 239) == 1


async def test_update_witnessed_is_a_compare_and_swap(databases: Databases) -> None:
    one = WitnessRecord(1, b"\x01" * 32, "log.example\n1\nAQ==\n")
    two = WitnessRecord(2, b"\x02" * 32, "log.example\n2\nAg==\n")
    three = WitnessRecord(3, b"\x03" * 32, "log.example\n3\nAw==\n")
    async with processes(databases.url(), 2) as (first, second):
        assert await first.update_witnessed("log.example", None, one)
        assert not await second.update_witnessed("log.example", None, two)
        assert not await second.update_witnessed("log.example", two, three)
        assert await second.update_witnessed("log.example", one, two)
        assert not await first.update_witnessed("log.example", one, three)
        assert await first.witnessed(["other", "log.example"]) == {"log.example": two}

        racing = await asyncio.gather(first.update_witnessed("b.example", None, one),
                                      second.update_witnessed("b.example", None, two))
        assert sorted(racing) == [False, True]
        stored = (await first.witnessed(["b.example"]))["b.example"]
        assert stored == (one if racing[0] else two)


async def test_remember_activity_refuses_a_replay(databases: Databases) -> None:
    async with processes(databases.url(), 2) as (first, second):
        assert await first.remember_activity("https://b.example/a/1", 1000, 100)
        assert not await second.remember_activity("https://b.example/a/1", 1000, 200)
        await second.forget_activity("https://b.example/a/1")
        assert await first.remember_activity("https://b.example/a/1", 1000, 300)
        # Past its expiry an id is forgotten and may be seen anew.
        assert await second.remember_activity("https://b.example/a/1", 3000, 1001)
        assert not await first.remember_activity("https://b.example/a/1", 3000, 1002)

        racing = await asyncio.gather(first.remember_activity("https://b.example/a/2", 9, 1),
                                      second.remember_activity("https://b.example/a/2", 9, 1))
        assert sorted(racing) == [False, True]


async def test_one_email_has_one_pending_signature(databases: Databases) -> None:
    async with processes(databases.url(), 2) as (first, second):
        petition = await new_petition(first)
        signature = await first.create_pending(petition, b"index", b"sealed", "FR", b"t1", 100,
                                               200)
        assert signature is not None
        assert await second.create_pending(petition, b"index", b"other", None, b"t2", 150,
                                           250) is None
        # Once its link expired, a pending signature is replaced, keeping its id.
        assert await second.create_pending(petition, b"index", b"new", None, b"t3", 200,
                                           300) == signature
        record = await first.signature_by_token(b"t3")
        assert record is not None and (record.sealed, record.region, record.expires) == (
            b"new", None, 300)
        assert await first.signature_by_token(b"t1") is None

        racing = await asyncio.gather(
            first.create_pending(petition, b"racing", b"s1", None, b"r1", 100, 200),
            second.create_pending(petition, b"racing", b"s2", None, b"r2", 100, 200))
        assert sum(found is not None for found in racing) == 1, racing


async def test_a_published_checkpoint_never_goes_back(databases: Databases) -> None:
    async with opened(databases.url()) as storage:
        petition = await new_petition(storage)
        assert not await storage.set_published(petition, checkpoint(1), 1)  # no log yet
        await storage.commit_batch(petition, None, [],
                                   LogRecord(petition, 5, b"s", checkpoint(5), 1), [], [], [])
        assert await storage.set_published(petition, checkpoint(5) + b"\n- w1\n", 5)
        assert not await storage.set_published(petition, checkpoint(4), 4)
        assert await storage.set_published(petition, checkpoint(5) + b"\n- w2\n", 5)
        assert await storage.published(petition) == checkpoint(5) + b"\n- w2\n"


async def test_a_taken_name_is_refused_and_takes_no_id(databases: Databases) -> None:
    async with opened(databases.url()) as storage:
        alice = await storage.create_organiser("alice", b"h", b"t1", 100)
        with pytest.raises(NodeError, match="an organiser named 'alice' already exists"):
            await storage.create_organiser("alice", b"h", b"t2", 100)
        assert await storage.create_organiser("bob", b"h", b"t3", 100) == alice + 1
        assert await storage.organiser_count() == 2

        first = await storage.create_petition("air", "pid-1", alice, b"v", b"r", 100)
        for slug, petition_id in (("air", "pid-2"), ("water", "pid-1")):
            with pytest.raises(NodeError, match="a petition named"):
                await storage.create_petition(slug, petition_id, alice, b"v", b"r", 100)
            with pytest.raises(NodeError, match="already exists here"):
                await storage.create_hosted_petition(slug, petition_id, [b"v"], b"r", "key",
                                                     "https://a.example/p", 100)
        hosted = await storage.create_hosted_petition("water", "pid-2", [b"v1", b"v2"], b"r",
                                                      "key", "https://a.example/p", 100)
        assert hosted == first + 1
        record = await storage.petition_by_petition_id("pid-2")
        assert record is not None and record.versions == (b"v1", b"v2")
        assert not record.is_local and record.organiser_id is None


async def test_signatures_move_through_their_states(databases: Databases) -> None:
    async with opened(databases.url()) as storage:
        petition = await new_petition(storage)
        late = await storage.create_pending(petition, b"late", b"s", None, b"t-late", 100, 500)
        early = await storage.create_pending(petition, b"early", b"s", "FR", b"t-early", 100,
                                             500)
        stale = await storage.create_pending(petition, b"stale", b"s", None, b"t-stale", 100,
                                             150)
        assert late is not None and early is not None and stale is not None
        assert not await storage.confirm(stale, b"t-stale", 160, 1, None, b"c")  # expired
        assert not await storage.confirm(late, b"t-early", 160, 1, None, b"c")  # wrong token
        assert await storage.confirm(late, b"t-late", 170, 1, None, b"c-late")
        assert await storage.confirm(early, b"t-early", 160, 1, None, b"c-early")
        assert not await storage.confirm(early, b"t-early", 161, 1, None, b"c-early")

        found = await storage.signatures_by_indexes(
            [(petition, b"late"), (petition, b"missing"), (petition + 1, b"early"),
             (petition, b"early")])
        assert [record.id for record in found] == [late, early]
        assert [record.id for record in await storage.awaiting_nullifiers(10)] == [early, late]
        assert await storage.set_nullifiers([(late, b"n-late"), (early, b"n-early"),
                                             (late, b"n-again")]) == 2
        assert await storage.awaiting_nullifiers(10) == []
        assert [(entry.signature, entry.kind, entry.nullifier, entry.commitment, entry.at)
                for entry in await storage.queued(10)] == [
            (late, "sign", b"n-late", b"c-late", 170), (early, "sign", b"n-early", b"c-early",
                                                        160)]

        assert await storage.rotate_token(stale, b"t-stale-2", 300, 900)
        record = await storage.signature_by_token(b"t-stale-2")
        assert record is not None and record.expires == 900
        assert await storage.rotate_token(early, b"t-early-2", 300, 900)
        record = await storage.signature_by_token(b"t-early-2")
        assert record is not None and record.expires is None  # confirmed: no expiry
        assert not await storage.request_withdrawal(early, b"t-early", 310, 1)  # old token
        assert await storage.request_withdrawal(early, b"t-early-2", 310, 1)
        assert not await storage.request_withdrawal(early, b"t-early-2", 311, 1)
        assert [(entry.signature, entry.kind, entry.commitment, entry.at)
                for entry in await storage.queued(10)][-1] == (early, "withdraw", None, 310)

        assert await storage.delete_expired_pending(900) == 1
        assert await storage.erase_signatures([late, late, stale]) == 1
        assert await storage.close_petition(petition, 1000)
        assert not await storage.close_petition(petition, 1001)
        assert await storage.purge_closed(1000) == 0  # not closed before 1000
        assert await storage.purge_closed(2000) == 0  # withdrawing: kept until sequenced


async def test_deliveries_wait_for_their_time(databases: Databases) -> None:
    async with opened(databases.url()) as storage:
        ids = await storage.enqueue_deliveries(
            [("b.example", "https://b.example/inbox", b"1"),
             ("c.example", "https://c.example/inbox", b"2"),
             ("b.example", "https://b.example/inbox", b"3")], 100)
        assert ids == sorted(ids) and len(set(ids)) == 3
        await storage.reschedule_delivery(ids[0], 1, 300, "x" * 600)
        await storage.reschedule_delivery(ids[1], 1, 200, "refused")
        assert [d.id for d in await storage.due_deliveries(150, 10)] == [ids[2]]
        assert [d.id for d in await storage.due_deliveries(400, 2)] == [ids[2], ids[1]]
        await storage.wake_peer("b.example", 150)
        due = await storage.due_deliveries(150, 10)
        assert [(d.id, d.body, d.attempts, d.next_at) for d in due] == [
            (ids[2], b"3", 0, 100), (ids[0], b"1", 1, 150)]
        await storage.delivered(ids[0])
        await storage.drop_delivery(ids[1], "gone")
        assert await storage.pending_deliveries() == 1
        assert await storage.peer_state("b.example") == PeerState("b.example")
        await storage.set_peer_state(PeerState("b.example", 2, 100, 160, 30))
        assert await storage.peer_state("b.example") == PeerState("b.example", 2, 100, 160, 30)


# -- export and import --------------------------------------------------------------------

async def fill(storage: Storage) -> None:
    """A row in every exported table, written through the storage's own methods."""
    alice = await storage.create_organiser("alice", b"hash-a", b"token-a", 100)
    await storage.create_organiser("Émile", b"hash-e", b"token-e", 101)
    await storage.create_session(b"session-2", alice, 10_000)
    await storage.create_session(b"session-1", alice, 20_000)
    petition = await storage.create_petition("clean-air", "pid-1", alice, b"version 1",
                                             b"roster 1", 110)
    await storage.add_version(petition, 2, b"version 2", 120)
    hosted = await storage.create_hosted_petition(
        "hosted", "pid-2", [b"hosted 1", b"hosted 2"], b"roster h", "origin-key",
        "https://a.example/petitions/hosted", 130)
    await storage.close_petition(hosted, 140)

    signed = await queued_signature(storage, petition, b"counted")
    withdrawn = await queued_signature(storage, petition, b"withdrawn")
    await queued_signature(storage, petition, b"queued")
    assert await storage.create_pending(petition, b"index-pending", b"sealed", "FR-75",
                                        b"token-pending", 200, 9_000) is not None
    awaiting = await storage.create_pending(hosted, b"index-h", b"sealed-h", None, b"token-h",
                                            200, 9_000)
    assert awaiting is not None
    assert await storage.confirm(awaiting, b"token-h", 201, 2, None, b"commitment-h")
    entries = await storage.queued(10)
    await storage.commit_batch(
        petition, None, [entries[0].id, entries[1].id],
        LogRecord(petition, 2, b"state", checkpoint(2), 205),
        [("tile/0/000.p/2", b"hashes"), ("tile/entries/000.p/2", b"entries")],
        [(signed, "sign", 0), (withdrawn, "sign", 1)], [])
    assert await storage.request_withdrawal(withdrawn, b"token-withdrawn", 210, 2)
    assert await storage.set_published(petition, checkpoint(2) + b"\n- witness sig\n", 2)

    await storage.put_host_request(HostRequest(
        petition, "b.example", "vkey-b", "https://b.example/inbox", "https://b.example/a/1",
        "pending", 300))
    for actor in ("https://b.example/actor", "https://B.example/actor",
                  "https://é.example/actor", "https://a.example/actor"):
        await storage.add_follower(Follower(petition, actor, actor + "/inbox", actor + "/f"))
    ids = await storage.enqueue_deliveries(
        [("b.example", "https://b.example/inbox", b'{"type": "Update"}'),
         ("c.example", "https://c.example/inbox", b'{"type": "Announce"}')], 310)
    await storage.reschedule_delivery(ids[1], 1, 400, "timeout")
    await storage.set_peer_state(PeerState("c.example", 3, 300, 500, 60))
    await storage.set_peer_state(PeerState("b.example"))
    assert await storage.remember_activity("https://b.example/a/1", 99_000, 320)
    assert await storage.remember_activity("https://B.example/a/2", 99_000, 320)
    assert await storage.update_witnessed(
        "log.example", None, WitnessRecord(7, b"\x07" * 32, "log.example\n7\nBw==\n"))
    await storage.add_evidence(Evidence("fork", "log.example", "note one\n", "note two\n",
                                        (b"\x01" * 32, b"\x02" * 32)), 330)
    await storage.add_evaluations(petition, "b.example", 3)
    await storage.add_evaluations(petition, "a.example", 2)
    await storage.add_evaluations(petition, "b.example", 4)


async def export_all(storage: Storage) -> Rows:
    rows: Rows = {}
    for table in EXPORT_TABLES:
        rows[table.name] = []
        async for chunk in storage.export_rows(table, 2):  # several pages per table
            rows[table.name].extend(chunk)
    return rows


@pytest.fixture
def other_backend(databases: Databases, tmp_path: Path,
                  request: pytest.FixtureRequest) -> Databases:
    """Databases of the other backend where PostgreSQL is available, else the same one.

    Its PostgreSQL schemas go with the test session's database."""
    if databases.backend == "postgresql":
        return Databases("sqlite", None, tmp_path)
    if os.environ.get(POSTGRES_ENV):
        return Databases("postgresql", request.getfixturevalue("postgres_database"),
                         tmp_path)
    return databases


async def test_a_node_moves_between_backends(databases: Databases,
                                             other_backend: Databases) -> None:
    async with opened(databases.url()) as source:
        await fill(source)
        exported = await export_all(source)
    assert all(exported.values()), [name for name, rows in exported.items() if not rows]
    assert [row[1] for row in exported["followers"]] == [
        "https://B.example/actor", "https://a.example/actor", "https://b.example/actor",
        "https://é.example/actor"]  # by bytes, whatever the database's collation

    async with opened(other_backend.url()) as target:
        assert await target.is_empty()
        for table in EXPORT_TABLES:
            await target.import_rows(table, exported[table.name])
        await target.finish_import()
        assert not await target.is_empty()
        again = await export_all(target)
        for table in EXPORT_TABLES:
            assert again[table.name] == exported[table.name], table.name

        # New rows get ids past the imported ones.
        def last(table: str) -> int:
            return max(int(row[0]) for row in exported[table])

        organiser = await target.create_organiser("new", b"hash", b"token-new", 500)
        assert organiser == last("organisers") + 1
        petition = await target.create_petition("new", "pid-new", organiser, b"v", b"r", 500)
        assert petition == last("petitions") + 1
        signature = await queued_signature(target, petition, b"new", 500)
        assert signature == last("signatures") + 1
        assert (await target.queued(10))[-1].id == last("queue") + 1
        assert await target.enqueue_deliveries([("b.example", "https://b.example/inbox",
                                                 b"{}")], 500) == [last("deliveries") + 1]
        await target.add_evidence(Evidence("inconsistent", "log.example", "a\n", "b\n", ()),
                                  500)
        assert len(await target.evidence()) == 2
        assert await target.petition_by_slug("clean-air") == await target.petition_by_id(
            int(exported["petitions"][0][0]))


async def test_only_exported_tables_reach_sql(databases: Databases) -> None:
    async with opened(databases.url()) as storage:
        forged = Table("organisers; DROP TABLE organisers", EXPORT_TABLES[0].columns)
        with pytest.raises(NodeError, match="unknown table"):
            await storage.import_rows(forged, [])
        with pytest.raises(NodeError, match="unknown table"):
            async for _ in storage.export_rows(forged, 10):
                pass


# -- PostgreSQL URLs --------------------------------------------------------------------

def test_a_schema_name_must_be_a_plain_identifier() -> None:
    for name in ("Node", "1node", "node-a", "a" * 64, 'x"; DROP SCHEMA public; --'):
        url = "postgresql://u@127.0.0.1/db?" + urllib.parse.urlencode({"schema": name})
        with pytest.raises(ConfigError, match="schema"):
            storage_for(section(url))
    storage_for(section("postgresql://u@127.0.0.1/db?schema=_node_1&sslmode=disable"))


async def test_a_server_out_of_reach_is_named_without_the_url() -> None:
    url = "postgresql://petitions:s3cret-pw@127.0.0.1:1/petitions?schema=node_a"
    with pytest.raises(ConfigError) as caught:
        await open_storage(section(url))
    message = str(caught.value)
    assert message.startswith("[database] cannot connect to PostgreSQL at 127.0.0.1:1: ")
    assert "s3cret" not in message and "petitions" not in message


async def test_text_keys_sort_by_bytes_on_postgresql(databases: Databases) -> None:
    """Text in a key is COLLATE "C", so exports come out in SQLite's order whatever the
    database's own collation."""
    if databases.backend == "sqlite":
        pytest.skip("SQLite compares text by bytes")
    url = databases.url()
    async with opened(url):
        pass
    parts = urllib.parse.urlsplit(url)
    schema = dict(urllib.parse.parse_qsl(parts.query))["schema"]
    connection = await asyncpg.connect(urllib.parse.urlunsplit(parts._replace(query="")))
    try:
        rows = await connection.fetch(
            "SELECT k.table_name, k.column_name, c.collation_name "
            "FROM information_schema.key_column_usage k JOIN information_schema.columns c "
            "USING (table_schema, table_name, column_name) "
            "WHERE k.table_schema = $1 AND c.data_type = 'text'", schema)
    finally:
        await connection.close()
    keys = {(row[0], row[1]): row[2] for row in rows}
    assert ("followers", "actor") in keys and ("organisers", "name") in keys
    assert {key for key, collation in keys.items() if collation != "C"} == set()


async def test_database_failures_become_the_nodes_errors(databases: Databases) -> None:
    """A value PostgreSQL cannot hold is a 400, a lost connection a 503 (callers retry),
    and the storage works again once the server is back: never a raw driver error."""
    if databases.backend != "postgresql":
        pytest.skip("SQLite stores any text and has no server to lose")
    url = databases.url()
    async with opened(url) as storage:
        with pytest.raises(StorageError) as refused:
            await storage.petition_by_slug("a\x00b")
        assert refused.value.status == 400
        await new_petition(storage)
        assert databases.postgres is not None
        server = urllib.parse.urlsplit(databases.postgres)
        database = server.path.lstrip("/")
        admin = await asyncpg.connect(urllib.parse.urlunsplit(server._replace(path="/postgres")))
        try:  # the server refuses this database's sessions, and ends those it had
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1", database)
            with pytest.raises(StorageError) as away:
                await storage.petition_by_slug("clean-air")
            assert away.value.status == 503 and "unavailable" in str(away.value)
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            await admin.close()
        assert await storage.petition_by_slug("clean-air") is not None


async def test_a_failed_commit_fails_every_write_of_its_group(tmp_path: Path) -> None:
    """SQLite commits writes in groups (ADR 3): if the group's transaction fails, each
    of its writes is answered with the error and none is kept."""
    from fedpetition.node.storage.sqlite import _DatabaseThread, _Job

    conn = sqlite3.connect(tmp_path / "group.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")
    loop = asyncio.get_running_loop()

    def job(fn: Any) -> _Job:
        return _Job(fn, True, loop, loop.create_future())

    kept = job(lambda db: db.execute("INSERT INTO t VALUES (1)"))
    breaks = job(lambda db: db.execute("ROLLBACK"))  # ends the group's transaction
    outcomes = _DatabaseThread._write_group(conn, [kept, breaks])
    assert [o[0] for o in outcomes] == [kept, breaks]
    assert all(isinstance(o[2], NodeError) and "database write failed" in str(o[2])
               for o in outcomes)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    # Without the saboteur, the same write is kept and answered with its result.
    [(job_, result, error)] = _DatabaseThread._write_group(conn, [kept])
    assert (job_, error) == (kept, None) and result is not None
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    conn.close()
