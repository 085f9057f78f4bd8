"""The Argo CD plugin's caches, importable without pydantic, httpx or the domain models.

Argo CD starts one ``forge cmp generate`` per application per refresh (argo-cd#11189), so a warm
run must cost little more than the interpreter. Two caches, both verified by their own sha256:

- :class:`RenderCache`: a rendered Release image by its manifest digest (the same digest is the
  same bytes);
- :class:`FolderIndex`: a deployment folder's inputs (:func:`folder_key`: its ``release.yaml`` and
  env file bytes, the settings from the environment, the options) to the manifest digest its pointer
  resolved to and the env documents it rendered. A Release image's tag is the 40-hex commit the
  platform refuses to move, so the same pointer bytes name the same image: a hit needs no network.

Only ``forge cmp generate`` writes either, after a run that succeeded with provenance checks off;
anything unusual (a link, an unreadable file, a config file this module cannot place) is no key,
and the full path runs and reports.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping

CACHE_FORMAT = 1
POINTER_FILE = "release.yaml"  # forge_core.domain.gitops.POINTER_FILE (checked by a test)
ENV_FILES = ("env.yaml", "env.yml")  # forge_core.domain.gitops.ENV_FILES_ACCEPTED (checked by a test)
CONFIG_FILE_VARIABLE = "FORGE_CONFIG_FILE"  # forge_core.settings: the TOML file, else ./forge.toml
DEFAULT_CONFIG_FILE = "forge.toml"
# Settings that cannot change what is printed: left out of the key, so no secret is hashed into a
# file name and credentials can rotate without a cold run.
_NOT_IN_KEY = frozenset({"FORGE_CMP__USERNAME", "FORGE_CMP__PASSWORD"})


def _warn(message: str, *args: object) -> None:
    # logging and the file writer are imported only when needed: a warm hit needs neither (and each
    # import is milliseconds Argo CD pays per application; so NamedTuple, not dataclasses).
    import logging

    logging.getLogger("forge.cmp").warning(message, *args)


class TrackedArtifact(NamedTuple):
    """An artifact of a release and the tracking image (reference and manifest digest) it has."""

    name: str
    reference: str
    digest: str


class Rendered(NamedTuple):
    """A Release image rendered: the resources' YAML and the artifacts whose provenance it rests on."""

    resources: str
    artifacts: tuple[TrackedArtifact, ...]


class FolderEntry(NamedTuple):
    """What a deployment folder rendered to: the Release image's manifest digest and the env documents."""

    manifest: str
    env: str


def _read_verified(file: Path) -> dict[str, Any] | None:
    """The JSON body of ``file`` when its first line is the sha256 of the rest; a corrupt file is
    removed (and logged) so the next write replaces it."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        _warn("cache entry %s cannot be read (%s); fetching the release again", file, error)
        return None
    header, _, body = raw.partition(b"\n")
    try:
        if header.decode("ascii") != "sha256:" + hashlib.sha256(body).hexdigest():
            raise ValueError("content does not match its digest")
        entry = json.loads(body)
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            raise ValueError("entry of another format")
        return entry
    except (ValueError, UnicodeDecodeError) as error:
        _warn("cache entry %s is corrupt (%s); removed, fetching the release again", file, error)
        file.unlink(missing_ok=True)
        return None


def _write_verified(file: Path, entry: dict[str, Any]) -> None:
    """Write ``entry`` behind its sha256 through a renamed temporary file, so parallel runs (Argo CD
    renders applications concurrently) each see a whole entry or none. A cache that cannot be
    written only costs speed, so it is logged."""
    from forge_core.adapters.files import write_atomically

    body = json.dumps({"format": CACHE_FORMAT, **entry}, sort_keys=True).encode()
    data = ("sha256:" + hashlib.sha256(body).hexdigest()).encode() + b"\n" + body
    try:
        write_atomically(file, data)
    except OSError as error:
        _warn("cannot write cache entry %s (%s); the next run fetches the release again", file, error)


class RenderCache:
    """Rendered releases on disk, ``<folder>/<algorithm>-<manifest hex>.json``: a first line with
    the sha256 of the rest, then the entry as JSON. An entry whose bytes do not hash to its first
    line is corrupt: it is removed and the release is fetched again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.folder / f"{algorithm}-{hexdigest}.json"

    def get(self, digest: str) -> Rendered | None:
        file = self._file(digest)
        entry = _read_verified(file)
        if entry is None:
            return None
        try:
            if entry.get("manifest") != digest:
                raise ValueError("entry of another release")
            return Rendered(entry["resources"], tuple(TrackedArtifact(**a) for a in entry["artifacts"]))
        except (ValueError, KeyError, TypeError) as error:
            _warn("cache entry %s is corrupt (%s); removed, fetching the release again", file, error)
            file.unlink(missing_ok=True)
            return None

    def put(self, digest: str, rendered: Rendered) -> None:
        """Store ``rendered``; a failed write is logged, not raised."""
        entry = {"manifest": digest, "resources": rendered.resources,
                 "artifacts": [a._asdict() for a in rendered.artifacts]}
        _write_verified(self._file(digest), entry)


