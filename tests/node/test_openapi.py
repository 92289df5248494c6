"""spec/openapi.yaml describes the HTTP interface the node's app really serves.

The routes the app registers under /api/ and for the protocol files must be the
documented paths with the documented methods, both ways; live answers must have
a documented status, content type and headers, and JSON bodies must match the
documented schemas (with jsonschema).
"""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientResponse, web

from .conftest import NodeHarness

SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROTOCOL_PATHS = re.compile(r"/key|/petitions/.*|/log/.*")


@functools.cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as f:
        document: dict[str, Any] = yaml.safe_load(f)
    return document


def resolve(node: Any) -> Any:
    """Follow a local ``$ref`` (``#/components/...``) until a non-reference."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def covered(path: str) -> bool:
    return path.startswith("/api/") or PROTOCOL_PATHS.fullmatch(path) is not None


def app_routes(app: web.Application, *, head: bool = False) -> set[tuple[str, str]]:
    """(path template, METHOD) of the app's API and protocol-file routes (HEAD if ``head``)."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        # A dynamic resource's formatter drops the regexes: /tile/{path:.+} -> /tile/{path}.
        path = info.get("formatter") or info.get("path")
        if path is None or not covered(path) or route.method == "*":
            continue
        if route.method != "HEAD" or head:
            found.add((path, route.method))
    return found


def documented_routes() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in spec()["paths"].items()
        for method in METHODS
        if method in item
    }


# --------------------------------------------------------------------------- the document


def test_document_is_openapi_3_1_with_unique_operations() -> None:
    document = spec()
    assert document["openapi"].startswith("3.1.")
    ids = []
    for path, item in document["paths"].items():
        assert covered(path), f"{path} is neither under /api/ nor a protocol file"
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            ids.append(operation["operationId"])
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert operation.get("responses"), f"{method} {path} has no responses"
            declared = {
                resolve(p)["name"]
                for p in (*item.get("parameters", ()), *operation.get("parameters", ()))
                if resolve(p)["in"] == "path"
            }
            assert declared == set(re.findall(r"\{(\w+)\}", path)), f"{method} {path}"
    assert len(ids) == len(set(ids)), "operationIds repeat"


def test_every_reference_resolves() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                assert node["$ref"].startswith("#/"), node["$ref"]
                resolve(node)  # KeyError names a dangling reference
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec())


def test_documented_paths_are_the_app_routes(harness: NodeHarness) -> None:
    registered = app_routes(harness.client.app)
    documented = documented_routes()
    missing, extra = sorted(registered - documented), sorted(documented - registered)
    assert (missing, extra) == ([], []), (
        f"served but not in spec/openapi.yaml: {missing}; documented but not served: {extra}"
    )
    # The document says every GET also answers HEAD.
    heads = app_routes(harness.client.app, head=True)
    assert all((path, "HEAD") in heads for path, method in registered if method == "GET")


# --------------------------------------------------------------------------- live answers


