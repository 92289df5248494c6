"""Outgoing mail: confirmation links and receipts, sent by SMTP or written to an outbox.

A node without an SMTP server (development, tests, a first try) writes every mail as
an ``.eml`` file and logs its links, so the confirmation flow works with no mail set up.
Neither path ever logs or raises with a recipient address: addresses are the personal
data the node exists to keep to itself.

This module also checks and normalises email addresses, since the normalised address
is what a signer's row, rate limits and nullifier are keyed on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import logging
import os
import re
import secrets
import string
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aiosmtplib
import idna

from fedpetition.node.errors import AddressError, MailError

if TYPE_CHECKING:
    from fedpetition.node.config import MailSection

__all__ = [
    "DEFAULT_CONNECTIONS",
    "MAX_ADDRESS_OCTETS",
    "MAX_LOCAL_OCTETS",
    "Mail",
    "Mailer",
    "OutboxMailer",
    "SmtpMailer",
    "check_email",
    "email_domain",
    "mailer_from_config",
    "normalise_email",
    "render_message",
]

logger = logging.getLogger("fedpetition.mail")

# RFC 5321 §4.5.3.1: a path is at most 256 octets with its angle brackets (254
# without), and a local part at most 64 octets.
MAX_ADDRESS_OCTETS = 254
MAX_LOCAL_OCTETS = 64

# RFC 5322 §3.2.3 atext, the characters of an unquoted local part besides dots.
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_LOCAL_CHARS = re.compile("[" + re.escape("".join(sorted(_ATEXT)) + ".") + "]*")
# RFC 1123 §2.1 host name labels, after IDNA has turned the domain into ASCII.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Anything shaped like an address, to scrub server replies before they reach a log.
_ADDRESS_LIKE = re.compile(r"[^\s<>@\"]+@[^\s<>@\"]+")


# --------------------------------------------------------------------------- addresses


def _char_problem(ch: str) -> str | None:
    """Why ``ch`` cannot appear in an unquoted local part, or None."""
    if ch in _ATEXT or ch == ".":
        return None
    category = unicodedata.category(ch)
    if category == "Cc":
        return f"contains the control character U+{ord(ch):04X}"
    if ord(ch) < 0x80 or category[0] in "CZ":
        # ASCII specials (space, comma, angle brackets, quotes...) would let an
        # address smuggle a second recipient into a header; non-ASCII format,
        # separator, private-use and unassigned characters only ever deceive.
        return f"contains the character U+{ord(ch):04X}, not allowed in an address"
    return None


@functools.lru_cache(maxsize=4096)  # domains repeat (a few providers): IDNA is costly
def _ascii_domain(domain: str) -> str:
    """The domain as lower-case ASCII (IDNA 2008 with UTS 46 mapping), or AddressError."""
    if not domain:
        raise AddressError("the address has nothing after '@'")
    if domain.endswith("."):
        raise AddressError("the domain ends with a dot")
    try:
        ace = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        # The library's message quotes the domain; keep it out of errors and logs.
        raise AddressError("the domain is not a valid domain name") from None
    labels = ace.split(".")
    if not all(_LDH_LABEL.fullmatch(label) for label in labels):
        raise AddressError("the domain is not a valid domain name")
    if len(labels) < 2:
        # ICANN forbids dotless domains for mail; "alice@gmail" is always a typo.
        raise AddressError("the domain has no dot")
    if labels[-1].isdigit():
        raise AddressError("the domain is an IP address, not a domain name")
    return ace


def check_email(address: str) -> str:
    """Check an address's syntax; return it stripped, with its domain as lower-case ASCII.

    Accepts the unquoted (dot-atom) local parts real providers hand out, including
    UTF-8 ones (RFC 6531), and refuses quoted local parts and address literals. The
    error never quotes the address, so it may be logged or shown as is.
    """
    if not isinstance(address, str):
        raise AddressError("an email address must be text")
    address = address.strip()
    if not address:
        raise AddressError("the email address is empty")
    # Most addresses are printable ASCII: then no character is a control character,
    # and a local part of atext and dots is checked at once (else one by one below).
    plain = address.isascii() and address.isprintable()
    if not plain:
        for ch in address:
            if unicodedata.category(ch) == "Cc":
                raise AddressError(
                    f"the address contains the control character U+{ord(ch):04X}")
    local, at, domain = address.rpartition("@")
    if not at:
        raise AddressError("the address has no '@'")
    if not local:
        raise AddressError("the address has nothing before '@'")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise AddressError("the part before '@' has a misplaced dot")
    if not (plain and _LOCAL_CHARS.fullmatch(local)):
        for ch in local:
            problem = _char_problem(ch)
            if problem is not None:
                raise AddressError(f"the address {problem}")
    if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise AddressError(f"the part before '@' is longer than {MAX_LOCAL_OCTETS} bytes")
    ace = _ascii_domain(domain)
    result = f"{local}@{ace}"
    if len(result.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise AddressError(f"the address is longer than {MAX_ADDRESS_OCTETS} bytes")
    return result


def normalise_email(address: str) -> str:
    """The form an address is keyed on: :func:`check_email`, then local part NFC, lower case.

    Lower-casing the local part merges ``Alice@`` and ``alice@``, which every large
    provider delivers to the same mailbox, though RFC 5321 lets a server tell them
    apart. Provider-specific aliases are deliberately not merged in this version:
    Gmail ignores dots and ``+tag`` suffixes, other providers do neither or only
    one, and merging them needs a per-provider list whose every rule also lets
    anyone who knows one alias link it to the others. A later protocol version
    specifies normalisation together with nullifiers (spec §4.4, Appendix B),
    weighing each rule's privacy cost against the duplicates it catches; until
    then ``a.b@`` and ``ab@`` count as two signers.
    """
    local, _, domain = check_email(address).rpartition("@")
    local = unicodedata.normalize("NFC", unicodedata.normalize("NFC", local).lower())
    # Lower-casing can lengthen a local part ("İ" becomes two code points): check again.
    return check_email(f"{local}@{domain}")


def email_domain(address: str) -> str:
    """The address's domain as lower-case ASCII, e.g. for per-domain rate limits."""
    return check_email(address).rpartition("@")[2]


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Mail:
    """One mail to one person.

    ``links`` are the actionable URLs in the mail (confirm, withdraw, receipt): an
    outbox logs them so a developer can click through without reading files. They
    must carry tokens, never an address.
    """

    to: str  # as check_email returns it
    subject: str
    text: str
    html: str | None = None
    links: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", check_email(self.to))
        # A line break in a header would let the subject add headers of its own.
        # (Printable ASCII has no control character: the usual case, checked at once.)
        if not _printable_ascii(self.subject) and any(
                unicodedata.category(ch) == "Cc" for ch in self.subject):
            raise ValueError("a mail subject must not contain control characters")
        for link in self.links:
            if _printable_ascii(link) and " " not in link:
                continue
            if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in link):
                raise ValueError("a mail link must not contain spaces or control characters")


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _needs_smtputf8(*addresses: str) -> bool:
    return not all(a.isascii() for a in addresses)


