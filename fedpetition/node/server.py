"""Starting a node: from a config file to a listening aiohttp server.

Also the one-off operations the CLI offers an association: ``init`` (a new node
folder), organiser accounts, and the local demo that ``make run`` starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import time
from pathlib import Path

from aiohttp import web

from fedpetition.node.app import make_app
from fedpetition.node.config import NodeConfig, load_config, render_default_config
from fedpetition.node.errors import ConfigError
from fedpetition.node.federation import attach
from fedpetition.node.keys import create_data_key, create_node_key, load_data_key, load_node_key
from fedpetition.node.mail import mailer_from_config
from fedpetition.node.service import Node
from fedpetition.node.storage import open_storage

log = logging.getLogger("fedpetition.node")

CONFIG_NAME = "fedpetition.toml"


async def build_node(config: NodeConfig) -> Node:
    signer = load_node_key(config.keys.node_key, config.node.name)
    data_key = load_data_key(config.keys.data_key)
    storage = await open_storage(config.database)
    node = Node(config, storage, signer, data_key, mailer_from_config(config.mail))
    attach(node)
    return node


async def init_node(folder: Path, name: str, public_url: str, *,
                    listen_port: int | None = None) -> Path:
    """Create a node folder: config with commented defaults, keys, empty database."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CONFIG_NAME
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists: refusing to overwrite a node")
    config_path.write_text(render_default_config(name, public_url, listen_port=listen_port),
                           encoding="utf-8")
    config = load_config(config_path)
    create_node_key(config.keys.node_key, config.node.name)
    create_data_key(config.keys.data_key)
    config.mail.outbox_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # mails: private

    storage = await open_storage(config.database)  # creates and migrates the database
    await storage.close()
    return config_path


async def run_server(config: NodeConfig, *, on_start: object = None) -> None:
    """Serve until SIGINT or SIGTERM; queued confirmations stay queued on disk."""
    node = await build_node(config)
    app = make_app(node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.node.listen_host, config.node.listen_port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"[node] cannot listen on {config.node.listen_host}:"
                          f"{config.node.listen_port}: {e.strerror or e}") from None
    log.info("node %s listening on http://%s:%d, public URL %s", config.node.name,
             config.node.listen_host, config.node.listen_port, config.node.public_url)
    if not config.mail.smtp_host:
        log.info("no SMTP server configured: mail is written to %s", config.mail.outbox_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if callable(on_start):
        await on_start(node)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(config_path: Path) -> None:
    asyncio.run(run_server(load_config(config_path)))


async def _with_node(config_path: Path, action: object) -> object:
    node = await build_node(load_config(config_path))
    try:
        await node.start()
        assert callable(action)
        return await action(node)
    finally:
        await node.storage.close()


def create_organiser(config_path: Path, name: str, password: str) -> str:
    async def action(node: Node) -> str:
        return await node.create_organiser(name, password)

    return str(asyncio.run(_with_node(config_path, action)))


def new_token(config_path: Path, name: str) -> str:
    async def action(node: Node) -> str:
        return await node.new_api_token(name)

    return str(asyncio.run(_with_node(config_path, action)))


DEMO_SLUG = "air-pur"


def demo(folder: Path, port: int = 8441) -> None:
    """A local node with a demo petition: what ``make run`` starts."""
    name = f"127.0.0.1:{port}"
    config_path = folder / CONFIG_NAME
    password_file = folder / "demo-password.txt"
    if not config_path.exists():
        asyncio.run(init_node(folder, name, f"http://{name}", listen_port=port))
        password = secrets.token_urlsafe(12)
        create_organiser(config_path, "demo", password)
        password_file.write_text(password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
    config = load_config(config_path)
    password = password_file.read_text(encoding="utf-8").strip() if password_file.exists() \
        else "(see demo-password.txt)"

    async def on_start(node: Node) -> None:
        if await node.storage.petition_by_slug(DEMO_SLUG) is None:
            await node.create_petition(None, {
                "slug": DEMO_SLUG,
                "languages": ["fr", "en"],
                "title": {"fr": "Pour un air propre dans nos villes",
                          "en": "For clean air in our cities"},
                "text": {"fr": "Nous demandons des zones à faibles émissions effectives, des "
                               "transports publics renforcés et la publication des mesures "
                               "de qualité de l'air.",
                         "en": "We ask for effective low-emission zones, better public "
                               "transport and the publication of air quality measurements."},
                "addressee": "Ministère de la Transition écologique",
                "deadline": int(time.time()) + 90 * 86400,
                "thresholds": [10, 100, 1000],
            })
        url = config.node.public_url
        print(f"\nfedpetition demo node running at {url}/", flush=True)
        print(f"  petition page:   {url}/p/{DEMO_SLUG}", flush=True)
        print(f"  organiser pages: {url}/admin  (user 'demo', password {password})", flush=True)
        print(f"  mail goes to:    {config.mail.outbox_dir}/ (one .eml file per mail)",
              flush=True)
        print(f"  verify the log:  fedpetition verify {url}/petitions/{DEMO_SLUG}/bundle.zip",
              flush=True)
        print("Press Ctrl-C to stop.\n", flush=True)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(run_server(config, on_start=on_start))
