"""One log's entries, checked in chunks that can run on several cores (spec §11.3.8-10).

A log is cut into chunks of whole entry bundles. :func:`check_chunk` does the work
that needs no state from earlier chunks: it decodes entry bundles, scans each
entry (entry-format), hashes the leaves, compares the level-0 tiles and returns
the root of every full level-0 tile (tree-hashes). :class:`LogMerger` then takes
the chunk results in order and does what is sequential: time order across
chunks, each nullifier's state (log-rules), the tiles above level 0 and the root.

Chunks are independent, so an adapter may run :func:`check_chunk` in worker
processes; the result is the same as running them one after another, here.
"""

from __future__ import annotations

import base64
import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from . import merkle, tiles
from .bundle import FileSource
from .entries import parse_entry, scan_entry
from .errors import FedPetitionError, VerificationError
from .notes import Checkpoint
from .tally import LogTally

STEP_ENTRIES = "entry-format"
STEP_TREE = "tree-hashes"
CHUNK_BUNDLES = 32  # entry bundles (of 256 entries) per chunk
_W = tiles.TILE_WIDTH


@dataclass(frozen=True)
class PetitionRules:
    """What entries are checked against: the petition's versions and deadline."""

    earliest: dict[bytes, int]  # version digest -> earliest hour an entry may bind to it
    deadline: int


@dataclass(frozen=True)
class ChunkJob:
    """Entries ``[start, end)`` of a log whose checkpoint has ``size`` entries."""

    origin: str
    size: int
    start: int
    end: int
    rules: PetitionRules


@dataclass
class ChunkResult:
    """What a chunk check found, in a form cheap to send between processes.

    Entries are columns: ``kinds`` has one byte per entry (1 sign, 0 withdraw),
    ``nullifiers`` one 32-byte value per entry, ``values`` one index per entry
    into ``value_table``, the few distinct (version digest, region) pairs of the
    chunk. If a check failed, the columns hold the entries before the failing one
    and ``error`` is ``(step, reason, index)``.
    """

    job: ChunkJob
    tile_roots: list[bytes]
    tail: list[bytes]  # leaf hashes of a trailing partial tile (the log's last chunk)
    kinds: bytes
    nullifiers: list[bytes]
    values: array[int]
    value_table: list[tuple[bytes, str | None]]
    first_time: int
    last_time: int
    error: tuple[str, str, int | None] | None = None


ChunkRunner = Callable[[Iterable[ChunkJob]], Iterator[ChunkResult]]


def chunk_jobs(origin: str, size: int, rules: PetitionRules) -> list[ChunkJob]:
    """Cut a log of ``size`` entries into chunks of whole entry bundles."""
    step = CHUNK_BUNDLES * _W
    return [ChunkJob(origin, size, start, min(size, start + step), rules)
            for start in range(0, size, step)]


def _read(source: FileSource, step: str, path: str, origin: str) -> bytes:
    try:
        return source.read(path)
    except FedPetitionError as e:
        raise VerificationError(step, f"cannot read {path}: {e}", log=origin) from e


def _tile_error(origin: str, coord: tiles.TileCoord, served: bytes,
                expected: bytes) -> VerificationError:
    """Name the first entry covered by the first hash of a tile that differs."""
    first = next((i for i in range(0, len(expected), 32)
                  if served[i:i + 32] != expected[i:i + 32]), 0) // 32
    index = (coord.index * _W + first) * _W ** coord.level
    return VerificationError(STEP_TREE, f"tile {coord.path} does not match the entries "
                             f"(hash {first})", log=origin, index=index)


def _entry_error(raw: bytes, origin: str, index: int) -> VerificationError:
    """The precise reason an entry failed the fast scan (spec §4)."""
    try:
        parse_entry(raw)
    except FedPetitionError as e:
        return VerificationError(STEP_ENTRIES, str(e), log=origin, index=index)
    # The scanner and the decoder disagree: a bug, but never count such an entry.
    return VerificationError(STEP_ENTRIES, "entry rejected by the scanner", log=origin,
                             index=index)


