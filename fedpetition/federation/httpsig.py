"""RFC 9421 HTTP Message Signatures (Ed25519 only) and RFC 9530 ``Content-Digest``.

Signs outgoing server-to-server requests and verifies incoming ones. Framework
neutral: callers pass the method, the absolute target URL, a header mapping and
the body bytes, and get back headers to add (signing) or a :class:`VerifiedRequest`
(verification).

A thin adapter over two maintained libraries, chosen because they are the
RFC implementations the Python ecosystem has: ``http-message-signatures`` (pyauth,
Apache-2.0; RFC 9421 with Ed25519, strict URL parsing, the derived components)
and ``http-sf`` (Mark Nottingham's RFC 8941/9651 structured-field parser, which
the former uses too).

From ``http-message-signatures``: the component values (``@method``,
``@target-uri``, ``@authority``, ``@scheme``, ``@request-target``, ``@path``,
``@query``, header fields, §2.1-2.2), the signature base (§2.5), the
``Signature-Input``/``Signature`` serialisation, the Ed25519 signing input and
the verification of the signature over the base it rebuilds. Its checks apply:
an ``alg`` other than ``ed25519`` and signature parameters other than
``created``, ``expires``, ``nonce``, ``alg``, ``keyid`` and ``tag`` are refused,
a URL must be absolute and percent-encoded, a method upper case.

From ``http-sf``: parsing ``Signature-Input``, ``Signature`` and
``Content-Digest`` (RFC 8941 Dictionaries), and serialising ``@signature-params``.

What this module adds, because the library has no place for it:

* **Error classes.** The library raises one ``InvalidSignature`` for everything;
  the protocol (spec/protocol.md §14.9) answers each failure with its own status
  and code. So the chosen signature is parsed and checked here first, in the
  protocol's order, and only the signature base and the Ed25519 check are left
  to the library (its failures become :class:`BadSignatureError`).
* **Label choice.** The first signature of ``Signature-Input`` unless a label is
  given; the library wants a signed ``tag`` to choose among several signatures.
* **Time window.** The library compares with the wall clock; callers here pass
  ``now``. ``created`` is required, at most ``max_skew`` s ahead and ``max_age``
  s behind; ``expires`` gets ``max_skew`` s of grace. The library's own window is
  switched off (:class:`_Verifier`).
* **Policy.** Required components (``@method``, ``@target-uri`` and
  ``content-digest`` when there is a body); component parameters (``;sf``,
  ``;key``, ``;bs``, ``;req``, ``;name``) refused; ``resolve_key`` semantics.
* **Content-Digest.** Checked against the body whenever present, signed or not;
  ``sha-256`` and ``sha-512`` members must match, other algorithms are ignored
  (RFC 9530 §2 lets a recipient ignore digests; the library's ``ContentDigest``
  refuses unknown ones and does not tell a mismatch from a malformed field).
* **Parameter order.** The library writes ``created``, ``keyid``, ``alg``,
  ``expires``, …; the protocol (§14.5) fixes ``created``, ``expires``, ``nonce``,
  ``alg``, ``keyid``, ``tag``. :func:`_reorder` respells the prepared input and
  the library's ``apply()`` rebuilds the base from it and checks they agree.

Header values are trimmed of surrounding whitespace and repeated fields combined
with ``", "`` (§2.1). The verifier needs the same ``@target-uri`` the signer used:
behind a reverse proxy, rebuild it from the public origin, not from the backend
address.

Replay protection is the caller's job: :class:`VerifiedRequest` exposes
``nonce`` and ``created``; keep a cache of (key ID, nonce) or activity IDs for at
least ``max_age + max_skew`` seconds.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    PreparedSignature,
    algorithms,
)
from http_sf.innerlist import ser_innerlist

from fedpetition.core.errors import RemoteProtocolError
from fedpetition.core.notes import Signer

__all__ = [
    "ALG_ED25519",
    "DEFAULT_LABEL",
    "BadSignatureError",
    "ComponentNotCoveredError",
    "DigestMismatchError",
    "HttpSignatureError",
    "MalformedSignatureHeaderError",
    "MissingSignatureError",
    "SignatureExpiredError",
    "SignatureFromFutureError",
    "UnknownKeyError",
    "UnsupportedAlgorithmError",
    "VerifiedRequest",
    "content_digest",
    "sign_request",
    "signature_base",
    "signature_key_id",
    "verify_content_digest",
    "verify_request",
]

DEFAULT_LABEL = "sig1"
ALG_ED25519 = algorithms.ED25519.algorithm_id  # "ed25519", RFC 9421 §3.3.6
_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
_SIGNER = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)


# --------------------------------------------------------------------------- errors


class HttpSignatureError(RemoteProtocolError):
    """Base of every failure to verify a signed request (HTTP 401 unless noted)."""

    status = 401


class MissingSignatureError(HttpSignatureError):
    """No ``Signature-Input``/``Signature`` pair (or not the wanted label)."""


class MalformedSignatureHeaderError(HttpSignatureError):
    """``Signature-Input``, ``Signature`` or ``Content-Digest`` is not well formed (400)."""

    status = 400


class UnsupportedAlgorithmError(HttpSignatureError):
    """The ``alg`` parameter names an algorithm other than ``ed25519``."""


class ComponentNotCoveredError(HttpSignatureError):
    """A component the verifier requires is not covered by the signature."""


class SignatureFromFutureError(HttpSignatureError):
    """``created`` lies further in the future than the allowed clock skew."""


class SignatureExpiredError(HttpSignatureError):
    """``expires`` has passed, or ``created`` is older than the maximum age."""


class UnknownKeyError(HttpSignatureError):
    """The key resolver does not know ``keyid`` (or returned no Ed25519 key)."""


class DigestMismatchError(HttpSignatureError):
    """``Content-Digest`` does not match the body, or names no supported algorithm (400)."""

    status = 400


class BadSignatureError(HttpSignatureError):
    """The Ed25519 signature does not verify over the reconstructed signature base."""


# --------------------------------------------------------------------------- helpers


@dataclass
class _Message:
    """A request as the library's component resolver reads it."""

    method: str
    url: str
    headers: dict[str, str]


