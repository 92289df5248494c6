"""Starting a node: from a config file to a listening aiohttp server.

Also the one-off operations the CLI offers an association: ``init`` (a new node
folder), organiser accounts, and the local demo that ``make run`` starts.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
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
    """A node on its storage. SQLite migrates itself (one process, embedded); a
    PostgreSQL database must have been migrated (``fedpetition migrate``)."""
    signer = load_node_key(config.keys.node_key, config.node.name)
    data_key = load_data_key(config.keys.data_key)
    storage = await open_storage(config.database,
                                 migrate=config.database.backend == "sqlite")
    node = Node(config, storage, signer, data_key, mailer_from_config(config.mail))
    attach(node)
    return node


async def init_node(folder: Path, name: str, public_url: str, *,
                    listen_port: int | None = None, database_url: str | None = None) -> Path:
    """Create a node folder: config with commented defaults, keys, empty database."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CONFIG_NAME
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists: refusing to overwrite a node")
    config_path.write_text(render_default_config(name, public_url, listen_port=listen_port,
                                                 database_url=database_url),
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


async def run_server(config: NodeConfig, *, on_start: object = None,
                     sock: socket.socket | None = None, interrupt: bool = True) -> None:
    """Serve until SIGINT or SIGTERM; queued confirmations stay queued on disk.

    With ``sock`` (a worker of ``serve --workers``) the node answers on that shared
    listening socket."""
    node = await build_node(config)
    app = make_app(node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site: web.BaseSite = (web.SockSite(runner, sock) if sock is not None else
                          web.TCPSite(runner, config.node.listen_host, config.node.listen_port))
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"[node] cannot listen on {config.node.listen_host}:"
                          f"{config.node.listen_port}: {e.strerror or e}") from None
    log.info("node %s listening on http://%s:%d, public URL %s (process %d)",
             config.node.name, config.node.listen_host, config.node.listen_port,
             config.node.public_url, os.getpid())
    if not config.mail.smtp_host:
        log.info("no SMTP server configured: mail is written to %s", config.mail.outbox_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM) if interrupt else (signal.SIGTERM,):
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


def serve(config_path: Path, workers: int = 1) -> None:
    config = load_config(config_path)
    configure_logging(config.node.log_format)
    if workers == 1:
        asyncio.run(run_server(config))
        return
    serve_workers(config, workers)


RESTART_PAUSE_SECONDS = 1.0  # between a worker's death and its replacement, at first
RESTART_PAUSE_MAX = 60.0  # for workers that keep dying soon after they start
STABLE_SECONDS = 30.0  # a worker that lived this long resets the pause
PR_SET_PDEATHSIG = 1


def listening_socket(host: str, port: int) -> socket.socket:
    """The one socket the workers share (bound before they start)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"[node] cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _die_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies (Linux), so that a
    parent killed with SIGKILL leaves no worker serving the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's exit still stops its workers
    if os.getppid() != parent:  # it died before the call above
        os._exit(0)


def _worker(config: NodeConfig, sock: socket.socket, metrics_dir: str, parent: int) -> None:
    from fedpetition.node.metrics import use_multiprocess

    # The parent's handlers were inherited with the fork: a worker stops on SIGTERM
    # (run_server handles it once serving) and leaves SIGINT (Ctrl-C) to the parent.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    use_multiprocess(metrics_dir)
    asyncio.run(run_server(config, sock=sock, interrupt=False))


def serve_workers(config: NodeConfig, workers: int) -> None:
    """``workers`` processes answer on one socket; the parent restarts any that dies.

    Needs PostgreSQL: the processes share the node's state through it, and exactly
    one of them, the holder of the storage's lease, sequences (the others follow).
    """
    if workers < 1:
        raise ConfigError("--workers must be 1 or more")
    if config.database.backend != "postgresql":
        raise ConfigError("--workers needs [database] url = \"postgresql://...\": on SQLite a "
                          "node runs in one process")
    load_node_key(config.keys.node_key, config.node.name)  # fail here, not in every worker
    load_data_key(config.keys.data_key)
    asyncio.run(_check_schema(config))
    sock = listening_socket(config.node.listen_host, config.node.listen_port)
    # Counters of this run's workers; what a killed parent left is cleared first.
    metrics_dir = config.node.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(mode=0o700, parents=True)
    context = multiprocessing.get_context("fork")  # workers inherit the bound socket
    parent = os.getpid()
    stopping = False

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        process = context.Process(target=_worker,
                                  args=(config, sock, str(metrics_dir), parent),
                                  name="fedpetition-worker", daemon=False)
        process.start()
        return process, time.monotonic()

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = [start() for _ in range(workers)]
    pause = RESTART_PAUSE_SECONDS
    log.info("node %s: %d workers on http://%s:%d", config.node.name, workers,
             config.node.listen_host, config.node.listen_port)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, began) in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                lived = time.monotonic() - began
                pause = RESTART_PAUSE_SECONDS if lived > STABLE_SECONDS else min(
                    pause * 2, RESTART_PAUSE_MAX)
                log.warning("worker %s ended after %.0f s (exit %s); starting another in "
                            "%.0f s", process.pid, lived, process.exitcode, pause)
                _forget_worker(str(metrics_dir), process.pid)
                deadline = time.monotonic() + pause
                while not stopping and time.monotonic() < deadline:
                    time.sleep(0.2)
                if not stopping:
                    running[i] = start()
    finally:
        for process, _ in running:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process, _ in running:
            process.join(30)
            if process.is_alive():
                process.kill()
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _forget_worker(metrics_dir: str, pid: int | None) -> None:
    """A dead worker's gauges are gone with it (its counters stay counted)."""
    from prometheus_client import multiprocess

    if pid is not None:
        multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]


async def _check_schema(config: NodeConfig) -> None:
    storage = await open_storage(config.database, migrate=False)
    await storage.close()


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
