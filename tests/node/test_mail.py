"""Tests for fedpetition.node.mail: address checks, the outbox, and SMTP to a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import logging
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from fedpetition.node.config import parse_config
from fedpetition.node.errors import AddressError, MailError
from fedpetition.node.mail import (
    Mail,
    OutboxMailer,
    SmtpMailer,
    check_email,
    email_domain,
    mailer_from_config,
    normalise_email,
)

SENDER = "noreply@node-a.example"
LINK = "https://node-a.example/confirm/Zm9vYmFy"
MAIL = Mail(
    to="Alice.Martin@Example.ORG",
    subject="Confirmez votre signature : « Air pur »",
    text=f"Bonjour Alice,\n\nCliquez pour confirmer : {LINK}\n\nMerci — l'équipe\n",
    html=f'<p>Bonjour Alice,</p><p><a href="{LINK}">Confirmer</a> — merci</p>',
    links=(LINK,),
)


# --------------------------------------------------------------------------- addresses

ACCEPTED = [
    ("alice@example.org", "alice@example.org"),
    ("  alice@example.org\n", "alice@example.org"),
    ("Alice@EXAMPLE.Org", "Alice@example.org"),
    ("a.b+petitions@mail.example.co.uk", "a.b+petitions@mail.example.co.uk"),
    ("o'brien@example.ie", "o'brien@example.ie"),
    ("x!#$%&*/=?^_`{|}~-@example.org", "x!#$%&*/=?^_`{|}~-@example.org"),
    ("jörg@bücher.example", "jörg@xn--bcher-kva.example"),
    ("jörg@BÜCHER.Example", "jörg@xn--bcher-kva.example"),
    ("user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    # IANA's IDN test domain "例子.测试" and its published A-labels.
    ("用户@例子.测试", "用户@xn--fsqu00a.xn--0zwm56d"),
    ("a@b-c.d1", "a@b-c.d1"),
    ("l" * 64 + "@example.org", "l" * 64 + "@example.org"),
    ("a@" + ".".join(["d" * 63] * 3) + ".example", "a@" + ".".join(["d" * 63] * 3) + ".example"),
]

REJECTED = [
    ("", "the email address is empty"),
    ("   ", "the email address is empty"),
    ("alice.example.org", "has no '@'"),
    ("@example.org", "nothing before '@'"),
    ("alice@", "nothing after '@'"),
    ("alice@@example.org", "U+0040"),
    ("al ice@example.org", "U+0020"),
    ("alice@exa mple.org", "not a valid domain name"),
    ("ali\x00ce@example.org", "control character U+0000"),
    ("alice\r\nBcc: eve@example.org", "control character U+000D"),
    ("ali\tce@example.org", "control character U+0009"),
    ("ali\x7fce@example.org", "control character U+007F"),
    ("ali\x85ce@example.org", "control character U+0085"),
    ("ali\u200bce@example.org", "U+200B"),
    ("ali\u202ece@example.org", "U+202E"),
    ("alice,eve@example.org", "U+002C"),
    ("<alice@example.org>", "U+003C"),
    ('"alice"@example.org', "U+0022"),
    ("alice(x)@example.org", "U+0028"),
    (".alice@example.org", "misplaced dot"),
    ("alice.@example.org", "misplaced dot"),
    ("al..ice@example.org", "misplaced dot"),
    ("alice@localhost", "the domain has no dot"),
    ("alice@example", "the domain has no dot"),
    ("alice@example.org.", "ends with a dot"),
    ("alice@127.0.0.1", "an IP address"),
    ("alice@[127.0.0.1]", "not a valid domain name"),
    ("alice@exa_mple.org", "not a valid domain name"),
    ("alice@-example.org", "not a valid domain name"),
    ("alice@example..org", "not a valid domain name"),
    ("alice@xn--zz.example", "not a valid domain name"),
    ("alice@" + "d" * 64 + ".example", "not a valid domain name"),
    ("l" * 65 + "@example.org", "longer than 64 bytes"),
    ("é" * 33 + "@example.org", "longer than 64 bytes"),
    ("a" * 60 + "@" + ".".join(["d" * 63] * 3) + ".example", "longer than 254 bytes"),
]


@pytest.mark.parametrize(("address", "expected"), ACCEPTED)
def test_check_email_accepts(address: str, expected: str) -> None:
    assert check_email(address) == expected
    assert check_email(expected) == expected


@pytest.mark.parametrize(("address", "message"), REJECTED)
def test_check_email_rejects_without_quoting_the_address(address: str, message: str) -> None:
    with pytest.raises(AddressError) as info:
        check_email(address)
    assert message in str(info.value)
    for part in address.split("@"):
        if len(part) > 3:
            assert part not in str(info.value)


def test_check_email_wants_text() -> None:
    with pytest.raises(AddressError, match="must be text"):
        check_email(b"alice@example.org")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Alice.Martin@Example.ORG", "alice.martin@example.org"),
        ("JÖRG@BÜCHER.example", "jörg@xn--bcher-kva.example"),
        # NFC: a decomposed "ö" and the composed one are one address.
        ("jo\u0308rg@example.org", "j\u00f6rg@example.org"),
        # Provider aliases are kept apart in this version (dots, +tags).
        ("A.B+Petition@Gmail.com", "a.b+petition@gmail.com"),
        ("ab@gmail.com", "ab@gmail.com"),
    ],
)
def test_normalise_email(address: str, expected: str) -> None:
    assert normalise_email(address) == expected
    assert normalise_email(expected) == expected


def test_normalise_email_rechecks_the_length() -> None:
    # "İ" lower-cases to two code points: 2 bytes become 3.
    assert len(normalise_email("İ" * 21 + "@example.org").split("@")[0].encode()) == 63
    with pytest.raises(AddressError, match="longer than 64 bytes"):
        normalise_email("İ" * 22 + "@example.org")


def test_email_domain() -> None:
    assert email_domain("Alice@BÜCHER.example") == "xn--bcher-kva.example"
    with pytest.raises(AddressError):
        email_domain("nobody")


def test_mail_keeps_the_checked_address() -> None:
    # The mailers write this form into the To header and the envelope without checking again.
    assert MAIL.to == "Alice.Martin@example.org"
    assert Mail(to=" jörg@BÜCHER.Example ", subject="Hi", text="x").to == (
        "jörg@xn--bcher-kva.example")


def test_mail_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="subject"):
        Mail(to="alice@example.org", subject="Hi\nBcc: eve@example.org", text="x")
    with pytest.raises(AddressError):
        Mail(to="alice@example.org, eve@example.org", subject="Hi", text="x")
    with pytest.raises(ValueError, match="link"):
        Mail(to="alice@example.org", subject="Hi", text="x", links=("https://a b",))


# Every character up to U+00A0, inside a local part, a subject and a link: printable ASCII
# is checked at once, the rest one character at a time; both must decide alike.
CHARACTERS = [chr(c) for c in range(0xA1)]
ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            "!#$%&'*+-/=?^_`{|}~.")


@pytest.mark.parametrize("ch", CHARACTERS, ids=lambda ch: f"U+{ord(ch):04X}")
def test_each_character_in_a_local_part(ch: str) -> None:
    address = f"al{ch}ce@example.org"
    if ch in ATEXT or (ord(ch) >= 0x80 and ch.isprintable()):
        assert check_email(address) == address
        return
    with pytest.raises(AddressError, match=f"U\\+{ord(ch):04X}"):
        check_email(address)


@pytest.mark.parametrize("ch", CHARACTERS, ids=lambda ch: f"U+{ord(ch):04X}")
def test_each_character_in_a_subject_and_a_link(ch: str) -> None:
    control = ch < " " or "\x7f" <= ch <= "\x9f"
    if control:
        with pytest.raises(ValueError, match="subject"):
            Mail(to="alice@example.org", subject=f"a{ch}b", text="x")
    else:
        assert Mail(to="alice@example.org", subject=f"a{ch}b", text="x").subject == f"a{ch}b"
    link = f"https://example.org/{ch}"
    if control or ch.isspace():
        with pytest.raises(ValueError, match="link"):
            Mail(to="alice@example.org", subject="Hi", text="x", links=(link,))
    else:
        assert Mail(to="alice@example.org", subject="Hi", text="x", links=(link,)).links


# --------------------------------------------------------------------------- outbox


def content(part: MIMEPart | None) -> str:
    """A text part's content with the CRLF line ends of the wire turned back into LF."""
    assert part is not None
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def check_message(message: EmailMessage, to: str) -> None:
    assert message["From"] == SENDER
    assert message["To"] == to
    assert message["Subject"] == MAIL.subject
    assert message["Date"].datetime.utcoffset().total_seconds() == 0
    assert message["Message-ID"].endswith("@node-a.example>")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    assert text is not None
    assert text.get_content_charset() == "utf-8"
    assert content(text) == MAIL.text
    assert content(message.get_body(("html",))) == f"{MAIL.html}\n"


