"""A node's operations: migrate, export and import between backends, backup and restore.

Real nodes serve on loopback with real signatures; the commands run through the
CLI's entry point. After a move or a restore the node's log must verify with the
verifier and keep growing, and an export of the moved node must be byte for
byte the export it was made from.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from fedpetition.cli import main
from fedpetition.core.verification import Verification
from fedpetition.verify.archive import ZipSource
from tests.conftest import Databases
from tests.federation.nodes import RunningNode, make_nodes, wait_for

SLUG = "clean-air"


def use_database(folder: Path, url: str) -> Path:
    """Point the node's config at another database."""
    config = folder / "fedpetition.toml"
    text = config.read_text(encoding="utf-8")
    text, changed = re.subn(r"(?m)^#? ?url = .*$", f"url = {url!r}".replace("'", '"'), text,
                            count=1)
    assert changed == 1
    config.write_text(text, encoding="utf-8")
    return config


def copy_node(running: RunningNode, folder: Path, url: str) -> RunningNode:
    """The node's folder (config and keys, not the database) under ``folder``, on ``url``."""
    shutil.copytree(running.folder, folder, ignore=shutil.ignore_patterns("*.sqlite*"))
    use_database(folder, url)
    return RunningNode(folder, running.port, running.token, running.mail)


async def run(*args: str) -> int:
    """The CLI's entry point, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(args))


async def cli(*args: str) -> None:
    assert await run(*args) == 0, args


async def signed_and_counted(node: RunningNode, emails: list[str], total: int) -> None:
    """Sign with each address, then wait until the node counts ``total``."""
    for email in emails:
        await node.sign_and_confirm(SLUG, email)

    async def counted() -> bool:
        status, body = await node.request("GET", f"/api/petitions/{SLUG}")
        return status == 200 and body["counts"]["total"] == total

    await wait_for("signatures counted", counted)


async def verified_count(node: RunningNode) -> int:
    """The node's published log, verified from its bundle: the count it proves."""
    status, data = await node.request("GET", f"/petitions/{SLUG}/bundle.zip")
    assert status == 200, data
    with ZipSource(io.BytesIO(data)) as source:
        report = await asyncio.to_thread(Verification(source).run)
    assert report.ok, [(s.step, s.detail) for s in report.failures]
    assert report.tally is not None
    return report.tally.total


def sqlite_url(folder: Path) -> str:
    return f"sqlite://{(folder / 'moved.sqlite3').as_posix()}"


async def move(node: RunningNode, export: Path, folder: Path, url: str) -> RunningNode:
    """The node's folder copied to ``folder`` on the database ``url``, migrated, the
    export imported; the moved node's own export must be the same bytes."""
    moved = copy_node(node, folder, url)
    config = str(moved.folder / "fedpetition.toml")
    await cli("migrate", "--config", config)
    await cli("import", "--config", config, str(export))
    again = folder.with_name(folder.name + "-again.fpx")
    await cli("export", "--config", config, "--out", str(again))
    assert again.read_bytes() == export.read_bytes()
    return moved


async def test_a_node_moves_between_backends_and_back(tmp_path: Path,
                                                      databases: Databases) -> None:
    """SQLite -> the backend under test -> SQLite, with a live petition: each export of
    a moved node equals the one it came from, and the log verifies and grows."""
    (source,) = await make_nodes(tmp_path / "a", 1)
    moved: RunningNode | None = None
    try:
        await source.create_petition(SLUG)
        await signed_and_counted(source, [f"s{i}@example.org" for i in range(6)], 6)
        assert await verified_count(source) == 6
        await source.stop()
        first = tmp_path / "first.fpx"
        await cli("export", "--config", str(source.folder / "fedpetition.toml"), "--out",
                  str(first))

        moved = await move(source, first, tmp_path / "b", databases.url())
        config = str(moved.folder / "fedpetition.toml")

        await moved.start()
        assert await verified_count(moved) == 6
        await signed_and_counted(moved, [f"t{i}@example.org" for i in range(3)], 9)
        assert await verified_count(moved) == 9
        status, _ = await moved.request("GET", f"/api/petitions/{SLUG}/host-requests",
                                        headers=moved.auth)
        assert status == 200  # the organiser's token moved with the node
        await moved.stop()

        second = tmp_path / "second.fpx"
        await cli("export", "--config", config, "--out", str(second))
        await move(moved, second, tmp_path / "c", sqlite_url(tmp_path / "c"))
    finally:
        await source.stop()
        if moved is not None:
            await moved.stop()


