"""The public JSON API (documented in spec/openapi.yaml)."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from fedpetition.node.app import NODE
from fedpetition.node.service import InputError, Node, PetitionView, SignatureForm, SignerView
from fedpetition.node.storage import Organiser

RECEIPT_TYPE = "application/vnd.fedpetition.receipt"


async def body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    if request.content_type != "application/json":
        raise InputError("send a JSON object with Content-Type: application/json",
                         status=415, code="unsupported_media_type")
    try:
        value = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"the body is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise InputError("the body must be a JSON object")
    return value


async def organiser(request: web.Request) -> Organiser:
    """The organiser behind ``Authorization: Bearer <token>``, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = None
    if scheme.lower() == "bearer" and token.strip():
        found = await request.app[NODE].organiser_for_token(token.strip())
    if found is None:
        raise InputError("an organiser token is required (Authorization: Bearer ...)",
                         status=401, code="unauthorized")
    return found


def petition_json(node: Node, view: PetitionView, *, full: bool = True) -> dict[str, Any]:
    latest = view.latest
    slug = view.record.slug
    value: dict[str, Any] = {
        "id": view.record.petition_id,
        "slug": slug,
        "status": "open" if view.is_open(node.clock()) else "closed",
        "title": dict(latest.title),
        "languages": list(latest.languages),
        "deadline": latest.deadline,
        "version": latest.version,
        "count": view.count,
        "url": node.url(f"/p/{slug}"),
    }
    if full:
        stats = view.log.stats
        value.update(
            text=dict(latest.text),
            addressee=latest.addressee,
            created=view.versions[0].created,
            thresholds=list(latest.thresholds),
            versions=[{"version": v.version, "created": v.created,
                       "document": node.url(f"/petitions/{slug}/versions/{v.version}")}
                      for v in view.versions],
            counts={"total": view.count, "regions": stats.regions(),
                    "thresholds_reached": {str(k): t for k, t in
                                           stats.thresholds_reached(latest.thresholds).items()}},
            log={"origin": view.log.origin, "size": view.checkpoint.size,
                 "checkpoint": node.url(f"/log/{view.record.petition_id}/checkpoint"),
                 "bundle": node.url(f"/petitions/{slug}/bundle.zip"),
                 "key": str(node.signer.verifier_key())},
        )
    return value


def signer_json(view: SignerView) -> dict[str, Any]:
    record = view.signature
    return {"status": record.status, "petition": view.petition.record.petition_id,
            "receipt_available": record.log_index is not None,
            "log_index": record.log_index}


