"""The files of a ``python`` artifact: sdists and wheels, named by the packaging standards."""

from __future__ import annotations

import email.parser
import gzip
import hashlib
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from forge_core.sdk import ForgeError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Distribution:
    path: Path
    project: NormalizedName
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def is_wheel(self) -> bool:
        return self.path.suffix == ".whl"


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks (memory stays flat for any size)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_filename(filename: str) -> tuple[NormalizedName, str] | None:
    """The project and version a distribution's file name states; None if it names none."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return name, str(version)


def read_distributions(files: tuple[Path, ...], *, where: str) -> list[Distribution]:
    """The artifact's distributions: every file must be an sdist or a wheel of one project version."""
    found: list[Distribution] = []
    for path in files:
        parsed = parse_filename(path.name)
        if parsed is None:
            raise ForgeError(f"{path.name} is neither a wheel nor an sdist", where=where)
        if not path.is_file():
            raise ForgeError(f"{path} does not exist", where=where)
        found.append(Distribution(path, parsed[0], parsed[1], file_sha256(path)))
    if not found:
        raise ForgeError("the artifact has no distribution files", where=where)
    versions = {(d.project, d.version) for d in found}
    if len(versions) > 1:
        named = ", ".join(f"{n} {v}" for n, v in sorted(versions))
        raise ForgeError(f"the files are of more than one project version: {named}", where=where)
    return found


def wheel_metadata(wheel: Path) -> tuple[str, str]:
    """The ``Name`` and ``Version`` a wheel's METADATA records (what the index will show)."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        headers = email.parser.BytesHeaderParser().parsebytes(archive.read(metadata))
    return str(headers["Name"]), str(headers["Version"])


def normalize_sdist(path: Path, *, epoch: int) -> None:
    """Rewrite a ``.tar.gz`` sdist reproducibly: entries sorted, owned by 0, timestamps clamped to
    ``epoch``, no gzip timestamp. Build backends write the build time and the checkout's file times
    into sdists, so a rebuilt version would differ from the one an index holds and be refused."""
    if not path.name.endswith(".tar.gz"):
        return
    rewritten = path.with_name(path.name + ".tmp")
    with tarfile.open(path, "r:gz") as source, rewritten.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in sorted(source.getmembers(), key=lambda m: m.name):
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            content = source.extractfile(member) if member.isfile() else None
            target.addfile(member, content)
    os.replace(rewritten, path)


def canonical(name: str) -> NormalizedName:
    return canonicalize_name(name)
