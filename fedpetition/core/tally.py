"""The federated tally (spec §9): which entries count, and how often.

Within one log each nullifier moves through ``signed`` and ``withdrawn`` states;
a ``sign`` while signed or a ``withdraw`` while not signed breaks the log. Across
logs a nullifier counts once if it ends ``signed`` in at least one log. Its
region and version are those of the sign entry in the first such log in roster
order (the latest sign in that log).

Two ways to hold one log's state: :class:`LogTally`, a dictionary that takes
entries one at a time (a node following a log as it grows), and
:func:`check_log_rules`, which checks a whole log given as columns and keeps only
what ends signed, 32 bytes per nullifier (a verifier). Both give the
:class:`SignedColumns` that :class:`TallyBuilder` merges, so the federated count
is computed by one piece of code. Nullifiers are grouped by sorting arrays
(:func:`group_rows`), never by one Python object per signer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from .entries import SignEntry, WithdrawEntry
from .errors import VerificationError

STEP_LOG_RULES = "log-rules"

SIGNED = 1
WITHDRAWN = 2


class LogTally:
    """Applies one log's entries in order and keeps each nullifier's state.

    Each nullifier maps to one shared ``(state, region, version digest)`` tuple:
    the few distinct tuples are interned, so a million signers cost a million
    dictionary slots and keys, not a million tuples.
    """

    __slots__ = ("_interned", "_state", "_withdrawn", "entries", "origin", "signs",
                 "withdrawals")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._state: dict[bytes, tuple[int, str | None, bytes]] = {}
        self._interned: dict[tuple[int, str | None, bytes], tuple[int, str | None, bytes]] = {}
        self._withdrawn: set[bytes] = set()  # nullifiers that end withdrawn (few)
        self.entries = 0
        self.signs = 0
        self.withdrawals = 0

    def apply_entry(self, index: int, entry: SignEntry | WithdrawEntry) -> None:
        """Apply a decoded entry (see :meth:`apply`)."""
        if isinstance(entry, SignEntry):
            self.apply(index, True, entry.nullifier, entry.region, entry.petition)
        else:
            self.apply(index, False, entry.nullifier, None, entry.petition)

    def apply(self, index: int, is_sign: bool, nullifier: bytes, region: str | None,
              petition: bytes) -> None:
        """Apply the entry at ``index``; raise VerificationError (log-rules) if it is illegal."""
        previous = self._state.get(nullifier)
        signed = previous is not None and previous[0] == SIGNED
        if is_sign:
            if signed:
                raise VerificationError(
                    STEP_LOG_RULES, "nullifier signed twice in the same log",
                    log=self.origin, index=index)
            value = (SIGNED, region, petition)
            self._withdrawn.discard(nullifier)
            self.signs += 1
        else:
            if not signed:
                raise VerificationError(
                    STEP_LOG_RULES, "withdrawal of a nullifier that is not signed in this log",
                    log=self.origin, index=index)
            assert previous is not None
            value = (WITHDRAWN, previous[1], previous[2])
            self._withdrawn.add(nullifier)
            self.withdrawals += 1
        self._state[nullifier] = self._interned.setdefault(value, value)
        self.entries += 1

    def states(self) -> dict[bytes, tuple[int, str | None, bytes]]:
        """Each nullifier's final ``(state, region, version digest)``; do not modify."""
        return self._state

    @property
    def withdrawn(self) -> int:
        return len(self._withdrawn)

    def signed(self) -> set[bytes]:
        """The nullifiers that end signed in this log."""
        return self._state.keys() - self._withdrawn

    @property
    def nullifiers(self) -> int:
        """Distinct nullifiers in the log (each was signed at least once)."""
        return len(self._state)

    def signed_columns(self) -> SignedColumns:
        signed = list(self.signed())
        table = list(self._interned)
        code = {value: i for i, value in enumerate(table)}
        values = np.fromiter(map(code.__getitem__, map(self._state.__getitem__, signed)),
                             dtype=np.int32, count=len(signed))
        return SignedColumns(Rows([as_words(b"".join(signed))]), values,
                             [(digest, region) for _, region, digest in table])


Words = npt.NDArray[np.uint64]  # 32-byte values as rows of four little-endian words
Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int32]  # indexes into a small table
_Array = TypeVar("_Array", bound="npt.NDArray[Any]")


def as_words(values: bytes) -> Words:
    """Concatenated 32-byte values as an (n, 4) array of words (no copy)."""
    return np.frombuffer(values, dtype="<u8").reshape(-1, 4)


def joined(parts: Sequence[_Array], empty: _Array) -> _Array:
    """One array of the parts, or ``empty`` if there are none."""
    return cast(_Array, np.concatenate(parts)) if parts else empty


