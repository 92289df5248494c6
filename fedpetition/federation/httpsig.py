"""RFC 9421 HTTP Message Signatures (Ed25519 only) and RFC 9530 ``Content-Digest``.

Signs outgoing server-to-server requests and verifies incoming ones. Framework
neutral: callers pass the method, the absolute target URL, a header mapping and
the body bytes, and get back headers to add (signing) or a :class:`VerifiedRequest`
(verification).

Scope, on purpose a subset of RFC 9421:

* algorithm ``ed25519`` only (§3.3.6); a ``alg`` parameter naming anything else
  is refused, an absent ``alg`` means Ed25519 (the key decides);
* derived components ``@method``, ``@target-uri``, ``@authority``, ``@scheme``,
  ``@request-target``, ``@path`` and ``@query`` (§2.2), plus plain header fields;
  component parameters (``;sf``, ``;key``, ``;bs``, ``;req``, ``;name``) are refused;
* signature parameters ``created``, ``expires``, ``nonce``, ``alg``, ``keyid`` and
  ``tag`` (§2.3); unknown parameters are kept in the signature base, as §2.3 says.

Header values are taken as given, trimmed of surrounding whitespace (§2.1). A
field sent several times must be passed combined with ``", "`` (aiohttp's
``CIMultiDict`` does not do that by itself). The verifier needs the same
``@target-uri`` the signer used: behind a reverse proxy, rebuild it from the
public origin, not from the backend address.

Replay protection is the caller's job: :class:`VerifiedRequest` exposes
``nonce`` and ``created``; keep a cache of (key ID, nonce) or activity IDs for at
least ``max_age + max_skew`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from fedpetition.core.errors import RemoteProtocolError
from fedpetition.core.notes import Signer

__all__ = [
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
ALG_ED25519 = "ed25519"
_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda b: hashlib.sha256(b).digest(),
    "sha-512": lambda b: hashlib.sha512(b).digest(),
}
_DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


# --------------------------------------------------------------------------- RFC 8941


class _Token(str):
    """An RFC 8941 token (serialised bare, unlike a string)."""

    __slots__ = ()


_Bare = int | Decimal | str | bytes | bool
_Params = list[tuple[str, _Bare]]
_Item = tuple[_Bare, _Params]
_InnerList = tuple[list[_Item], _Params]

_KEY_START = re.compile(r"[a-z*]")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_B64 = re.compile(r"[A-Za-z0-9+/=]*")


class _SFError(ValueError):
    pass


class _SFParser:
    """Just enough RFC 8941 §4.2 to parse Dictionaries of Items and Inner Lists."""

    def __init__(self, text: str) -> None:
        if not text.isascii():
            raise _SFError("non-ASCII structured field")
        self.s = text.strip(" ")
        self.i = 0

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def dictionary(self) -> dict[str, _Item | _InnerList]:
        out: dict[str, _Item | _InnerList] = {}
        while self.i < len(self.s):
            key = self._key()
            member: _Item | _InnerList
            if self._peek() == "=":
                self.i += 1
                member = self._inner_list() if self._peek() == "(" else self._item()
            else:
                member = (True, self._params())
            out[key] = member
            self._skip(" \t")
            if self.i >= len(self.s):
                return out
            if self._peek() != ",":
                raise _SFError(f"expected ',' at {self.i}")
            self.i += 1
            self._skip(" \t")
            if self.i >= len(self.s):
                raise _SFError("trailing comma")
        return out

    def _inner_list(self) -> _InnerList:
        self.i += 1  # "("
        items: list[_Item] = []
        while True:
            self._skip(" ")
            if self._peek() == ")":
                self.i += 1
                return items, self._params()
            if self.i >= len(self.s):
                raise _SFError("unterminated inner list")
            items.append(self._item())
            if self._peek() not in (" ", ")"):
                raise _SFError(f"bad inner list at {self.i}")

    def _item(self) -> _Item:
        value = self._bare()
        return value, self._params()

    def _params(self) -> _Params:
        params: dict[str, _Bare] = {}
        while self._peek() == ";":
            self.i += 1
            self._skip(" ")
            key = self._key()
            value: _Bare = True
            if self._peek() == "=":
                self.i += 1
                value = self._bare()
            params[key] = value
        return list(params.items())

    def _key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if m is None:
            raise _SFError(f"expected a key at {self.i}")
        self.i = m.end()
        return m.group()

    def _bare(self) -> _Bare:
        c = self._peek()
        if c == "-" or c.isdigit():
            m = _NUMBER.match(self.s, self.i)
            if m is None:
                raise _SFError("bad number")
            self.i = m.end()
            text = m.group()
            if m.group(1) is None:
                if len(text.lstrip("-")) > 15:
                    raise _SFError("integer too long")
                return int(text)
            whole, frac = text.lstrip("-").split(".")
            if len(whole) > 12 or len(frac) > 3:
                raise _SFError("decimal too long")
            return Decimal(text)
        if c == '"':
            return self._string()
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise _SFError("unterminated byte sequence")
            chunk = self.s[self.i + 1 : end]
            self.i = end + 1
            if _B64.fullmatch(chunk) is None:
                raise _SFError("bad base64")
            try:
                return base64.b64decode(chunk, validate=True)
            except binascii.Error as e:
                raise _SFError("bad base64") from e
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise _SFError("bad boolean")
            self.i += 2
            return flag == "1"
        m = _TOKEN.match(self.s, self.i)
        if m is None:
            raise _SFError(f"unexpected character at {self.i}")
        self.i = m.end()
        return _Token(m.group())

    def _string(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.s[self.i : self.i + 1]
                if nxt not in ('"', "\\"):
                    raise _SFError("bad escape")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not " " <= c <= "~":
                raise _SFError("bad string character")
            else:
                out.append(c)
        raise _SFError("unterminated string")


def _ser_bare(value: _Bare) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) >= 10**15:
            raise ValueError("integer out of range")
        return str(value)
    if isinstance(value, Decimal):
        text = format(value.quantize(Decimal("0.001")).normalize(), "f")
        return text if "." in text else text + ".0"
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, _Token):
        return str(value)
    if not all(" " <= c <= "~" for c in value):
        raise ValueError("string has characters RFC 8941 cannot carry")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ser_params(params: _Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_ser_bare(v)}" for k, v in params)


def _ser_inner_list(items: Sequence[str], params: _Params) -> str:
    return "(" + " ".join(_ser_bare(c) for c in items) + ")" + _ser_params(params)


# --------------------------------------------------------------------------- RFC 9530


def content_digest(body: bytes, algorithms: Sequence[str] = ("sha-256",)) -> str:
    """The ``Content-Digest`` value for ``body`` (RFC 9530 §2), e.g. ``sha-256=:…:``."""
    parts = []
    for alg in algorithms:
        if alg not in _DIGESTS:
            raise ValueError(f"unsupported digest algorithm {alg!r}")
        parts.append(f"{alg}={_ser_bare(_DIGESTS[alg](body))}")
    return ", ".join(parts)


def verify_content_digest(header: str, body: bytes) -> None:
    """Check a ``Content-Digest`` value against ``body``.

    Every member with a supported algorithm (sha-256, sha-512) must match, and there
    must be at least one; members with other algorithms are ignored (RFC 9530 §2).
    """
    try:
        members = _SFParser(header).dictionary()
    except _SFError as e:
        raise MalformedSignatureHeaderError(f"Content-Digest: {e}") from e
    checked = 0
    for alg, member in members.items():
        if alg not in _DIGESTS:
            continue
        value = member[0]
        if not isinstance(value, bytes):
            raise MalformedSignatureHeaderError(f"Content-Digest: {alg} is not a byte sequence")
        if value != _DIGESTS[alg](body):
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


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        value = value.strip(" \t")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _derived(name: str, method: str, url: str) -> str:
    if name == "@method":
        return method
    if name == "@target-uri":
        return url
    parts = urlsplit(url)
    if name == "@scheme":
        return parts.scheme.lower()
    path = parts.path or "/"
    if name == "@path":
        return path
    if name == "@query":
        return "?" + parts.query
    if name == "@request-target":
        return path + ("?" + parts.query if parts.query else "")
    # @authority: lowercase host, default port omitted (RFC 9421 §2.2.3)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as e:
        raise MalformedSignatureHeaderError(f"bad port in {url!r}") from e
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def _check_component(name: str) -> None:
    if name.startswith("@"):
        if name not in _DERIVED:
            raise MalformedSignatureHeaderError(f"unsupported derived component {name!r}")
    elif _FIELD_NAME.fullmatch(name) is None:
        raise MalformedSignatureHeaderError(f"bad component identifier {name!r}")


def _base(
    method: str,
    url: str,
    headers: Mapping[str, str],
    components: Sequence[str],
    params: _Params,
) -> bytes:
    lower = _lower_headers(headers)
    if len(set(components)) != len(components):
        raise MalformedSignatureHeaderError("a component is covered twice")
    lines = []
    for name in components:
        _check_component(name)
        if name.startswith("@"):
            value = _derived(name, method, url)
        elif name in lower:
            value = lower[name]
        else:
            raise BadSignatureError(f"covered header field {name!r} is not in the message")
        if "\n" in value or "\r" in value:
            raise MalformedSignatureHeaderError(f"component {name!r} contains a line break")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {_ser_inner_list(components, params)}')
    text = "\n".join(lines)
    if not text.isascii():
        raise MalformedSignatureHeaderError("signature base is not ASCII")
    return text.encode("ascii")


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
    return _base(
        method, url, headers, components, _make_params(created, expires, nonce, alg, key_id, tag)
    )


def _make_params(
    created: int | None,
    expires: int | None,
    nonce: str | None,
    alg: str | None,
    key_id: str | None,
    tag: str | None,
) -> _Params:
    params: _Params = []
    for name, value in (
        ("created", created),
        ("expires", expires),
        ("nonce", nonce),
        ("alg", alg),
        ("keyid", key_id),
        ("tag", tag),
    ):
        if value is not None:
            params.append((name, value))
    return params


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
    ``headers`` has one. ``components`` replaces that list entirely (used to
    reproduce the RFC examples, or to cover more fields such as ``content-type``).
    """
    out: dict[str, str] = {}
    all_headers = dict(headers)
    if body:
        out["Content-Digest"] = content_digest(body)
        all_headers = {k: v for k, v in all_headers.items() if k.lower() != "content-digest"}
        all_headers["Content-Digest"] = out["Content-Digest"]
    if components is None:
        lower = {k.lower() for k in headers}
        components = ["@method", "@target-uri"]
        if body:
            components.append("content-digest")
        if "date" in lower:
            components.append("date")
    if _KEY.fullmatch(label) is None:
        raise ValueError(f"invalid signature label {label!r}")
    params = _make_params(
        created, expires, nonce, ALG_ED25519 if include_alg else None, key_id, tag
    )
    try:
        base = _base(method, url, all_headers, components, params)
    except HttpSignatureError as e:
        raise ValueError(f"cannot sign: {e}") from e
    signature = private_key.sign(base)
    out["Signature-Input"] = f"{label}={_ser_inner_list(components, params)}"
    out["Signature"] = f"{label}={_ser_bare(signature)}"
    return out


