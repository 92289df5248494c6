"""Reading a petition's published files from live nodes (the same FileSource a bundle is).

A member path is the URL without its scheme (spec §10.1), so reading one is a GET
of ``<scheme>://<path>``. Live files change as logs grow, so the source pins
each log's checkpoint the first time it is read and lists exactly the files
that checkpoint needs (tiles are immutable, partial ones included), plus a
manifest it writes itself: what it lists is what a bundle fetched at that
moment would hold. The origin's evaluation counts (optional, spec §10.1) are
read after every checkpoint, so that they cover every entry those hold.
"""

from __future__ import annotations

import contextlib
import http.client
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

from fedpetition.core import bundle, names
from fedpetition.core.documents import HostRoster, SignedDocument
from fedpetition.core.errors import DecodeError, FedPetitionError
from fedpetition.core.notes import Checkpoint, VerifierKey

if TYPE_CHECKING:
    from fedpetition.core.verification import Report

MAX_FILE = 20 << 20
MAX_BUNDLE = 8 << 30
TIMEOUT = 30.0
USER_AGENT = "fedpetition-verifier"


class NotFound(DecodeError):
    """The node answered 404: it does not serve that file."""


def parse_petition_url(url: str) -> tuple[str, str, str]:
    """``(scheme, node name, slug)`` of a petition's page or files URL on its origin."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DecodeError(f"{url} is not an http(s) URL")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or segments[0] not in ("p", "petitions"):
        raise DecodeError(f"{url} is not a petition URL (want .../p/<slug> or "
                          ".../petitions/<slug>)")
    try:
        return parts.scheme, names.check_node_name(parts.netloc), names.check_slug(segments[1])
    except FedPetitionError as e:
        raise DecodeError(f"{url}: {e}") from e


class _Connections:
    """One kept-alive connection per node: a verification reads thousands of files.

    A GET over a fresh connection per file costs a TCP (and TLS) handshake each;
    this keeps one per host and reopens it if the server closed it meanwhile.
    """

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self._open: dict[str, http.client.HTTPConnection] = {}

    def get(self, path: str, limit: int = MAX_FILE) -> bytes:
        host, _, rest = path.partition("/")
        url = f"{self.scheme}://{path}"
        for attempt in (1, 2):
            conn = self._open.get(host)
            if conn is None:
                cls = (http.client.HTTPSConnection if self.scheme == "https"
                       else http.client.HTTPConnection)
                conn = self._open[host] = cls(host, timeout=TIMEOUT)
            try:
                conn.request("GET", "/" + rest, headers={"User-Agent": USER_AGENT})
                response = conn.getresponse()
                data = response.read(limit + 1)
                if response.will_close:
                    self.close_host(host)
            except (http.client.HTTPException, OSError, ValueError) as e:
                self.close_host(host)
                if attempt == 1 and isinstance(e, http.client.RemoteDisconnected | BrokenPipeError
                                                  | ConnectionResetError):
                    continue  # the server closed an idle kept-alive connection
                raise DecodeError(f"GET {url}: {e}") from None
            if response.status == 404:
                raise NotFound(f"GET {url}: HTTP 404")
            if response.status != 200:
                raise DecodeError(f"GET {url}: HTTP {response.status}")
            if len(data) > limit:
                self.close_host(host)
                raise DecodeError(f"GET {url}: larger than {limit} bytes")
            return bytes(data)
        raise AssertionError("unreachable")

    def close_host(self, host: str) -> None:
        conn = self._open.pop(host, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for host in list(self._open):
            self.close_host(host)


class Getter(Protocol):
    """Reads ``host/path`` files over HTTP: raises NotFound for a 404, DecodeError else."""

    def get(self, path: str, limit: int = MAX_FILE) -> bytes: ...

    def close(self) -> None: ...


class HttpSource:
    """The files of one petition, read from its origin and hosting nodes.

    ``getter`` replaces the kept-alive connections of the command-line verifier (a
    node verifying a petition on its page reads through its own guarded fetcher).
    """

    def __init__(self, url: str, getter: Callable[[str], Getter] | None = None) -> None:
        self.scheme, origin, slug = parse_petition_url(url)
        self.petition_id = f"{origin}/{slug}"
        self._cache: dict[str, bytes] = {}
        self._members: list[str] | None = None
        self._connections: Getter = (getter or _Connections)(self.scheme)

    def _fetch(self, path: str) -> bytes:
        """A file; documents and checkpoints are kept (read again), tiles are not."""
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        data = self._connections.get(path)
        if "/tile/" not in path:
            self._cache[path] = data
        return data

    def members(self) -> Iterable[str]:
        if self._members is None:
            self._members = self._list()
        return [bundle.MANIFEST, *self._members]

    def _list(self) -> list[str]:
        pid = self.petition_id
        origin = names.petition_origin(pid)
        members = [bundle.key_path(origin), bundle.roster_path(pid)]
        number = 1
        while True:
            path = bundle.version_path(pid, number)
            try:
                self._fetch(path)
            except DecodeError:
                if number == 1:
                    raise
                break
            members.append(path)
            number += 1
        roster = HostRoster.decode(SignedDocument.decode(self._fetch(members[1])).body)
        for host in roster.hosts:
            if host.name != origin:
                members.append(bundle.key_path(host.name))
            log_origin = names.log_origin(host.name, pid)
            note = self._fetch(bundle.checkpoint_path(log_origin))
            try:
                body = note.decode("utf-8").split("\n\n", 1)[0] + "\n"
                size = Checkpoint.parse_body(body).size
            except (UnicodeDecodeError, FedPetitionError):
                size = 0  # the verifier reports the bad checkpoint; list no tiles
            members.extend(bundle.log_member_paths(log_origin, size))
        # After the checkpoints: the origin counts an evaluation before it answers, so
        # counts read now cover every entry of the checkpoints pinned above.
        evaluations = bundle.evaluations_path(pid)
        try:
            self._fetch(evaluations)
        except NotFound:
            return members  # the origin publishes no counts: the member is absent
        except DecodeError:
            pass  # listed, so the verifier reports why it cannot be read
        members.append(evaluations)
        return members

    def read(self, path: str) -> bytes:
        if path == bundle.MANIFEST:
            if self._members is None:
                self.members()
            assert self._members is not None
            return bundle.Manifest(self.petition_id, tuple(sorted(self._members))).encode()
        if self._members is not None and path not in self._members:
            raise DecodeError(f"{path} is not a file of this petition")
        return self._fetch(path)

    def close(self) -> None:
        self._cache.clear()
        self._connections.close()

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_live(url: str, **options: Any) -> Report:
    """Run the verification (spec §11) on a petition read from its live nodes."""
    from fedpetition.core.verification import Verification

    with HttpSource(url) as source:
        return Verification(source, **options).run()


def download(url: str) -> IO[bytes]:
    """A bundle archive fetched into a named temporary file (deleted when closed)."""
    spool = tempfile.NamedTemporaryFile(suffix=".zip")  # noqa: SIM115 - the caller closes it
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            total = 0
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > MAX_BUNDLE:
                    raise DecodeError(f"GET {url}: the bundle is larger than {MAX_BUNDLE} bytes")
                spool.write(chunk)
    except urllib.error.HTTPError as e:
        spool.close()
        raise DecodeError(f"GET {url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        spool.close()
        raise DecodeError(f"GET {url}: {getattr(e, 'reason', e)}") from None
    spool.seek(0)
    return spool


def default_scheme(host: str) -> str:
    """https, except for loopback nodes (a local federation, tests)."""
    bare = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return "http" if bare in ("127.0.0.1", "localhost", "[::1]") else "https"


def latest_consistency(checkpoint: Checkpoint, log_key: VerifierKey,
                       witnesses: Sequence[VerifierKey] = (), quorum: int = 0,
                       scheme: str | None = None) -> tuple[Checkpoint, list[bytes], str]:
    """The log's current checkpoint and a consistency proof from ``checkpoint`` to it.

    The current checkpoint must be signed by the log and cosigned by ``quorum`` of
    ``witnesses`` (spec §8.3), as the receipt's own was. The proof is computed
    from the log's tiles (tlog-tiles: logs serve tiles, not proofs), read over one
    kept-alive connection. Returns (latest checkpoint, proof, the latest signed note).
    """
    from fedpetition.core import merkle, tiles
    from fedpetition.core.log import open_log_checkpoint

    host = checkpoint.origin.split("/", 1)[0]
    chosen = scheme or default_scheme(host)
    base = f"{chosen}://{checkpoint.origin}"
    with contextlib.closing(_Connections(chosen)) as connections:
        note = connections.get(f"{checkpoint.origin}/checkpoint").decode("utf-8", "replace")
        try:
            latest, cosigners = open_log_checkpoint(note, checkpoint.origin, log_key,
                                                    witnesses)
        except DecodeError as e:
            raise DecodeError(f"the log at {base} serves a checkpoint that does not open: "
                              f"{e}") from e
        if len(cosigners) < quorum:
            raise DecodeError(f"the log's current checkpoint has {len(cosigners)} of the "
                              f"{quorum} cosignatures the petition requires")
        if latest.size < checkpoint.size:
            raise DecodeError(f"the log shrank: it serves size {latest.size}, the receipt's "
                              f"checkpoint has {checkpoint.size}")
        if latest.size == checkpoint.size or checkpoint.size == 0:
            return latest, [], note
        reader = tiles.TileHashReader(
            latest.size, lambda c: connections.get(f"{checkpoint.origin}/{c.path}"))
        return latest, merkle.consistency_proof(checkpoint.size, latest.size, reader), note
