"""The incremental discovery cache: evaluated configurations by the content hashes they depend on.

A project's key covers its ``.forge/`` tree id, ``repo.cue``'s blob id, the schemas, the evaluator
version and the installed plugin names. Whether a project reads the runtime values (``#forge``)
is only known from its text, so its entry records that, and such a project's result is stored
under a second key that adds the runtime values. Entries are small JSON files, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class DiscoveryCache:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _file(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            value: dict[str, Any] = json.loads(self._file(key).read_text())
            return value
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.root is None:
            return
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(value, out)
        os.replace(tmp, target)

    def lookup(self, static_key: str, runtime: dict[str, str]) -> dict[str, Any] | None:
        """The cached result for a project, following the runtime-values indirection."""
        entry = self.get(static_key)
        if entry is not None and entry.get("uses_runtime"):
            return self.get(digest(static_key, runtime))
        return entry

    def store(self, static_key: str, runtime: dict[str, str], uses_runtime: bool, result: dict[str, Any]) -> None:
        if uses_runtime:
            self.put(static_key, {"uses_runtime": True})
            self.put(digest(static_key, runtime), result)
        else:
            self.put(static_key, result)
