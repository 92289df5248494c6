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
from typing import Protocol

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

    def apply_columns(self, start: int, kinds: bytes, nullifiers: Sequence[bytes],
                      values: Sequence[int],
                      value_table: Sequence[tuple[bytes, str | None]]) -> None:
        """Apply entries ``start, start + 1, ...`` given as columns (see logcheck).

        The same rules as :meth:`apply`. This runs once per entry of every log, so
        the usual chunk (only signatures, none seen before in this log) is applied
        by one ``dict.update`` in C; any other chunk entry by entry.
        """
        state = self._state
        intern = self._interned.setdefault
        signed_values = [intern(v, v) for v in ((SIGNED, r, d) for d, r in value_table)]
        count = len(kinds)
        if b"\x00" not in kinds and state.keys().isdisjoint(nullifiers):
            before = len(state)
            state.update(zip(nullifiers, map(signed_values.__getitem__, values), strict=True))
            if len(state) - before != count:  # a nullifier twice within the chunk
                seen: set[bytes] = set()
                for i, nullifier in enumerate(nullifiers):
                    if nullifier in seen:
                        self._fail("nullifier signed twice in the same log", start + i, i, 0)
                    seen.add(nullifier)
            self.signs += count
            self.entries += count
            return
        withdrawn = self._withdrawn
        signs = withdrawals = 0
        for i in range(count):
            nullifier = nullifiers[i]
            previous = state.get(nullifier)
            if kinds[i]:
                if previous is not None:
                    if previous[0] == SIGNED:
                        self._fail("nullifier signed twice in the same log", start + i, signs,
                                   withdrawals)
                    withdrawn.discard(nullifier)
                state[nullifier] = signed_values[values[i]]
                signs += 1
            else:
                if previous is None or previous[0] != SIGNED:
                    self._fail("withdrawal of a nullifier that is not signed in this log",
                               start + i, signs, withdrawals)
                    raise AssertionError  # _fail raised
                value = (WITHDRAWN, previous[1], previous[2])
                state[nullifier] = intern(value, value)
                withdrawn.add(nullifier)
                withdrawals += 1
        self.signs += signs
        self.withdrawals += withdrawals
        self.entries += count

    def _fail(self, reason: str, index: int, signs: int, withdrawals: int) -> None:
        self.signs += signs
        self.withdrawals += withdrawals
        self.entries += signs + withdrawals
        raise VerificationError(STEP_LOG_RULES, reason, log=self.origin, index=index)

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
        return SignedColumns(as_words(b"".join(signed)), values,
                             [(digest, region) for _, region, digest in table])



Words = npt.NDArray[np.uint64]  # 32-byte values as rows of four little-endian words
Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int32]  # indexes into a small table


def as_words(values: bytes) -> Words:
    """Concatenated 32-byte values as an (n, 4) array of words (no copy)."""
    return np.frombuffer(values, dtype="<u8").reshape(-1, 4)


def group_rows(words: Words) -> tuple[Ints, npt.NDArray[np.bool_]]:
    """Sort rows so that equal rows are adjacent, keeping their order among themselves.

    Returns the order (a stable sort) and, for each sorted position, whether it
    starts a group of equal rows. One ``np.sort`` of 64-bit keys does it: the
    row's first word with its low bits replaced by the row's index, so that the
    sort is stable and carries the order with it. For nullifiers (uniform hashes)
    what is left of the first word almost always tells rows apart; rows whose
    truncated words tie (rare by chance, easy to craft) are compared in full and,
    where they differ, sorted again on all four words: the grouping is exact.
    """
    n = len(words)
    bits = np.uint64(max(1, (n - 1).bit_length()))
    keys = (words[:, 0] >> bits << bits) | np.arange(n, dtype=np.uint64)
    keys.sort()
    order = (keys & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.int64)
    keys >>= bits
    ties = np.flatnonzero(keys[1:] == keys[:-1])
    del keys
    same = np.zeros(max(n - 1, 0), dtype=bool)
    if len(ties):
        equal = (words[order[ties]] == words[order[ties + 1]]).all(axis=1)
        if not equal.all():
            _sort_ties(words, order, ties)
            equal = (words[order[ties]] == words[order[ties + 1]]).all(axis=1)
        same[ties] = equal
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~same
    return order, starts


