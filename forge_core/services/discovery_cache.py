"""The incremental discovery cache: evaluated configurations by the content hashes they depend on.

A project's key covers its ``.forge/`` tree id (every file in it), ``repo.cue``'s blob id, the
schemas, the evaluator version and the installed plugin names. What else a result depends on is
only known from the texts: whether it reads the runtime values (``#forge``), and which folders of
the repository's CUE module its imports (and repo.cue's) loaded. Such an entry records that, and
its result is stored under a second key that adds the runtime values and those folders' state
(:meth:`forge_core.services.cue_module.ModuleTree.state`). Entries are small JSON files, written
atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

State = Callable[[Sequence[str]], Any]
"""What the folders a result depends on hold now (their content ids)."""


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

    def lookup(self, static_key: str, runtime: dict[str, str], state: State | None = None) -> dict[str, Any] | None:
        """The cached result, following the indirection through runtime values and module folders."""
        entry = self.get(static_key)
        if entry is not None and ("uses_runtime" in entry or "depends" in entry):
            return self.get(_result_key(static_key, runtime, entry, state))
        return entry

    def store(
        self, static_key: str, runtime: dict[str, str], uses_runtime: bool, result: dict[str, Any],
        depends: Sequence[str] = (), state: State | None = None,
    ) -> None:
        """Store ``result``; ``depends`` names the module folders it was evaluated with."""
        if not uses_runtime and not depends:
            self.put(static_key, result)
            return
        entry: dict[str, Any] = {"uses_runtime": uses_runtime}
        if depends:
            entry["depends"] = list(depends)
        self.put(static_key, entry)
        self.put(_result_key(static_key, runtime, entry, state), result)


def _result_key(static_key: str, runtime: dict[str, str], entry: dict[str, Any], state: State | None) -> str:
    parts: list[Any] = [static_key]
    if entry.get("uses_runtime"):
        parts.append(runtime)
    if entry.get("depends"):
        parts.append(state(entry["depends"]) if state else None)
    return digest(*parts)
