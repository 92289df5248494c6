"""Tests for fedpetition.core.addresses: the canonical mailbox of spec §4.6."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedpetition.core.addresses import (
    GMAIL_DOMAINS,
    SUBADDRESS_DOMAINS,
    canonical_mailbox,
)
from fedpetition.core.errors import LocalProtocolError
from fedpetition.node.errors import AddressError
from fedpetition.node.mail import normalise_email

# (normalised address, canonical mailbox): every rule of §4.6, one at a time.
CANONICAL = [
    # no rule applies: the address is its own canonical mailbox
    ("alice@example.org", "alice@example.org"),
    ("a.b+c@example.org", "a.b+c@example.org"),
    # Gmail: dots dropped, +tag dropped, googlemail.com is gmail.com
    ("a.b@gmail.com", "ab@gmail.com"),
    ("ab+petitions@gmail.com", "ab@gmail.com"),
    ("a.b+x.y@gmail.com", "ab@gmail.com"),
    ("a.b+c+d@googlemail.com", "ab@gmail.com"),
    ("ab@googlemail.com", "ab@gmail.com"),
    ("ab+@gmail.com", "ab@gmail.com"),
    ("a.+b@gmail.com", "a@gmail.com"),
    ("+x.y@gmail.com", "+x.y@gmail.com"),  # names no Gmail account: kept
    ("+x@googlemail.com", "+x@gmail.com"),
    # subaddressing at the listed providers: +tag dropped, dots kept
    ("alice+petitions@fastmail.com", "alice@fastmail.com"),
    ("a.lice+x@fastmail.fm", "a.lice@fastmail.fm"),
    ("alice+a+b@proton.me", "alice@proton.me"),
    ("alice+news@protonmail.com", "alice@protonmail.com"),
    ("alice+@proton.me", "alice@proton.me"),
    ("+alice@proton.me", "+alice@proton.me"),  # nothing before the tag: kept
    ("a.+b@fastmail.com", "a.+b@fastmail.com"),  # "a." is no mailbox name: kept
    # case and Unicode (normalise_email has done this already; idempotent here)
    ("ÉLODIE@example.org", "élodie@example.org"),
    ("e\u0301lodie@example.org", "\u00e9lodie@example.org"),
    ("\u0130stanbul@example.org", "i\u0307stanbul@example.org"),
    ("j.\u00e9r\u00f4me+x@gmail.com", "j\u00e9r\u00f4me@gmail.com"),
]

# Pairs that §4.6 deliberately keeps apart: each would merge two people somewhere.
NOT_MERGED = [
    ("a.b@example.org", "ab@example.org"),  # dots matter outside Gmail
    ("ab+x@example.org", "ab@example.org"),  # "+" is a literal at many hosts
    ("ab-x@yahoo.com", "ab@yahoo.com"),  # Yahoo's "-" keyword addresses
    ("ab+x@yahoo.com", "ab@yahoo.com"),
    ("ab+x@outlook.com", "ab@outlook.com"),  # not confirmed by the provider's page
    ("ab+x@icloud.com", "ab@icloud.com"),
    ("a.b@fastmail.com", "ab@fastmail.com"),  # dots matter at Fastmail and Proton
    ("a.b@proton.me", "ab@proton.me"),
    ("ab+x@pm.me", "ab@pm.me"),  # other Proton domains are not listed
    ("ab@proton.me", "ab@protonmail.com"),  # two Proton domains, two addresses
    ("ab@gmail.com", "ab@gmail.co"),
    ("a.b@mail.gmail.com", "ab@mail.gmail.com"),  # exact domains only
    ("ab+x@sub.fastmail.com", "ab@sub.fastmail.com"),
    ("a.b@workspace.example", "ab@workspace.example"),  # Google Workspace: dots matter
]


@pytest.mark.parametrize(("address", "expected"), CANONICAL)
def test_canonical_mailbox(address: str, expected: str) -> None:
    assert canonical_mailbox(address) == expected
    assert canonical_mailbox(expected) == expected


@pytest.mark.parametrize(("address", "expected"), CANONICAL)
def test_canonical_of_normalised_input(address: str, expected: str) -> None:
    """The node's path: what the signer typed, normalise_email, then §4.6."""
    typed = address.upper() if address.isascii() else address
    assert canonical_mailbox(normalise_email(f"  {typed} ")) == expected


@pytest.mark.parametrize(("first", "second"), NOT_MERGED)
def test_distinct_mailboxes_stay_distinct(first: str, second: str) -> None:
    assert canonical_mailbox(first) == first
    assert canonical_mailbox(second) == second
    assert canonical_mailbox(first) != canonical_mailbox(second)


def test_aliases_of_one_gmail_mailbox_agree() -> None:
    aliases = ["John.Smith@gmail.com", "johnsmith+petition@googlemail.com",
               "j.o.h.n.s.m.i.t.h@GMAIL.com", "JohnSmith+a.b@googlemail.com"]
    assert {canonical_mailbox(normalise_email(a)) for a in aliases} == {"johnsmith@gmail.com"}


def test_lists_are_small_exact_domains() -> None:
    assert {"gmail.com", "googlemail.com"} == GMAIL_DOMAINS
    assert {"fastmail.com", "fastmail.fm", "proton.me", "protonmail.com"} == SUBADDRESS_DOMAINS
    assert not GMAIL_DOMAINS & SUBADDRESS_DOMAINS
    assert all(d == d.lower() and d.isascii() for d in GMAIL_DOMAINS | SUBADDRESS_DOMAINS)


@pytest.mark.parametrize("bad", ["", "alice", "@example.org", "alice@", "alice@exämple.org"])
def test_refuses_what_normalise_email_never_returns(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="normalise_email"):
        canonical_mailbox(bad)


def test_refuses_non_text() -> None:
    with pytest.raises(LocalProtocolError):
        canonical_mailbox(b"alice@example.org")  # type: ignore[arg-type]


_LOCAL_CHARS = st.sampled_from([*"abcXYZ019.+-_éÉ", "e\u0301", "\u0130", "ß", "ǅ"])
_DOMAINS = st.sampled_from([*sorted(GMAIL_DOMAINS | SUBADDRESS_DOMAINS),
                            "example.org", "yahoo.com", "xn--bcher-kva.example"])


@given(st.lists(_LOCAL_CHARS, min_size=1, max_size=20).map("".join), _DOMAINS)
def test_canonical_mailbox_is_a_normalised_fixed_point(local: str, domain: str) -> None:
    """For every address the node accepts, the canonical mailbox is a normalised
    address (so DataKey.email_index accepts it) and canonical_mailbox of it is itself."""
    try:
        address = normalise_email(f"{local}@{domain}")
    except AddressError:
        return
    canonical = canonical_mailbox(address)
    assert normalise_email(canonical) == canonical
    assert canonical_mailbox(canonical) == canonical
    assert len(canonical.encode()) <= len(address.encode())
    assert unicodedata.is_normalized("NFC", canonical)
