"""Object storage through fsspec: a local folder by default, ``s3://bucket/prefix`` in a fleet."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.secrets import mask_secrets
from forge_core.ports.storage import LineSink
from forge_core.settings.storage import StorageSettings


class _LogSink:
    """Writes masked lines and flushes each, so a local log can be followed while a step runs."""

    def __init__(self, handle: IO[str], secrets: tuple[str, ...]) -> None:
        self._handle, self._secrets = handle, secrets
        self._lock = threading.Lock()  # a runner may log from several threads (stdout and stderr)

    def write_line(self, line: str) -> None:
        text = mask_secrets(line.rstrip("\n"), self._secrets) + "\n"
        with self._lock:
            self._handle.write(text)
            self._handle.flush()


class FsspecStore:
    """An :class:`~forge_core.ports.storage.ObjectStore` on any fsspec file system."""

    def __init__(self, url: str, **options: Any) -> None:
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(f"cannot use storage {url!r}: {exc}", where="FORGE_STORAGE__URL") from exc
        self.root = self.root.rstrip("/")
        self.url = url

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> FsspecStore:
        return cls(settings.url, **settings.options)

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ConfigurationError(f"invalid storage key {key!r}", where="storage key")
        return f"{self.root}/{key}"

    def _parent(self, path: str) -> None:
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._parent(path)
        temporary = f"{path}.partial"
        with self.fs.open(temporary, "wb") as handle:
            handle.write(data)
        self.fs.mv(temporary, path)  # readers never see half an object

    def read_bytes(self, key: str) -> bytes:
        with self.fs.open(self._path(key), "rb") as handle:
            data: bytes = handle.read()
            return data

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    @contextmanager
    def open_log(self, key: str, secrets: tuple[str, ...] = ()) -> Iterator[LineSink]:
        path = self._path(key)
        self._parent(path)
        with self.fs.open(path, "w", encoding="utf-8") as handle:
            yield _LogSink(handle, secrets)

    def location(self, key: str) -> str:
        path = self._path(key)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return path if protocol in ("file", "local") else f"{protocol}://{path}"
