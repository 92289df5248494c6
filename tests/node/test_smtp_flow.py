"""The whole signing flow through a real SMTP server (aiosmtpd on loopback).

The node is configured like an association would (``[mail] smtp_host``,
``smtp_port``, ``smtp_starttls = false``); the confirmation mail travels over
SMTP, is parsed from what the server received, and its link confirms the
signature, which is sequenced and gets a receipt that verifies.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import Envelope

from fedpetition.core.receipts import Receipt, verify_receipt
from fedpetition.node import i18n
from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.mail import SmtpMailer
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node
from tests.conftest import Databases, Inbox

from .conftest import free_port
from .test_crash import set_setting

SLUG = "clean-air"
LINK = re.compile(r"(https?://[^\s/]+)(/(?:s|privacy)/[A-Za-z0-9_-]{20,})")


@dataclass
class SmtpNode:
    node: Node
    client: TestClient[Any, Any]
    inbox: Inbox
    port: int


@pytest.fixture
async def smtp_node(tmp_path: Path, smtp: tuple[Inbox, int], databases: Databases
                    ) -> AsyncIterator[SmtpNode]:
    inbox, smtp_port = smtp
    port = free_port()
    name = f"127.0.0.1:{port}"
    config_path = await init_node(tmp_path / "node", name, f"http://{name}", listen_port=port,
                                  database_url=databases.new())
    text = config_path.read_text(encoding="utf-8")
    for key, value in (
        ("smtp_host", '"127.0.0.1"'),
        ("smtp_port", str(smtp_port)),
        ("smtp_starttls", "false"),
        ("timeout_seconds", "5.0"),
    ):
        text = set_setting(text, "mail", key, value)
    config_path.write_text(text, encoding="utf-8")
    node = await build_node(load_config(config_path))
    assert isinstance(node.mailer, SmtpMailer)
    assert (node.mailer.host, node.mailer.port) == ("127.0.0.1", smtp_port)
    assert not node.mailer.starttls and not node.mailer.tls
    await node.start()
    await node.create_petition(
        None,
        {
            "slug": SLUG,
            "languages": ["fr", "en"],
            "title": {"fr": "Pour un air propre", "en": "For clean air"},
            "text": {"fr": "Nous demandons de l'air propre.", "en": "We ask for clean air."},
            "addressee": "Ministère",
            "deadline": int(time.time()) + 86400,
        },
    )
    server = TestServer(make_app(node, background=False), host="127.0.0.1", port=port)
    async with TestClient(server) as client:
        yield SmtpNode(node, client, inbox, port)
    await node.mailer.close()
    await node.storage.close()


def parse(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def link_path(message: EmailMessage, public_url: str) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "the mail has no text part"
    found = LINK.search(part.get_content())
    assert found, "no link in the mail"
    assert found.group(1) == public_url, "the link does not point to the node's public URL"
    return found.group(2)


@pytest.mark.parametrize(
    ("typed", "address", "language"),
    [
        ("Ada.Lovelace@Example.ORG", "ada.lovelace@example.org", "en"),
        ("Zoé.Signataire@exemple.fr", "zoé.signataire@exemple.fr", "fr"),  # SMTPUTF8
    ],
)
async def test_sign_mail_confirm_sequence_receipt(
    smtp_node: SmtpNode, typed: str, address: str, language: str
) -> None:
    s = smtp_node
    public_url = s.node.config.node.public_url
    response = await s.client.post(
        f"/api/petitions/{SLUG}/signatures",
        json={"name": "Ada Lovelace", "email": typed, "region": "FR-IDF", "language": language},
    )
    assert response.status == 202, await response.text()

    (envelope,) = await s.inbox.wait_for(address)
    assert envelope.mail_from == s.node.config.mail.sender
    assert envelope.rcpt_tos == [address]
    message = parse(envelope)
    assert message["To"] == address and message["From"] == s.node.config.mail.sender
    title = {"en": "For clean air", "fr": "Pour un air propre"}[language]
    assert message["Subject"] == i18n.t(language, "mail.confirm.subject", title=title)
    path = link_path(message, public_url)
    token = path.rsplit("/", 1)[1]
    assert path == f"/s/{token}"

    signer = await s.client.get(path)  # the signer's page, as the link opens it
    assert signer.status == 200
    response = await s.client.post(f"/api/signatures/{token}/confirm")
    assert response.status == 200 and (await response.json())["status"] == "confirmed"
    await s.node.sequencer.sequence_once()
    status = await (await s.client.get(f"/api/signatures/{token}")).json()
    assert status["status"] == "counted" and status["log_index"] == 0

    response = await s.client.get(f"/api/signatures/{token}/receipt")
    assert response.status == 200
    checked = verify_receipt(Receipt.decode(await response.read()))
    assert checked.record.email == address and checked.record.name == "Ada Lovelace"
    assert checked.entry.region == "FR-IDF" and checked.checkpoint.size == 1
    petition = await (await s.client.get(f"/api/petitions/{SLUG}")).json()
    assert petition["counts"]["total"] == 1

    # Signing again mails the existing signer a fresh link instead of a second signature.
    response = await s.client.post(
        f"/api/petitions/{SLUG}/signatures",
        json={"name": "Someone Else", "email": typed, "language": language},
    )
    assert response.status == 202
    first, again = await s.inbox.wait_for(address, 2)
    assert first is envelope
    assert parse(again)["Subject"] == i18n.t(language, "mail.already.subject", title=title)
    fresh = link_path(parse(again), public_url)
    assert fresh != path
    status = await (await s.client.get(f"/api/signatures/{fresh.rsplit('/', 1)[1]}")).json()
    assert status["status"] == "counted"  # the fresh link opens the same, counted signature

    # The privacy link travels by SMTP too, and its export shows this signature.
    response = await s.client.post("/api/privacy", json={"email": typed, "language": language})
    assert response.status == 202
    *_, privacy_mail = await s.inbox.wait_for(address, 3)
    privacy = link_path(parse(privacy_mail), public_url)
    assert privacy.startswith("/privacy/")
    export = await (await s.client.get(f"/api{privacy}")).json()
    assert export["email"] == address
    assert [item["status"] for item in export["signatures"]] == ["counted"]
