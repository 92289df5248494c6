"""C2SP tlog-tiles: paths, entry bundles, tile building and proofs from tiles."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpetition.core.errors import DecodeError, LocalProtocolError
from fedpetition.core.merkle import (
    HASH_SIZE,
    consistency_proof,
    hash_at_from_leaves,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from fedpetition.core.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TileBuilder,
    TileCoord,
    TileHashReader,
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path,
    parse_path,
    tile_path,
    tiles_for_size,
    tiles_needed,
)

# Hypothesis: no example database on disk, no per-example deadline.
SETTINGS = settings(max_examples=60, deadline=None, database=None)


@cache
def leaves(n: int) -> tuple[bytes, ...]:
    return tuple(leaf_hash(i.to_bytes(4, "big")) for i in range(n))


def level_hashes(hashes: Sequence[bytes], level: int) -> list[bytes]:
    """Every hash of tile level ``level`` by its definition (tlog-tiles "Merkle Tree"):
    MTH(D[i * 256**level : (i + 1) * 256**level]) for each complete i."""
    span = TILE_WIDTH**level
    return [root(hashes[i : i + span]) for i in range(0, len(hashes) - span + 1, span)]


# ---------------------------------------------------------------------------
# Paths. Examples are from C2SP/C2SP tlog-tiles.md ("Merkle Tree", "Log entries").
# ---------------------------------------------------------------------------
def test_spec_path_examples() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert tile_path(1, 5, 256) == tile_path(1, 5) == "tile/1/005"
    assert tile_path(63, 0) == "tile/63/000"
    assert tile_path(2, 1000) == "tile/2/x001/000"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(0, 1) == "tile/entries/000.p/1"
    assert parse_path("tile/0/x001/x234/067") == TileCoord(0, 1234067)
    assert parse_path("tile/1/005.p/17") == TileCoord(1, 5, 17)
    assert parse_path("tile/entries/x001/x234/067.p/255") == TileCoord(0, 1234067, 255, "entries")
    assert TileCoord(1, 5, 17).path == "tile/1/005.p/17"
    assert TileCoord(0, 7, kind="entries").path == "tile/entries/007"
    assert TileCoord(1, 5, 17).is_partial
    assert not TileCoord(1, 5).is_partial


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(64, 0, None), (-1, 0, None), (0, -1, None), (0, 0, 0), (0, 0, 257), (0, 2**64, None)],
)
def test_tile_path_rejects_bad_coordinates(level: int, index: int, width: int | None) -> None:
    with pytest.raises(LocalProtocolError):
        tile_path(level, index, width)


def test_coord_validation() -> None:
    with pytest.raises(LocalProtocolError):
        TileCoord(1, 0, kind="entries")
    with pytest.raises(LocalProtocolError):
        TileCoord(0, 0, 0)
    with pytest.raises(LocalProtocolError):
        entries_path(0, 256 + 1)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tile/0/000/",
        "tiles/0/000",
        "tile/00/000",  # leading zero in the level
        "tile/01/000",
        "tile/64/000",  # level out of range
        "tile/-1/000",
        "tile/+1/000",
        "tile/ 1/000",
        "tile/x/000",
        "tile/0/0",  # elements are exactly three digits
        "tile/0/0000",
        "tile/0/00a",
        "tile/0/x000/001",  # a leading all-zero element is not canonical
        "tile/0/001/002",  # upper elements need the x
        "tile/0/x001",  # the last element has no x
        "tile/0/x001/x002",
        "tile/0/xx01/002",
        "tile/0/X001/002",
        "tile/0/x01/002",
        "tile/0/x0001/002",
        "tile/0/x001/x234/067/",
        "tile/0/000.p/0",  # width 0
        "tile/0/000.p/256",  # full tiles have no .p
        "tile/0/000.p/01",  # leading zero in the width
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.p/1/",
        "tile/0/000.p/1.5",
        "tile/0/x001.p/1",
        "tile/0/x001.p/002",
        "tile/0/000.q/1",
        "tile/0/.p/1",
        "tile/0/\u0661\u0662\u0663",  # non-ASCII digits
        "tile/0/000.p/\u0661",
        "tile/entries/0",
        "tile/entries/x000/001",
        "tile/entries/000.p/256",
        "tile/entries",
        "tile/entries/",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2**64: beyond any tree
        "tile/0/" + "x999/" * 30 + "999",
    ],
)
def test_parse_rejects_non_canonical(path: str) -> None:
    with pytest.raises(DecodeError):
        parse_path(path)


coords = st.one_of(
    st.builds(
        TileCoord,
        level=st.integers(0, 63),
        index=st.integers(0, 2**64 - 1) | st.integers(0, 2000),
        width=st.integers(1, 256) | st.just(256),
    ),
    st.builds(
        lambda index, width: TileCoord(0, index, width, "entries"),
        st.integers(0, 2**64 - 1) | st.integers(0, 2000),
        st.integers(1, 256) | st.just(256),
    ),
)


@SETTINGS
@given(coord=coords)
def test_path_round_trip(coord: TileCoord) -> None:
    path = coord.path
    assert parse_path(path) == coord
    if coord.kind == "hash":
        assert path == tile_path(coord.level, coord.index, coord.width)
    else:
        assert path == entries_path(coord.index, coord.width)


@SETTINGS
@given(path=st.text(alphabet="tile/entrs0123456789xp.", max_size=30))
def test_parse_accepts_only_canonical_text(path: str) -> None:
    """Whatever parses must print back to exactly the same text."""
    try:
        coord = parse_path(path)
    except DecodeError:
        return
    assert coord.path == path


# ---------------------------------------------------------------------------
# Which tiles exist (tlog-tiles "Partial Tiles")
# ---------------------------------------------------------------------------
def test_spec_tile_set_examples() -> None:
    assert tiles_for_size(0) == []
    assert tiles_for_size(1) == [TileCoord(0, 0, 1, "entries"), TileCoord(0, 0, 1)]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial
    # level 1 tile of width 1"
    assert tiles_for_size(256) == [
        TileCoord(0, 0, 256, "entries"),
        TileCoord(0, 0),
        TileCoord(1, 0, 1),
    ]
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one
    # partial level 0 tile of width 112, one full level 1 tile, one partial level 1
    # tile of width 17, and one partial level 2 tile of width 1"
    tiles = tiles_for_size(70_000)
    hash_tiles = [t for t in tiles if t.kind == "hash"]
    level0 = [t for t in hash_tiles if t.level == 0]
    assert [t.width for t in level0] == [256] * 273 + [112]
    assert [t for t in hash_tiles if t.level > 0] == [
        TileCoord(1, 0),
        TileCoord(1, 1, 17),
        TileCoord(2, 0, 1),
    ]
    assert [t for t in tiles if t.kind == "entries"] == [
        TileCoord(0, t.index, t.width, "entries") for t in level0
    ]


@SETTINGS
@given(size=st.integers(0, 2**40) | st.integers(0, 70_000))
def test_tile_set_property(size: int) -> None:
    if size > 1_000_000:  # listing every tile of a huge tree is slow
        size = size % 1_000_000
    tiles = tiles_for_size(size)
    assert len(set(tiles)) == len(tiles)
    # Entry bundles and level-0 tiles alternate, in index order.
    level0 = [t for t in tiles if t.level == 0]
    assert level0 == tiles[: len(level0)]
    for i in range(0, len(level0), 2):
        bundle, tile = level0[i], level0[i + 1]
        assert bundle.kind == "entries"
        assert tile.kind == "hash"
        assert (bundle.index, bundle.width) == (tile.index, tile.width) == (i // 2, tile.width)
    hash_tiles = [t for t in tiles if t.kind == "hash"]
    levels = sorted({t.level for t in hash_tiles})
    assert levels == list(range(len(levels)))
    assert [t.level for t in hash_tiles] == sorted(t.level for t in hash_tiles)
    for level in levels:
        row = [t for t in hash_tiles if t.level == level]
        assert [t.index for t in row] == list(range(len(row)))
        hashes_at_level = size // TILE_WIDTH**level
        assert sum(t.width for t in row) == hashes_at_level
        assert all(t.width == TILE_WIDTH for t in row[:-1])
        if row[-1].is_partial:
            assert row[-1].width == hashes_at_level % TILE_WIDTH
        else:
            assert hashes_at_level % TILE_WIDTH == 0
    assert size < TILE_WIDTH ** len(levels) or size == 0


# ---------------------------------------------------------------------------
# Entry bundles (tlog-tiles "Log entries")
# ---------------------------------------------------------------------------
def test_entry_bundle_known_encoding() -> None:
    data = encode_entry_bundle([b"", b"a", b"\x00" * 300])
    assert data == b"\x00\x00" + b"\x00\x01a" + b"\x01\x2c" + b"\x00" * 300
    assert decode_entry_bundle(data, 3) == [b"", b"a", b"\x00" * 300]
    largest = b"\xff" * 0xFFFF
    assert decode_entry_bundle(encode_entry_bundle([largest]), 1) == [largest]
    assert decode_entry_bundle(bytearray(data), 3) == [b"", b"a", b"\x00" * 300]


def test_entry_bundle_rejects_bad_input() -> None:
    with pytest.raises(LocalProtocolError):
        encode_entry_bundle([])
    with pytest.raises(LocalProtocolError):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(LocalProtocolError):
        encode_entry_bundle([b"\x00" * 0x10000])
    with pytest.raises(LocalProtocolError):
        decode_entry_bundle(b"\x00\x00", 0)
    with pytest.raises(LocalProtocolError):
        decode_entry_bundle(b"\x00\x00" * 257, 257)
    for bad in [b"", b"\x00", b"\x00\x02a", b"\x00\x00\x00"]:
        with pytest.raises(DecodeError):
            decode_entry_bundle(bad, 1)


bundles = st.lists(st.binary(max_size=300), min_size=1, max_size=TILE_WIDTH)


@SETTINGS
@given(entries=bundles)
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_entry_bundle(entries)
    assert decode_entry_bundle(data, len(entries)) == entries
    assert len(data) == sum(2 + len(e) for e in entries)


@SETTINGS
@given(entries=bundles, data=st.data())
def test_entry_bundle_rejects_truncated_and_overlong(
    entries: list[bytes], data: st.DataObject
) -> None:
    encoded = encode_entry_bundle(entries)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    with pytest.raises(DecodeError):
        decode_entry_bundle(encoded[:cut], len(entries))
    extra = data.draw(st.binary(min_size=1, max_size=4), label="extra")
    with pytest.raises(DecodeError):
        decode_entry_bundle(encoded + extra, len(entries))
    if len(entries) > 1:
        with pytest.raises(DecodeError):
            decode_entry_bundle(encoded, len(entries) - 1)
    if len(entries) < TILE_WIDTH:
        with pytest.raises(DecodeError):
            decode_entry_bundle(encoded, len(entries) + 1)


# ---------------------------------------------------------------------------
# TileBuilder
# ---------------------------------------------------------------------------
def build_in_batches(
    hashes: Sequence[bytes], cuts: Sequence[int]
) -> tuple[TileBuilder, list[tuple[TileCoord, bytes]]]:
    """Feed ``hashes`` in batches of the given sizes (the rest in one last batch),
    checking the right edge's root and partial tiles after every batch."""
    builder = TileBuilder()
    full: list[tuple[TileCoord, bytes]] = []
    pos = 0
    for cut in [*cuts, len(hashes)]:
        batch = hashes[pos : pos + cut]
        pos += len(batch)
        completed = builder.append(batch)
        levels = [c.level for c, _ in completed]
        assert levels == sorted(levels)  # level order within one call
        full += completed
        assert builder.size == pos
        assert builder.root() == root(hashes[:pos])
        check_partial_tiles(builder, hashes[:pos])
    return builder, full


