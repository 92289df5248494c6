"""The node's HTML pages, driven through a real Node and aiohttp's test client."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from fedpetition.cli import main
from fedpetition.core.notes import Signer, sign_note
from fedpetition.core.receipts import Receipt, verify_receipt
from fedpetition.node import i18n, svg
from fedpetition.node.app import SECURITY_HEADERS, make_app
from fedpetition.node.config import load_config, render_default_config
from fedpetition.node.consented import ConsentKeyError, new_key_pair, open_list
from fedpetition.node.keys import create_data_key, create_node_key
from fedpetition.node.mail import MemoryMailer
from fedpetition.node.routes import pages
from fedpetition.node.service import InputError, Node
from fedpetition.node.storage import open_storage
from fedpetition.node.storage.base import COUNTED, PENDING, WITHDRAWN
from tests.conftest import Databases

EMAIL = "camille.signer@example.org"
SLUG = "save-the-park"


@dataclasses.dataclass
class Env:
    node: Node
    mailer: MemoryMailer
    client: TestClient[Any, Any]


@pytest.fixture
async def env(tmp_path: Path, databases: Databases) -> AsyncIterator[Env]:
    path = tmp_path / "node.toml"
    path.write_text(render_default_config("node-a.example", "http://node-a.example",
                                          database_url=databases.new()))
    config = load_config(path)
    signer = create_node_key(config.keys.node_key, config.node.name)
    data_key = create_data_key(config.keys.data_key)
    storage = await open_storage(config.database)
    mailer = MemoryMailer()
    node = Node(config, storage, signer, data_key, mailer)
    await node.start()
    async with TestClient(TestServer(make_app(node, background=False))) as client:
        yield Env(node, mailer, client)
    await storage.close()


async def create_petition(
    node: Node,
    slug: str = SLUG,
    thresholds: list[int] | None = None,
    languages: tuple[str, ...] = ("fr", "en"),
) -> None:
    titles = {"fr": "Sauvons le parc", "en": "Save the park"}
    texts = {"fr": "Le parc est menacé.\n\nSignez !", "en": "The park is in danger.\n\nSign!"}
    await node.create_petition(
        None,
        {
            "slug": slug,
            "languages": list(languages),
            "title": {lang: titles[lang] for lang in languages},
            "text": {lang: texts[lang] for lang in languages},
            "addressee": "The Mayor <of Town>",
            "deadline": int(time.time()) + 30 * 86400,
            "thresholds": thresholds if thresholds is not None else [1, 100],
        },
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


async def get(client: TestClient[Any, Any], path: str, **kwargs: Any) -> tuple[int, str]:
    response = await client.get(path, **kwargs)
    return response.status, await response.text()


async def post_form(
    client: TestClient[Any, Any],
    form_page: str,
    action: str,
    data: dict[str, str | list[str]],
    **kwargs: Any,
) -> ClientResponse:
    """GET the page holding the form (for its CSRF token), then POST ``data`` with it."""
    status, html = await get(client, form_page)
    assert status == 200, html
    fields: list[tuple[str, str]] = [("csrf", csrf_of(html))]
    for name, value in data.items():
        fields.extend((name, v) for v in ([value] if isinstance(value, str) else value))
    return await client.post(action, data=fields, **kwargs)


async def sign(env: Env, email: str = EMAIL, **extra: str) -> str:
    """Sign through the page; return the signer's page path from the mail."""
    data = {"name": "Camille Dupont", "email": email, **extra}
    response = await post_form(env.client, f"/p/{SLUG}", f"/p/{SLUG}/sign", data)
    assert response.status == 200, await response.text()
    return env.mailer.last_path()


async def status_of(env: Env, signer_path: str) -> str:
    view = await env.node.signer_view(signer_path.rsplit("/", 1)[1])
    return view.signature.status


# --------------------------------------------------------------------------- public pages


