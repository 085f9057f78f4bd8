"""Reproducible ``.tar.gz``: the same files give the same bytes, so the same digest.

Entries sorted by path, every parent directory listed (0755), a fixed mtime (0 unless told:
``SOURCE_DATE_EPOCH``), numeric owners with empty owner names, fixed modes (0755 for directories
and executables, 0644 for other files, unless the caller gives one), POSIX tar with a PAX header
only where ustar cannot hold a field (a long or non-ASCII name), and gzip with mtime 0 and no file
name. File contents are streamed, never read whole. :func:`write_layer` also returns what an OCI
image needs of the archive: its digest and its ``diff_id`` (the digest of the uncompressed tar).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

_COMPRESSLEVEL = 6


@dataclass(frozen=True)
class LayerEntry:
    """One file of an archive: its path inside (``/`` or not), its content, mode and owner."""

    path: str
    source: Path | bytes
    mode: int | None = None
    """None: 0755 when the source file is executable, else 0644."""
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class WrittenLayer:
    """A written ``.tar.gz``: its file, its digest and size, and the digest of the tar inside."""

    path: Path
    digest: str
    size: int
    diff_id: str


def write_layer(destination: Path, entries: Sequence[LayerEntry], *, mtime: int = 0) -> WrittenLayer:
    """Write ``entries`` to ``destination`` (atomically); a name given twice is a ``ValueError``."""
    files: dict[str, LayerEntry] = {}
    for entry in entries:
        name = _normalise(entry.path)
        if name in files:
            raise ValueError(f"archive member {name!r} is given twice")
        files[name] = entry
    directories = {str(parent) for name in files for parent in PurePosixPath(name).parents if str(parent) != "."}
    clash = sorted(directories & set(files))
    if clash:
        raise ValueError(f"archive member {clash[0]!r} is both a file and a folder")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.partial")
    try:
        with temporary.open("wb") as raw:
            packed = _Hashing(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=_COMPRESSLEVEL) as zipped:
                plain = _Hashing(zipped)
                # "w|": a plain stream (no seeking), so the tar's bytes can be hashed on the way to gzip.
                with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for name in sorted(directories | set(files)):
                        _add(tar, name, files.get(name), mtime)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, destination)
    return WrittenLayer(destination, packed.digest, packed.size, plain.digest)


def write_tar_gz(destination: Path, members: Mapping[str, Path | bytes]) -> Path:
    """Write ``members`` (archive path → a file's path or bytes) to ``destination``."""
    return write_layer(destination, [LayerEntry(name, source) for name, source in members.items()]).path


def write_tar_gz_of_folder(destination: Path, folder: Path, *, prefix: str = "") -> Path:
    """Archive every file under ``folder`` (symlinks and special files are refused)."""
    members: dict[str, Path | bytes] = {}
    for path in folder.rglob("*"):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ValueError(f"{path}: only regular files and folders can be archived reproducibly")
        if path.is_file():
            members[str(PurePosixPath(prefix) / path.relative_to(folder).as_posix())] = path
    return write_tar_gz(destination, members)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target: _Sink) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._hash.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _add(tar: tarfile.TarFile, name: str, entry: LayerEntry | None, mtime: int) -> None:
    if entry is None:
        tar.addfile(_info(name, tarfile.DIRTYPE, 0o755, 0, mtime))
        return
    source = entry.source
    if isinstance(source, bytes):
        mode = 0o644 if entry.mode is None else entry.mode
        tar.addfile(_info(name, tarfile.REGTYPE, mode, len(source), mtime, entry), io.BytesIO(source))
        return
    with source.open("rb") as file:
        stat = os.fstat(file.fileno())
        mode = (0o755 if stat.st_mode & 0o111 else 0o644) if entry.mode is None else entry.mode
        tar.addfile(_info(name, tarfile.REGTYPE, mode, stat.st_size, mtime, entry), file)


def _normalise(name: str) -> str:
    path = PurePosixPath(name.lstrip("/"))
    if not path.parts or ".." in path.parts:
        raise ValueError(f"bad archive member name {name!r}")
    return str(path)


def _info(name: str, kind: bytes, mode: int, size: int, mtime: int, entry: LayerEntry | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = mtime
    info.uid = entry.uid if entry else 0
    info.gid = entry.gid if entry else 0
    info.uname = info.gname = ""
    return info
