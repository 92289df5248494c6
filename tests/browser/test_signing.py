"""A person signs in a real browser: open, sign, confirm from the mail, download and
check the receipt, withdraw; the counts on the page follow. In French and English,
with JavaScript on and off; axe-core on every page (JavaScript on); screenshots at
phone and desktop widths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fedpetition.core.receipts import Receipt, verify_receipt
from fedpetition.node.service import SignatureForm
from tests.node.conftest import PASSWORD

from .conftest import DESKTOP, SLUG, Site, check_accessibility, screenshot

WORDS = {
    "fr": {"name": "nom", "email": "adresse", "confirm": "confirm", "withdraw": "retir"},
    "en": {"name": "name", "email": "email", "confirm": "confirm", "withdraw": "withdraw"},
}


async def node_count(page: Any, site: Site) -> int:
    """This node's count as the petition page shows it (its second big figure or first)."""
    await page.goto(f"{site.url}/p/{SLUG}")
    text = await page.locator(".count .big").last.inner_text()
    return int(re.sub(r"\D", "", text) or "0")


async def wait_for_count(page: Any, site: Site, expected: int) -> None:
    for _ in range(100):
        if await node_count(page, site) == expected:
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"the page never showed {expected}")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_sign_confirm_receipt_check_withdraw(site: Site, browser: Any, tmp_path: Path,
                                                   lang: str, javascript: bool) -> None:
    words = WORDS[lang]
    context = await browser.new_context(
        locale={"fr": "fr-FR", "en": "en-GB"}[lang], java_script_enabled=javascript,
        viewport=DESKTOP, accept_downloads=True,
        bypass_csp=True)  # lets the test inject axe-core; the pages carry no script
    page = await context.new_page()
    shoot = javascript  # one set of screenshots per language
    audit = javascript  # axe-core needs the page's JavaScript

    async def visited(name: str) -> None:
        assert await page.locator("html").get_attribute("lang") == lang
        if audit:
            await check_accessibility(page, f"{name} ({lang})")
        if shoot:
            await screenshot(page, f"{name}-{lang}")

    before = await node_count(page, site)
    await visited("petition")

    # Sign: the form is labelled in the page's language.
    address = f"browser-{lang}-{'js' if javascript else 'nojs'}@example.org"
    await page.get_by_label(re.compile(words["name"], re.I)).first.fill("Camille Navigateur")
    await page.get_by_label(re.compile(words["email"], re.I)).first.fill(address)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_load_state()
    await visited("sent")
    assert "@" not in (await page.locator("main").inner_text()).replace(address, "")

    # The mail's link, then the button that confirms (a GET never does).
    link = await site.inbox.link(address)
    await page.goto(site.url + link)
    await visited("confirm")
    await page.get_by_role("button", name=re.compile(words["confirm"], re.I)).click()
    await page.wait_for_load_state()

    # Once sequenced, the signer page offers the receipt.
    receipt_link = page.locator("a[href$='receipt.fpr']")
    for _ in range(100):
        if await receipt_link.count():
            break
        await page.wait_for_timeout(100)
        await page.goto(site.url + link)
    assert await receipt_link.count(), "no receipt link once counted"
    await visited("signer")
    async with page.expect_download() as download_info:
        await receipt_link.first.click()
    download = await download_info.value
    saved = tmp_path / "receipt.fpr"
    await download.save_as(saved)
    verify_receipt(Receipt.decode(saved.read_bytes()))  # the receipt holds on its own
    assert await node_count(page, site) == before + 1

    # Check the receipt on the node's page: every step by name.
    await page.goto(f"{site.url}/receipt")
    await visited("receipt-check")
    await page.set_input_files("input[type=file]", str(saved))
    await page.locator("form button[type=submit]").click()
    await page.wait_for_load_state()
    assert await page.locator("[data-result]").get_attribute("data-result") == "ok"
    steps = page.locator("[data-step]")
    names = [await steps.nth(i).get_attribute("data-step") for i in range(await steps.count())]
    assert names[-2:] == ["receipt-roster", "receipt-still-in-log"], names
    for i in range(await steps.count()):
        assert await steps.nth(i).get_attribute("data-status") == "pass", \
            await steps.nth(i).inner_text()
    await visited("receipt-checked")

    # Withdraw: a page, then a button; the count goes back.
    await page.goto(f"{site.url}{link}/withdraw")
    await visited("withdraw")
    await page.get_by_role("button", name=re.compile(words["withdraw"], re.I)).click()
    await page.wait_for_load_state()
    await wait_for_count(page, site, before)
    await context.close()


