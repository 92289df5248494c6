"""The node's aiohttp application: routes, error mapping, security headers, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from fedpetition.core.errors import FedPetitionError, RemoteProtocolError
from fedpetition.node.errors import MailError, StorageError
from fedpetition.node.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from fedpetition.node.service import InputError, Node, RateLimited

log = logging.getLogger("fedpetition.http")

NODE: web.AppKey[Node] = web.AppKey("node", Node)
HOUSEKEEPING_SECONDS = 600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Pages link nothing from elsewhere and are never framed by other sites; links
# carry secret tokens, so no Referer may leave the page.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                "script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "interest-cohort=()",
}


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", "")


def error_code(error: RemoteProtocolError) -> str:
    """A stable name for what a peer did wrong: the error class, in snake case.

    ``BadSignatureError`` is ``bad_signature``, ``OriginError`` is ``origin``; plain
    decoding errors are ``invalid``.
    """
    name = type(error).__name__.removesuffix("Error")
    if name in ("RemoteProtocol", "Decode", ""):
        return "invalid"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def json_error(status: int, code: str, message: str, **extra: object) -> web.Response:
    body = {"error": code, "message": message, **{k: v for k, v in extra.items() if v}}
    return web.json_response(body, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Our errors become 4xx with a JSON body (or an error page); nothing leaks."""
    try:
        return await handler(request)
    except RateLimited as e:
        response = _error_response(request, e.status, e.code, str(e), e.field)
        response.headers["Retry-After"] = str(e.retry_after)
        return response
    except InputError as e:
        return _error_response(request, e.status, e.code, str(e), e.field)
    except RemoteProtocolError as e:
        return _error_response(request, e.status, error_code(e), str(e), None)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            e.status, "invalid")
        return _error_response(request, e.status, code, e.reason, None)
    except StorageError as e:
        if e.status >= 500:
            log.warning("storage unavailable: %s", e)
            response = _error_response(request, e.status, "unavailable",
                                       "the node's database is unavailable; try again later",
                                       None)
            response.headers["Retry-After"] = "5"
            return response
        return _error_response(request, e.status, "invalid", str(e), None)
    except MailError as e:
        # The mail server is away: nothing is lost (signing again resends the link).
        log.warning("mail not sent: %s", e)
        response = _error_response(request, 503, "mail_unavailable",
                                   "the confirmation mail could not be sent; try again later",
                                   None)
        response.headers["Retry-After"] = "60"
        return response
    except FedPetitionError:
        log.exception("request failed")  # our own bug: messages hold no personal data
        return json_error(500, "internal", "internal error")
    except OSError as e:
        # aiohttp's static files look the requested name up as is: a name longer
        # than the file system allows names no file.
        if e.errno != errno.ENAMETOOLONG:
            raise
        return _error_response(request, 404, "not_found", "Not Found", None)


def _error_response(request: web.Request, status: int, code: str, message: str,
                    field: str | None) -> web.Response:
    render = request.app.get(ERROR_PAGE)
    if render is not None and not wants_json(request):
        return render(request, status, code, message)
    return json_error(status, code, message, field=field)


ERROR_PAGE: web.AppKey[Callable[[web.Request, int, str, str], web.Response]] = web.AppKey(
    "error_page")


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route template (never the path: it can hold tokens)."""
    response = await handler(request)
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    request.app[NODE].metrics.requests.labels(request.method, route,
                                              str(response.status)).inc()
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    framable = "frame-ancestors *" in response.headers.get("Content-Security-Policy", "")
    for name, value in SECURITY_HEADERS.items():
        if framable and name in ("X-Frame-Options", "Cross-Origin-Opener-Policy"):
            continue  # a page made to be embedded (its own CSP says so)
        response.headers.setdefault(name, value)
    return response


async def _background(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    await node.start()

    async def housekeeping() -> None:
        while True:
            try:
                await node.housekeeping()
            except Exception:  # a database restart, say: try again next time
                log.exception("housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    tasks = [asyncio.create_task(node.sequencer.run(), name="sequencer"),
             asyncio.create_task(housekeeping(), name="housekeeping")]
    if node.federation is not None:
        await node.federation.start()
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if node.federation is not None:
        await node.federation.close()
    # Whatever was confirmed but not yet sequenced stays queued in storage.
    await node.mailer.close()
    await node.storage.close()


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (fedpetition.node.metrics): no personal data."""
    node = request.app[NODE]
    return web.Response(body=await node.metrics.render(node),
                        headers={"Content-Type": METRICS_CONTENT_TYPE})


def make_app(node: Node, *, background: bool = True) -> web.Application:
    from fedpetition.node.routes import api, federation, logfiles, pages

    app = web.Application(middlewares=[count_requests, security_headers, errors],
                          client_max_size=node.config.limits.max_body_bytes)
    app[NODE] = node
    app.router.add_get("/metrics", metrics)
    api.setup(app)
    logfiles.setup(app)
    if node.federation is not None:
        federation.setup(app)
    pages.setup(app)
    if background:
        app.cleanup_ctx.append(_background)
    return app

