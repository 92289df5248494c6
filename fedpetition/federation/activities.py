"""The activities nodes exchange, and the origin rules every incoming one must obey.

Pure: builders return JSON-ready dicts, parsers take decoded JSON and raise
:class:`~fedpetition.core.errors.DecodeError` (400) for a malformed activity or
:class:`OriginError` (403) for one that breaks the origin rules.

What the activities carry (spec/protocol.md §14):

========  ===============================  ==========================================
type      object                           meaning
========  ===============================  ==========================================
Create    a petition object (embedded)     the origin publishes a new petition
Update    a petition object (embedded)     new version or new roster of the petition
Update    a checkpoint object (embedded)   a host published a new witnessed checkpoint
Delete    the petition's URL               the origin withdrew the petition
Announce  the petition's URL               "I offer to host signatures for it"
Accept    the Announce's or Follow's id    the origin admits the host / a follow holds
Reject    the Announce's id                the origin refuses the host
Follow    the petition's URL               send me this petition's updates
Undo      the Follow (embedded)            stop sending them
========  ===============================  ==========================================

Activities are notifications: what they announce is trusted only through the
protocol documents they carry, which are signed by the node keys the roster pins
(petition versions and rosters by the origin, checkpoints by their host). The
HTTP signature only says which node is asking.

Origin rules (FEP-fe34; the lesson of Mastodon CVE-2024-23832): the activity's
``actor`` is the actor whose key signed the request; the activity's ``id`` has
the actor's origin; an embedded object (Create, Update, Undo) has the actor's
origin too, so that no node can speak for another by embedding its objects;
every other object is given by reference (a URL or id string) and is looked up
by the receiver, never taken from the activity.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fedpetition.core import names
from fedpetition.core.errors import DecodeError, FedPetitionError, RemoteProtocolError

from . import documents
from .documents import AS_CONTEXT, FEDPETITION_NS

__all__ = [
    "ACTIVITY_TYPES",
    "CHECKPOINT_TYPE",
    "CONTEXT",
    "PETITION_TYPE",
    "Activity",
    "CheckpointObject",
    "OriginError",
    "PetitionObject",
    "activity",
    "b64",
    "checkpoint_object",
    "new_activity_id",
    "origin_of",
    "parse_activity",
    "parse_checkpoint_object",
    "parse_petition_object",
    "petition_id_of_url",
    "petition_object",
    "petition_url",
    "unb64",
]

CONTEXT: list[Any] = [AS_CONTEXT, {"fedpetition": FEDPETITION_NS}]
PETITION_TYPE = "fedpetition:Petition"
CHECKPOINT_TYPE = "fedpetition:Checkpoint"
ACTIVITY_TYPES = frozenset(
    {"Create", "Update", "Delete", "Announce", "Accept", "Reject", "Follow", "Undo"}
)
_EMBEDDED = frozenset({"Create", "Update", "Undo"})  # object must be embedded, same origin
MAX_ID = 2048
MAX_DOCUMENT = 1 << 20  # a signed version document holds at most ~50,000 characters per language


class OriginError(RemoteProtocolError):
    """An activity speaks for another origin than the key that signed it (403)."""

    status = 403


def origin_of(url: object, what: str = "URL") -> tuple[str, str, int]:
    """The FEP-fe34 (scheme, host, port) origin of an id, at most :data:`MAX_ID` long."""
    if isinstance(url, str) and len(url) > MAX_ID:
        raise DecodeError(f"{what} is longer than {MAX_ID} characters")
    return documents.origin_of(url, what)


def new_activity_id(base_url: str) -> str:
    """A fresh activity id on this node (``<base>/activities/<random>``)."""
    return f"{base_url}/activities/{secrets.token_urlsafe(16)}"


def petition_url(base_url: str, slug: str) -> str:
    """A petition's id as an ActivityPub object: ``<base>/petitions/<slug>`` on its origin."""
    return f"{base_url}/petitions/{slug}"


def petition_id_of_url(url: object) -> str:
    """The petition id (``<origin node>/<slug>``, spec §2.2) a petition URL names."""
    origin_of(url, "petition URL")
    assert isinstance(url, str)
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if parts.query or parts.fragment or len(segments) != 3 or segments[1] != "petitions":
        raise DecodeError("petition URL is not <base>/petitions/<slug>")
    try:
        return f"{names.check_node_name(parts.netloc)}/{names.check_slug(segments[2])}"
    except FedPetitionError as e:
        raise DecodeError(f"petition URL: {e}") from e


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) > MAX_DOCUMENT * 4 // 3 + 4:
        raise DecodeError(f"{what} is not base64 text")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise DecodeError(f"{what} is not base64") from e
    if b64(data) != value:
        raise DecodeError(f"{what} is not canonical base64")
    return data


# --------------------------------------------------------------------- objects


@dataclass(frozen=True)
class PetitionObject:
    """A petition as its origin publishes it: the signed documents are the content."""

    url: str
    petition_id: str
    versions: tuple[bytes, ...]  # signed version documents, version 1 first
    roster: bytes  # the signed host roster
    closed: bool


