"""A real node and a real browser: Debian's Chromium driven by Playwright.

The node is ``fedpetition init``'s, on a loopback port with its background work
running, sending its mail by SMTP to an aiosmtpd sink in the test process. The
browser is headless Chromium from Debian's packages (``/usr/bin/chromium``, or
``FEDPETITION_CHROMIUM``). Where it or Playwright is missing the tests skip and
say why, except under CI (``FEDPETITION_TEST_BROWSER`` set, as ``.ci/run`` does),
where they fail. axe-core comes from the npm registry (``tests/browser/package.json``,
installed by ``make test``); screenshots go to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node
from tests.conftest import Inbox
from tests.node.conftest import PASSWORD, free_port
from tests.node.test_crash import set_setting

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FEDPETITION_CHROMIUM", "/usr/bin/chromium")
REQUIRED_ENV = "FEDPETITION_TEST_BROWSER"
AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
SLUG = "clean-air"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def unavailable(reason: str) -> None:
    """Skip, saying why; under CI the browser tests are required, so fail instead."""
    if os.environ.get(REQUIRED_ENV):
        pytest.fail(f"{reason} ({REQUIRED_ENV} is set: the browser tests must run)")
    pytest.skip(reason)


@dataclass
class Site:
    node: Node
    url: str
    inbox: Inbox
    token: str  # an organiser's API token


@pytest.fixture
async def site(tmp_path: Path, smtp: tuple[Inbox, int]) -> AsyncIterator[Site]:
    """A node with a petition in French and English, serving with its background work."""
    inbox, smtp_port = smtp
    port = free_port()
    name = f"127.0.0.1:{port}"
    config = await init_node(tmp_path / "node", name, f"http://{name}", listen_port=port)
    text = config.read_text(encoding="utf-8")
    for section, key, value in (
            ("mail", "smtp_host", '"127.0.0.1"'), ("mail", "smtp_port", str(smtp_port)),
            ("mail", "smtp_starttls", "false"), ("sequencer", "period_seconds", "0.1"),
            # The node fetches its own published files for "verify this count".
            ("security", "dev_allow_loopback", "true")):
        text = set_setting(text, section, key, value)
    config.write_text(text, encoding="utf-8")
    node = await build_node(load_config(config))
    token = await node.create_organiser("alice", PASSWORD)
    await node.create_petition(None, {
        "slug": SLUG, "languages": ["fr", "en"],
        "title": {"fr": "Pour un air propre", "en": "For clean air"},
        "text": {"fr": "Nous demandons de l'air propre dans nos villes.",
                 "en": "We ask for clean air in our cities."},
        "addressee": "Ministère de la Transition écologique",
        "deadline": int(time.time()) + 30 * 86400, "thresholds": [10, 100]})
    runner = web.AppRunner(make_app(node), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Site(node, f"http://{name}", inbox, token)
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (make test installs it)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


def axe_source() -> str:
    if not AXE.exists():
        unavailable(f"axe-core is not installed ({AXE}; make test runs npm install)")
    return AXE.read_text(encoding="utf-8")


async def check_accessibility(page: Any, where: str) -> list[dict[str, Any]]:
    """Run axe-core on the page; fail on any serious or critical violation. Returns the
    minor and moderate ones, for the report."""
    await page.add_script_tag(content=axe_source())
    result = await page.evaluate("async () => await axe.run(document, {resultTypes: "
                                 "['violations']})")
    violations = result["violations"]
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    _record(where, violations)
    assert not serious, (where, json.dumps([{k: v[k] for k in ("id", "impact", "help")}
                                            | {"nodes": [n["target"] for n in v["nodes"]]}
                                            for v in serious], indent=1))
    return [v for v in violations if v not in serious]


def _record(where: str, violations: list[dict[str, Any]]) -> None:
    """Every page's findings, serious or not, in an artefact a person can read."""
    report = ROOT / "test-artifacts" / "axe.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    found = json.loads(report.read_text()) if report.exists() else {}
    found[where] = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                     "nodes": len(v["nodes"])} for v in violations]
    report.write_text(json.dumps(found, indent=1, sort_keys=True))


async def screenshot(page: Any, name: str) -> None:
    """Save the page at phone and desktop widths (artefacts for a person to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    if size:
        await page.set_viewport_size(size)
