"""Tests for fedpetition.federation.fetch (SSRF-guarded outbound client).

Real aiohttp servers on 127.0.0.1; host names are mapped to addresses by patching
the running loop's ``getaddrinfo``, and connection attempts are detected by
patching ``sock_connect`` / ``create_connection``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedpetition.core.errors import DecodeError, RemoteProtocolError
from fedpetition.federation.fetch import (
    ACTIVITY_ACCEPT,
    ContentTypeError,
    Fetcher,
    FetchError,
    ForbiddenAddressError,
    OriginMismatchError,
    RedirectError,
    TooLargeError,
    forbidden_reason,
    is_activity_content_type,
)

UA = "fedpetition-test/1"
AP = "application/activity+json"

AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]


# -------------------------------------------------------------------- server


class Hits:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.hosts: list[str] = []
        self.release = asyncio.Event()


async def _build_app(hits: Hits) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        hits.paths.append(request.path)
        hits.hosts.append(request.headers.get("Host", ""))
        path = request.path
        if path == "/plain":
            return web.Response(body=b"hello", content_type="text/plain")
        if path == "/headers":
            return web.json_response(dict(request.headers))
        if path == "/echo":
            return web.Response(body=await request.read(), content_type="application/octet-stream")
        if path == "/a":
            raise web.HTTPFound("/b")
        if path == "/b":
            raise web.HTTPMovedPermanently("/plain")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/cross":
            port = request.url.port or 80
            raise web.HTTPFound(f"http://127.0.0.1:{port + 1}/plain")
        if path == "/cross-host":
            raise web.HTTPFound(f"http://localhost:{request.url.port}/plain")
        if path == "/no-location":
            return web.Response(status=302)
        if path == "/missing":
            return web.Response(status=404, text="secret body")
        if path == "/big-declared":
            return web.Response(body=b"x" * 5000)
        if path == "/big-stream":
            resp = web.StreamResponse()
            await resp.prepare(request)
            try:
                for _ in range(50):
                    await resp.write(b"y" * 1000)
                    await asyncio.sleep(0)
            except (ConnectionResetError, ConnectionError):
                pass
            return resp
        if path == "/slow":
            await hits.release.wait()
            return web.Response(text="late")
        if path.startswith("/ap/"):
            return _activity(request, path[len("/ap/") :])
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def _activity(request: web.Request, kind: str) -> web.Response:
    base = f"http://{request.host}"
    own_id = f"{base}{request.path}"
    doc: Any = {"id": own_id, "type": "Person"}
    ctype = AP
    if kind == "wrong-type":
        ctype = "application/json"
    elif kind == "ld-no-profile":
        ctype = "application/ld+json"
    elif kind == "ld-profile":
        ctype = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    elif kind == "other-id":
        doc["id"] = f"{base}/ap/someone-else"
    elif kind == "no-id":
        del doc["id"]
    elif kind == "array":
        doc = [doc]
    elif kind == "redirected":
        raise web.HTTPFound("/ap/ok")
    body = json.dumps(doc).encode()
    return web.Response(body=body, headers={"Content-Type": ctype})


@pytest.fixture
async def hits() -> Hits:
    return Hits()


@pytest.fixture
async def server(hits: Hits) -> AsyncIterator[TestServer]:
    srv = TestServer(await _build_app(hits), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        hits.release.set()
        await srv.close()


@pytest.fixture
async def dev() -> AsyncIterator[Fetcher]:
    async with Fetcher(allow_loopback=True, timeout=5, user_agent=UA) as f:
        yield f


@pytest.fixture
async def prod() -> AsyncIterator[Fetcher]:
    async with Fetcher(user_agent=UA) as f:
        yield f


def base(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


class Resolver:
    """Replacement for ``loop.getaddrinfo``: name -> list of address lists per call."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[AddrInfo]:
        self.calls.append(host)
        answers = self.table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        n = min(len(self.calls) - 1, len(answers) - 1)
        out: list[AddrInfo] = []
        for addr in answers[n]:
            if ":" in addr:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)))
        return out


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[Any]]:
    """Record connection attempts on the running loop (they are passed through)."""
    seen: list[Any] = []

    def arm() -> list[Any]:
        running = asyncio.get_running_loop()
        orig_sock_connect = running.sock_connect
        orig_create = running.create_connection

        async def sock_connect(sock: socket.socket, address: Any) -> None:
            seen.append(address)
            await orig_sock_connect(sock, address)

        async def create_connection(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("sock") is None:
                seen.append((args, kwargs))
            return await orig_create(*args, **kwargs)

        monkeypatch.setattr(running, "sock_connect", sock_connect)
        monkeypatch.setattr(running, "create_connection", create_connection)
        return seen

    return arm


def use_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[list[str]]]) -> Resolver:
    resolver = Resolver(table)
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    return resolver


