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
]


async def open_storage(database: DatabaseSection) -> Storage:
    """Open (and migrate) the storage the config's ``[database]`` names."""
    from fedpetition.node.errors import ConfigError

    if database.sqlite_path is not None:
        from .sqlite import SQLiteStorage

        storage = SQLiteStorage(str(database.sqlite_path))
        await storage.open()
        return storage
    raise ConfigError(f"[database] url: the {database.backend} backend is not available yet")
