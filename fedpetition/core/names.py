"""Names in the protocol (spec §2): nodes, petitions, logs, regions, languages.

Names are checked once, where they enter, so the rest of the core can use them as
plain strings and as path prefixes without escaping.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import DecodeError

# spec §2.1: host[:port]; host is a lower-case DNS name, an IPv4 literal, or
# a bracketed IPv6 literal. The node name doubles as the signed-note key name and
# as the first element of every path the node serves.
_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]{{2,45}}\])"
_PORT = r"(?:[1-9][0-9]{0,4})"
NODE_NAME_RE = re.compile(rf"{_HOST}(?::{_PORT})?")
SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})")
# spec §2.4: ISO 3166-1 alpha-2, optionally an ISO 3166-2 subdivision suffix.
REGION_RE = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
# spec §2.5: a BCP 47 tag restricted to language[-subtags], lower-case language.
LANGUAGE_RE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
MAX_NAME_LENGTH = 253
# A host made of digits and dots only must be a dotted-quad IPv4 address.
_IPV4_LIKE = re.compile(r"[0-9.]+")

LOG_INFIX = "/log/"


def _match(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH:
        raise DecodeError(f"{what} must be a string of at most {MAX_NAME_LENGTH} characters")
    if not pattern.fullmatch(value):
        raise DecodeError(f"{what} {value!r} is not well formed")
    return value


def check_node_name(value: object) -> str:
    """Return ``value`` if it is a valid node name (spec §2.1)."""
    name = _match(NODE_NAME_RE, value, "node name")
    if name.startswith("["):
        host, _, port = name[1:].partition("]")
        port = port.removeprefix(":")
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise DecodeError(f"node name {name!r} is not a valid IPv6 literal") from e
    else:
        host, _, port = name.partition(":")
        if _IPV4_LIKE.fullmatch(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError as e:
                raise DecodeError(f"node name {name!r} is not a valid IPv4 address") from e
    if port and int(port) > 65535:
        raise DecodeError(f"node name {name!r} has an invalid port")
    return name


def check_slug(value: object) -> str:
    """Return ``value`` if it is a valid petition slug (spec §2.2)."""
    return _match(SLUG_RE, value, "petition slug")


def check_petition_id(value: object) -> str:
    """Return ``value`` if it is ``<origin node name>/<slug>`` (spec §2.2)."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise DecodeError(f"petition id {value!r} must be <origin node>/<slug>")
    origin, slug = value.split("/")
    check_node_name(origin)
    check_slug(slug)
    return value


def petition_origin(petition_id: str) -> str:
    """The node name of the petition's origin (the part before the slash)."""
    return check_petition_id(petition_id).split("/", 1)[0]


def petition_slug(petition_id: str) -> str:
    """The petition's slug (the part after the slash)."""
    return check_petition_id(petition_id).split("/", 1)[1]


def log_origin(host: str, petition_id: str) -> str:
    """The checkpoint origin line of ``host``'s log for a petition (spec §2.3)."""
    return f"{check_node_name(host)}{LOG_INFIX}{check_petition_id(petition_id)}"


def check_region(value: object) -> str:
    """Return ``value`` if it is an ISO 3166 region code (spec §2.4)."""
    return _match(REGION_RE, value, "region")


def check_language(value: object) -> str:
    """Return ``value`` if it is an accepted language tag (spec §2.5)."""
    return _match(LANGUAGE_RE, value, "language tag")
