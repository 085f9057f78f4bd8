"""Rendering a project's deploy resources into validated Kubernetes YAML.

Deploy resources may hold artifact references, strings of the form ``@artifact(NAME)`` or
``@artifact(NAME).FIELD`` (what discovery leaves where a project writes ``#artifact["NAME"].FIELD``).
Each is replaced from the request's ``artifact_references``:

- ``image``: the primary published location pinned by digest (``reg/ns/api:1.2.0@sha256:…``);
  a primary location without a digest is an error (an unpinned image could change under a release);
- ``tracking``: the tracking image, pinned by digest when the digest is known;
- ``uri`` (no field) and ``digest``: the primary location as published and its digest;
- any other field: a string of the primary location's metadata.

A name without a structured reference falls back to the flat ``artifacts`` strings (``NAME.FIELD``
or ``NAME``). Then every manifest is validated (see ``forge_core.domain.manifest_schemas``). All
problems are collected and raised together in one RenderError naming project, resource and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from forge_core.domain.errors import ForgeError
from forge_core.domain.manifest_schemas import ManifestSchemas
from forge_core.domain.manifest_schemas import kubernetes_version as supported_version
from forge_core.domain.models import ArtifactReference, Model, RenderedResources, RenderRequest
from forge_core.domain.resource_yaml import dump_manifests

ARTIFACT_REFERENCE = re.compile(r"^@artifact\((?P<name>[A-Za-z0-9_.-]+)\)(?:\.(?P<field>[A-Za-z0-9_]+))?$")
ROOT = "deploy.resources"


class RenderProblem(Model):
    """One thing wrong with a deploy resource: which (index, ``Kind/name``), where in it, and why."""

    index: int | None
    resource: str
    path: str
    message: str

    def __str__(self) -> str:
        where = ROOT if self.index is None else f"{ROOT}[{self.index}]"
        return f"{where} ({self.resource}) {self.path or '(top)'}: {self.message}"


class RenderError(ForgeError):
    """Deploy resources that cannot be rendered; ``problems`` lists every one found (may be empty
    for an error raised outside ``render``)."""

    code = "render_failed"

    def __init__(self, message: str, *, where: str | None = None, details: dict[str, object] | None = None,
                 problems: Iterable[RenderProblem] = ()):
        self.problems = tuple(problems)
        super().__init__(message, where=where, details=details)


class Artifacts:
    """What ``@artifact(NAME).FIELD`` resolves to, from structured references and flat strings."""

    def __init__(self, references: Mapping[str, ArtifactReference], flat: Mapping[str, str]):
        self.references, self.flat = references, flat

    def known(self) -> list[str]:
        return sorted(set(self.references) | {key.split(".")[0] for key in self.flat})

    def value(self, name: str, field: str | None) -> str:
        """The reference's value; raises LookupError with the reason."""
        reference = self.references.get(name)
        if reference is not None:
            return _field(name, reference, field)
        for key in (f"{name}.{field}", name) if field else (name,):
            if key in self.flat:
                return self.flat[key]
        raise LookupError(f"reference to unknown artifact {name!r}; known: {', '.join(self.known()) or 'none'}")


def _field(name: str, reference: ArtifactReference, field: str | None) -> str:
    if field == "tracking":
        if reference.tracking is None:
            raise LookupError(f"artifact {name!r} has no tracking image")
        return _pinned(reference.tracking, reference.tracking_digest)
    if not reference.published:
        raise LookupError(f"artifact {name!r} has no published location (.{field or 'uri'})")
    primary = reference.published[0]
    if field == "image":
        if "@" not in primary.uri and primary.digest is None:
            raise LookupError(
                f"artifact {name!r}: its primary published location {primary.uri} ({primary.publisher}) has no "
                "digest, so .image cannot be pinned"
            )
        return _pinned(primary.uri, primary.digest)
    if field in (None, "uri"):
        return primary.uri
    if field == "digest":
        if primary.digest is None:
            raise LookupError(f"artifact {name!r}: its primary published location {primary.uri} has no digest")
        return primary.digest
    value = primary.metadata.get(field)
    if not isinstance(value, str):
        fields = ["digest", "image", "tracking", "uri", *sorted(k for k, v in primary.metadata.items()
                                                                if isinstance(v, str))]
        raise LookupError(f"artifact {name!r} has no field {field!r}; it has: {', '.join(fields)}")
    return value


