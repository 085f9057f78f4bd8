"""Schemas a rendered manifest must satisfy, and the violations found, all at once.

Built-in Kubernetes kinds are checked against the strict schemas kubernetes-validate bundles for
one Kubernetes version (strict: a field the schema does not know is refused). The platform's own
kinds (``forge.projectcatalyst.io/*``: Deployment, Network) are checked against the JSON Schemas
in ``forge_core/schemas/kinds/``; more kinds can be added as schemas (``extra``). A kind that
neither knows is refused: Argo CD would otherwise apply what nobody checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

if TYPE_CHECKING:  # imported where used: reading the settings (the CMP, every CLI run) needs neither
    import jsonschema
    import jsonschema.exceptions
    import jsonschema.protocols

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.models import Model

PLATFORM_GROUP = "forge.projectcatalyst.io"
_Schema = dict[str, Any]


class UnsupportedKubernetesVersion(ConfigurationError):
    code = "unsupported_kubernetes_version"


class Violation(Model):
    """One way a manifest breaks its schema: the field's path (``spec.replicas``) and why."""

    path: str
    message: str


@cache
def supported_kubernetes_versions() -> tuple[str, ...]:
    """The Kubernetes versions (``major.minor``) whose schemas are bundled, oldest first."""
    versions = {_major_minor(v) for v in _bundled_versions()}
    return tuple(sorted(versions, key=Version))


def _bundled_versions() -> list[str]:
    """kubernetes-validate's ``all_versions()``, read from its schema folder without importing it
    (its import loads jsonschema, which only validation needs)."""
    spec = find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("kubernetes-validate is not installed", where="render.kubernetes_version")
    schemas = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    found = [m[1] for entry in schemas.iterdir() if (m := re.match(r"^v([^-]*)", entry.name))]
    return sorted(found, key=Version)


def default_kubernetes_version() -> str:
    return supported_kubernetes_versions()[-1]


def kubernetes_version(value: str) -> str:
    """``value`` (``1.33``, ``1.33.2``, ``v1.33``) as a supported ``major.minor``, or an error listing them."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", value.strip())
    supported = supported_kubernetes_versions()
    if match is None or f"{match[1]}.{match[2]}" not in supported:
        raise UnsupportedKubernetesVersion(
            f"Kubernetes version {value!r} is not supported; supported: {', '.join(supported)}",
            where="render.kubernetes_version",
            details={"supported": list(supported)},
        )
    return f"{match[1]}.{match[2]}"


def platform_schemas() -> tuple[_Schema, ...]:
    """The JSON Schemas of the platform's own kinds, shipped with the core."""
    folder = resources.files("forge_core") / "schemas" / "kinds"
    return tuple(
        json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    )


class ManifestSchemas:
    """Validators by (apiVersion, kind) for one Kubernetes version.

    ``extra`` are JSON Schemas of more kinds; each names its apiVersion and kind with ``const``
    under ``properties`` (as the platform's do). A second schema for one kind replaces the first.
    """

    def __init__(self, version: str | None = None, extra: Iterable[_Schema] = ()):
        self.version = kubernetes_version(version) if version is not None else default_kubernetes_version()
        self._own: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        for schema in (*platform_schemas(), *extra):
            self._own[_kind_of(schema)] = _validator(schema)

    @property
    def own_kinds(self) -> tuple[str, ...]:
        return tuple(sorted(f"{api}/{kind}" for api, kind in self._own))

    def violations(self, manifest: Mapping[str, Any]) -> list[Violation]:
        """Everything wrong with ``manifest``; an unknown kind is one violation at ``kind``."""
        api_version, kind = str(manifest["apiVersion"]), str(manifest["kind"])
        validator = self._own.get((api_version, kind)) or _builtin_validator(self.version, api_version, kind)
        if validator is None:
            return [Violation(path="kind", message=self._unknown(api_version, kind))]
        found = [v for error in validator.iter_errors(dict(manifest)) for v in _explain(error)]
        return sorted(found, key=lambda v: (v.path, v.message))

    def _unknown(self, api_version: str, kind: str) -> str:
        if api_version.split("/")[0] == PLATFORM_GROUP:
            return (f"{api_version} {kind} is not one of the platform's kinds "
                    f"({', '.join(self.own_kinds)})")
        return (f"{api_version} {kind} is neither a built-in kind of Kubernetes {self.version} nor a kind "
                f"with a schema here ({', '.join(self.own_kinds)})")


def _major_minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def _kind_of(schema: _Schema) -> tuple[str, str]:
    properties = schema.get("properties", {})
    try:
        return str(properties["apiVersion"]["const"]), str(properties["kind"]["const"])
    except (KeyError, TypeError):
        raise ConfigurationError(
            "a kind's schema names its apiVersion and kind with properties.apiVersion.const and properties.kind.const",
            where=str(schema.get("$id", schema.get("title", "schema"))),
        ) from None


def _validator(schema: _Schema) -> jsonschema.protocols.Validator:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


@cache
def _builtin_validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """The strict validator kubernetes-validate's files give for ``kind``, or None if not bundled."""
    import jsonschema
    import kubernetes_validate.utils as kubernetes_schemas
    from referencing import Registry, Resource

    folder = _schema_folder(version)
    # kubernetes-validate's file naming: group's first label and version (rbac.authorization.k8s.io/v1 → rbac-v1)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kubernetes_schemas.schema_contents(f"kubernetes-json-schema/{folder}/{kind.lower()}-{api}.json",
                                                    version)
    except FileNotFoundError:
        return None
    registry: Registry[Any] = Resource.from_contents(_definitions(folder)) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _definitions(folder: str) -> Any:
    import kubernetes_validate.utils as kubernetes_schemas

    return kubernetes_schemas.schema_contents(f"kubernetes-json-schema/{folder}/_definitions.json", folder)


def _schema_folder(version: str) -> str:
    newest = [v for v in _bundled_versions() if _major_minor(v) == version][-1]
    return f"v{newest}-local-strict"


def _explain(error: jsonschema.exceptions.ValidationError) -> Iterator[Violation]:
    path = _path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # One violation per unknown field, at the field itself: the message names what to remove.
        schema = error.schema if isinstance(error.schema, dict) else {}
        known = set(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for field in sorted(error.instance):
            if field not in known and not any(p.search(field) for p in patterns):
                yield Violation(path=_join(path, str(field)), message="unknown field (not in the schema)")
        return
    if error.context:  # oneOf/anyOf: the closest alternative's reason says more than "is not valid under any"
        import jsonschema.exceptions

        best = jsonschema.exceptions.best_match(error.context)
        if best is not None:
            yield Violation(path=_path(best.absolute_path), message=best.message)
            return
    yield Violation(path=path, message=error.message)


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, part)
    return text


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field
