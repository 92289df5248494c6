"""The origin's signed evaluation counts (spec §3.6): encode, decode, sign, reject."""

from __future__ import annotations

from typing import Any

import pytest

from fedpetition.core import encoding
from fedpetition.core.documents import (
    MAX_EVALUATED_NODES,
    EvaluationCounts,
    SignedDocument,
    sign_evaluations,
)
from fedpetition.core.errors import DecodeError, LocalProtocolError, SignatureError
from fedpetition.core.notes import Signer

ORIGIN = Signer("a.example", b"\x01" * 32)
HOST = Signer("b.example", b"\x02" * 32)
PETITION = "a.example/demo"
TIME = 1_772_323_200


def counts(**changes: Any) -> EvaluationCounts:
    fields: dict[str, Any] = {"petition": PETITION,
                              "counts": {"b.example": 7, "c.example:8443": 0}, "time": TIME}
    return EvaluationCounts(**{**fields, **changes})


def body(**changes: Any) -> bytes:
    value = {**counts().to_map(), **changes}
    return encoding.encode({k: v for k, v in value.items() if v is not None})


def test_round_trip_is_canonical_and_typed() -> None:
    document = counts()
    data = document.encode()
    assert EvaluationCounts.decode(data) == document
    assert encoding.decode(data) == {"counts": {"b.example": 7, "c.example:8443": 0},
                                     "petition": PETITION, "time": TIME,
                                     "type": "evaluations"}
    assert list(encoding.decode(data)) == ["counts", "petition", "time", "type"]
    assert document.served("b.example") == 7
    assert document.served("never-asked.example") == 0  # a node never served has no key


def test_empty_counts_are_valid() -> None:
    assert EvaluationCounts.decode(counts(counts={}).encode()).counts == {}


def test_signed_by_the_origin_and_verified_with_its_key() -> None:
    signed = sign_evaluations(counts(), ORIGIN)
    decoded = SignedDocument.decode(signed.encode())
    decoded.verify(ORIGIN.verifier_key())
    assert EvaluationCounts.decode(decoded.body) == counts()
    with pytest.raises(SignatureError):
        decoded.verify(HOST.verifier_key())


def test_only_the_origin_signs_them() -> None:
    with pytest.raises(LocalProtocolError, match="origin"):
        sign_evaluations(counts(), HOST)


@pytest.mark.parametrize(("data", "reason"), [
    (body(type="hosts"), "type"),
    (body(time=None), "lacks time"),
    (body(counts=None), "lacks counts"),
    (body(total=3), "unknown fields total"),
    (body(counts=[["b.example", 1]]), "must be a map"),
    (body(counts={"b.example": -1}), "b.example"),
    (body(counts={"b.example": True}), "b.example"),
    (body(counts={"b.example": "7"}), "b.example"),
    (body(counts={"b.example": 2**63}), "b.example"),
    (body(counts={"a.example": 1}), "origin"),
    (body(counts={"B.example": 1}), "node name"),
    (body(counts={"b.example/x": 1}), "node name"),
    (body(time=2**40), "time"),
    (body(time=-1), "time"),
    (body(petition="a.example"), "petition"),
    (encoding.encode(["evaluations"]), "map"),
])
def test_rejected_bodies(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        EvaluationCounts.decode(data)


def test_non_canonical_body_is_rejected() -> None:
    data = counts().encode()
    # The same map with its keys in another order: the decoder refuses non-canonical bytes.
    reordered = b"\x84" + data[1:].replace(b"\xa4type\xabevaluations", b"", 1)
    reordered = reordered[:1] + b"\xa4type\xabevaluations" + reordered[1:]
    assert reordered != data and sorted(reordered) == sorted(data)
    with pytest.raises(DecodeError):
        EvaluationCounts.decode(reordered)


def test_too_many_nodes_are_rejected() -> None:
    many = {f"n{i}.example": 1 for i in range(MAX_EVALUATED_NODES + 1)}
    with pytest.raises(LocalProtocolError, match="at most"):
        counts(counts=many)


def test_the_constructor_checks_like_the_decoder() -> None:
    with pytest.raises(LocalProtocolError):
        counts(counts={"a.example": 1})
    with pytest.raises(LocalProtocolError):
        counts(time=2**40)
    with pytest.raises(LocalProtocolError):
        counts(petition="not a petition")