def _sort_ties(words: Words, order: Ints, ties: Ints) -> None:
    """Sort each run of tied positions of ``order`` on its rows' four words, then index."""
    members = np.union1d(ties, ties + 1)
    run = np.cumsum(np.append(True, members[1:] != members[:-1] + 1))  # runs are contiguous
    rows = order[members]
    tied = words[rows]
    order[members] = rows[np.lexsort((rows, tied[:, 3], tied[:, 2], tied[:, 1], tied[:, 0],
                                      run))]


@dataclass
class SignedColumns:
    """The nullifiers that end signed in one log, each with its (version, region).

    ``values[i]`` indexes ``table``, a list of (version digest, region) pairs.
    """

    nullifiers: Words
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


def check_log_rules(origin: str, start: int, kinds: npt.NDArray[np.uint8], nullifiers: Words,
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
    order, starts = group_rows(nullifiers)
    # Sorted positions of the groups with more than one entry (withdrawn signers).
    repeated = np.flatnonzero(~starts)
    members = np.union1d(repeated - 1, repeated)
    first_bad = n
    lone_withdrawals = kinds == 0
    lone_withdrawals[order[members]] = False
    if lone_withdrawals.any():
        first_bad = int(np.argmax(lone_withdrawals))
    keep = None
    if len(members):
        group_start = np.maximum.accumulate(np.where(starts[members], members, 0))
        position = members - group_start
        rows = order[members]
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
        SignedColumns(nullifiers[keep], values[keep], table)
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
    """

    def __init__(self, version_numbers: dict[bytes, int]) -> None:
        self._versions = version_numbers
        self._table: dict[tuple[bytes, str | None], int] = {}  # (version, region) -> code
        self._counts: list[LogCount] = []
        self._nullifiers: list[Words | None] = []
        self._values: list[Codes] = []

    def add_log(self, host: str, log: CountedLog) -> None:
        signed = log.signed_columns()
        codes = np.array([self._table.setdefault(pair, len(self._table))
                          for pair in signed.table], dtype=np.int32)
        self._nullifiers.append(signed.nullifiers)
        self._values.append(codes[signed.values] if len(codes) else
                            np.zeros(0, dtype=np.int32))
        self._counts.append(LogCount(log.origin, host, log.entries, len(signed.nullifiers),
                                     log.withdrawn, 0))

    def finish(self) -> Tally:
        tally = Tally(logs=self._counts)
        logs = len(self._counts)
        sizes = [c.counted for c in self._counts]
        nullifiers = np.empty((sum(sizes), 4), dtype=np.uint64)
        at = 0
        for i, part in enumerate(self._nullifiers):  # moved, not copied beside the parts
            assert part is not None
            nullifiers[at:at + len(part)] = part
            at += len(part)
            self._nullifiers[i] = None
        order, first = group_rows(nullifiers)
        del nullifiers
        position = np.repeat(np.arange(logs, dtype=np.int32), sizes)[order]
        counted_by = position[first][np.cumsum(first) - 1]  # the log counting each row
        duplicate = ~first
        pairs = counted_by[duplicate].astype(np.int64) * logs + position[duplicate]
        hosts = [c.host for c in self._counts]
        for pair, count in zip(*np.unique(pairs, return_counts=True), strict=True):
            a, b = divmod(int(pair), logs)
            tally.shared[(hosts[a], hosts[b])] += int(count)
        for count, duplicates in zip(self._counts, np.bincount(
                position[duplicate], minlength=logs).tolist(), strict=True):
            count.duplicates = duplicates
        value = np.concatenate(self._values)[order[first]] if logs else np.zeros(0, np.int32)
        pairs_of = list(self._table)
        for code, count in enumerate(np.bincount(value, minlength=len(pairs_of)).tolist()):
            if not count:
                continue
            version, region = pairs_of[code]
            if region is None:
                tally.no_region += count
            else:
                tally.regions[region] += count
            tally.versions[self._versions[version]] += count
        tally.total = int(np.count_nonzero(first))
        tally.duplicates = int(np.count_nonzero(duplicate))
        return tally
