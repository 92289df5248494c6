"""Nullifiers (spec §4.4): the same for a signer on every host, unlinkable across petitions."""

from __future__ import annotations

import pytest

from fedpetition.core import voprf
from fedpetition.core.errors import LocalProtocolError
from fedpetition.core.nullifiers import nullifier, nullifier_input, petition_key_pair

SECRET = bytes(range(32))
PETITION = "node-a.example/clean-air"


def via_a_host(secret: bytes, petition: str, email: str) -> bytes:
    """What a host gets: blind, the origin evaluates with a proof, the host finalizes."""
    sk, pk = petition_key_pair(secret, petition)
    data = nullifier_input(petition, email)
    blind, blinded = voprf.blind(data)
    evaluated, proof = voprf.blind_evaluate(sk, pk, [blinded])
    (output,) = voprf.finalize([data], [blind], evaluated, [blinded], proof, pk)
    return nullifier(output)


def at_the_origin(secret: bytes, petition: str, email: str) -> bytes:
    sk, _ = petition_key_pair(secret, petition)
    return nullifier(voprf.evaluate(sk, nullifier_input(petition, email)))


def test_every_host_and_the_origin_get_the_same_nullifier() -> None:
    first = via_a_host(SECRET, PETITION, "ada@example.org")
    assert len(first) == 32
    assert first == via_a_host(SECRET, PETITION, "ada@example.org")  # fresh blind each time
    assert first == at_the_origin(SECRET, PETITION, "ada@example.org")
    assert first != at_the_origin(SECRET, PETITION, "bob@example.org")


def test_nullifiers_of_two_petitions_are_unlinkable() -> None:
    """Different petitions: different keys and inputs, so nothing ties the two values."""
    other = "node-a.example/other"
    assert petition_key_pair(SECRET, PETITION) != petition_key_pair(SECRET, other)
    assert at_the_origin(SECRET, PETITION, "ada@example.org") != at_the_origin(
        SECRET, other, "ada@example.org")


def test_without_the_origins_secret_a_list_of_emails_tests_nothing() -> None:
    """A reader with the public key and a guessed address cannot recompute the value."""
    guessed_key, _ = petition_key_pair(bytes(range(1, 33)), PETITION)
    guess = voprf.evaluate(guessed_key, nullifier_input(PETITION, "ada@example.org"))
    assert nullifier(guess) != at_the_origin(SECRET, PETITION, "ada@example.org")


def test_a_host_refuses_an_evaluation_under_another_key() -> None:
    _, pk = petition_key_pair(SECRET, PETITION)
    wrong_sk, wrong_pk = petition_key_pair(bytes(32), PETITION)
    data = nullifier_input(PETITION, "ada@example.org")
    blind, blinded = voprf.blind(data)
    evaluated, proof = voprf.blind_evaluate(wrong_sk, wrong_pk, [blinded])
    with pytest.raises(voprf.VoprfProofError):
        voprf.finalize([data], [blind], evaluated, [blinded], proof, pk)


@pytest.mark.parametrize("email", ["", "a\nb@example.org"])
def test_inputs_that_could_be_ambiguous_are_refused(email: str) -> None:
    with pytest.raises(LocalProtocolError):
        nullifier_input(PETITION, email)
