"""Nullifiers (spec §4.4): one pseudonym per petition and signer, the same on every host.

A nullifier is the output of the petition's VOPRF (RFC 9497, ristretto255-SHA512,
:mod:`.voprf`) on the petition id and the signer's normalised email address,
truncated to 32 bytes. Only the petition's origin holds the key: a host blinds
the input, the origin evaluates it without learning it and proves, against the
public key in the signed petition document, that it used that key; the host
unblinds. So the same person signing on two hosts gets the same nullifier
(counted once, §9), while nobody without the key, the logs' readers included,
can test whether a given email signed, and nullifiers of two petitions are
unlinkable (different keys and inputs).
"""

from __future__ import annotations

import hashlib
import hmac

from . import voprf
from .errors import LocalProtocolError

__all__ = ["INPUT_CONTEXT", "KEY_CONTEXT", "NULLIFIER_SIZE", "nullifier", "nullifier_input",
           "petition_key_pair"]

NULLIFIER_SIZE = 32
INPUT_CONTEXT = b"fedpetition-nullifier/v1\n"
KEY_CONTEXT = b"fedpetition-oprf-key/v1\n"


def nullifier_input(petition_id: str, email: str) -> bytes:
    """The VOPRF input: context, petition id, newline, normalised email (UTF-8).

    Neither part can hold a newline (petition ids are names, §2.2; normalised
    addresses have no control characters), so the encoding is unambiguous.
    """
    if "\n" in petition_id or "\n" in email or not email:
        raise LocalProtocolError("a nullifier input needs a petition id and an address")
    data = INPUT_CONTEXT + petition_id.encode("utf-8") + b"\n" + email.encode("utf-8")
    if len(data) > voprf.MAX_INPUT_SIZE:
        raise LocalProtocolError("the address is too long for a nullifier input")
    return data


def nullifier(output: bytes) -> bytes:
    """The nullifier of a VOPRF output: its first 32 bytes."""
    if len(output) != voprf.OUTPUT_SIZE:
        raise LocalProtocolError("not a VOPRF output")
    return output[:NULLIFIER_SIZE]


def petition_key_pair(secret: bytes, petition_id: str) -> tuple[bytes, bytes]:
    """The origin's VOPRF key pair (skS, pkS) for a petition, derived from its own secret.

    RFC 9497 §3.2.1 DeriveKeyPair with seed HMAC-SHA256(secret, KEY_CONTEXT || id)
    and info KEY_CONTEXT || id: the key is never stored, and a node's petitions
    have independent keys.
    """
    info = KEY_CONTEXT + petition_id.encode("utf-8")
    seed = hmac.new(secret, info, hashlib.sha256).digest()
    return voprf.derive_key_pair(seed, info)
