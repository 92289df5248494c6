"""RFC 9162 Merkle tree hashing and proofs: known vectors and a naive model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpetition.core.errors import LocalProtocolError, ProofError
from fedpetition.core.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    RootBuilder,
    consistency_proof,
    consistency_proof_length,
    hash_at_from_leaves,
    inclusion_proof,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion_proof,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

# Hypothesis: no example database on disk, no per-example deadline (hashing is slow-ish).
SETTINGS = settings(max_examples=60, deadline=None, database=None)

# ---------------------------------------------------------------------------
# Known vectors: the Certificate Transparency reference tree (RFC 6962 test leaves).
#
# Inputs, roots for sizes 0..8, inclusion paths and consistency proofs are from
#   google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc
#   (kInputs, kSHA256EmptyTreeHash, kSHA256Roots, kSHA256Paths, kSHA256Proofs)
# and agree with
#   transparency-dev/merkle, proof/verify_test.go
#   (leaves, roots, inclusionProofs, consistencyProofs), which adds the 6 -> 7
#   consistency proof. Both number path leaves from 1; indexes below are 0-based.
# ---------------------------------------------------------------------------
CT_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [  # CT_ROOTS[n] is the root of the first n inputs
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
CT_INCLUSION = [  # (0-based index, tree size, path)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (  # transparency-dev/merkle only
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_LEAVES = [leaf_hash(x) for x in CT_INPUTS]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# ---------------------------------------------------------------------------
# A naive model: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 transcribed recursively.
# ---------------------------------------------------------------------------
def _split(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return hashlib.sha256(b"\x01" + naive_mth(hashes[:k]) + naive_mth(hashes[k:])).digest()


def naive_path(m: int, hashes: Sequence[bytes]) -> list[tuple[bytes, str]]:
    """PATH(m, D[n]) with the side each sibling sits on ("L" or "R")."""
    n = len(hashes)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*naive_path(m, hashes[:k]), (naive_mth(hashes[k:]), "R")]
    return [*naive_path(m - k, hashes[k:]), (naive_mth(hashes[:k]), "L")]


def naive_subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [naive_mth(hashes)]
    k = _split(n)
    if m <= k:
        return [*naive_subproof(m, hashes[:k], complete), naive_mth(hashes[k:])]
    return [*naive_subproof(m - k, hashes[k:], False), naive_mth(hashes[:k])]


@cache
def leaves(n: int, salt: int = 0) -> tuple[bytes, ...]:
    return tuple(leaf_hash(salt.to_bytes(4, "big") + i.to_bytes(4, "big")) for i in range(n))


def flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def verifies_inclusion(lh: bytes, index: int, size: int, proof: Sequence[bytes], r: bytes) -> bool:
    try:
        verify_inclusion(lh, index, size, proof, r)
    except ProofError:
        return False
    return True


def verifies_consistency(
    m: int, n: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    try:
        verify_consistency(m, n, proof, old_root, new_root)
    except ProofError:
        return False
    return True


def inclusion_mutants(
    lh: bytes, index: int, size: int, proof: list[bytes], r: bytes
) -> list[tuple[str, bytes, int, int, list[bytes], bytes]]:
    """Every way to spoil an inclusion proof that must be rejected.

    The probe list follows the verifier tests of the two vector sources above.
    """
    out = [
        ("size * 2", lh, index, size * 2, proof, r),
        ("size // 2", lh, index, size // 2, proof, r),
        ("wrong leaf", flip(lh), index, size, proof, r),
        ("short leaf", lh[:-1], index, size, proof, r),
        ("empty root", lh, index, size, proof, EMPTY_ROOT),
        ("some root", lh, index, size, proof, SOME_HASH),
        ("flipped root", lh, index, size, proof, flip(r)),
        ("trailing empty", lh, index, size, [*proof, b""], r),
        ("trailing root", lh, index, size, [*proof, r], r),
        ("preceding empty", lh, index, size, [b"", *proof], r),
        ("preceding root", lh, index, size, [r, *proof], r),
    ]
    out += [
        (f"index {j}", lh, j, size, proof, r) for j in {index - 1, index + 1, index ^ 2} if j >= 0
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i])
        out.append((f"flipped proof[{i}]", lh, index, size, bad, r))
        out.append((f"short proof[{i}]", lh, index, size, [*proof[:i], proof[i][:-1]], r))
    if proof:
        out.append(("removed last", lh, index, size, proof[:-1], r))
    if len(proof) > 1:
        out.append(("inserted", lh, index, size, [proof[0], SOME_HASH, *proof[1:]], r))
    return out


def consistency_mutants(
    m: int, n: int, proof: list[bytes], r1: bytes, r2: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """Every way to spoil a non-trivial consistency proof that must be rejected."""
    out = [
        ("m - 1", m - 1, n, proof, r1, r2),
        ("m + 1", m + 1, n, proof, r1, r2),
        ("m ^ 2", m ^ 2, n, proof, r1, r2),
        ("n * 2", m, n * 2, proof, r1, r2),
        ("n // 2", m, n // 2, proof, r1, r2),
        ("flipped root1", m, n, proof, flip(r1), r2),
        ("flipped root2", m, n, proof, r1, flip(r2)),
        ("swapped roots", m, n, proof, r2, r1),
        ("empty proof", m, n, [], r1, r2),
        ("trailing empty", m, n, [*proof, b""], r1, r2),
        ("trailing root1", m, n, [*proof, r1], r1, r2),
        ("trailing root2", m, n, [*proof, r2], r1, r2),
        ("preceding empty", m, n, [b"", *proof], r1, r2),
        ("preceding root1", m, n, [r1, *proof], r1, r2),
        ("preceding root2", m, n, [r2, *proof], r1, r2),
        ("preceding proof[0]", m, n, [proof[0], *proof], r1, r2),
        ("truncated", m, n, proof[:-1], r1, r2),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], 4)
        out.append((f"flipped proof[{i}]", m, n, bad, r1, r2))
    return [probe for probe in out if probe[1] >= 0]


def check_inclusion(hashes: Sequence[bytes], index: int) -> None:
    """Proof equals the model, verifies, and every mutant fails."""
    size = len(hashes)
    r = naive_mth(hashes)
    hash_at = hash_at_from_leaves(hashes)
    proof = inclusion_proof(index, size, hash_at)
    model = naive_path(index, hashes)
    assert proof == [h for h, _ in model]
    assert len(proof) == inclusion_proof_length(index, size)
    assert root_from_inclusion_proof(hashes[index], index, size, proof) == r
    verify_inclusion(hashes[index], index, size, proof, r)
    for desc, lh, i, s, p, bad_root in inclusion_mutants(hashes[index], index, size, proof, r):
        assert not verifies_inclusion(lh, i, s, p, bad_root), desc


def check_consistency(hashes: Sequence[bytes], m: int) -> None:
    n = len(hashes)
    r1, r2 = naive_mth(hashes[:m]), naive_mth(hashes)
    proof = consistency_proof(m, n, hash_at_from_leaves(hashes))
    assert proof == naive_subproof(m, hashes, True)
    assert len(proof) == consistency_proof_length(m, n)
    verify_consistency(m, n, proof, r1, r2)
    if m == n:
        assert proof == []
        return
    for desc, m2, n2, p, root1, root2 in consistency_mutants(m, n, proof, r1, r2):
        assert not verifies_consistency(m2, n2, p, root1, root2), desc


# ---------------------------------------------------------------------------
# Known vectors
# ---------------------------------------------------------------------------
def test_hash_primitives() -> None:
    assert HASH_SIZE == 32
    assert CT_ROOTS[0] == EMPTY_ROOT
    assert leaf_hash(b"") == CT_ROOTS[1]
    assert node_hash(CT_LEAVES[0], CT_LEAVES[1]) == CT_ROOTS[2]


@pytest.mark.parametrize("n", range(9))
def test_reference_roots(n: int) -> None:
    assert root(CT_LEAVES[:n]) == CT_ROOTS[n]
    assert naive_mth(CT_LEAVES[:n]) == CT_ROOTS[n]
    builder = RootBuilder()
    for h in CT_LEAVES[:n]:
        builder.add_leaf_hash(h)
    assert builder.size == n
    assert builder.root() == CT_ROOTS[n]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_reference_inclusion(index: int, size: int, path: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in path]
    assert inclusion_proof(index, size, hash_at_from_leaves(CT_LEAVES[:size])) == expected
    verify_inclusion(CT_LEAVES[index], index, size, expected, CT_ROOTS[size])
    check_inclusion(CT_LEAVES[:size], index)


@pytest.mark.parametrize(("m", "n", "proof"), CT_CONSISTENCY)
def test_reference_consistency(m: int, n: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert consistency_proof(m, n, hash_at_from_leaves(CT_LEAVES[:n])) == expected
    verify_consistency(m, n, expected, CT_ROOTS[m], CT_ROOTS[n])
    check_consistency(CT_LEAVES[:n], m)


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------
def test_inclusion_rejects_impossible_positions() -> None:
    h = CT_LEAVES[0]
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(h, index, size, [], h)
        with pytest.raises(LocalProtocolError):
            inclusion_proof(index, size, hash_at_from_leaves(CT_LEAVES[:1]))
    # A single-leaf tree: the root is the leaf hash, the proof is empty.
    verify_inclusion(h, 0, 1, [], h)
    with pytest.raises(ProofError):
        verify_inclusion(h, 0, 1, [], b"")
    with pytest.raises(ProofError):
        verify_inclusion(b"", 0, 1, [], h)
    with pytest.raises(ProofError):
        verify_inclusion(h, 0, 1, [], CT_LEAVES[1])


def test_consistency_trivial_cases() -> None:
    r1, r2 = CT_ROOTS[1], CT_ROOTS[2]
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 5, [], EMPTY_ROOT, CT_ROOTS[5])
    verify_consistency(1, 1, [], r1, r1)
    verify_consistency(7, 7, [], CT_ROOTS[7], CT_ROOTS[7])
    bad = [
        (0, 0, [], EMPTY_ROOT, r2),  # equal sizes, different roots
        (0, 5, [], r1, CT_ROOTS[5]),  # the empty tree's root is fixed
        (1, 1, [], r1, r2),
        (1, 0, [], r1, EMPTY_ROOT),  # time travel
        (2, 1, [], r2, r1),
        (1, 2, [], r1, r2),  # a real step needs a proof
        (0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),  # trivial proofs are empty
        (0, 1, [EMPTY_ROOT], EMPTY_ROOT, r1),
        (1, 1, [EMPTY_ROOT], r1, r1),
        (1, 1, [], b"x" * 31, b"x" * 31),  # hash sizes
        (-1, 1, [], EMPTY_ROOT, r1),
    ]
    for probe in bad:
        assert not verifies_consistency(*probe), probe
    with pytest.raises(LocalProtocolError):
        consistency_proof(0, 1, hash_at_from_leaves(CT_LEAVES[:1]))
    with pytest.raises(LocalProtocolError):
        consistency_proof(3, 2, hash_at_from_leaves(CT_LEAVES[:3]))
    assert consistency_proof(3, 3, hash_at_from_leaves(CT_LEAVES[:3])) == []


def test_proof_error_messages_carry_hex() -> None:
    proof = inclusion_proof(5, 8, hash_at_from_leaves(CT_LEAVES))
    with pytest.raises(ProofError) as info:
        verify_inclusion(CT_LEAVES[5], 5, 8, proof, CT_ROOTS[7])
    assert CT_ROOTS[7].hex() in str(info.value)
    assert CT_ROOTS[8].hex() in str(info.value)
    proof = consistency_proof(6, 8, hash_at_from_leaves(CT_LEAVES))
    with pytest.raises(ProofError) as info:
        verify_consistency(6, 8, proof, CT_ROOTS[6], CT_ROOTS[7])
    assert CT_ROOTS[7].hex() in str(info.value)
    assert CT_ROOTS[8].hex() in str(info.value)


def test_wrong_size_hashes_are_caller_errors() -> None:
    with pytest.raises(LocalProtocolError):
        root([CT_LEAVES[0], b"short"])
    with pytest.raises(LocalProtocolError):
        RootBuilder().add_leaf_hash(b"short")
    with pytest.raises(LocalProtocolError):
        hash_at_from_leaves([b"short"])


def test_root_builder_subtrees() -> None:
    hashes = leaves(64)
    builder = RootBuilder()
    builder.add_subtree(root(hashes[:16]), 16)
    builder.add_subtree(root(hashes[16:24]), 8)
    assert builder.root() == root(hashes[:24])
    assert builder.root() == root(hashes[:24])  # root() does not consume
    builder.add_leaf_hash(hashes[24])
    with pytest.raises(LocalProtocolError):
        builder.add_subtree(root(hashes[25:27]), 2)  # 25 is not a multiple of 2
    with pytest.raises(LocalProtocolError):
        builder.add_subtree(root(hashes[25:28]), 3)  # not a power of two
    with pytest.raises(LocalProtocolError):
        builder.add_subtree(root(hashes[25:28]), 0)
    for h in hashes[25:32]:
        builder.add_leaf_hash(h)
    builder.add_subtree(root(hashes[32:64]), 32)
    assert builder.size == 64
    assert builder.root() == root(hashes)


def test_subtree_root_and_hash_at_bounds() -> None:
    hashes = leaves(13)
    hash_at = hash_at_from_leaves(hashes)
    for start, end in [(0, 13), (8, 13), (12, 13), (4, 7), (0, 1), (8, 12)]:
        assert subtree_root(start, end, hash_at) == naive_mth(hashes[start:end])
    assert subtree_root(5, 5, hash_at) == EMPTY_ROOT
    for start, end in [(1, 3), (3, 7), (-1, 2), (5, 4)]:
        with pytest.raises(LocalProtocolError):
            subtree_root(start, end, hash_at)
    for level, index in [(0, 13), (2, 3), (4, 0), (-1, 0), (0, -1)]:
        with pytest.raises(LocalProtocolError):
            hash_at(level, index)


# ---------------------------------------------------------------------------
# Exhaustive small trees
# ---------------------------------------------------------------------------
def test_all_small_inclusion_proofs() -> None:
    for n in range(1, 40):
        hashes = leaves(n)
        for index in range(n):
            check_inclusion(hashes, index)


def test_all_small_consistency_proofs() -> None:
    for n in range(1, 40):
        hashes = leaves(n)
        for m in range(1, n + 1):
            check_consistency(hashes, m)


def test_proof_lengths_match_generators() -> None:
    hash_at = hash_at_from_leaves(leaves(300))
    for n in range(1, 300, 7):
        for i in range(0, n, 3):
            assert len(inclusion_proof(i, n, hash_at)) == inclusion_proof_length(i, n)
        for m in range(1, n + 1, 3):
            assert len(consistency_proof(m, n, hash_at)) == consistency_proof_length(m, n)


# ---------------------------------------------------------------------------
# Properties over random trees
# ---------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(0, 600), salt=st.integers(0, 2**16))
def test_roots_agree(n: int, salt: int) -> None:
    hashes = leaves(n, salt)
    builder = RootBuilder()
    for i, h in enumerate(hashes):
        builder.add_leaf_hash(h)
        if i % 97 == 0:
            assert builder.root() == root(hashes[: i + 1])
    assert builder.root() == root(hashes) == naive_mth(hashes)


@SETTINGS
@given(entries=st.lists(st.binary(max_size=40), max_size=40))
def test_roots_of_arbitrary_entries(entries: list[bytes]) -> None:
    hashes = [leaf_hash(e) for e in entries]
    assert root(hashes) == naive_mth(hashes)


@SETTINGS
@given(data=st.data(), n=st.integers(1, 600), salt=st.integers(0, 2**16))
def test_inclusion_property(data: st.DataObject, n: int, salt: int) -> None:
    hashes = leaves(n, salt)
    index = data.draw(st.integers(0, n - 1), label="index")
    check_inclusion(hashes, index)
    # Any other (index, size) verifies the same proof exactly when the sibling
    # sides along the path are the same, i.e. only by an identical path shape.
    proof = inclusion_proof(index, n, hash_at_from_leaves(hashes))
    sides = [side for _, side in naive_path(index, hashes)]
    other_index = data.draw(st.integers(0, n - 1), label="other index")
    other_size = data.draw(st.integers(other_index + 1, 2 * n + 2), label="other size")
    expect = [s for _, s in naive_path(other_index, leaves(other_size, salt))] == sides
    ok = verifies_inclusion(hashes[index], other_index, other_size, proof, naive_mth(hashes))
    assert ok == expect


@SETTINGS
@given(data=st.data(), n=st.integers(1, 600), salt=st.integers(0, 2**16))
def test_consistency_property(data: st.DataObject, n: int, salt: int) -> None:
    m = data.draw(st.integers(1, n), label="old size")
    check_consistency(leaves(n, salt), m)


@SETTINGS
@given(data=st.data(), n=st.integers(1, 600))
def test_subtree_root_property(data: st.DataObject, n: int) -> None:
    hashes = leaves(n)
    level = data.draw(st.integers(0, (n - 1).bit_length()), label="level")
    start = data.draw(st.integers(0, (n - 1) >> level), label="piece") << level
    end = data.draw(st.integers(start + 1, min(n, start + (1 << level))), label="end")
    assert subtree_root(start, end, hash_at_from_leaves(hashes)) == naive_mth(hashes[start:end])


@SETTINGS
@given(cuts=st.lists(st.integers(0, 9), max_size=8), n=st.integers(0, 600))
def test_root_builder_with_subtrees(cuts: list[int], n: int) -> None:
    """Leaves and aligned subtree roots in any mix give the same root."""
    hashes = leaves(n)
    builder = RootBuilder()
    for level in cuts:
        width = 1 << level
        pos = builder.size
        if pos % width or pos + width > n:
            continue
        builder.add_subtree(root(hashes[pos : pos + width]), width)
    for h in hashes[builder.size :]:
        builder.add_leaf_hash(h)
    assert builder.size == n
    assert builder.root() == root(hashes)