async def test_outbox_writes_an_eml_and_logs_links_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "outbox"
    mailer = OutboxMailer(folder, SENDER)
    with caplog.at_level(logging.INFO, logger="fedpetition.mail"):
        await mailer.send(MAIL)
    (path,) = folder.iterdir()
    assert path.name.endswith(".eml") and not path.name.startswith(".")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    data = path.read_bytes()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    check_message(parse(data), "Alice.Martin@example.org")

    (record,) = caplog.records
    assert record.name == "fedpetition.mail" and record.levelno == logging.INFO
    line = record.getMessage()
    assert path.name in line and LINK in line
    for secret in ("Alice", "Martin", "example.org", "Example.ORG", "Air pur"):
        assert secret not in line


async def test_outbox_names_are_unique_and_in_order(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path, SENDER)
    plain = Mail(to="bob@example.org", subject="Receipt", text="Your receipt.\n")
    for _ in range(5):
        await mailer.send(plain)
    names = [p.name for p in tmp_path.iterdir()]
    assert len(set(names)) == 5
    assert all(n.endswith(".eml") for n in names)
    message = parse((tmp_path / names[0]).read_bytes())
    assert message.get_content_type() == "text/plain"
    assert content(message) == "Your receipt.\n"


async def test_outbox_with_a_utf8_recipient(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path, SENDER)
    await mailer.send(Mail(to="jörg@bücher.example", subject="Merci", text="Danke schön\n"))
    (path,) = tmp_path.iterdir()
    message = parse(path.read_bytes())
    assert message["To"] == "jörg@xn--bcher-kva.example"
    assert content(message) == "Danke schön\n"


