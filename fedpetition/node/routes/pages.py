"""The node's HTML pages: petitions, signing, the signer's page, privacy, organisers.

Server-rendered, no JavaScript, every sentence from :mod:`fedpetition.node.i18n`.
GET shows and POST acts: confirming, withdrawing, erasing and closing happen only
on a POST carrying the CSRF token (a double-submit cookie), since mail scanners
follow the links in mails.
"""

from __future__ import annotations

import hmac
import html
import itertools
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from aiohttp.web_urldispatcher import SystemRoute
from markupsafe import Markup
from multidict import MultiDictProxy

from fedpetition.core.documents import PetitionVersion
from fedpetition.node import i18n, svg
from fedpetition.node.app import ERROR_PAGE, NODE, json_error
from fedpetition.node.routes.api import RECEIPT_TYPE
from fedpetition.node.service import (
    SESSION_SECONDS,
    InputError,
    Node,
    PetitionView,
    SignatureForm,
)
from fedpetition.node.storage import Organiser
from fedpetition.node.storage.base import CONFIRMED, COUNTED, PENDING, WITHDRAWING

log = logging.getLogger("fedpetition.pages")
PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"

CSRF_COOKIE = "fp_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE = "fp_session"
LANG_COOKIE = "lang"
YEAR = 365 * 24 * 3600
REFRESH_SECONDS = 2
MAX_RECEIPT = 64 << 10  # bytes of an uploaded receipt (they are about 1.5 KB)
# The embeddable counter may be framed by any site (the other pages by none).
EMBED_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
             "form-action 'none'; frame-ancestors *; base-uri 'none'")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,100}")

JINJA: web.AppKey[jinja2.Environment] = web.AppKey("jinja", jinja2.Environment)
FormData = MultiDictProxy[Any]


# --------------------------------------------------------------------------- rendering


def _languages(node: Node) -> tuple[str, ...]:
    """The languages pages are offered in, the node's default first."""
    spoken = tuple(lang for lang in node.config.node.languages if lang in i18n.LANGUAGES)
    return spoken or i18n.LANGUAGES


def request_language(request: web.Request) -> str:
    """``?lang=`` wins, then the ``lang`` cookie, then Accept-Language, then the default."""
    available = _languages(request.app[NODE])
    for choice in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if choice in available:
            assert choice is not None
            return choice
    preferred = i18n.from_accept_language(request.headers.get("Accept-Language"))
    return i18n.pick([*preferred, available[0]], available)


def translator(lang: str) -> Callable[..., str]:
    def t(key: str, **values: object) -> str:
        return i18n.t(lang, key, **values)

    return t


def format_number(lang: str, value: int) -> str:
    return f"{value:,}".replace(",", i18n.t(lang, "format.thousands"))


def _parts(timestamp: int) -> dict[str, int]:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
        "minute": moment.minute,
    }


def format_date(lang: str, timestamp: int) -> str:
    return i18n.t(lang, "format.date", **_parts(timestamp))


def format_datetime(lang: str, timestamp: int) -> str:
    return i18n.t(lang, "format.datetime", **_parts(timestamp))


def shown_language(version: PetitionVersion, lang: str) -> str:
    """The language a version is shown in: the page's if it has it, else its first."""
    return lang if lang in version.languages else version.languages[0]


def language_name(code: str) -> str:
    """A language's name in itself ("Français", "English"), or its tag if unknown."""
    return i18n.t(code, "lang.name") if code in i18n.LANGUAGES else code


def paragraphs(text: str) -> Markup:
    """Plain text as escaped paragraphs: blank lines split them, newlines break lines."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(block.splitlines())) for block in blocks
    )


class _Csrf:
    """The double-submit token: the cookie's value, or a new one sent if a form uses it."""

    def __init__(self, cookie: str | None) -> None:
        self.new = cookie is None or not _TOKEN.fullmatch(cookie)
        self.value = secrets.token_urlsafe(32) if self.new or cookie is None else cookie
        self.used = False

    def field(self) -> Markup:
        self.used = True
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, self.value)