# ---------------------------------------------------------- address policy


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.0.1",
        "198.18.0.1",
        "::",
        "fd00::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of loopback: not local, refused even in dev mode
        "2001::1",  # Teredo
        "2001:db8::1",
        "fe80::1%eth0",
        "not-an-ip",
    ],
)
def test_non_global_refused_even_in_dev_mode(address: str) -> None:
    assert forbidden_reason(address) is not None
    assert forbidden_reason(address, allow_loopback=True) is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_only_in_dev_mode(address: str) -> None:
    assert forbidden_reason(address) == "loopback"
    assert forbidden_reason(address, allow_loopback=True) is None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_global_allowed(address: str) -> None:
    assert forbidden_reason(address) is None


def test_error_tree() -> None:
    for cls in (ForbiddenAddressError, TooLargeError, RedirectError, ContentTypeError):
        assert issubclass(cls, FetchError)
    assert issubclass(OriginMismatchError, FetchError)
    assert issubclass(FetchError, RemoteProtocolError)
    assert FetchError("h", "r").status == 502
    assert ForbiddenAddressError("h", "r").status == 400


def test_activity_content_types() -> None:
    assert is_activity_content_type("application/activity+json")
    assert is_activity_content_type("Application/Activity+JSON; charset=utf-8")
    assert is_activity_content_type(
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    )
    assert is_activity_content_type(
        'application/ld+json;profile="https://example.org/x https://www.w3.org/ns/activitystreams"'
    )
    assert not is_activity_content_type("application/ld+json")
    assert not is_activity_content_type("application/json")
    assert not is_activity_content_type("")


# ------------------------------------------------------------- URL checks


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "gopher://example.org/",
        "data:text/plain,hi",
        "/relative/path",
        "https://user:pw@example.org/",
        "https://user@example.org/",
        "https://example.org:0/",
        "https://example.org./",
        "http://example.org/",  # plain http outside dev mode
        "https://2130706433/",
        "https://127.1/",
        "https://0x7f.1/",
        "https://[fe80::1%25eth0]/",
        "https://10.0.0.1/",
        "https://[fd00::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/",
    ],
)
async def test_bad_urls_refused_without_lookup_or_connection(
    url: str,
    prod: Fetcher,
    monkeypatch: pytest.MonkeyPatch,
    connects: Callable[[], list[Any]],
) -> None:
    resolver = use_dns(monkeypatch, {})
    seen = connects()
    with pytest.raises(ForbiddenAddressError):
        await prod.get(url, accept="*/*")
    assert resolver.calls == []
    assert seen == []


async def test_out_of_range_port_refused(prod: Fetcher) -> None:
    with pytest.raises(ForbiddenAddressError):
        await prod.get("https://example.org:70000/", accept="*/*")


async def test_dev_mode_still_refuses_private_literals(
    dev: Fetcher, connects: Callable[[], list[Any]]
) -> None:
    seen = connects()
    for url in ("http://10.0.0.1/", "http://[fd00::1]/", "http://169.254.169.254/"):
        with pytest.raises(ForbiddenAddressError):
            await dev.get(url, accept="*/*")
    assert seen == []


# ----------------------------------------------------------- loopback policy


async def test_loopback_refused_by_default(server: TestServer, hits: Hits) -> None:
    # Even https-only policy aside, the address itself is refused.
    async with Fetcher(user_agent=UA) as f:
        with pytest.raises(ForbiddenAddressError) as ei:
            await f.get(f"https://127.0.0.1:{server.port}/plain", accept="*/*")
    assert "127.0.0.1" in str(ei.value)
    assert hits.paths == []


async def test_loopback_name_refused_by_default(
    server: TestServer, hits: Hits, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_dns(monkeypatch, {"node.test": [["127.0.0.1"]]})
    async with Fetcher(user_agent=UA) as f:
        with pytest.raises(ForbiddenAddressError, match="loopback"):
            await f.get(f"https://node.test:{server.port}/plain", accept="*/*")
    assert hits.paths == []


async def test_loopback_allowed_in_dev_mode(server: TestServer, dev: Fetcher, hits: Hits) -> None:
    got = await dev.get(f"{base(server)}/plain", accept="text/plain")
    assert got.status == 200
    assert got.body == b"hello"
    assert got.content_type.startswith("text/plain")
    assert got.url == f"{base(server)}/plain"
    assert hits.paths == ["/plain"]


async def test_headers_sent(server: TestServer, dev: Fetcher) -> None:
    got = await dev.get(f"{base(server)}/headers", accept="x/y", headers={"X-Extra": "1"})
    sent = json.loads(got.body)
    assert sent["User-Agent"] == UA
    assert sent["Accept"] == "x/y"
    assert sent["X-Extra"] == "1"


# ----------------------------------------------------- resolution and pinning


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "fd00::1", "100.64.1.1"]
)
async def test_name_resolving_to_private_refused_without_connection(
    address: str, prod: Fetcher, monkeypatch: pytest.MonkeyPatch, connects: Callable[[], list[Any]]
) -> None:
    resolver = use_dns(monkeypatch, {"evil.example": [[address]]})
    seen = connects()
    with pytest.raises(ForbiddenAddressError) as ei:
        await prod.get("https://evil.example/x", accept="*/*")
    assert "evil.example" in str(ei.value)
    assert resolver.calls == ["evil.example"]
    assert seen == []