class FolderIndex:
    """Deployment folders' entries, ``<cache>/folders/<key>.json``, verified like the render cache."""

    def __init__(self, cache: Path) -> None:
        self.folder = cache / "folders"

    def get(self, key: str) -> FolderEntry | None:
        file = self.folder / f"{key}.json"
        entry = _read_verified(file)
        if entry is None:
            return None
        manifest, env = entry.get("manifest"), entry.get("env")
        if entry.get("key") != key or not isinstance(manifest, str) or not isinstance(env, str):
            _warn("cache entry %s is corrupt (not this folder's entry); removed", file)
            file.unlink(missing_ok=True)
            return None
        return FolderEntry(manifest, env)

    def put(self, key: str, entry: FolderEntry) -> None:
        _write_verified(self.folder / f"{key}.json", {"key": key, "manifest": entry.manifest, "env": entry.env})


def _file_digest(file: Path) -> str | None:
    """The sha256 of a regular file's bytes, "absent" when there is none; None (no key) for a link
    or an unreadable file, which the full path refuses or reports."""
    try:
        if file.is_symlink():
            return None
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "absent"
    except OSError:
        return None


def folder_key(folder: Path, verify_provenance: bool | None, environ: Mapping[str, str]) -> str | None:
    """The key of a ``forge cmp generate`` run in ``folder``: everything its output depends on
    besides the immutable Release image — the resolved folder, the bytes of ``release.yaml`` and the
    env files, Argo CD's source path, the ``FORGE_*`` settings and the config file's bytes, the
    option. None when a file is a link or unreadable (no caching; the full path says why)."""
    config_name = environ.get(CONFIG_FILE_VARIABLE)
    config = Path(config_name) if config_name else Path(DEFAULT_CONFIG_FILE).absolute()
    files = {name: _file_digest(folder / name) for name in (POINTER_FILE, *ENV_FILES)}
    files["config"] = _file_digest(config)
    if None in files.values() or files[POINTER_FILE] == "absent":
        return None
    inputs = {
        "folder": str(folder.resolve()),
        "files": files,
        "config": str(config),
        "source_path": environ.get("ARGOCD_APP_SOURCE_PATH"),
        "settings": {k: v for k, v in environ.items() if k.startswith("FORGE_") and k not in _NOT_IN_KEY},
        "xdg_cache_home": environ.get("XDG_CACHE_HOME"),
        "verify_provenance": verify_provenance,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def cache_dir_from_environment(environ: Mapping[str, str]) -> Path | None:
    """Where :class:`~forge_core.settings.cmp.CmpSettings` puts the cache, when the environment
    alone says: ``FORGE_CMP__CACHE_DIR``; else, without a config file (which could place it),
    ``$XDG_CACHE_HOME/forge/cmp`` or ``$FORGE_STATE_DIR/cache/cmp``. None otherwise: the fast
    path is skipped. A wrong answer costs only a miss, as every entry is keyed by all settings."""
    if environ.get("FORGE_CMP__CACHE_DIR"):
        return Path(environ["FORGE_CMP__CACHE_DIR"])
    if environ.get(CONFIG_FILE_VARIABLE) or Path(DEFAULT_CONFIG_FILE).is_file():
        return None
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "forge" / "cmp"
    if environ.get("FORGE_STATE_DIR"):
        return Path(environ["FORGE_STATE_DIR"]) / "cache" / "cmp"
    return None


def warm_output(cache: Path, key: str) -> str | None:
    """What ``forge cmp generate`` printed for ``key``, from the verified entries; None on a miss."""
    entry = FolderIndex(cache).get(key)
    if entry is None:
        return None
    rendered = RenderCache(cache).get(entry.manifest)
    return None if rendered is None else rendered.resources + entry.env
