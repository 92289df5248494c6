"""Bundle layout (spec §10): the files nodes serve, under the paths they serve them.

A bundle is an archive whose members are named like the URLs they come from,
without the scheme: ``<node>/key``, ``<origin>/petitions/<slug>/versions/<n>``,
``<origin>/petitions/<slug>/hosts``, optionally ``<origin>/petitions/<slug>/evaluations``,
and each log's ``<log origin>/checkpoint`` and ``<log origin>/tile/...``; plus one
``manifest`` at the top. This module names
those paths and reads them through :class:`FileSource`, the one read interface
behind which a bundle file and a live federation look the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import encoding, names, tiles
from .errors import DecodeError

MANIFEST = "manifest"
MAX_MEMBER_PATH = 1024


class FileSource(Protocol):
    """Where a verifier reads published files from: an archive, a directory, the network."""

    def members(self) -> Iterable[str]:
        """Every path available (for an archive: its member names)."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes at ``path``; raise DecodeError if it is missing or unreadable."""
        ...


def key_path(node: str) -> str:
    """Where a node publishes its verifier key (spec §10.1)."""
    return f"{names.check_node_name(node)}/key"


def petition_prefix(petition_id: str) -> str:
    origin, slug = names.petition_origin(petition_id), names.petition_slug(petition_id)
    return f"{origin}/petitions/{slug}"


def version_path(petition_id: str, number: int) -> str:
    """Where the origin publishes signed petition version ``number``."""
    return f"{petition_prefix(petition_id)}/versions/{number}"


def roster_path(petition_id: str) -> str:
    """Where the origin publishes the signed host roster."""
    return f"{petition_prefix(petition_id)}/hosts"


def evaluations_path(petition_id: str) -> str:
    """Where the origin publishes its signed evaluation counts (spec §3.6); OPTIONAL in a
    bundle (spec §10.1)."""
    return f"{petition_prefix(petition_id)}/evaluations"


def checkpoint_path(log_origin: str) -> str:
    return f"{log_origin}/checkpoint"


def log_member_paths(log_origin: str, size: int) -> list[str]:
    """Every member a bundle holds for a log at ``size`` (checkpoint, tiles, bundles)."""
    return [checkpoint_path(log_origin)] + [
        f"{log_origin}/{coord.path}" for coord in tiles.tiles_for_size(size)
    ]


@dataclass(frozen=True)
class Claims:
    """What the bundle's maker says the tally is. A verifier checks, never trusts."""

    total: int
    logs: Mapping[str, int] = field(default_factory=dict)  # log origin -> counted

    def to_map(self) -> dict[str, Any]:
        return {"total": self.total, "logs": dict(self.logs)}


@dataclass(frozen=True)
class Manifest:
    """The bundle's table of contents (spec §10.2)."""

    petition: str
    members: tuple[str, ...]
    claims: Claims | None = None

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "type": "bundle",
            "version": 1,
            "petition": self.petition,
            "members": sorted(self.members),
        }
        if self.claims is not None:
            value["claims"] = self.claims.to_map()
        return encoding.encode(value)

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        doc = encoding.decode_map(data, "manifest")
        required = {"type", "version", "petition", "members"}
        if not required <= set(doc) <= required | {"claims"}:
            raise DecodeError("manifest must have type, version, petition, members [, claims]")
        version = doc["version"]
        if doc["type"] != "bundle" or type(version) is not int or version != 1:
            raise DecodeError("manifest is not a version 1 fedpetition bundle manifest")
        petition = names.check_petition_id(doc["petition"])
        members = doc["members"]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise DecodeError("manifest members must be a list of paths")
        if members != sorted(set(members)):
            raise DecodeError("manifest members must be sorted and unique")
        claims = None
        if "claims" in doc:
            claims = _decode_claims(doc["claims"])
        return cls(petition, tuple(members), claims)


def _decode_claims(value: object) -> Claims:
    if not isinstance(value, dict) or set(value) != {"total", "logs"}:
        raise DecodeError("manifest claims must have total and logs")
    total, logs = value["total"], value["logs"]
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise DecodeError("claimed total must be a non-negative integer")
    if not isinstance(logs, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in logs.values()
    ):
        raise DecodeError("claimed log counts must be non-negative integers")
    return Claims(total, logs)


def check_member_path(path: str) -> str:
    """Reject member names that could escape a directory or hide in plain sight."""
    if (
        not path
        or len(path) > MAX_MEMBER_PATH
        or path.startswith("/")
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
        or not path.isprintable()
    ):
        raise DecodeError(f"bundle member name {path!r} is not allowed")
    return path