async def test_any_bad_address_refuses(
    prod: Fetcher, monkeypatch: pytest.MonkeyPatch, connects: Callable[[], list[Any]]
) -> None:
    # Public first, loopback second: a connector falling back to the second
    # address would reach localhost, so the whole name is refused.
    use_dns(monkeypatch, {"rebind.example": [["93.184.216.34", "127.0.0.1"]]})
    seen = connects()
    with pytest.raises(ForbiddenAddressError, match=re.escape("127.0.0.1")):
        await prod.get("https://rebind.example/x", accept="*/*")
    assert seen == []


async def test_connects_to_validated_address_without_second_lookup(
    server: TestServer,
    dev: Fetcher,
    hits: Hits,
    monkeypatch: pytest.MonkeyPatch,
    connects: Callable[[], list[Any]],
) -> None:
    # DNS rebinding: a second lookup would answer 10.0.0.1. There must be none:
    # aiohttp connects to the address that was checked, with Host = the name.
    resolver = use_dns(monkeypatch, {"node.test": [["127.0.0.1"], ["10.0.0.1"]]})
    seen = connects()
    got = await dev.get(f"http://node.test:{server.port}/plain", accept="*/*")
    assert got.body == b"hello"
    assert resolver.calls == ["node.test"]
    assert [a[:2] for a in seen] == [("127.0.0.1", server.port)]
    assert hits.hosts == [f"node.test:{server.port}"]
    # The next request resolves again, and the rebinding answer is refused.
    with pytest.raises(ForbiddenAddressError, match=re.escape("10.0.0.1")):
        await dev.get(f"http://node.test:{server.port}/plain", accept="*/*")
    assert len(hits.paths) == 1