async def check(response: ClientResponse, template: str, method: str) -> Any:
    """Assert the answer is documented for the operation; return its JSON body, if any."""
    import jsonschema

    where = f"{method} {template} -> {response.status}"
    operation = spec()["paths"][template][method.lower()]
    documented = resolve(operation["responses"].get(str(response.status)))
    assert documented is not None, f"{where}: status not documented"
    for name, header in documented.get("headers", {}).items():
        header = resolve(header)
        value = response.headers.get(name)
        if value is None:
            assert not header.get("required"), f"{where}: no {name} header"
            continue
        schema = header.get("schema", {})
        jsonschema.validate(int(value) if schema.get("type") == "integer" else value, schema)
    content = documented.get("content", {})
    assert response.content_type in content, f"{where}: {response.content_type} not documented"
    if response.content_type != "application/json":
        await response.read()
        return None
    body = await response.json()
    schema = {**content["application/json"]["schema"], "components": spec()["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    assert not errors, f"{where}: {errors}"
    return body


async def test_live_answers_match_the_document(harness: NodeHarness) -> None:
    pytest.importorskip("jsonschema")
    h = harness
    c = h.client
    signatures = "/api/petitions/{slug}/signatures"
    petition = {
        "slug": "clean-air",
        "languages": ["fr", "en"],
        "title": "Air",
        "text": {"fr": "Texte.", "en": "Text."},
        "addressee": "Ministère",
        "deadline": int(time.time()) + 86400,
        "thresholds": [1, 5],
    }

    # Organisers.
    await check(await c.post("/api/petitions", json=petition), "/api/petitions", "POST")
    created = await check(
        await c.post("/api/petitions", json=petition, headers=h.auth), "/api/petitions", "POST"
    )
    assert created["status"] == "open"
    again = await check(
        await c.post("/api/petitions", json=petition, headers=h.auth), "/api/petitions", "POST"
    )
    assert again["field"] == "slug"
    await check(
        await c.post("/api/petitions", data=b"{}", headers=h.auth), "/api/petitions", "POST"
    )
    await check(
        await c.post(
            "/api/petitions/clean-air/versions",
            headers=h.auth,
            json={"text": "Nouveau texte.", "title": None},
        ),
        "/api/petitions/{slug}/versions",
        "POST",
    )

    # Signing, with the refusals a client meets.
    url = "/api/petitions/clean-air/signatures"
    bad = await check(await c.post(url, json={"name": "Ada"}), signatures, "POST")
    assert bad["field"] == "email"
    await check(
        await c.post(url, data=b"{", headers={"Content-Type": "application/json"}),
        signatures,
        "POST",
    )
    await check(await c.post(url, data=b"name=Ada"), signatures, "POST")
    await check(
        await c.post(
            url, data=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"}
        ),
        signatures,
        "POST",
    )
    await check(
        await c.post(
            "/api/petitions/nope/signatures", json={"name": "Ada", "email": "ada@example.org"}
        ),
        signatures,
        "POST",
    )
    await check(
        await c.post(
            url,
            json={
                "name": "Ada",
                "email": "ada@example.org",
                "region": "FR-IDF",
                "language": "en",
                "consents": {"updates": True},
            },
        ),
        signatures,
        "POST",
    )
    token = h.mail.last_token("ada@example.org")

    one = "/api/signatures/{token}"
    assert (await check(await c.get(f"/api/signatures/{token}"), one, "GET"))["status"] == "pending"
    await check(await c.get("/api/signatures/nope"), one, "GET")
    await check(await c.get(f"/api/signatures/{token}/receipt"), f"{one}/receipt", "GET")
    confirmed = await check(
        await c.post(f"/api/signatures/{token}/confirm"), f"{one}/confirm", "POST"
    )
    assert confirmed["status"] == "confirmed"
    await h.sequence()
    assert (await check(await c.get(f"/api/signatures/{token}"), one, "GET"))[
        "receipt_available"
    ] is True
    await check(await c.get(f"/api/signatures/{token}/receipt"), f"{one}/receipt", "GET")

    # An expired link.
    late = await h.sign("clean-air", "late@example.org")
    now = h.node.clock
    h.node.clock = lambda: time.time() + 73 * 3600
    await check(await c.post(f"/api/signatures/{late}/confirm"), f"{one}/confirm", "POST")
    h.node.clock = now

    # Reading petitions.
    listed = await check(await c.get("/api/petitions"), "/api/petitions", "GET")
    assert [p["slug"] for p in listed["petitions"]] == ["clean-air"]
    full = await check(await c.get("/api/petitions/clean-air"), "/api/petitions/{slug}", "GET")
    assert full["counts"]["total"] == 1 and full["version"] == 2
    await check(await c.get("/api/petitions/nope"), "/api/petitions/{slug}", "GET")
    await check(
        await c.get("/api/petitions/clean-air/series"), "/api/petitions/{slug}/series", "GET"
    )
    evaluations = "/api/petitions/{slug}/evaluations"
    served = await check(await c.get("/api/petitions/clean-air/evaluations"), evaluations, "GET")
    assert served == {"petition": f"127.0.0.1:{h.port}/clean-air", "evaluations": {}}
    await check(await c.get("/api/petitions/nope/evaluations"), evaluations, "GET")
    await check(
        await c.get("/api/petitions/clean-air/checkpoint"),
        "/api/petitions/{slug}/checkpoint",
        "GET",
    )

    # The protocol files.
    origin = f"127.0.0.1:{h.port}"
    size = full["log"]["size"]
    assert full["log"]["checkpoint"] == f"{h.url}/log/{origin}/clean-air/checkpoint"
    for path, template in [
        ("/key", "/key"),
        ("/petitions/clean-air/versions/2", "/petitions/{slug}/versions/{number}"),
        ("/petitions/clean-air/versions/3", "/petitions/{slug}/versions/{number}"),
        ("/petitions/clean-air/hosts", "/petitions/{slug}/hosts"),
        ("/petitions/clean-air/evaluations", "/petitions/{slug}/evaluations"),
        ("/petitions/nope/evaluations", "/petitions/{slug}/evaluations"),
        ("/petitions/clean-air/manifest", "/petitions/{slug}/manifest"),
        ("/petitions/clean-air/bundle.zip", "/petitions/{slug}/bundle.zip"),
        ("/petitions/nope/bundle.zip", "/petitions/{slug}/bundle.zip"),
        (f"/log/{origin}/clean-air/checkpoint", "/log/{origin}/{slug}/checkpoint"),
        ("/log/elsewhere.example/clean-air/checkpoint", "/log/{origin}/{slug}/checkpoint"),
        (f"/log/{origin}/clean-air/tile/0/000.p/{size}", "/log/{origin}/{slug}/tile/{path}"),
        (f"/log/{origin}/clean-air/tile/entries/000.p/{size}", "/log/{origin}/{slug}/tile/{path}"),
        (f"/log/{origin}/clean-air/tile/0/x999", "/log/{origin}/{slug}/tile/{path}"),
    ]:
        response = await c.get(path)
        assert response.status in (200, 404), path
        await check(response, template, "GET")

    # Withdrawing, then the privacy requests.
    withdrawn = await check(
        await c.post(f"/api/signatures/{token}/withdraw"), f"{one}/withdraw", "POST"
    )
    assert withdrawn["status"] == "withdrawing"
    await check(
        await c.post("/api/privacy", json={"email": "ADA@example.org"}), "/api/privacy", "POST"
    )
    await check(await c.post("/api/privacy", json={"language": "en"}), "/api/privacy", "POST")
    secret = h.mail.last_token("ada@example.org")
    export = await check(await c.get(f"/api/privacy/{secret}"), "/api/privacy/{token}", "GET")
    assert export["signatures"][0]["consents"] == {"updates": True, "addressee": False}
    await check(await c.get("/api/privacy/garbage"), "/api/privacy/{token}", "GET")
    h.node.clock = lambda: time.time() + 25 * 3600
    await check(await c.get(f"/api/privacy/{secret}"), "/api/privacy/{token}", "GET")
    h.node.clock = now
    await check(await c.post(f"/api/privacy/{secret}/erase"), "/api/privacy/{token}/erase", "POST")

    # Closing; then signing is refused.
    closed = await check(
        await c.post("/api/petitions/clean-air/close", headers=h.auth),
        "/api/petitions/{slug}/close",
        "POST",
    )
    assert closed["status"] == "closed"
    refused = await check(
        await c.post(url, json={"name": "Bob", "email": "bob@example.org"}), signatures, "POST"
    )
    assert refused["error"] == "closed"


async def test_rate_limited_answers_match_the_document(harness: NodeHarness) -> None:
    pytest.importorskip("jsonschema")
    h = harness
    await h.create_petition()
    for i in range(h.node.config.limits.sign_per_ip_per_hour + 1):
        response = await h.client.post(
            "/api/petitions/clean-air/signatures", json={"name": "A", "email": f"s{i}@example.org"}
        )
        if response.status != 202:
            break
    assert response.status == 429
    body = await check(response, "/api/petitions/{slug}/signatures", "POST")
    assert body["error"] == "rate_limited"
