"""Server-to-server routes (spec §14) and the organiser API for hosting.

Public, unsigned: the actor, WebFinger, NodeInfo, petition objects, the
witness's evidence. Signed (RFC 9421) and required to be: the inbox. The
witness endpoint follows C2SP tlog-witness, where the checkpoint's own
signature is what authenticates the request.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fedpetition.core import witness as tlog_witness
from fedpetition.core.errors import DecodeError
from fedpetition.federation.documents import (
    ACTIVITY_JSON,
    JRD_JSON,
    NODEINFO_21_PROFILE,
    nodeinfo_links,
)
from fedpetition.federation.fetch import is_activity_content_type
from fedpetition.node.app import NODE
from fedpetition.node.federation import EVALUATE_PATH, WITNESS_PATH, Federation
from fedpetition.node.routes.api import body, organiser
from fedpetition.node.service import InputError

MAX_ACTIVITY_BYTES = 1 << 20
MAX_EVALUATE_BYTES = 64 * 1024  # 256 base64 elements and the JSON around them


def _federation(request: web.Request) -> Federation:
    federation = request.app[NODE].federation
    assert isinstance(federation, Federation)
    return federation


def activity_response(doc: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(doc, ensure_ascii=False), status=status,
                        content_type=ACTIVITY_JSON, headers={"Vary": "Accept"})


async def actor(request: web.Request) -> web.Response:
    return activity_response(_federation(request).actor())


async def petition_object(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    slug = request.match_info["slug"]
    accept = request.headers.get("Accept", "")
    if "text/html" in accept and "json" not in accept:  # a person following the link
        return web.Response(status=302, headers={"Location": f"/p/{slug}"})
    return activity_response(_federation(request).petition_object(await node.petition(slug)))


async def inbox(request: web.Request) -> web.Response:
    federation = _federation(request)
    if not is_activity_content_type(request.headers.get("Content-Type", "")):
        raise InputError("send an activity (Content-Type: application/activity+json)",
                         status=415, code="unsupported_media_type")
    # Read here, not by request.read(): the app's body limit is for forms and the
    # API, and an Update carrying a long petition's signed versions exceeds it.
    data = await request.content.read(MAX_ACTIVITY_BYTES + 1)
    while len(data) <= MAX_ACTIVITY_BYTES and (more := await request.content.read(
            MAX_ACTIVITY_BYTES + 1 - len(data))):
        data += more
    if len(data) > MAX_ACTIVITY_BYTES:
        raise InputError("activity too large", status=413, code="too_large")
    url = federation.base_url + request.path_qs
    signer = await federation.peers.authenticate(request.method, url, request.headers, data)
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DecodeError(f"the activity is not valid JSON: {e}") from e
    await federation.receive(signer, doc)
    return web.json_response({"accepted": True}, status=202)


async def outbox(request: web.Request) -> web.Response:
    """The node's public activities: a Create for each petition it started."""
    federation = _federation(request)
    node = request.app[NODE]
    items = []
    for view in await node.petitions():
        if view.record.is_local:
            obj = federation.petition_object(view)
            items.append({"id": obj["id"] + "#create", "type": "Create",
                          "actor": federation.peers.actor_id, "object": obj})
    return activity_response({"@context": "https://www.w3.org/ns/activitystreams",
                              "id": federation.base_url + "/outbox",
                              "type": "OrderedCollection", "totalItems": len(items),
                              "orderedItems": items})


async def followers(request: web.Request) -> web.Response:
    federation = _federation(request)
    return activity_response({"@context": "https://www.w3.org/ns/activitystreams",
                              "id": federation.base_url + "/followers",
                              "type": "OrderedCollection", "totalItems": 0,
                              "orderedItems": []})


async def webfinger(request: web.Request) -> web.Response:
    resource = request.query.get("resource")
    if not resource:
        raise InputError("the resource parameter is required", field="resource")
    found = await _federation(request).webfinger(resource)
    if found is None:
        raise InputError("no such resource here", status=404, code="not_found")
    return web.Response(text=json.dumps(found), content_type=JRD_JSON,
                        headers={"Access-Control-Allow-Origin": "*"})


async def nodeinfo_index(request: web.Request) -> web.Response:
    return web.json_response(nodeinfo_links(_federation(request).base_url))


async def nodeinfo(request: web.Request) -> web.Response:
    # body, not text: aiohttp would re-parse the header and drop the profile's quotes.
    return web.Response(body=json.dumps(await _federation(request).nodeinfo()).encode(),
                        headers={"Content-Type": NODEINFO_21_PROFILE})