def petition_object(
    base_url: str, slug: str, title: str, versions: Sequence[bytes], roster: bytes,
    *, page: str, closed: bool,
) -> dict[str, Any]:
    url = petition_url(base_url, slug)
    return {
        "@context": CONTEXT,
        "id": url,
        "type": PETITION_TYPE,
        "attributedTo": f"{base_url}/actor",
        "name": title,
        "url": page,
        "fedpetition:versions": [b64(v) for v in versions],
        "fedpetition:hosts": b64(roster),
        "fedpetition:closed": closed,
    }


def parse_petition_object(doc: object) -> PetitionObject:
    if not isinstance(doc, Mapping) or doc.get("type") != PETITION_TYPE:
        raise DecodeError("object is not a petition")
    url = doc.get("id")
    petition_id = petition_id_of_url(url)
    versions = doc.get("fedpetition:versions")
    if not isinstance(versions, list) or not 1 <= len(versions) <= 10_000:
        raise DecodeError("petition has no list of versions")
    closed = doc.get("fedpetition:closed", False)
    if not isinstance(closed, bool):
        raise DecodeError("petition's closed flag is not a boolean")
    assert isinstance(url, str)
    return PetitionObject(
        url,
        petition_id,
        tuple(unb64(v, f"petition version {i}") for i, v in enumerate(versions, start=1)),
        unb64(doc.get("fedpetition:hosts"), "petition roster"),
        closed,
    )


@dataclass(frozen=True)
class CheckpointObject:
    """A host's witnessed checkpoint of its log for a petition."""

    petition: str  # the petition's URL on its origin
    log: str  # the log origin (spec §2.3)
    note: str  # the checkpoint note with its signature and cosignatures


def checkpoint_object(base_url: str, petition: str, log: str, size: int, note: str
                      ) -> dict[str, Any]:
    return {
        "id": f"{base_url}/log/{log.split('/log/', 1)[1]}/checkpoint#{size}",
        "type": CHECKPOINT_TYPE,
        "context": petition,
        "fedpetition:log": log,
        "content": note,
    }


def parse_checkpoint_object(doc: object) -> CheckpointObject:
    if not isinstance(doc, Mapping) or doc.get("type") != CHECKPOINT_TYPE:
        raise DecodeError("object is not a checkpoint")
    petition = doc.get("context")
    petition_id_of_url(petition)
    log, note = doc.get("fedpetition:log"), doc.get("content")
    if not isinstance(log, str) or not isinstance(note, str) or len(note) > 64 * 1024:
        raise DecodeError("checkpoint object lacks its log or note")
    assert isinstance(petition, str)
    return CheckpointObject(petition, log, note)


# ------------------------------------------------------------------ activities


def activity(kind: str, activity_id: str, actor: str, obj: object, **extra: object
             ) -> dict[str, Any]:
    """An activity as sent: ``obj`` is an embedded object (dict) or a reference (str)."""
    if kind not in ACTIVITY_TYPES:
        raise ValueError(f"unknown activity type {kind!r}")
    body: dict[str, Any] = {"@context": CONTEXT, "id": activity_id, "type": kind,
                            "actor": actor, "object": obj}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


@dataclass(frozen=True)
class Activity:
    """An incoming activity that passed the origin rules."""

    type: str
    id: str
    actor: str
    object_id: str
    object: Mapping[str, Any] | None  # embedded object (Create, Update, Undo)
    target: str | None


def parse_activity(doc: object, signer_actor: str) -> Activity:
    """Check an incoming activity's shape and origin rules against the signing actor."""
    if not isinstance(doc, Mapping):
        raise DecodeError("activity is not a JSON object")
    kind = doc.get("type")
    if kind not in ACTIVITY_TYPES:
        raise DecodeError(f"unsupported activity type {str(kind)[:40]!r}")
    assert isinstance(kind, str)
    activity_id, actor = doc.get("id"), doc.get("actor")
    actor_origin = origin_of(signer_actor, "signing actor")
    if actor != signer_actor:
        raise OriginError(f"{kind} by {str(actor)[:200]!r} is signed by another actor")
    if origin_of(activity_id, "activity id") != actor_origin:
        raise OriginError(f"{kind} id is not on the actor's origin")
    obj = doc.get("object")
    embedded: Mapping[str, Any] | None = None
    if kind in _EMBEDDED:
        if not isinstance(obj, Mapping):
            raise DecodeError(f"{kind} must embed its object")
        embedded = obj
        object_id = obj.get("id")
        if origin_of(object_id, f"{kind} object id") != actor_origin:
            raise OriginError(f"{kind} embeds an object of another origin")
        if kind == "Undo" and (obj.get("type") != "Follow" or obj.get("actor") != actor):
            raise OriginError("Undo of an activity the actor did not make")
    else:
        if not isinstance(obj, str):
            raise DecodeError(f"{kind} must refer to its object by id (a string)")
        object_id = obj
        origin_of(object_id, f"{kind} object")
    target = doc.get("target")
    if target is not None:
        origin_of(target, f"{kind} target")
    assert isinstance(activity_id, str) and isinstance(object_id, str)
    return Activity(kind, activity_id, signer_actor, object_id, embedded,
                    target if isinstance(target, str) else None)
