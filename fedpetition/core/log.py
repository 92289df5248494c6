"""Appending to one (host, petition) log (spec §6, §7): entries in, files out.

:class:`LogAppender` turns batches of encoded entries into the immutable files a
log serves (full entry bundles and hash tiles), the mutable right edge (partial
bundle and tiles) and a signed checkpoint. Its state is only the right edge, so a
sequencer can persist it and resume; the simulator uses the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import merkle, tiles
from .errors import DecodeError, LocalProtocolError
from .notes import Checkpoint, Signer, VerifierKey, open_checkpoint, sign_checkpoint

File = tuple[str, bytes]  # (path below the log prefix, contents)


@dataclass(frozen=True)
class LogState:
    """What must be persisted to resume a log: its size and right edge."""

    size: int
    partial_tiles: dict[int, bytes]  # level -> concatenated hashes of the partial tile
    partial_entries: tuple[bytes, ...]  # entries of the partial entry bundle


class LogAppender:
    """Builds a tlog-tiles log incrementally."""

    def __init__(self, origin: str, state: LogState | None = None) -> None:
        self.origin = origin
        if state is None:
            self._tiles = tiles.TileBuilder()
            self._pending: list[bytes] = []
        else:
            if state.size % tiles.TILE_WIDTH != len(state.partial_entries):
                raise LocalProtocolError("partial entry bundle does not match the log size")
            self._tiles = tiles.TileBuilder.from_right_edge(state.size, state.partial_tiles)
            self._pending = list(state.partial_entries)

    @property
    def size(self) -> int:
        return self._tiles.size

    def state(self) -> LogState:
        return LogState(self.size, self._tiles.right_edge(), tuple(self._pending))

    def append(self, entries: Sequence[bytes]) -> list[File]:
        """Append encoded entries; return the files that became immutable (full)."""
        files: list[File] = []
        start = self.size
        leaves = [merkle.leaf_hash(e) for e in entries]
        pending = self._pending
        bundle_index = start // tiles.TILE_WIDTH
        for entry in entries:
            pending.append(entry)
            if len(pending) == tiles.TILE_WIDTH:
                coord = tiles.TileCoord(0, bundle_index, tiles.TILE_WIDTH, "entries")
                files.append((coord.path, tiles.encode_entry_bundle(pending)))
                pending.clear()
                bundle_index += 1
        files.extend((coord.path, data) for coord, data in self._tiles.append(leaves))
        return files

    def partial_files(self) -> list[File]:
        """The partial entry bundle and tiles that the current size requires."""
        files: list[File] = []
        if self._pending:
            coord = tiles.TileCoord(0, self.size // tiles.TILE_WIDTH, len(self._pending),
                                    "entries")
            files.append((coord.path, tiles.encode_entry_bundle(self._pending)))
        files.extend((coord.path, data) for coord, data in self._tiles.partial_tiles())
        return files

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.origin, self.size, self._tiles.root())

    def signed_checkpoint(self, signer: Signer) -> str:
        return sign_checkpoint(self.checkpoint(), signer)


def open_log_checkpoint(
    note: str | bytes, origin: str, log_key: VerifierKey, witnesses: Sequence[VerifierKey]
) -> tuple[Checkpoint, list[str]]:
    """Open a log's checkpoint by the rules of spec §7.

    The note must be signed by the log's host key, be for ``origin`` and carry no
    extension lines. Returns the checkpoint and the sorted names of the witnesses
    (never the host itself) whose cosignatures verified. Raises DecodeError or
    SignatureError (a bad signature by any known key rejects the whole note).
    """
    eligible = [w for w in witnesses if w.public_key != log_key.public_key]
    opened = open_checkpoint(note, log_key, eligible)
    checkpoint = opened.checkpoint
    if checkpoint.origin != origin:
        raise DecodeError(f"checkpoint is for {checkpoint.origin}, not {origin}")
    if checkpoint.extensions:
        raise DecodeError("checkpoint has extension lines")
    return checkpoint, sorted({key.name for key, _ in opened.cosignatures})