async def test_outbox_that_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("not a folder")
    with pytest.raises(MailError, match=r"outbox .*: cannot write a mail") as info:
        await OutboxMailer(blocker, SENDER).send(MAIL)
    assert "Alice" not in str(info.value)
    assert not caplog.records


# --------------------------------------------------------------------------- SMTP


@dataclass
class Collector:
    """An aiosmtpd handler that keeps what it receives."""

    envelopes: list[Envelope] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)  # the connection of each RCPT
    refuse: str | None = None  # the reply to RCPT (its address replaces {}), if not 250
    stall: float = 0.0  # seconds before answering the message

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.peers.append(session.peer)
        if self.refuse:
            return self.refuse.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.stall)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int, list[tuple[str, str]]]]:
    collector = Collector()
    logins: list[tuple[str, str]] = []

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        logins.append(login)
        # handled=False: let the server send its own 535 reply on failure.
        return AuthResult(success=login == ("node-a", "s3cret"), handled=False)

    port = free_port()
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        enable_SMTPUTF8=True,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield collector, port, logins
    finally:
        controller.stop()


_OPEN: list[SmtpMailer] = []


@pytest.fixture(autouse=True)
async def _close_mailers() -> Any:
    """SmtpMailer keeps connections open between sends: close them after each test."""
    yield
    while _OPEN:
        await _OPEN.pop().close()


def smtp_mailer(port: int, **kwargs: Any) -> SmtpMailer:
    mailer = SmtpMailer("127.0.0.1", port, SENDER, starttls=False, timeout=5, **kwargs)
    _OPEN.append(mailer)
    return mailer


async def test_smtp_delivers_the_message(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]],
) -> None:
    collector, port, logins = smtp_server
    await smtp_mailer(port).send(MAIL)
    (envelope,) = collector.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["Alice.Martin@example.org"]
    assert isinstance(envelope.content, bytes)
    message = parse(envelope.content)
    check_message(message, "Alice.Martin@example.org")
    assert LINK in content(message.get_body(("plain",)))
    assert not logins


@pytest.mark.parametrize("connections", [1, 3])
async def test_smtp_sends_on_at_most_its_connections(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]], connections: int
) -> None:
    collector, port, _ = smtp_server
    mailer = smtp_mailer(port, connections=connections)
    mails = [dataclasses.replace(MAIL, to=f"signer{i}@example.org") for i in range(12)]
    await asyncio.gather(*(mailer.send(mail) for mail in mails))
    assert sorted(e.rcpt_tos[0] for e in collector.envelopes) == sorted(m.to for m in mails)
    # Twelve sends at once open as many connections as allowed, then reuse them.
    assert len(set(collector.peers)) == connections


def test_smtp_needs_a_connection() -> None:
    with pytest.raises(ValueError, match="at least one connection"):
        SmtpMailer("127.0.0.1", 25, SENDER, starttls=False, connections=0)


async def test_smtp_with_login_and_a_utf8_recipient(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]],
) -> None:
    collector, port, logins = smtp_server
    mailer = smtp_mailer(port, username="node-a", password="s3cret")
    assert "s3cret" not in repr(mailer)
    await mailer.send(Mail(to="jörg@bücher.example", subject="Reçu", text="Danke schön\n"))
    assert logins == [("node-a", "s3cret")]
    (envelope,) = collector.envelopes
    assert envelope.rcpt_tos == ["jörg@xn--bcher-kva.example"]
    message = parse(envelope.content)  # type: ignore[arg-type]
    assert message["Subject"] == "Reçu"
    assert content(message) == "Danke schön\n"


