"""A node's operations outside serving: schema migrations, moving a node between
storage backends, and backups.

``export`` writes every table of ``EXPORT_TABLES`` to one file, a stream of
MessagePack maps: a header naming the format and each table's columns, then the
rows table by table in key order, in chunks, then a trailer with each table's
row count. Personal data stays as stored, sealed with the node's data key, which
is not in the file: the file moves the database, the node's folder (its keys)
moves with it. ``import`` reads such a file into a node whose database is
migrated and empty. A SQLite node is exported from a copy of one moment, so it may
keep running; a PostgreSQL node must be stopped (export checks that no process holds
its sequencer lease). Exporting the imported node gives the same rows, which is
how the tests check a move.

Backups: SQLite's online backup API copies a live database file consistently
(``fedpetition backup``); PostgreSQL's own ``pg_dump`` does the same for a
PostgreSQL node (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import msgpack

from fedpetition.node.config import NodeConfig
from fedpetition.node.errors import ConfigError, NodeError
from fedpetition.node.storage import Storage, open_storage, storage_for
from fedpetition.node.storage.base import EXPORT_TABLES
from fedpetition.node.storage.sqlite import SQLiteStorage, backup_file

EXPORT_FORMAT = "fedpetition-export/v1"
CHUNK = 1000  # rows per chunk


class TransferError(NodeError):
    """An export file that cannot be imported, or a node that cannot take it."""


async def migrate(config: NodeConfig) -> tuple[list[int], int]:
    """Apply the database's pending migrations; return them and the schema version."""
    storage = storage_for(config.database)
    await storage.open(migrate=False, check=False)
    try:
        applied = await storage.migrate()
        return applied, await storage.schema_version()
    finally:
        await storage.close()


@asynccontextmanager
async def _stopped_node(config: NodeConfig) -> AsyncIterator[Storage]:
    """The node's storage, with the sequencer lease held: no process of the node is
    serving (on PostgreSQL, where the lease is shared, this is checked)."""
    storage = await open_storage(config.database, migrate=False)
    try:
        if not await storage.lead():
            raise TransferError("a process of this node is running (it holds the sequencer "
                                "lease): stop the node first")
        yield storage
    finally:
        await storage.close()


@asynccontextmanager
async def _snapshot(config: NodeConfig) -> AsyncIterator[Storage]:
    """What to export: on SQLite a copy of one moment (the online backup API, so a
    node that is running changes nothing of it); on PostgreSQL the stopped node's."""
    if config.database.sqlite_path is None:
        async with _stopped_node(config) as storage:
            yield storage
        return
    with tempfile.TemporaryDirectory(prefix="fedpetition-export-") as folder:
        copy = Path(folder) / "snapshot.sqlite"
        await asyncio.to_thread(backup_sqlite, config, copy)
        storage = SQLiteStorage(str(copy))
        await storage.open(migrate=False)
        try:
            yield storage
        finally:
            await storage.close()


async def export_node(config: NodeConfig, out: IO[bytes]) -> dict[str, int]:
    """Write the node's whole database to ``out``; return the rows written per table."""
    packer = msgpack.Packer(use_bin_type=True)
    counts: dict[str, int] = {}
    async with _snapshot(config) as storage:
        out.write(packer.pack({
            "format": EXPORT_FORMAT, "node": config.node.name,
            "tables": [[table.name, list(table.columns)] for table in EXPORT_TABLES]}))
        for table in EXPORT_TABLES:
            counts[table.name] = 0
            async for rows in storage.export_rows(table, CHUNK):
                out.write(packer.pack({"table": table.name, "rows": [list(r) for r in rows]}))
                counts[table.name] += len(rows)
        out.write(packer.pack({"end": counts}))
    return counts


def _read(source: IO[bytes]) -> Iterator[dict[str, Any]]:
    unpacker = msgpack.Unpacker(source, raw=False, strict_map_key=True,
                                max_buffer_size=256 << 20)
    try:
        for item in unpacker:
            if not isinstance(item, dict):
                raise TransferError("not a fedpetition export: an item is not a map")
            yield item
    except (ValueError, msgpack.UnpackException) as e:
        raise TransferError(f"not a fedpetition export, or damaged: {e}") from None


async def import_node(config: NodeConfig, source: IO[bytes]) -> dict[str, int]:
    """Load an export into the node's database, which must be migrated and empty.

    Rows are loaded chunk by chunk: if the file turns out damaged half-way, the
    database is left partly filled, and the error says to empty it and start again.
    """
    items = _read(source)
    header = next(items, None)
    if header is None or header.get("format") != EXPORT_FORMAT:
        raise TransferError(f"not a fedpetition export (want format {EXPORT_FORMAT})")
    expected = [[table.name, list(table.columns)] for table in EXPORT_TABLES]
    if header.get("tables") != expected:
        raise TransferError("the export's tables or columns differ from this fedpetition's: "
                            "export and import with the same version")
    if header.get("node") != config.node.name:
        raise TransferError(f"the export is of node {header.get('node')!r}, this config is "
                            f"node {config.node.name!r}")
    tables = {table.name: table for table in EXPORT_TABLES}
    order = [table.name for table in EXPORT_TABLES]
    counts = dict.fromkeys(order, 0)
    async with _stopped_node(config) as storage:
        if not await storage.is_empty():
            raise TransferError("this node's database is not empty: import into a new one")
        position = 0
        try:
            for item in items:
                if "end" in item:
                    if item["end"] != counts:
                        raise TransferError(f"row counts differ from the trailer's: read "
                                            f"{counts}, trailer {item['end']}")
                    await storage.finish_import()
                    return counts
                name, rows = item.get("table"), item.get("rows")
                if name not in tables or not isinstance(rows, list):
                    raise TransferError("a chunk names no known table")
                if order.index(name) < position:
                    raise TransferError(f"table {name} out of order")
                position = order.index(name)
                await storage.import_rows(tables[name], rows)
                counts[name] += len(rows)
        except TransferError:
            raise
        except Exception as e:
            raise TransferError(f"import stopped: {e}; empty this node's database and import "
                                "again") from None
        raise TransferError("the export ends early (no trailer): empty this node's database "
                            "and import a complete file")


def backup_sqlite(config: NodeConfig, out: Path) -> int:
    """Copy a live SQLite database consistently (its online backup API); return its pages.

    The node may keep serving: the copy is of one moment, and the WAL's committed
    writes are in it.
    """
    source_path = config.database.sqlite_path
    if source_path is None:
        raise ConfigError("fedpetition backup copies a SQLite node; for PostgreSQL use "
                          "pg_dump (docs/operations.md)")
    if out.exists():
        raise ConfigError(f"{out} exists: refusing to overwrite it")
    if not source_path.exists():
        raise ConfigError(f"no database at {source_path}")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a folder")
    return backup_file(source_path, out)


__all__ = ["EXPORT_FORMAT", "TransferError", "backup_sqlite", "export_node", "import_node",
           "migrate"]
