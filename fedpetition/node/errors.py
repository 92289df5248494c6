"""Errors the node raises on purpose, under the core's single root.

::

    FedPetitionError                  (fedpetition.core.errors)
    └── NodeError                     the CLI prints its message on one line and exits non-zero
        ├── ConfigError               the config file, or a file it names, is wrong
        ├── AddressError              an email address is not acceptable
        ├── SealError                 a sealed value does not open (tampered, moved, other key)
        ├── MailError                 a mail could not be handed to the SMTP server
        └── StorageError              the database is away, or cannot store a value

Messages name the file, the setting and the problem, and never carry personal data
(email addresses) or secrets (keys, passwords), since they end up in logs.
"""

from __future__ import annotations

from fedpetition.core.errors import FedPetitionError


class NodeError(FedPetitionError):
    """Root of the node's errors: caught by the CLI and shown without a traceback."""


class ConfigError(NodeError):
    """Bad configuration: the message names the file, the key and the problem."""


class AddressError(NodeError):
    """An email address is malformed; the message says why without repeating it."""


class SealError(NodeError):
    """A sealed value does not open: wrong key, wrong context, or tampered bytes."""


class MailError(NodeError):
    """A mail could not be sent.

    ``permanent`` is true when retrying cannot help (the server answered 5xx), so a
    queue can tell a dead mail from a server that is briefly away.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class StorageError(NodeError):
    """The database failed: unreachable or restarting (``status`` 503, try again), or it
    cannot hold a value it was given, such as text with a NUL character (400)."""

    def __init__(self, message: str, *, status: int = 503) -> None:
        super().__init__(message)
        self.status = status
