"""The repository's CUE module: which files a configuration's imports need, and their state.

A module lives at the repository root: ``cue.mod/module.cue`` names it (``module:
"acme.example/monorepo"``), and ``import "acme.example/monorepo/defaults"`` loads the package in
the folder ``defaults/`` (its ``.cue`` files and those of its parent folders, as CUE's loader
does); any other import that is not CUE's standard library comes from ``cue.mod/pkg``, ``gen`` or
``usr``. Discovery lays the needed files out beside the batch with their repository paths, so
CUE's positions in them are already the user's file:line, and keys its cache on the *folders*
a configuration imported (a file added to an imported package changes the key too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from forge_core.services.evaluation import Header, split_header

MODULE_FOLDER = "cue.mod"
MODULE_FILE = "cue.mod/module.cue"
_MODULE_PATH = re.compile(r'^\s*module\s*:\s*"(?P<path>[^"]+)"', re.MULTILINE)


class TreeEntryLike(Protocol):
    path: str
    type: str
    oid: str


def is_standard(import_path: str) -> bool:
    """CUE's standard library: the first path element has no dot (``strings``, ``encoding/json``)."""
    return "." not in import_path.split("/", 1)[0]


def cue_loads(name: str) -> bool:
    """Whether CUE's loader reads a file of a package folder (not ``_x.cue``, ``.x.cue``, ``*_tool.cue``)."""
    return name.endswith(".cue") and not name.startswith(("_", ".")) and not name.endswith("_tool.cue")


def unquote(spec: str) -> str:
    """An import spec's path without quotes and ``:package`` qualifier."""
    return spec.strip('"').partition(":")[0]


@dataclass
class Resolved:
    """What a set of imports needs: files to lay out (path → text) and the folders they came from."""

    files: dict[str, str] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)


class ModuleTree:
    """The ``.cue`` files of one commit by folder, for resolving imports and keying the cache."""

    def __init__(self, entries: Mapping[str, TreeEntryLike]) -> None:
        module = entries.get(MODULE_FOLDER)
        self.module_oid = module.oid if module is not None and module.type == "tree" else None
        self._by_folder: dict[str, list[tuple[str, str]]] = {}
        self._module_files: list[tuple[str, str]] = []
        if self.module_oid is None:
            return  # no module: nothing but the standard library can be imported
        for path, entry in entries.items():
            if entry.type != "blob" or not path.endswith(".cue"):
                continue
            if path.startswith(MODULE_FOLDER + "/"):
                self._module_files.append((path, entry.oid))
            else:
                folder, _, name = path.rpartition("/")
                if cue_loads(name) and ".forge" not in folder.split("/"):
                    self._by_folder.setdefault(folder, []).append((path, entry.oid))

    def state(self, folders: Sequence[str]) -> list[tuple[str, object]]:
        """What the cache keys on for ``folders``: cue.mod's tree id, each package folder's files."""
        return [
            (folder, self.module_oid if folder == MODULE_FOLDER else sorted(self._by_folder.get(folder, [])))
            for folder in folders
        ]

    def resolve(self, imports: Iterable[str], read: Callable[[list[str]], Mapping[str, str]]) -> Resolved:
        """The files ``imports`` (paths, transitively) need; ``read`` gives blob texts by id."""
        wanted = sorted({p for p in imports if not is_standard(p)})
        resolved = Resolved()
        if not wanted:
            return resolved
        resolved.folders.append(MODULE_FOLDER)  # its module path decides where every import is found
        if self.module_oid is None:
            return resolved  # CUE reports each import as not found, at its line
        texts = read([oid for _, oid in self._module_files])
        resolved.files.update({path: texts[oid] for path, oid in self._module_files})
        match = _MODULE_PATH.search(resolved.files.get(MODULE_FILE, ""))
        module = match.group("path") if match else None
        seen: set[str] = set()
        while wanted:
            folders = [f for path in wanted for f in self._folders(path, module) if f not in seen]
            seen.update(folders)
            resolved.folders += sorted(set(folders))
            files = [item for folder in sorted(set(folders)) for item in self._by_folder.get(folder, [])]
            texts = read([oid for _, oid in files])
            following: set[str] = set()
            for path, oid in files:
                resolved.files[path] = texts[oid]
                header = split_header(texts[oid], path)
                if isinstance(header, Header):  # a malformed one: CUE reports it as it loads it
                    following.update(unquote(spec) for _, spec in header.imports)
            wanted = sorted(p for p in following if not is_standard(p))
        return resolved

    @staticmethod
    def _folders(import_path: str, module: str | None) -> list[str]:
        """The folders of the main module CUE reads for ``import_path``: the package's and its
        parents' below the root (the root's own files are never laid out: the batch is there);
        none for an import from cue.mod/pkg, gen or usr (cue.mod is laid out whole)."""
        if module is None or not import_path.startswith(module + "/"):
            return []
        parts = import_path[len(module) + 1 :].split("/")
        return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
