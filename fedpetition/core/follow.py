"""Following a petition's logs as they grow, to keep a federated count current.

A node shows the federated count of every petition it takes part in. Verifying
the whole federation again for each new checkpoint would cost the full §11
procedure every few seconds; a :class:`LogFollower` instead checks only what is
new: the entries between the size it has verified and the new checkpoint's
size, against that checkpoint's root (steps entry-format, tree-hashes and
log-rules of §11, applied incrementally). :func:`federated_tally` then merges
the followed logs by the rule of §9.

Pure: the caller fetches the entry bundles :meth:`LogFollower.needed` names and
passes them in. A follower that met a broken log keeps its ``failure`` and its
log is left out of the count, as a verifier would exclude it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from . import tiles
from .entries import parse_entry
from .errors import FedPetitionError, VerificationError
from .logcheck import PetitionRules
from .merkle import EMPTY_ROOT, RootBuilder, leaf_hash
from .notes import Checkpoint
from .tally import LogTally, Tally, TallyBuilder

__all__ = ["FollowedLog", "LogFollower", "federated_tally"]


class LogFollower:
    """One log, verified up to ``size``: its tree edge and its tally so far."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.size = 0
        self.root = EMPTY_ROOT
        self.tally = LogTally(origin)
        self.failure: str | None = None
        self.last_time = -1
        self._builder = RootBuilder()

    def needed(self, size: int) -> list[tiles.TileCoord]:
        """The entry bundles holding the entries from ``self.size`` up to ``size``."""
        if size <= self.size:
            return []
        width = tiles.TILE_WIDTH
        return [tiles.TileCoord(0, index, min(width, size - index * width), "entries")
                for index in range(self.size // width, (size - 1) // width + 1)]

    def advance(self, checkpoint: Checkpoint, bundles: Mapping[tiles.TileCoord, bytes],
                rules: PetitionRules) -> int:
        """Take the entries up to ``checkpoint`` (already opened); return how many were new.

        ``rules`` are the petition's versions and deadline, as the verifier checks
        entries against them (spec §11.3.8). A stale
        checkpoint (smaller than what was verified) changes nothing. Raises
        VerificationError naming the failed step; the follower then keeps the
        failure and its state stays at the last good checkpoint.
        """
        if self.failure is not None:
            raise VerificationError("log-rules", self.failure, log=self.origin)
        if checkpoint.origin != self.origin:
            raise VerificationError("checkpoint-signature",
                                    f"checkpoint is for {checkpoint.origin}", log=self.origin)
        if checkpoint.size <= self.size:
            if checkpoint.size == self.size and checkpoint.root_hash != self.root:
                self._fail("tree-hashes", f"two checkpoints of size {self.size} with "
                                          "different roots (a split view)")
            return 0
        builder = self._builder.copy()
        new: list[bytes] = []
        for coord in self.needed(checkpoint.size):
            data = bundles.get(coord)
            if data is None:
                raise VerificationError("bundle-members", f"{coord.path} is missing",
                                        log=self.origin)
            try:
                entries = tiles.decode_entry_bundle(data, coord.width)
            except FedPetitionError as e:
                self._fail("entry-format", f"{coord.path}: {e}")
            first = coord.index * tiles.TILE_WIDTH
            for raw in entries[max(0, self.size - first):]:
                builder.add_leaf_hash(leaf_hash(raw))
                new.append(raw)
        if builder.root() != checkpoint.root_hash:
            self._fail("tree-hashes", f"entries do not hash to the root of size "
                                      f"{checkpoint.size}")
        parsed = []
        last_time = self.last_time
        for offset, raw in enumerate(new):
            try:
                entry = parse_entry(raw)
            except FedPetitionError as e:
                self._fail("entry-format", f"entry {self.size + offset}: {e}")
            earliest = rules.earliest.get(entry.petition)
            if earliest is None:
                self._fail("entry-format", f"entry {self.size + offset} names no version "
                                           "of this petition")
            if entry.time < earliest or entry.time < last_time or entry.time > rules.deadline:
                self._fail("entry-format", f"entry {self.size + offset}: time {entry.time} is "
                           "before its version, before the previous entry, or after the "
                           "deadline")
            last_time = entry.time
            parsed.append(entry)
        for offset, entry in enumerate(parsed):
            try:
                self.tally.apply_entry(self.size + offset, entry)
            except VerificationError as e:
                self._fail("log-rules", str(e))
        self._builder = builder
        self.last_time = last_time
        self.size = checkpoint.size
        self.root = checkpoint.root_hash
        return len(new)

    def _fail(self, step: str, reason: str) -> NoReturn:
        self.failure = f"{step}: {reason}"
        raise VerificationError(step, reason, log=self.origin)


@dataclass(frozen=True)
class FollowedLog:
    host: str
    follower: LogFollower


def federated_tally(logs: Sequence[FollowedLog], version_numbers: dict[bytes, int]) -> Tally:
    """The §9 tally over the logs, in roster order, leaving out failed ones."""
    builder = TallyBuilder(version_numbers)
    for item in logs:
        if item.follower.failure is None:
            builder.add_log(item.host, item.follower.tally)
    return builder.finish()
