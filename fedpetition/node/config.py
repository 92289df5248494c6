"""The node's configuration: one TOML file, checked strictly when the node starts.

Only ``[node] name`` and ``public_url`` are required; everything else has a default,
and :func:`render_default_config` writes a file listing every setting with its
default, ready for an association to edit. Unknown sections and keys are errors, as
are values of the wrong type: a misspelt limit must not silently leave the default
in force. Every error names the file, the ``[section] key`` and the problem.

Relative paths: ``[node] data_dir`` is relative to the config file's folder; every
other path (database, outbox, keys) is relative to ``data_dir``.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from fedpetition.core.errors import DecodeError
from fedpetition.core.names import check_language, check_node_name
from fedpetition.node.errors import AddressError, ConfigError
from fedpetition.node.mail import DEFAULT_CONNECTIONS as DEFAULT_MAIL_CONNECTIONS
from fedpetition.node.mail import check_email

__all__ = [
    "DatabaseSection",
    "FederationSection",
    "KeysSection",
    "LimitsSection",
    "MailSection",
    "NodeConfig",
    "NodeSection",
    "RetentionSection",
    "SecuritySection",
    "SequencerSection",
    "load_config",
    "parse_config",
    "render_default_config",
]

DEFAULT_LISTEN_HOST = "127.0.0.1"
DEFAULT_LISTEN_PORT = 8441
DEFAULT_LANGUAGES = ("fr", "en")
DEFAULT_DATA_DIR = "."
DEFAULT_DATABASE_URL = "sqlite:node.sqlite"
DEFAULT_SENDER_LOCAL = "noreply"
# For nodes named by an IP address or "localhost": a reserved domain (RFC 2606) that
# passes the syntax check and can never be mistaken for a real sender.
FALLBACK_SENDER = "noreply@localhost.invalid"
DEFAULT_SMTP_PORT = 587
DEFAULT_SMTP_TLS_PORT = 465
DEFAULT_MAIL_TIMEOUT = 30.0
DEFAULT_OUTBOX_DIR = "outbox"
DEFAULT_PERIOD_SECONDS = 1.0
DEFAULT_REFRESH_SECONDS = 30.0
DEFAULT_FEDERATION_TIMEOUT = 10.0
DEFAULT_MAX_BATCH = 10_000
DEFAULT_DAYS_AFTER_CLOSE = 30
DEFAULT_SIGN_PER_IP = 30
DEFAULT_SIGN_PER_DOMAIN = 1000
DEFAULT_CONFIRM_PER_IP = 120
DEFAULT_MAX_BODY_BYTES = 65_536
DEFAULT_PENDING_EXPIRY_HOURS = 72
DEFAULT_NODE_KEY = "keys/node.key"
DEFAULT_DATA_KEY = "keys/data.key"

_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")


# --------------------------------------------------------------------------- the sections


@dataclass(frozen=True)
class NodeSection:
    """Who the node is and where it listens."""

    name: str  # host[:port], spec §2.1: the node's identity and its key's name
    public_url: str  # scheme://name, no trailing slash
    listen_host: str
    listen_port: int  # 0: any free port (tests)
    languages: tuple[str, ...]  # the first is the default language of pages
    data_dir: Path  # absolute
    log_format: str = "text"  # "text", or "json": one JSON object per line


@dataclass(frozen=True)
class DatabaseSection:
    """Where the node's rows live; the URL is hidden from repr as it may hold a password."""

    url: str = field(repr=False)  # sqlite:///<absolute path> or postgresql://...
    sqlite_path: Path | None  # absolute, for SQLite only

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.sqlite_path is not None else "postgresql"


@dataclass(frozen=True)
class MailSection:
    """How confirmation mails leave the node: SMTP, or files in the outbox when no host."""

    sender: str
    smtp_host: str  # "" = no SMTP: write .eml files to outbox_dir
    smtp_port: int
    smtp_username: str
    smtp_password: str = field(repr=False)
    smtp_starttls: bool
    smtp_tls: bool
    outbox_dir: Path
    timeout_seconds: float
    connections: int  # SMTP connections kept open: mails sent at once


@dataclass(frozen=True)
class SequencerSection:
    """How often confirmed signatures are appended to the logs, and how many at once."""

    period_seconds: float
    max_batch: int


