"""Entries (spec §4): the fast scanner accepts exactly what the decoder accepts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedpetition.core import encoding
from fedpetition.core.entries import (
    PrivateRecord,
    SignEntry,
    WithdrawEntry,
    commitment,
    parse_entry,
    scan_entry,
)
from fedpetition.core.errors import DecodeError, FedPetitionError, LocalProtocolError

digests = st.binary(min_size=32, max_size=32)
hours = st.integers(min_value=0, max_value=2**40 // 3600 - 1).map(lambda h: h * 3600)
regions = st.none() | st.sampled_from(["FR", "FR-IDF", "DE-BY", "BE", "US-CA", "GB-ENG"])

sign_entries = st.builds(SignEntry, digests, digests, digests, hours, st.just("email"), regions)
withdraw_entries = st.builds(WithdrawEntry, digests, digests, hours)
entries = sign_entries | withdraw_entries


def _agree(data: bytes) -> None:
    """scan_entry and parse_entry give the same verdict and the same fields."""
    scanned = scan_entry(data)
    try:
        parsed = parse_entry(data)
    except DecodeError:
        assert scanned is None, data.hex()
        return
    assert scanned is not None, data.hex()
    is_sign, petition, nullifier, time, region = scanned
    assert is_sign == isinstance(parsed, SignEntry)
    assert (petition, nullifier, time) == (parsed.petition, parsed.nullifier, parsed.time)
    assert region == (parsed.region if isinstance(parsed, SignEntry) else None)


@given(entries)
def test_round_trip_and_fast_path(entry: SignEntry | WithdrawEntry) -> None:
    data = entry.encode()
    assert parse_entry(data) == entry
    _agree(data)


@given(entries, st.data())
def test_scanner_agrees_with_decoder_on_mutations(entry: SignEntry | WithdrawEntry,
                                                  data: st.DataObject) -> None:
    raw = bytearray(entry.encode())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _agree(bytes(raw))
    _agree(bytes(raw[:cut]))


@pytest.mark.parametrize(
    "value",
    [
        {"type": "sign", "petition": b"p" * 32, "nullifier": b"n" * 32, "commitment": b"c" * 32,
         "time": 3600, "method": "email", "extra": 1},
        {"type": "sign", "petition": b"p" * 32, "nullifier": b"n" * 32, "time": 3600,
         "method": "email"},
        {"type": "sign", "petition": b"p" * 32, "nullifier": b"n" * 31, "commitment": b"c" * 32,
         "time": 3600, "method": "email"},
        {"type": "sign", "petition": b"p" * 32, "nullifier": b"n" * 32, "commitment": b"c" * 32,
         "time": 3601, "method": "email"},
        {"type": "sign", "petition": b"p" * 32, "nullifier": b"n" * 32, "commitment": b"c" * 32,
         "time": 3600, "method": "sms"},
        {"type": "sign", "petition": b"p" * 32, "nullifier": b"n" * 32, "commitment": b"c" * 32,
         "time": 3600, "method": "email", "region": "france"},
        {"type": "vote", "petition": b"p" * 32, "nullifier": b"n" * 32, "time": 3600},
        {"type": "withdraw", "petition": "p" * 32, "nullifier": b"n" * 32, "time": 3600},
    ],
)
def test_invalid_entries_rejected_by_both(value: dict[str, object]) -> None:
    data = encoding.encode(value)
    with pytest.raises(DecodeError):
        parse_entry(data)
    assert scan_entry(data) is None


def test_constructor_refuses_invalid_fields() -> None:
    with pytest.raises(LocalProtocolError):
        SignEntry(b"p" * 32, b"n" * 32, b"c" * 32, 1800)
    with pytest.raises(FedPetitionError):
        SignEntry(b"p" * 32, b"n" * 32, b"c" * 32, 3600, region="fr")


def test_commitment_opens_only_with_its_salt_and_record() -> None:
    record = PrivateRecord("node-a.example/p", "ada@example.org", "Ada").encode()
    salt = bytes(range(32))
    c = commitment(salt, record)
    assert c == commitment(salt, record)
    assert c != commitment(bytes(32), record)
    other = PrivateRecord("node-a.example/p", "ada@example.org", "Ada L").encode()
    assert c != commitment(salt, other)
    assert PrivateRecord.decode(record).email == "ada@example.org"
