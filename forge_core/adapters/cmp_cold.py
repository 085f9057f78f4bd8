"""The Argo CD plugin's cold path without pydantic, httpx or typer: ``forge cmp generate`` on an
empty cache, answered by the ``forge`` launcher (:mod:`forge_core.cli.launcher`).

Argo CD starts one plugin process per application per refresh (argo-cd#11189); importing the
platform's models, settings and HTTP client cost several times the work itself. This module does
the same work as :func:`forge_core.adapters.cmp.generate` with the standard library (PyYAML only
for an env file or a pointer the platform did not write), and answers only when it is sure of the
answer the full path would give: it never reports an error. Anything it does not handle, or does
not like — a config file, a ``FORGE_*`` variable it does not know, provenance checks, an auth
scheme or status it does not expect, a digest that does not match, an archive or resource the
safe reader or the YAML rules refuse, a Release image whose resources layer is not canonical
(``resources_canonical`` in its metadata) — makes it return None,
and the full command runs: it renders or reports, as before. So the checks here are the full
path's, never fewer:

- the pointer: ``release.yaml`` a regular file, read by :func:`simple_mapping` (nested mappings of
  strings, as the platform writes it) or PyYAML; environment, repository and project from the
  labels or the path (Argo CD's source path, else the folder), never by splitting on hyphens; every
  check of :func:`forge_core.domain.gitops.parse_release_pointer` and the ReleasePointer model;
- the image: tag ``<commit>``, else ``sha-<commit>``, in the release registry (anonymous, basic or
  bearer-token auth; plain http only for loopback and ``oci.insecure_registries``; no proxy) or the embedded
  layout folder; the manifest's digest (the registry's ``Docker-Content-Digest`` must be the bytes'
  sha256), its artifact type, empty config and one layer of each media type; the metadata layer's
  digest, size and fields (commit, project, resources digest); the resources layer's digest and
  size, read by the safe archive reader within the configured limits;
- the resources: the digest's render-cache entry when there is one, else a canonical layer printed
  by :func:`~forge_core.domain.canonical_layer.print_canonical`, the function the full path prints one
  with (each file one resource whose identity its text shows, no ``*``, no duplicates, in
  kind/name order; anything else is parsed by the full path), then the folder's env file parsed
  and rendered as the full path renders it; never an empty output.

What it prints it caches (render cache by manifest digest, folder index by the run's key) exactly
as the full path does, so the next run is warm.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from forge_core.adapters.archive import read_layer_files
from forge_core.adapters.cmp_cache import (
    CONFIG_FILE_VARIABLE,
    DEFAULT_CONFIG_FILE,
    ENV_FILES,
    POINTER_FILE,
    FolderEntry,
    FolderIndex,
    RenderCache,
    Rendered,
    TrackedArtifact,
    cache_dir_from_environment,
)
from forge_core.domain.canonical_layer import in_print_order, plain_string, print_canonical
from forge_core.domain.registry_hosts import is_loopback

# The domain's names, written again so that nothing of pydantic is imported (a test checks each).
API_VERSION = "forge.projectcatalyst.io/v1alpha1"  # forge_core.domain.gitops
POINTER_KIND = "ReleasePointer"
GITOPS_ROOT = "environments"
ENVIRONMENT_LABEL = "forge.projectcatalyst.io/environment"
PROJECT_LABEL = "forge.projectcatalyst.io/project"
REPOSITORY_LABEL = "forge.projectcatalyst.io/repository"
RELEASE_NUMBER_ANNOTATION = "forge.projectcatalyst.io/release-number"
DEPLOYED_BY_ANNOTATION = "forge.projectcatalyst.io/deployed-by"
DEPLOYED_AT_ANNOTATION = "forge.projectcatalyst.io/deployed-at"
ARTIFACT_TYPE = "application/vnd.forge.release.v1"  # forge_core.domain.release_image
METADATA = "application/vnd.forge.release.metadata.v1+json"
RESOURCES = "application/vnd.forge.resources.v1.tar+gzip"
MANIFEST_TYPES = (  # forge_core.domain.oci
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
EMPTY = "application/vnd.oci.empty.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
MAX_MANIFEST_BYTES = 4 * 1024**2  # forge_core.adapters.oci.registry.MAX_MANIFEST_SIZE
MAX_METADATA_BYTES = 4 * 1024**2  # forge_core.adapters.oci.release_image.MAX_METADATA_BYTES
DEFAULT_LIMITS = (64 * 1024**2, 16 * 1024**2, 10_000)  # forge_core.domain.resources.ArchiveLimits
DNS_LABEL_MAX = 63

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_REGISTRY = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                       r"(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:]+\](?::[0-9]{1,5})?$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
_PROXIES = frozenset({"http_proxy", "https_proxy", "all_proxy"})

# The settings this path reads; any other FORGE_* variable (or a config file) sends the run to the
# full path, which reads them all.
_KNOWN = frozenset({
    "FORGE_STATE_DIR", "FORGE_RELEASE__REGISTRY", "FORGE_CMP__CACHE_DIR", "FORGE_CMP__VERIFY_PROVENANCE",
    "FORGE_CMP__USERNAME", "FORGE_CMP__PASSWORD", "FORGE_CMP__LIMITS__MAX_TOTAL_BYTES",
    "FORGE_CMP__LIMITS__MAX_FILE_BYTES", "FORGE_CMP__LIMITS__MAX_ENTRIES", "FORGE_OCI__INSECURE_REGISTRIES",
    "FORGE_OCI__ATTEMPTS", "FORGE_OCI__BACKOFF", "FORGE_OCI__MAX_BACKOFF", "FORGE_OCI__TIMEOUT",
    "FORGE_OCI__CHUNK_SIZE", "FORGE_OCI__LAYOUT_DIR",
})


class _Doubt(Exception):
    """This path does not answer; the full command will (and says why, when it is an error)."""


class Limits(NamedTuple):
    max_total_bytes: int
    max_file_bytes: int
    max_entries: int


class Config(NamedTuple):
    """What the run needs of the settings, read from the environment alone."""

    registry: str  # empty: the embedded layout folder
    layout_dir: Path
    cache_dir: Path
    insecure: tuple[str, ...]
    timeout: float
    limits: Limits
    credentials: tuple[str, str] | None
    cafile: str | None = None  # SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle: as httpx verifies
    capath: str | None = None


def cold_generate(folder: Path, verify_provenance: bool | None, key: str | None,
                  environ: Mapping[str, str]) -> str | None:
    """What ``forge cmp generate`` prints in ``folder``, fetched and checked here, the caches
    filled; None whenever the full command must run instead (see the module's text)."""
    try:
        return _generate(folder, verify_provenance, key, environ)
    except Exception:  # any doubt at all: the full path runs, and reports
        return None


def _generate(folder: Path, verify_provenance: bool | None, key: str | None, environ: Mapping[str, str]) -> str | None:
    if verify_provenance is True:
        return None
    config = read_config(environ)
    if config is None:
        return None
    repository, project, commit = read_pointer(folder, environ.get("ARGOCD_APP_SOURCE_PATH"))
    image = f"{repository.rsplit('/', 1)[-1]}/{project}"
    store: _Store = _Registry(config, image) if config.registry else _Layout(config.layout_dir / image)
    cache = RenderCache(config.cache_dir)
    try:
        digest, manifest = store.manifest(commit)
        cached = cache.get(digest)  # as the full path: the same digest is the same bytes
        if cached is not None:
            env = env_documents(folder, config.limits)
            if key is not None:
                FolderIndex(config.cache_dir).put(key, FolderEntry(digest, env))
            return cached.resources + env
        metadata_layer, resources_layer = release_layers(manifest)
        metadata = _json(store.blob(metadata_layer, MAX_METADATA_BYTES))
        artifacts = check_metadata(metadata, resources_layer["digest"], commit, project)
        if resources_layer["size"] > config.limits.max_total_bytes:
            raise _Doubt("resources layer over the limit")
        layer = store.blob(resources_layer, config.limits.max_total_bytes)
    finally:
        store.close()
    text = print_canonical(read_layer_files(io.BytesIO(layer), config.limits))
    if text is None:
        raise _Doubt("not a canonical layer")  # the full path parses it, and refuses or writes it again
    env = env_documents(folder, config.limits)
    cache.put(digest, Rendered(text, artifacts))
    if key is not None:
        FolderIndex(config.cache_dir).put(key, FolderEntry(digest, env))
    return text + env


# --- settings -------------------------------------------------------------------------------------


def read_config(environ: Mapping[str, str]) -> Config | None:
    """The settings of a run from ``FORGE_*`` variables, as :func:`forge_core.settings.load_settings`
    reads them; None when a config file could add to them, a variable is one this path does not
    read (or spelled in another case: the settings' names are case-blind), or a value is one the
    settings would refuse or this path would have to interpret."""
    if environ.get(CONFIG_FILE_VARIABLE) or Path(DEFAULT_CONFIG_FILE).is_file():
        return None
    names = {name for name in environ if name.upper().startswith("FORGE_")}
    if not names <= _KNOWN:
        return None
    if any(environ[name] == "" for name in names - {"FORGE_RELEASE__REGISTRY", "FORGE_CMP__PASSWORD"}):
        return None
    verify = environ.get("FORGE_CMP__VERIFY_PROVENANCE")
    if verify is not None and verify.strip().lower() not in _FALSE:
        return None
    cache_dir = cache_dir_from_environment(environ)
    registry = environ.get("FORGE_RELEASE__REGISTRY", "").strip().rstrip("/")
    if cache_dir is None or (registry and (not _REGISTRY.match(registry) or registry.startswith("["))):
        return None
    state = environ.get("FORGE_STATE_DIR")
    layout = Path(environ.get("FORGE_OCI__LAYOUT_DIR", "oci"))
    if not layout.is_absolute():
        if state is None:
            return None  # the default state folder is the settings' to place
        layout = Path(state) / layout
    username, password = environ.get("FORGE_CMP__USERNAME"), environ.get("FORGE_CMP__PASSWORD")
    if (username is None) != (password is None):
        return None
    insecure: Any = json.loads(environ.get("FORGE_OCI__INSECURE_REGISTRIES", "[]"))
    if not isinstance(insecure, list) or not all(isinstance(item, str) for item in insecure):
        return None
    timeout = float(environ.get("FORGE_OCI__TIMEOUT", "60"))
    attempts = int(environ.get("FORGE_OCI__ATTEMPTS", "5"))
    backoffs = [float(environ.get(name, "1")) for name in ("FORGE_OCI__BACKOFF", "FORGE_OCI__MAX_BACKOFF")]
    chunk = int(environ.get("FORGE_OCI__CHUNK_SIZE", str(64 * 1024**2)))
    limits = Limits(*(int(environ.get(f"FORGE_CMP__LIMITS__{name.upper()}", str(default)))
                      for name, default in zip(Limits._fields, DEFAULT_LIMITS, strict=True)))
    if not (timeout > 0 and 1 <= attempts <= 20 and min(backoffs) > 0 and chunk >= 1024**2 and min(limits) > 0):
        return None
    if registry and any(name.lower() in _PROXIES for name in environ):
        return None  # httpx goes through the proxy these name; this path does not
    credentials = (username, password) if username is not None and password is not None else None
    cafile, capath = environ.get("SSL_CERT_FILE") or None, environ.get("SSL_CERT_DIR") or None
    # A registry that does not answer within seconds is left to the full path and its retries.
    return Config(registry, layout, cache_dir, tuple(insecure), min(timeout, 10.0), limits, credentials,
                  cafile, None if cafile else capath)


# --- the pointer ----------------------------------------------------------------------------------


def _dns_label(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= DNS_LABEL_MAX and bool(_DNS_LABEL.match(value))


def _location(candidate: str) -> tuple[str, str] | None:
    """(environment, app folder) of ``…/environments/<env>/<app>``, as the domain's location_from_path."""
    parts = PurePosixPath(candidate).parts
    if len(parts) < 3 or parts[-3] != GITOPS_ROOT or not (_dns_label(parts[-2]) and _dns_label(parts[-1])):
        return None
    return parts[-2], parts[-1]


def read_pointer(folder: Path, source_path: str | None) -> tuple[str, str, str]:
    """(repository, project, commit) of the folder's ReleasePointer, checked as the domain checks it;
    _Doubt for anything the domain would refuse (or this path would have to interpret)."""
    file = folder / POINTER_FILE
    if file.is_symlink():
        raise _Doubt("linked pointer")
    text = file.read_text(encoding="utf-8")
    location = None
    for candidate in (source_path, folder.resolve().as_posix()):
        if candidate and (location := _location(candidate)) is not None:
            break
    document = simple_mapping(text)
    if document is None:  # not as the platform writes a pointer: the domain's reader, PyYAML's own
        import yaml

        documents = [document for document in yaml.safe_load_all(text) if document is not None]
        if len(documents) != 1 or not isinstance(documents[0], dict):
            raise _Doubt("not one mapping")
        document = documents[0]
    metadata, spec = document.get("metadata"), document.get("spec")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != POINTER_KIND:
        raise _Doubt("not a ReleasePointer")
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        raise _Doubt("no metadata or spec")
    project, namespace, release = metadata.get("name"), metadata.get("namespace"), spec.get("release")
    labels, annotations = metadata.get("labels", {}), metadata.get("annotations", {})
    labels = {} if labels is None else labels
    annotations = {} if annotations is None else annotations
    if not (isinstance(project, str) and isinstance(namespace, str) and isinstance(release, str)):
        raise _Doubt("a required field")
    if not (project and namespace and release):
        raise _Doubt("a required field")
    if not isinstance(labels, dict) or not isinstance(annotations, dict) or not _COMMIT.match(release):
        raise _Doubt("labels, annotations or spec.release")
    environment = _label(labels, ENVIRONMENT_LABEL, location[0] if location else None)
    _label(labels, PROJECT_LABEL, project)
    if REPOSITORY_LABEL in labels:
        value = labels[REPOSITORY_LABEL]
        owner, dot, name = value.partition(".") if isinstance(value, str) else ("", "", "")
        if not dot or not name or not _OWNER.match(owner):
            raise _Doubt("repository label")
        repository = f"{owner}/{name}"
    elif location is not None and location[1].endswith(f"-{project}"):
        repository = location[1].removesuffix(f"-{project}")
    else:
        raise _Doubt("no repository")
    name = repository.rsplit("/", 1)[-1]
    if namespace != f"{name}-{project}" or (location is not None and location[1] != namespace):
        raise _Doubt("namespace or folder")
    _check_annotations(annotations)
    # ReleasePointer's own rules: DNS labels, owner/name, the repository as a label value.
    if not (_dns_label(environment) and _dns_label(name) and _dns_label(project) and _dns_label(namespace)):
        raise _Doubt("not DNS labels")
    if "/" in repository:
        owner, name_part = repository.split("/", 1)
        if not _OWNER.match(owner) or "/" in name_part:
            raise _Doubt("repository")
    label = repository.replace("/", ".", 1)
    if not _LABEL_VALUE.match(label) or len(label) > DNS_LABEL_MAX:
        raise _Doubt("repository label value")
    return repository, project, release


_SIMPLE_LINE = re.compile(r"^((?:  )*)([A-Za-z0-9][A-Za-z0-9./_-]*):"
                          r"(?: ([A-Za-z0-9](?:[A-Za-z0-9._/@+ -]*[A-Za-z0-9._/@+-])?|'(?:[^'\n]|'')*'))?$")


def simple_mapping(text: str) -> dict[str, Any] | None:
    """``text`` read as YAML when it is a block of nested mappings whose keys and values are plain
    or single-quoted strings, two spaces a level — as the platform writes a ReleasePointer — without
    importing a YAML parser; None for anything else (then PyYAML reads it). Plain scalars YAML
    would read as something other than a string (``yes``, ``7``, a date) are anything else."""
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    expect_child = False
    for line in text.split("\n")[:-1] if text.endswith("\n") else [None]:
        match = _SIMPLE_LINE.match(line) if line is not None else None
        if match is None:
            return None
        depth, key, value = len(match.group(1)) // 2, match.group(2), match.group(3)
        if depth > len(stack) - 1 or (expect_child and depth != len(stack) - 1):
            return None
        del stack[depth + 1:]
        if plain_string(key) is None or key in stack[-1]:
            return None
        expect_child = value is None
        if value is None:
            child: dict[str, Any] = {}
            stack[-1][key] = child
            stack.append(child)
        elif value.startswith("'"):
            stack[-1][key] = value[1:-1].replace("''", "'")
        elif plain_string(value) is not None:
            stack[-1][key] = value
        else:
            return None
    return None if expect_child or not root else root


def _label(labels: Mapping[str, object], key: str, other: str | None) -> str:
    value = labels.get(key)
    if value is not None and (not isinstance(value, str) or (other is not None and value != other)):
        raise _Doubt(f"label {key}")
    if value is None and other is None:
        raise _Doubt(f"label {key} missing")
    return value if isinstance(value, str) else str(other)


def _check_annotations(annotations: Mapping[str, object]) -> None:
    number = annotations.get(RELEASE_NUMBER_ANNOTATION)
    if number is not None and (isinstance(number, bool) or not str(number).isdigit() or int(str(number)) < 1):
        raise _Doubt("release number")
    by = annotations.get(DEPLOYED_BY_ANNOTATION)
    if by is not None and (not isinstance(by, str) or "\n" in by or not by.strip()):
        raise _Doubt("deployed-by")
    at = annotations.get(DEPLOYED_AT_ANNOTATION)
    if at is None:
        return
    from datetime import datetime

    if isinstance(at, str) and _RFC3339.match(at):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise _Doubt("deployed-at")


# --- the Release image ----------------------------------------------------------------------------


def _json(raw: bytes) -> dict[str, Any]:
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise _Doubt("not a JSON object")
    return document


def _string_map(value: object) -> bool:
    return value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values()))


