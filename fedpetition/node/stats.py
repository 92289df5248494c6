"""A petition's counts as its own log proves them, kept up to date in memory.

Built from the log's entry bundles through the core tally code at start, then
fed each sequenced batch, so the number a node shows is the number a verifier
recomputes from the same entries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fedpetition.core.entries import Entry, SignEntry
from fedpetition.core.tally import SIGNED, LogTally


@dataclass
class PetitionStats:
    origin: str
    tally: LogTally = field(init=False)
    hourly: Counter[int] = field(default_factory=Counter)  # hour -> net change of the count
    by_region: Counter[str] = field(default_factory=Counter)  # "" for no region

    def __post_init__(self) -> None:
        self.tally = LogTally(self.origin)

    def add(self, index: int, entry: Entry) -> None:
        """Apply the entry at ``index`` (raises VerificationError if the log rules forbid it)."""
        previous = self.tally.states().get(entry.nullifier)
        self.tally.apply_entry(index, entry)
        if isinstance(entry, SignEntry):
            self.hourly[entry.time] += 1
            self.by_region[entry.region or ""] += 1
        else:
            assert previous is not None
            self.hourly[entry.time] -= 1
            self.by_region[previous[1] or ""] -= 1

    def is_signed(self, nullifier: bytes) -> bool:
        state = self.tally.states().get(nullifier)
        return state is not None and state[0] == SIGNED

    @property
    def count(self) -> int:
        """Nullifiers that end signed: each withdrawal undoes exactly one sign."""
        return self.tally.signs - self.tally.withdrawals

    def regions(self) -> dict[str, int]:
        return {r: n for r, n in sorted(self.by_region.items()) if n}

    def series(self) -> list[tuple[int, int]]:
        """(hour, count at the end of that hour) for every hour with entries."""
        total = 0
        points = []
        for hour in sorted(self.hourly):
            total += self.hourly[hour]
            points.append((hour, total))
        return points

    def thresholds_reached(self, thresholds: tuple[int, ...]) -> dict[int, int]:
        """Threshold -> the hour the count first reached it."""
        reached: dict[int, int] = {}
        pending = sorted(thresholds)
        for hour, count in self.series():
            while pending and count >= pending[0]:
                reached[pending.pop(0)] = hour
        return reached
