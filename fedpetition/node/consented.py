"""The list of signers who consented to be named to the petition's addressee.

Organisers hand the addressee the names of the signers who ticked that consent,
and nobody else's, as the EU citizens' initiative system hands national
authorities their statements of support: encrypted to a key of the recipient's.
The node never holds that private key. An organiser makes a key pair with
``fedpetition consent-key``, gives the node the public key when exporting, and
opens the file with ``fedpetition open-consented``.

The file is a first line naming the format, then a libsodium sealed box
(X25519 and XSalsa20-Poly1305, anonymous sender: PyNaCl's ``SealedBox``) of a
UTF-8 CSV with the columns ``name``, ``region``, ``signed`` (the date, UTC).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from fedpetition.node.errors import NodeError

MAGIC = b"fedpetition-consented-list/v1\n"
KEY_PREFIX = "fpc1"  # a recipient key as organisers copy it: fpc1<base64url of 32 bytes>
COLUMNS = ("name", "region", "signed")


class ConsentKeyError(NodeError):
    """A recipient key, or a file meant for one, that is not usable."""


def new_key_pair() -> tuple[str, str]:
    """A fresh (private key, public key), both as text an organiser can store and paste."""
    private = PrivateKey.generate()
    return _encode(bytes(private)), _encode(bytes(private.public_key))


def _encode(raw: bytes) -> str:
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str, what: str) -> bytes:
    value = text.strip()
    if not value.startswith(KEY_PREFIX):
        raise ConsentKeyError(f"a {what} starts with {KEY_PREFIX} (made by fedpetition "
                              "consent-key)")
    body = value[len(KEY_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ConsentKeyError(f"the {what} is not base64url") from None
    if len(raw) != 32:
        raise ConsentKeyError(f"a {what} is 32 bytes")
    return raw


def seal_list(public_key: str, rows: Iterable[tuple[str, str | None, int]]) -> bytes:
    """The file for the holder of ``public_key``: rows are (name, region, signed at)."""
    try:
        box = SealedBox(PublicKey(_decode(public_key, "public key")))
    except (CryptoError, RuntimeError, TypeError, ValueError):
        raise ConsentKeyError("this is not a usable public key") from None
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for name, region, signed in rows:
        day = datetime.fromtimestamp(signed, UTC).date().isoformat()
        writer.writerow((name, region or "", day))
    try:
        return MAGIC + box.encrypt(text.getvalue().encode())
    except (CryptoError, RuntimeError):  # a low-order point, say
        raise ConsentKeyError("this is not a usable public key") from None


def open_list(private_key: str, data: bytes) -> str:
    """The CSV inside a consented-list file, with the organiser's private key."""
    if not data.startswith(MAGIC):
        raise ConsentKeyError("not a consented-list file")
    try:
        return SealedBox(PrivateKey(_decode(private_key, "private key"))).decrypt(
            data[len(MAGIC):]).decode()
    except (CryptoError, UnicodeDecodeError):
        raise ConsentKeyError("this file was not made for this key, or it was "
                              "damaged") from None


__all__ = ["ConsentKeyError", "new_key_pair", "open_list", "seal_list"]