async def test_list_and_petition_pages_in_both_languages(env: Env) -> None:
    await create_petition(env.node)
    await create_petition(env.node, "closed-one")
    await env.node.close_petition("closed-one")
    client = env.client

    status, html = await get(client, "/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert status == 200
    assert '<html lang="en">' in html
    assert "Save the park" in html and i18n.t("en", "list.title") in html
    assert html.index(f'href="/p/{SLUG}"') < html.index('href="/p/closed-one"')  # open first
    assert 'href="/?lang=fr"' in html and 'href="/?lang=en"' in html

    status, html = await get(client, "/", headers={"Accept-Language": "fr-FR,fr;q=0.8"})
    assert '<html lang="fr">' in html and "Sauvons le parc" in html

    # ?lang= wins and is remembered in a cookie.
    response = await client.get("/?lang=en", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in await response.text()
    assert "lang" in response.cookies
    status, html = await get(client, f"/p/{SLUG}", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in html and "Save the park" in html
    assert f'href="/p/{SLUG}?lang=fr"' in html
    status, html = await get(client, f"/p/{SLUG}?lang=fr")
    assert '<html lang="fr">' in html and "Sauvons le parc" in html
    assert "<p>Le parc est menacé.</p>" in html
    assert "The Mayor &lt;of Town&gt;" in html  # escaped


async def test_petition_page_content(env: Env) -> None:
    await create_petition(env.node, thresholds=[5, 100])
    status, html = await get(env.client, f"/p/{SLUG}?lang=en")
    assert status == 200
    assert '<span class="big">0</span>' in html
    assert '<progress id="progress" max="5" value="0">' in html
    assert f'href="/petitions/{SLUG}/bundle.zip"' in html
    assert f"fedpetition verify http://node-a.example/petitions/{SLUG}/bundle.zip" in html
    assert f'href="/p/{SLUG}/v/1"' in html
    assert i18n.t("en", "chart.empty") in html
    # The sign form: labelled inputs, both consents, a CSRF field, a real button.
    assert f'action="/p/{SLUG}/sign"' in html
    for field in ("name", "email", "region", "updates", "addressee"):
        assert f'<label for="f-{field}">' in html and f'id="f-{field}"' in html
    assert '<button type="submit">' in html and csrf_of(html)
    for landmark in ("<header", "<nav", '<main id="main"', "<footer", 'class="skip"'):
        assert landmark in html

    status, html = await get(env.client, f"/p/{SLUG}/v/1?lang=fr")
    assert status == 200 and "Sauvons le parc" in html
    assert (await env.client.get(f"/p/{SLUG}/v/2")).status == 404
    assert (await env.client.get(f"/p/{SLUG}/v/x")).status == 404


async def test_untranslated_petition_is_shown_in_its_language(env: Env) -> None:
    await create_petition(env.node, languages=("fr",))
    _, html = await get(env.client, f"/p/{SLUG}?lang=en")
    assert '<html lang="en">' in html and '<h1 lang="fr">Sauvons le parc</h1>' in html
    assert i18n.t("en", "petition.not_translated") in html


async def test_unknown_petition_is_a_translated_error_page(env: Env) -> None:
    response = await env.client.get("/p/nope", headers={"Accept-Language": "en"})
    assert response.status == 404
    assert response.content_type == "text/html"
    html = await response.text()
    assert i18n.t("en", "page.error.title", status=404) in html
    assert i18n.t("en", "error.not_found") in html
    response = await env.client.get("/no/such/page?lang=fr")
    assert response.status == 404 and i18n.t("fr", "error.not_found") in await response.text()
    # The API and the published log files keep answering JSON.
    assert (await env.client.get("/api/petitions/nope")).content_type == "application/json"
    response = await env.client.get("/petitions/nope/versions/1")
    assert response.status == 404 and response.content_type == "application/json"
    # A GET-only page also answers HEAD; a POST-only path refuses GET with a page.
    assert (await env.client.head("/")).status == 200
    response = await env.client.get("/s/whatever/confirm")
    assert response.status == 405 and response.content_type == "text/html"


# --------------------------------------------------------------------------- signing


async def test_sign_confirm_receipt_withdraw(env: Env) -> None:
    await create_petition(env.node)
    client = env.client
    signer = await sign(env, region="fr-idf", updates="yes")
    assert env.mailer.sent[-1].to == EMAIL
    assert signer.startswith("/s/")

    # A GET shows a button and never confirms (mail scanners follow links).
    status, html = await get(client, signer)
    assert status == 200
    assert f'action="{signer}/confirm"' in html and "<button" in html
    assert EMAIL in html  # the signer's own page says what is stored
    assert await status_of(env, signer) == PENDING
    assert (await client.get(f"{signer}/confirm")).status == 405
    assert await status_of(env, signer) == PENDING

    response = await client.post(
        f"{signer}/confirm", data={"csrf": csrf_of(html)}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == signer
    status, html = await get(client, signer)
    assert '<meta http-equiv="refresh" content="2">' in html
    receipt = await client.get(f"{signer}/receipt.fpr")
    assert receipt.status == 409  # not in the log yet

    await env.node.sequencer.sequence_once()
    status, html = await get(client, signer + "?lang=en")
    assert await status_of(env, signer) == COUNTED
    assert 'http-equiv="refresh"' not in html
    assert i18n.t("en", "signer.index", index=0) in html
    assert i18n.t("en", "signer.region", region="FR-IDF") in html
    assert f'href="{signer}/receipt.fpr"' in html
    assert "fedpetition verify-receipt receipt.fpr" in html

    receipt = await client.get(f"{signer}/receipt.fpr")
    assert receipt.status == 200
    assert receipt.headers["Content-Type"] == "application/vnd.fedpetition.receipt"
    assert receipt.headers["Content-Disposition"].startswith("attachment")
    verify_receipt(Receipt.decode(await receipt.read()))

    status, html = await get(client, f"/p/{SLUG}?lang=en")
    assert '<span class="big">1</span>' in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in html
    assert '<title id="chart-title">' in html and '<desc id="chart-desc">' in html
    assert "<td>FR-IDF</td>" in html
    assert i18n.t("en", "petition.reached", threshold="1", date="").strip() in html

    # Withdrawing: a confirmation page first, then the POST.
    status, html = await get(client, f"{signer}/withdraw")
    assert status == 200 and f'action="{signer}/withdraw"' in html
    assert await status_of(env, signer) == COUNTED
    response = await client.post(
        f"{signer}/withdraw", data={"csrf": csrf_of(html)}, allow_redirects=False
    )
    assert response.status == 303
    status, html = await get(client, signer + "?lang=en")
    assert i18n.t("en", "signer.withdrawing") in html
    await env.node.sequencer.sequence_once()
    status, html = await get(client, signer + "?lang=en")
    assert await status_of(env, signer) == WITHDRAWN
    assert i18n.t("en", "signer.withdrawn") in html
    status, html = await get(client, f"/p/{SLUG}")
    assert '<span class="big">0</span>' in html


async def test_signing_again_reveals_nothing(env: Env) -> None:
    await create_petition(env.node)
    first = await post_form(
        env.client, f"/p/{SLUG}", f"/p/{SLUG}/sign", {"name": "Camille", "email": EMAIL}
    )
    second = await post_form(
        env.client, f"/p/{SLUG}", f"/p/{SLUG}/sign", {"name": "Camille", "email": EMAIL}
    )
    other = await post_form(
        env.client,
        f"/p/{SLUG}",
        f"/p/{SLUG}/sign",
        {"name": "Dominique", "email": "someone.else@example.org"},
    )
    pages_seen = [await r.text() for r in (first, second, other)]
    assert [r.status for r in (first, second, other)] == [200, 200, 200]
    assert pages_seen[0] == pages_seen[1] == pages_seen[2]
    assert EMAIL not in pages_seen[0]
    assert len(env.mailer.sent) == 3


async def test_bad_sign_input_shows_the_form_again(env: Env) -> None:
    await create_petition(env.node)
    response = await post_form(
        env.client,
        f"/p/{SLUG}?lang=en",
        f"/p/{SLUG}/sign",
        {"name": "Camille", "email": "not an address"},
    )
    assert response.status == 400
    html = await response.text()
    assert i18n.t("en", "form.error.email") in html
    assert 'id="f-email-error"' in html and 'aria-invalid="true"' in html
    assert 'value="Camille"' in html  # what was typed stays
    assert f'action="/p/{SLUG}/sign"' in html

    response = await post_form(
        env.client, f"/p/{SLUG}", f"/p/{SLUG}/sign", {"name": "", "email": "", "updates": "yes"}
    )
    html = await response.text()
    assert response.status == 400
    assert 'id="f-name-error"' in html and 'id="f-email-error"' in html
    assert 'name="updates" value="yes" checked' in html

    response = await post_form(
        env.client,
        f"/p/{SLUG}",
        f"/p/{SLUG}/sign",
        {"name": "Camille", "email": EMAIL, "region": "Paris"},
    )
    assert response.status == 400 and 'id="f-region-error"' in await response.text()
    assert env.mailer.sent == []


async def test_closed_petition_has_no_sign_form(env: Env) -> None:
    await create_petition(env.node)
    _, html = await get(env.client, f"/p/{SLUG}")
    token = csrf_of(html)
    await env.node.close_petition(SLUG)
    _, html = await get(env.client, f"/p/{SLUG}?lang=en")
    assert f'action="/p/{SLUG}/sign"' not in html and i18n.t("en", "sign.closed") in html
    response = await env.client.post(
        f"/p/{SLUG}/sign", data={"csrf": token, "name": "Camille", "email": EMAIL}
    )
    assert response.status == 409 and response.content_type == "text/html"


# --------------------------------------------------------------------------- CSRF


async def test_posts_without_the_right_csrf_token_are_refused(env: Env) -> None:
    await create_petition(env.node)
    client = env.client
    signer = await sign(env)
    _, html = await get(client, signer + "?lang=en")
    token = csrf_of(html)
    assert client.session.cookie_jar.filter_cookies(client.make_url("/"))["fp_csrf"].value == token

    for data in ({}, {"csrf": ""}, {"csrf": "x" * 43}, {"csrf": token + "x"}):
        response = await client.post(f"{signer}/confirm", data=data)
        assert response.status == 403, data
        assert i18n.t("en", "error.csrf") in await response.text()
    sign_data = {"name": "Camille", "email": "other@example.org"}
    assert (await client.post(f"/p/{SLUG}/sign", data=sign_data)).status == 403
    # The right field without its cookie is refused too.
    client.session.cookie_jar.clear()
    response = await client.post(f"{signer}/confirm", data={"csrf": token})
    assert response.status == 403
    # So is a JSON body, even with the token.
    response = await client.post(f"{signer}/confirm", json={"csrf": token})
    assert response.status in (403, 415)
    assert await status_of(env, signer) == PENDING


async def test_csrf_cookie_attributes(env: Env) -> None:
    await create_petition(env.node)
    response = await env.client.get(f"/p/{SLUG}")
    cookie = response.cookies["fp_csrf"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert cookie.value == csrf_of(await response.text())
    # A page with no form sets no cookie; a second form page reuses the token.
    assert "fp_csrf" not in (await env.client.get("/")).cookies
    response = await env.client.get(f"/p/{SLUG}")
    assert "fp_csrf" not in response.cookies
    assert csrf_of(await response.text()) == cookie.value

    env.node.config = dataclasses.replace(
        env.node.config, security=dataclasses.replace(env.node.config.security, cookie_secure=True)
    )
    env.client.session.cookie_jar.clear()
    response = await env.client.get(f"/p/{SLUG}?lang=en")
    assert response.cookies["fp_csrf"]["secure"] and response.cookies["lang"]["secure"]


# --------------------------------------------------------------------------- privacy


async def test_privacy_request_export_erase(env: Env) -> None:
    await create_petition(env.node)
    client = env.client
    signer = await sign(env, addressee="yes")
    status, html = await get(client, signer)
    await client.post(f"{signer}/confirm", data={"csrf": csrf_of(html)})

    status, html = await get(client, "/privacy?lang=en")
    assert status == 200 and 'action="/privacy"' in html and '<label for="f-email">' in html
    response = await post_form(client, "/privacy", "/privacy", {"email": "bad"})
    assert response.status == 400 and 'id="f-email-error"' in await response.text()
    response = await post_form(client, "/privacy", "/privacy", {"email": EMAIL})
    assert response.status == 200
    assert i18n.t("en", "sent.heading") in await response.text()
    privacy = env.mailer.last_path()
    assert privacy.startswith("/privacy/")

    status, html = await get(client, privacy)
    assert status == 200 and EMAIL in html
    assert f'href="{privacy}/export.json"' in html and f'href="{privacy}/erase"' in html
    export = await client.get(f"{privacy}/export.json")
    assert export.status == 200 and export.content_type == "application/json"
    assert export.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(await export.read())
    assert data["email"] == EMAIL and len(data["signatures"]) == 1
    assert data["signatures"][0]["consents"] == {"updates": False, "addressee": True}

    # The confirmation page does not erase; the POST does.
    status, html = await get(client, f"{privacy}/erase")
    assert status == 200 and f'action="{privacy}/erase"' in html
    assert len((await env.node.privacy_export(privacy.rsplit("/", 1)[1]))["signatures"]) == 1
    response = await client.post(f"{privacy}/erase", data={"csrf": csrf_of(html)})
    assert response.status == 200
    assert i18n.t("en", "erased.text", count=1) in await response.text()
    assert (await env.node.privacy_export(privacy.rsplit("/", 1)[1]))["signatures"] == []
    assert (await client.get(signer)).status == 404

    response = await client.get("/privacy/not-a-token")
    assert response.status == 404 and response.content_type == "text/html"
    assert (await client.post(f"{privacy}/erase", data={})).status == 403


async def test_public_pages_never_show_a_signer_email(env: Env) -> None:
    await create_petition(env.node)
    await env.node.create_organiser("alice", "correct horse battery")
    signer = await sign(env)
    status, html = await get(env.client, signer)
    await env.client.post(f"{signer}/confirm", data={"csrf": csrf_of(html)})
    await env.node.sequencer.sequence_once()
    await post_form(
        env.client,
        "/admin/login",
        "/admin/login",
        {"name": "alice", "password": "correct horse battery"},
    )
    for path in (
        "/",
        f"/p/{SLUG}",
        f"/p/{SLUG}/v/1",
        "/privacy",
        "/admin",
        f"/admin/p/{SLUG}",
        f"/api/petitions/{SLUG}",
    ):
        status, html = await get(env.client, path)
        assert status == 200, path
        assert EMAIL not in html and "Camille" not in html, path


# --------------------------------------------------------------------------- organisers


def deadline_input(days: int) -> tuple[str, int]:
    moment = datetime.fromtimestamp(int(time.time()) // 60 * 60 + days * 86400, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M"), int(moment.timestamp())


async def login(env: Env) -> None:
    await env.node.create_organiser("alice", "correct horse battery")
    response = await post_form(
        env.client,
        "/admin/login",
        "/admin/login",
        {"name": "alice", "password": "correct horse battery"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/admin"
    cookie = response.cookies["fp_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/admin"


async def test_admin_requires_a_session(env: Env) -> None:
    await create_petition(env.node)
    for path in ("/admin", "/admin/new", f"/admin/p/{SLUG}"):
        response = await env.client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/admin/login"
    response = await env.client.post(f"/admin/p/{SLUG}/close", data={}, allow_redirects=False)
    assert response.status == 303
    assert (await env.node.petition(SLUG)).record.is_open

    await env.node.create_organiser("alice", "correct horse battery")
    response = await post_form(
        env.client,
        "/admin/login?lang=en",
        "/admin/login",
        {"name": "alice", "password": "wrong password!"},
    )
    assert response.status == 400
    html = await response.text()
    assert i18n.t("en", "form.error.login") in html and 'value="alice"' in html
    assert "fp_session" not in response.cookies


async def test_admin_create_edit_close_logout(env: Env) -> None:
    await login(env)
    client = env.client
    status, html = await get(client, "/admin?lang=en")
    assert status == 200 and i18n.t("en", "admin.title") in html

    deadline, deadline_ts = deadline_input(40)
    form: dict[str, str | list[str]] = {
        "slug": "new-library",
        "languages": ["fr", "en"],
        "title_fr": "Une bibliothèque",
        "text_fr": "Il nous faut\r\nune bibliothèque.",
        "title_en": "A library",
        "text_en": "We need a library.",
        "addressee": "The council",
        "deadline": deadline,
        "thresholds": "10, 1 000",
    }
    # A preview shows the texts as signers will read them, and publishes nothing.
    response = await post_form(client, "/admin/new", "/admin/new",
                               {**form, "action": "preview"}, allow_redirects=False)
    html = await response.text()
    assert response.status == 200 and 'id="preview-h"' in html
    assert "<p>Il nous faut<br>\nune bibliothèque.</p>" in html and "The council" in html
    assert 'value="new-library"' in html  # the form keeps what was typed
    with pytest.raises(InputError):
        await env.node.petition("new-library")
    response = await post_form(client, "/admin/new", "/admin/new", form, allow_redirects=False)
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/admin/p/new-library"
    view = await env.node.petition("new-library")
    latest = view.latest
    assert latest.title == {"fr": "Une bibliothèque", "en": "A library"}
    assert latest.text["fr"] == "Il nous faut\nune bibliothèque."
    assert latest.deadline == deadline_ts and latest.thresholds == (10, 1000)

    # The same slug again: the form comes back with the error.
    response = await post_form(client, "/admin/new", "/admin/new", form)
    assert response.status == 409 and 'id="f-slug-error"' in await response.text()

    # The edit form is prefilled; saving makes version 2.
    status, html = await get(client, "/admin/p/new-library?lang=en")
    assert 'value="A library"' in html and f'value="{deadline}"' in html
    assert 'value="10, 1000"' in html
    edited = {**form, "title_en": "A bigger library"}
    del edited["slug"]
    # Previewing an edit shows it and publishes no new version.
    response = await post_form(client, "/admin/p/new-library", "/admin/p/new-library",
                               {**edited, "action": "preview"}, allow_redirects=False)
    assert response.status == 200 and "A bigger library" in await response.text()
    assert len((await env.node.petition("new-library")).versions) == 1
    response = await post_form(
        client, "/admin/p/new-library", "/admin/p/new-library", edited, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/p/new-library?saved=2"
    view = await env.node.petition("new-library")
    assert len(view.versions) == 2 and view.latest.title["en"] == "A bigger library"
    status, html = await get(client, "/admin/p/new-library?saved=2&lang=en")
    assert i18n.t("en", "admin.saved", number=2) in html
    assert 'href="/p/new-library/v/1"' in html and 'href="/p/new-library/v/2"' in html

    # Nothing changed: no new version.
    response = await post_form(
        client,
        "/admin/p/new-library",
        "/admin/p/new-library",
        {**edited, "text_fr": "Il nous faut\nune bibliothèque."},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/admin/p/new-library?saved=unchanged"
    assert len((await env.node.petition("new-library")).versions) == 2

    # Bad input comes back as the form, next to each field.
    bad = {**edited, "languages": ["en"], "title_en": "", "deadline": "soon", "thresholds": "10, 5"}
    response = await post_form(client, "/admin/p/new-library", "/admin/p/new-library", bad)
    html = await response.text()
    assert response.status == 400
    for field in ("title_en", "deadline", "thresholds"):
        assert f'id="f-{field}-error"' in html, field
    response = await post_form(
        client, "/admin/new", "/admin/new", {**form, "slug": "Bad Slug", "languages": []}
    )
    html = await response.text()
    assert response.status == 400
    assert 'id="f-languages-error"' in html
    assert len((await env.node.petition("new-library")).versions) == 2

    # Closing: a confirmation page, then the POST.
    status, html = await get(client, "/admin/p/new-library/close")
    assert status == 200 and (await env.node.petition("new-library")).record.is_open
    response = await client.post(
        "/admin/p/new-library/close", data={"csrf": csrf_of(html)}, allow_redirects=False
    )
    assert response.status == 303
    assert not (await env.node.petition("new-library")).record.is_open

    # Logging out ends the session.
    status, html = await get(client, "/admin")
    response = await client.post(
        "/admin/logout", data={"csrf": csrf_of(html)}, allow_redirects=False
    )
    assert response.status == 303
    response = await client.get("/admin", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"


async def test_bad_slug_is_refused_next_to_the_field(env: Env) -> None:
    await login(env)
    deadline, _ = deadline_input(10)
    response = await post_form(
        env.client,
        "/admin/new",
        "/admin/new",
        {
            "slug": "Bad Slug",
            "languages": ["en"],
            "title_en": "T",
            "text_en": "X",
            "addressee": "A",
            "deadline": deadline,
            "thresholds": "",
        },
    )
    assert response.status == 400 and 'id="f-slug-error"' in await response.text()


# --------------------------------------------------------------------------- security


async def test_security_headers_and_no_inline_code(env: Env) -> None:
    await create_petition(env.node)
    signer = await sign(env)
    paths = [
        "/",
        f"/p/{SLUG}",
        f"/p/{SLUG}/v/1",
        "/privacy",
        "/admin/login",
        signer,
        f"{signer}/withdraw",
        "/p/nope",
        "/static/style.css",
    ]
    for path in paths:
        response = await env.client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
        body = await response.text()
        if response.content_type == "text/html":
            assert "<script" not in body and " style=" not in body and "<style" not in body
            assert not re.search(r'(src|href)="(https?:)?//', body), path
    css = await env.client.get("/static/style.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert ":focus-visible" in await css.text()


async def test_form_and_private_pages_are_not_cached(env: Env) -> None:
    await create_petition(env.node)
    signer = await sign(env)
    for path in (f"/p/{SLUG}", signer, "/privacy"):
        assert (await env.client.get(path)).headers["Cache-Control"] == "no-store"


# --------------------------------------------------------------------------- catalogues and chart


def test_every_catalogue_key_used_by_the_templates_exists() -> None:
    assert set(i18n.MESSAGES["fr"]) == set(i18n.MESSAGES["en"])
    used: set[str] = set()
    for template in pages.TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']\s*[,)]""", template.read_text()))
    assert used and used <= set(i18n.MESSAGES["en"]), used - set(i18n.MESSAGES["en"])
    dynamic = [
        f"confirm.{k}.{p}"
        for k in ("withdraw", "erase", "close")
        for p in ("heading", "text", "button")
    ]
    dynamic += [f"sent.{k}" for k in ("sign", "privacy")]
    dynamic += [
        f"status.{s}" for s in ("pending", "confirmed", "counted", "withdrawing", "withdrawn")
    ]
    assert set(dynamic) <= set(i18n.MESSAGES["en"])


def test_count_chart() -> None:
    assert svg.count_chart([], title="t", desc="d", date_label=str, number_label=str) == ""
    assert svg.step_points([(0, 2), (7200, 1)]) == [(0, 0), (3600, 2), (7200, 2), (10800, 1)]
    chart = svg.count_chart(
        [(0, 3), (3600, 40)],
        title="A <b>",
        desc="D & E",
        date_label=lambda t: f"day{t}",
        number_label=str,
    )
    assert chart.startswith("<svg") and chart.endswith("</svg>")
    assert '<title id="chart-title">A &lt;b&gt;</title>' in chart
    assert '<desc id="chart-desc">D &amp; E</desc>' in chart
    assert 'aria-labelledby="chart-title chart-desc"' in chart
    assert ">day0<" in chart and ">day7200<" in chart and ">40<" in chart
    assert "style" not in chart
    assert [svg.nice_step(v) for v in (0, 1, 3, 7, 11, 2500)] == [1, 1, 5, 10, 20, 5000]


async def test_the_consented_list_holds_only_those_who_consented(
        env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The organiser downloads, encrypted to their own key, the names of the counted
    signers who ticked the addressee consent, and nobody else's; the CLI opens it."""
    await create_petition(env.node)
    signers = {"Ada Consent": ("ada@example.org", True), "Bob Silent": ("bob@example.org", False),
               "Cleo Leaves": ("cleo@example.org", True), "Dan Late": ("dan@example.org", True)}
    paths = {}
    for name, (email, consent) in signers.items():
        data = {"name": name, "email": email, "region": "FR-IDF",
                **({"addressee": "yes"} if consent else {})}
        response = await post_form(env.client, f"/p/{SLUG}", f"/p/{SLUG}/sign", data)
        assert response.status == 200
        paths[name] = env.mailer.last_path()
        if name != "Dan Late":
            await post_form(env.client, paths[name], f"{paths[name]}/confirm", {})
    await env.node.sequencer.sequence_once()
    await post_form(env.client, f"{paths['Cleo Leaves']}/withdraw",
                    f"{paths['Cleo Leaves']}/withdraw", {})
    await env.node.sequencer.sequence_once()
    await post_form(env.client, paths["Dan Late"], f"{paths['Dan Late']}/confirm", {})
    # Dan confirmed but is not in the log yet: not counted, not listed.

    key_file = tmp_path / "organiser.key"
    capsys.readouterr()
    assert main(["consent-key", "--out", str(key_file)]) == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    mine = capsys.readouterr().out.rsplit(": ", 1)[1].strip()
    assert mine.startswith("fpc1")
    private = key_file.read_text()
    await login(env)
    page = f"/admin/p/{SLUG}"
    for bad in ("not a key", "fpc1" + "A" * 43):  # the second: a low-order point
        refused = await post_form(env.client, page, f"{page}/consented", {"key": bad})
        assert refused.status == 400 and 'id="f-key-error"' in await refused.text()
    response = await post_form(env.client, page, f"{page}/consented", {"key": mine})
    assert response.status == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="consented-{SLUG}.fpc"'
    sealed = await response.read()
    assert b"Ada" not in sealed and b"Bob" not in sealed
    listing = open_list(private, sealed)
    rows = list(csv.reader(io.StringIO(listing)))
    assert rows[0] == ["name", "region", "signed"]
    assert [row[:2] for row in rows[1:]] == [["Ada Consent", "FR-IDF"]]
    with pytest.raises(ConsentKeyError):  # another organiser's key does not open it
        open_list(new_key_pair()[0], sealed)
    out = tmp_path / "names.csv"
    (tmp_path / "list.fpc").write_bytes(sealed)
    assert main(["open-consented", str(tmp_path / "list.fpc"), "--key", str(key_file),
                 "--out", str(out)]) == 0
    assert out.read_text() == listing


async def test_a_receipt_is_checked_against_the_petitions_roster(env: Env) -> None:
    """A receipt holds together on its own even when its checkpoint was signed by a key
    made up under the node's name: only the petition's roster tells. The receipt page
    compares them, then checks the node's log still holds the entry."""
    await create_petition(env.node)
    path = await sign(env)
    await post_form(env.client, path, f"{path}/confirm", {})
    await env.node.sequencer.sequence_once()
    token = path.rsplit("/", 1)[1]
    genuine = await env.node.receipt(token)
    assert genuine is not None
    results = await env.node.check_receipt(genuine)
    assert [(step, status) for step, status, _ in results] == [
        ("receipt-format", "pass"), ("receipt-checkpoint", "pass"),
        ("receipt-witnesses", "pass"), ("receipt-inclusion", "pass"),
        ("receipt-commitment", "pass"), ("receipt-roster", "pass"),
        ("receipt-still-in-log", "pass")]

    receipt = Receipt.decode(genuine)
    impostor = Signer.generate(receipt.log_key.name, b"\x07" * 32)
    body = receipt.checkpoint.split("\n\n", 1)[0] + "\n"
    forged = dataclasses.replace(receipt, log_key=impostor.verifier_key(),
                                 checkpoint=sign_note(body, [impostor]))
    verify_receipt(forged)  # the forgery holds together offline
    results = await env.node.check_receipt(forged.encode())
    assert results[-1][:2] == ("receipt-roster", "fail"), results
    page = await post_receipt(env, forged.encode())
    assert 'data-result="failed"' in page
    assert 'data-step="receipt-roster" data-status="fail"' in page
    assert 'data-result="ok"' in await post_receipt(env, genuine)


async def post_receipt(env: Env, data: bytes) -> str:
    status, html = await get(env.client, "/receipt")
    assert status == 200
    form = aiohttp.FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("receipt", data, filename="receipt.fpr",
                   content_type="application/octet-stream")
    response = await env.client.post("/receipt", data=form)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    return await response.text()


async def test_the_embed_snippet_escapes_the_title(env: Env) -> None:
    """The snippet is HTML to paste elsewhere: quotes in a title must come out as
    &quot; in it, never close its attribute."""
    await env.node.create_petition(None, {
        "slug": "quoted", "languages": ["en"], "title": 'Say "no" onmouseover="alert(1)',
        "text": "Text.", "addressee": "Someone", "deadline": int(time.time()) + 86400})
    status, html = await get(env.client, "/p/quoted?lang=en")
    assert status == 200
    snippet = html.split("<pre><code>&lt;iframe", 1)[1].split("</code></pre>", 1)[0]
    # Escaped twice: once as HTML to paste, once to show it on this page.
    assert "Say &amp;quot;no&amp;quot; onmouseover=&amp;quot;alert(1)" in snippet, snippet


def test_the_counter_says_when_it_shows_only_this_nodes_count() -> None:
    """Until the federated total is known, a co-hosted petition's embed and badge show
    this node's count as a lower bound, never as the petition's total."""
    from types import SimpleNamespace

    from fedpetition.node.service import PetitionView

    class View(SimpleNamespace):
        federated = PetitionView.federated  # the real rule, on these few attributes

    summaries = [{"total": None}, {"total": 42}]
    federation = SimpleNamespace(summary=lambda view: summaries[0])
    request = SimpleNamespace(app={pages.NODE: SimpleNamespace(federation=federation)})
    view = View(count=5, roster=SimpleNamespace(hosts=["a", "b"]),
                record=SimpleNamespace(is_local=True))
    assert pages._count(request, view) == (5, False)  # type: ignore[arg-type]
    summaries.pop(0)
    assert pages._count(request, view) == (42, True)  # type: ignore[arg-type]
    view.roster.hosts = ["a"]
    assert pages._count(request, view) == (5, True)  # type: ignore[arg-type]
