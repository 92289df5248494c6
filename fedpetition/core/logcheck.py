"""One log's entries, checked in chunks that can run on several cores (spec §11.3.8-10).

A log is cut into chunks of whole entry bundles. :func:`check_chunk` does the work
that needs no state from earlier chunks: it splits entry bundles and hashes their
leaves (:mod:`.bundlehash`), scans each entry (entry-format), compares the level-0
tiles and returns the root of every full level-0 tile (tree-hashes).
:class:`LogMerger` then takes the chunk results in order and does what is
sequential: time order across chunks, each nullifier's state (log-rules), the tiles
above level 0 and the root.

Chunks are independent, so an adapter may run :func:`check_chunk` in worker
processes; the result is the same as running them one after another, here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from . import bundlehash, merkle, tiles
from .bundle import FileSource
from .entries import parse_entry
from .entrycolumns import EntryColumns, scan_columns
from .errors import FedPetitionError, VerificationError
from .notes import Checkpoint
from .tally import (
    Codes,
    Ints,
    LogColumns,
    Rows,
    Words,
    as_words,
    check_log_rules,
    joined,
    recode,
)

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

    Entries are columns: ``kinds`` one byte per entry (1 sign, 0 withdraw),
    ``nullifiers`` one row of four words per entry, ``values`` one index per
    entry into ``value_table``, the few distinct (version digest, region) pairs
    of the chunk. If a check failed, the columns hold the entries before the
    failing one and ``error`` is ``(step, reason, index)``.
    """

    job: ChunkJob
    tile_roots: list[bytes]
    tail: list[bytes]  # leaf hashes of a trailing partial tile (the log's last chunk)
    kinds: npt.NDArray[np.uint8]
    nullifiers: Words
    values: Codes
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
    """Check one chunk: entry-format and the level-0 part of tree-hashes.

    Problems are reported in the order a reader going through the chunk meets
    them: an entry bundle that cannot be read or split, then each of its entries,
    then its tile. Entries are hashed bundle by bundle and scanned a group of
    bundles at a time (:func:`~.entrycolumns.scan_columns`); the error kept is
    the first in that order.
    """
    origin = job.origin
    hash_bundle = bundlehash.hash_entry_bundle
    columns = _Columns(job)
    group: list[bytes] = []  # bundles read but not yet scanned
    lengths: list[Ints] = []
    group_bytes = 0
    tile_roots: list[bytes] = []
    tail: list[bytes] = []
    other_error: VerificationError | None = None  # a bundle or a tile, after what was read
    for start in range(job.start, job.end, _W):
        width = min(_W, job.size - start)
        coord = tiles.TileCoord(0, start // _W, width, "entries")
        try:
            data = _read(source, STEP_ENTRIES, f"{origin}/{coord.path}", origin)
            try:
                hashed = hash_bundle(data, width)
            except FedPetitionError as e:
                raise VerificationError(STEP_ENTRIES, f"entry bundle {coord.path}: {e}",
                                        log=origin, index=start) from e
        except VerificationError as e:
            other_error = e
            break
        group.append(data)
        group_bytes += len(data)
        lengths.append(hashed.sizes)
        tile = tiles.TileCoord(0, start // _W, width)
        try:
            served = _read(source, STEP_TREE, f"{origin}/{tile.path}", origin)
            if served != hashed.leaves:
                raise _tile_error(origin, tile, served, hashed.leaves)
        except VerificationError as e:
            other_error = e  # after this bundle's entries: scanned below, first
            break
        if width == _W:
            tile_roots.append(hashed.root)
        else:
            size = merkle.HASH_SIZE
            tail = [hashed.leaves[i:i + size] for i in range(0, len(hashed.leaves), size)]
        if group_bytes >= _GROUP_BYTES:
            if not columns.scan(group, lengths):
                break
            group, lengths, group_bytes = [], [], 0
    if group and columns.error is None:
        columns.scan(group, lengths)
    return columns.result(tile_roots, tail, columns.error or other_error)


# Entry bundles scanned together: a chunk of ordinary ones (about 1.4 MB) is one group,
# and hostile ones of up to 16.8 MB each are scanned one at a time.
_GROUP_BYTES = 1 << 22


class _Columns:
    """A chunk's entries scanned so far, as the columns of a ChunkResult."""

    def __init__(self, job: ChunkJob) -> None:
        self.job = job
        self.count = 0
        self.error: VerificationError | None = None  # the first entry that fails
        self._digests = list(job.rules.earliest)
        self._versions = as_words(b"".join(self._digests))
        self._earliest = np.array([job.rules.earliest[d] for d in self._digests] + [0],
                                  dtype=np.int64)
        self._table: dict[tuple[bytes, str | None], int] = {}
        self._kinds: list[npt.NDArray[np.uint8]] = []
        self._nullifiers: list[Words] = []
        self._values: list[Codes] = []
        self.first_time = self.last_time = -1

    def scan(self, group: list[bytes], lengths: list[Ints]) -> bool:
        """Scan the next bundles; False (and ``error`` set) at an entry that fails
        entry-format: malformed, bound to no version, or out of time order."""
        sizes = np.concatenate(lengths)
        ends = np.cumsum(sizes + 2)
        columns = scan_columns(b"".join(group), ends - sizes, ends)
        version = np.full(len(sizes), -1, dtype=np.int64)
        for k, digest in enumerate(self._versions):
            version[(columns.petitions == digest).all(axis=1)] = k
        times = columns.times
        bad = (~columns.ok | (version < 0) | (times < self._earliest[version])
               | (times > self.job.rules.deadline))
        bad[1:] |= times[1:] < times[:-1]
        bad[0] |= bool(times[0] < self.last_time)
        failed = np.flatnonzero(bad)
        count = int(failed[0]) if len(failed) else len(sizes)
        if count:
            pairs = version[:count] * len(columns.region_table) + columns.regions[:count]
            codes, inverse = _unique(pairs)
            regions = len(columns.region_table)
            table = [(self._digests[c // regions], columns.region_table[c % regions])
                     for c in codes.tolist()]
            self._kinds.append(columns.kinds[:count])
            self._nullifiers.append(columns.nullifiers[:count])
            self._values.append(recode(self._table, table, inverse))
            if self.first_time < 0:
                self.first_time = int(times[0])
            self.last_time = int(times[count - 1])
        if len(failed):
            self.error = self._why(group, lengths, columns, count)
        self.count += count
        return not len(failed)

    def _why(self, group: list[bytes], lengths: list[Ints], columns: EntryColumns,
             i: int) -> VerificationError:
        """Why entry ``i`` of the group fails entry-format, worded as scanning alone words it."""
        index = self.job.start + self.count + i
        origin = self.job.origin
        if not columns.ok[i]:
            bundle, offset = divmod(i, _W)  # groups start at a bundle
            raw = tiles.decode_entry_bundle(group[bundle], len(lengths[bundle]))[offset]
            return _entry_error(raw, origin, index)
        if columns.petitions[i].tobytes() not in self.job.rules.earliest:
            return VerificationError(STEP_ENTRIES, "entry binds to no version of this "
                                     "petition", log=origin, index=index)
        return VerificationError(
            STEP_ENTRIES, f"entry time {int(columns.times[i])} is before its version, before "
            "the previous entry, or after the deadline", log=origin, index=index)

    def result(self, tile_roots: list[bytes], tail: list[bytes],
               error: VerificationError | None) -> ChunkResult:
        return ChunkResult(
            self.job, tile_roots, tail, joined(self._kinds, np.zeros(0, np.uint8)),
            joined(self._nullifiers, np.zeros((0, 4), np.uint64)),
            joined(self._values, np.zeros(0, np.int32)), list(self._table),
            self.first_time, self.last_time,
            None if error is None else (error.step, error.reason, error.index))


class LogMerger:
    """Takes one log's chunk results in order: log-rules, upper tiles, root.

    Entries are kept as columns (33 bytes each) until :meth:`finish` checks the
    log-rules over the whole log at once; an earlier failure first checks them
    over the entries before it, so the error reported is always the first in log
    order, as if every entry had been applied one by one.
    """

    def __init__(self, source: FileSource, checkpoint: Checkpoint) -> None:
        self.source = source
        self.checkpoint = checkpoint
        self.origin = checkpoint.origin
        self._kinds: list[npt.NDArray[np.uint8]] = []
        self._nullifiers: list[Words] = []
        self._values: list[Codes] = []
        self._table: dict[tuple[bytes, str | None], int] = {}
        self._upper = tiles.TileBuilder()  # its level L is the log's level L + 1
        self._root = merkle.RootBuilder()
        self._last_time = -1

    def add(self, result: ChunkResult) -> None:
        """Merge the next chunk; raise VerificationError at the first problem."""
        origin = self.origin
        if result.first_time >= 0 and result.first_time < self._last_time:
            self._fail(VerificationError(STEP_ENTRIES, f"entry time {result.first_time} is "
                                         "before the previous entry", log=origin,
                                         index=result.job.start))
        if result.last_time >= 0:
            self._last_time = result.last_time
        self._kinds.append(result.kinds)
        self._nullifiers.append(result.nullifiers)
        self._values.append(recode(self._table, result.value_table, result.values))
        if result.error is not None:
            step, reason, index = result.error
            self._fail(VerificationError(step, reason, log=origin, index=index))
        for root in result.tile_roots:
            self._root.add_subtree(root, _W)
        for coord, tile in self._upper.append(result.tile_roots):
            self._compare(tiles.TileCoord(coord.level + 1, coord.index, coord.width), tile)
        for leaf in result.tail:
            self._root.add_leaf_hash(leaf)

    def finish(self) -> LogColumns:
        """Check the log-rules, then compare the upper partial tiles and the root."""
        tally = self._rules()
        for coord, tile in self._upper.partial_tiles():
            self._compare(tiles.TileCoord(coord.level + 1, coord.index, coord.width), tile)
        root = self._root.root()
        if root != self.checkpoint.root_hash:
            raise VerificationError(
                STEP_TREE, f"entries hash to root {_b64(root)}, the checkpoint says "
                f"{_b64(self.checkpoint.root_hash)}", log=self.origin)
        return tally

    def _rules(self) -> LogColumns:
        kinds = joined(self._kinds, np.zeros(0, np.uint8))
        nullifiers = Rows(self._nullifiers)
        values = joined(self._values, np.zeros(0, np.int32))
        self._kinds, self._nullifiers, self._values = [], [], []
        return check_log_rules(self.origin, 0, kinds, nullifiers, values, list(self._table))

    def _fail(self, error: VerificationError) -> NoReturn:
        """Raise the first log-rules error among the entries merged so far, else ``error``."""
        self._rules()
        raise error

    def _compare(self, coord: tiles.TileCoord, expected: bytes) -> None:
        try:
            served = _read(self.source, STEP_TREE, f"{self.origin}/{coord.path}", self.origin)
        except VerificationError as e:
            self._fail(e)
        if served != expected:
            self._fail(_tile_error(self.origin, coord, served, expected))


def _unique(values: Ints) -> tuple[Ints, Ints]:
    """``np.unique(values, return_inverse=True)`` for small non-negative integers (a
    chunk's few (version, region) pairs), by counting instead of sorting."""
    codes = np.flatnonzero(np.bincount(values))
    position = np.zeros(int(codes[-1]) + 1, dtype=np.int64)
    position[codes] = np.arange(len(codes))
    return codes, position[values]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def run_serially(source: FileSource) -> ChunkRunner:
    """The default runner: every chunk in this process, one after another."""

    def runner(jobs: Iterable[ChunkJob]) -> Iterator[ChunkResult]:
        return (check_chunk(source, job) for job in jobs)

    return runner
