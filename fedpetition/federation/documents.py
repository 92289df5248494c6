"""Discovery documents of a node: ActivityPub actor, WebFinger and NodeInfo 2.1.

Pure builders and strict parsers, no I/O. Builders raise
:class:`~fedpetition.core.errors.LocalProtocolError` when asked for something
invalid; parsers raise :class:`~fedpetition.core.errors.DecodeError` on untrusted
input that does not have the one shape this module produces.

Choices made here (the rest of the node relies on them):

* **The actor.** A node is one ActivityPub ``Service`` at ``<base>/actor`` with
  ``inbox``, ``outbox`` and ``followers`` beside it (``<base>/inbox`` …). Its
  Ed25519 key appears three times and parsers require the three to agree:

  - ``publicKey`` (security v1, the key HTTP-signature implementations fetch),
    id ``<actor>#main-key``, SubjectPublicKeyInfo PEM;
  - ``assertionMethod`` (FEP-521a), one ``Multikey`` with id ``<actor>#ed25519-key``
    and ``publicKeyMultibase`` = ``"z" + base58btc(0xed 0x01 || key)``;
  - ``fedpetition:verifierKey``, the C2SP signed-note verifier key string
    (``<node name>+<key ID>+<base64>``), whose key name must be the node name.

* **The namespace.** ``fedpetition:`` is a fixed, project-wide JSON-LD prefix for
  ``https://fedpetition.org/ns#`` (:data:`FEDPETITION_NS`), declared in the actor's
  ``@context``; a term's meaning must not depend on which node serves it, so the
  prefix is not under each node's own URL.

* **WebFinger accounts.** The node itself is ``acct:node@<node name>``
  (:data:`NODE_ACCT_USER`, also the actor's ``preferredUsername``); a petition is
  ``acct:<slug>@<node name>``. The node takes precedence, so a petition whose slug
  is ``node`` is not reachable through WebFinger: petition creation should reserve
  that slug. The host part may carry the node name's ``:port`` (RFC 7565 has no
  port; accepted so that test nodes on ``localhost:8080`` work, as Mastodon does).
  The actor's and a petition's ``https`` URLs are accepted as resources too.

* **NodeInfo.** ``/.well-known/nodeinfo`` links to ``<base>/nodeinfo/2.1``
  (:data:`NODEINFO_PATH`). Organisers are the node's users; petitions are its
  ``localPosts``; ``metadata`` carries ``protocolVersion``, ``petitions`` and
  ``signatures``.

``base_url`` is always the node's public URL as the configuration holds it:
``http(s)://<node name>`` without path, query, fragment or trailing slash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from fedpetition import PROTOCOL_VERSION
from fedpetition.core.errors import DecodeError, FedPetitionError, LocalProtocolError
from fedpetition.core.names import check_node_name
from fedpetition.core.notes import SIG_TYPE_ED25519, VerifierKey

__all__ = [
    "ACTIVITY_JSON",
    "ACTOR_CONTEXT",
    "AS_CONTEXT",
    "ED25519_PUB_MULTICODEC",
    "FEDPETITION_NS",
    "JRD_JSON",
    "MULTIKEY_CONTEXT",
    "NODEINFO_21_PROFILE",
    "NODEINFO_21_REL",
    "NODEINFO_PATH",
    "NODE_ACCT_USER",
    "SECURITY_V1_CONTEXT",
    "SOFTWARE_NAME",
    "VKEY_PROPERTY",
    "Actor",
    "actor_document",
    "actor_url",
    "base58btc_decode",
    "base58btc_encode",
    "ed25519_multikey",
    "ed25519_public_key_pem",
    "multibase_decode",
    "node_acct",
    "nodeinfo",
    "nodeinfo_links",
    "origin_of",
    "parse_actor",
    "parse_ed25519_multikey",
    "parse_ed25519_public_key_pem",
    "webfinger",
]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_V1_CONTEXT = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
FEDPETITION_NS = "https://fedpetition.org/ns#"
VKEY_PROPERTY = "fedpetition:verifierKey"
ACTOR_CONTEXT: list[Any] = [
    AS_CONTEXT,
    SECURITY_V1_CONTEXT,
    MULTIKEY_CONTEXT,
    {"fedpetition": FEDPETITION_NS},
]

ACTIVITY_JSON = "application/activity+json"
JRD_JSON = "application/jrd+json"  # RFC 7033 §10.2
NODE_ACCT_USER = "node"

# NodeInfo protocol: the rel of the 2.1 link and the profile of its media type.
NODEINFO_21_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_21_PROFILE = f'application/json; profile="{NODEINFO_21_REL}#"'
NODEINFO_PATH = "/nodeinfo/2.1"
SOFTWARE_NAME = "fedpetition"

# multicodec table: ed25519-pub is 0xed, as an unsigned varint 0xed 0x01.
ED25519_PUB_MULTICODEC = b"\xed\x01"
_ED25519_LEN = 32

_MAIN_KEY_FRAGMENT = "#main-key"
_MULTIKEY_FRAGMENT = "#ed25519-key"

# ------------------------------------------------------------------- base58btc

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
# Enough for any key we handle; bounds the quadratic int conversion on hostile input.
_MAX_BASE58_LEN = 1024


def base58btc_encode(data: bytes) -> str:
    """Bitcoin base58: each leading zero byte is a ``1``, the rest a big-endian number."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 58)
        digits.append(_B58_ALPHABET[r])
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(s: str) -> bytes:
    """Inverse of :func:`base58btc_encode`; every string has one decoding and back."""
    if not isinstance(s, str):
        raise DecodeError("base58btc value is not a string")
    if len(s) > _MAX_BASE58_LEN:
        raise DecodeError(f"base58btc value longer than {_MAX_BASE58_LEN} characters")
    n = 0
    for i, c in enumerate(s):
        digit = _B58_INDEX.get(c)
        if digit is None:
            raise DecodeError(f"base58btc value has the invalid character {c!r} at {i}")
        n = n * 58 + digit
    zeros = len(s) - len(s.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def multibase_decode(s: str) -> bytes:
    """Decode a multibase string; only base58btc (prefix ``z``) is supported."""
    if not isinstance(s, str) or not s:
        raise DecodeError("multibase value is not a non-empty string")
    if s[0] != "z":
        raise DecodeError(f"multibase prefix {s[0]!r} is not 'z' (base58btc)")
    return base58btc_decode(s[1:])


def ed25519_multikey(public_key: bytes) -> str:
    """``publicKeyMultibase`` of an Ed25519 key: ``z`` + base58btc(0xed 0x01 || key)."""
    _check_key_bytes(public_key)
    return "z" + base58btc_encode(ED25519_PUB_MULTICODEC + public_key)


def parse_ed25519_multikey(s: str) -> bytes:
    """The 32-byte Ed25519 key of a ``publicKeyMultibase`` value."""
    raw = multibase_decode(s)
    if not raw.startswith(ED25519_PUB_MULTICODEC):
        raise DecodeError("publicKeyMultibase is not an Ed25519 public key (multicodec 0xed01)")
    key = raw[len(ED25519_PUB_MULTICODEC) :]
    if len(key) != _ED25519_LEN:
        raise DecodeError(f"publicKeyMultibase holds {len(key)} key bytes, not {_ED25519_LEN}")
    return key


# ------------------------------------------------------------------------- PEM


def ed25519_public_key_pem(public_key: bytes) -> str:
    """SubjectPublicKeyInfo PEM of a raw Ed25519 public key."""
    _check_key_bytes(public_key)
    key = Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def parse_ed25519_public_key_pem(pem: str) -> bytes:
    """The 32-byte key of an Ed25519 SubjectPublicKeyInfo PEM; other key types refused."""
    if not isinstance(pem, str):
        raise DecodeError("publicKeyPem is not a string")
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError) as e:
        raise DecodeError("publicKeyPem is not a valid PEM public key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise DecodeError(f"publicKeyPem is a {type(key).__name__}, not an Ed25519 key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_key_bytes(public_key: object) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != _ED25519_LEN:
        raise LocalProtocolError("an Ed25519 public key is 32 bytes")


# ------------------------------------------------------------------------ URLs


def _check_base(base_url: str, name: str) -> str:
    """Check ``base_url`` is ``http(s)://<name>`` and return it."""
    try:
        check_node_name(name)
    except FedPetitionError as e:
        raise LocalProtocolError(str(e)) from None
    if base_url not in (f"https://{name}", f"http://{name}"):
        raise LocalProtocolError(f"base URL {base_url!r} is not http(s)://{name}")
    return base_url


def _base_name(base_url: str) -> str:
    """The node name of a base URL (``http(s)://<name>``), checked."""
    if not isinstance(base_url, str):
        raise LocalProtocolError("base URL is not a string")
    scheme, sep, name = base_url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise LocalProtocolError(f"base URL {base_url!r} is not http(s)://<node name>")
    _check_base(base_url, name)
    return name


def actor_url(base_url: str) -> str:
    """The node actor's id, ``<base>/actor``."""
    _base_name(base_url)
    return f"{base_url}/actor"


def node_acct(name: str) -> str:
    """The node's WebFinger account, ``acct:node@<node name>``."""
    try:
        check_node_name(name)
    except FedPetitionError as e:
        raise LocalProtocolError(str(e)) from None
    return f"acct:{NODE_ACCT_USER}@{name}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: object, what: str) -> tuple[str, str, int]:
    """FEP-fe34 origin (scheme, host, port) of an absolute http(s) URL."""
    if not isinstance(url, str):
        raise DecodeError(f"{what} is not a string")
    if _CONTROL_OR_SPACE.search(url):
        raise DecodeError(f"{what} {url!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise DecodeError(f"{what} {url!r} is not a valid URL") from e
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise DecodeError(f"{what} {url!r} is not an http(s) URL")
    if not parts.hostname:
        raise DecodeError(f"{what} {url!r} has no host")
    if "@" in parts.netloc:
        raise DecodeError(f"{what} has user information")
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _same_origin(url: str, origin: tuple[str, str, int], what: str) -> str:
    if origin_of(url, what) != origin:
        raise DecodeError(
            f"{what} {url!r} is not on the actor's origin "
            f"{origin[0]}://{origin[1]}:{origin[2]} (FEP-fe34)"
        )
    return url


_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")

# -------------------------------------------------------------------- the actor


def actor_document(base_url: str, name: str, public_key: bytes, vkey: str) -> dict[str, Any]:
    """The node's ActivityPub ``Service`` actor (serve as ``application/activity+json``).

    ``vkey`` must be the signed-note verifier key of ``public_key`` named ``name``.
    """
    _check_base(base_url, name)
    _check_key_bytes(public_key)
    try:
        parsed = VerifierKey.parse(vkey)
    except FedPetitionError as e:
        raise LocalProtocolError(f"invalid verifier key: {e}") from None
    if parsed.sig_type != SIG_TYPE_ED25519:
        raise LocalProtocolError("the verifier key is not an Ed25519 note key (type 0x01)")
    if parsed.name != name:
        raise LocalProtocolError(f"the verifier key is named {parsed.name!r}, not {name!r}")
    if parsed.public_key != public_key:
        raise LocalProtocolError("the verifier key is not for this public key")
    actor = f"{base_url}/actor"
    return {
        "@context": [dict(c) if isinstance(c, dict) else c for c in ACTOR_CONTEXT],
        "id": actor,
        "type": "Service",
        "preferredUsername": NODE_ACCT_USER,
        "name": name,
        "inbox": f"{base_url}/inbox",
        "outbox": f"{base_url}/outbox",
        "followers": f"{base_url}/followers",
        "publicKey": {
            "id": actor + _MAIN_KEY_FRAGMENT,
            "owner": actor,
            "publicKeyPem": ed25519_public_key_pem(public_key),
        },
        "assertionMethod": [
            {
                "id": actor + _MULTIKEY_FRAGMENT,
                "type": "Multikey",
                "controller": actor,
                "publicKeyMultibase": ed25519_multikey(public_key),
            }
        ],
        VKEY_PROPERTY: vkey,
    }


@dataclass(frozen=True)
class Actor:
    """A node actor whose three key encodings agree."""

    id: str
    inbox: str
    outbox: str
    followers: str | None
    name: str | None
    node_name: str  # host[:port] of the actor id, also the verifier key's name
    public_key: bytes  # the 32-byte Ed25519 key
    public_key_id: str  # ``publicKey.id``, the keyid of HTTP signatures
    multikey_id: str  # the FEP-521a ``assertionMethod`` key id
    verifier_key: VerifierKey


def _field(doc: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in doc:
        raise DecodeError(f"{what} has no {key!r}")
    return doc[key]


def _string(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = _field(doc, key, what)
    if not isinstance(value, str):
        raise DecodeError(f"{what} {key!r} is not a string")
    return value


def _check_context(context: object) -> None:
    entries = context if isinstance(context, list) else [context]
    if AS_CONTEXT not in entries:
        raise DecodeError(f"actor @context does not include {AS_CONTEXT}")
    prefixes = [e["fedpetition"] for e in entries if isinstance(e, dict) and "fedpetition" in e]
    if prefixes != [FEDPETITION_NS]:
        raise DecodeError(f"actor @context does not map 'fedpetition' to {FEDPETITION_NS}")


def parse_actor(doc: object, fetched_url: str) -> Actor:
    """Check a node actor fetched from ``fetched_url`` and return its keys.

    Requires: the id is exactly the fetched URL; ``type`` is ``Service``; inbox,
    outbox, followers and both key ids are on the actor's origin (FEP-fe34);
    ``publicKey.owner`` and the Multikey's ``controller`` are the actor; exactly one
    ``assertionMethod`` entry, an Ed25519 ``Multikey``; the verifier key is an
    Ed25519 note key named after the actor's host[:port]; and the PEM, the Multikey
    and the verifier key hold the same 32-byte key.
    """
    if not isinstance(doc, Mapping):
        raise DecodeError("actor document is not a JSON object")
    what = "actor"
    _check_context(_field(doc, "@context", what))
    actor_id = _string(doc, "id", what)
    if actor_id != fetched_url:
        raise DecodeError(f"actor id {actor_id!r} is not the URL it was fetched from")
    origin = origin_of(actor_id, "actor id")
    node_name = urlsplit(actor_id).netloc.lower()
    if doc.get("type") != "Service":
        raise DecodeError(f"actor type is {doc.get('type')!r}, not 'Service'")
    inbox = _same_origin(_string(doc, "inbox", what), origin, "actor inbox")
    outbox = _same_origin(_string(doc, "outbox", what), origin, "actor outbox")
    followers = None
    if "followers" in doc:
        followers = _same_origin(_string(doc, "followers", what), origin, "actor followers")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise DecodeError("actor 'name' is not a string")

    # Classic publicKey.
    pk = _field(doc, "publicKey", what)
    if not isinstance(pk, Mapping):
        raise DecodeError("actor 'publicKey' is not a single JSON object")
    pk_id = _same_origin(_string(pk, "id", "publicKey"), origin, "publicKey id")
    if _string(pk, "owner", "publicKey") != actor_id:
        raise DecodeError("publicKey owner is not the actor")
    pem_key = parse_ed25519_public_key_pem(_string(pk, "publicKeyPem", "publicKey"))

    # FEP-521a Multikey.
    methods = _field(doc, "assertionMethod", what)
    if isinstance(methods, Mapping):
        methods = [methods]
    if not isinstance(methods, list) or len(methods) != 1:
        raise DecodeError("actor 'assertionMethod' must hold exactly one key")
    mk = methods[0]
    if not isinstance(mk, Mapping):
        raise DecodeError("assertionMethod entry is not an embedded JSON object")
    if mk.get("type") != "Multikey":
        raise DecodeError(f"assertionMethod entry type is {mk.get('type')!r}, not 'Multikey'")
    mk_id = _same_origin(_string(mk, "id", "Multikey"), origin, "Multikey id")
    if _string(mk, "controller", "Multikey") != actor_id:
        raise DecodeError("Multikey controller is not the actor")
    mk_key = parse_ed25519_multikey(_string(mk, "publicKeyMultibase", "Multikey"))

    # C2SP verifier key.
    try:
        vkey = VerifierKey.parse(_string(doc, VKEY_PROPERTY, what))
    except DecodeError as e:
        raise DecodeError(f"actor {VKEY_PROPERTY}: {e}") from e
    if vkey.sig_type != SIG_TYPE_ED25519:
        raise DecodeError(f"actor {VKEY_PROPERTY} is not an Ed25519 note key (type 0x01)")
    if vkey.name != node_name:
        raise DecodeError(
            f"actor {VKEY_PROPERTY} is named {vkey.name!r}, not the actor's host {node_name!r}"
        )

    if mk_key != pem_key:
        raise DecodeError("publicKeyMultibase and publicKeyPem hold different keys")
    if vkey.public_key != pem_key:
        raise DecodeError(f"{VKEY_PROPERTY} and publicKeyPem hold different keys")
    return Actor(
        id=actor_id,
        inbox=inbox,
        outbox=outbox,
        followers=followers,
        name=name,
        node_name=node_name,
        public_key=pem_key,
        public_key_id=pk_id,
        multikey_id=mk_id,
        verifier_key=vkey,
    )


# -------------------------------------------------------------------- WebFinger

_MAX_RESOURCE_LEN = 1024
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# RFC 7565 §7: userpart = unreserved / sub-delims, 1*; pct-encoded also allowed.
_ACCT_USERPART = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
# RFC 3986 host (reg-name or IP literal), plus an optional port (see module doc).
_ACCT_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]{1,5})?"
)


def _parse_resource(resource: object) -> tuple[str, str] | None:
    """Split an ``acct:`` resource into (user, host); None for other URI schemes.

    Raises DecodeError when ``resource`` is not a URI (RFC 7033 §4.2: 400).
    """
    if not isinstance(resource, str) or not resource:
        raise DecodeError("WebFinger resource is missing", status=400)
    if len(resource) > _MAX_RESOURCE_LEN:
        raise DecodeError("WebFinger resource is too long", status=400)
    if _CONTROL_OR_SPACE.search(resource) or not resource.isascii():
        raise DecodeError("WebFinger resource is not a URI", status=400)
    scheme, sep, rest = resource.partition(":")
    if not sep or not _SCHEME.fullmatch(scheme) or not rest:
        raise DecodeError(f"WebFinger resource {resource!r} is not a URI", status=400)
    if scheme.lower() != "acct":
        return None
    user, at, host = rest.rpartition("@")
    if not at or not _ACCT_USERPART.fullmatch(user) or not _ACCT_HOST.fullmatch(host):
        raise DecodeError(f"WebFinger resource {resource!r} is not an acct URI", status=400)
    return unquote(user), host.lower()


def _jrd(subject: str, href: str) -> dict[str, Any]:
    return {
        "subject": subject,
        "aliases": [href],
        "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": href}],
    }


