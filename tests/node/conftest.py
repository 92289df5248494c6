"""Real nodes for tests: a config and keys in tmp_path, a SQLite file, a mail sink.

``NodeHarness`` runs the node's real aiohttp app on a loopback port whose
number is also the node's name, so the URLs it publishes (and that the
verifier follows) are real.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.mail import MemoryMailer
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node
from tests.conftest import Databases

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeHarness:
    node: Node
    client: TestClient[Any, Any]
    mail: MemoryMailer
    token: str  # an organiser's API token
    folder: Path
    port: int
    auth: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def create_petition(self, slug: str = "clean-air", **changes: Any) -> dict[str, Any]:
        data = {
            "slug": slug, "languages": ["fr", "en"],
            "title": {"fr": "Pour un air propre", "en": "For clean air"},
            "text": {"fr": "Nous demandons de l'air propre.", "en": "We ask for clean air."},
            "addressee": "Ministère", "deadline": int(time.time()) + 30 * 86400,
            "thresholds": [1, 5], **changes,
        }
        response = await self.client.post("/api/petitions", json=data, headers=self.auth)
        assert response.status == 201, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    async def sign(self, slug: str, email: str, name: str = "Ada Lovelace",
                   region: str | None = "FR-IDF") -> str:
        """Sign through the API and return the token of the link mailed back."""
        response = await self.client.post(f"/api/petitions/{slug}/signatures", json={
            "name": name, "email": email, "region": region})
        assert response.status == 202, await response.text()
        return self.mail.last_token(email.lower())

    async def confirm(self, token: str) -> dict[str, Any]:
        response = await self.client.post(f"/api/signatures/{token}/confirm")
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    async def sequence(self) -> None:
        await self.node.sequencer.sequence_once()


@pytest.fixture
async def harness(tmp_path: Path, databases: Databases) -> AsyncIterator[NodeHarness]:
    """A node on each storage backend (the test runs once per backend)."""
    port = free_port()
    name = f"127.0.0.1:{port}"
    config_path = await init_node(tmp_path / "node", name, f"http://{name}", listen_port=port,
                                  database_url=databases.new())
    node = await build_node(load_config(config_path))
    sink = MemoryMailer()
    node.mailer = sink
    token = await node.create_organiser("alice", PASSWORD)
    app = make_app(node, background=False)
    await node.start()
    server = TestServer(app, host="127.0.0.1", port=port)
    async with TestClient(server) as client:
        yield NodeHarness(node, client, sink, token, tmp_path / "node", port,
                          {"Authorization": f"Bearer {token}"})
    await node.storage.close()