async def list_petitions(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.json_response({"petitions": [petition_json(node, v, full=False)
                                            for v in await node.petitions()]})


async def get_petition(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.json_response(petition_json(node, await node.petition(request.match_info["slug"])))


async def series(request: web.Request) -> web.Response:
    """Hourly count of the petition, as open data (hour start, count at its end)."""
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    return web.json_response({"petition": view.record.petition_id, "granularity": 3600,
                              "series": [{"hour": h, "count": c}
                                         for h, c in view.log.stats.series()]})


async def create_petition(request: web.Request) -> web.Response:
    node = request.app[NODE]
    view = await node.create_petition(await organiser(request), await body(request))
    return web.json_response(petition_json(node, view), status=201)


async def new_version(request: web.Request) -> web.Response:
    node = request.app[NODE]
    await organiser(request)
    data = await body(request)
    view = await node.edit_petition(request.match_info["slug"], data)
    return web.json_response(petition_json(node, view), status=201)


async def close_petition(request: web.Request) -> web.Response:
    node = request.app[NODE]
    await organiser(request)
    view = await node.close_petition(request.match_info["slug"])
    return web.json_response(petition_json(node, view))


def signature_form(data: dict[str, Any]) -> SignatureForm:
    consents = data.get("consents") or {}
    if not isinstance(consents, dict):
        raise InputError("consents must be an object", field="consents")
    for field in ("name", "email"):
        if not isinstance(data.get(field), str):
            raise InputError(f"{field} is required", field=field)
    region = data.get("region")
    if region is not None and not isinstance(region, str):
        raise InputError("region must be a string", field="region")
    language = data.get("language", "fr")
    if not isinstance(language, str):
        raise InputError("language must be a string", field="language")
    return SignatureForm(name=data["name"], email=data["email"], region=region or None,
                         updates=consents.get("updates") is True,
                         addressee=consents.get("addressee") is True, language=language)


async def sign(request: web.Request) -> web.Response:
    node = request.app[NODE]
    await node.sign(request.match_info["slug"], signature_form(await body(request)),
                    request.remote or "unknown")
    return web.json_response({"status": "check_your_mail",
                              "message": "If this address can sign, a confirmation link is "
                                         "on its way."}, status=202)


async def signature(request: web.Request) -> web.Response:
    view = await request.app[NODE].signer_view(request.match_info["token"])
    return web.json_response(signer_json(view))


async def confirm(request: web.Request) -> web.Response:
    view = await request.app[NODE].confirm(request.match_info["token"], request.remote or "unknown")
    return web.json_response(signer_json(view))


async def withdraw(request: web.Request) -> web.Response:
    view = await request.app[NODE].withdraw(request.match_info["token"])
    return web.json_response(signer_json(view))


async def receipt(request: web.Request) -> web.Response:
    data = await request.app[NODE].receipt(request.match_info["token"])
    if data is None:
        response = web.json_response({"error": "not_yet", "message": "the signature is not in "
                                      "the log yet; retry in a few seconds"}, status=409)
        response.headers["Retry-After"] = "2"
        return response
    return web.Response(body=data, content_type=RECEIPT_TYPE, headers={
        "Content-Disposition": 'attachment; filename="receipt.fpr"', "Cache-Control": "no-store"})


async def privacy_request(request: web.Request) -> web.Response:
    data = await body(request)
    email, language = data.get("email"), data.get("language", "fr")
    if not isinstance(email, str) or not isinstance(language, str):
        raise InputError("email is required", field="email")
    await request.app[NODE].privacy_request(email, request.remote or "unknown", language)
    return web.json_response({"status": "check_your_mail"}, status=202)


async def privacy_export(request: web.Request) -> web.Response:
    data = await request.app[NODE].privacy_export(request.match_info["token"])
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def privacy_erase(request: web.Request) -> web.Response:
    erased = await request.app[NODE].privacy_erase(request.match_info["token"])
    return web.json_response({"erased": erased})


async def checkpoint(request: web.Request) -> web.Response:
    """The latest checkpoint of a petition's log, parsed (for dashboards)."""
    view = await request.app[NODE].petition(request.match_info["slug"])
    cp = view.log.checkpoint
    return web.json_response({"origin": cp.origin, "size": cp.size,
                              "root_hash": base64.b64encode(cp.root_hash).decode()})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/petitions", list_petitions)
    app.router.add_post("/api/petitions", create_petition)
    app.router.add_get("/api/petitions/{slug}", get_petition)
    app.router.add_get("/api/petitions/{slug}/series", series)
    app.router.add_get("/api/petitions/{slug}/checkpoint", checkpoint)
    app.router.add_post("/api/petitions/{slug}/versions", new_version)
    app.router.add_post("/api/petitions/{slug}/close", close_petition)
    app.router.add_post("/api/petitions/{slug}/signatures", sign)
    app.router.add_get("/api/signatures/{token}", signature)
    app.router.add_post("/api/signatures/{token}/confirm", confirm)
    app.router.add_post("/api/signatures/{token}/withdraw", withdraw)
    app.router.add_get("/api/signatures/{token}/receipt", receipt)
    app.router.add_post("/api/privacy", privacy_request)
    app.router.add_get("/api/privacy/{token}", privacy_export)
    app.router.add_post("/api/privacy/{token}/erase", privacy_erase)