def check_partial_tiles(builder: TileBuilder, hashes: Sequence[bytes]) -> None:
    size = len(hashes)
    partial = builder.partial_tiles()
    assert [c for c, _ in partial] == [
        t for t in tiles_for_size(size) if t.kind == "hash" and t.is_partial
    ]
    for coord, data in partial:
        assert len(data) == coord.width * HASH_SIZE
        span = TILE_WIDTH**coord.level
        first = coord.index * TILE_WIDTH
        assert data == b"".join(
            root(hashes[i * span : (i + 1) * span]) for i in range(first, first + coord.width)
        )


def check_full_tiles(full: list[tuple[TileCoord, bytes]], hashes: Sequence[bytes]) -> None:
    expected = [t for t in tiles_for_size(len(hashes)) if t.kind == "hash" and not t.is_partial]
    assert sorted((c.level, c.index) for c, _ in full) == [(c.level, c.index) for c in expected]
    by_level: dict[int, list[bytes]] = {}
    for coord, data in full:
        assert len(data) == TILE_WIDTH * HASH_SIZE
        by_level.setdefault(coord.level, []).append(data)
    for level, tiles in by_level.items():
        assert b"".join(tiles) == b"".join(level_hashes(hashes, level)[: len(tiles) * TILE_WIDTH])


