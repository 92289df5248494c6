"""No request makes the node answer 5xx; API errors are JSON with an ``error`` field.

A hypothesis property test throws malformed requests at every route the app
registers (path parameters of unicode, very long strings, ``..``, ``%00``; wrong
methods; random bytes, JSON and form bodies, oversize bodies; random headers and
cookies, and sometimes a valid petition, token, CSRF pair or organiser token so
that handlers get past their first check). Then targeted cases: valid petition
and tokens, wrong methods and bodies.

Hypothesis and async fixtures don't mix, so the property test is synchronous: it
builds a node and a loopback server on its own event loop and runs each example
to completion on that loop. Examples are derandomised: a run never flakes, and a
failure replays as is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.mail import MemoryMailer
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node, SignatureForm
from tests.conftest import BACKENDS, POSTGRES_ENV, Databases

from .conftest import PASSWORD, NodeHarness, free_port

SLUG = "clean-air"
EXAMPLES = 300
MAX_LINE = 8190  # aiohttp's limit on a request line
ROUTE_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
METHODS = ("GET", "POST", "PUT", "DELETE")
FIELDS = (
    "name", "email", "region", "consents", "language", "slug", "title", "text", "addressee",
    "deadline", "thresholds", "languages", "csrf", "password", "updates", "title_fr",
    "text_fr", "title_en", "text_en",
)  # fmt: skip
# Already percent-encoded (or deliberately broken) path segments.
RAW_SEGMENTS = (
    "..", ".", "%2e%2e", "%2E%2E%2F%2E%2E", "%00", "a%00b", "%", "%ZZ", "%C0%AF", "%FF%FE",
    "%2F", "..%2F..%2Ffedpetition.toml", "%252e%252e", "~", "%20", "+", "%0d%0aX-Evil:%201",
)  # fmt: skip
TILE_PATHS = (
    "0/000",
    "0/000.p/3",
    "entries/000.p/3",
    "0/000.p/1",
    "1/000.p/1",
    "entries/000.p/1",
    "0/x001/000",
    "0/000.p/0",
    "0/000.p/257",
    "9/000",
    "0/-01",
    "../../../../etc/passwd",
)


@dataclass
class Context:
    """What the fuzzer may use to get past the first checks: real names and secrets."""

    node_name: str = ""
    tokens: list[str] = field(default_factory=list)  # signature links, various states
    privacy: str = ""
    organiser: str = ""
    session: str = ""
    csrf: str = "C" * 43


def templates(node: Node) -> list[tuple[str, str]]:
    """(method, path template) of every route the app registers."""
    found = set()
    for route in make_app(node, background=False).router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if "formatter" in info:
            template = info["formatter"]
        elif "path" in info:
            template = info["path"]
        else:
            template = info["prefix"] + "/{filename}"
        found.add((route.method, template))
    return sorted(found)


# --------------------------------------------------------------------------- strategies

printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
header_text = st.text(printable, max_size=60)
encoded_text = st.text(max_size=40).map(lambda s: urllib.parse.quote(s, safe=""))
long_text = st.builds(
    lambda n, ch: urllib.parse.quote(ch * n, safe=""),
    st.integers(200, 12_000),
    st.sampled_from(["a", "é", "😀", ".", "/"]),
)
segment = st.one_of(encoded_text, st.sampled_from(RAW_SEGMENTS), long_text)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "fr", "FR-IDF", "a@example.org", SLUG, "x" * 400]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
SIGN_BASE = {
    "name": "Fuzz Signer",
    "email": "fuzz@example.org",
    "region": "FR",
    "consents": {"updates": True},
    "language": "en",
}
PETITION_BASE = {
    "slug": "fuzzed",
    "languages": ["fr"],
    "title": {"fr": "T"},
    "text": {"fr": "T"},
    "addressee": "A",
    "deadline": int(time.time()) + 86400,
    "thresholds": [1, 10],
}
json_objects = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=8),
    st.builds(
        lambda base, key, value: {**base, key: value},
        st.sampled_from([SIGN_BASE, PETITION_BASE, {"email": "fuzz@example.org"}]),
        st.sampled_from(FIELDS),
        json_values,
    ),
)


@st.composite
def param(draw: st.DrawFn, name: str, ctx: Context) -> str:
    real: list[str] = {
        "slug": [SLUG, "nope"],
        "token": [*ctx.tokens, ctx.privacy],
        "origin": [ctx.node_name],
        "number": ["1", "2", "0", "01", "-1", "1e3", "99999999999999999999999"],
        "path": list(TILE_PATHS),
        "filename": ["style.css", "../fedpetition.toml", "..%2f..%2fservice.py", ""],
    }.get(name, [])
    use_real: bool = draw(st.booleans())
    if real and use_real:
        return draw(st.sampled_from(real))
    value = draw(segment)
    if name == "path" and draw(st.booleans()):
        value += "/" + draw(segment)  # {path:.+} takes slashes
    return value


@st.composite
def body(draw: st.DrawFn, ctx: Context, max_body: int) -> tuple[bytes | None, str | None]:
    """A body and the Content-Type it would naturally go with."""
    kind = draw(st.sampled_from(["none", "bytes", "json", "object", "form", "oversize"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000)), None
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), "application/json"
    if kind == "object":
        return json.dumps(draw(json_objects)).encode(), "application/json"
    if kind == "form":
        fields = draw(
            st.dictionaries(
                st.sampled_from(FIELDS) | st.text(max_size=8),
                st.text(max_size=60) | st.just("yes"),
                max_size=8,
            )
        )
        if draw(st.booleans()):
            fields["csrf"] = ctx.csrf
        if draw(st.booleans()):
            fields.update(name="alice", password=PASSWORD)
        return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
    if kind == "oversize":
        extra = draw(st.integers(1, 4 * max_body))
        return b"{" + b" " * (max_body + extra) + b"}", "application/json"
    return None, None


@dataclass(frozen=True)
class Fuzz:
    method: str
    path: str  # encoded, with its query
    headers: dict[str, str]
    data: bytes | None

    def __repr__(self) -> str:
        data = (
            self.data
            if self.data is None or len(self.data) < 300
            else (self.data[:300] + b"...(%d bytes)" % len(self.data))
        )
        path = self.path if len(self.path) < 300 else self.path[:300] + "..."
        return f"Fuzz({self.method} {path} headers={self.headers} data={data!r})"


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]], ctx: Context, max_body: int) -> Fuzz:
    own_method, template = draw(st.sampled_from(routes))
    method = draw(st.sampled_from([own_method, own_method, *METHODS]))
    path = ROUTE_PARAM.sub(lambda m: draw(param(m.group(1), ctx)), template)
    if draw(st.integers(0, 9)) == 0:
        path += "/" + draw(segment)  # one segment too many
    query = draw(
        st.dictionaries(st.sampled_from(["lang", "saved", "x"]), st.text(max_size=20), max_size=2)
    )
    if query:
        path += "?" + urllib.parse.urlencode(query)
    data, natural_type = draw(body(ctx, max_body))
    headers: dict[str, str] = {}
    content_type = draw(
        st.one_of(
            st.just(natural_type),
            st.sampled_from(
                [
                    "application/json",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=xyz",
                    "text/plain",
                    "application/json; charset=latin-1",
                    "application/json;;;=",
                    "*/*",
                    "",
                ]
            ),
            header_text,
        )
    )
    if content_type is not None:
        headers["Content-Type"] = content_type
    accept = draw(
        st.one_of(
            st.none(),
            st.sampled_from(["application/json", "text/html", "*/*", RECEIPT_ACCEPT]),
            header_text,
        )
    )
    if accept is not None:
        headers["Accept"] = accept
    if draw(st.booleans()):
        headers["Accept-Language"] = draw(
            st.sampled_from(["en", "fr;q=0.1, en", "*"]) | header_text
        )
    cookies = []
    if draw(st.booleans()):
        cookies.append(f"fp_csrf={draw(st.sampled_from([ctx.csrf, 'short']) | header_text)}")
    if draw(st.booleans()):
        cookies.append(f"fp_session={draw(st.sampled_from([ctx.session]) | header_text)}")
    if draw(st.booleans()):
        cookies.append(f"lang={draw(st.sampled_from(['en', 'fr', 'de']) | header_text)}")
    any_cookie: bool = draw(st.booleans())
    if cookies or any_cookie:
        headers["Cookie"] = "; ".join(cookies) or draw(header_text)
    auth = draw(
        st.sampled_from([None, f"Bearer {ctx.organiser}", "Bearer", "Basic x"]) | header_text
    )
    if auth is not None:
        headers["Authorization"] = auth
    return Fuzz(method, path, headers, data)


RECEIPT_ACCEPT = "application/vnd.fedpetition.receipt"


# --------------------------------------------------------------------------- checking


async def send(
    session: aiohttp.ClientSession, base: str, fuzz: Fuzz
) -> tuple[int, dict[str, str], bytes]:
    try:
        async with session.request(
            fuzz.method,
            URL(base + fuzz.path, encoded=True),
            data=fuzz.data,
            headers=fuzz.headers,
            allow_redirects=False,
            skip_auto_headers=["Content-Type", "Accept"],
        ) as response:
            return response.status, dict(response.headers), await response.read()
    except aiohttp.ClientResponseError as e:
        # aiohttp's parser refuses a request line too long with a 400 that has a
        # body even for HEAD, which the client then rejects: still a 4xx.
        if fuzz.method == "HEAD" and len(fuzz.path) > MAX_LINE:
            return e.status, {}, b""
        raise


def check(fuzz: Fuzz, status: int, headers: dict[str, str], data: bytes) -> None:
    described = f"{fuzz!r} -> {status} {data[:300]!r}"
    assert status < 500, described
    if "Content-Security-Policy" not in headers:
        # Refused by aiohttp's HTTP parser before the app saw it (a request line or
        # header too long): the node cannot shape that answer, but it is still a 4xx.
        assert status in (400, 413, 414, 431), described
        return
    if fuzz.path.startswith("/api/") and 400 <= status < 500 and fuzz.method != "HEAD":
        assert headers.get("Content-Type", "").startswith("application/json"), described
        value = json.loads(data)
        assert isinstance(value, dict) and isinstance(value.get("error"), str), described


def parser_refusal(record: logging.LogRecord) -> bool:
    """aiohttp logs, at ERROR, the requests its HTTP parser refuses with a 4xx."""
    error = record.exc_info[1] if record.exc_info else None
    return (
        record.name == "aiohttp.server"
        and isinstance(error, HttpProcessingError)
        and 400 <= error.code < 500
    )


async def make_node(folder: Path, database: str | None = None) -> tuple[Node, Context, int]:
    port = free_port()
    name = f"127.0.0.1:{port}"
    config = await init_node(folder, name, f"http://{name}", listen_port=port,
                             database_url=database)
    node = await build_node(load_config(config))
    sink = MemoryMailer()
    node.mailer = sink
    ctx = Context(node_name=name)
    ctx.organiser = await node.create_organiser("alice", PASSWORD)
    ctx.session = await node.login("alice", PASSWORD, "setup") or ""
    await node.start()
    await node.create_petition(None, {**PETITION_BASE, "slug": SLUG, "thresholds": [1, 2]})
    await node.create_petition(None, {**PETITION_BASE, "slug": "closed"})
    await node.close_petition("closed")
    # Signatures in several states: pending, counted, withdrawing.
    for i in range(4):
        await node.sign(SLUG, SignatureForm("Fuzz Seed", f"seed{i}@example.org", "FR"), "setup")
        ctx.tokens.append(sink.last_token(f"seed{i}@example.org"))
    for token in ctx.tokens[1:]:
        await node.confirm(token, "setup")
    await node.sequencer.sequence_once()
    await node.withdraw(ctx.tokens[3])
    await node.privacy_request("seed1@example.org", "setup", "en")
    ctx.privacy = sink.last_token("seed1@example.org")
    return node, ctx, port


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_request_gets_a_5xx(tmp_path: Path, caplog: pytest.LogCaptureFixture, backend: str,
                               postgres_database: str | None) -> None:
    if backend == "postgresql" and postgres_database is None:
        pytest.skip(f"PostgreSQL backend: set {POSTGRES_ENV} to run it (.ci/run does)")
    databases = Databases(backend, postgres_database if backend == "postgresql" else None,
                          tmp_path)
    caplog.set_level(logging.WARNING)
    loop = asyncio.new_event_loop()
    node, ctx, port = loop.run_until_complete(make_node(tmp_path / "node", databases.new()))
    server = TestServer(make_app(node, background=False), host="127.0.0.1", port=port)
    session: aiohttp.ClientSession | None = None
    try:
        loop.run_until_complete(server.start_server())

        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

        session = loop.run_until_complete(open_session())
        base = f"http://127.0.0.1:{port}"
        routes = templates(node)
        assert len(routes) > 30

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(requests(routes, ctx, node.config.limits.max_body_bytes))
        def example(fuzz: Fuzz) -> None:
            assert session is not None
            seen = len(caplog.records)
            status, headers, data = loop.run_until_complete(send(session, base, fuzz))
            check(fuzz, status, headers, data)
            errors = [
                r
                for r in caplog.records[seen:]
                if r.levelno >= logging.ERROR and not parser_refusal(r)
            ]
            assert not errors, (fuzz, [r.getMessage() for r in errors])

        example()
    finally:
        if session is not None:
            loop.run_until_complete(session.close())
        loop.run_until_complete(server.close())
        loop.run_until_complete(node.storage.close())
        loop.run_until_complete(databases.drop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# --------------------------------------------------------------------------- targeted


async def test_valid_resources_wrong_methods_and_bodies(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    pending = await h.sign(SLUG, "pending@example.org")
    counted = await h.sign(SLUG, "counted@example.org")
    await h.confirm(counted)
    await h.sequence()
    await h.client.post("/api/privacy", json={"email": "counted@example.org"})
    privacy = h.mail.last_token("counted@example.org")
    origin = f"127.0.0.1:{h.port}"
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, Any], int | None]] = [
        ("PUT", f"/api/petitions/{SLUG}", {}, 405),
        ("DELETE", f"/api/petitions/{SLUG}", {}, 405),
        ("POST", f"/api/petitions/{SLUG}", {"json": {}}, 405),
        ("GET", f"/api/signatures/{pending}/confirm", {}, 405),
        ("DELETE", f"/api/signatures/{counted}", {}, 405),
        ("PUT", f"/api/signatures/{counted}/withdraw", {}, 405),
        ("POST", f"/api/signatures/{counted}/receipt", {}, 405),
        ("GET", "/api/privacy", {}, 405),
        ("GET", f"/api/privacy/{privacy}/erase", {}, 405),
        ("POST", f"/log/{origin}/{SLUG}/checkpoint", {}, 405),
        ("POST", f"/petitions/{SLUG}/bundle.zip", {"data": b"x"}, 405),
        # Bodies where none is expected are ignored; bodies of the wrong kind refused.
        ("POST", f"/api/signatures/{pending}/confirm", {"data": b"\xff\x00garbage"}, 200),
        ("POST", f"/api/signatures/{counted}/confirm", {"json": [1, 2]}, 200),
        ("POST", f"/api/petitions/{SLUG}/signatures", {"data": b"name=a&email=b"}, 415),
        ("POST", f"/api/petitions/{SLUG}/signatures", {"data": b"\xff", "headers": json_type}, 400),
        (
            "POST",
            f"/api/petitions/{SLUG}/signatures",
            {"json": {"name": "A", "email": "a@x.org", "consents": "yes"}},
            400,
        ),
        ("POST", f"/api/petitions/{SLUG}/signatures", {"json": {"name": ["A"], "email": 5}}, 400),
        (
            "POST",
            f"/api/petitions/{SLUG}/signatures",
            {"json": {"name": "A", "email": "a@x.org", "language": 5}},
            400,
        ),
        ("POST", f"/api/petitions/{SLUG}/signatures", {"data": b"NaN", "headers": json_type}, 400),
        ("POST", "/api/privacy", {"json": {"email": "a@x.org", "language": ["en"]}}, 400),
        ("POST", "/api/privacy", {"json": {"email": "a@x.org", "language": "zz"}}, 202),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"deadline": "soon"}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"languages": "fr"}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"title": {"fr": 5}}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"thresholds": ["a"]}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"thresholds": "1,2"}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"title": {"de": "x"}}}, None),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"deadline": 10**40}}, None),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"deadline": 1.5}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"languages": [1, None]}}, None),
        ("POST", "/api/petitions", {"json": {**PETITION_BASE, "slug": 7}}, 400),
        ("POST", "/api/petitions", {"json": {**PETITION_BASE, "slug": "x" * 500}}, 400),
        ("POST", "/api/petitions", {"json": {**PETITION_BASE, "deadline": 10**40}}, None),
        ("POST", "/api/petitions", {"json": {**PETITION_BASE, "thresholds": [10**40]}}, 400),
        ("POST", f"/api/petitions/{SLUG}/versions", {"json": {"thresholds": [1, 2**64]}}, 400),
        ("POST", "/api/petitions", {"json": {**PETITION_BASE, "thresholds": [2, 1]}}, None),
        (
            "POST",
            "/api/petitions",
            {"json": {**PETITION_BASE, "title": {"fr": "T", "en": "U"}}},
            None,
        ),
        # NUL characters, which PostgreSQL text cannot hold: refused, never a 500.
        ("GET", "/api/petitions/a%00b", {}, None),
        ("GET", "/p/a%00b", {}, None),
        ("GET", f"/log/{origin}/a%00b/checkpoint", {}, None),
        ("POST", "/api/petitions/x%00/signatures", {"json": {"name": "A", "email": "a@x.org"}},
         None),
        ("POST", f"/api/petitions/{SLUG}/signatures",
         {"json": {"name": "A\u0000B", "email": "a@x.org"}}, 400),
        ("POST", "/api/petitions", {"json": {**PETITION_BASE, "slug": "a\u0000b"}}, 400),
        ("POST", "/api/hosting", {"json": {"url": "http://a\u0000b/petitions/x"}}, None),
        # Pages: forms without their CSRF pair, or a JSON body, are refused.
        ("POST", f"/s/{pending}/confirm", {"json": {}}, 415),
        ("POST", f"/s/{pending}/confirm", {"data": {"csrf": "x"}}, 403),
        ("POST", f"/p/{SLUG}/sign", {"data": {"name": "A", "email": "a@x.org"}}, 403),
        ("PUT", f"/p/{SLUG}", {}, 405),
        ("DELETE", f"/s/{counted}", {}, 405),
        ("GET", f"/s/{pending}/receipt.fpr", {}, 409),
        (
            "POST",
            f"/privacy/{privacy}/erase",
            {"data": b"csrf=", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            403,
        ),
    ]
    for method, path, kwargs, expected in cases:
        auth = h.auth if "/versions" in path or path == "/api/petitions" else {}
        kwargs = {**kwargs, "headers": {**auth, **kwargs.get("headers", {})}}
        response = await h.client.request(method, path, allow_redirects=False, **kwargs)
        data = await response.read()
        context = (method, path, kwargs.get("json", kwargs.get("data")), response.status, data)
        assert response.status < 500, context
        if expected is not None:
            assert response.status == expected, context
        if path.startswith("/api/") and 400 <= response.status < 500:
            assert response.content_type == "application/json", context
            assert isinstance(json.loads(data).get("error"), str), context
    # HEAD of the streamed bundle: headers only, and the connection stays usable.
    head = await h.client.head(f"/petitions/{SLUG}/bundle.zip")
    assert head.status == 200 and int(head.headers["Content-Length"]) > 0
    assert head.headers["X-Content-Type-Options"] == "nosniff"
    assert await head.read() == b""
    get = await h.client.get(f"/petitions/{SLUG}/bundle.zip")
    assert get.status == 200
    assert len(await get.read()) == int(head.headers["Content-Length"])
    # Still serving, and the counted signature still counts.
    petition = await (await h.client.get(f"/api/petitions/{SLUG}")).json()
    assert petition["counts"]["total"] == 1