async def test_smtp_wrong_password(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]],
) -> None:
    _, port, _ = smtp_server
    with pytest.raises(MailError, match=r"answered 535") as info:
        await smtp_mailer(port, username="node-a", password="wrong").send(MAIL)
    assert info.value.permanent
    assert "wrong" not in str(info.value)


async def test_smtp_refused_recipient_is_not_named(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]],
) -> None:
    collector, port, _ = smtp_server
    collector.refuse = "550 5.1.1 <{}>: Recipient address rejected: User unknown"
    with pytest.raises(MailError) as info:
        await smtp_mailer(port).send(MAIL)
    message = str(info.value)
    assert message.startswith(f"SMTP server 127.0.0.1:{port} refused the recipient (550)")
    assert info.value.permanent
    assert "Alice" not in message and "example.org" not in message.lower()
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_smtp_connection_serves_again_after_a_refusal(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]],
) -> None:
    collector, port, _ = smtp_server
    mailer = smtp_mailer(port, connections=1)
    collector.refuse = "450 4.2.0 <{}>: Recipient address rejected: Greylisted"
    with pytest.raises(MailError, match="refused the recipient") as info:
        await mailer.send(MAIL)
    assert not info.value.permanent  # a 4xx: worth trying again later
    collector.refuse = None
    await mailer.send(MAIL)  # on the same connection, its envelope reset
    (envelope,) = collector.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["Alice.Martin@example.org"]


async def test_smtp_gives_up_on_a_mail_after_the_timeout(
    smtp_server: tuple[Collector, int, list[tuple[str, str]]],
) -> None:
    collector, port, _ = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, SENDER, starttls=False, timeout=0.3, connections=1)
    _OPEN.append(mailer)
    collector.stall = 1.0  # the answer to the message comes after the deadline
    with pytest.raises(MailError, match="cannot connect or send: TimeoutError") as info:
        await mailer.send(MAIL)
    assert not info.value.permanent
    collector.stall = 0.0
    await mailer.send(MAIL)  # on a new connection: the stalled one was closed
    assert len(collector.envelopes) == 1
    stalled, sent = collector.peers
    assert stalled != sent


async def test_smtp_reconnects_after_the_server_dropped_its_connection() -> None:
    collector = Collector()
    port = free_port()
    mailer = smtp_mailer(port, connections=1)
    for _ in range(2):  # the second server starts with the mailer's connection dropped
        controller = Controller(collector, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await mailer.send(MAIL)
        finally:
            controller.stop()
        await asyncio.sleep(0.05)  # the mailer's side sees the close
    assert len(collector.envelopes) == 2
    assert len(set(collector.peers)) == 2


async def test_smtp_utf8_address_needs_smtputf8() -> None:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        with pytest.raises(MailError, match="SMTPUTF8") as info:
            await smtp_mailer(port).send(Mail(to="jörg@bücher.example", subject="x", text="x"))
        assert info.value.permanent
        await smtp_mailer(port).send(MAIL)  # an ASCII address goes through
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in collector.envelopes] == [["Alice.Martin@example.org"]]


async def test_smtp_server_away() -> None:
    port = free_port()
    with pytest.raises(MailError, match=rf"SMTP server 127.0.0.1:{port}") as info:
        await smtp_mailer(port).send(MAIL)
    assert not info.value.permanent
    assert "Alice" not in str(info.value)


def test_smtp_tls_and_starttls_are_exclusive() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        SmtpMailer("smtp.example.net", 465, SENDER, starttls=True, tls=True)


# --------------------------------------------------------------------------- from config


def test_mailer_from_config(tmp_path: Path) -> None:
    node = '[node]\nname = "node-a.example"\npublic_url = "https://node-a.example"\n'
    outbox = mailer_from_config(parse_config(node, tmp_path / "node.toml").mail)
    assert isinstance(outbox, OutboxMailer)
    assert outbox.folder == tmp_path / "outbox"
    assert outbox.sender == SENDER
    smtp = mailer_from_config(
        parse_config(
            node + '[mail]\nsmtp_host = "smtp.example.net"\nsmtp_port = 2525\nconnections = 3\n',
            tmp_path / "node.toml",
        ).mail
    )
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.host, smtp.port, smtp.starttls, smtp.tls, smtp.connections) == (
        "smtp.example.net",
        2525,
        True,
        False,
        3,
    )
