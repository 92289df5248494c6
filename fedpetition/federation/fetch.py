"""Outbound HTTP client for node-to-node traffic, guarded against SSRF.

Nodes fetch each other's ActivityPub-style documents and tlog files with a
:class:`Fetcher`. Every URL is checked before any connection is made:

* scheme ``https``; ``http`` only when ``allow_loopback`` is set (the development
  setting for local federations and tests; it is off by default, so production
  traffic is https only);
* no userinfo (``user:pass@``), a non-empty host without a trailing dot, no IPv6
  zone, no legacy numeric IPv4 form (``2130706433``, ``127.1``, ``0x7f.1``), and a
  port in 1..65535;
* the host is resolved here, once per request (``loop.getaddrinfo``), and refused
  if **any** resolved address is not a global unicast address (see
  :func:`forbidden_reason`): private, loopback, link-local, multicast, reserved,
  unspecified, 0.0.0.0/8, 100.64.0.0/10 (CGNAT), IPv6 site-local and unique-local,
  and the IPv4 inside IPv4-mapped, 6to4 and NAT64 (64:ff9b::/96) addresses. With
  ``allow_loopback`` set, loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) is
  allowed; every other non-global range stays refused.
* aiohttp then connects to exactly those validated addresses: the session's
  connector uses a resolver (:class:`PinnedResolver`) that answers only from the
  addresses pinned for the request in flight and never resolves by itself, and
  the DNS cache is off. The Host header and TLS SNI/certificate check use the name.
  So there is no DNS rebinding window between the check and the connection.

Redirects are followed by hand for GET (at most :data:`MAX_REDIRECTS`); each must
stay on the same origin (scheme, host, port) and passes the address policy again.
POST follows none. The body is read in chunks and refused once it exceeds
``max_bytes`` (after content decoding, so compressed bombs are caught too); one
``timeout`` covers the whole call, resolution, redirects and body included.
Cookies are never stored; proxies from the environment are ignored.

:meth:`Fetcher.get_activity` additionally requires an ActivityPub content type, a
JSON object, and that its ``id`` is the URL it was fetched by.

Errors (messages name the host and the reason, never response bodies)::

    RemoteProtocolError
    └── FetchError               network failure (502), timeout (504), non-2xx answer
        │                        (502, the peer's code in ``remote_status``)
        ├── ForbiddenAddressError  URL or resolved address refused by policy (400)
        ├── TooLargeError          body over ``max_bytes`` (502)
        ├── RedirectError          cross-origin, too many, or malformed redirect (502)
        ├── ContentTypeError       not an ActivityPub content type (502)
        └── OriginMismatchError    document ``id`` is not the URL fetched (502)

A body that is not a JSON object raises :class:`fedpetition.core.errors.DecodeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import json
import re
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
from yarl import URL

from fedpetition.core.errors import DecodeError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "ACTIVITY_ACCEPT",
    "MAX_REDIRECTS",
    "ContentTypeError",
    "FetchError",
    "Fetched",
    "Fetcher",
    "ForbiddenAddressError",
    "OriginMismatchError",
    "PinnedResolver",
    "RedirectError",
    "TooLargeError",
    "forbidden_reason",
    "is_activity_content_type",
    "parse_retry_after",
]

ACTIVITY_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
)
AS_PROFILE = "https://www.w3.org/ns/activitystreams"
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
ERROR_BODY_BYTES = 512  # kept from a non-2xx answer (FetchError.body)
MAX_RETRY_AFTER = 7 * 86400
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --------------------------------------------------------------------- errors


class FetchError(RemoteProtocolError):
    """An outbound fetch failed: network, timeout, or a non-2xx answer.

    ``host`` is the host concerned; ``remote_status`` the peer's HTTP status when it
    answered with a non-2xx code (``None`` otherwise). ``status`` is what a server
    maps the failure to: 502 by default, 504 for a timeout. For a non-2xx answer,
    ``retry_after`` is its ``Retry-After`` in seconds (delta-seconds or HTTP-date,
    ``None`` if absent or unparsable) and ``body`` its first bytes (at most
    :data:`ERROR_BODY_BYTES`): protocols such as tlog-witness answer a conflict
    with a small body the client needs. Neither ever appears in the message.
    """

    status = 502

    def __init__(
        self,
        host: str,
        reason: str,
        *,
        status: int | None = None,
        remote_status: int | None = None,
        retry_after: int | None = None,
        body: bytes = b"",
    ) -> None:
        self.host = host
        self.reason = reason
        self.remote_status = remote_status
        self.retry_after = retry_after
        self.body = body
        super().__init__(f"{host}: {reason}", status=status)


class ForbiddenAddressError(FetchError):
    """The URL or an address its host resolves to is refused (SSRF guard)."""

    status = 400


class TooLargeError(FetchError):
    """The response body exceeds the size limit."""


class RedirectError(FetchError):
    """A redirect left the origin, was malformed, or there were too many."""


class ContentTypeError(FetchError):
    """The response does not carry an acceptable content type."""


class OriginMismatchError(FetchError):
    """The fetched document's ``id`` is not the URL it was fetched by."""


