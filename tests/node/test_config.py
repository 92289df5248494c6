"""Tests for fedpetition.node.config: defaults, the rendered file, and every refusal."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fedpetition.node.config import (
    NodeConfig,
    load_config,
    parse_config,
    render_default_config,
)
from fedpetition.node.errors import ConfigError

NODE = '[node]\nname = "node-a.example"\npublic_url = "https://node-a.example"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> NodeConfig:
    return load_config(write(tmp_path, text))


# --------------------------------------------------------------------------- defaults


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, NODE)
    assert config.source == tmp_path / "node.toml"
    node = config.node
    assert node.name == "node-a.example"
    assert node.public_url == "https://node-a.example"
    assert (node.listen_host, node.listen_port) == ("127.0.0.1", 8441)
    assert node.languages == ("fr", "en")
    assert node.data_dir == tmp_path
    assert config.database.backend == "sqlite"
    assert config.database.sqlite_path == tmp_path / "node.sqlite"
    assert config.database.url == f"sqlite://{tmp_path}/node.sqlite"
    mail = config.mail
    assert mail.sender == "noreply@node-a.example"
    assert mail.smtp_host == ""
    assert (mail.smtp_port, mail.smtp_starttls, mail.smtp_tls) == (587, True, False)
    assert (mail.smtp_username, mail.smtp_password) == ("", "")
    assert mail.outbox_dir == tmp_path / "outbox"
    assert mail.timeout_seconds == 30.0
    assert mail.connections == 8
    assert (config.sequencer.period_seconds, config.sequencer.max_batch) == (1.0, 10_000)
    assert config.retention.days_after_close == 30
    limits = config.limits
    assert limits.sign_per_ip_per_hour == 30
    assert limits.sign_per_email_domain_per_hour == 1000
    assert limits.confirm_per_ip_per_hour == 120
    assert limits.max_body_bytes == 65_536
    assert limits.pending_expiry_hours == 72
    assert config.keys.node_key == tmp_path / "keys" / "node.key"
    assert config.keys.data_key == tmp_path / "keys" / "data.key"
    assert config.security.dev_allow_loopback is False
    assert config.security.cookie_secure is True


def test_defaults_that_follow_the_name_and_url(tmp_path: Path) -> None:
    config = load(
        tmp_path, '[node]\nname = "localhost:9001"\npublic_url = "http://localhost:9001/"\n'
    )
    assert config.node.public_url == "http://localhost:9001"
    assert config.node.listen_port == 9001
    assert config.security.cookie_secure is False
    # "localhost" cannot be a mail domain: a reserved placeholder instead.
    assert config.mail.sender == "noreply@localhost.invalid"
    ip = load(tmp_path, '[node]\nname = "127.0.0.1:8442"\npublic_url = "http://127.0.0.1:8442"\n')
    assert ip.mail.sender == "noreply@localhost.invalid"


def test_rendered_default_config_loads_as_the_defaults(tmp_path: Path) -> None:
    text = render_default_config("node-a.example", "https://node-a.example")
    assert load(tmp_path, text) == load(tmp_path, NODE)
    # Every setting is in the file, each line preceded by a comment.
    lines = text.splitlines()
    for key in (
        "listen_port",
        "data_dir",
        "url",
        "smtp_password",
        "timeout_seconds",
        "connections",
        "period_seconds",
        "days_after_close",
        "pending_expiry_hours",
        "data_key",
        "dev_allow_loopback",
        "cookie_secure",
    ):
        (index,) = [i for i, line in enumerate(lines) if line.startswith(f"# {key} = ")]
        assert lines[index - 1].startswith("# ")


def test_rendered_config_for_a_local_node(tmp_path: Path) -> None:
    text = render_default_config("localhost:8442", "http://localhost:8442")
    assert load(tmp_path, text) == load(
        tmp_path, '[node]\nname = "localhost:8442"\npublic_url = "http://localhost:8442"\n'
    )
    assert "# cookie_secure = false" in text
    assert "# listen_port = 8442" in text


def test_rendered_config_with_arguments(tmp_path: Path) -> None:
    text = render_default_config(
        "node-b.example",
        "https://node-b.example",
        data_dir="var/node-b",
        listen_host="0.0.0.0",
        listen_port=9000,
        languages=["en", "pt-BR"],
        sender="petitions@node-b.example",
        dev_allow_loopback=True,
    )
    config = load(tmp_path, text)
    assert config.node.data_dir == tmp_path / "var" / "node-b"
    assert config.database.sqlite_path == tmp_path / "var" / "node-b" / "node.sqlite"
    assert (config.node.listen_host, config.node.listen_port) == ("0.0.0.0", 9000)
    assert config.node.languages == ("en", "pt-BR")
    assert config.mail.sender == "petitions@node-b.example"
    assert config.security.dev_allow_loopback is True


def test_rendered_strings_are_escaped(tmp_path: Path) -> None:
    text = render_default_config("node-a.example", "https://node-a.example", data_dir='a "b"\\c')
    assert load(tmp_path, text).node.data_dir == tmp_path / 'a "b"\\c'


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("Node-A.example", "https://node-a.example", "[node] name"),
        ("node-a.example", "https://node-b.example", "[node] public_url"),
    ],
)
def test_render_refuses_a_config_that_would_not_load(name: str, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        render_default_config(name, url)


def test_render_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"\[mail\] sender"):
        render_default_config("node-a.example", "https://node-a.example", sender="nobody")


# --------------------------------------------------------------------------- values


def test_paths_are_resolved(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        NODE.replace("[node]\n", '[node]\ndata_dir = "data"\n')
        + '[database]\nurl = "sqlite:db/main.sqlite"\n'
        + '[mail]\noutbox_dir = "../mails"\n'
        + '[keys]\nnode_key = "/etc/fedpetition/node.key"\n',
    )
    assert config.node.data_dir == tmp_path / "data"
    assert config.database.sqlite_path == tmp_path / "data" / "db" / "main.sqlite"
    assert config.mail.outbox_dir == tmp_path / "mails"
    assert config.keys.node_key == Path("/etc/fedpetition/node.key")
    assert config.keys.data_key == tmp_path / "data" / "keys" / "data.key"


def test_data_dir_is_relative_to_the_config_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, NODE.replace("[node]\n", '[node]\ndata_dir = "data"\n'))
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(Path(tmp_path.name) / "node.toml")
    monkeypatch.chdir("/")
    assert config.source == path
    assert config.node.data_dir == tmp_path / "data"
    assert load_config(path) == config


def test_postgresql_url_is_kept_as_is_and_out_of_repr(tmp_path: Path) -> None:
    url = "postgresql://petitions:s3cret@db.internal:5432/petitions"
    config = load(tmp_path, NODE + f'[database]\nurl = "{url}"\n')
    assert config.database.url == url
    assert config.database.backend == "postgresql"
    assert config.database.sqlite_path is None
    assert "s3cret" not in repr(config)


def test_absolute_sqlite_url(tmp_path: Path) -> None:
    config = load(tmp_path, NODE + '[database]\nurl = "sqlite:///var/lib/node/node.sqlite"\n')
    assert config.database.sqlite_path == Path("/var/lib/node/node.sqlite")
    assert config.database.url == "sqlite:///var/lib/node/node.sqlite"


def test_smtp_settings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        NODE
        + "[mail]\n"
        + 'sender = "Petitions@Node-A.example"\n'
        + 'smtp_host = "smtp.example.net"\n'
        + 'smtp_username = "node-a"\n'
        + 'smtp_password = "hunter2"\n'
        + "smtp_starttls = false\n"
        + "smtp_tls = true\n"
        + "timeout_seconds = 5\n"
        + "connections = 32\n",
    )
    mail = config.mail
    assert mail.sender == "Petitions@node-a.example"
    assert mail.smtp_host == "smtp.example.net"
    assert mail.smtp_port == 465  # the implicit-TLS port when smtp_tls is on
    assert (mail.smtp_username, mail.smtp_password) == ("node-a", "hunter2")
    assert mail.timeout_seconds == 5.0
    assert mail.connections == 32
    assert "hunter2" not in repr(config)


def test_numbers_accept_integers_and_floats(tmp_path: Path) -> None:
    config = load(tmp_path, NODE + "[sequencer]\nperiod_seconds = 2\n")
    assert config.sequencer.period_seconds == 2.0
    config = load(tmp_path, NODE + "[sequencer]\nperiod_seconds = 0.05\n")
    assert config.sequencer.period_seconds == 0.05


def test_a_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, NODE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.node.name = "other.example"  # type: ignore[misc]


# --------------------------------------------------------------------------- refusals

BAD = [
    # (file text, the "[section] key: problem" the message must contain)
    ("", "[node] name: missing"),
    ('[node]\nname = "node-a.example"\n', "[node] public_url: missing"),
    ('[node]\nname = 3\npublic_url = "x"\n', "[node] name: expected a string, got an integer"),
    (NODE.replace('"node-a.example"', '"Node-A.example"', 1), "[node] name: node name"),
    (NODE.replace('"node-a.example"', '"node a"', 1), "[node] name: node name"),
    (NODE.replace("https://", "ftp://"), "[node] public_url: 'ftp://node-a.example' must start"),
    (
        NODE.replace("https://node-a.example", "https://node-b.example"),
        "[node] public_url: its host[:port] 'node-b.example' must be the node name",
    ),
    (
        NODE.replace("https://node-a.example", "https://node-a.example:443"),
        "[node] public_url: its host[:port] 'node-a.example:443'",
    ),
    (
        NODE.replace("https://node-a.example", "https://user:pw@node-a.example"),
        "[node] public_url: must not contain a user name or password",
    ),
    (
        NODE.replace("https://node-a.example", "https://node-a.example/petitions"),
        "[node] public_url: 'https://node-a.example/petitions' must not have a path",
    ),
    (
        NODE.replace("https://node-a.example", "https://node-a.example/?x=1"),
        "[node] public_url: 'https://node-a.example/?x=1' must not have a path, query",
    ),
    (
        NODE.replace("https://node-a.example", "https://node-a.example#top"),
        "[node] public_url: 'https://node-a.example#top' must not have",
    ),
    (
        '[node]\nname = "node-a.example:8080"\npublic_url = "https://node-a.example:99999"\n',
        "[node] public_url: 'https://node-a.example:99999' is not a valid URL",
    ),
    (NODE + 'listen_host = "local host"\n', "[node] listen_host: 'local host' is neither"),
    (NODE + "listen_port = 70000\n", "[node] listen_port: 70000 is out of range"),
    (NODE + "listen_port = -1\n", "[node] listen_port: -1 is out of range"),
    (NODE + 'listen_port = "8441"\n', "[node] listen_port: expected an integer, got a string"),
    (NODE + "listen_port = true\n", "[node] listen_port: expected an integer, got a boolean"),
    (NODE + "listen_port = 8441.0\n", "[node] listen_port: expected an integer, got a float"),
    (NODE + 'languages = "fr"\n', "[node] languages: expected an array of strings, got a string"),
    (NODE + "languages = [1]\n", "[node] languages: expected an array of strings, has an integer"),
    (NODE + "languages = []\n", "[node] languages: is empty"),
    (NODE + 'languages = ["French"]\n', "[node] languages: language tag 'French'"),
    (NODE + 'languages = ["fr", "fr"]\n', "[node] languages: lists a language twice"),
    (NODE + 'data_dir = ""\n', "[node] data_dir: is empty"),
    (NODE + 'data_dir = "a\\u0000b"\n', "[node] data_dir: contains a NUL character"),
    (NODE + '[database]\nurl = "mysql://u:p@h/db"\n', "[database] url: unsupported scheme 'mysql'"),
    (
        NODE + '[database]\nurl = "sqlite://host/db.sqlite"\n',
        "[database] url: a SQLite URL has no host",
    ),
    (NODE + '[database]\nurl = "sqlite:"\n', "[database] url: 'sqlite:' does not name"),
    (
        NODE + '[database]\nurl = "sqlite:///var/lib/"\n',
        "[database] url: 'sqlite:///var/lib/' does not",
    ),
    (NODE + '[database]\nurl = "postgresql:db"\n', "[database] url: a postgresql URL starts with"),
    (NODE + "[database]\nurl = 5\n", "[database] url: expected a string, got an integer"),
    (NODE + '[mail]\nsender = "nobody"\n', "[mail] sender: 'nobody' is not a valid address"),
    (NODE + '[mail]\nsender = "a@localhost"\n', "[mail] sender: 'a@localhost' is not a valid"),
    (NODE + '[mail]\nsmtp_host = "smtp example"\n', "[mail] smtp_host: 'smtp example' is neither"),
    (NODE + '[mail]\nsmtp_port = "587"\n', "[mail] smtp_port: expected an integer, got a string"),
    (NODE + "[mail]\nsmtp_port = 0\n", "[mail] smtp_port: 0 is out of range"),
    (NODE + "[mail]\nsmtp_tls = true\n", "[mail] smtp_tls: cannot be combined with smtp_starttls"),
    (NODE + '[mail]\nsmtp_starttls = "yes"\n', "[mail] smtp_starttls: expected true or false"),
    (NODE + '[mail]\nsmtp_username = "u"\n', "[mail] smtp_password: missing while smtp_username"),
    (NODE + '[mail]\nsmtp_password = "p"\n', "[mail] smtp_username: missing while smtp_password"),
    (NODE + '[mail]\noutbox_dir = ""\n', "[mail] outbox_dir: is empty"),
    (NODE + "[mail]\ntimeout_seconds = 0\n", "[mail] timeout_seconds: 0 is out of range"),
    (NODE + "[mail]\nconnections = 0\n", "[mail] connections: 0 is out of range"),
    (NODE + "[mail]\ntimeout_seconds = nan\n", "[mail] timeout_seconds: nan is out of range"),
    (NODE + "[mail]\ntimeout_seconds = inf\n", "[mail] timeout_seconds: inf is out of range"),
    (NODE + "[sequencer]\nperiod_seconds = 0.01\n", "[sequencer] period_seconds: 0.01 is out of"),
    (NODE + "[sequencer]\nperiod_seconds = 3601\n", "[sequencer] period_seconds: 3601 is out of"),
    (
        NODE + "[sequencer]\nperiod_seconds = true\n",
        "[sequencer] period_seconds: expected a number",
    ),
    (NODE + "[sequencer]\nmax_batch = 0\n", "[sequencer] max_batch: 0 is out of range"),
    (NODE + "[retention]\ndays_after_close = -1\n", "[retention] days_after_close: -1 is out of"),
    (NODE + "[limits]\nsign_per_ip_per_hour = 0\n", "[limits] sign_per_ip_per_hour: 0 is out"),
    (
        NODE + "[limits]\nsign_per_email_domain_per_hour = 1.5\n",
        "[limits] sign_per_email_domain_per_hour: expected an integer, got a float",
    ),
    (NODE + "[limits]\nconfirm_per_ip_per_hour = 0\n", "[limits] confirm_per_ip_per_hour: 0"),
    (NODE + "[limits]\nmax_body_bytes = 100\n", "[limits] max_body_bytes: 100 is out of range"),
    (NODE + "[limits]\npending_expiry_hours = 0\n", "[limits] pending_expiry_hours: 0 is out"),
    (NODE + '[keys]\nnode_key = "k"\ndata_key = "k"\n', "[keys] data_key: must not be the same"),
    (NODE + '[keys]\nnode_key = ["k"]\n', "[keys] node_key: expected a string, got an array"),
    (
        NODE + "[security]\ndev_allow_loopback = 1\n",
        "[security] dev_allow_loopback: expected true or false, got an integer",
    ),
    (NODE + '[security]\ncookie_secure = "no"\n', "[security] cookie_secure: expected true or"),
    (NODE.replace("[node]\n", '[node]\nlog_format = "xml"\n'),
     '[node] log_format: \'xml\' is not "text" or "json"'),
    (
        NODE + '[federation]\naccept_hosts = ["bad name"]\n',
        "[federation] accept_hosts: 'bad name' is not a node name",
    ),
    (NODE + "[federation]\naccept_hosts = \"*\"\n", "[federation] accept_hosts: expected an"),
    (NODE + "[federation]\nrefresh_seconds = 0\n", "[federation] refresh_seconds: 0 is out"),
    (
        NODE + "[federation]\nrequest_timeout_seconds = 900\n",
        "[federation] request_timeout_seconds: 900 is out of range",
    ),
    # Typos and strays: never silently ignored.
    (
        NODE + "[mail]\nsmtp_prot = 25\n",
        "[mail] smtp_prot: unknown key (did you mean 'smtp_port'?)",
    ),
    (NODE + "[mail]\nxyzzy = 25\n", "[mail] xyzzy: unknown key (known: sender, smtp_host"),
    (NODE + "[limit]\nmax_body_bytes = 10\n", "[limit]: unknown section (did you mean 'limits'?)"),
    ('name = "node-a.example"\n' + NODE, "[name]: unknown top-level key"),
    (NODE + "mail = 3\n", "[node] mail: unknown key"),
    ("mail = 3\n" + NODE, "mail: expected a section [mail], got an integer"),
    (NODE + "[node.extra]\nx = 1\n", "[node] extra: unknown key"),
    (NODE + "[mail\n", "not valid TOML"),
    (NODE + "name = 'again'\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_refusals_name_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_setting_has_a_refusal_above() -> None:
    text = render_default_config("node-a.example", "https://node-a.example")
    settings = set(re.findall(r"^(?:# )?([a-z_]+) = ", text, re.MULTILINE))
    assert len(settings) == 33
    named = {m.group(1) for _, message in BAD if (m := re.match(r"\[\w+\] (\w+):", message))}
    assert settings <= named


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_bytes(NODE.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"node.toml: not UTF-8 text"):
        load_config(path)


def test_parse_config_uses_the_given_source(tmp_path: Path) -> None:
    config = parse_config(NODE, tmp_path / "elsewhere" / "node.toml")
    assert config.node.data_dir == tmp_path / "elsewhere"
    with pytest.raises(ConfigError, match=r"^/nowhere/x.toml: \[node\] name: missing"):
        parse_config("", Path("/nowhere/x.toml"))
