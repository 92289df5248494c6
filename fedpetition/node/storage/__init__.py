"""Node storage behind one async interface (:class:`~.base.Storage`).

SQLite (WAL) is the embedded default; other backends implement the same
interface, so handlers and the sequencer never see SQL.
"""

from fedpetition.node.config import DatabaseSection

from .base import (
    LogRecord,
    Organiser,
    PetitionRecord,
    QueuedEntry,
    SignatureRecord,
    Storage,
)

__all__ = [
    "LogRecord",
    "Organiser",
    "PetitionRecord",
    "QueuedEntry",
    "SignatureRecord",
    "Storage",
    "open_storage",
    "storage_for",
]


def storage_for(database: DatabaseSection) -> Storage:
    """The storage the config's ``[database]`` names, not opened yet."""
    if database.sqlite_path is not None:
        from .sqlite import SQLiteStorage

        return SQLiteStorage(str(database.sqlite_path))
    from .postgresql import PostgreSQLStorage

    return PostgreSQLStorage(database.url)


async def open_storage(database: DatabaseSection, *, migrate: bool = True) -> Storage:
    """Open the storage the config's ``[database]`` names.

    With ``migrate`` its pending schema migrations are applied; without, a database
    that lacks some is refused (ConfigError naming ``fedpetition migrate``).
    """
    storage = storage_for(database)
    await storage.open(migrate=migrate)
    return storage
