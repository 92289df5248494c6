"""C2SP tlog-tiles: tile paths, entry bundles and incremental tile building.

A log is published as static tiles (c2sp.org/tlog-tiles) so that any tlog client
can fetch it, and so that proofs are computed by the client instead of served.
Tiles have height 8: a full tile holds 256 hashes (8,192 bytes); level-0 tiles
hold leaf hashes and a level-l tile holds the roots of full level-(l-1) tiles.

Coordinates are ``TileCoord(level, index, width, kind)``: ``kind`` is ``"hash"``
for Merkle hash tiles and ``"entries"`` for entry bundles (whose ``level`` is
always 0, as bundles mirror level-0 tiles); ``width`` is 256 for full tiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .errors import DecodeError, LocalProtocolError
from .merkle import HASH_SIZE, HashAt, RootBuilder
from .merkle import root as merkle_root

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileBuilder",
    "TileCoord",
    "TileHashReader",
    "TileKind",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path",
    "parse_path",
    "tile_path",
    "tiles_for_size",
    "tiles_needed",
]

TILE_HEIGHT = 8  # tlog-tiles "Merkle Tree": tiles of height 8
TILE_WIDTH = 256  # tlog-tiles: full tiles are exactly 256 hashes wide
MAX_LEVEL = 63  # tlog-tiles: <L> is between 0 and 63
MAX_ENTRY_SIZE = 0xFFFF  # tlog-tiles "Log entries": uint16 length prefix
# Not in the spec: a sanity bound so a hostile path cannot make us build a huge int.
_MAX_INDEX = 2**64
_DIGITS = frozenset("0123456789")

TileKind: TypeAlias = Literal["hash", "entries"]


def _check_coord(level: int, index: int, width: int, kind: str) -> None:
    """Raise LocalProtocolError unless the coordinate is one tlog-tiles can name."""
    if kind not in ("hash", "entries"):
        raise LocalProtocolError(f"unknown tile kind {kind!r}")
    if kind == "entries" and level != 0:
        raise LocalProtocolError(f"entry bundles have level 0, not {level}")
    if not 0 <= level <= MAX_LEVEL:
        raise LocalProtocolError(f"tile level {level} is not in 0..{MAX_LEVEL}")
    if not 0 <= index < _MAX_INDEX:
        raise LocalProtocolError(f"tile index {index} is out of range")
    if not 1 <= width <= TILE_WIDTH:
        raise LocalProtocolError(f"tile width {width} is not in 1..{TILE_WIDTH}")


@dataclass(frozen=True, slots=True)
class TileCoord:
    """Where a tile or entry bundle sits; ``width == TILE_WIDTH`` for a full one."""

    level: int
    index: int
    width: int = TILE_WIDTH
    kind: TileKind = "hash"

    def __post_init__(self) -> None:
        _check_coord(self.level, self.index, self.width, self.kind)

    @property
    def is_partial(self) -> bool:
        """Partial tiles are served only for sizes a checkpoint commits to."""
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        """The resource path below the log prefix, e.g. ``tile/1/005.p/17``."""
        if self.kind == "entries":
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


def _encode_index(index: int) -> str:
    """tlog-tiles <N>: zero-padded 3-digit elements, all but the last prefixed ``x``."""
    groups: list[int] = []
    while True:
        index, group = divmod(index, 1000)
        groups.append(group)
        if index == 0:
            break
    groups.reverse()
    return "/".join([f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"])


def _suffix(width: int | None) -> str:
    """tlog-tiles: ``.p/<W>`` only for partial tiles, W in 1..255."""
    if width is None or width == TILE_WIDTH:
        return ""
    return f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (tlog-tiles "Merkle Tree"); ``None`` width means full."""
    _check_coord(level, index, TILE_WIDTH if width is None else width, "hash")
    return f"tile/{level}/{_encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int | None = None) -> str:
    """``tile/entries/<N>[.p/<W>]`` (tlog-tiles "Log entries")."""
    _check_coord(0, index, TILE_WIDTH if width is None else width, "entries")
    return f"tile/entries/{_encode_index(index)}{_suffix(width)}"