async def test_verify_this_count_page_runs_every_step(site: Site, browser: Any) -> None:
    """The petition page links to a page that verifies the count from the published
    logs and shows each step of the verifier by name."""
    for i in range(3):
        await site.node.sign(SLUG, SignatureForm("Someone", f"v{i}@example.org", "FR"), "test")
        link = await site.inbox.link(f"v{i}@example.org")
        await site.node.confirm(link.rsplit("/", 1)[1], "test")
    context = await browser.new_context(locale="en-GB", viewport=DESKTOP, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{site.url}/p/{SLUG}")
    await page.locator(f"a[href='/p/{SLUG}/verify']").first.click()
    await page.wait_for_load_state()
    for _ in range(100):  # the verification runs in the background; the page refreshes
        if await page.locator("[data-result]").count():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    assert await page.locator("[data-result]").get_attribute("data-result") == "ok"
    steps = page.locator("[data-step]")
    assert await steps.count() >= 8
    names = {await steps.nth(i).get_attribute("data-step") for i in range(await steps.count())}
    assert {"checkpoint-signature", "tree-hashes", "log-rules"} <= names, names
    await check_accessibility(page, "verify page")
    await screenshot(page, "verify-en")
    await context.close()


async def test_embeddable_counter_and_badge(site: Site, browser: Any) -> None:
    context = await browser.new_context(locale="fr-FR", viewport={"width": 320, "height": 200},
                                        bypass_csp=True)
    page = await context.new_page()
    response = await page.goto(f"{site.url}/p/{SLUG}/embed")
    assert response is not None and response.ok
    # Other sites may frame it: the page allows any ancestor; the petition page does not.
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers
    petition = await context.request.get(f"{site.url}/p/{SLUG}")
    assert petition.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in petition.headers["content-security-policy"]
    assert await page.locator("a[target=_blank]").count() == 1
    await check_accessibility(page, "embed")
    await screenshot(page, "embed-fr")
    badge = await page.goto(f"{site.url}/p/{SLUG}/badge.svg")
    assert badge is not None and badge.headers["content-type"].startswith("image/svg+xml")
    assert "<title>" in (await badge.text())
    await context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_organiser_pages(site: Site, browser: Any, lang: str) -> None:
    """An organiser logs in and opens the list, a new petition and an existing one:
    labelled forms, the counts per region, the consented-list export."""
    context = await browser.new_context(locale={"fr": "fr-FR", "en": "en-GB"}[lang],
                                        viewport=DESKTOP, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{site.url}/admin/login")
    await check_accessibility(page, f"login ({lang})")
    await page.locator("input[name=name]").fill("alice")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url(f"{site.url}/admin")
    for path, name in (("/admin", "admin-list"), ("/admin/new", "admin-new"),
                       (f"/admin/p/{SLUG}", "admin-edit")):
        await page.goto(site.url + path)
        assert await page.locator("html").get_attribute("lang") == lang
        await check_accessibility(page, f"{name} ({lang})")
        await screenshot(page, f"{name}-{lang}")
    assert await page.locator(f"form[action='/admin/p/{SLUG}/consented']").count() == 1
    await context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_every_other_public_page_passes_the_accessibility_check(
        site: Site, browser: Any, lang: str) -> None:
    """The pages the signing walk does not pass through: the list of petitions, a
    version, your data (and its request sent), an error page."""
    context = await browser.new_context(locale={"fr": "fr-FR", "en": "en-GB"}[lang],
                                        viewport=DESKTOP, bypass_csp=True)
    page = await context.new_page()
    for path, name in (("/", "index"), (f"/p/{SLUG}/v/1", "version"), ("/privacy", "privacy"),
                       ("/p/no-such-petition", "not-found")):
        response = await page.goto(site.url + path)
        assert response is not None and response.status == (404 if name == "not-found" else 200)
        assert await page.locator("html").get_attribute("lang") == lang
        await check_accessibility(page, f"{name} ({lang})")
        await screenshot(page, f"{name}-{lang}")
    await page.goto(f"{site.url}/privacy")
    await page.locator("input[type=email]").fill("someone@example.org")
    await page.locator("form button[type=submit]").click()
    await page.wait_for_load_state()
    await check_accessibility(page, f"privacy-sent ({lang})")
    await screenshot(page, f"privacy-sent-{lang}")
    await context.close()