class _Verifier(HTTPMessageVerifier):
    """The library's verifier without its wall-clock window (applied before, with ``now``)."""

    def validate_created_and_expires(self, sig_input: object, max_age: object = None) -> None:
        return None


def _fields(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names, values trimmed, repeated fields combined (RFC 9421 §2.1)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        value = value.strip(" \t")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _parse_dictionary(name: str, value: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except ValueError as e:  # http_sf.StructuredFieldError, UnicodeEncodeError
        raise MalformedSignatureHeaderError(f"{name}: {e}") from e
    return cast(dict[str, tuple[Any, dict[str, Any]]], parsed)


def _int_param(params: Mapping[str, object], name: str) -> int | None:
    value = params.get(name)
    if value is not None and type(value) is not int:
        raise MalformedSignatureHeaderError(f"parameter {name!r} must be an integer")
    return value


def _str_param(params: Mapping[str, object], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):  # an http_sf.Token is no str
        raise MalformedSignatureHeaderError(f"parameter {name!r} must be a string")
    return value


def _params(
    created: int | None,
    expires: int | None,
    nonce: str | None,
    alg: str | None,
    key_id: str | None,
    tag: str | None,
) -> dict[str, int | str]:
    """Signature parameters in the protocol's order (spec §14.5), the absent left out."""
    given = {"created": created, "expires": expires, "nonce": nonce, "alg": alg,
             "keyid": key_id, "tag": tag}
    return {name: value for name, value in given.items() if value is not None}


def _prepare(
    message: _Message,
    components: Sequence[str],
    params: dict[str, int | str],
    *,
    body: bytes | None = None,
    label: str = DEFAULT_LABEL,
) -> PreparedSignature:
    """The library's signing input, with ``params`` (in their order) as its parameters.

    Without ``body``, a ``Content-Digest`` in the message is kept as it is.
    """
    keep_digest = body is None and any(k.lower() == "content-digest" for k in message.headers)
    prepared = _SIGNER.prepare(
        message,
        key_id="",  # replaced with params below
        created=datetime.datetime.fromtimestamp(0, tz=datetime.UTC),
        include_alg=False,
        covered_component_ids=components,
        body=body,
        use_existing_digest=keep_digest,
        label=label,
    )
    return _reorder(prepared, params)


def _reorder(prepared: PreparedSignature, params: dict[str, int | str]) -> PreparedSignature:
    """``prepared`` with other signature parameters: the last base line is ``@signature-params``.

    The covered components (the library may have added ``content-digest``) are kept.
    """
    covered = _parse_dictionary("prepared", f"p={prepared.signature_params}")["p"][0]
    signature_params = ser_innerlist((covered, dict(params)))
    lines = prepared.signature_base.split(b"\n")
    lines[-1] = b'"@signature-params": ' + signature_params.encode("ascii")
    return PreparedSignature(
        b"\n".join(lines), signature_params, prepared.label, prepared.algorithm_id
    )


# --------------------------------------------------------------------------- RFC 9530


def content_digest(body: bytes, algorithms: Sequence[str] = ("sha-256",)) -> str:
    """The ``Content-Digest`` value for ``body`` (RFC 9530 §2), e.g. ``sha-256=:…:``."""
    for alg in algorithms:
        if alg not in _DIGESTS:
            raise ValueError(f"unsupported digest algorithm {alg!r}")
    return http_sf.ser({alg: _DIGESTS[alg](body).digest() for alg in algorithms})


def verify_content_digest(header: str, body: bytes) -> None:
    """Check a ``Content-Digest`` value against ``body``.

    Every member with a supported algorithm (sha-256, sha-512) must match, and there
    must be at least one; members with other algorithms are ignored (RFC 9530 §2).
    """
    checked = 0
    for alg, (value, _) in _parse_dictionary("Content-Digest", header).items():
        if alg not in _DIGESTS:
            continue
        if not isinstance(value, bytes):
            raise MalformedSignatureHeaderError(f"Content-Digest: {alg} is not a byte sequence")
        if not hmac.compare_digest(value, _DIGESTS[alg](body).digest()):
            raise DigestMismatchError(f"Content-Digest {alg} does not match the body")
        checked += 1
    if checked == 0:
        raise DigestMismatchError("Content-Digest names no supported algorithm")


# --------------------------------------------------------------------------- RFC 9421


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """What a valid signature vouches for."""

    key_id: str
    created: int
    expires: int | None
    nonce: str | None
    covered: tuple[str, ...]
    label: str
    tag: str | None = None


def signature_base(
    method: str,
    url: str,
    headers: Mapping[str, str],
    components: Sequence[str],
    *,
    created: int | None = None,
    expires: int | None = None,
    nonce: str | None = None,
    alg: str | None = None,
    key_id: str | None = None,
    tag: str | None = None,
) -> bytes:
    """The RFC 9421 §2.5 signature base (parameters in this order, when given)."""
    params = _params(created, expires, nonce, alg, key_id, tag)
    try:
        return _prepare(_Message(method, url, dict(headers)), components, params).signature_base
    except (HTTPMessageSignaturesException, ValueError) as e:
        raise BadSignatureError(f"no signature base: {e}") from e


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    key_id: str,
    private_key: Ed25519PrivateKey | Signer,
    created: int,
    expires: int | None = None,
    nonce: str | None = None,
    tag: str | None = None,
    label: str = DEFAULT_LABEL,
    components: Sequence[str] | None = None,
    include_alg: bool = True,
) -> dict[str, str]:
    """Sign a request; return the headers to add to it.

    Covers ``@method``, ``@target-uri``, ``content-digest`` (when ``body`` is not
    empty; the digest header is computed and returned too) and ``date`` when
    ``headers`` has one. ``components`` replaces that list (used to reproduce the
    RFC examples, or to cover more fields such as ``content-type``), but a body's
    ``content-digest`` is always covered. Raises ``ValueError`` if the request
    cannot be signed (a covered field missing, a bad label or URL).
    """
    if components is None:
        components = ["@method", "@target-uri"]
        if body:
            components.append("content-digest")
        if any(name.lower() == "date" for name in headers):
            components.append("date")
    # A body gets a fresh digest (the library adds it), replacing any given one.
    message = _Message(method, url, {
        k: v for k, v in headers.items() if not (body and k.lower() == "content-digest")
    })
    params = _params(
        created, expires, nonce, ALG_ED25519 if include_alg else None, key_id, tag
    )
    try:
        prepared = _prepare(message, components, params, body=body or None, label=label)
        _SIGNER.apply(message, prepared, private_key.sign(prepared.signature_base))
    except (HTTPMessageSignaturesException, ValueError) as e:
        raise ValueError(f"cannot sign: {e}") from e
    names = ("Content-Digest", "Signature-Input", "Signature") if body else (
        "Signature-Input", "Signature")
    return {name: message.headers[name] for name in names}


def _signature_inputs(
    fields: Mapping[str, str], label: str | None
) -> tuple[str, dict[str, tuple[Any, dict[str, Any]]]]:
    """The parsed ``Signature-Input`` and the label to verify (by default the first)."""
    if "signature-input" not in fields:
        raise MissingSignatureError("no Signature-Input header field")
    inputs = _parse_dictionary("Signature-Input", fields["signature-input"])
    if label is None:
        if not inputs:
            raise MissingSignatureError("empty Signature-Input")
        label = next(iter(inputs))
    return label, inputs


def _inner_list(member: tuple[Any, dict[str, Any]] | None) -> tuple[list[Any], dict[str, Any]]:
    if member is None or not isinstance(member[0], list):
        raise MalformedSignatureHeaderError("Signature-Input member is not an inner list")
    return member[0], member[1]


def signature_key_id(headers: Mapping[str, str], label: str | None = None) -> str:
    """The ``keyid`` of a request's signature (the first one unless ``label``), unverified.

    Lets a server find (fetch) the key before calling :func:`verify_request`.
    """
    label, inputs = _signature_inputs(_fields(headers), label)
    _, params = _inner_list(inputs.get(label))
    key_id = _str_param(params, "keyid")
    if key_id is None:
        raise MalformedSignatureHeaderError("signature has no keyid parameter")
    return key_id


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    resolve_key: Callable[[str], bytes],
    now: int,
    max_skew: int = 300,
    max_age: int = 3600,
    required_components: Sequence[str] | None = None,
    label: str | None = None,
) -> VerifiedRequest:
    """Verify one RFC 9421 signature on a request; raise an :class:`HttpSignatureError`.

    ``label`` picks the signature; by default the first one in ``Signature-Input``.
    ``required_components`` defaults to ``@method``, ``@target-uri`` and, when the
    body is not empty, ``content-digest``. A ``Content-Digest`` header, when present,
    is always checked against the body. The signature must carry ``created`` and
    ``keyid``; ``created`` may be at most ``max_skew`` seconds ahead of ``now`` and
    at most ``max_age`` seconds behind it; ``expires`` (if any) gets ``max_skew``
    seconds of grace. ``resolve_key`` maps a key ID to a raw 32-byte Ed25519 public
    key and may raise anything for an unknown key.
    """
    fields = _fields(headers)
    if "signature-input" not in fields or "signature" not in fields:
        raise MissingSignatureError("no Signature-Input and Signature header fields")
    label, inputs = _signature_inputs(fields, label)
    signatures = _parse_dictionary("Signature", fields["signature"])
    if label not in inputs or label not in signatures:
        raise MissingSignatureError(f"no signature labelled {label!r}")
    items, params = _inner_list(inputs[label])
    covered: list[str] = []
    for value, item_params in items:
        if not isinstance(value, str):
            raise MalformedSignatureHeaderError("component identifiers must be strings")
        if item_params:
            raise MalformedSignatureHeaderError("component parameters are not supported")
        covered.append(value)
    if not isinstance(signatures[label][0], bytes):
        raise MalformedSignatureHeaderError("Signature member is not a byte sequence")

    created = _int_param(params, "created")
    expires = _int_param(params, "expires")
    key_id = _str_param(params, "keyid")
    alg = _str_param(params, "alg")
    nonce = _str_param(params, "nonce")
    tag = _str_param(params, "tag")
    if created is None:
        raise MalformedSignatureHeaderError("signature has no created parameter")
    if key_id is None:
        raise MalformedSignatureHeaderError("signature has no keyid parameter")
    if alg is not None and alg != ALG_ED25519:
        raise UnsupportedAlgorithmError(f"unsupported signature algorithm {alg!r}")
    unknown = sorted(set(params) - HTTPMessageVerifier.signature_metadata_parameters)
    if unknown:
        raise MalformedSignatureHeaderError(f"unsupported signature parameters {unknown}")

    if required_components is None:
        required_components = ["@method", "@target-uri"]
        if body:
            required_components.append("content-digest")
    for name in required_components:
        if name not in covered:
            raise ComponentNotCoveredError(f"signature does not cover {name!r}")

    if created > now + max_skew:
        raise SignatureFromFutureError(f"created {created} is in the future (now {now})")
    if now - created > max_age:
        raise SignatureExpiredError(f"created {created} is older than {max_age}s (now {now})")
    if expires is not None and now > expires + max_skew:
        raise SignatureExpiredError(f"signature expired at {expires} (now {now})")

    if "content-digest" in fields:
        verify_content_digest(fields["content-digest"], body or b"")

    try:
        raw_key = resolve_key(key_id)
        if not isinstance(raw_key, bytes) or len(raw_key) != 32:
            raise ValueError("not a 32-byte Ed25519 public key")
        public_key = Ed25519PublicKey.from_public_bytes(raw_key)
    except Exception as e:
        raise UnknownKeyError(f"cannot resolve key {key_id!r}: {e}") from e

    # The library sees this signature alone, so it needs no tag to pick it.
    fields["signature-input"] = http_sf.ser({label: inputs[label]})
    fields["signature"] = http_sf.ser({label: signatures[label]})
    verifier = _Verifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={key_id: public_key}, private_keys={}),
    )
    try:
        verifier.verify(_Message(method, url, fields), max_age=None)
    except HTTPMessageSignaturesException as e:
        raise BadSignatureError(f"signature {label!r} by {key_id!r} does not verify: {e}") from e
    return VerifiedRequest(
        key_id=key_id,
        created=created,
        expires=expires,
        nonce=nonce,
        covered=tuple(covered),
        label=label,
        tag=tag,
    )