def _parse_decimal(text: str, low: int, high: int, what: str, path: str) -> int:
    """A decimal ASCII integer with no leading zeroes, in ``low..high`` (tlog-tiles)."""
    if (
        not text
        or len(text) > 3
        or not _DIGITS.issuperset(text)
        or (text[0] == "0" and text != "0")
    ):
        raise DecodeError(f"tile path {path!r}: {what} {text!r} is not canonical")
    value = int(text)
    if not low <= value <= high:
        raise DecodeError(f"tile path {path!r}: {what} {value} is not in {low}..{high}")
    return value


def _is_group(text: str) -> bool:
    return len(text) == 3 and _DIGITS.issuperset(text)


def parse_path(path: str) -> TileCoord:
    """Parse a canonical tile or entry-bundle path; anything else is a DecodeError.

    Rejects leading zeroes in <L> and <W>, widths 0 and 256 (a full tile has no
    ``.p``), a superfluous leading ``x000`` element, and misplaced ``x`` prefixes, so
    that each resource has exactly one name.
    """
    if len(path) > 64:
        raise DecodeError(f"tile path {path[:64]!r}... is too long")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise DecodeError(f"{path!r} is not a tile path")
    kind: TileKind
    if parts[1] == "entries":
        kind, level = "entries", 0
    else:
        kind, level = "hash", _parse_decimal(parts[1], 0, MAX_LEVEL, "level", path)
    elements = parts[2:]
    width = TILE_WIDTH
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        width = _parse_decimal(elements[-1], 1, TILE_WIDTH - 1, "width", path)
        elements = [*elements[:-2], elements[-2][:-2]]
    *upper, last = elements
    if not _is_group(last) or not all(e[:1] == "x" and _is_group(e[1:]) for e in upper):
        raise DecodeError(f"tile path {path!r}: index is not canonical")
    if upper and upper[0] == "x000":
        raise DecodeError(f"tile path {path!r}: index has a leading zero element")
    index = 0
    for e in upper:
        index = index * 1000 + int(e[1:])
    index = index * 1000 + int(last)
    if index >= _MAX_INDEX:
        raise DecodeError(f"tile path {path!r}: index is out of range")
    return TileCoord(level, index, width, kind)


def tiles_for_size(size: int) -> list[TileCoord]:
    """Every hash tile and entry bundle that exists for a tree of exactly ``size``.

    Order: for each level-0 index, its entry bundle then its level-0 hash tile;
    then level 1, level 2, ... each in index order. In every level the partial tile,
    if any, comes last. A level-l partial tile has width floor(size / 256**l) mod 256
    and is absent when that is 0 (tlog-tiles "Partial Tiles").
    """
    if size < 0:
        raise LocalProtocolError(f"tree size {size} is negative")
    out: list[TileCoord] = []
    full, width = divmod(size, TILE_WIDTH)
    for n in range(full):
        out.append(TileCoord(0, n, TILE_WIDTH, "entries"))
        out.append(TileCoord(0, n))
    if width:
        out.append(TileCoord(0, full, width, "entries"))
        out.append(TileCoord(0, full, width))
    level = 1
    while size >> (TILE_HEIGHT * level):
        full, width = divmod(size >> (TILE_HEIGHT * level), TILE_WIDTH)
        out.extend(TileCoord(level, n) for n in range(full))
        if width:
            out.append(TileCoord(level, full, width))
        level += 1
    return out


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Big-endian uint16 length-prefixed entries, 1..256 of them (tlog-tiles "Log entries")."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise LocalProtocolError(
            f"an entry bundle holds 1..{TILE_WIDTH} entries, not {len(entries)}"
        )
    parts: list[bytes] = []
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise LocalProtocolError(
                f"entry {i} is {len(entry)} bytes; a bundle entry holds at most {MAX_ENTRY_SIZE}"
            )
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(bytes(entry))
    return b"".join(parts)


def decode_entry_bundle(data: bytes | bytearray | memoryview, count: int) -> list[bytes]:
    """Split an entry bundle into exactly ``count`` entries, with no bytes left over.

    A bounds check per entry instead of exceptions keeps this loop cheap: it runs
    over every entry a verifier downloads.
    """
    if not 1 <= count <= TILE_WIDTH:
        raise LocalProtocolError(f"an entry bundle holds 1..{TILE_WIDTH} entries, not {count}")
    if not isinstance(data, bytes):
        data = bytes(data)  # slices of bytes are bytes, not views
    total = len(data)
    out: list[bytes] = []
    append = out.append
    pos = 0
    for i in range(count):
        start = pos + 2
        if start > total:
            raise DecodeError(f"entry bundle ends inside the length of entry {i} of {count}")
        end = start + ((data[pos] << 8) | data[pos + 1])
        if end > total:
            raise DecodeError(f"entry bundle ends inside entry {i} of {count}")
        append(data[start:end])
        pos = end
    if pos != total:
        raise DecodeError(f"entry bundle has {total - pos} bytes after its {count} entries")
    return out