# ------------------------------------------------------------- address policy


def forbidden_reason(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why ``address`` (an IP address string) may not be connected to, or ``None``.

    Only global unicast addresses pass. ``allow_loopback`` additionally lets
    127.0.0.0/8, ``::1`` and their IPv4-mapped form through, nothing else.
    """
    if "%" in address:
        return "scoped (zone) IPv6"
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            inner = forbidden_reason(str(embedded), allow_loopback=False)
            return None if inner is None else f"NAT64 of {inner}"
        elif ip.sixtofour is not None:
            inner = forbidden_reason(str(ip.sixtofour), allow_loopback=False)
            return None if inner is None else f"6to4 of {inner}"
        elif ip.teredo is not None:
            return "Teredo"
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _THIS_NETWORK:
            return "this-network (0.0.0.0/8)"
        if ip in _SHARED:
            return "shared (CGNAT)"
    elif ip.is_site_local:
        return "site-local"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-global"
    return None


class PinnedResolver(AbstractResolver):
    """An aiohttp resolver that only hands out addresses validated beforehand.

    :class:`Fetcher` pins the checked addresses for ``(host, port)`` around each
    request; aiohttp's connector asks this resolver and gets exactly those. A host
    that is not pinned fails to resolve: nothing is ever looked up here.
    """

    def __init__(self) -> None:
        self._pins: dict[tuple[str, int], tuple[list[ResolveResult], int]] = {}

    @contextlib.contextmanager
    def pinned(self, host: str, port: int, results: list[ResolveResult]) -> Iterator[None]:
        """Pin ``results`` for ``(host, port)`` for the duration of the block.

        Concurrent requests to the same host share the pin (each set has passed the
        same policy); it is removed when the last of them leaves.
        """
        key = (host, port)
        _, count = self._pins.get(key, ([], 0))
        self._pins[key] = (list(results), count + 1)
        try:
            yield
        finally:
            current, count = self._pins[key]
            if count <= 1:
                del self._pins[key]
            else:
                self._pins[key] = (current, count - 1)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pin = self._pins.get((host, port))
        if pin is None:
            raise OSError(f"{host}: address not pre-validated")
        results = [r for r in pin[0] if family in (socket.AF_UNSPEC, r["family"])]
        if not results:
            raise OSError(f"{host}: no pre-validated address of the requested family")
        return results

    async def close(self) -> None:
        self._pins.clear()


# -------------------------------------------------------------------- fetcher


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful (2xx) response: the final URL, status, Content-Type and body."""

    url: str
    status: int
    content_type: str
    body: bytes


def _parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    parts = value.split(";")
    media = parts[0].strip().lower()
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, val = part.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params[name.strip().lower()] = val
    return media, params


def parse_retry_after(value: str | None, now: float | None = None) -> int | None:
    """``Retry-After`` (RFC 9110 §10.2.3) in seconds from now, bounded; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0, min(int(delta), MAX_RETRY_AFTER))


def is_activity_content_type(value: str) -> bool:
    """``application/activity+json``, or ``application/ld+json`` with the AS profile."""
    media, params = _parse_media_type(value)
    if media == "application/activity+json":
        return True
    if media == "application/ld+json":
        return AS_PROFILE in params.get("profile", "").split()
    return False


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.raw_host or "").lower(), url.port)


class Fetcher:
    """SSRF-guarded outbound HTTP client; one :class:`aiohttp.ClientSession` each.

    Use as ``async with Fetcher(user_agent=...) as f:`` or call :meth:`close`. The
    session is created on first use, inside the running event loop.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        timeout: float = 10,
        max_bytes: int = 1 << 20,
        user_agent: str,
    ) -> None:
        if timeout <= 0 or max_bytes <= 0:
            raise LocalProtocolError("timeout and max_bytes must be positive")
        self.allow_loopback = allow_loopback
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self._resolver = PinnedResolver()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session and its connections; the Fetcher is unusable after."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise LocalProtocolError("Fetcher is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    # ---- policy

    def _check_url(self, url: URL) -> tuple[str, int]:
        """Static URL checks; returns (host, port)."""
        host = url.raw_host
        label = host or "(no host)"
        if not url.absolute or not host:
            raise ForbiddenAddressError(label, "URL is not absolute or has no host")
        if url.scheme not in ("http", "https"):
            raise ForbiddenAddressError(host, f"scheme {url.scheme!r} not allowed")
        if url.scheme == "http" and not self.allow_loopback:
            raise ForbiddenAddressError(host, "plain http not allowed (https only)")
        if url.raw_user is not None or url.raw_password is not None:
            raise ForbiddenAddressError(host, "userinfo in URL not allowed")
        port = url.port
        if port is None or not 1 <= port <= 65535:
            raise ForbiddenAddressError(host, "port out of range")
        if host.endswith("."):
            raise ForbiddenAddressError(host, "trailing dot in host name not allowed")
        if "%" in host:
            raise ForbiddenAddressError(host, "scoped (zone) IPv6 address not allowed")
        return host, port

    async def _resolve(self, host: str, port: int) -> list[ResolveResult] | None:
        """Validate the host's addresses. ``None`` for an IP literal (no resolution)."""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            if literal.version == 4 and str(literal) != host:
                raise ForbiddenAddressError(host, "non-canonical IPv4 address")
            reason = forbidden_reason(host, allow_loopback=self.allow_loopback)
            if reason is not None:
                raise ForbiddenAddressError(host, f"{reason} address not allowed")
            return None
        if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
            raise ForbiddenAddressError(host, "non-canonical numeric address")

        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as exc:
            raise FetchError(host, "cannot resolve host") from exc
        results: list[ResolveResult] = []
        seen: set[tuple[int, str]] = set()
        for family, _type, proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                raise ForbiddenAddressError(host, "resolves to a non-IP address")
            address = str(sockaddr[0])
            reason = forbidden_reason(address, allow_loopback=self.allow_loopback)
            if reason is not None:
                raise ForbiddenAddressError(
                    host, f"resolves to {address}, a {reason} address, not allowed"
                )
            if (family, address) in seen:
                continue
            seen.add((family, address))
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise FetchError(host, "host has no address")
        return results

    # ---- requests

    async def get(
        self, url: str, *, accept: str, headers: Mapping[str, str] | None = None
    ) -> Fetched:
        """GET ``url``; same-origin redirects followed (at most :data:`MAX_REDIRECTS`)."""
        return await self._request("GET", url, accept=accept, headers=headers, data=None)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Fetched:
        """POST ``body`` to ``url``; no redirect is followed (a 3xx is a RedirectError)."""
        return await self._request("POST", url, accept=None, headers=headers, data=body)

    async def get_activity(
        self, url: str, *, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """GET an ActivityPub document and check its content type and ``id``.

        The ``id`` must equal ``url`` without its fragment, character for character,
        or the (same-origin) final URL after redirects, as normalised by yarl.
        """
        fetched = await self.get(url, accept=ACTIVITY_ACCEPT, headers=headers)
        host = URL(fetched.url).raw_host or ""
        if not is_activity_content_type(fetched.content_type):
            shown = fetched.content_type[:100] or "none"
            raise ContentTypeError(host, f"content type {shown!r} is not ActivityPub")
        try:
            doc = json.loads(fetched.body)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"{host}: document is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise DecodeError(f"{host}: document is not a JSON object")
        expected = {url.split("#", 1)[0], fetched.url}
        doc_id = doc.get("id")
        if not isinstance(doc_id, str) or doc_id not in expected:
            raise OriginMismatchError(host, "document id is not the URL it was fetched by")
        return doc

    async def _request(
        self,
        method: str,
        url: str,
        *,
        accept: str | None,
        headers: Mapping[str, str] | None,
        data: bytes | None,
    ) -> Fetched:
        session = self._get_session()
        try:
            target = URL(url)
        except (ValueError, TypeError) as exc:
            raise ForbiddenAddressError("(unparsable)", "malformed URL") from exc
        send: CIMultiDict[str] = CIMultiDict({"User-Agent": self.user_agent})
        if accept is not None:
            send["Accept"] = accept
        if headers:
            send.update(headers)
        host = target.raw_host or "(no host)"
        try:
            async with asyncio.timeout(self.timeout):
                for _hop in range(MAX_REDIRECTS + 1):
                    target = target.with_fragment(None)
                    host, port = self._check_url(target)
                    results = await self._resolve(host, port)
                    next_target = await self._send(
                        session, method, target, host, port, results, send, data
                    )
                    if isinstance(next_target, Fetched):
                        return next_target
                    target = next_target
                raise RedirectError(host, f"more than {MAX_REDIRECTS} redirects")
        except TimeoutError as exc:
            raise FetchError(host, "timed out", status=504) from exc
        except aiohttp.ClientError as exc:
            raise FetchError(host, f"connection failed ({type(exc).__name__})") from exc

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        target: URL,
        host: str,
        port: int,
        results: list[ResolveResult] | None,
        headers: CIMultiDict[str],
        data: bytes | None,
    ) -> Fetched | URL:
        """One request; a :class:`Fetched`, or the next URL of a same-origin redirect."""
        pin = (
            self._resolver.pinned(host, port, results)
            if results is not None
            else contextlib.nullcontext()
        )
        with pin:
            async with session.request(
                method, target, headers=headers, data=data, allow_redirects=False
            ) as resp:
                if resp.status in _REDIRECT_STATUSES:
                    return self._redirect_target(method, target, host, resp)
                if not 200 <= resp.status < 300:
                    try:
                        head = await resp.content.read(ERROR_BODY_BYTES)
                    except (TimeoutError, aiohttp.ClientError):
                        head = b""
                    raise FetchError(
                        host,
                        f"answered HTTP {resp.status}",
                        remote_status=resp.status,
                        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                        body=head,
                    )
                body = await self._read_limited(resp, host)
                return Fetched(
                    url=str(resp.url.with_fragment(None)),
                    status=resp.status,
                    content_type=resp.headers.get("Content-Type", ""),
                    body=body,
                )

    def _redirect_target(
        self, method: str, target: URL, host: str, resp: aiohttp.ClientResponse
    ) -> URL:
        if method != "GET":
            raise RedirectError(host, f"{method} answered with a redirect ({resp.status})")
        location = resp.headers.get("Location")
        if not location:
            raise RedirectError(host, "redirect without Location")
        try:
            nxt = target.join(URL(location))
        except (ValueError, TypeError) as exc:
            raise RedirectError(host, "malformed redirect Location") from exc
        if _origin(nxt) != _origin(target):
            raise RedirectError(host, "redirect to another origin refused")
        return nxt

    async def _read_limited(self, resp: aiohttp.ClientResponse, host: str) -> bytes:
        length = resp.content_length
        if length is not None and length > self.max_bytes:
            resp.close()
            raise TooLargeError(host, f"body of {length} bytes exceeds {self.max_bytes}")
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            buf += chunk
            if len(buf) > self.max_bytes:
                resp.close()
                raise TooLargeError(host, f"body exceeds {self.max_bytes} bytes")
        return bytes(buf)