def _pinned(reference: str, digest: str | None) -> str:
    return reference if digest is None or "@" in reference else f"{reference}@{digest}"


def _resolve(value: Any, artifacts: Artifacts, path: str, problems: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, artifacts, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, artifacts, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):
        match = ARTIFACT_REFERENCE.match(value)
        if match:
            try:
                return artifacts.value(match.group("name"), match.group("field"))
            except LookupError as error:
                problems.append((path, str(error.args[0])))
    return value


def resolve_artifacts(value: Any, artifacts: dict[str, str], path: str = "") -> Any:
    """``value`` with every artifact reference replaced from flat strings; raises RenderError
    naming the path of the first unknown one."""
    problems: list[tuple[str, str]] = []
    resolved = _resolve(value, Artifacts({}, artifacts), path, problems)
    if problems:
        raise RenderError(problems[0][1], where=problems[0][0])
    return resolved


def _identity(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{item.get('kind', '?')}/{name if isinstance(name, str) else '?'}"


class KubernetesRenderer:
    """Validated manifests in a stable order (kind, then name), as multi-document YAML.

    ``kubernetes_version`` picks the built-in kinds' schemas (``major.minor``; default the newest
    bundled); ``schemas`` are JSON Schemas of kinds beyond the built-in and the platform's.
    """

    def __init__(self, kubernetes_version: str | None = None, *, schemas: Iterable[dict[str, Any]] = ()):
        self._extra = tuple(schemas)
        self.schemas = ManifestSchemas(kubernetes_version, self._extra)
        self._by_version = {self.schemas.version: self.schemas}

    def schemas_for(self, version: str | None) -> ManifestSchemas:
        """The schemas of ``version`` (None: the renderer's own); an unsupported one is an error."""
        if version is None:
            return self.schemas
        wanted = supported_version(version)
        if wanted not in self._by_version:
            self._by_version[wanted] = ManifestSchemas(wanted, self._extra)
        return self._by_version[wanted]

    def render(self, request: RenderRequest) -> RenderedResources:
        schemas = self.schemas_for(request.kubernetes_version)
        resources = request.resources.get("resources", request.resources)
        items = list(resources.values()) if isinstance(resources, dict) else list(resources)
        artifacts = Artifacts(request.artifact_references, request.artifacts)
        problems: list[RenderProblem] = []
        manifests: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in ("apiVersion", "kind")):
                problems.append(RenderProblem(index=index, resource="?", path="",
                                              message="a resource needs apiVersion and kind (strings)"))
                continue
            found: list[tuple[str, str]] = []
            manifest = _resolve(item, artifacts, "", found)
            if not isinstance(manifest.get("metadata"), dict) or not isinstance(manifest["metadata"].get("name"), str):
                found.append(("metadata.name", "a resource needs a name (a string)"))
            found += [(v.path, v.message) for v in schemas.violations(manifest)]
            problems += [RenderProblem(index=index, resource=_identity(item), path=p, message=m) for p, m in found]
            manifests.append(manifest)
        if not problems:
            problems = _duplicates(manifests)
        if problems:
            raise RenderError(
                f"{len(problems)} problem(s) in its deploy resources:\n  " + "\n  ".join(str(p) for p in problems),
                where=f"project {request.project}",
                details={"project": request.project, "problems": [p.model_dump() for p in problems]},
                problems=problems,
            )
        # as the CMP orders a release's resources (forge_core.domain.resources): kind, name, namespace
        ordered = sorted(manifests, key=lambda m: (m["kind"], m["metadata"]["name"],
                                                   str(m["metadata"].get("namespace") or "")))
        return RenderedResources(manifests=tuple(ordered), text=dump_manifests(ordered))


def _duplicates(manifests: list[dict[str, Any]]) -> list[RenderProblem]:
    seen: dict[tuple[str, str, str], int] = {}
    problems = []
    for index, manifest in enumerate(manifests):
        metadata = manifest["metadata"]
        key = (manifest["kind"], str(metadata.get("namespace", "")), str(metadata["name"]))
        if key in seen:
            problems.append(RenderProblem(index=index, resource=_identity(manifest), path="metadata.name",
                                          message=f"defined twice (also deploy.resources[{seen[key]}])"))
        seen.setdefault(key, index)
    return problems


