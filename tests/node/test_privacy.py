"""Signers' names and emails appear nowhere but in their own mail, page and export.

A node with its real outbox mailer takes signatures from distinctive canary
signers (through the API and the HTML form), confirms, withdraws, sequences,
serves a privacy export; then every name, email and their case variants are
searched for in the database file with its -wal and -shm files (raw bytes),
every other file of the node's folder but the outbox, everything logged at
DEBUG, the bundle and each of its members, every checkpoint and tile served,
the public pages, the organiser's pages and the public JSON API (error answers
included). The signer's own page, receipt and privacy export are allowed to show
their data and are not searched.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import logging
import re
import stat
import zipfile
from pathlib import Path

import pytest

from fedpetition.core import tiles
from fedpetition.core.notes import VerifierKey, open_checkpoint
from fedpetition.node.mail import mailer_from_config
from fedpetition.node.storage.base import EXPORT_TABLES

from .conftest import PASSWORD, NodeHarness

SLUG = "clean-air"
LINK = re.compile(r"/(s|privacy)/([A-Za-z0-9_-]{20,})")
# (name, email as typed): distinctive strings that cannot occur by chance.
CANARIES = [
    ("Zyxwvut Canary", "zz-privacy-canary-1@example.org"),
    ("Qwertzuiop Kanarienvogel", "ZZ-Privacy-Canary-2@Example.ORG"),
    ("Ærøskøbing Ünïcödé", "zz-privacy-canary-3@example.org"),
    ("Mnbvcxz Formsigner", "zz-privacy-canary-4@example.org"),
    ("Plokijuh Withdrawer", "zz-privacy-canary-5@example.org"),
]
REFUSED_EMAIL = "zz-privacy-canary-refused@@example.org"  # invalid: the error must not echo it


def needles() -> list[bytes]:
    """Every canary string, as typed, lower and upper case, whole and in parts, as UTF-8."""
    words: set[str] = {REFUSED_EMAIL, REFUSED_EMAIL.split("@")[0]}
    for name, address in CANARIES:
        words.update([name, address, address.split("@")[0]])
        words.update(part for part in name.split() if len(part) >= 6)
    variants = {v for w in words for v in (w, w.lower(), w.upper())}
    return sorted(v.encode() for v in variants)


def leaks(data: bytes) -> list[str]:
    return [n.decode() for n in needles() if n in data]


def leaks_in(data: bytes | str) -> list[str]:
    """The canaries in ``data``: raw, and in JSON text once its escapes are undone."""
    raw = data.encode() if isinstance(data, str) else data
    found = leaks(raw)
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return found
    return sorted({*found, *leaks(json.dumps(value, ensure_ascii=False).encode())})


def assert_clean(where: str, data: bytes | str) -> None:
    found = leaks_in(data)
    assert not found, f"{where} holds personal data: {found}"


def mailed_link(outbox: Path, address: str, kind: str = "s") -> str:
    """The path of the last link of ``kind`` mailed to ``address`` (from the .eml files)."""
    found = None
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        if str(message["To"]) != address:
            continue
        part = message.get_body(("plain",))
        assert part is not None
        for match in LINK.finditer(part.get_content()):
            if match.group(1) == kind:
                found = match.group(0)
    assert found, f"no /{kind}/ link mailed to {address}"
    return found


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def test_personal_data_stays_out_of_everything_public(
    harness: NodeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = harness
    config = h.node.config
    h.node.mailer = mailer_from_config(config.mail)  # the real outbox, with its log line
    outbox = config.mail.outbox_dir
    await h.create_petition()
    await h.create_petition("second")
    normalised = [address.lower() for _, address in CANARIES]

    # Sign: three through the API, one through the petition page's form.
    for (name, address), region in zip(CANARIES[:3], ["FR-IDF", None, "BE"], strict=True):
        response = await h.client.post(
            f"/api/petitions/{SLUG}/signatures",
            json={
                "name": name,
                "email": address,
                "region": region,
                "consents": {"updates": True, "addressee": True},
                "language": "en",
            },
        )
        assert response.status == 202, await response.text()
    name, address = CANARIES[3]
    page = await h.client.get(f"/p/{SLUG}")
    response = await h.client.post(
        f"/p/{SLUG}/sign",
        data={
            "csrf": csrf_of(await page.text()),
            "name": name,
            "email": address,
            "region": "FR",
            "updates": "yes",
        },
    )
    assert response.status == 200, await response.text()
    name, address = CANARIES[4]
    for slug in (SLUG, "second"):
        await h.client.post(
            f"/api/petitions/{slug}/signatures", json={"name": name, "email": address}
        )
    tokens = {a: mailed_link(outbox, a).rsplit("/", 1)[1] for a in normalised}

    # Confirm: by the API, and one through the signer page's form.
    public: dict[str, bytes] = {}
    for address in normalised[:3] + normalised[4:]:
        response = await h.client.post(f"/api/signatures/{tokens[address]}/confirm")
        assert response.status == 200
        public[f"POST /api/signatures/<{address}>/confirm"] = await response.read()
    signer_page = await h.client.get(f"/s/{tokens[normalised[3]]}")
    response = await h.client.post(
        f"/s/{tokens[normalised[3]]}/confirm",
        data={"csrf": csrf_of(await signer_page.text())},
        allow_redirects=False,
    )
    assert response.status == 303
    await h.sequence()
    second = mailed_link(outbox, normalised[4])  # the second petition's link
    await h.client.post(f"/api/signatures/{second.rsplit('/', 1)[1]}/confirm")
    await h.client.post(f"/api/signatures/{tokens[normalised[4]]}/withdraw")
    await h.sequence()
    # Signing again mails "already signed"; a refused address is not echoed.
    again = await h.client.post(
        f"/api/petitions/{SLUG}/signatures", json={"name": CANARIES[0][0], "email": CANARIES[0][1]}
    )
    public["POST signatures (again)"] = await again.read()
    tokens[normalised[0]] = mailed_link(outbox, normalised[0]).rsplit("/", 1)[1]  # rotated
    refused = await h.client.post(
        f"/api/petitions/{SLUG}/signatures", json={"name": "Refused Zz", "email": REFUSED_EMAIL}
    )
    assert refused.status == 400
    public["POST signatures (refused)"] = await refused.read()
    refused = await h.client.post("/api/privacy", json={"email": REFUSED_EMAIL})
    assert refused.status == 400
    public["POST /api/privacy (refused)"] = await refused.read()

    # The signers' own views work (and are not searched): page, receipt, export.
    for address in normalised[:4]:
        response = await h.client.get(f"/api/signatures/{tokens[address]}")
        assert (await response.json()).get("status") == "counted", await response.text()
        public[f"GET /api/signatures/<{address}>"] = await response.read()
        receipt = await h.client.get(f"/api/signatures/{tokens[address]}/receipt")
        assert receipt.status == 200
    response = await h.client.post("/api/privacy", json={"email": CANARIES[2][1]})
    assert response.status == 202
    public["POST /api/privacy"] = await response.read()
    privacy = mailed_link(outbox, normalised[2], "privacy")
    export = await (await h.client.get(f"/api{privacy}")).read()
    # The search finds what is there, \u-escaped in JSON or not: the export holds it all.
    name, address = CANARIES[2]
    assert {name, name.split()[0], address, address.split("@")[0]} <= set(leaks_in(export))

    # Everything public, and the organiser's pages.
    origin = f"127.0.0.1:{h.port}"
    paths = ["/", "/?lang=en", "/privacy", "/key", "/api/petitions"]
    for slug in (SLUG, "second"):
        paths += [
            f"/p/{slug}",
            f"/p/{slug}?lang=en",
            f"/p/{slug}/v/1",
            f"/api/petitions/{slug}",
            f"/api/petitions/{slug}/series",
            f"/api/petitions/{slug}/checkpoint",
            f"/petitions/{slug}/versions/1",
            f"/petitions/{slug}/hosts",
            f"/petitions/{slug}/evaluations",
            f"/api/petitions/{slug}/evaluations",
            f"/petitions/{slug}/manifest",
            f"/petitions/{slug}/bundle.zip",
            f"/log/{origin}/{slug}/checkpoint",
        ]
    key = VerifierKey.parse((await (await h.client.get("/key")).text()).strip())
    for slug in (SLUG, "second"):
        note = await (await h.client.get(f"/log/{origin}/{slug}/checkpoint")).text()
        size = open_checkpoint(note, key).checkpoint.size
        assert size > 0
        paths += [f"/log/{origin}/{slug}/{coord.path}" for coord in tiles.tiles_for_size(size)]
    login = await h.client.get("/admin/login")
    await h.client.post(
        "/admin/login",
        data={"csrf": csrf_of(await login.text()), "name": "alice", "password": PASSWORD},
    )
    paths += ["/admin", f"/admin/p/{SLUG}", f"/admin/p/{SLUG}/close"]
    for path in paths:
        response = await h.client.get(path)
        assert response.status == 200, path
        public[f"GET {path}"] = await response.read()
    for where, data in public.items():
        assert_clean(where, data)
    bundles = [p for p in public if p.endswith("bundle.zip")]
    assert len(bundles) == 2
    for where in bundles:
        with zipfile.ZipFile(io.BytesIO(public[where])) as archive:
            for member in archive.namelist():
                assert_clean(f"{where}: {member}", archive.read(member))

    # The database: every row of every table, and on SQLite its files (with -wal and
    # -shm) and every other file of the node but its mail.
    for table in EXPORT_TABLES:
        async for rows in h.node.storage.export_rows(table, 1000):
            for row in rows:
                assert_clean(f"table {table.name}", repr(row).encode())
                for value in row:
                    if isinstance(value, bytes | str):
                        assert_clean(f"table {table.name}", value if isinstance(
                            value, bytes) else value.encode())
    files = [p for p in h.folder.rglob("*") if p.is_file() and outbox not in p.parents]
    for file in files:
        assert_clean(str(file), file.read_bytes())
    database = config.database.sqlite_path
    if database is None:  # PostgreSQL: the shared rate-limit counters name no client
        keys = [row[0] for row in await h.node.storage._db().fetch(  # type: ignore[attr-defined]
            "SELECT key FROM rate_limits")]
        assert keys, "expected counted requests"
        for key in keys:
            assert_clean("rate_limits", key)
            assert "127.0.0.1" not in key and "alice" not in key, key
    if database is not None:
        wal = Path(f"{database}-wal")
        assert wal.exists() and wal.stat().st_size > 0, "expected recent writes in the WAL"
        assert {database, wal, Path(f"{database}-shm")} <= set(files)
        await h.node.storage.close()  # checkpoints the WAL into the database file
        assert_clean(f"{database} (closed)", database.read_bytes())

    # Everything logged, at every level.
    assert caplog.records, "nothing was logged"
    for record in caplog.records:
        assert_clean(f"log record {record.name}", record.getMessage())
    assert_clean("formatted log", caplog.text)
    lines = [r.getMessage() for r in caplog.records if r.name == "fedpetition.mail"]
    assert len(lines) >= len(CANARIES) + 3 and all("outbox: wrote" in line for line in lines)
    assert not [line for line in lines if "@" in line], lines

    # The outbox holds addresses and bearer links: private to the node's user.
    mails = list(outbox.glob("*.eml"))
    assert mails and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in mails)
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700, oct(outbox.stat().st_mode)