def render_message(mail: Mail, sender: str, now: datetime | None = None) -> bytes:
    """The RFC 5322 message as bytes: From, To, Subject, Date, Message-ID; text, html.

    Written directly rather than through ``email.message``: every value is ours
    and already checked (addresses by :func:`check_email`, a subject without
    control characters), so there is nothing to parse, and building a mail costs
    microseconds instead of most of a signature's CPU time. The body is UTF-8
    sent as 8bit (readable in an outbox file, links unbroken) unless a line is too
    long for that, then base64. ``sender`` is an address as :func:`check_email`
    returns it, as each mailer keeps it.
    """
    subject = mail.subject if mail.subject.isascii() else Header(mail.subject, "utf-8").encode()
    date = _date_of_second(int(time.time())) if now is None else email.utils.format_datetime(now)
    headers = [
        f"From: {sender}",
        f"To: {mail.to}",
        f"Subject: {subject}",
        f"Date: {date}",
        # Passing the domain keeps make_msgid from resolving this machine's name.
        f"Message-ID: {email.utils.make_msgid(domain=sender.rpartition('@')[2])}",
        "MIME-Version: 1.0",
    ]
    if mail.html is None:
        head, body = _part("text/plain", mail.text)
        return _crlf(headers + head) + b"\r\n" + body
    boundary = "=_" + secrets.token_hex(16)
    parts = [_part("text/plain", mail.text), _part("text/html", mail.html)]
    lines = [*headers, f'Content-Type: multipart/alternative; boundary="{boundary}"']
    out = _crlf(lines) + b"\r\n"
    for head, body in parts:
        out += f"--{boundary}\r\n".encode() + _crlf(head) + b"\r\n" + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@functools.lru_cache(maxsize=2)  # every mail sent in the same second has the same Date