def webfinger(
    resource: str, base_url: str, name: str, petitions: Mapping[str, str]
) -> dict[str, Any] | None:
    """The JRD (RFC 7033, serve as ``application/jrd+json``) for ``resource``, or None.

    Known resources: ``acct:node@<name>`` and the actor URL (the node);
    ``acct:<slug>@<name>`` and the petition's URL for each ``slug -> url`` of
    ``petitions``. A malformed resource raises DecodeError (status 400); a
    well-formed unknown one gives None (404).
    """
    _check_base(base_url, name)
    acct = _parse_resource(resource)
    actor = f"{base_url}/actor"
    if acct is None:
        if resource == actor:
            return _jrd(node_acct(name), actor)
        for slug, petition_url in petitions.items():
            if resource == petition_url:
                return _jrd(f"acct:{slug}@{name}", petition_url)
        return None
    user, host = acct
    if host != name:
        return None
    if user == NODE_ACCT_USER:
        return _jrd(node_acct(name), actor)
    url = petitions.get(user)
    if url is None:
        return None
    return _jrd(f"acct:{user}@{name}", url)


# --------------------------------------------------------------------- NodeInfo


def nodeinfo_links(base_url: str) -> dict[str, Any]:
    """The ``/.well-known/nodeinfo`` document: one link, to the 2.1 document."""
    _base_name(base_url)
    return {"links": [{"rel": NODEINFO_21_REL, "href": base_url + NODEINFO_PATH}]}


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LocalProtocolError(f"{what} must be a non-negative integer")
    return value


def nodeinfo(
    version: str,
    *,
    petitions: int,
    signatures: int,
    organisers: int,
    protocol_version: str = PROTOCOL_VERSION,
    repository: str | None = None,
    homepage: str | None = None,
) -> dict[str, Any]:
    """The NodeInfo 2.1 document (serve with :data:`NODEINFO_21_PROFILE`).

    ``version`` is the software version (``fedpetition.__version__``). ``repository``
    and ``homepage`` are included when given (the schema makes them optional).
    """
    if not isinstance(version, str) or not version:
        raise LocalProtocolError("software version must be a non-empty string")
    if not isinstance(protocol_version, str) or not protocol_version:
        raise LocalProtocolError("protocol version must be a non-empty string")
    software: dict[str, Any] = {"name": SOFTWARE_NAME, "version": version}
    if repository is not None:
        software["repository"] = repository
    if homepage is not None:
        software["homepage"] = homepage
    petitions = _count(petitions, "petitions")
    signatures = _count(signatures, "signatures")
    return {
        "version": "2.1",
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {
            "users": {"total": _count(organisers, "organisers")},
            "localPosts": petitions,
        },
        "metadata": {
            "protocolVersion": protocol_version,
            "petitions": petitions,
            "signatures": signatures,
        },
    }
