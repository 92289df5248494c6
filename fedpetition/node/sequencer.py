"""The sequencer: appends queued entries to each petition's log in batches.

Every period it takes what confirmations and withdrawals have queued, in queue
order, turns them into entries, appends them with the core's LogAppender, signs
a checkpoint, and commits tiles, checkpoint, log state and signature states in
one storage transaction (spec §6, §7). Only then does the in-memory state move
on, so a crash at any point leaves the stored log consistent and the queue
still holding whatever was not committed.

A node may run several processes on one database (``serve --workers``). Only
the one holding the storage's lease (:meth:`Storage.lead`) sequences; the
others follow what it commits, so that their pages show the same counts. Each
commit is a compare-and-swap on the log's size: should two processes ever both
believe they lead, one batch is refused (:class:`StaleLogError`) and its process
catches up instead, so a log can never fork.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fedpetition.core import encoding, names, tiles
from fedpetition.core.documents import PetitionVersion, SignedDocument
from fedpetition.core.entries import Entry, SignEntry, WithdrawEntry, coarse_time, parse_entry
from fedpetition.core.log import LogAppender, LogState
from fedpetition.core.notes import Checkpoint, Signer, open_checkpoint
from fedpetition.node.stats import PetitionStats
from fedpetition.node.storage import LogRecord, PetitionRecord, QueuedEntry, Storage
from fedpetition.node.storage.base import SIGN, StaleLogError

log = logging.getLogger("fedpetition.sequencer")


def encode_state(state: LogState) -> bytes:
    return encoding.encode(
        {
            "size": state.size,
            "tiles": {str(level): data for level, data in state.partial_tiles.items()},
            "entries": list(state.partial_entries),
        }
    )


def decode_state(data: bytes) -> LogState:
    value = encoding.decode_map(data, "log state")
    return LogState(
        value["size"], {int(k): v for k, v in value["tiles"].items()}, tuple(value["entries"])
    )


@dataclass
class PetitionLog:
    """One petition's log as the sequencer holds it between batches."""

    petition: int
    origin: str
    state: LogState
    last_time: int
    digests: dict[int, bytes]  # version number -> digest
    stats: PetitionStats
    checkpoint: Checkpoint  # the latest one, as committed
    note: bytes  # that checkpoint's signed note
    # What the node serves as the log's checkpoint: the latest one that met the
    # roster's witness policy, with its cosignatures (it may lag behind ``note``).
    published: bytes
    # Held while catching up with storage: concurrent requests replay each entry once.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Sequencer:
    def __init__(
        self,
        storage: Storage,
        signer: Signer,
        period: float,
        max_batch: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.signer = signer
        self.period = period
        self.max_batch = max_batch
        self.clock = clock
        self.logs: dict[int, PetitionLog] = {}
        # Called after each committed batch (the federation gathers cosignatures).
        self.on_commit: Callable[[PetitionLog], Awaitable[None]] | None = None
        # Told each batch's entry count and the seconds it took (the node's metrics).
        self.observe: Callable[[int, float], None] | None = None
        # Told when this process starts (True) or stops (False) being the sequencer.
        self.on_lead: Callable[[bool], Awaitable[None]] | None = None
        self.leading = False

    # -- loading ------------------------------------------------------------
    async def load(self, petition: PetitionRecord) -> PetitionLog:
        """Load a petition's log, creating its empty log (and checkpoint) if new."""
        if petition.id in self.logs:
            return self.logs[petition.id]
        origin = names.log_origin(self.signer.name, petition.petition_id)
        record = await self.storage.log(petition.id)
        if record is None:
            appender = LogAppender(origin)
            record = LogRecord(
                petition.id,
                0,
                encode_state(appender.state()),
                appender.signed_checkpoint(self.signer).encode(),
                0,
            )
            try:
                await self.storage.commit_batch(petition.id, None, [], record, [], [], [])
            except StaleLogError:  # another process created it first: take theirs
                stored = await self.storage.log(petition.id)
                assert stored is not None
                record = stored
        state = decode_state(record.state)
        stats = PetitionStats(origin)
        await self._replay(petition.id, 0, state.size, stats)
        checkpoint = open_checkpoint(record.checkpoint, self.signer.verifier_key()).checkpoint
        published = await self.storage.published(petition.id)
        entry = PetitionLog(petition.id, origin, state, record.last_time, _digests(petition),
                            stats, checkpoint, record.checkpoint, published or record.checkpoint)
        if petition.id in self.logs:  # loaded meanwhile by another task: keep that one
            return self.logs[petition.id]
        self.logs[petition.id] = entry
        if published is None and self.on_commit is not None:
            await self.on_commit(entry)  # never published: start gathering cosignatures
        return entry

    async def _replay(self, petition: int, begin: int, size: int, stats: PetitionStats
                      ) -> None:
        """Count entries ``begin`` to ``size`` from the stored entry bundles (the log is
        the truth)."""
        first = begin - begin % tiles.TILE_WIDTH
        for start in range(first, size, tiles.TILE_WIDTH):
            width = min(tiles.TILE_WIDTH, size - start)
            coord = tiles.TileCoord(0, start // tiles.TILE_WIDTH, width, "entries")
            data = await self.storage.read_file(petition, coord.path)
            if data is None:
                raise RuntimeError(f"log of petition {petition} lacks {coord.path}")
            for offset, raw in enumerate(tiles.decode_entry_bundle(data, width)):
                if start + offset >= begin:
                    stats.add(start + offset, parse_entry(raw))

    def refresh_versions(self, petition: PetitionRecord) -> None:
        current = self.logs.get(petition.id)
        if current is not None and len(current.digests) != len(petition.versions):
            current.digests = _digests(petition)

    async def catch_up(self, current: PetitionLog) -> None:
        """Move the in-memory log on to what storage holds (another process's batches)."""
        async with current.lock:
            record = await self.storage.log(current.petition)
            if record is not None and record.size > current.state.size:
                await self._replay(current.petition, current.state.size, record.size,
                                   current.stats)
                current.state = decode_state(record.state)
                current.last_time = record.last_time
                current.checkpoint = open_checkpoint(record.checkpoint,
                                                     self.signer.verifier_key()).checkpoint
                current.note = record.checkpoint
            published = await self.storage.published(current.petition)
            if published is not None:
                current.published = published

    async def catch_up_all(self) -> None:
        """Catch up every petition's log, loading those created by another process."""
        for petition in await self.storage.petitions():
            current = self.logs.get(petition.id)
            if current is None:
                await self.load(petition)
            else:
                self.refresh_versions(petition)
                await self.catch_up(current)

    # -- running ------------------------------------------------------------
    async def run(self) -> None:
        """Once per period: lead and flush the queued entries, or follow the leader."""
        while True:
            try:
                await self._period()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sequencing failed; the queue is kept and retried")
            await asyncio.sleep(self.period)

    async def _period(self) -> None:
        leading = await self.storage.lead()
        if leading and not self.leading:
            log.info("process %d is now the node's sequencer", os.getpid())
            await self.catch_up_all()  # what the previous sequencer committed
            if self.on_lead is not None:
                await self.on_lead(True)
            self.leading = True  # only once its work started: a failure is retried
        elif not leading and self.leading:
            self.leading = False
            if self.on_lead is not None:
                await self.on_lead(False)
        if leading:
            # The backlog is flushed batch after batch, the lease checked between them.
            while await self.sequence_once() >= self.max_batch and await self.storage.lead():
                pass
        else:
            await self.catch_up_all()

    async def sequence_once(self) -> int:
        """Sequence what is queued now; return how many queue rows were handled."""
        queued = await self.storage.queued(self.max_batch)
        if not queued:
            return 0
        by_petition: dict[int, list[QueuedEntry]] = {}
        for item in queued:
            by_petition.setdefault(item.petition, []).append(item)
        for petition, items in by_petition.items():
            await self._sequence_petition(petition, items)
        return len(queued)

    async def _sequence_petition(self, petition: int, items: list[QueuedEntry]) -> None:
        began = time.perf_counter()
        current = self.logs.get(petition)
        if current is None:
            record = await self.storage.petition_by_id(petition)
            if record is None:
                return
            current = await self.load(record)
        appender = LogAppender(current.origin, current.state)
        stats = current.stats
        states: dict[bytes, bool] = {}  # this batch's view of each nullifier: signed?
        built: list[Entry] = []
        accepted: list[int] = []
        dropped: list[int] = []
        sequenced: list[tuple[int, str, int]] = []
        last_time = current.last_time
        if any(item.version not in current.digests for item in items):
            # A version another process stored since this one loaded the petition.
            record = await self.storage.petition_by_id(petition)
            if record is not None:
                self.refresh_versions(record)
        for item in items:
            signed = states.get(item.nullifier, stats.is_signed(item.nullifier))
            digest = current.digests.get(item.version)
            if digest is None or signed == (item.kind == SIGN):
                # Would break the log rules (spec §9): a second sign of a signed
                # nullifier or a withdrawal of an unsigned one. Never appended.
                dropped.append(item.id)
                continue
            entry_time = max(coarse_time(item.at), last_time)
            entry: Entry
            if item.kind == SIGN:
                assert item.commitment is not None
                entry = SignEntry(digest, item.nullifier, item.commitment, entry_time,
                                  region=item.region)
            else:
                entry = WithdrawEntry(digest, item.nullifier, entry_time)
            index = appender.size + len(built)
            built.append(entry)
            accepted.append(item.id)
            states[item.nullifier] = item.kind == SIGN
            last_time = entry_time
            if item.signature is not None:
                sequenced.append((item.signature, item.kind, index))
        start = appender.size
        files = appender.append([e.encode() for e in built]) + appender.partial_files()
        note = appender.signed_checkpoint(self.signer).encode()
        batch = LogRecord(petition, appender.size, encode_state(appender.state()), note, last_time)
        try:
            await self.storage.commit_batch(petition, start, accepted, batch, files, sequenced,
                                            dropped)
        except StaleLogError:
            log.warning("the log of petition %d moved on under this batch (another "
                        "sequencer?); catching up, the queue is kept", petition)
            await self.catch_up(current)
            return
        if self.observe is not None:
            self.observe(len(built), time.perf_counter() - began)
        # Durable: now the in-memory view may move on.
        for offset, done in enumerate(built):
            stats.add(start + offset, done)
        current.state = appender.state()
        current.last_time = last_time
        current.checkpoint = appender.checkpoint()
        current.note = note
        if self.on_commit is not None:
            await self.on_commit(current)
        else:  # no federation: nothing to witness, the latest checkpoint is served
            current.published = note
        if dropped:
            log.warning("dropped %d queued entries that the log rules forbid", len(dropped))


def _digests(petition: PetitionRecord) -> dict[int, bytes]:
    digests = {}
    for number, document in enumerate(petition.versions, start=1):
        signed = SignedDocument.decode(document)
        PetitionVersion.decode(signed.body)  # stored documents are ours: fail loudly if not
        digests[number] = signed.digest
    return digests


__all__ = ["PetitionLog", "Sequencer", "decode_state", "encode_state"]