async def test_unresolvable_host(dev: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    use_dns(monkeypatch, {})
    with pytest.raises(FetchError) as ei:
        await dev.get("http://nowhere.test/", accept="*/*")
    assert not isinstance(ei.value, ForbiddenAddressError)
    assert ei.value.host == "nowhere.test"


# ----------------------------------------------------------------- redirects


async def test_same_origin_redirects_followed(server: TestServer, dev: Fetcher, hits: Hits) -> None:
    got = await dev.get(f"{base(server)}/a", accept="*/*")
    assert got.body == b"hello"
    assert got.url == f"{base(server)}/plain"
    assert hits.paths == ["/a", "/b", "/plain"]


@pytest.mark.parametrize("path", ["/cross", "/cross-host"])
async def test_cross_origin_redirect_refused(
    path: str, server: TestServer, dev: Fetcher, hits: Hits
) -> None:
    with pytest.raises(RedirectError, match="origin"):
        await dev.get(f"{base(server)}{path}", accept="*/*")
    assert hits.paths == [path]


async def test_redirect_loop_capped(server: TestServer, dev: Fetcher, hits: Hits) -> None:
    with pytest.raises(RedirectError, match="redirects"):
        await dev.get(f"{base(server)}/loop", accept="*/*")
    assert hits.paths == ["/loop"] * 4


async def test_redirect_without_location(server: TestServer, dev: Fetcher) -> None:
    with pytest.raises(RedirectError):
        await dev.get(f"{base(server)}/no-location", accept="*/*")


async def test_redirect_target_rechecked(
    dev: Fetcher, monkeypatch: pytest.MonkeyPatch, hits: Hits, server: TestServer
) -> None:
    # Same origin, but the name now resolves somewhere forbidden: refused.
    use_dns(monkeypatch, {"node.test": [["127.0.0.1"], ["169.254.169.254"]]})
    with pytest.raises(ForbiddenAddressError, match=re.escape("169.254.169.254")):
        await dev.get(f"http://node.test:{server.port}/a", accept="*/*")
    assert hits.paths == ["/a"]


# --------------------------------------------------------- status and limits


async def test_non_2xx_is_fetch_error_without_body(server: TestServer, dev: Fetcher) -> None:
    with pytest.raises(FetchError) as ei:
        await dev.get(f"{base(server)}/missing", accept="*/*")
    assert ei.value.remote_status == 404
    assert ei.value.status == 502
    assert "127.0.0.1" in str(ei.value)
    assert "secret" not in str(ei.value)


async def test_declared_oversize_refused(server: TestServer) -> None:
    async with Fetcher(allow_loopback=True, max_bytes=1000, user_agent=UA) as f:
        with pytest.raises(TooLargeError):
            await f.get(f"{base(server)}/big-declared", accept="*/*")
        # The connection is usable again afterwards.
        assert (await f.get(f"{base(server)}/plain", accept="*/*")).body == b"hello"


async def test_streamed_oversize_refused(server: TestServer) -> None:
    async with Fetcher(allow_loopback=True, max_bytes=10_000, user_agent=UA) as f:
        with pytest.raises(TooLargeError, match="10000"):
            await f.get(f"{base(server)}/big-stream", accept="*/*")
    async with Fetcher(allow_loopback=True, max_bytes=50_000, user_agent=UA) as f:
        got = await f.get(f"{base(server)}/big-stream", accept="*/*")
        assert len(got.body) == 50_000


async def test_timeout(server: TestServer) -> None:
    async with Fetcher(allow_loopback=True, timeout=0.3, user_agent=UA) as f:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(FetchError, match="timed out") as ei:
            await f.get(f"{base(server)}/slow", accept="*/*")
        assert loop.time() - start < 3
    assert ei.value.status == 504


async def test_closed_fetcher_refuses(server: TestServer) -> None:
    f = Fetcher(allow_loopback=True, user_agent=UA)
    await f.get(f"{base(server)}/plain", accept="*/*")
    await f.close()
    with pytest.raises(Exception, match="closed"):
        await f.get(f"{base(server)}/plain", accept="*/*")


# ---------------------------------------------------------------------- post


async def test_post(server: TestServer, dev: Fetcher) -> None:
    got = await dev.post(
        f"{base(server)}/echo", b"payload", {"Content-Type": "application/activity+json"}
    )
    assert got.body == b"payload"


async def test_post_does_not_follow_redirects(server: TestServer, dev: Fetcher, hits: Hits) -> None:
    with pytest.raises(RedirectError):
        await dev.post(f"{base(server)}/a", b"x", {})
    assert hits.paths == ["/a"]


async def test_post_policy(prod: Fetcher, connects: Callable[[], list[Any]]) -> None:
    seen = connects()
    with pytest.raises(ForbiddenAddressError):
        await prod.post("https://10.1.2.3/inbox", b"x", {})
    assert seen == []


# ------------------------------------------------------------------ activity


async def test_activity_ok(server: TestServer, dev: Fetcher, hits: Hits) -> None:
    url = f"{base(server)}/ap/ok"
    doc = await dev.get_activity(url)
    assert doc["id"] == url
    assert doc["type"] == "Person"
    assert len(hits.paths) == 1


async def test_activity_accept_header(server: TestServer, dev: Fetcher) -> None:
    got = await dev.get(f"{base(server)}/headers", accept=ACTIVITY_ACCEPT)
    assert json.loads(got.body)["Accept"] == ACTIVITY_ACCEPT


async def test_activity_fragment_ignored(server: TestServer, dev: Fetcher) -> None:
    doc = await dev.get_activity(f"{base(server)}/ap/ok#main-key")
    assert doc["id"] == f"{base(server)}/ap/ok"


async def test_activity_ld_json_with_profile(server: TestServer, dev: Fetcher) -> None:
    await dev.get_activity(f"{base(server)}/ap/ld-profile")


@pytest.mark.parametrize("kind", ["wrong-type", "ld-no-profile"])
async def test_activity_wrong_content_type(kind: str, server: TestServer, dev: Fetcher) -> None:
    with pytest.raises(ContentTypeError):
        await dev.get_activity(f"{base(server)}/ap/{kind}")


@pytest.mark.parametrize("kind", ["other-id", "no-id"])
async def test_activity_id_mismatch(kind: str, server: TestServer, dev: Fetcher) -> None:
    with pytest.raises(OriginMismatchError):
        await dev.get_activity(f"{base(server)}/ap/{kind}")


async def test_activity_not_object(server: TestServer, dev: Fetcher) -> None:
    with pytest.raises(DecodeError):
        await dev.get_activity(f"{base(server)}/ap/array")


async def test_activity_same_origin_redirect(server: TestServer, dev: Fetcher) -> None:
    # The document carries the final (same-origin) URL as its id.
    doc = await dev.get_activity(f"{base(server)}/ap/redirected")
    assert doc["id"] == f"{base(server)}/ap/ok"