async def test_import_refuses_what_it_cannot_take_and_changes_nothing(
        tmp_path: Path, databases: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    (node,) = await make_nodes(tmp_path / "a", 1)
    try:
        await node.create_petition(SLUG)
        await signed_and_counted(node, ["one@example.org"], 1)
    finally:
        await node.stop()
    config = str(node.folder / "fedpetition.toml")
    export = tmp_path / "node.fpx"
    await cli("export", "--config", config, "--out", str(export))
    capsys.readouterr()

    # Into a node that has data: refused.
    assert await run("import", "--config", config, str(export)) == 1
    assert "not empty" in capsys.readouterr().err

    target = copy_node(node, tmp_path / "b", databases.url())
    target_config = str(target.folder / "fedpetition.toml")
    # Into a database never migrated: refused, naming the command to run.
    assert await run("import", "--config", target_config, str(export)) == 1
    assert "fedpetition migrate" in capsys.readouterr().err
    await cli("migrate", "--config", target_config)
    assert "applied: 1" in capsys.readouterr().out
    await cli("migrate", "--config", target_config)
    assert "none pending" in capsys.readouterr().out

    # A truncated file, or something else: refused by name, nothing stored.
    data = export.read_bytes()
    for name, content, message in (
            ("text.fpx", b"hello", "not a fedpetition export"),
            ("empty.fpx", b"", "not a fedpetition export"),
            ("cut.fpx", data[:len(data) // 2], "ends early")):
        bad = tmp_path / name
        bad.write_bytes(content)
        assert await run("import", "--config", target_config, str(bad)) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        if name != "cut.fpx":  # a file cut mid-way leaves what it had: the message says so
            probe = tmp_path / f"{name}.export"
            await cli("export", "--config", target_config, "--out", str(probe))
            assert b"clean-air" not in probe.read_bytes()

    # An export of another node: refused.
    other = copy_node(node, tmp_path / "d", sqlite_url(tmp_path / "d"))
    other_config = other.folder / "fedpetition.toml"
    other_config.write_text(other_config.read_text().replace(node.name, "127.0.0.1:1"))
    await cli("migrate", "--config", str(other_config))
    assert await run("import", "--config", str(other_config), str(export)) == 1
    assert "is of node" in capsys.readouterr().err


async def test_export_refuses_a_running_postgresql_node(
        tmp_path: Path, databases: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    """Several processes may serve a PostgreSQL node: export checks none does."""
    if databases.backend != "postgresql":
        pytest.skip("a SQLite node is one process, which the operator stops")
    (node,) = await make_nodes(tmp_path, 1, databases=databases)
    try:
        async def leading() -> bool:
            return node.node is not None and node.node.sequencer.leading

        await wait_for("the node sequencing", leading)
        out = tmp_path / "x.fpx"
        assert await run("export", "--config", str(node.folder / "fedpetition.toml"), "--out",
                     str(out)) == 1
        assert "stop the node first" in capsys.readouterr().err
    finally:
        await node.stop()


async def test_a_sqlite_backup_taken_while_serving_restores_and_continues(
        tmp_path: Path) -> None:
    (node,) = await make_nodes(tmp_path, 1)
    try:
        await node.create_petition(SLUG)
        await signed_and_counted(node, [f"s{i}@example.org" for i in range(5)], 5)
        backup = tmp_path / "backup.sqlite3"
        await cli("backup", "--config", str(node.folder / "fedpetition.toml"), "--out",
                  str(backup))
        await signed_and_counted(node, ["after@example.org"], 6)  # not in the backup
        assert await verified_count(node) == 6
        await node.stop()
        # Restore: the backup becomes the node's database file.
        database = next(node.folder.glob("**/node.sqlite"))
        for extra in database.parent.glob("node.sqlite-*"):
            extra.unlink()
        shutil.copyfile(backup, database)
        await node.start()
        assert await verified_count(node) == 5
        await signed_and_counted(node, ["later@example.org", "after@example.org"], 7)
        assert await verified_count(node) == 7
    finally:
        await node.stop()


async def test_a_postgresql_dump_restores_and_continues(tmp_path: Path,
                                                        databases: Databases) -> None:
    """pg_dump of the node's schema, pg_restore into another database, the node moved
    there: the log verifies and grows (docs/operations.md gives these commands)."""
    if databases.backend != "postgresql":
        pytest.skip("pg_dump is for PostgreSQL nodes")
    assert databases.postgres is not None
    (node,) = await make_nodes(tmp_path, 1, databases=databases)
    restored_db = f"{urllib.parse.urlsplit(databases.postgres).path[1:]}_restored"
    server = urllib.parse.urlsplit(databases.postgres)
    admin = urllib.parse.urlunsplit(server._replace(path="/postgres"))
    try:
        await node.create_petition(SLUG)
        await signed_and_counted(node, [f"s{i}@example.org" for i in range(5)], 5)
        url = node.node.config.database.url if node.node else ""
        schema = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["schema"][0]
        dump = tmp_path / "node.dump"
        await asyncio.to_thread(subprocess.run, [
            "pg_dump", "--format=custom", f"--schema={schema}", f"--file={dump}",
            databases.postgres], check=True)
        await node.stop()
        await asyncio.to_thread(subprocess.run, ["psql", admin, "-qc",
                                                 f'CREATE DATABASE "{restored_db}"'], check=True)
        target = urllib.parse.urlunsplit(server._replace(path="/" + restored_db))
        await asyncio.to_thread(subprocess.run, [
            "pg_restore", "--no-owner", f"--dbname={target}", str(dump)], check=True)
        use_database(node.folder, f"{target}?schema={schema}")
        await node.start()
        assert await verified_count(node) == 5
        await signed_and_counted(node, [f"t{i}@example.org" for i in range(2)], 7)
        assert await verified_count(node) == 7
    finally:
        await node.stop()
        await asyncio.to_thread(subprocess.run, [
            "psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{restored_db}" WITH (FORCE)'],
            check=False)
