"""Rendering a project's deploy resources into Kubernetes manifests.

Deploy resources may hold artifact references, strings of the form ``@artifact(NAME)`` or
``@artifact(NAME).FIELD`` (what discovery leaves where the guide writes ``@artifact("NAME").FIELD``).
At release time each is replaced by the value the release knows for ``NAME.FIELD`` (or ``NAME``):
the artifact's tracking image URI or published location. An unknown artifact is an error.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from forge_core.domain.errors import ForgeError
from forge_core.domain.models import RenderedResources, RenderRequest

ARTIFACT_REFERENCE = re.compile(r"^@artifact\((?P<name>[A-Za-z0-9_.-]+)\)(?:\.(?P<field>[A-Za-z0-9_]+))?$")


class RenderError(ForgeError):
    code = "render_failed"


def resolve_artifacts(value: Any, artifacts: dict[str, str], path: str = "") -> Any:
    """``value`` with every artifact reference replaced; raises RenderError naming the path."""
    if isinstance(value, dict):
        return {k: resolve_artifacts(v, artifacts, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_artifacts(v, artifacts, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        match = ARTIFACT_REFERENCE.match(value)
        if match:
            name, field = match.group("name"), match.group("field")
            for key in ((f"{name}.{field}", name) if field else (name,)):
                if key in artifacts:
                    return artifacts[key]
            known = ", ".join(sorted(artifacts)) or "none"
            raise RenderError(f"reference to unknown artifact {name!r}; known: {known}", where=path)
    return value


def _manifests(resources: Any) -> list[dict[str, Any]]:
    items = list(resources.values()) if isinstance(resources, dict) else list(resources)
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "apiVersion" not in item or "kind" not in item:
            raise RenderError("a resource needs apiVersion and kind", where=f"deploy.resources[{index}]")
    return items


class KubernetesRenderer:
    """Manifests in a stable order (kind, then name), as multi-document YAML."""

    def render(self, request: RenderRequest) -> RenderedResources:
        resources = request.resources.get("resources", request.resources)
        resolved = resolve_artifacts(_manifests(resources), request.artifacts, "deploy.resources")
        ordered = sorted(resolved, key=lambda m: (m["kind"], str(m.get("metadata", {}).get("name", ""))))
        text = yaml.safe_dump_all(ordered, sort_keys=True, explicit_start=True)
        return RenderedResources(manifests=tuple(ordered), text=text)