def _set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    path: str = "/",
    samesite: str = "Strict",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite=samesite,
        secure=request.app[NODE].config.security.cookie_secure,
    )


def _here(request: web.Request, here: str | None) -> str:
    """The GET page the language switch links to (a POST's result links to its form page)."""
    path = here or (request.path if request.method in ("GET", "HEAD") else "/")
    return "/" + path.lstrip("/\\")  # never "//host": the link stays on this node


def render(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    here: str | None = None,
    private: bool = False,
    refresh: int | None = None,
    **context: Any,
) -> web.Response:
    """Render ``template`` with the common context; set the language and CSRF cookies.

    ``private`` pages (tokens, personal data) and pages with a form are never cached;
    ``refresh`` reloads the page after that many seconds (no script needed).
    """
    node = request.app[NODE]
    lang = request_language(request)
    csrf = _Csrf(request.cookies.get(CSRF_COOKIE))
    common: dict[str, Any] = {
        "lang": lang,
        "t": translator(lang),
        "node": node.name,
        "here": _here(request, here),
        "languages": [(code, i18n.t(code, "lang.name")) for code in _languages(node)],
        "number": lambda value: format_number(lang, value),
        "date": lambda value: format_date(lang, value),
        "datetime": lambda value: format_datetime(lang, value),
        "shown": lambda version: shown_language(version, lang),
        "language_name": language_name,
        "csrf_field": csrf.field,
        "refresh": refresh,
    }
    html = request.app[JINJA].get_template(template).render({**context, **common})
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    if request.query.get("lang") == lang:
        _set_cookie(request, response, LANG_COOKIE, lang, max_age=YEAR, samesite="Lax")
    if csrf.used and csrf.new:
        _set_cookie(request, response, CSRF_COOKIE, csrf.value)
    response.headers["Cache-Control"] = "no-store" if private or csrf.used else "no-cache"
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


def redirect(location: str) -> web.Response:
    """A 303 as a response (not raised), so the middlewares still add their headers."""
    return web.Response(status=303, headers={"Location": location})


