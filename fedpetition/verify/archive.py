"""Bundle files on disk (spec §10.3): a zip archive of served files.

:class:`ZipSource` implements the core's ``FileSource``: anything wrong with the
archive itself (truncation, bad CRC, encryption, oversized or duplicate members)
is reported as a DecodeError, never as a zipfile or zlib exception.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Iterable
from types import TracebackType
from typing import IO

from fedpetition.core import tiles
from fedpetition.core.bundle import check_member_path
from fedpetition.core.errors import DecodeError

# The largest member a conforming bundle can hold: a full entry bundle of
# maximum-size entries (256 x (2 + 65535) bytes).
MAX_MEMBER_SIZE = tiles.TILE_WIDTH * (2 + tiles.MAX_ENTRY_SIZE)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # members carry no time: bundles are reproducible

_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
                   OverflowError, RuntimeError, ValueError, UnicodeDecodeError, KeyError)


_LOCAL_HEADER = struct.Struct("<4sHHH16xHH")  # signature, version, flags, method, name and
# extra lengths of a zip local file header (APPNOTE.TXT 4.3.7)
# General purpose flags a member read directly must not have (APPNOTE.TXT 4.4.4):
# encrypted (bit 0), sizes in a data descriptor (3), patched data (5), strong encryption (6).
_UNUSUAL_FLAGS = 0x01 | 0x08 | 0x20 | 0x40


class ZipSource:
    """Reads a bundle archive; one open file, members read on demand.

    A verifier reads thousands of members. From an archive on disk, a stored
    member whose local header is plain (no encryption, no data descriptor, the
    same name as the central directory) is read with one ``pread`` and its CRC
    checked, which costs half of opening it through ``zipfile``; any other
    member is read through ``zipfile``, whose errors name what is wrong. (Not a
    memory map: its pages would count in the verifier's resident memory.)
    """

    def __init__(self, path: str | os.PathLike[str] | IO[bytes]) -> None:
        self._zip: zipfile.ZipFile | None
        try:
            self._zip = zipfile.ZipFile(path, "r")
            self._infos = self._zip.infolist()
        except _ARCHIVE_ERRORS as e:
            raise DecodeError(f"not a readable bundle archive: {e}") from e
        self._by_name = {info.filename: info for info in self._infos}
        self._path = path if isinstance(path, (str, os.PathLike)) else None
        self._fd: int | None = None
        if self._path is not None and hasattr(os, "pread"):
            try:
                self._fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                self._fd = None  # zipfile opened it: it reads it

    def after_fork(self) -> None:
        """In a forked process: keep the member list and the descriptor ``pread`` uses
        (it has no position), but not ``zipfile``'s file, whose position the parent
        shares; it is opened again if a member needs it."""
        if self._path is None:
            raise DecodeError("a bundle read from memory cannot be shared with workers")
        self._zip = None

    def members(self) -> Iterable[str]:
        return [info.filename for info in self._infos]

    def read(self, path: str) -> bytes:
        info = self._by_name.get(path)
        if info is None:
            raise DecodeError(f"the bundle has no member {path}")
        if info.file_size > MAX_MEMBER_SIZE:
            raise DecodeError(f"member {path} is larger than any conforming file")
        if info.compress_type != zipfile.ZIP_STORED:
            raise DecodeError(f"member {path} is compressed; members are stored (spec §10.3)")
        data = self._direct(info)
        if data is not None:
            return data
        try:
            if self._zip is None:
                assert self._path is not None
                self._zip = zipfile.ZipFile(self._path, "r")
            with self._zip.open(info) as member:
                data = member.read(MAX_MEMBER_SIZE + 1)
        except _ARCHIVE_ERRORS as e:
            raise DecodeError(f"cannot read member {path}: {e}") from e
        if len(data) != info.file_size:
            raise DecodeError(f"member {path} does not have its recorded size")
        return data

    def _direct(self, info: zipfile.ZipInfo) -> bytes | None:
        """The member's bytes if its local header is plain and its CRC matches, else None."""
        if (self._fd is None or info.flag_bits & _UNUSUAL_FLAGS
                or info.compress_size != info.file_size):
            return None
        name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        try:
            head = os.pread(self._fd, _LOCAL_HEADER.size + len(name), info.header_offset)
        except (OSError, OverflowError):  # OverflowError: an offset beyond any file
            return None
        if len(head) != _LOCAL_HEADER.size + len(name):
            return None
        signature, _, flags, method, name_size, extra_size = _LOCAL_HEADER.unpack_from(head)
        if (signature != b"PK\x03\x04" or flags & _UNUSUAL_FLAGS
                or method != zipfile.ZIP_STORED or head[_LOCAL_HEADER.size:] != name):
            return None
        try:
            data = os.pread(self._fd, info.file_size,
                            info.header_offset + _LOCAL_HEADER.size + name_size + extra_size)
        except (OSError, OverflowError):
            return None
        return data if len(data) == info.file_size and zlib.crc32(data) == info.CRC else None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ZipSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ZipBundleWriter:
    """Writes members to a bundle archive, stored uncompressed and timeless."""

    def __init__(self, path: str | os.PathLike[str] | IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.members: list[str] = []

    def add(self, path: str, data: bytes) -> None:
        check_member_path(path)
        info = zipfile.ZipInfo(path, date_time=_FIXED_TIME)
        info.external_attr = 0o644 << 16
        self._zip.writestr(info, data)
        self.members.append(path)

    def add_all(self, files: Iterable[tuple[str, bytes]]) -> None:
        for path, data in files:
            self.add(path, data)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipBundleWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