def _levels_for_size(size: int) -> int:
    """Number of tile levels with at least one hash for a tree of ``size`` leaves."""
    levels = 0
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return levels


class TileBuilder:
    """Builds hash tiles incrementally from leaf hashes, keeping only the right edge.

    The state is the tree size and, per level, the hashes of the current partial
    tile (fewer than 256). That is enough to emit each tile as it becomes full and
    to compute the root, so a sequencer can resume from ``right_edge()`` after a
    restart without reading older tiles.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[list[bytes]] = []

    @classmethod
    def from_right_edge(cls, size: int, partial_tiles: Mapping[int, bytes]) -> TileBuilder:
        """Resume from ``right_edge()`` output: level -> concatenated partial-tile hashes.

        Levels whose partial tile is empty may be missing or map to ``b""``. Raises
        DecodeError if the bytes do not fit a tree of ``size``.
        """
        if size < 0:
            raise LocalProtocolError(f"tree size {size} is negative")
        levels = _levels_for_size(size)
        for level, data in partial_tiles.items():
            if not 0 <= level < levels and data:
                raise DecodeError(f"tree of size {size} has no partial tile at level {level}")
        builder = cls()
        for level in range(levels):
            width = (size >> (TILE_HEIGHT * level)) % TILE_WIDTH
            data = partial_tiles.get(level, b"")
            if len(data) != width * HASH_SIZE:
                raise DecodeError(
                    f"partial tile at level {level} for size {size} is {len(data)} bytes, "
                    f"expected {width * HASH_SIZE}"
                )
            builder._edge.append(
                [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]
            )
        builder._size = size
        return builder

    def right_edge(self) -> dict[int, bytes]:
        """The resumable state: level -> concatenated hashes of its non-empty partial tile."""
        return {level: b"".join(hashes) for level, hashes in enumerate(self._edge) if hashes}

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hashes: Sequence[bytes]) -> list[tuple[TileCoord, bytes]]:
        """Append leaf hashes; return the hash tiles that became full (8,192 bytes each).

        Returned tiles are in level order, then index order. Each full tile's root
        becomes the next hash of the level above (tlog-tiles "Merkle Tree").
        """
        for i, h in enumerate(leaf_hashes):
            if len(h) != HASH_SIZE:
                raise LocalProtocolError(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        old_size = self._size
        completed: list[tuple[TileCoord, bytes]] = []
        incoming = list(leaf_hashes)
        level = 0
        while incoming:
            if level > MAX_LEVEL:  # pragma: no cover - needs 2**512 leaves
                raise LocalProtocolError("tree has outgrown tile level 63")
            if level == len(self._edge):
                self._edge.append([])
            partial = self._edge[level]
            tile_index = old_size >> (TILE_HEIGHT * (level + 1))
            promoted: list[bytes] = []
            pos = 0
            while True:
                need = TILE_WIDTH - len(partial)
                if len(incoming) - pos < need:
                    partial.extend(incoming[pos:])
                    break
                partial.extend(incoming[pos : pos + need])
                pos += need
                completed.append((TileCoord(level, tile_index), b"".join(partial)))
                promoted.append(merkle_root(partial))
                partial.clear()
                tile_index += 1
            incoming = promoted
            level += 1
        self._size = old_size + len(leaf_hashes)
        return completed

    def partial_tiles(self) -> list[tuple[TileCoord, bytes]]:
        """The non-empty partial hash tiles for the current size, in level order."""
        size = self._size
        return [
            (
                TileCoord(level, size >> (TILE_HEIGHT * (level + 1)), len(hashes)),
                b"".join(hashes),
            )
            for level, hashes in enumerate(self._edge)
            if hashes
        ]

    def root(self) -> bytes:
        """MTH of the tree from the right edge alone.

        The partial tiles, highest level first, cover leaves [0, size) with perfect
        subtrees of 256**level leaves each; folding them gives the root.
        """
        builder = RootBuilder()
        for level in range(len(self._edge) - 1, -1, -1):
            subtree = 1 << (TILE_HEIGHT * level)
            for h in self._edge[level]:
                builder.add_subtree(h, subtree)
        return builder.root()


class TileHashReader:
    """A merkle ``HashAt`` backed by hash tiles, for proofs from stored tiles.

    ``read_tile(coord)`` returns the bytes of a hash tile of the tree of ``size``
    (full, or the partial one that size requires). Merkle level ``l`` lives in tile
    level ``l // 8``; the ``l % 8`` levels inside a tile are recomputed by hashing
    (tlog-tiles "Merkle Tree"). Tiles read and hashes recomputed are kept for the
    reader's lifetime, so use one reader per request or per batch of proofs. If
    ``read_tile`` raises, nothing is kept for that tile: a caller that fetches it
    and asks again finds everything computed before still there.
    """

    __slots__ = ("_cache", "_hashes", "_read_tile", "_size")

    def __init__(self, size: int, read_tile: Callable[[TileCoord], bytes]) -> None:
        if size < 0:
            raise LocalProtocolError(f"tree size {size} is negative")
        self._size = size
        self._read_tile = read_tile
        self._cache: dict[tuple[int, int], bytes] = {}
        self._hashes: dict[tuple[int, int], bytes] = {}  # recomputed inside a tile

    @property
    def size(self) -> int:
        """The tree size the reader serves hashes for."""
        return self._size

    def _coord(self, level: int, index: int) -> TileCoord:
        """Tile ``index`` of tile level ``level``, full or as partial as the size makes it."""
        if (index + 1) << (TILE_HEIGHT * (level + 1)) <= self._size:
            width = TILE_WIDTH
        else:
            width = (self._size >> (TILE_HEIGHT * level)) % TILE_WIDTH
        return TileCoord(level, index, width)

    def _tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        data = self._cache.get(key)
        if data is not None:
            return data
        coord = self._coord(level, index)
        data = self._read_tile(coord)
        if len(data) != coord.width * HASH_SIZE:
            raise DecodeError(
                f"tile {coord.path} is {len(data)} bytes, expected {coord.width * HASH_SIZE}"
            )
        data = bytes(data)
        self._cache[key] = data
        return data

    def _check(self, level: int, index: int) -> None:
        if (
            not 0 <= level < TILE_HEIGHT * (MAX_LEVEL + 1)
            or index < 0
            or (index + 1) << level > self._size
        ):
            raise LocalProtocolError(
                f"no complete subtree at level {level}, index {index} "
                f"in a tree of size {self._size}"
            )

    def tile_of(self, level: int, index: int) -> TileCoord:
        """The tile that :meth:`__call__` reads for the same subtree (reading nothing)."""
        self._check(level, index)
        tile_level, inner = divmod(level, TILE_HEIGHT)
        return self._coord(tile_level, (index << inner) >> TILE_HEIGHT)

    def __call__(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree over leaves [index * 2**level, (index+1) * 2**level)."""
        self._check(level, index)
        tile_level, inner = divmod(level, TILE_HEIGHT)
        first = index << inner  # position among the hashes of tile level `tile_level`
        data = self._tile(tile_level, first >> TILE_HEIGHT)
        start = (first % TILE_WIDTH) * HASH_SIZE
        if inner == 0:
            return data[start : start + HASH_SIZE]
        known = self._hashes.get((level, index))
        if known is None:
            count = 1 << inner
            known = self._hashes[(level, index)] = merkle_root(
                [data[i : i + HASH_SIZE]
                 for i in range(start, start + count * HASH_SIZE, HASH_SIZE)])
        return known


def tiles_needed(size: int, compute: Callable[[HashAt], object]) -> list[TileCoord]:
    """The tiles ``compute`` reads through a :class:`TileHashReader` of a tree of ``size``.

    A proof's shape follows from its indices and the tree size alone, so running
    ``compute`` once over placeholder hashes lists them, without reading any: a
    reader of stored tiles can then fetch them together.
    """
    reader = TileHashReader(size, lambda coord: b"")  # never called
    wanted: dict[TileCoord, None] = {}

    def placeholder(level: int, index: int) -> bytes:
        wanted[reader.tile_of(level, index)] = None
        return bytes(HASH_SIZE)

    compute(placeholder)
    return list(wanted)
