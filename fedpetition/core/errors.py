"""One exception tree for the whole protocol core.

::

    FedPetitionError
    ├── LocalProtocolError        we got it wrong: a caller asked the core to build
    │                             something the protocol forbids (a bug on our side)
    └── RemoteProtocolError       the peer, file or bundle is wrong; ``status`` is the
        │                         HTTP status a server maps it to (400 by default)
        ├── DecodeError           bytes are not a valid encoding of the expected value
        ├── SignatureError        a signature by a known key fails, or no known key signed
        ├── ProofError            a Merkle inclusion or consistency proof does not hold
        └── VerificationError     a named verification step (spec §11) failed

Verification functions raise; functions that produce a report catch these and
record them by step name. Every decode failure inside the core is re-raised as one
of these ``from`` the original exception, so adapters never see a bare
``ValueError`` or ``KeyError`` from untrusted input.
"""

from __future__ import annotations


class FedPetitionError(Exception):
    """Root of every error the core raises on purpose."""


class LocalProtocolError(FedPetitionError):
    """The caller asked for something the protocol forbids."""


class RemoteProtocolError(FedPetitionError):
    """Input from outside (a peer, a file, a bundle) is invalid."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class DecodeError(RemoteProtocolError):
    """Bytes are not a valid (canonical) encoding of the expected value."""


class SignatureError(RemoteProtocolError):
    """A signature from a known key does not verify, or no trusted key signed."""


class ProofError(RemoteProtocolError):
    """A Merkle inclusion or consistency proof does not verify."""


class VerificationError(RemoteProtocolError):
    """A named verification step failed.

    ``step`` is the step's name from spec §11; ``log`` the log origin it concerns
    (or ``None`` for petition-wide steps); ``index`` the entry index, if any.
    """

    def __init__(
        self,
        step: str,
        message: str,
        *,
        log: str | None = None,
        index: int | None = None,
    ) -> None:
        self.step = step
        self.log = log
        self.index = index
        self.reason = message
        where = ""
        if log is not None:
            where += f" log {log}"
        if index is not None:
            where += f" entry {index}"
        super().__init__(f"{step}:{where}: {message}" if where else f"{step}: {message}")
