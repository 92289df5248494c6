"""RFC 9162 (= RFC 6962) Merkle Tree hashing with SHA-256.

Every log in the protocol is a Merkle Tree as defined in RFC 9162 §2.1, so that
any Certificate Transparency or tlog-tiles tooling can check our roots and proofs.

Proof *generation* reads tree hashes through a ``HashAt`` callable,
``hash_at(level, index)``, returning the hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``. A node backs it with its stored
tiles (``tiles.TileHashReader``); tests back it with a list of leaf hashes
(``hash_at_from_leaves``). Proof *verification* needs no tree at all.

Errors: ``ProofError`` when a proof, a root or a hash given for verification does
not hold (wrong length included); ``LocalProtocolError`` when a caller asks to build
something that does not exist (an index outside the tree, a misaligned subtree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .errors import LocalProtocolError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashAt",
    "RootBuilder",
    "consistency_proof",
    "consistency_proof_length",
    "hash_at_from_leaves",
    "inclusion_proof",
    "inclusion_proof_length",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
# RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"  # RFC 9162 §2.1.1
_NODE_PREFIX = b"\x01"  # RFC 9162 §2.1.1
_sha256 = hashlib.sha256

HashAt = Callable[[int, int], bytes]
"""``hash_at(level, index)``: hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``."""


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0)); the prefix keeps leaves and nodes apart."""
    return _sha256(_LEAF_PREFIX + entry).digest()  # RFC 9162 §2.1.1


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), an interior node (RFC 9162 §2.1.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    """Refuse hashes of the wrong size before they silently produce a wrong root."""
    if set(map(len, leaf_hashes)) <= {HASH_SIZE}:  # in C: the verifier's hot path
        return
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise LocalProtocolError(f"hash {i} is {len(h)} bytes, not {HASH_SIZE}")


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already hashed leaves (RFC 9162 §2.1.1), computed level by level.

    Pairing neighbours and promoting an unpaired last node unchanged gives the same
    left-balanced tree as the RFC's split at the largest power of two below n.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT  # RFC 9162 §2.1.1
    _check_leaf_hashes(leaf_hashes)
    level = list(leaf_hashes)
    sha = _sha256
    prefix = _NODE_PREFIX
    while n > 1:
        nxt = [sha(prefix + level[i] + level[i + 1]).digest() for i in range(0, n - 1, 2)]
        if n & 1:
            nxt.append(level[-1])
        level = nxt
        n = len(level)
    return level[0]


class RootBuilder:
    """Streaming MTH: keeps one hash per set bit of the size, never the leaves.

    ``_stack[i]`` is the root of a perfect subtree; sizes decrease along the stack
    and are exactly the powers of two in the binary form of ``size``.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves added so far."""
        return self._size

    def add_leaf_hash(self, h: bytes) -> None:
        """Append one leaf hash."""
        self._push(h, 0)

    def add_subtree(self, h: bytes, size: int) -> None:
        """Append the root of a perfect subtree of ``size`` leaves (a power of two).

        Only valid when the current size is a multiple of ``size``: otherwise the
        subtree would not be a node of the resulting tree (RFC 9162 §2.1.1).
        """
        if size <= 0 or size & (size - 1):
            raise LocalProtocolError(f"subtree size {size} is not a power of two")
        if self._size % size:
            raise LocalProtocolError(
                f"cannot append a subtree of {size} leaves at size {self._size}"
            )
        self._push(h, size.bit_length() - 1)

    def _push(self, h: bytes, level: int) -> None:
        if len(h) != HASH_SIZE:
            raise LocalProtocolError(f"hash is {len(h)} bytes, not {HASH_SIZE}")
        size = self._size
        stack = self._stack
        lvl = level
        # Like a binary counter: each carry merges two equal perfect subtrees.
        while (size >> lvl) & 1:
            h = _sha256(_NODE_PREFIX + stack.pop() + h).digest()
            lvl += 1
        stack.append(h)
        self._size = size + (1 << level)

    def copy(self) -> RootBuilder:
        """An independent builder at the same size (to try leaves without committing)."""
        twin = RootBuilder()
        twin._size = self._size
        twin._stack = list(self._stack)
        return twin

    def root(self) -> bytes:
        """MTH of the leaves so far: right fold of the stack, smallest subtree innermost."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        r = stack[-1]
        for h in reversed(stack[:-1]):
            r = _sha256(_NODE_PREFIX + h + r).digest()
        return r


def hash_at_from_leaves(leaf_hashes: Sequence[bytes]) -> HashAt:
    """A ``HashAt`` over an in-memory list of leaf hashes (for tests and small trees).

    All perfect subtree hashes are computed up front, O(n) memory.
    """
    _check_leaf_hashes(leaf_hashes)
    levels: list[list[bytes]] = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def hash_at(level: int, index: int) -> bytes:
        if level < 0 or index < 0 or level >= len(levels) or index >= len(levels[level]):
            raise LocalProtocolError(
                f"no complete subtree at level {level}, index {index} "
                f"in a tree of {len(leaf_hashes)} leaves"
            )
        return levels[level][index]

    return hash_at


def subtree_root(start: int, end: int, hash_at: HashAt) -> bytes:
    """MTH(D[start:end]) from perfect subtree hashes (RFC 9162 §2.1.1).

    The range is split into perfect pieces, largest first, as the RFC's recursion
    does; each piece must be aligned so that ``hash_at`` can supply it. An empty
    range gives ``EMPTY_ROOT``.
    """
    if start < 0 or end < start:
        raise LocalProtocolError(f"invalid leaf range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    pieces: list[bytes] = []
    pos = start
    remaining = end - start
    while remaining:
        level = remaining.bit_length() - 1
        width = 1 << level
        if pos & (width - 1):
            raise LocalProtocolError(
                f"leaf range [{start}, {end}) is not a subtree: piece at {pos} "
                f"of {width} leaves is not aligned"
            )
        pieces.append(hash_at(level, pos >> level))
        pos += width
        remaining -= width
    r = pieces[-1]
    for h in reversed(pieces[:-1]):
        r = node_hash(h, r)
    return r


def inclusion_proof_length(index: int, size: int) -> int:
    """Number of hashes in PATH(index, D[size]) (RFC 9162 §2.1.3.1), 0 <= index < size."""
    # Below the level where index and size - 1 diverge, every level has a sibling;
    # above it, only levels where the index path goes right have one.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """Number of hashes in PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1)."""
    if old_size == new_size:
        return 0
    # Mirrors the recursion of SUBPROOF without hashing.
    m, n, complete, count = old_size, new_size, True, 0
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            n = k
        else:
            m -= k
            n -= k
            complete = False
        count += 1
    return count + (0 if complete else 1)


def inclusion_proof(index: int, size: int, hash_at: HashAt) -> list[bytes]:
    """PATH(index, D[size]), deepest sibling first (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise LocalProtocolError(f"leaf index {index} is not in a tree of size {size}")
    siblings: list[bytes] = []
    lo, n, m = 0, size, index
    while n > 1:
        k = 1 << ((n - 1).bit_length() - 1)  # largest power of two smaller than n
        if m < k:
            siblings.append(subtree_root(lo + k, lo + n, hash_at))
            n = k
        else:
            siblings.append(subtree_root(lo, lo + k, hash_at))
            lo += k
            m -= k
            n -= k
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, new_size: int, hash_at: HashAt) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        raise LocalProtocolError(f"no consistency proof from size {old_size} to size {new_size}")
    siblings: list[bytes] = []
    lo, m, n, complete = 0, old_size, new_size, True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)  # largest power of two smaller than n
        if m <= k:
            siblings.append(subtree_root(lo + k, lo + n, hash_at))
            n = k
        else:
            siblings.append(subtree_root(lo, lo + k, hash_at))
            lo += k
            m -= k
            n -= k
            complete = False
    # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree is not a node of the
    # proof's path to the new root, so the verifier needs it explicitly.
    proof = [] if complete else [subtree_root(lo, lo + n, hash_at)]
    siblings.reverse()
    return proof + siblings


