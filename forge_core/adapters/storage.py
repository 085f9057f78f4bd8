"""Object storage through fsspec: a local folder by default, ``s3://bucket/prefix`` in a fleet."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.logs import bounded_pieces
from forge_core.ports.storage import LineSink
from forge_core.settings.storage import LogSettings, StorageSettings


class _LogSink:
    """Writes masked lines of bounded length, and at most ``limits.max_bytes`` in all.

    The first half of the budget (the head) is written as it comes and flushed line by line, so a
    local log can be followed while a step runs; past it, the last lines (the tail) are held in a
    bounded buffer and written at :meth:`close` after a line saying how much was dropped.
    """

    def __init__(self, handle: IO[str], secrets: tuple[str, ...], limits: LogSettings) -> None:
        self._handle, self._secrets, self._limits = handle, secrets, limits
        self._lock = threading.Lock()  # a runner may log from several threads (stdout and stderr)
        self._head_room = limits.max_bytes // 2
        self._tail: deque[tuple[str, int]] = deque()
        self._tail_room = limits.max_bytes - self._head_room
        self._tail_size = 0
        self._dropped_bytes = self._dropped_lines = 0

    def write_line(self, line: str) -> None:
        for piece in bounded_pieces(line.rstrip("\n"), self._limits.max_line_length, self._secrets):
            self._write(piece + "\n")

    def _write(self, text: str) -> None:
        size = len(text.encode("utf-8"))
        with self._lock:
            if not self._tail and size <= self._head_room:
                self._head_room -= size
                self._handle.write(text)
                self._handle.flush()
                return
            self._head_room = 0  # the head is complete: every later line goes through the tail
            self._tail.append((text, size))
            self._tail_size += size
            while self._tail_size > self._tail_room:
                _, dropped = self._tail.popleft()
                self._tail_size -= dropped
                self._dropped_bytes += dropped
                self._dropped_lines += 1

    def close(self) -> None:
        """Write the held tail, after the mark of what was dropped (if anything was)."""
        with self._lock:
            if self._dropped_lines:
                self._handle.write(
                    f"[… {self._dropped_bytes} bytes in {self._dropped_lines} lines dropped: a step's log "
                    f"keeps its first and last {self._limits.max_bytes // 2} bytes "
                    "(FORGE_STORAGE__LOGS__MAX_BYTES) …]\n"
                )
            self._handle.writelines(text for text, _ in self._tail)
            self._tail.clear()
            self._handle.flush()


class FsspecStore:
    """An :class:`~forge_core.ports.storage.ObjectStore` on any fsspec file system."""

    def __init__(self, url: str, *, logs: LogSettings | None = None, **options: Any) -> None:
        self.logs = logs or LogSettings()
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(f"cannot use storage {url!r}: {exc}", where="FORGE_STORAGE__URL") from exc
        self.root = self.root.rstrip("/")
        self.url = url

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> FsspecStore:
        return cls(settings.url, logs=settings.logs, **settings.options)

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

    @contextmanager
    def open_bytes(self, key: str) -> Iterator[IO[bytes]]:
        with self.fs.open(self._path(key), "rb") as handle:
            yield handle

    def read_range(self, key: str, offset: int, limit: int) -> tuple[bytes, int]:
        """At most ``limit`` bytes of an object from ``offset``, and the object's size when read
        (a log still being written grows: the size tells a reader whether it has caught up)."""
        path = self._path(key)
        with self.fs.open(path, "rb") as handle:
            size = int(self.fs.size(path))
            if offset >= size:
                return b"", size
            handle.seek(offset)
            data: bytes = handle.read(min(limit, size - offset))
        return data, size

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    @contextmanager
    def open_log(self, key: str, secrets: tuple[str, ...] = ()) -> Iterator[LineSink]:
        path = self._path(key)
        self._parent(path)
        with self.fs.open(path, "w", encoding="utf-8") as handle:
            sink = _LogSink(handle, secrets, self.logs)
            try:
                yield sink
            finally:
                sink.close()

    def location(self, key: str) -> str:
        path = self._path(key)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return path if protocol in ("file", "local") else f"{protocol}://{path}"