def error_page(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """The app's error page, in the request's language (``message`` is for logs and APIs).

    Only pages (and paths matching no route) get HTML: the published log files and
    other machine endpoints keep their JSON errors.
    """
    route = request.match_info.route
    if not isinstance(route, SystemRoute) and route.handler not in _PAGE_HANDLERS:
        return json_error(status, code, message)
    key = f"error.{code}"
    if code == "invalid" or key not in i18n.MESSAGES[i18n.DEFAULT]:
        key = "page.error.generic"
    return render(
        request, "error.html", status=status, private=True, status_code=status, message_key=key
    )


def field_error(error: InputError) -> str:
    """The catalogue key explaining a refused field."""
    if error.status == 409 and error.field == "slug":
        return "form.error.slug_taken"
    key = f"form.error.{error.field}"
    return key if key in i18n.MESSAGES[i18n.DEFAULT] else "form.error.invalid"


# --------------------------------------------------------------------------- forms


async def read_form(request: web.Request, *, multipart: bool = False) -> FormData:
    """The posted form, after checking its CSRF token against the cookie (else 403).

    ``multipart`` forms (a file upload) may also be sent as multipart/form-data."""
    allowed = {"application/x-www-form-urlencoded"} | (
        {"multipart/form-data"} if multipart else set())
    if request.content_type not in allowed:
        raise InputError("send the page's form", status=415, code="unsupported_media_type")
    data = await request.post()
    sent = data.get(CSRF_FIELD)
    cookie = request.cookies.get(CSRF_COOKIE)
    if (
        not isinstance(sent, str)
        or not sent
        or not cookie
        or not hmac.compare_digest(sent.encode(), cookie.encode())
    ):
        raise InputError("the form's security token is missing or wrong", status=403, code="csrf")
    return data


def form_value(data: FormData, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------- public pages


async def index(request: web.Request) -> web.Response:
    node = request.app[NODE]
    now = node.clock()
    views = sorted(await node.petitions(), key=lambda view: not view.is_open(now))
    return render(request, "index.html", petitions=views, now=now)


def _chart(view: PetitionView, lang: str) -> tuple[Markup, str]:
    """The count chart and its text summary ("" when nothing was counted yet)."""
    series = view.log.stats.series()
    if not series:
        return Markup(""), ""
    summary = i18n.t(
        lang,
        "chart.summary",
        start=format_date(lang, series[0][0]),
        end=format_datetime(lang, series[-1][0] + svg.HOUR),
        count=format_number(lang, series[-1][1]),
        peak=format_number(lang, max(count for _, count in series)),
    )
    chart = svg.count_chart(
        series,
        title=i18n.t(lang, "chart.title"),
        desc=summary,
        date_label=lambda value: format_date(lang, value),
        number_label=lambda value: format_number(lang, value),
    )
    return Markup(chart), summary


def _petition(
    request: web.Request,
    view: PetitionView,
    *,
    status: int = 200,
    values: Mapping[str, object] | None = None,
    errors: Mapping[str, str] | None = None,
) -> web.Response:
    node = request.app[NODE]
    slug = view.record.slug
    thresholds = view.latest.thresholds
    chart, summary = _chart(view, request_language(request))
    bundle = node.url(f"/petitions/{slug}/bundle.zip")
    federation = node.federation
    federated = _federated(request, view)
    hosts = None
    verify_command = f"fedpetition verify {bundle}"
    if federation is not None and federated is not None:
        hosts = {h.name: federation.peers.base_of(h.name) + "/" for h in view.roster.hosts}
        verify_command = f"fedpetition verify {federation.petition_url(view.record)}"
    # Thresholds are the petition's, so progress is measured on the federated count.
    progress, _ = _shown_count(view, federated)
    return render(
        request,
        "petition.html",
        status=status,
        here=f"/p/{slug}",
        view=view,
        now=node.clock(),
        chart=chart,
        chart_summary=summary,
        next_threshold=next((n for n in thresholds if n > progress), None),
        progress=progress,
        reached=view.log.stats.thresholds_reached(thresholds),
        regions=view.log.stats.regions(),
        bundle=bundle if federated is None else None,
        verify_command=verify_command,
        embed_snippet=_embed_snippet(node, view, request_language(request)),
        federated=federated,
        host_links=hosts,
        values=values or {},
        errors=errors or {},
    )


async def petition_page(request: web.Request) -> web.Response:
    view = await request.app[NODE].petition(request.match_info["slug"])
    return _petition(request, view)


def _embed_snippet(node: Node, view: PetitionView, lang: str) -> str:
    """The HTML other sites paste to show the counter (as text: the page escapes it
    once more when it shows it)."""
    slug = view.record.slug
    title = html.escape(view.latest.title[shown_language(view.latest, lang)], quote=True)
    embed = html.escape(node.url(f"/p/{slug}/embed"), quote=True)
    badge_url = html.escape(node.url(f"/p/{slug}/badge.svg"), quote=True)
    return (f'<iframe src="{embed}" title="{title}" width="320" height="160"></iframe>\n'
            f'<img src="{badge_url}" alt="{title}">')


def _federated(request: web.Request, view: PetitionView) -> dict[str, Any] | None:
    """The federated count as this node knows it, for a petition whose count spans
    other nodes' logs; None for one counted here alone."""
    federation = request.app[NODE].federation
    return federation.summary(view) if federation is not None and view.federated else None


def _shown_count(view: PetitionView, federated: Mapping[str, Any] | None) -> tuple[int, bool]:
    """The count shown, and whether it is the whole petition's: the federated count once
    known; until then this node's, which is a lower bound."""
    if federated is None:
        return view.count, True
    total = federated["total"]
    return (int(total), True) if total is not None else (view.count, False)


def _count(request: web.Request, view: PetitionView) -> tuple[int, bool]:
    """The count shown to other sites (:func:`_shown_count`)."""
    return _shown_count(view, _federated(request, view))


async def check_page(request: web.Request) -> web.Response:
    """Verify this count: the verifier's steps, run by this node on the published logs."""
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    federation = node.federation
    if federation is None:
        raise InputError("this node does not verify petitions", status=404, code="not_found")
    state = federation.verification(view)
    return render(
        request, "check.html", view=view, report=state.report, finished=state.finished or 0,
        running=state.running, refresh=REFRESH_SECONDS if state.running else None,
        command=f"fedpetition verify {federation.petition_url(view.record)}")


async def receipt_check_page(request: web.Request) -> web.Response:
    return render(request, "receipt_check.html", results=None, missing=False)


async def receipt_check(request: web.Request) -> web.Response:
    """Check an uploaded receipt; nothing of it is kept (it holds a name and an email)."""
    data = await read_form(request, multipart=True)
    upload = data.get("receipt")
    content = upload.file.read(MAX_RECEIPT + 1) if isinstance(upload, FileField) else b""
    if not content:
        return render(request, "receipt_check.html", status=400, results=None, missing=True,
                      private=True)
    if len(content) > MAX_RECEIPT:
        raise InputError("a receipt is a few kilobytes", status=413, code="too_large")
    results = await request.app[NODE].check_receipt(content)
    return render(request, "receipt_check.html", results=results, missing=False, private=True)


async def embed_page(request: web.Request) -> web.Response:
    """The counter other sites put in an iframe: the count, progress, a link to sign."""
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    total, complete = _count(request, view)
    response = render(
        request, "embed.html", view=view, total=total, complete=complete,
        next_threshold=next((n for n in view.latest.thresholds if n > total), None),
        petition_url=node.url(f"/p/{view.record.slug}"))
    response.headers["Content-Security-Policy"] = EMBED_CSP
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


async def badge(request: web.Request) -> web.Response:
    """The count as an SVG image other sites can show."""
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    lang = request_language(request)
    title = view.latest.title[shown_language(view.latest, lang)]
    total, complete = _count(request, view)
    shown = format_number(lang, total) if complete else "≥ " + format_number(lang, total)
    body = svg.badge(i18n.t(lang, "embed.count"), shown, title)
    return web.Response(text=body, content_type="image/svg+xml", charset="utf-8", headers={
        "Cache-Control": "public, max-age=60", "Vary": "Accept-Language, Cookie",
        "Content-Security-Policy": "default-src 'none'",
        "Cross-Origin-Resource-Policy": "cross-origin"})


async def version_page(request: web.Request) -> web.Response:
    view = await request.app[NODE].petition(request.match_info["slug"])
    number = request.match_info["number"]
    if not number.isdigit() or not 1 <= int(number) <= len(view.versions):
        raise InputError("no such version", status=404, code="not_found")
    return render(request, "version.html", view=view, version=view.versions[int(number) - 1])


async def sign(request: web.Request) -> web.Response:
    node = request.app[NODE]
    slug = request.match_info["slug"]
    data = await read_form(request)
    values = {name: form_value(data, name) for name in ("name", "email", "region")}
    consents = {name: form_value(data, name) == "yes" for name in ("updates", "addressee")}
    errors = {name: f"form.error.{name}" for name in ("name", "email") if not values[name].strip()}
    if not errors:
        form = SignatureForm(
            values["name"],
            values["email"],
            values["region"].strip() or None,
            language=request_language(request),
            **consents,
        )
        try:
            await node.sign(slug, form, request.remote or "unknown")
        except InputError as e:
            if e.field is None:
                raise
            errors = {e.field: field_error(e)}
    if errors:
        view = await node.petition(slug)
        return _petition(request, view, status=400, values={**values, **consents}, errors=errors)
    # The same answer whether or not this address had signed: nothing is revealed.
    return render(
        request, "sent.html", here=f"/p/{slug}", private=True, kind="sign", back=f"/p/{slug}"
    )


# --------------------------------------------------------------------------- the signer's page


async def signer_page(request: web.Request) -> web.Response:
    node = request.app[NODE]
    token = request.match_info["token"]
    view = await node.signer_view(token)
    record = view.signature
    expired = (
        record.status == PENDING and record.expires is not None and record.expires <= node.now()
    )
    return render(
        request,
        "signer.html",
        private=True,
        signer=view,
        token=token,
        expired=expired,
        receipt_command="fedpetition verify-receipt receipt.fpr",
        refresh=REFRESH_SECONDS if record.status in (CONFIRMED, WITHDRAWING) else None,
    )


async def confirm(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    await read_form(request)
    await request.app[NODE].confirm(token, request.remote or "unknown")
    return redirect(f"/s/{token}")


async def withdraw_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    view = await request.app[NODE].signer_view(token)
    if view.signature.status not in (CONFIRMED, COUNTED):
        return redirect(f"/s/{token}")
    return render(
        request,
        "confirm.html",
        private=True,
        kind="withdraw",
        action=f"/s/{token}/withdraw",
        back=f"/s/{token}",
    )


async def withdraw(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    await read_form(request)
    await request.app[NODE].withdraw(token)
    return redirect(f"/s/{token}")


async def receipt(request: web.Request) -> web.Response:
    data = await request.app[NODE].receipt(request.match_info["token"])
    if data is None:
        raise InputError("the signature is not in the log yet", status=409, code="not_yet")
    return web.Response(
        body=data,
        content_type=RECEIPT_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="receipt.fpr"',
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------- privacy


def _privacy(
    request: web.Request,
    *,
    status: int = 200,
    email: str = "",
    errors: Mapping[str, str] | None = None,
) -> web.Response:
    config = request.app[NODE].config
    return render(
        request,
        "privacy.html",
        status=status,
        here="/privacy",
        private=bool(email),
        values={"email": email},
        errors=errors or {},
        pending_hours=config.limits.pending_expiry_hours,
        retention_days=config.retention.days_after_close,
    )


async def privacy_page(request: web.Request) -> web.Response:
    return _privacy(request)


async def privacy_request(request: web.Request) -> web.Response:
    data = await read_form(request)
    email = form_value(data, "email")
    try:
        if not email.strip():
            raise InputError("email is required", field="email")
        await request.app[NODE].privacy_request(
            email, request.remote or "unknown", request_language(request)
        )
    except InputError as e:
        if e.field is None:
            raise
        return _privacy(request, status=400, email=email, errors={"email": field_error(e)})
    return render(
        request, "sent.html", here="/privacy", private=True, kind="privacy", back="/privacy"
    )


async def privacy_token_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    data = await request.app[NODE].privacy_export(token)
    return render(request, "privacy_token.html", private=True, token=token, data=data)


async def privacy_export(request: web.Request) -> web.Response:
    data = await request.app[NODE].privacy_export(request.match_info["token"])
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=2) + "\n",
        content_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="fedpetition-data.json"',
            "Cache-Control": "no-store",
        },
    )


async def erase_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    await request.app[NODE].privacy_export(token)  # a bad or expired link fails here
    return render(
        request,
        "confirm.html",
        private=True,
        kind="erase",
        action=f"/privacy/{token}/erase",
        back=f"/privacy/{token}",
    )


async def erase(request: web.Request) -> web.Response:
    await read_form(request)
    erased = await request.app[NODE].privacy_erase(request.match_info["token"])
    return render(request, "erased.html", here="/privacy", private=True, erased=erased)


# --------------------------------------------------------------------------- organisers

AdminHandler = Callable[[web.Request, Organiser], Awaitable[web.Response]]


async def current_organiser(request: web.Request) -> Organiser | None:
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return None
    return await request.app[NODE].organiser_for_session(session)


def admin(handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Run ``handler`` for a logged-in organiser; send anyone else to the login page."""

    async def wrapped(request: web.Request) -> web.Response:
        organiser = await current_organiser(request)
        if organiser is None:
            return redirect("/admin/login")
        return await handler(request, organiser)

    return wrapped


async def login_page(request: web.Request) -> web.Response:
    if await current_organiser(request) is not None:
        return redirect("/admin")
    return render(request, "admin_login.html", private=True, values={}, errors={})


async def login(request: web.Request) -> web.Response:
    data = await read_form(request)
    name, password = form_value(data, "name"), form_value(data, "password")
    session = None
    if name and password:
        session = await request.app[NODE].login(name, password, request.remote or "unknown")
    if session is None:
        return render(
            request,
            "admin_login.html",
            status=400,
            private=True,
            values={"name": name},
            errors={"password": "form.error.login"},
        )
    response = redirect("/admin")
    _set_cookie(request, response, SESSION_COOKIE, session, max_age=SESSION_SECONDS, path="/admin")
    return response


async def logout(request: web.Request) -> web.Response:
    await read_form(request)
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        await request.app[NODE].logout(session)
    response = redirect("/")
    response.del_cookie(SESSION_COOKIE, path="/admin")
    return response


@admin
async def admin_list(request: web.Request, organiser: Organiser) -> web.Response:
    node = request.app[NODE]
    return render(
        request,
        "admin_list.html",
        private=True,
        organiser=organiser,
        petitions=await node.petitions(),
        now=node.clock(),
    )


def _datetime_input(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M")


def _parse_deadline(value: str) -> int | None:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _parse_thresholds(value: str) -> list[int] | None:
    """Comma-separated whole numbers, strictly increasing ("1 000" and "1_000" allowed)."""
    numbers = []
    for item in value.split(","):
        digits = re.sub(r"[\s_\u202f]", "", item)
        if not digits:
            continue
        if not digits.isdigit():
            return None
        numbers.append(int(digits))
    if any(n <= 0 for n in numbers) or any(a >= b for a, b in itertools.pairwise(numbers)):
        return None
    return numbers


def _lines(value: str) -> str:
    """A textarea's text with the browser's CRLF line ends made plain newlines."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


@dataclass
class PetitionForm:
    """The organiser's petition form, as typed (so it can be shown again with errors)."""

    offered: Sequence[str]
    slug: str = ""
    languages: list[str] = field(default_factory=list)
    title: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    addressee: str = ""
    deadline: str = ""
    thresholds: str = ""

    @classmethod
    def parse(cls, data: FormData, offered: Sequence[str]) -> PetitionForm:
        chosen = data.getall("languages", [])
        return cls(
            offered=offered,
            slug=form_value(data, "slug").strip(),
            languages=[lang for lang in offered if lang in chosen],
            title={lang: form_value(data, f"title_{lang}").strip() for lang in offered},
            text={lang: _lines(form_value(data, f"text_{lang}")) for lang in offered},
            addressee=form_value(data, "addressee").strip(),
            deadline=form_value(data, "deadline"),
            thresholds=form_value(data, "thresholds"),
        )

    @classmethod
    def of(cls, slug: str, version: PetitionVersion, offered: Sequence[str]) -> PetitionForm:
        return cls(
            offered=offered,
            slug=slug,
            languages=list(version.languages),
            title=dict(version.title),
            text=dict(version.text),
            addressee=version.addressee,
            deadline=_datetime_input(version.deadline),
            thresholds=", ".join(str(n) for n in version.thresholds),
        )

    def check(self, now: int) -> tuple[dict[str, Any], dict[str, str]]:
        """The data for the node, and the fields in error (field -> catalogue key)."""
        errors: dict[str, str] = {}
        if not self.languages:
            errors["languages"] = "form.error.languages"
        for lang in self.languages:
            for part, values in (("title", self.title), ("text", self.text)):
                if not values.get(lang):
                    errors[f"{part}_{lang}"] = f"form.error.{part}"
        if not self.addressee:
            errors["addressee"] = "form.error.addressee"
        deadline = _parse_deadline(self.deadline)
        if deadline is None or deadline <= now:
            errors["deadline"] = "form.error.deadline"
        thresholds = _parse_thresholds(self.thresholds)
        if thresholds is None:
            errors["thresholds"] = "form.error.thresholds"
        data = {
            "slug": self.slug,
            "languages": self.languages,
            "title": {lang: self.title.get(lang, "") for lang in self.languages},
            "text": {lang: self.text.get(lang, "") for lang in self.languages},
            "addressee": self.addressee,
            "deadline": deadline,
            "thresholds": thresholds,
        }
        return data, errors

    def service_error(self, error: InputError) -> dict[str, str]:
        """Where to show an error the node raised (title and text: every language's field)."""
        key = field_error(error)
        if error.field in ("title", "text"):
            return {f"{error.field}_{lang}": key for lang in self.languages}
        return {error.field or "form": key}


def _offered(version: PetitionVersion | None = None) -> list[str]:
    """Languages the form offers: the node's, and any other the petition already has."""
    extra = list(version.languages) if version else []
    return list(dict.fromkeys([*i18n.LANGUAGES, *extra]))


def _admin_form(
    request: web.Request,
    organiser: Organiser,
    form: PetitionForm,
    *,
    status: int = 200,
    errors: Mapping[str, str] | None = None,
    view: PetitionView | None = None,
    saved: str | None = None,
    preview: Mapping[str, Any] | None = None,
) -> web.Response:
    federated = _federated(request, view) if view is not None else None
    return render(
        request,
        "admin_form.html",
        status=status,
        private=True,
        organiser=organiser,
        form=form,
        errors=errors or {},
        view=view,
        saved=saved,
        now=request.app[NODE].clock(),
        regions=view.log.stats.regions() if view is not None else None,
        federated=federated,
        preview=preview,
    )


@admin
async def new_page(request: web.Request, organiser: Organiser) -> web.Response:
    offered = _offered()
    return _admin_form(request, organiser, PetitionForm(offered, languages=list(offered)))


@admin
async def create(request: web.Request, organiser: Organiser) -> web.Response:
    node = request.app[NODE]
    posted = await read_form(request)
    form = PetitionForm.parse(posted, _offered())
    data, errors = form.check(node.now())
    if not errors and form_value(posted, "action") == "preview":
        return _admin_form(request, organiser, form, preview=data)
    if not errors:
        try:
            view = await node.create_petition(organiser, data)
        except InputError as e:
            if e.status not in (400, 409):
                raise
            errors = form.service_error(e)
        else:
            return redirect(f"/admin/p/{view.record.slug}")
    taken = "form.error.slug_taken" in errors.values()
    return _admin_form(request, organiser, form, status=409 if taken else 400, errors=errors)


@admin
async def edit_page(request: web.Request, organiser: Organiser) -> web.Response:
    view = await request.app[NODE].petition(request.match_info["slug"])
    form = PetitionForm.of(view.record.slug, view.latest, _offered(view.latest))
    return _admin_form(request, organiser, form, view=view, saved=request.query.get("saved"))


def _unchanged(version: PetitionVersion, data: Mapping[str, Any]) -> bool:
    return bool(
        list(version.languages) == data["languages"]
        and dict(version.title) == data["title"]
        and dict(version.text) == data["text"]
        and version.addressee == data["addressee"]
        and version.deadline == data["deadline"]
        and list(version.thresholds) == data["thresholds"]
    )


@admin
async def edit(request: web.Request, organiser: Organiser) -> web.Response:
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    posted = await read_form(request)
    form = PetitionForm.parse(posted, _offered(view.latest))
    form.slug = view.record.slug
    data, errors = form.check(node.now())
    data.pop("slug")
    if not errors and form_value(posted, "action") == "preview":
        return _admin_form(request, organiser, form, view=view, preview=data)
    if not errors:
        if _unchanged(view.latest, data):
            return redirect(f"/admin/p/{view.record.slug}?saved=unchanged")
        try:
            view = await node.edit_petition(view.record.slug, data)
        except InputError as e:
            if e.status != 400:
                raise
            errors = form.service_error(e)
        else:
            return redirect(f"/admin/p/{view.record.slug}?saved={view.latest.version}")
    return _admin_form(request, organiser, form, status=400, errors=errors, view=view)


@admin
async def consented(request: web.Request, organiser: Organiser) -> web.Response:
    """The consented list for the addressee, encrypted to the key the organiser gives."""
    node = request.app[NODE]
    slug = request.match_info["slug"]
    data = await read_form(request)
    owner = (await node.petition(slug)).record.organiser_id
    if owner is not None and owner != organiser.id:
        raise InputError("only the petition's organiser may export its names", status=403,
                         code="forbidden")
    try:
        sealed, count = await node.consented_list(slug, form_value(data, "key"))
    except InputError as e:
        if e.field != "key":
            raise
        view = await node.petition(slug)
        form = PetitionForm.of(view.record.slug, view.latest, _offered(view.latest))
        return _admin_form(request, organiser, form, status=400, view=view,
                           errors={"key": "form.error.key"})
    log.info("organiser %d exported the consented list of %s (%d names, encrypted)",
             organiser.id, slug, count)
    return web.Response(body=sealed, content_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="consented-{slug}.fpc"',
        "Cache-Control": "no-store"})


@admin
async def close_page(request: web.Request, organiser: Organiser) -> web.Response:
    view = await request.app[NODE].petition(request.match_info["slug"])
    slug = view.record.slug
    return render(
        request,
        "confirm.html",
        private=True,
        kind="close",
        action=f"/admin/p/{slug}/close",
        back=f"/admin/p/{slug}",
    )


@admin
async def close(request: web.Request, organiser: Organiser) -> web.Response:
    await read_form(request)
    view = await request.app[NODE].close_petition(request.match_info["slug"])
    return redirect(f"/admin/p/{view.record.slug}")


# --------------------------------------------------------------------------- setup


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    return env


ROUTES: list[tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]]] = [
    ("GET", "/", index),
    ("GET", "/p/{slug}", petition_page),
    ("GET", "/p/{slug}/v/{number}", version_page),
    ("GET", "/p/{slug}/verify", check_page),
    ("GET", "/p/{slug}/embed", embed_page),
    ("GET", "/p/{slug}/badge.svg", badge),
    ("GET", "/receipt", receipt_check_page),
    ("POST", "/receipt", receipt_check),
    ("POST", "/p/{slug}/sign", sign),
    ("GET", "/s/{token}", signer_page),
    ("POST", "/s/{token}/confirm", confirm),
    ("GET", "/s/{token}/withdraw", withdraw_page),
    ("POST", "/s/{token}/withdraw", withdraw),
    ("GET", "/s/{token}/receipt.fpr", receipt),
    ("GET", "/privacy", privacy_page),
    ("POST", "/privacy", privacy_request),
    ("GET", "/privacy/{token}", privacy_token_page),
    ("GET", "/privacy/{token}/export.json", privacy_export),
    ("GET", "/privacy/{token}/erase", erase_page),
    ("POST", "/privacy/{token}/erase", erase),
    ("GET", "/admin/login", login_page),
    ("POST", "/admin/login", login),
    ("POST", "/admin/logout", logout),
    ("GET", "/admin", admin_list),
    ("GET", "/admin/new", new_page),
    ("POST", "/admin/new", create),
    ("GET", "/admin/p/{slug}", edit_page),
    ("POST", "/admin/p/{slug}", edit),
    ("GET", "/admin/p/{slug}/close", close_page),
    ("POST", "/admin/p/{slug}/close", close),
    ("POST", "/admin/p/{slug}/consented", consented),
]
_PAGE_HANDLERS = frozenset(handler for _, _, handler in ROUTES)


def setup(app: web.Application) -> None:
    app[JINJA] = environment()
    app[ERROR_PAGE] = error_page
    for method, path, handler in ROUTES:
        if method == "GET":
            app.router.add_get(path, handler)  # and HEAD
        else:
            app.router.add_post(path, handler)
    app.router.add_static("/static", STATIC)