@dataclass(frozen=True)
class RetentionSection:
    """How long personal data outlives a petition."""

    days_after_close: int


@dataclass(frozen=True)
class LimitsSection:
    """Abuse limits on the public endpoints."""

    sign_per_ip_per_hour: int
    sign_per_email_domain_per_hour: int
    confirm_per_ip_per_hour: int
    max_body_bytes: int
    pending_expiry_hours: int


@dataclass(frozen=True)
class KeysSection:
    """Where the node's signing key and data-at-rest key are (absolute paths)."""

    node_key: Path
    data_key: Path


@dataclass(frozen=True)
class SecuritySection:
    """Switches that trade safety for convenience, and cookie policy."""

    dev_allow_loopback: bool  # let federation peers be loopback/private addresses
    cookie_secure: bool


@dataclass(frozen=True)
class FederationSection:
    """How the node works with other nodes."""

    accept_hosts: tuple[str, ...]  # node names admitted as hosts without asking; "*": any
    refresh_seconds: float  # how often the federated counts poll the hosts
    request_timeout_seconds: float  # for one request to another node


@dataclass(frozen=True)
class NodeConfig:
    """The whole configuration, as read from ``source``."""

    source: Path
    node: NodeSection
    database: DatabaseSection
    mail: MailSection
    sequencer: SequencerSection
    retention: RetentionSection
    limits: LimitsSection
    keys: KeysSection
    security: SecuritySection
    federation: FederationSection


SECTIONS = ("node", "database", "mail", "sequencer", "retention", "limits", "keys", "security",
            "federation")


# --------------------------------------------------------------------------- reading values


def _type_name(value: object) -> str:
    """The TOML name of ``value``'s type, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _unknown(what: str, key: str, known: Sequence[str]) -> str:
    """An 'unknown key' message with the closest known spelling, if any."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(known)
    return f"unknown {what} ({hint})"


class _Section:
    """One ``[section]`` of the file: typed getters that remember which keys were read."""

    def __init__(self, label: str, name: str, table: Mapping[str, object]) -> None:
        self.label = label
        self.name = name
        self.table = table
        self.known: list[str] = []

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.label}: [{self.name}] {key}: {problem}")

    def _get(self, key: str) -> object | None:
        self.known.append(key)
        return self.table.get(key)

    def string(self, key: str, default: str | None) -> str:
        value = self._get(key)
        if value is None:
            if default is None:
                raise self.error(key, "missing (this setting is required)")
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_type_name(value)}")
        if "\x00" in value:
            raise self.error(key, "contains a NUL character")
        return value

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"expected an integer, got {_type_name(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.error(key, f"{value} is out of range (must be {bounds})")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.error(key, f"expected a number, got {_type_name(value)}")
        number = float(value)
        if not math.isfinite(number) or not low <= number <= high:
            raise self.error(key, f"{value} is out of range (must be between {low} and {high})")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_type_name(value)}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of strings, got {_type_name(value)}")
        for item in value:
            if not isinstance(item, str):
                raise self.error(key, f"expected an array of strings, has {_type_name(item)}")
        return tuple(value)

    def path(self, key: str, default: str, base: Path) -> Path:
        """A path setting, made absolute against ``base`` (``~`` expands to home)."""
        value = self.string(key, default)
        if not value:
            raise self.error(key, "is empty (expected a path)")
        return Path(os.path.abspath(base / Path(value).expanduser()))

    def finish(self) -> None:
        """Refuse keys no getter asked for: they are typos or settings from elsewhere."""
        for key in self.table:
            if key not in self.known:
                raise self.error(key, _unknown("key", key, self.known))


# --------------------------------------------------------------------------- sections


def _host_problem(host: str) -> str | None:
    """Why ``host`` is not an IP address or host name, or None."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if len(host) <= 253 and _HOSTNAME.fullmatch(host):
        return None
    return f"{host!r} is neither an IP address nor a host name"


def _default_sender(name: str) -> str:
    """``noreply@<host>`` when the node's host can be a mail domain, else a placeholder."""
    host = name.rsplit(":", 1)[0] if not name.startswith("[") else ""
    try:
        return check_email(f"{DEFAULT_SENDER_LOCAL}@{host}")
    except AddressError:
        return FALLBACK_SENDER


