"""Canonical MessagePack (spec §1): one encoding per value, everything else rejected."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedpetition.core import encoding
from fedpetition.core.errors import DecodeError, LocalProtocolError

values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=40) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


@given(values)
def test_round_trip_is_exact(value: object) -> None:
    data = encoding.encode(value)
    assert encoding.decode(data) == value
    assert encoding.encode(encoding.decode(data)) == data


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), min_size=2, max_size=6))
def test_map_keys_sorted_by_utf8_bytes(value: dict[str, int]) -> None:
    decoded = encoding.decode(encoding.encode(value))
    keys = list(decoded)
    assert keys == sorted(keys, key=lambda k: k.encode())


@given(values)
def test_msgpack_default_encodings_other_than_canonical_are_rejected(value: object) -> None:
    # A float in place of an integer, or bytes sent as str, never decode.
    data = msgpack.packb([1.5, value], use_bin_type=True)
    with pytest.raises(DecodeError):
        encoding.decode(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes.fromhex("d005"), "int8 for a positive fixint"),
        (bytes.fromhex("cc05"), "uint8 for a positive fixint"),
        (bytes.fromhex("cd0001"), "uint16 for a positive fixint"),
        (bytes.fromhex("d9016a"), "str8 for a fixstr"),
        (bytes.fromhex("dc000190"), "array16 for a fixarray"),
        (bytes.fromhex("82a16201a16102"), "keys out of order"),
        (bytes.fromhex("82a16101a16102"), "duplicate keys"),
        (bytes.fromhex("810102"), "integer key"),
        (bytes.fromhex("cb3ff0000000000000"), "float64"),
        (bytes.fromhex("ca3f800000"), "float32"),
        (bytes.fromhex("d40100"), "fixext"),
        (bytes.fromhex("a1ff"), "invalid UTF-8"),
        (bytes.fromhex("0000"), "trailing bytes"),
        (bytes.fromhex("a2"), "truncated"),
        (bytes.fromhex("c1"), "reserved byte"),
        (b"\x91" * 33 + b"\x00", "nesting deeper than 32"),
    ],
)
def test_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError):
        encoding.decode(data)


def test_encoder_refuses_what_the_subset_excludes() -> None:
    for bad in (1.0, {1: 2}, 2**64, -(2**63) - 1, object()):
        with pytest.raises(LocalProtocolError):
            encoding.encode(bad)
