"""A local federation: what ``make run`` starts.

Three nodes from the ready configs in ``nodes/`` (loopback ports 8441 to 8443),
all served from this one process, each with its own keys, database and outbox
under ``var/nodes/``. The first node starts a petition, the others ask to host
it and are admitted (the first node's config accepts them), then simulated
signers sign and confirm through the real HTTP pages' API, spread over the
three nodes, with the confirmation link taken from the mail each node sends.
Once every node shows the same federated count, the verifier recounts it from
the live nodes, and the addresses to open are printed. Running it again reuses
the nodes and adds signers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from fedpetition.node.app import make_app
from fedpetition.node.config import NodeConfig, load_config
from fedpetition.node.errors import ConfigError
from fedpetition.node.mail import Mail, Mailer
from fedpetition.node.server import build_node, prepare_node
from fedpetition.node.service import Node
from fedpetition.verify.http import verify_live
from fedpetition.verify.render import print_text

log = logging.getLogger("fedpetition.demo")

DEMO_SLUG = "air-pur"
DEMO_PETITION = {
    "slug": DEMO_SLUG,
    "languages": ["fr", "en"],
    "title": {"fr": "Pour un air propre dans nos villes", "en": "For clean air in our cities"},
    "text": {"fr": "Nous demandons des zones à faibles émissions effectives, des transports "
                   "publics renforcés et la publication des mesures de qualité de l'air.",
             "en": "We ask for effective low-emission zones, better public transport and the "
                   "publication of air quality measurements."},
    "addressee": "Ministère de la Transition écologique",
    "thresholds": [10, 100, 1000],
}
REGIONS = ("FR-IDF", "FR-ARA", "FR-OCC", "FR-BRE", "FR-HDF", None)


class LinkCatcher:
    """Sends mail as the node's own mailer does, and remembers each address's last link.

    The demo's simulated signers 'open their mail' here; the mails are still
    written to the node's outbox, as a person would find them.
    """

    def __init__(self, inner: Mailer) -> None:
        self.inner = inner
        self.links: dict[str, str] = {}

    async def send(self, mail: Mail) -> None:
        await self.inner.send(mail)
        if mail.links:
            self.links[mail.to] = mail.links[0]

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class DemoNode:
    config: NodeConfig
    node: Node
    mail: LinkCatcher
    runner: web.AppRunner
    password: str

    @property
    def url(self) -> str:
        return self.config.node.public_url.rstrip("/")


async def _start(config: NodeConfig) -> DemoNode:
    await prepare_node(config)
    node = await build_node(config)
    catcher = LinkCatcher(node.mailer)
    node.mailer = catcher
    password_file = config.node.data_dir / "demo-password.txt"
    if not password_file.exists():
        password = secrets.token_urlsafe(12)
        await node.create_organiser("demo", password)
        password_file.write_text(password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
    password = password_file.read_text(encoding="utf-8").strip()
    runner = web.AppRunner(make_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.node.listen_host, config.node.listen_port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"{config.source}: cannot listen on {config.node.listen_host}:"
                          f"{config.node.listen_port}: {e.strerror or e}") from None
    return DemoNode(config, node, catcher, runner, password)


async def _token(demo: DemoNode) -> str:
    return await demo.node.new_api_token("demo")


async def _api(session: aiohttp.ClientSession, method: str, url: str, **kwargs: object
               ) -> dict[str, object]:
    async with session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        body = await response.json(content_type=None)
        if response.status >= 400:
            raise ConfigError(f"{method} {url}: HTTP {response.status}: {body}")
        return body if isinstance(body, dict) else {"items": body}


async def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    assert callable(check)
    while not await check():
        if time.monotonic() > deadline:
            raise ConfigError(f"the local federation did not settle: {what}")
        await asyncio.sleep(0.2)


async def _setup_petition(session: aiohttp.ClientSession, nodes: list[DemoNode]) -> str:
    origin, *hosts = nodes
    url = f"{origin.url}/petitions/{DEMO_SLUG}"
    if await origin.node.storage.petition_by_slug(DEMO_SLUG) is None:
        await _api(session, "POST", origin.url + "/api/petitions",
                   headers={"Authorization": f"Bearer {await _token(origin)}"},
                   json={**DEMO_PETITION, "deadline": int(time.time()) + 90 * 86400})
    for host in hosts:
        petition_id = f"{origin.config.node.name}/{DEMO_SLUG}"
        if await host.node.storage.petition_by_petition_id(petition_id) is None:
            await _api(session, "POST", host.url + "/api/hosting",
                       headers={"Authorization": f"Bearer {await _token(host)}"},
                       json={"url": url})

    async def all_host() -> bool:
        for demo in nodes:
            view = await demo.node.petition(DEMO_SLUG)
            if len(view.roster.hosts) != len(nodes) or not view.is_open(time.time()):
                return False
        return True

    await _wait("every node to host the petition", all_host)
    return url


async def _signers(session: aiohttp.ClientSession, nodes: list[DemoNode], count: int) -> None:
    """Simulated people sign on a node of their choice, then click the mailed link.

    One in eight also signs on a second node, with the same address: the federated
    count takes them once (their nullifier is the same on every node).
    """
    rng = random.Random()
    for i in range(count):
        email = f"signer-{secrets.token_hex(4)}@example.org"
        region = rng.choice(REGIONS)
        chosen = rng.sample(nodes, 2 if i % 8 == 7 and len(nodes) > 1 else 1)
        for demo in chosen:
            await _api(session, "POST", f"{demo.url}/api/petitions/{DEMO_SLUG}/signatures",
                       json={"name": f"Signataire {i + 1}", "email": email, "region": region,
                             "language": "fr"})
            token = demo.mail.links[email].rsplit("/", 1)[1]
            await _api(session, "POST", f"{demo.url}/api/signatures/{token}/confirm")
            await asyncio.sleep(rng.uniform(0.02, 0.15))


async def _agreed(nodes: list[DemoNode]) -> int | None:
    """The federated total once every confirmation is in a witnessed checkpoint and every
    node computes the same total over every log at those checkpoints; else None."""
    sizes = {}
    for demo in nodes:
        storage = demo.node.storage
        if await storage.queued(1) or await storage.awaiting_nullifiers(1):
            return None  # confirmed signatures not yet in the log
        view = await demo.node.petition(DEMO_SLUG)
        sizes[demo.config.node.name] = view.checkpoint.size
    totals = set()
    for demo in nodes:
        summary = demo.node.federation.summary(await demo.node.petition(DEMO_SLUG))
        if any(h.get("problem") or h.get("size") != sizes[h["name"]]
               for h in summary["hosts"]):
            return None
        totals.add(summary["total"])
    if len(totals) != 1:
        return None
    total = totals.pop()
    return total if isinstance(total, int) else None


async def run_demo(config_paths: list[Path], signers: int, *, serve: bool = True) -> int:
    """Run the demo; serve until a signal when ``serve``; return the federated total."""
    configs = [load_config(path) for path in config_paths]
    nodes: list[DemoNode] = []
    try:
        for config in configs:
            nodes.append(await _start(config))
        async with aiohttp.ClientSession() as session:
            url = await _setup_petition(session, nodes)
            print(f"\n{len(nodes)} nodes co-host {url}; {signers} simulated signers now sign "
                  "on them...", flush=True)
            await _signers(session, nodes, signers)

        async def settled() -> bool:
            for demo in nodes:
                if demo.node.federation is not None:
                    await demo.node.federation.refresh_count((
                        await demo.node.petition(DEMO_SLUG)).record.id)
            return await _agreed(nodes) is not None

        await _wait("every node to show the same federated count", settled)
        total = await _agreed(nodes)
        assert total is not None
        print(f"every node shows the federated count: {total} signatures", flush=True)
        report = await asyncio.to_thread(verify_live, url)
        print("\nThe verifier recounts from the live nodes (fedpetition verify "
              f"{url}):\n", flush=True)
        print_text(report, sys.stdout)
        if not report.ok or report.tally is None or report.tally.total != total:
            raise ConfigError("the verifier does not agree with the nodes' count")
        print("\nOpen:", flush=True)
        for demo in nodes:
            print(f"  {demo.url}/p/{DEMO_SLUG}   (organiser pages: {demo.url}/admin, user "
                  f"'demo', password {demo.password}; mail in {demo.config.mail.outbox_dir})",
                  flush=True)
        print(f"Check it yourself: fedpetition verify {url}", flush=True)
        if not serve:
            return total
        print("Press Ctrl-C to stop.\n", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return total
    finally:
        for demo in nodes:
            with contextlib.suppress(Exception):
                await demo.runner.cleanup()


def demo(config_paths: list[Path], signers: int = 40) -> None:
    """Bring up the local federation of ``config_paths`` (the first is the origin)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_demo(config_paths, signers))