def recode(into: dict[tuple[bytes, str | None], int],
           table: Sequence[tuple[bytes, str | None]], values: Codes | Ints) -> Codes:
    """``values``, indexes into ``table``, as indexes into ``into``: one table of
    (version digest, region) pairs for many chunks or logs, which gains the pairs
    it lacks."""
    codes = np.array([into.setdefault(pair, len(into)) for pair in table], dtype=np.int32)
    return codes[values] if len(codes) else np.zeros(0, dtype=np.int32)


class Rows:
    """32-byte values in several (n, 4) arrays of words, read as one sequence of rows.

    A verifier receives a log's nullifiers chunk by chunk; keeping the chunks'
    arrays as they are, rather than concatenating them, saves a copy of every
    nullifier and the memory it briefly needs.
    """

    def __init__(self, parts: Sequence[Words]) -> None:
        self.parts = [part for part in parts if len(part)]
        self._ends = np.cumsum([len(part) for part in self.parts], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def first_words(self) -> Words:
        """The first word of every row, in a new array."""
        if not self.parts:
            return np.zeros(0, dtype=np.uint64)
        return np.concatenate([part[:, 0] for part in self.parts])

    def take(self, index: Ints) -> Words:
        """The rows at these positions: one sort of them, then one slice per part."""
        out = np.empty((len(index), 4), dtype=np.uint64)
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        cuts = np.searchsorted(ordered, self._ends).tolist()
        first = begin = 0
        for part, cut, end in zip(self.parts, cuts, self._ends.tolist(), strict=True):
            if cut > first:
                out[order[first:cut]] = part[ordered[first:cut] - begin]
            first, begin = cut, end
        return out

    def select(self, keep: npt.NDArray[np.bool_]) -> Rows:
        """The rows where ``keep`` is True, in order."""
        starts = self._ends - [len(part) for part in self.parts]
        return Rows([part[keep[start:end]] for part, start, end
                     in zip(self.parts, starts.tolist(), self._ends.tolist(), strict=True)])

    def array(self) -> Words:
        """All rows in one array."""
        return joined(self.parts, np.zeros((0, 4), np.uint64))


@dataclass
class Grouping:
    """Rows sorted so that equal rows are adjacent, in their order among themselves.

    ``starts[p]`` says whether sorted position ``p`` starts a group of equal
    rows; :meth:`order` gives the rows at sorted positions. Callers look at the
    few positions in groups of two or more, never at a permutation of all rows.
    """

    keys: Words  # sorted: each row's truncated first word, then its index in ``bits`` bits
    bits: np.uint64
    starts: npt.NDArray[np.bool_]

    def order(self, positions: Ints) -> Ints:
        """The index of the row at each of these sorted positions."""
        return (self.keys[positions] & ((np.uint64(1) << self.bits) - np.uint64(1))).astype(
            np.int64)

    def repeated(self) -> tuple[Ints, Ints]:
        """The sorted positions in groups of two or more rows, ascending, and for each
        the position where its group starts."""
        later = np.flatnonzero(~self.starts)
        members = np.union1d(later - 1, later)
        return members, np.maximum.accumulate(np.where(self.starts[members], members, 0))


_BLOCK = 1 << 18


def group_rows(words: Rows) -> Grouping:
    """Group equal rows: one ``np.sort`` of 64-bit keys, exact whatever the input.

    A row's key is its first word with the low bits replaced by its index, so
    the sort is stable and carries the order with it. For nullifiers (uniform
    hashes) what is left of the first word almost always tells rows apart; rows
    whose truncated words tie (rare by chance, easy to craft) are compared in
    full and, where they differ, sorted again on all four words.
    """
    bits = index_bits(len(words))
    keys = sort_keys(words, 0, bits)
    keys.sort()
    return group_sorted(words, keys, bits)


def index_bits(rows: int) -> np.uint64:
    """How many low bits of a sort key hold the index of one of ``rows`` rows."""
    return np.uint64(max(1, (rows - 1).bit_length()))


def sort_keys(words: Rows, first: int, bits: np.uint64) -> Words:
    """Each row's key: its first word with the low ``bits`` bits replaced by its index,
    counted from ``first``."""
    n = len(words)
    keys = words.first_words()
    keys >>= bits
    keys <<= bits
    # In blocks, so that no temporary array is as large as the keys.
    for start in range(0, n, _BLOCK):
        keys[start:start + _BLOCK] |= np.arange(first + start, first + min(n, start + _BLOCK),
                                                dtype=np.uint64)
    return keys


def group_sorted(words: Rows, keys: Words, bits: np.uint64) -> Grouping:
    """:func:`group_rows` for keys made by :func:`sort_keys` from index 0, already sorted."""
    n = len(words)
    ties = np.concatenate([np.zeros(0, dtype=np.int64)] + [
        start + np.flatnonzero(((keys[start + 1:stop + 1] ^ keys[start:stop]) >> bits) == 0)
        for start, stop in ((s, min(n - 1, s + _BLOCK)) for s in range(0, n - 1, _BLOCK))])
    grouping = Grouping(keys, bits, np.ones(n, dtype=bool))
    if len(ties):
        equal = (words.take(grouping.order(ties)) == words.take(grouping.order(ties + 1))).all(
            axis=1)
        if not equal.all():
            _sort_ties(words, grouping, ties)
            equal = (words.take(grouping.order(ties))
                     == words.take(grouping.order(ties + 1))).all(axis=1)
        grouping.starts[ties + 1] = ~equal
    return grouping


def _sort_ties(words: Rows, grouping: Grouping, ties: Ints) -> None:
    """Sort the tied positions on their rows' four words, then on index.

    Tied positions hold rows whose truncated first words are equal; sorting
    them all together on full words keeps each in its run, since full words
    order the same way as their truncations.
    """
    members = np.union1d(ties, ties + 1)
    rows = grouping.order(members)
    tied = words.take(rows)
    keys = grouping.keys[members]
    grouping.keys[members] = keys[np.lexsort((rows, tied[:, 3], tied[:, 2], tied[:, 1],
                                              tied[:, 0]))]


@dataclass
class SignedColumns:
    """The nullifiers that end signed in one log, each with its (version, region).

    ``values[i]`` indexes ``table``, a list of (version digest, region) pairs.
    """

    nullifiers: Rows
    values: Codes
    table: list[tuple[bytes, str | None]]


class CountedLog(Protocol):
    """What the tally needs of one checked log."""

    origin: str
    entries: int

    @property
    def withdrawn(self) -> int: ...

    def signed_columns(self) -> SignedColumns: ...


@dataclass
class LogColumns:
    """One log checked as a whole by :func:`check_log_rules`."""

    origin: str
    entries: int
    signs: int
    withdrawals: int
    nullifiers: int  # distinct nullifiers in the log
    withdrawn: int  # of them, those that end withdrawn
    signed: SignedColumns

    def signed_columns(self) -> SignedColumns:
        return self.signed


def check_log_rules(origin: str, start: int, kinds: npt.NDArray[np.uint8], nullifiers: Rows,
                    values: Codes, table: list[tuple[bytes, str | None]]) -> LogColumns:
    """Check the log-rules of entries ``start, start + 1, ...`` given as columns.

    The same rule as :meth:`LogTally.apply`, decided for all entries at once: in
    each nullifier's entries, in log order, signs must be at even positions and
    withdrawals at odd ones. The first entry in log order that breaks it is the
    one :class:`LogTally` would refuse, and is named in the VerificationError.

    Most nullifiers appear once (a sign); only the few groups of two or more
    entries are looked at in order, so the cost is one sort and a few passes.
    """
    n = len(kinds)
    grouping = group_rows(nullifiers)
    starts = grouping.starts
    members, group_start = grouping.repeated()  # nullifiers seen more than once
    rows = grouping.order(members)
    first_bad = n
    lone_withdrawals = kinds == 0
    lone_withdrawals[rows] = False
    if lone_withdrawals.any():
        first_bad = int(np.argmax(lone_withdrawals))
    keep = None
    if len(members):
        position = members - group_start
        member_kinds = kinds[rows]
        bad = member_kinds != (position % 2 == 0)
        if bad.any():
            first_bad = min(first_bad, int(rows[bad].min()))
        last = np.ones(len(members), dtype=bool)
        last[:-1] = starts[members[:-1] + 1]
        keep = np.ones(n, dtype=bool)
        keep[rows[~last | (member_kinds == 0)]] = False
    if first_bad < n:
        reason = ("nullifier signed twice in the same log" if kinds[first_bad]
                  else "withdrawal of a nullifier that is not signed in this log")
        raise VerificationError(STEP_LOG_RULES, reason, log=origin, index=start + first_bad)
    distinct = int(np.count_nonzero(starts))
    signs = int(np.count_nonzero(kinds))
    signed = SignedColumns(nullifiers, values, table) if keep is None else \
        SignedColumns(nullifiers.select(keep), values[keep], table)
    return LogColumns(origin, n, signs, n - signs, distinct,
                      distinct - len(signed.nullifiers), signed)


@dataclass
class LogCount:
    """One log's contribution to the tally."""

    origin: str
    host: str
    entries: int
    counted: int  # nullifiers that end signed in this log (the node's own count)
    withdrawn: int  # nullifiers that end withdrawn in this log
    duplicates: int  # of ``counted``, those already counted in an earlier log


@dataclass
class Tally:
    """The federated count over the logs of a petition (spec §9)."""

    total: int = 0
    logs: list[LogCount] = field(default_factory=list)
    regions: Counter[str] = field(default_factory=Counter)
    no_region: int = 0
    versions: Counter[int] = field(default_factory=Counter)
    duplicates: int = 0
    # (host where a nullifier was first counted, later host where it also ends signed)
    # -> how many: the duplicates each pair of nodes shares.
    shared: Counter[tuple[str, str]] = field(default_factory=Counter)


class TallyBuilder:
    """Merges logs, in roster order, into one Tally.

    Each log gives only its signed nullifiers (32 bytes each, with a small
    code for region and version). :meth:`finish` groups them all in one sort:
    the first of each group, in roster order, is counted; the others are the
    duplicates each pair of logs shares. Memory grows with the signed
    nullifiers, never with the entries.

    A caller that knows how many rows all logs give at most (``rows``; a
    verifier knows the logs' sizes before it checks them) lets each log's sort
    keys be built and sorted as the log is added, while later logs are still
    being checked; :meth:`finish` then only merges the sorted runs.
    """

    def __init__(self, version_numbers: dict[bytes, int], rows: int | None = None) -> None:
        self._versions = version_numbers
        self._table: dict[tuple[bytes, str | None], int] = {}  # (version, region) -> code
        self._counts: list[LogCount] = []
        self._nullifiers: list[Words] = []
        self._values: list[Codes] = []
        # Each log's sort keys, sorted, one run after another, while ``rows`` holds.
        self._keys = None if rows is None else np.empty(rows, dtype=np.uint64)
        self._bits = index_bits(rows or 0)
        self._added = 0

    def add_log(self, host: str, log: CountedLog) -> None:
        signed = log.signed_columns()
        self._nullifiers.extend(signed.nullifiers.parts)
        self._values.append(recode(self._table, signed.table, signed.values))
        self._counts.append(LogCount(log.origin, host, log.entries, len(signed.nullifiers),
                                     log.withdrawn, 0))
        start, end = self._added, self._added + len(signed.nullifiers)
        if self._keys is not None and end > len(self._keys):
            self._keys = None  # more rows than announced: one sort at the end
        if self._keys is not None:
            run = self._keys[start:end]
            run[:] = sort_keys(signed.nullifiers, start, self._bits)
            run.sort()
        self._added = end

    def _grouping(self) -> Grouping:
        rows = Rows(self._nullifiers)
        if self._keys is None:
            return group_rows(rows)
        keys = self._keys[:self._added]
        self._keys = None
        keys.sort(kind="stable")  # a merge of the logs' sorted runs
        return group_sorted(rows, keys, self._bits)

    def finish(self) -> Tally:
        tally = Tally(logs=self._counts)
        ends = np.cumsum([c.counted for c in self._counts], dtype=np.int64)
        grouping = self._grouping()
        self._nullifiers = []
        # Every signed row counts except the later rows of a group (the duplicates);
        # only those few are looked at, with the first row of their group.
        members, group_start = grouping.repeated()
        later = ~grouping.starts[members]
        first = group_start[later]
        duplicate_rows = grouping.order(members[later])
        duplicate_log = np.searchsorted(ends, duplicate_rows, side="right")
        counted_by = np.searchsorted(ends, grouping.order(first), side="right")
        hosts = [c.host for c in self._counts]
        for (a, b), count in Counter(zip(counted_by.tolist(), duplicate_log.tolist(),
                                         strict=True)).items():
            tally.shared[(hosts[a], hosts[b])] += count
        for log, duplicates in enumerate(np.bincount(duplicate_log,
                                                     minlength=len(hosts)).tolist()):
            self._counts[log].duplicates = duplicates
        values = joined(self._values, np.zeros(0, np.int32))
        counted = np.bincount(values, minlength=len(self._table))
        counted -= np.bincount(values[duplicate_rows], minlength=len(self._table))
        for (version, region), count in zip(self._table, counted.tolist(), strict=True):
            if not count:
                continue
            if region is None:
                tally.no_region += count
            else:
                tally.regions[region] += count
            tally.versions[self._versions[version]] += count
        tally.total = len(values) - len(duplicate_rows)
        tally.duplicates = len(duplicate_rows)
        return tally
