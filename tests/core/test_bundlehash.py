"""The compiled hash loop gives what the Python one gives, and refuses what it refuses."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_merkle import CT_INPUTS, CT_ROOTS  # RFC 6962 reference inputs and roots

from fedpetition.core import bundlehash, merkle, tiles
from fedpetition.core.bundlehash import BundleHashes, hash_entry_bundle, hash_entry_bundle_python
from fedpetition.core.errors import FedPetitionError

# `make venv` builds the compiled loop wherever a C compiler and OpenSSL's headers are,
# and the verifier falls back to Python elsewhere. .ci/run sets this to require it: a
# build that silently fell back would leave the verifier three times slower.
COMPILED_ENV = "FEDPETITION_TEST_COMPILED"

if os.environ.get("FEDPETITION_PURE_PYTHON"):
    pytest.skip("FEDPETITION_PURE_PYTHON is set: this process uses only the Python loop",
                allow_module_level=True)
try:
    from fedpetition.core._bundlehash import hash_bundle
except ImportError as e:
    if os.environ.get(COMPILED_ENV):
        raise ImportError(f"{COMPILED_ENV} is set, but fedpetition.core._bundlehash was not "
                          "built: install a C compiler and OpenSSL's headers, then "
                          "`rm .venv/.installed; make venv`") from e
    pytest.skip(f"the compiled hash loop was not built (no C compiler or OpenSSL headers at "
                f"install): the verifier uses the Python loop; {COMPILED_ENV}=1 requires it",
                allow_module_level=True)


def test_the_compiled_loop_is_in_use() -> None:
    assert bundlehash.COMPILED


def same(a: BundleHashes, b: BundleHashes) -> bool:
    return a.sizes.tolist() == b.sizes.tolist() and a.leaves == b.leaves and a.root == b.root


@pytest.mark.parametrize("n", range(1, 9))
def test_reference_roots(n: int) -> None:
    """RFC 6962's reference inputs (test_merkle.py gives their provenance)."""
    hashed = hash_entry_bundle(tiles.encode_entry_bundle(CT_INPUTS[:n]), n)
    assert hashed.root == CT_ROOTS[n]
    assert hashed.leaves == b"".join(merkle.leaf_hash(e) for e in CT_INPUTS[:n])
    assert hashed.sizes.tolist() == [len(e) for e in CT_INPUTS[:n]]


entry_lists = st.lists(st.binary(max_size=300), min_size=1, max_size=tiles.TILE_WIDTH)


@settings(max_examples=200, deadline=None)
@given(entry_lists)
def test_same_as_python(entries: list[bytes]) -> None:
    data = tiles.encode_entry_bundle(entries)
    hashed = hash_entry_bundle(data, len(entries))
    assert same(hashed, hash_entry_bundle_python(data, len(entries)))
    assert hashed.root == merkle.root([merkle.leaf_hash(e) for e in entries])


def test_largest_entries_and_other_buffers() -> None:
    entries = [bytes([i]) * tiles.MAX_ENTRY_SIZE for i in range(3)] + [b""]
    data = tiles.encode_entry_bundle(entries)
    expected = hash_entry_bundle_python(data, 4)
    for buffer in (data, bytearray(data), memoryview(data)):
        found = hash_bundle(buffer, 4)  # type: ignore[arg-type]
        assert found is not None
        assert (found[1], found[2]) == (expected.leaves, expected.root)


def _refusal(data: bytes, count: int) -> str:
    with pytest.raises(FedPetitionError) as python:
        hash_entry_bundle_python(data, count)
    with pytest.raises(FedPetitionError) as either:
        hash_entry_bundle(data, count)
    assert type(either.value) is type(python.value)
    assert str(either.value) == str(python.value)
    return str(python.value)


@settings(max_examples=200, deadline=None)
@given(entry_lists, st.data())
def test_malformed_bundles_are_refused_with_the_python_wording(
    entries: list[bytes], data: st.DataObject,
) -> None:
    bundle = tiles.encode_entry_bundle(entries)
    n = len(entries)
    damage = data.draw(st.sampled_from(["cut", "extra", "fewer", "more", "length"]))
    if damage == "cut":  # ends inside a length or an entry
        bundle = bundle[:data.draw(st.integers(0, len(bundle) - 1))]
    elif damage == "extra":
        bundle += data.draw(st.binary(min_size=1, max_size=3))
    elif damage == "fewer" and n > 1:
        n -= 1
    elif damage == "more":
        n += 1
    elif len(bundle) <= tiles.MAX_ENTRY_SIZE:  # the first length runs past the end
        bundle = (len(bundle) - 1).to_bytes(2, "big") + bundle[2:]
    else:
        bundle = bundle[:-1]
    if n > tiles.TILE_WIDTH:
        assert "1..256" in _refusal(bundle, n)
        return
    if damage == "fewer" and n == len(entries):
        return  # nothing to take away from a bundle of one
    assert hash_bundle(bundle, n) is None
    _refusal(bundle, n)


@pytest.mark.parametrize("count", [0, -1, tiles.TILE_WIDTH + 1])
def test_counts_outside_a_tile(count: int) -> None:
    assert "1..256" in _refusal(b"\x00\x00", count)
    with pytest.raises(ValueError, match=r"1\.\.256"):
        hash_bundle(b"\x00\x00", count)