def check_chunk(source: FileSource, job: ChunkJob) -> ChunkResult:
    """Check one chunk: entry-format and the level-0 part of tree-hashes."""
    origin, rules = job.origin, job.rules
    earliest, deadline = rules.earliest, rules.deadline
    sha256 = hashlib.sha256
    leaf_prefix = b"\x00"
    kinds = bytearray()
    nullifiers: list[bytes] = []
    value_index: dict[tuple[bytes, str | None], int] = {}
    values = array("I")
    tile_roots: list[bytes] = []
    tail: list[bytes] = []
    first_time = last_time = -1
    index = job.start
    scan = scan_entry
    earliest_get = earliest.get
    add_kind, add_nullifier = kinds.append, nullifiers.append
    add_value, value_get = values.append, value_index.get
    error: tuple[str, str, int | None] | None = None
    try:
        for start in range(job.start, job.end, _W):
            width = min(_W, job.size - start)
            coord = tiles.TileCoord(0, start // _W, width, "entries")
            data = _read(source, STEP_ENTRIES, f"{origin}/{coord.path}", origin)
            try:
                raw_entries = tiles.decode_entry_bundle(data, width)
            except FedPetitionError as e:
                raise VerificationError(STEP_ENTRIES, f"entry bundle {coord.path}: {e}",
                                        log=origin, index=start) from e
            leaves: list[bytes] = []
            add_leaf = leaves.append
            for raw in raw_entries:
                add_leaf(sha256(leaf_prefix + raw).digest())
                scanned = scan(raw)
                if scanned is None:
                    raise _entry_error(raw, origin, index)
                is_sign, petition, nullifier, time, region = scanned
                first = earliest_get(petition)
                if first is None:
                    raise VerificationError(STEP_ENTRIES, "entry binds to no version of this "
                                            "petition", log=origin, index=index)
                if time < first or time < last_time or time > deadline:
                    raise VerificationError(
                        STEP_ENTRIES, f"entry time {time} is before its version, before the "
                        "previous entry, or after the deadline", log=origin, index=index)
                if last_time < 0:
                    first_time = time  # for the merger's check across chunk boundaries
                last_time = time
                add_kind(is_sign)
                add_nullifier(nullifier)
                pair = (petition, region)
                value = value_get(pair)
                if value is None:
                    value = value_index[pair] = len(value_index)
                add_value(value)
                index += 1
            tile = tiles.TileCoord(0, start // _W, width)
            expected = b"".join(leaves)
            served = _read(source, STEP_TREE, f"{origin}/{tile.path}", origin)
            if served != expected:
                raise _tile_error(origin, tile, served, expected)
            if width == _W:
                tile_roots.append(merkle.root(leaves))
            else:
                tail = leaves
    except VerificationError as e:
        error = (e.step, e.reason, e.index)
    return ChunkResult(job, tile_roots, tail, bytes(kinds), nullifiers, values,
                       list(value_index), first_time, last_time, error)


class LogMerger:
    """Applies one log's chunk results in order: log-rules, upper tiles, root."""

    def __init__(self, source: FileSource, checkpoint: Checkpoint) -> None:
        self.source = source
        self.checkpoint = checkpoint
        self.origin = checkpoint.origin
        self.tally = LogTally(self.origin)
        self._upper = tiles.TileBuilder()  # its level L is the log's level L + 1
        self._root = merkle.RootBuilder()
        self._last_time = -1

    def add(self, result: ChunkResult) -> None:
        """Merge the next chunk; raise VerificationError at the first problem."""
        origin = self.origin
        if result.first_time >= 0 and result.first_time < self._last_time:
            raise VerificationError(STEP_ENTRIES, f"entry time {result.first_time} is before "
                                    "the previous entry", log=origin, index=result.job.start)
        if result.last_time >= 0:
            self._last_time = result.last_time
        self.tally.apply_columns(result.job.start, result.kinds, result.nullifiers,
                                 result.values, result.value_table)
        if result.error is not None:
            step, reason, index = result.error
            raise VerificationError(step, reason, log=origin, index=index)
        for root in result.tile_roots:
            self._root.add_subtree(root, _W)
        for coord, tile in self._upper.append(result.tile_roots):
            self._compare(tiles.TileCoord(coord.level + 1, coord.index, coord.width), tile)
        for leaf in result.tail:
            self._root.add_leaf_hash(leaf)

    def finish(self) -> LogTally:
        """Compare the upper partial tiles and the root with the checkpoint."""
        for coord, tile in self._upper.partial_tiles():
            self._compare(tiles.TileCoord(coord.level + 1, coord.index, coord.width), tile)
        root = self._root.root()
        if root != self.checkpoint.root_hash:
            raise VerificationError(
                STEP_TREE, f"entries hash to root {_b64(root)}, the checkpoint says "
                f"{_b64(self.checkpoint.root_hash)}", log=self.origin)
        return self.tally

    def _compare(self, coord: tiles.TileCoord, expected: bytes) -> None:
        served = _read(self.source, STEP_TREE, f"{self.origin}/{coord.path}", self.origin)
        if served != expected:
            raise _tile_error(self.origin, coord, served, expected)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def run_serially(source: FileSource) -> ChunkRunner:
    """The default runner: every chunk in this process, one after another."""

    def runner(jobs: Iterable[ChunkJob]) -> Iterator[ChunkResult]:
        return (check_chunk(source, job) for job in jobs)

    return runner
