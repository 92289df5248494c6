"""The federated tally (spec §9): which entries count, and how often.

Within one log each nullifier moves through ``signed`` and ``withdrawn`` states;
a ``sign`` while signed or a ``withdraw`` while not signed breaks the log. Across
logs a nullifier counts once if it ends ``signed`` in at least one log. Its
region and version are those of the sign entry in the first such log in roster
order (the latest sign in that log).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

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
    """Merges logs, one at a time and in roster order, into one Tally.

    Only one log's state is alive at a time beside the set of counted nullifiers,
    so memory grows with the number of distinct signers, not with the entries.
    """

    def __init__(self, version_numbers: dict[bytes, int]) -> None:
        self._versions = version_numbers
        # Each counted nullifier -> the position of the log that counted it: a dict
        # rather than a set, so that duplicates can be attributed to pairs of logs.
        self._counted: dict[bytes, int] = {}
        self._hosts: list[str] = []
        self.tally = Tally()

    def add_log(self, host: str, log: LogTally) -> LogCount:
        # Set operations and map() run in C: no Python loop over the signers; only the
        # duplicates (few) are looked at one by one, to attribute them to pairs.
        states = log.states()
        signed = log.signed()
        counted = self._counted
        new = signed - counted.keys()
        if len(new) != len(signed):
            first = Counter(map(counted.__getitem__, signed - new))
            for position, shared in first.items():
                self.tally.shared[(self._hosts[position], host)] += shared
        counted.update(dict.fromkeys(new, len(self._hosts)))
        self._hosts.append(host)
        tally = self.tally
        for (_, region, version), count in Counter(map(states.__getitem__, new)).items():
            if region is None:
                tally.no_region += count
            else:
                tally.regions[region] += count
            tally.versions[self._versions[version]] += count
        duplicates = len(signed) - len(new)
        tally.total = len(self._counted)
        tally.duplicates += duplicates
        result = LogCount(log.origin, host, log.entries, len(signed), log.withdrawn, duplicates)
        tally.logs.append(result)
        return result
