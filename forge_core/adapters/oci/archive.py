"""Reproducible ``.tar.gz``: the same files give the same bytes, so the same digest.

Entries sorted by path, every directory listed, mtime 0, uid/gid 0 with empty owner names, modes
fixed (0755 for directories and executables, 0644 for other files), no PAX timestamps, and gzip
with mtime 0 and no file name. File contents are streamed, never read whole.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

_COMPRESSLEVEL = 6


def write_tar_gz(destination: Path, members: Mapping[str, Path | bytes]) -> Path:
    """Write ``members`` (archive path → a file's path or bytes) to ``destination``."""
    entries = {_normalise(name): source for name, source in members.items()}
    directories = {str(parent) for name in entries for parent in PurePosixPath(name).parents if str(parent) != "."}
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.partial")
    try:
        with (
            temporary.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_COMPRESSLEVEL) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar,
        ):
            for name in sorted(directories | set(entries)):
                source = entries.get(name)
                if source is None:
                    tar.addfile(_info(name, tarfile.DIRTYPE, 0o755, 0))
                elif isinstance(source, bytes):
                    tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(source)), io.BytesIO(source))
                else:
                    mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
                    with source.open("rb") as file:
                        tar.addfile(_info(name, tarfile.REGTYPE, mode, source.stat().st_size), file)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, destination)
    return destination


def write_tar_gz_of_folder(destination: Path, folder: Path, *, prefix: str = "") -> Path:
    """Archive every file under ``folder`` (symlinks and special files are refused)."""
    members: dict[str, Path | bytes] = {}
    for path in folder.rglob("*"):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ValueError(f"{path}: only regular files and folders can be archived reproducibly")
        if path.is_file():
            members[str(PurePosixPath(prefix) / path.relative_to(folder).as_posix())] = path
    return write_tar_gz(destination, members)


def _normalise(name: str) -> str:
    path = PurePosixPath(name.lstrip("/"))
    if not path.parts or ".." in path.parts:
        raise ValueError(f"bad archive member name {name!r}")
    return str(path)


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
