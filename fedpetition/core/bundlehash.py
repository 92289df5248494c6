"""An entry bundle's leaf hashes and tile root in one call (spec §6.2-6.4, RFC 9162 §2.1.1).

A verifier splits every entry bundle, hashes every entry as a leaf and every pair
of a tile as a node: two SHA-256 calls an entry. Through ``hashlib`` each call
costs about 0.35 µs on this project's machines, of which the hashing itself (a
few 64-byte blocks) is a fifth; the rest is making a hash object, a digest and a
bytes object in the interpreter. :func:`hash_entry_bundle` runs that loop in
compiled code when the optional extension ``_bundlehash`` was built (a C loop
around OpenSSL's SHA-256, about 0.3 µs an entry for the whole bundle instead of
1 µs), and in Python otherwise; both give the same results, and only the Python
code decides and words errors (docs/adr/0008-compiled-hash-loop.md).

Setting ``FEDPETITION_PURE_PYTHON=1`` in the environment makes a process use the
Python loop, to compare the two.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import merkle, tiles
from .tally import Ints

__all__ = ["COMPILED", "BundleHashes", "hash_entry_bundle", "hash_entry_bundle_python"]


class BundleHashes(NamedTuple):
    """What a verifier needs from one entry bundle of ``n`` entries."""

    sizes: Ints  # each entry's length in bytes
    leaves: bytes  # the n leaf hashes end to end: the level-0 tile the bundle must match
    root: bytes  # the Merkle tree hash of those n leaves


def hash_entry_bundle_python(data: bytes, count: int) -> BundleHashes:
    """Split ``data`` into exactly ``count`` entries (raising as
    :func:`~.tiles.decode_entry_bundle` does) and hash them."""
    entries = tiles.decode_entry_bundle(data, count)
    sha256 = hashlib.sha256
    leaves = [sha256(b"\x00" + entry).digest() for entry in entries]
    sizes = np.fromiter(map(len, entries), dtype=np.int64, count=count)
    return BundleHashes(sizes, b"".join(leaves), merkle.root(leaves))


_Compiled = Callable[[bytes, int], "tuple[bytes, bytes, bytes] | None"]


def _load() -> _Compiled | None:
    if os.environ.get("FEDPETITION_PURE_PYTHON"):
        return None
    try:
        from ._bundlehash import hash_bundle
    except ImportError:  # not built: no C compiler or no OpenSSL headers at install
        return None
    return hash_bundle


_compiled = _load()
COMPILED = _compiled is not None  # whether this process uses the compiled loop


def hash_entry_bundle(data: bytes, count: int) -> BundleHashes:
    """The sizes, leaf hashes and root of entry bundle ``data`` of ``count`` entries.

    Raises DecodeError or LocalProtocolError, worded by
    :func:`~.tiles.decode_entry_bundle`, if the bundle does not split into exactly
    ``count`` entries.
    """
    if _compiled is not None and 1 <= count <= tiles.TILE_WIDTH:
        found = _compiled(data, count)
        if found is not None:
            sizes, leaves, root = found
            return BundleHashes(np.frombuffer(sizes, dtype=np.int64), leaves, root)
    return hash_entry_bundle_python(data, count)  # the error, worded once