def _node(s: _Section, base: Path) -> NodeSection:
    name = s.string("name", None)
    try:
        check_node_name(name)
    except DecodeError as e:
        raise s.error(
            "name", f"{e} (want host[:port], lower case, e.g. petitions.example.org)"
        ) from None
    url = s.string("public_url", None)
    public_url = _public_url(s, url, name)
    listen_host = s.string("listen_host", DEFAULT_LISTEN_HOST)
    problem = _host_problem(listen_host)
    if problem is not None:
        raise s.error("listen_host", problem)
    port = urlsplit(public_url).port or DEFAULT_LISTEN_PORT
    listen_port = s.integer("listen_port", port, 0, 65535)
    languages = s.strings("languages", DEFAULT_LANGUAGES)
    if not languages:
        raise s.error("languages", 'is empty (list at least one language, e.g. ["en"])')
    for language in languages:
        try:
            check_language(language)
        except DecodeError as e:
            raise s.error("languages", f'{e} (want a tag such as "fr" or "pt-BR")') from None
    if len(set(languages)) != len(languages):
        raise s.error("languages", "lists a language twice")
    data_dir = s.path("data_dir", DEFAULT_DATA_DIR, base)
    log_format = s.string("log_format", "text")
    if log_format not in ("text", "json"):
        raise s.error("log_format", f'{log_format!r} is not "text" or "json"')
    return NodeSection(name, public_url, listen_host, listen_port, languages, data_dir,
                       log_format)