def _check_hash(what: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} is {len(h)} bytes, expected {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` yields for ``leaf_hash`` at ``index`` (RFC 9162 §2.1.3.2).

    Raises ``ProofError`` if the proof cannot be one for this index and size.
    """
    if not 0 <= index < size:  # RFC 9162 §2.1.3.2 step 1
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof for index {index} in size {size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof hash {i}", p)
    fn, sn = index, size - 1  # RFC 9162 §2.1.3.2 step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``.

    RFC 9162 §2.1.3.2; raises ``ProofError``.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:  # RFC 9162 §2.1.3.2 step 5
        raise ProofError(
            f"inclusion proof for index {index} in size {size} gives root "
            f"{computed.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 §2.1.4.2; raises ``ProofError``. Equal sizes need an empty proof and
    equal roots. Size 0 is a prefix of every tree: the proof must be empty and
    ``old_root`` must be ``EMPTY_ROOT`` (RFC 9162 §2.1.1).
    """
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree size {new_size} cannot extend tree size {old_size}")
    for i, p in enumerate(proof):
        _check_hash(f"consistency proof hash {i}", p)
    expected = consistency_proof_length(old_size, new_size) if old_size else 0
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} has {len(proof)} "
            f"hashes, expected {expected}"
        )
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError(f"root of the empty tree is {old_root.hex()}, expected {EMPTY_ROOT.hex()}")
    if old_size == new_size:
        if old_root != new_root:
            raise ProofError(
                f"consistency at equal size {old_size}: new root {new_root.hex()}, "
                f"expected the old root {old_root.hex()}"
            )
        return
    if old_size == 0:
        return
    # RFC 9162 §2.1.4.2 step 2: a power-of-two old tree is itself a node of the
    # new tree, so the proof omits it.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != old_root:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} gives old root "
            f"{fr.hex()}, expected {old_root.hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} gives new root "
            f"{sr.hex()}, expected {new_root.hex()}"
        )
