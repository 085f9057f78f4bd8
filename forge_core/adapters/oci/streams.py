"""Streaming helpers both OCI stores share: blobs are read and written in blocks, never whole."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from forge_core.domain.oci import Descriptor, OciDigestMismatch

BLOCK = 1024**2
"""Read size when streaming from or to disk."""


def file_chunks(path: Path, start: int = 0, length: int | None = None) -> Callable[[], Iterator[bytes]]:
    """A body factory: a fresh iterator over a file range each call (a retry sends it again)."""

    def chunks() -> Iterator[bytes]:
        remaining = length
        with path.open("rb") as file:
            file.seek(start)
            while remaining is None or remaining > 0:
                block = file.read(BLOCK if remaining is None else min(BLOCK, remaining))
                if not block:
                    return
                if remaining is not None:
                    remaining -= len(block)
                yield block

    return chunks


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 digest and size of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while block := file.read(BLOCK):
            digest.update(block)
            size += len(block)
    return "sha256:" + digest.hexdigest(), size


def receive(chunks: Iterator[bytes], descriptor: Descriptor, destination: Path, *, registry: str, where: str) -> None:
    """Write ``chunks`` to a temporary file beside ``destination``, check size and digest, then
    rename: the destination holds the verified blob or nothing."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            for block in chunks:
                size += len(block)
                if size > descriptor.size:
                    raise OciDigestMismatch(
                        f"blob longer than the {descriptor.size} bytes its descriptor says",
                        registry=registry,
                        reference=where,
                    )
                digest.update(block)
                file.write(block)
        actual = "sha256:" + digest.hexdigest()
        if size != descriptor.size or actual != descriptor.digest:
            raise OciDigestMismatch(
                f"blob of {size} bytes hashing to {actual}, expected {descriptor.size} bytes and {descriptor.digest}",
                registry=registry,
                reference=where,
            )
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
