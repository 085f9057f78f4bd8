"""A safe, streaming reader of tar.gz layers (the Release image's resources layer).

The layer is inflated as it is read, never to disk and never past the limits
(:class:`~forge_core.domain.resources.ArchiveLimits`): a gzip bomb stops at ``max_total_bytes``
of inflated tar stream, a file whose header declares more than ``max_file_bytes`` is refused before
its content is read, and the ``max_entries + 1``-th entry stops the read.

Refused, each with an :class:`~forge_core.domain.resources.ArchiveError` naming the entry and the
rule: absolute paths, ``..`` components, backslashes, symbolic and hard links, devices, FIFOs,
sparse files, names seen twice (after dropping ``./``), and regular files that are not
``.yaml``/``.yml`` — forge writes only those, so anything else means the layer is not one of ours
(it is refused rather than skipped, so nothing the author meant to deploy is silently dropped).
Directory entries are accepted and ignored.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol

from forge_core.domain.canonical_layer import YAML_SUFFIXES, ArchiveError

if TYPE_CHECKING:
    from forge_core.domain.resources import ArchiveLimits, LayerFile


class Limits(Protocol):
    """What the reader needs of :class:`~forge_core.domain.resources.ArchiveLimits` (the Argo CD
    plugin's cold path passes its own, read without pydantic)."""

    @property
    def max_total_bytes(self) -> int: ...
    @property
    def max_file_bytes(self) -> int: ...
    @property
    def max_entries(self) -> int: ...


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _BoundedStream:
    """The inflated stream, raising once more than ``limit`` bytes have been read from it."""

    def __init__(self, raw: _Readable, limit: int):
        self._raw, self._limit, self.consumed = raw, limit, 0

    def read(self, size: int = -1) -> bytes:
        # Never ask for more than one byte past the limit, so a bomb is never inflated further.
        room = self._limit - self.consumed + 1
        chunk = self._raw.read(room if size is None or size < 0 else min(size, room))
        self.consumed += len(chunk)
        if self.consumed > self._limit:
            raise ArchiveError(f"the layer inflates to more than {self._limit} bytes", entry=None,
                               rule="max_total_bytes")
        return chunk


def _entry_name(member: tarfile.TarInfo) -> str:
    name = member.name
    if not name or "\x00" in name:
        raise ArchiveError("entry has an empty or NUL-holding name", entry=repr(name), rule="name")
    if name.startswith("/"):
        raise ArchiveError("absolute path", entry=name, rule="absolute_path")
    if "\\" in name:
        raise ArchiveError("backslash in a path", entry=name, rule="backslash")
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        raise ArchiveError("path climbs out of the layer with '..'", entry=name, rule="parent_component")
    return "/".join(parts) or "."


def _check_type(member: tarfile.TarInfo, name: str) -> None:
    if member.issym():
        raise ArchiveError(f"symbolic link to {member.linkname!r}", entry=name, rule="symlink")
    if member.islnk():
        raise ArchiveError(f"hard link to {member.linkname!r}", entry=name, rule="hardlink")
    if member.ischr() or member.isblk():
        raise ArchiveError("device file", entry=name, rule="device")
    if member.isfifo():
        raise ArchiveError("FIFO", entry=name, rule="fifo")
    if member.issparse():
        raise ArchiveError("sparse file", entry=name, rule="sparse")
    if not (member.isreg() or member.isdir()):
        raise ArchiveError(f"entry of tar type {member.type!r}", entry=name, rule="file_type")


def read_yaml_layer(stream: BinaryIO, limits: ArchiveLimits | None = None) -> tuple[LayerFile, ...]:
    """The ``.yaml``/``.yml`` files of the tar.gz ``stream``, sorted by name; ArchiveError on any refusal.

    ``stream`` is read front to back once (a registry blob response or an open file will do).
    """
    from forge_core.domain.resources import ArchiveLimits, LayerFile

    files = read_layer_files(stream, limits or ArchiveLimits())
    return tuple(LayerFile(name=name, data=data) for name, data in files)


def read_layer_files(stream: BinaryIO, limits: Limits) -> list[tuple[str, bytes]]:
    """:func:`read_yaml_layer` without the domain models: (name, bytes), sorted by name."""
    inflated = _BoundedStream(gzip.GzipFile(fileobj=stream, mode="rb"), limits.max_total_bytes)
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        # typeshed wants a full file object for stream mode; tarfile only calls read() on it
        with tarfile.open(fileobj=inflated, mode="r|") as archive:  # type: ignore[call-overload]
            for count, member in enumerate(archive, start=1):
                if count > limits.max_entries:
                    raise ArchiveError(f"more than {limits.max_entries} entries", entry=member.name,
                                       rule="max_entries")
                name = _entry_name(member)
                _check_type(member, name)
                if name == "." and member.isdir():
                    continue  # the root folder, as `tar -C dir .` writes it
                if name in seen:
                    raise ArchiveError("name appears twice", entry=name, rule="duplicate")
                seen.add(name)
                if member.isdir():
                    continue
                if not name.endswith(YAML_SUFFIXES):
                    raise ArchiveError("only .yaml and .yml files belong in a resources layer", entry=name,
                                       rule="not_yaml")
                if member.size > limits.max_file_bytes:
                    raise ArchiveError(f"file of {member.size} bytes, more than {limits.max_file_bytes}",
                                       entry=name, rule="max_file_bytes")
                content = archive.extractfile(member)
                if content is None:  # tarfile's way of saying "no data": never for a regular file
                    raise ArchiveError("regular file without content", entry=name, rule="format")
                files[name] = content.read()
    except ArchiveError:
        raise
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, OSError) as error:
        raise ArchiveError(f"not a readable tar.gz: {error}", entry=None, rule="format") from error
    return [(name, files[name]) for name in sorted(files)]