async def add_checkpoint(request: web.Request) -> web.Response:
    """C2SP tlog-witness add-checkpoint: a cosignature line, or the spec's error statuses."""
    data = await request.content.read(tlog_witness.MAX_REQUEST_BYTES + 1)
    if len(data) > tlog_witness.MAX_REQUEST_BYTES:
        raise InputError("request too large", status=413, code="too_large")
    try:
        line = await _federation(request).add_checkpoint(data)
    except tlog_witness.SizeConflictError as e:
        return web.Response(body=e.body(), status=409,
                            headers={"Content-Type": tlog_witness.CONFLICT_CONTENT_TYPE})
    return web.Response(text=line, content_type="text/plain")


async def evaluate(request: web.Request) -> web.Response:
    """The origin's blind evaluation of a host's nullifier inputs (spec §4.4); signed."""
    federation = _federation(request)
    data = await request.content.read(MAX_EVALUATE_BYTES + 1)
    if len(data) > MAX_EVALUATE_BYTES:
        raise InputError("request too large", status=413, code="too_large")
    signer, verified = await federation.peers.authenticate_request(
        request.method, federation.base_url + request.path_qs, request.headers, data)
    # Evaluate requests carry no activity id: each must carry a signed nonce, and a
    # captured one is refused by it, however its headers were rearranged.
    await federation.refuse_replay(verified.key_id, verified.nonce)
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DecodeError(f"the request is not valid JSON: {e}") from e
    return web.json_response(await federation.evaluate(signer, request.match_info["slug"],
                                                       body))


async def evaluations(request: web.Request) -> web.Response:
    """How many nullifier evaluations the origin served to each host of a petition, as
    JSON for people; the signed document verifiers read is /petitions/<slug>/evaluations."""
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    if not view.record.is_local:
        raise InputError("only the petition's origin serves evaluations", status=404,
                         code="not_found")
    return web.json_response({"petition": view.record.petition_id,
                              "evaluations": await node.storage.evaluations(view.record.id)},
                             headers={"Cache-Control": "no-cache"})


async def evidence(request: web.Request) -> web.Response:
    """Split views this node's witness caught: two notes signed by one log key."""
    found = await request.app[NODE].storage.evidence()
    return web.json_response([
        {"at": at, "log": item.origin, "kind": item.kind, "recorded": item.recorded_note,
         "offending": item.offending_note, "proof": [p.hex() for p in item.proof]}
        for at, item in found])


# -- the organiser API ------------------------------------------------------------

async def federated(request: web.Request) -> web.Response:
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    return web.json_response(_federation(request).summary(view))


async def host_petition(request: web.Request) -> web.Response:
    """An organiser asks this node to host a petition started on another node."""
    await organiser(request)
    data = await body(request)
    url, slug = data.get("url"), data.get("slug")
    if not isinstance(url, str) or (slug is not None and not isinstance(slug, str)):
        raise InputError("url (the petition's URL on its origin) is required", field="url")
    view = await _federation(request).host(url, slug)
    return web.json_response({"slug": view.record.slug, "id": view.record.petition_id,
                              "hosting": view.hosting}, status=202)


async def host_requests(request: web.Request) -> web.Response:
    await organiser(request)
    view = await request.app[NODE].petition(request.match_info["slug"])
    found = await _federation(request).host_requests(view)
    return web.json_response([{"node": r.node, "status": r.status, "at": r.at} for r in found])


async def answer_host(request: web.Request) -> web.Response:
    await organiser(request)
    data = await body(request)
    accept = data.get("accept")
    if not isinstance(accept, bool):
        raise InputError("accept must be true or false", field="accept")
    view = await request.app[NODE].petition(request.match_info["slug"])
    if not view.record.is_local:
        raise InputError("only the petition's origin admits hosts", status=409)
    answered = await _federation(request).answer_host(view, request.match_info["node"], accept)
    return web.json_response({"node": answered.node, "status": answered.status})


def setup(app: web.Application) -> None:
    app.router.add_get("/actor", actor)
    app.router.add_post("/inbox", inbox)
    app.router.add_get("/outbox", outbox)
    app.router.add_get("/followers", followers)
    app.router.add_get("/petitions/{slug}", petition_object)
    app.router.add_get("/.well-known/webfinger", webfinger)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo_index)
    app.router.add_get("/nodeinfo/2.1", nodeinfo)
    app.router.add_post(WITNESS_PATH, add_checkpoint)
    app.router.add_get("/witness/evidence", evidence)
    app.router.add_post(EVALUATE_PATH, evaluate)
    app.router.add_get("/api/petitions/{slug}/evaluations", evaluations)
    app.router.add_get("/api/petitions/{slug}/federated", federated)
    app.router.add_post("/api/hosting", host_petition)
    app.router.add_get("/api/petitions/{slug}/host-requests", host_requests)
    app.router.add_post("/api/petitions/{slug}/host-requests/{node}", answer_host)