def _find_param(params: _Params, name: str) -> _Bare | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _int_param(params: _Params, name: str) -> int | None:
    value = _find_param(params, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedSignatureHeaderError(f"parameter {name!r} must be an integer")
    return value


def _str_param(params: _Params, name: str) -> str | None:
    value = _find_param(params, name)
    if value is None:
        return None
    if not isinstance(value, str) or isinstance(value, _Token):
        raise MalformedSignatureHeaderError(f"parameter {name!r} must be a string")
    return value


def _parse_dict(headers: Mapping[str, str], name: str) -> dict[str, _Item | _InnerList]:
    try:
        return _SFParser(headers[name]).dictionary()
    except _SFError as e:
        raise MalformedSignatureHeaderError(f"{name}: {e}") from e


def signature_key_id(headers: Mapping[str, str], label: str | None = None) -> str:
    """The ``keyid`` of a request's signature (the first one unless ``label``), unverified.

    Lets a server find (fetch) the key before calling :func:`verify_request`.
    """
    lower = _lower_headers(headers)
    if "signature-input" not in lower:
        raise MissingSignatureError("no Signature-Input header field")
    inputs = _parse_dict(lower, "signature-input")
    if not inputs:
        raise MissingSignatureError("empty Signature-Input")
    member = inputs.get(label if label is not None else next(iter(inputs)))
    if member is None or not isinstance(member[0], list):
        raise MalformedSignatureHeaderError("Signature-Input member is not an inner list")
    key_id = _str_param(member[1], "keyid")
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
    lower = _lower_headers(headers)
    if "signature-input" not in lower or "signature" not in lower:
        raise MissingSignatureError("no Signature-Input and Signature header fields")
    inputs = _parse_dict(lower, "signature-input")
    signatures = _parse_dict(lower, "signature")
    if label is None:
        if not inputs:
            raise MissingSignatureError("empty Signature-Input")
        label = next(iter(inputs))
    if label not in inputs or label not in signatures:
        raise MissingSignatureError(f"no signature labelled {label!r}")
    member = inputs[label]
    if not isinstance(member[0], list):
        raise MalformedSignatureHeaderError("Signature-Input member is not an inner list")
    items, params = member[0], member[1]
    covered: list[str] = []
    for value, item_params in items:
        if not isinstance(value, str) or isinstance(value, _Token):
            raise MalformedSignatureHeaderError("component identifiers must be strings")
        if item_params:
            raise MalformedSignatureHeaderError("component parameters are not supported")
        covered.append(value)
    sig_value = signatures[label][0]
    if not isinstance(sig_value, bytes):
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

    if "content-digest" in lower:
        verify_content_digest(lower["content-digest"], body or b"")

    try:
        raw_key = resolve_key(key_id)
        if not isinstance(raw_key, bytes) or len(raw_key) != 32:
            raise ValueError("not a 32-byte Ed25519 public key")
        public_key = Ed25519PublicKey.from_public_bytes(raw_key)
    except Exception as e:
        raise UnknownKeyError(f"cannot resolve key {key_id!r}: {e}") from e

    base = _base(method, url, lower, covered, params)
    try:
        public_key.verify(sig_value, base)
    except InvalidSignature:
        raise BadSignatureError(f"signature {label!r} by {key_id!r} does not verify") from None
    return VerifiedRequest(
        key_id=key_id,
        created=created,
        expires=expires,
        nonce=nonce,
        covered=tuple(covered),
        label=label,
        tag=tag,
    )