@SETTINGS
@given(n=st.integers(0, 3000), cuts=st.lists(st.integers(0, 700), max_size=10))
def test_tile_builder_batches(n: int, cuts: list[int]) -> None:
    hashes = leaves(n)
    builder, full = build_in_batches(hashes, cuts)
    one_shot = TileBuilder()
    assert one_shot.append(hashes) == full
    assert one_shot.partial_tiles() == builder.partial_tiles()
    assert one_shot.right_edge() == builder.right_edge()
    check_full_tiles(full, hashes)


def test_tile_builder_three_levels() -> None:
    """Past 65,536 leaves: level-2 tiles appear, as in the spec's 70,000 example."""
    hashes = leaves(70_000)
    builder, full = build_in_batches(hashes, [1, 255, 65_280, 1, 3_000])
    assert builder.root() == root(hashes)
    check_full_tiles(full, hashes)
    assert [c for c, _ in builder.partial_tiles()] == [
        TileCoord(0, 273, 112),
        TileCoord(1, 1, 17),
        TileCoord(2, 0, 1),
    ]


@SETTINGS
@given(n=st.integers(0, 2000), m=st.integers(0, 700), stop=st.integers(0, 2000))
def test_tile_builder_resumes_from_right_edge(n: int, m: int, stop: int) -> None:
    stop = min(stop, n)
    hashes = leaves(n + m)
    first = TileBuilder()
    before = first.append(hashes[:stop])
    edge = first.right_edge()
    assert all(len(v) for v in edge.values())
    resumed = TileBuilder.from_right_edge(stop, edge)
    assert resumed.size == stop
    assert resumed.root() == first.root() == root(hashes[:stop])
    assert resumed.partial_tiles() == first.partial_tiles()
    after = resumed.append(hashes[stop:])

    def key(tile: tuple[TileCoord, bytes]) -> tuple[int, int]:
        return tile[0].level, tile[0].index

    assert sorted(before + after, key=key) == sorted(TileBuilder().append(hashes), key=key)
    assert resumed.root() == root(hashes)