def _descriptor(value: object) -> dict[str, Any]:
    """``value`` if the domain's Descriptor model takes it (and it names no platform); _Doubt otherwise."""
    if not isinstance(value, dict) or not isinstance(value.get("mediaType"), str):
        raise _Doubt("descriptor")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not _DIGEST.match(digest) or not isinstance(size, int) or not _is_int(size):
        raise _Doubt("descriptor")
    if size < 0:
        raise _Doubt("descriptor size")
    urls = value.get("urls")
    if (not _string_map(value.get("annotations")) or value.get("platform") is not None
            or not isinstance(value.get("artifactType", ""), str | None)
            or not isinstance(value.get("data", ""), str | None)
            or not (urls is None or (isinstance(urls, list) and all(isinstance(url, str) for url in urls)))):
        raise _Doubt("descriptor fields")
    return value


def release_layers(manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata and resources layers of a Release image manifest (check_release_manifest's rules)."""
    if manifest.get("mediaType") != MANIFEST_TYPES[0] or manifest.get("artifactType") != ARTIFACT_TYPE:
        raise _Doubt("not a Release image manifest")
    if not _is_int(manifest.get("schemaVersion", 2)) or not _string_map(manifest.get("annotations")):
        raise _Doubt("manifest fields")
    if manifest.get("subject") is not None:
        _descriptor(manifest["subject"])
    if _descriptor(manifest.get("config"))["mediaType"] != EMPTY:
        raise _Doubt("config")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise _Doubt("layers")
    found = []
    for media_type in (METADATA, RESOURCES):
        matching = [layer for layer in map(_descriptor, layers) if layer["mediaType"] == media_type]
        if len(matching) != 1:
            raise _Doubt(f"layers of {media_type}")
        found.append(matching[0])
    return found[0], found[1]


_METADATA_REQUIRED = frozenset({"repository", "project", "commit", "release_number", "trigger", "created",
                                "resources_digest", "resources_canonical"})
_METADATA_FIELDS = _METADATA_REQUIRED | {"version", "aliases", "artifacts"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: object, keys: frozenset[str], optional: frozenset[str] = frozenset()) -> bool:
    """A mapping of exactly ``keys`` (and maybe ``optional`` ones, which may be null) to strings."""
    if not isinstance(value, dict) or not keys <= set(value) <= keys | optional:
        return False
    return all(isinstance(value[k], str) for k in keys) and all(
        value.get(k) is None or isinstance(value[k], str) for k in optional)


def check_metadata(metadata: dict[str, Any], resources_digest: str, commit: str,
                   project: str) -> tuple[TrackedArtifact, ...]:
    """The artifacts of metadata the ReleaseMetadata model and read_release_image accept, for a
    canonical layer of this commit and project; _Doubt otherwise."""
    if not _METADATA_REQUIRED <= set(metadata) <= _METADATA_FIELDS or metadata["resources_canonical"] is not True:
        raise _Doubt("metadata fields, or not canonical")
    if not _is_int(metadata.get("version", 1)) or not all(isinstance(metadata[k], str) for k in ("repository",
                                                                                                "project", "created")):
        raise _Doubt("metadata field types")
    if (metadata["commit"] != commit or metadata["project"] != project
            or metadata["resources_digest"] != resources_digest):
        raise _Doubt("metadata names another release or layer")
    if not _is_int(metadata["release_number"]) or metadata["release_number"] < 1:
        raise _Doubt("release number")
    aliases = metadata.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
        raise _Doubt("aliases")
    if not _strings(metadata["trigger"], frozenset({"type"}), frozenset({"branch", "tag"})):
        raise _Doubt("trigger")
    if not _RFC3339.match(metadata["created"]):
        raise _Doubt("created")
    artifacts = metadata.get("artifacts", [])
    if not isinstance(artifacts, list):
        raise _Doubt("artifacts")
    found = []
    for artifact in artifacts:
        if not (isinstance(artifact, dict) and set(artifact) == {"name", "type", "tracking", "primary"}
                and isinstance(artifact["name"], str) and isinstance(artifact["type"], str)
                and _strings(artifact["tracking"], frozenset({"reference", "digest"}))
                and _strings(artifact["primary"], frozenset({"uri", "digest"}))):
            raise _Doubt("artifact")
        found.append(TrackedArtifact(artifact["name"], artifact["tracking"]["reference"],
                                     artifact["tracking"]["digest"]))
    return tuple(found)


def env_documents(folder: Path, limits: Limits) -> str:
    """The folder's env.yaml (or env.yml), rendered as :func:`forge_core.adapters.cmp.env_documents` does."""
    present = [name for name in ENV_FILES if (folder / name).is_file()]
    if not present:
        return ""
    file = folder / present[0]
    if len(present) > 1 or file.is_symlink() or file.stat().st_size > limits.max_file_bytes:
        raise _Doubt("env file")
    from forge_core.domain.resource_yaml import dump_manifests, load_documents, resource_identity

    documents = load_documents(str(file), file.read_bytes())
    keys = []
    for index, body in documents:
        kind, name, namespace = resource_identity(body, str(file), index)
        keys.append((kind, name, namespace or "", str(file), index))
    return dump_manifests((documents[position][1] for position in in_print_order(keys)), sort_keys=True) if keys else ""


# --- stores -------------------------------------------------------------------------------------


class _Store:
    def manifest(self, commit: str) -> tuple[str, dict[str, Any]]:
        """The digest and document of the manifest tagged ``<commit>``, else ``sha-<commit>``."""
        raise NotImplementedError

    def blob(self, descriptor: Mapping[str, Any], limit: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release by default."""


def _verified(data: bytes, descriptor: Mapping[str, Any]) -> bytes:
    if len(data) != descriptor["size"] or "sha256:" + hashlib.sha256(data).hexdigest() != descriptor["digest"]:
        raise _Doubt("blob does not match its descriptor")
    return data


class _Layout(_Store):
    """One repository's OCI image layout folder, read as :class:`~forge_core.adapters.oci.layout.LayoutStore` does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def manifest(self, commit: str) -> tuple[str, dict[str, Any]]:
        entries = _json((self.folder / "index.json").read_bytes()).get("manifests")
        if not isinstance(entries, list):
            raise _Doubt("index.json")
        entries = [_descriptor(entry) for entry in entries]  # the full path reads them all as descriptors
        for tag in (commit, f"sha-{commit}"):
            for entry in entries:
                if (entry.get("annotations") or {}).get(REF_NAME) == tag:
                    if entry["mediaType"] != MANIFEST_TYPES[0]:
                        raise _Doubt("not a manifest")
                    digest = entry["digest"]
                    raw = self._read(digest)
                    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
                        raise _Doubt("manifest digest")
                    return digest, _json(raw)
        raise _Doubt("no such tag")

    def blob(self, descriptor: Mapping[str, Any], limit: int) -> bytes:
        if descriptor["size"] > limit:
            raise _Doubt("blob over the limit")
        return _verified(self._read(descriptor["digest"]), descriptor)

    def _read(self, digest: str) -> bytes:
        file = self.folder / "blobs" / "sha256" / digest.removeprefix("sha256:")
        if file.is_symlink():
            raise _Doubt("linked blob")
        return file.read_bytes()



class _Registry(_Store):
    """The release registry over http.client: anonymous, basic or bearer-token auth, redirects
    followed (credentials only to the registry), everything read bounded and verified."""

    def __init__(self, config: Config, repository: str) -> None:
        self.registry, self.repository, self.config = config.registry, repository, config
        insecure = is_loopback(config.registry) or config.registry in config.insecure
        self.scheme = "http" if insecure else "https"
        self.authorization: str | None = None
        self.connections: dict[tuple[str, str], Any] = {}

    def manifest(self, commit: str) -> tuple[str, dict[str, Any]]:
        for tag in (commit, f"sha-{commit}"):
            status, headers, raw = self._get(f"/v2/{self.repository}/manifests/{tag}", MAX_MANIFEST_BYTES,
                                             accept=", ".join(MANIFEST_TYPES))
            if status == 404:
                continue
            if status != 200:
                raise _Doubt(f"HTTP {status}")
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            if headers.get("docker-content-digest", digest) != digest:
                raise _Doubt("manifest digest")
            return digest, _json(raw)
        raise _Doubt("no such tag")

    def blob(self, descriptor: Mapping[str, Any], limit: int) -> bytes:
        if descriptor["size"] > limit:
            raise _Doubt("blob over the limit")
        status, _, data = self._get(f"/v2/{self.repository}/blobs/{descriptor['digest']}", descriptor["size"])
        if status != 200:
            raise _Doubt(f"HTTP {status}")
        return _verified(data, descriptor)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()

    def _get(self, path: str, limit: int, *, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": accept} if accept else {}
        url = f"{self.scheme}://{self.registry}{path}"
        status, answer, body = self._send(url, headers, limit, to_registry=True)
        if status == 401:
            self._answer(answer.get("www-authenticate", ""))
            status, answer, body = self._send(url, headers, limit, to_registry=True)
        return status, answer, body

    def _send(self, url: str, headers: dict[str, str], limit: int, *,
              to_registry: bool) -> tuple[int, dict[str, str], bytes]:
        from urllib.parse import urljoin, urlsplit

        origin = urlsplit(url).netloc
        for _redirect in range(6):
            parts = urlsplit(url)
            same = to_registry and parts.scheme == self.scheme and parts.netloc == self.registry
            # Credentials never follow a redirect to another host (as httpx does).
            sent = {k: v for k, v in headers.items() if k != "Authorization" or parts.netloc == origin}
            if same and self.authorization:
                sent["Authorization"] = self.authorization
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            status, answer, body = self._connection(parts.scheme, parts.netloc).get(target, sent, limit)
            if status in (301, 302, 303, 307, 308) and "location" in answer:
                url = urljoin(url, answer["location"])
                continue
            return status, answer, body
        raise _Doubt("too many redirects")

    def _connection(self, scheme: str, netloc: str) -> _Connection:
        if scheme not in ("http", "https"):
            raise _Doubt("scheme")
        key = (scheme, netloc)
        if key not in self.connections:
            self.connections[key] = _Connection(scheme, netloc, self.config)
        connection: _Connection = self.connections[key]
        return connection

    def _answer(self, challenge: str) -> None:
        if self.authorization is not None:
            raise _Doubt("credentials refused")
        scheme, _, text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(text))
        basic = None
        if self.config.credentials is not None:
            import base64

            basic = "Basic " + base64.b64encode(":".join(self.config.credentials).encode()).decode()
        if scheme.lower() == "basic" and basic is not None:
            self.authorization = basic
            return
        if scheme.lower() != "bearer" or not params.get("realm"):
            raise _Doubt("authentication this path does not answer")
        from urllib.parse import urlencode

        scopes = sorted({f"repository:{self.repository}:pull", *params.get("scope", "").split()})
        query = ([("service", params["service"])] if params.get("service") else []) + [("scope", s) for s in scopes]
        realm = params["realm"]
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
        status, _, body = self._send(url, {"Authorization": basic} if basic else {}, MAX_METADATA_BYTES,
                                     to_registry=False)
        token = _json(body).get("token") or _json(body).get("access_token") if status == 200 else None
        if not isinstance(token, str):
            raise _Doubt("no token")
        self.authorization = f"Bearer {token}"


class _Connection:
    """One kept-alive HTTP/1.1 connection for GET requests, on a socket (TLS only for https).

    http.client would import the email package and ssl on every cold run; a registry read needs
    status, headers and a body framed by Content-Length, chunks or the end of the connection."""

    MAX_HEADER_LINES = 100
    MAX_LINE = 64 * 1024

    def __init__(self, scheme: str, netloc: str, config: Config) -> None:
        host, colon, port = netloc.rpartition(":")
        if not colon or not port.isdigit():
            host, port = netloc, ("443" if scheme == "https" else "80")
        if not host or host.startswith("["):
            raise _Doubt("host")
        self.scheme, self.netloc, self.host, self.port, self.config = scheme, netloc, host, int(port), config
        self.stream: Any = None
        self.socket: Any = None

    def _open(self) -> None:
        import socket

        raw = socket.create_connection((self.host, self.port), timeout=self.config.timeout)
        if self.scheme == "https":
            import ssl

            cafile, capath = self.config.cafile, self.config.capath
            if cafile is None and capath is None:
                import certifi

                cafile = certifi.where()
            context = ssl.create_default_context(cafile=cafile, capath=capath)
            raw = context.wrap_socket(raw, server_hostname=self.host)
        self.socket, self.stream = raw, raw.makefile("rb")

    def get(self, target: str, headers: Mapping[str, str], limit: int) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of ``GET target``; a body over ``limit`` is a doubt."""
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.netloc}", "User-Agent: catalyst-forge-cmp",
                 "Accept-Encoding: identity", *(f"{k}: {v}" for k, v in headers.items())]
        if any("\r" in line or "\n" in line for line in lines):
            raise _Doubt("header")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        reused = self.socket is not None
        if not reused:
            self._open()
        try:
            self.socket.sendall(request)
            status_line = self.stream.readline(self.MAX_LINE)
            if not status_line and reused:
                raise ConnectionResetError("closed while idle")
        except OSError:
            if not reused:
                raise
            self.close()  # the registry closed the kept-alive connection: once more, on a new one
            self._open()
            self.socket.sendall(request)
            status_line = self.stream.readline(self.MAX_LINE)
        version, _, rest = status_line.decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise _Doubt("not an HTTP answer")
        status = int(rest[:3])
        answer = self._headers()
        body = self._body(status, answer, limit)
        if answer.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            self.close()
        return status, answer, body

    def _headers(self) -> dict[str, str]:
        answer: dict[str, str] = {}
        for _line in range(self.MAX_HEADER_LINES):
            line = self.stream.readline(self.MAX_LINE).decode("latin-1").rstrip("\r\n")
            if not line:
                return answer
            name, colon, value = line.partition(":")
            if not colon or name != name.strip():
                raise _Doubt("header line")
            name, value = name.lower(), value.strip()
            answer[name] = f"{answer[name]}, {value}" if name in answer else value
        raise _Doubt("too many headers")

    def _body(self, status: int, answer: Mapping[str, str], limit: int) -> bytes:
        if status in (204, 304) or 100 <= status < 200:
            return b""
        if answer.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.stream.readline(self.MAX_LINE).split(b";")[0].strip(), 16)
                if length == 0:
                    while self.stream.readline(self.MAX_LINE).strip():  # trailers
                        pass
                    return b"".join(chunks)
                size += length
                if size > limit:
                    raise _Doubt("answer over the limit")
                chunks.append(self._exactly(length))
                self.stream.readline(self.MAX_LINE)  # the chunk's CRLF
        if "transfer-encoding" in answer:
            raise _Doubt("transfer encoding")
        if "content-length" in answer:
            length = int(answer["content-length"])
            if length > limit or length < 0:
                raise _Doubt("answer over the limit")
            return self._exactly(length)
        body = self.stream.read(limit + 1)  # framed by the end of the connection
        self.close()
        if len(body) > limit:
            raise _Doubt("answer over the limit")
        return bytes(body)

    def _exactly(self, length: int) -> bytes:
        data = self.stream.read(length)
        if len(data) != length:
            raise _Doubt("connection closed mid-answer")
        return bytes(data)

    def close(self) -> None:
        if self.socket is not None:
            self.stream.close()
            self.socket.close()
        self.socket = self.stream = None