def _public_url(s: _Section, url: str, name: str) -> str:
    """Check that the URL is ``http(s)://<name>`` and return it without a trailing slash."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as e:
        raise s.error("public_url", f"{url!r} is not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise s.error("public_url", f"{url!r} must start with https:// (or http:// for tests)")
    if "@" in parts.netloc:
        # Not quoted: user info may be a password.
        raise s.error("public_url", "must not contain a user name or password")
    if parts.netloc != name:
        raise s.error(
            "public_url",
            f"its host[:port] {parts.netloc!r} must be the node name {name!r}",
        )
    if parts.path not in ("", "/") or "?" in url or "#" in url:
        raise s.error("public_url", f"{url!r} must not have a path, query or fragment")
    return f"{parts.scheme}://{name}"


def _database(s: _Section, data_dir: Path) -> DatabaseSection:
    url = s.string("url", DEFAULT_DATABASE_URL)
    scheme = url.partition(":")[0]
    # The URL may carry a password: errors quote only its scheme.
    if scheme in ("postgresql", "postgres"):
        if not url.startswith(f"{scheme}://"):
            raise s.error("url", f"a {scheme} URL starts with {scheme}://")
        return DatabaseSection(url, None)
    if scheme != "sqlite":
        raise s.error(
            "url",
            f"unsupported scheme {scheme!r} (want sqlite:///absolute/path, "
            "sqlite:path/relative/to/data_dir or postgresql://...)",
        )
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        if not rest.startswith("///"):
            raise s.error("url", "a SQLite URL has no host: write sqlite:///absolute/path")
        rest = rest[2:]
    if not rest or rest.endswith("/") or "?" in rest or "#" in rest:
        raise s.error("url", f"{url!r} does not name a SQLite file")
    path = Path(os.path.abspath(data_dir / Path(rest).expanduser()))
    return DatabaseSection(f"sqlite://{path.as_posix()}", path)


def _mail(s: _Section, name: str, data_dir: Path) -> MailSection:
    sender = s.string("sender", _default_sender(name))
    try:
        sender = check_email(sender)
    except AddressError as e:
        raise s.error("sender", f"{sender!r} is not a valid address: {e}") from None
    smtp_host = s.string("smtp_host", "")
    if smtp_host:
        problem = _host_problem(smtp_host)
        if problem is not None:
            raise s.error("smtp_host", problem)
    starttls = s.boolean("smtp_starttls", True)
    tls = s.boolean("smtp_tls", False)
    if starttls and tls:
        raise s.error(
            "smtp_tls",
            "cannot be combined with smtp_starttls = true "
            "(for TLS from the first byte, usually port 465, set smtp_starttls = false)",
        )
    default_port = DEFAULT_SMTP_TLS_PORT if tls else DEFAULT_SMTP_PORT
    port = s.integer("smtp_port", default_port, 1, 65535)
    username = s.string("smtp_username", "")
    password = s.string("smtp_password", "")
    if username and not password:
        raise s.error("smtp_password", "missing while smtp_username is set")
    if password and not username:
        raise s.error("smtp_username", "missing while smtp_password is set")
    outbox = s.path("outbox_dir", DEFAULT_OUTBOX_DIR, data_dir)
    timeout = s.number("timeout_seconds", DEFAULT_MAIL_TIMEOUT, 1.0, 600.0)
    connections = s.integer("connections", DEFAULT_MAIL_CONNECTIONS, 1, 1000)
    return MailSection(sender, smtp_host, port, username, password, starttls, tls, outbox,
                       timeout, connections)


def _sequencer(s: _Section) -> SequencerSection:
    return SequencerSection(
        period_seconds=s.number("period_seconds", DEFAULT_PERIOD_SECONDS, 0.05, 3600.0),
        max_batch=s.integer("max_batch", DEFAULT_MAX_BATCH, 1, 1_000_000),
    )


def _retention(s: _Section) -> RetentionSection:
    return RetentionSection(s.integer("days_after_close", DEFAULT_DAYS_AFTER_CLOSE, 0))


def _limits(s: _Section) -> LimitsSection:
    return LimitsSection(
        sign_per_ip_per_hour=s.integer("sign_per_ip_per_hour", DEFAULT_SIGN_PER_IP, 1),
        sign_per_email_domain_per_hour=s.integer(
            "sign_per_email_domain_per_hour", DEFAULT_SIGN_PER_DOMAIN, 1
        ),
        confirm_per_ip_per_hour=s.integer("confirm_per_ip_per_hour", DEFAULT_CONFIRM_PER_IP, 1),
        max_body_bytes=s.integer("max_body_bytes", DEFAULT_MAX_BODY_BYTES, 1024, 16 * 2**20),
        pending_expiry_hours=s.integer(
            "pending_expiry_hours", DEFAULT_PENDING_EXPIRY_HOURS, 1, 24 * 365
        ),
    )


def _keys(s: _Section, data_dir: Path) -> KeysSection:
    node_key = s.path("node_key", DEFAULT_NODE_KEY, data_dir)
    data_key = s.path("data_key", DEFAULT_DATA_KEY, data_dir)
    if node_key == data_key:
        raise s.error("data_key", "must not be the same file as node_key")
    return KeysSection(node_key, data_key)


def _security(s: _Section, public_url: str) -> SecuritySection:
    return SecuritySection(
        dev_allow_loopback=s.boolean("dev_allow_loopback", False),
        cookie_secure=s.boolean("cookie_secure", public_url.startswith("https:")),
    )


def _federation(s: _Section) -> FederationSection:
    accept = s.strings("accept_hosts", ())
    for name in accept:
        if name != "*":
            try:
                check_node_name(name)
            except DecodeError as e:
                raise s.error("accept_hosts", f"{name!r} is not a node name: {e}") from None
    return FederationSection(
        accept_hosts=accept,
        refresh_seconds=s.number("refresh_seconds", DEFAULT_REFRESH_SECONDS, 0.5, 86400.0),
        request_timeout_seconds=s.number("request_timeout_seconds", DEFAULT_FEDERATION_TIMEOUT,
                                         1.0, 300.0),
    )


# --------------------------------------------------------------------------- the file


def _parse(document: Mapping[str, object], label: str, base: Path, source: Path) -> NodeConfig:
    """Build the config from a parsed TOML document; ``base`` anchors ``data_dir``."""
    sections: dict[str, _Section] = {}
    for key, value in document.items():
        if key not in SECTIONS:
            what = (
                "section" if isinstance(value, dict) else "top-level key (settings go in a section)"
            )
            raise ConfigError(f"{label}: [{key}]: {_unknown(what, key, SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(
                f"{label}: {key}: expected a section [{key}], got {_type_name(value)}"
            )
        sections[key] = _Section(label, key, value)
    for name in SECTIONS:
        sections.setdefault(name, _Section(label, name, {}))

    node = _node(sections["node"], base)
    config = NodeConfig(
        source=source,
        node=node,
        database=_database(sections["database"], node.data_dir),
        mail=_mail(sections["mail"], node.name, node.data_dir),
        sequencer=_sequencer(sections["sequencer"]),
        retention=_retention(sections["retention"]),
        limits=_limits(sections["limits"]),
        keys=_keys(sections["keys"], node.data_dir),
        security=_security(sections["security"], node.public_url),
        federation=_federation(sections["federation"]),
    )
    for section in sections.values():
        section.finish()
    return config


def parse_config(text: str, source: Path) -> NodeConfig:
    """Parse config text as if read from ``source`` (whose folder anchors ``data_dir``)."""
    source = Path(os.path.abspath(source))
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    return _parse(document, str(source), source.parent, source)


def load_config(path: Path | str) -> NodeConfig:
    """Read and check the config file at ``path``; raise ConfigError naming what is wrong."""
    source = Path(os.path.abspath(path))
    try:
        raw = source.read_bytes()
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the config file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{source}: not UTF-8 text (byte {e.start})") from None
    return parse_config(text, source)


# --------------------------------------------------------------------------- writing


def _toml(value: str | int | float | bool | Sequence[str]) -> str:
    """A TOML literal for a setting's value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04X}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    return "[" + ", ".join(_toml(item) for item in value) + "]"


