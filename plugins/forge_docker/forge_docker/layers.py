"""A layer's ``files`` mapping turned into archive entries: what goes where in the image.

``{source → destination}``, the source relative to the project:

- a file goes to the destination itself, or below it when the destination ends in ``/``;
- a folder's content goes below the destination (the folder's own name is not kept);
- a glob (``*``, ``?``, ``[``) puts each match below the destination, by its name (a matched
  folder with its content).

Destinations are absolute paths that stay inside ``/``; sources stay inside the project (a
symlink is followed only while it does). Every problem names the field: ``layers[1].files["bin/*"]``.
"""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

from forge_core.sdk import ConfigurationError, LayerEntry
from forge_docker.settings import ContainerLayer

_GLOB = set("*?[")


def layer_entries(layer: ContainerLayer, number: int, project: Path, where: str) -> list[LayerEntry]:
    """The entries of ``layers[number]``, in a stable order; a destination given twice is an error."""
    mode = _mode(layer, number, where)
    uid, gid = (int(part) for part in layer.owner.split(":"))
    placed: dict[str, str] = {}
    entries: list[LayerEntry] = []
    for source, destination in layer.files.items():
        field = f"layers[{number}].files[{source!r}]"
        target = _destination(destination, field, where)
        for path, name in _sources(project, source, target, destination.endswith("/"), field, where):
            if name in placed:
                raise ConfigurationError(
                    f"{field}: /{name} is also written by layers[{number}].files[{placed[name]!r}]", where=where
                )
            placed[name] = source
            entries.append(LayerEntry(name, path, mode=mode, uid=uid, gid=gid))
    return entries


def _mode(layer: ContainerLayer, number: int, where: str) -> int | None:
    if layer.mode is None:
        return None
    value = layer.mode
    if isinstance(value, str):
        text = value.removeprefix("0o")
        if not text or any(c not in "01234567" for c in text):
            raise ConfigurationError(f"layers[{number}].mode: {value!r} is not an octal mode like '0755'", where=where)
        value = int(text, 8)
    if not 0 <= value <= 0o7777:
        raise ConfigurationError(f"layers[{number}].mode: {oct(value)} is not a file mode (0 to 0o7777)", where=where)
    return value


def _destination(destination: str, field: str, where: str) -> PurePosixPath:
    path = PurePosixPath(destination)
    if not path.is_absolute():
        raise ConfigurationError(f"{field}: the destination {destination!r} must be an absolute path", where=where)
    if ".." in path.parts:
        raise ConfigurationError(f"{field}: the destination {destination!r} escapes / ('..')", where=where)
    return path


def _sources(
    project: Path, source: str, target: PurePosixPath, below: bool, field: str, where: str
) -> list[tuple[Path, str]]:
    """(file, path in the image without the leading /) for every file the source names."""
    root = project.resolve()
    if _GLOB & set(source):
        try:
            matches = sorted(project.glob(source))
        except (ValueError, NotImplementedError) as error:  # an absolute or empty pattern
            raise ConfigurationError(
                f"{field}: {source!r} is not a glob relative to the project: {error}", where=where
            ) from None
        if not matches:
            raise ConfigurationError(f"{field}: no file in {project} matches {source!r}", where=where)
        return [pair for match in matches for pair in _tree(root, match, target / match.name, field, where)]
    path = project / source
    if not path.exists():
        raise ConfigurationError(f"{field}: no such file or folder {path}", where=where)
    if path.is_dir():
        return _tree(root, path, target, field, where, content_only=True)
    return _tree(root, path, target / path.name if below else target, field, where)


def _tree(
    root: Path,
    path: Path,
    target: PurePosixPath,
    field: str,
    where: str,
    *,
    content_only: bool = False,
    above: tuple[Path, ...] = (),
) -> list[tuple[Path, str]]:
    resolved = path.resolve()
    if resolved in above:
        raise ConfigurationError(f"{field}: {path} links back to a folder it is in (a symlink loop)", where=where)
    if not resolved.is_relative_to(root):
        raise ConfigurationError(f"{field}: {path} leads outside the project ({resolved})", where=where)
    mode = resolved.stat().st_mode
    if stat.S_ISREG(mode):
        name = str(target).lstrip("/")
        if not name:
            raise ConfigurationError(f"{field}: a file cannot be written at / itself", where=where)
        return [(resolved, name)]
    if not stat.S_ISDIR(mode):
        raise ConfigurationError(f"{field}: {path} is neither a file nor a folder", where=where)
    if not content_only and not target.name:
        raise ConfigurationError(f"{field}: {path} needs a destination folder", where=where)
    found: list[tuple[Path, str]] = []
    for child in sorted(path.iterdir()):
        found.extend(_tree(root, child, target / child.name, field, where, above=(*above, resolved)))
    return found
