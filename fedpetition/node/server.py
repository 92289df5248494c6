"""Starting a node: from a config file to a listening aiohttp server.

Also the one-off operations the CLI offers an association: ``init`` (a new node
folder), organiser accounts, and the local demo that ``make run`` starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
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
    await prepare_node(load_config(config_path))
    return config_path


async def prepare_node(config: NodeConfig) -> bool:
    """Create what a node's config names but does not exist yet: keys, outbox, database.

    Returns True if the node is new (it had no key). Existing keys are never replaced.
    """
    new = not config.keys.node_key.exists()
    config.node.data_dir.mkdir(parents=True, exist_ok=True)
    if new:
        create_node_key(config.keys.node_key, config.node.name)
    if not config.keys.data_key.exists():
        create_data_key(config.keys.data_key)
    config.mail.outbox_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # mails: private
    storage = await open_storage(config.database)  # creates and migrates the database
    await storage.close()
    return new


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


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any).

    Log messages never hold personal data (names, addresses, tokens): the code logs
    node names, petition ids, counts and errors only.
    """

    def format(self, record: logging.LogRecord) -> str:
        value = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                 "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            value["error"] = self.formatException(record.exc_info)
        return json.dumps(value, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def serve(config_path: Path) -> None:
    config = load_config(config_path)
    configure_logging(config.node.log_format)
    asyncio.run(run_server(config))


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