Value = str | int | float | bool | Sequence[str]


def render_default_config(
    name: str,
    public_url: str,
    *,
    data_dir: str | None = None,
    listen_host: str | None = None,
    listen_port: int | None = None,
    languages: Sequence[str] | None = None,
    sender: str | None = None,
    dev_allow_loopback: bool | None = None,
    accept_hosts: Sequence[str] | None = None,
    database_url: str | None = None,
) -> str:
    """The config file ``fedpetition init`` writes: every setting, with what it does.

    The name, the public URL and any argument given are written as settings; every
    other setting is a commented-out line showing its default, so that reading the
    file back gives exactly the defaults. Raises ConfigError if the result would not
    load (a bad name, a URL that does not match it, ...).
    """
    label = "new config"
    base = Path.cwd()
    # The defaults that depend on name and URL come from the loader itself.
    minimal = _parse({"node": {"name": name, "public_url": public_url}}, label, base, base)
    given: dict[tuple[str, str], Value | None] = {
        ("node", "data_dir"): data_dir,
        ("node", "listen_host"): listen_host,
        ("node", "listen_port"): listen_port,
        ("node", "languages"): languages,
        ("mail", "sender"): sender,
        ("security", "dev_allow_loopback"): dev_allow_loopback,
        ("federation", "accept_hosts"): accept_hosts,
        ("database", "url"): database_url,
    }
    lines = [
        "# fedpetition node configuration, written by `fedpetition init`.",
        "# A commented-out setting shows its default: remove the '#' to change it.",
        "# data_dir is relative to this file's folder; other paths are relative to data_dir.",
    ]

    def section(
        title: str,
        settings: Sequence[tuple[str, Value, str]],
        required: Sequence[tuple[str, Value, str]] = (),
    ) -> None:
        lines.extend(["", f"[{title}]"])
        for key, fixed, help_text in required:
            lines.extend([f"# {help_text}", f"{key} = {_toml(fixed)}"])
        for key, default, help_text in settings:
            value = given.get((title, key))
            lines.append(f"# {help_text}")
            if value is not None:
                lines.append(f"{key} = {_toml(value)}")
            else:
                lines.append(f"# {key} = {_toml(default)}")

    node = minimal.node
    section(
        "node",
        [
            (
                "listen_host",
                DEFAULT_LISTEN_HOST,
                "Address the HTTP server binds to (behind a reverse proxy).",
            ),
            (
                "listen_port",
                node.listen_port,
                f"TCP port it listens on (default: public_url's port, else {DEFAULT_LISTEN_PORT}).",
            ),
            ("languages", DEFAULT_LANGUAGES, "Languages of the pages; the first is the default."),
            ("data_dir", DEFAULT_DATA_DIR, "Folder for the database, keys and outbox."),
            ("log_format", "text", 'Server logs: "text", or "json" (one object per line).'),
        ],
        required=[
            (
                "name",
                node.name,
                "This node's name, host[:port]: its identity in logs and its key's name. Required.",
            ),
            (
                "public_url",
                node.public_url,
                "Where people and other nodes reach this node; host[:port] must be name. Required.",
            ),
        ],
    )
    section(
        "database",
        [
            (
                "url",
                DEFAULT_DATABASE_URL,
                "sqlite:///absolute/path, sqlite:path/relative/to/data_dir, or postgresql://...",
            ),
        ],
    )
    mail = minimal.mail
    section(
        "mail",
        [
            ("sender", mail.sender, "From address of the mails the node sends."),
            ("smtp_host", "", "SMTP submission server; empty: write mails to outbox_dir instead."),
            (
                "smtp_port",
                DEFAULT_SMTP_PORT,
                f"Its port ({DEFAULT_SMTP_PORT}, or {DEFAULT_SMTP_TLS_PORT} with smtp_tls).",
            ),
            ("smtp_username", "", "Login for the SMTP server; empty: no login."),
            ("smtp_password", "", "Its password (then keep this file private: chmod 600)."),
            ("smtp_starttls", True, "Require STARTTLS on the connection (port 587)."),
            ("smtp_tls", False, "TLS from the first byte (port 465); needs smtp_starttls = false."),
            (
                "outbox_dir",
                DEFAULT_OUTBOX_DIR,
                "Where mails are written as .eml files without SMTP.",
            ),
            ("timeout_seconds", DEFAULT_MAIL_TIMEOUT,
             "Give up on connecting to the SMTP server, or on one mail, after this long."),
            (
                "connections",
                DEFAULT_MAIL_CONNECTIONS,
                "SMTP connections kept open (mails sent at once); more for a distant server.",
            ),
        ],
    )
    section(
        "sequencer",
        [
            (
                "period_seconds",
                DEFAULT_PERIOD_SECONDS,
                "How often confirmed signatures are appended to the logs (0.05 to 3600).",
            ),
            ("max_batch", DEFAULT_MAX_BATCH, "At most this many entries per append."),
        ],
    )
    section(
        "retention",
        [
            (
                "days_after_close",
                DEFAULT_DAYS_AFTER_CLOSE,
                "Days after a petition closes before signers' names and emails are erased.",
            ),
        ],
    )
    section(
        "limits",
        [
            ("sign_per_ip_per_hour", DEFAULT_SIGN_PER_IP, "Signature requests per IP address."),
            (
                "sign_per_email_domain_per_hour",
                DEFAULT_SIGN_PER_DOMAIN,
                "Signature requests per email domain.",
            ),
            (
                "confirm_per_ip_per_hour",
                DEFAULT_CONFIRM_PER_IP,
                "Confirmation clicks per IP address.",
            ),
            ("max_body_bytes", DEFAULT_MAX_BODY_BYTES, "Largest request body accepted, in bytes."),
            (
                "pending_expiry_hours",
                DEFAULT_PENDING_EXPIRY_HOURS,
                "Unconfirmed signatures are deleted after this many hours.",
            ),
        ],
    )
    section(
        "keys",
        [
            ("node_key", DEFAULT_NODE_KEY, "The node's Ed25519 signing key (mode 600)."),
            ("data_key", DEFAULT_DATA_KEY, "The key sealing personal data at rest (mode 600)."),
        ],
    )
    section(
        "security",
        [
            (
                "dev_allow_loopback",
                False,
                "Development only: accept federation peers on loopback and private addresses.",
            ),
            (
                "cookie_secure",
                minimal.security.cookie_secure,
                "Send cookies over HTTPS only (default: true when public_url is https).",
            ),
        ],
    )
    section(
        "federation",
        [
            (
                "accept_hosts",
                (),
                'Nodes admitted as hosts of our petitions without asking an organiser ("*": any).',
            ),
            (
                "refresh_seconds",
                DEFAULT_REFRESH_SECONDS,
                "How often the federated counts are brought up to date from the other hosts.",
            ),
            (
                "request_timeout_seconds",
                DEFAULT_FEDERATION_TIMEOUT,
                "Give up on a request to another node after this long.",
            ),
        ],
    )
    text = "\n".join(lines) + "\n"
    _parse(tomllib.loads(text), label, base, base)  # check the arguments given
    return text