def _date_of_second(second: int) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(second, UTC))  # RFC 5322 §3.3


MAX_LINE = 998  # RFC 5322 §2.1.1, without the CRLF


def _part(content_type: str, text: str) -> tuple[list[str], bytes]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    raw = "\r\n".join(lines).encode("utf-8")
    if all(len(line.encode("utf-8")) <= MAX_LINE for line in lines):
        encoding, body = "8bit", raw
    else:
        encoding = "base64"
        body = b"\r\n".join(base64.encodebytes(raw).splitlines())
    head = [f"Content-Type: {content_type}; charset=utf-8",
            f"Content-Transfer-Encoding: {encoding}"]
    return head, body if body.endswith(b"\r\n") else body + b"\r\n"


def _crlf(lines: list[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


# --------------------------------------------------------------------------- mailers


class Mailer(Protocol):
    """Something that delivers a :class:`Mail`, or raises :class:`MailError`."""

    async def send(self, mail: Mail) -> None: ...

    async def close(self) -> None:
        """Release connections kept between sends."""
        ...


class MemoryMailer:
    """Keeps every mail in memory instead of sending it: for tests, benchmarks and
    simulations, where mails are read back by their recipient."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, mail: Mail) -> None:
        self.sent.append(mail)

    async def close(self) -> None:
        """Nothing to release."""

    def last_link(self, to: str) -> str:
        """The first link of the latest mail to ``to``."""
        for mail in reversed(self.sent):
            if mail.to == to:
                return mail.links[0]
        raise LookupError(f"no mail to {to}")

    def last_token(self, to: str) -> str:
        """The token ending that link (``/s/<token>``)."""
        return self.last_link(to).rsplit("/", 1)[1]

    def last_path(self) -> str:
        """The path of the link in the latest mail (the node's public URL stripped)."""
        return re.sub(r"^https?://[^/]+", "", self.sent[-1].links[0])


class OutboxMailer:
    """Writes each mail to ``folder`` as an ``.eml`` file, for nodes without SMTP.

    The folder and its files are private to the node's user (0700 / 0600): mails
    hold addresses and bearer links.
    """

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = Path(folder)
        self.sender = check_email(sender)

    async def send(self, mail: Mail) -> None:
        data = render_message(mail, self.sender)
        name = await asyncio.to_thread(self._write, data)
        logger.info("outbox: wrote %s links: %s", name, " ".join(mail.links) or "(none)")

    async def close(self) -> None:
        """Nothing is kept open between mails."""

    def _write(self, data: bytes) -> str:
        """Write atomically: a reader of the folder never sees a half-written mail."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            name = f"{stamp}-{secrets.token_hex(4)}.eml"
            final = self.folder / name
            temp = self.folder / f".{name}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(temp, final)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except OSError as e:
            raise MailError(f"outbox {self.folder}: cannot write a mail: {e.strerror or e}") from e
        return name


def _scrub(text: str) -> str:
    """Server replies often quote the recipient: replace anything address-shaped."""
    return _ADDRESS_LIKE.sub("<address>", text)


# A mail holds its connection for four round trips (MAIL, RCPT, DATA, the message):
# with 8, a server 50 ms away takes about 40 mails a second (docs/operations.md).
DEFAULT_CONNECTIONS = 8


class SmtpMailer:
    """Sends through an SMTP submission server with ``aiosmtplib``.

    ``starttls`` requires STARTTLS (port 587); ``tls`` is implicit TLS (port 465);
    with neither, the connection is plain text, for a relay on the same machine.
    Up to ``connections`` stay open between mails, one mail on each at a time.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        tls: bool = False,
        timeout: float = 30.0,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        if starttls and tls:
            raise ValueError("starttls and tls are exclusive: tls is TLS from the first byte")
        self.host = host
        self.port = port
        self.sender = check_email(sender)
        self.username = username
        self._password = password
        self.starttls = starttls
        self.tls = tls
        self.timeout = timeout
        self._idle: list[aiosmtplib.SMTP] = []  # open connections, ready to send
        if connections < 1:
            raise ValueError("an SMTP mailer needs at least one connection")
        self.connections = connections
        self._slots = asyncio.Semaphore(connections)  # sends at once = connections at most

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host!r}, {self.port}, tls={self.tls}, starttls={self.starttls})"

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, use_tls=self.tls, start_tls=self.starttls,
            username=self.username or None, password=self._password or None,
            timeout=self.timeout,
            # Without it, aiosmtplib looks up this machine's name in a thread per connection.
            local_hostname=email_domain(self.sender).encode("idna").decode("ascii"),
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:  # STARTTLS and login say EHLO already
            await client.ehlo()
        return client

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
            client.close()

    async def send(self, mail: Mail) -> None:
        """Send over one of the kept-open connections, reconnecting once if it dropped."""
        data = render_message(mail, self.sender)
        utf8 = _needs_smtputf8(self.sender, mail.to)
        where = f"SMTP server {self.host}:{self.port}"
        async with self._slots:
            await self._send(data, mail.to, utf8, where)

    async def _send(self, data: bytes, recipient: str, utf8: bool, where: str) -> None:
        client = self._idle.pop() if self._idle else None
        try:
            for attempt in (1, 2):
                try:
                    if client is None or not client.is_connected:
                        client = await self._connect()
                    if utf8 and not client.supports_extension("smtputf8"):
                        raise MailError(f"{where} does not take addresses in UTF-8 (SMTPUTF8)",
                                        permanent=True)
                    await self._transaction(client, data, recipient, utf8)
                    break
                except aiosmtplib.SMTPServerDisconnected:
                    client = None
                    if attempt == 2:
                        raise
        # Every branch drops the original exception (``from None``): its text and
        # attributes name the recipient, and tracebacks end up in logs.
        except aiosmtplib.SMTPRecipientRefused as e:
            raise MailError(f"{where} refused the recipient ({e.code})",
                            permanent=500 <= e.code < 600) from None
        except aiosmtplib.SMTPResponseException as e:
            raise MailError(
                f"{where} answered {e.code}: {_scrub(e.message)}", permanent=500 <= e.code < 600
            ) from None
        except aiosmtplib.SMTPException as e:
            _drop(client)
            client = None
            raise MailError(f"{where}: {_scrub(str(e))}") from None
        except (OSError, TimeoutError) as e:
            _drop(client)
            client = None
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise MailError(f"{where}: cannot connect or send: {reason}") from None
        finally:
            if client is not None and client.is_connected:
                self._idle.append(client)  # never more than `connections`: see _slots

    async def _transaction(self, client: aiosmtplib.SMTP, data: bytes, recipient: str,
                           utf8: bool) -> None:
        """MAIL, RCPT and DATA for one mail; RSET after a refusal, so the connection
        serves the next mail.

        The library's ``sendmail`` parses and quotes each address twice a mail, a fifth
        of the client's CPU time here. These addresses come from :func:`check_email`
        (an unquoted local part, a domain in A-labels): ``<address>`` is their RFC 5321
        form as they are. One deadline covers the whole mail: the library's timeout on
        each command costs a timer and a task apiece, another tenth.
        """
        encoding = "utf-8" if utf8 else "ascii"
        options = [b"SMTPUTF8"] if utf8 else []
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.execute_command(
                    b"MAIL", b"FROM:<" + self.sender.encode(encoding) + b">", *options,
                    timeout=None)
                if response.code != aiosmtplib.SMTPStatus.completed:
                    raise aiosmtplib.SMTPSenderRefused(response.code, response.message,
                                                       self.sender)
                response = await client.execute_command(
                    b"RCPT", b"TO:<" + recipient.encode(encoding) + b">", timeout=None)
                if response.code not in (aiosmtplib.SMTPStatus.completed,
                                         aiosmtplib.SMTPStatus.will_forward):
                    raise aiosmtplib.SMTPRecipientRefused(response.code, response.message,
                                                          recipient)
                await client.data(data, timeout=None)
        except aiosmtplib.SMTPResponseException:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.rset()
            raise


def _drop(client: aiosmtplib.SMTP | None) -> None:
    """Close a connection left in an unknown state (an error or a timeout mid-mail)."""
    if client is not None:
        client.close()


def mailer_from_config(config: MailSection) -> Mailer:
    """The SMTP mailer if ``[mail] smtp_host`` is set, else the outbox."""
    if not config.smtp_host:
        return OutboxMailer(config.outbox_dir, config.sender)
    return SmtpMailer(
        config.smtp_host,
        config.smtp_port,
        config.sender,
        username=config.smtp_username,
        password=config.smtp_password,
        starttls=config.smtp_starttls,
        tls=config.smtp_tls,
        timeout=config.timeout_seconds,
        connections=config.connections,
    )