def test_from_right_edge_rejects_inconsistent_state() -> None:
    builder = TileBuilder()
    builder.append(leaves(300))
    edge = builder.right_edge()
    assert sorted(edge) == [0, 1]
    assert len(edge[0]) == 44 * HASH_SIZE
    with pytest.raises(DecodeError):
        TileBuilder.from_right_edge(301, edge)
    with pytest.raises(DecodeError):
        TileBuilder.from_right_edge(300, {0: edge[0]})
    with pytest.raises(DecodeError):
        TileBuilder.from_right_edge(300, {**edge, 2: b"\x00" * HASH_SIZE})
    with pytest.raises(DecodeError):
        TileBuilder.from_right_edge(300, {0: edge[0][:-1], 1: edge[1]})
    with pytest.raises(LocalProtocolError):
        TileBuilder.from_right_edge(-1, {})
    empty = TileBuilder.from_right_edge(256, {0: b"", 1: edge[1]})
    assert empty.root() == root(leaves(256))
    with pytest.raises(LocalProtocolError):
        builder.append([b"short"])


# ---------------------------------------------------------------------------
# Proofs from tiles
# ---------------------------------------------------------------------------
class TileStore:
    """Tiles as a node would store them: every full tile, plus the partials for one size."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        builder = TileBuilder()
        self.tiles = dict(builder.append(hashes))
        self.tiles.update(builder.partial_tiles())
        self.allowed = set(tiles_for_size(len(hashes)))
        self.reads: list[TileCoord] = []

    def read(self, coord: TileCoord) -> bytes:
        assert coord in self.allowed, coord  # only tiles the size requires
        self.reads.append(coord)
        return self.tiles[coord]


@SETTINGS
@given(data=st.data(), n=st.integers(1, 3000))
def test_tile_reader_matches_leaf_reader(data: st.DataObject, n: int) -> None:
    hashes = leaves(n)
    store = TileStore(hashes)
    from_tiles = TileHashReader(n, store.read)
    from_leaves = hash_at_from_leaves(hashes)
    r = root(hashes)
    for _ in range(3):
        index = data.draw(st.integers(0, n - 1), label="index")
        proof = inclusion_proof(index, n, from_tiles)
        assert proof == inclusion_proof(index, n, from_leaves)
        verify_inclusion(hashes[index], index, n, proof, r)
        m = data.draw(st.integers(1, n), label="old size")
        proof = consistency_proof(m, n, from_tiles)
        assert proof == consistency_proof(m, n, from_leaves)
        verify_consistency(m, n, proof, root(hashes[:m]), r)
    level = data.draw(st.integers(0, (n - 1).bit_length()), label="level")
    if n >> level:
        index = data.draw(st.integers(0, (n >> level) - 1), label="subtree")
        assert from_tiles(level, index) == from_leaves(level, index)
    assert len(store.reads) == len(set(store.reads))  # each tile read once


@SETTINGS
@given(data=st.data(),
       n=st.integers(1, 3000) | st.sampled_from([65_536, 65_537, 70_000]))  # 3 tile levels
def test_tiles_needed_are_the_tiles_a_proof_reads(data: st.DataObject, n: int) -> None:
    store = TileStore(leaves(n))
    index = data.draw(st.integers(0, n - 1), label="index")
    old = data.draw(st.integers(1, n), label="old size")
    for compute in (lambda hash_at: inclusion_proof(index, n, hash_at),
                    lambda hash_at: consistency_proof(old, n, hash_at)):
        store.reads.clear()
        compute(TileHashReader(n, store.read))
        assert tiles_needed(n, compute) == list(dict.fromkeys(store.reads))


def test_tile_reader_three_levels() -> None:
    n = 70_000
    hashes = leaves(n)
    store = TileStore(hashes)
    from_tiles = TileHashReader(n, store.read)
    from_leaves = hash_at_from_leaves(hashes)
    assert from_tiles.size == n
    for index in [0, 255, 256, 65_535, 65_536, 69_999]:
        assert inclusion_proof(index, n, from_tiles) == inclusion_proof(index, n, from_leaves)
    for m in [1, 256, 65_536, 65_537, 69_999]:
        assert consistency_proof(m, n, from_tiles) == consistency_proof(m, n, from_leaves)
    assert {c.level for c in store.reads} == {0, 1, 2}
    assert from_tiles(16, 0) == root(hashes[:65_536])


def test_tile_reader_keeps_its_hashes_across_missing_tiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller that fetches each missing tile and asks again (as a node does from its
    storage) hashes no more than one that had every tile at hand."""
    n = 70_000
    hashes = leaves(n)
    store = TileStore(hashes)
    calls: list[int] = []

    def counting_root(level: list[bytes]) -> bytes:
        calls.append(len(level))
        return root(level)

    monkeypatch.setattr("fedpetition.core.tiles.merkle_root", counting_root)
    fetched: dict[TileCoord, bytes] = {}

    def read(coord: TileCoord) -> bytes:
        if coord not in fetched:
            raise KeyError(coord)
        return fetched[coord]

    reader = TileHashReader(n, read)
    attempts = 0
    while True:
        attempts += 1
        try:
            proof = inclusion_proof(35_000, n, reader)
            break
        except KeyError as missing:
            (coord,) = missing.args
            fetched[coord] = store.read(coord)
    assert attempts == len(fetched) + 1 > 2
    retried = list(calls)
    calls.clear()
    assert inclusion_proof(35_000, n, TileHashReader(n, store.read)) == proof
    assert retried == calls
    assert proof == inclusion_proof(35_000, n, hash_at_from_leaves(hashes))


def test_tile_reader_errors() -> None:
    hashes = leaves(300)
    store = TileStore(hashes)
    reader = TileHashReader(300, store.read)
    for level, index in [(0, 300), (5, 9), (9, 0), (-1, 0), (0, -1), (TILE_HEIGHT * 64, 0)]:
        with pytest.raises(LocalProtocolError):
            reader(level, index)
    short = TileHashReader(300, lambda coord: store.tiles[coord][:-1])
    with pytest.raises(DecodeError):
        short(0, 0)
    with pytest.raises(LocalProtocolError):
        TileHashReader(-1, store.read)


def test_tile_hash_definition() -> None:
    """Level-1 tile hashes are MTHs of 256 leaves (tlog-tiles "Merkle Tree")."""
    hashes = leaves(512)
    builder = TileBuilder()
    full = dict(builder.append(hashes))
    level1 = builder.partial_tiles()[0]
    assert level1[0] == TileCoord(1, 0, 2)
    assert level1[1] == root(hashes[:256]) + root(hashes[256:])
    assert full[TileCoord(0, 1)] == b"".join(hashes[256:])
    assert hashlib.sha256(b"\x00" + (0).to_bytes(4, "big")).digest() == hashes[0]
