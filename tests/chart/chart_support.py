"""Rendering the chart with the real Helm SDK, and the schemas its objects are checked against.

Built-in kinds go through the core's strict kubernetes-validate schemas; custom resources through
the openAPIV3Schema of the served version in their projects' CRDs (../shared/schemas), closed:
an object schema that lists its properties refuses others (Kubernetes would silently prune a
misspelt field), except where the CRD keeps unknown fields.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "catalyst-forge"
SHARED_SCHEMAS = Path("/work/shared/schemas")
Manifest = dict[str, Any]

CRDS: dict[tuple[str, str], tuple[str, str]] = {
    # (apiVersion, kind) → (CRD file, served version)
    ("keda.sh/v1alpha1", "ScaledObject"): ("keda/keda.sh_scaledobjects.yaml", "v1alpha1"),
    ("apiextensions.crossplane.io/v2", "CompositeResourceDefinition"): (
        "crossplane/apiextensions.crossplane.io_compositeresourcedefinitions.yaml", "v2"),
    ("apiextensions.crossplane.io/v1", "Composition"): (
        "crossplane/apiextensions.crossplane.io_compositions.yaml", "v1"),
    ("apiextensions.crossplane.io/v1beta1", "EnvironmentConfig"): (
        "crossplane/apiextensions.crossplane.io_environmentconfigs.yaml", "v1beta1"),
}


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values-production.yaml").read_text())
    return values


def render(values: dict[str, Any] | None = None, *, namespace: str = "forge") -> dict[str, str]:
    """Template path → rendered text, as `helm template forge charts/catalyst-forge` gives it."""
    chart = helm.Chart.load(CHART)
    try:
        rendered: dict[str, str] = chart.render(values or {}, name="forge", namespace=namespace, is_install=True)
    finally:
        chart.close()
    return rendered


def manifests(values: dict[str, Any] | None = None) -> list[Manifest]:
    found: list[Manifest] = []
    for path, text in sorted(render(values).items()):
        if path.endswith(".yaml"):
            found.extend(document for document in yaml.safe_load_all(text) if document)
    return found


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists properties refusing any other (unless it keeps them)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if ("properties" in result and "additionalProperties" not in result
            and not result.get("x-kubernetes-preserve-unknown-fields")):
        result["additionalProperties"] = False
    return result


@cache
def _crd_validator(path: str, version: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load((SHARED_SCHEMAS / path).read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    schema = closed(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
    # metadata is the API server's ObjectMeta, which CRDs leave open: check only it is an object.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


@cache
def _argo_validator(kind: str) -> jsonschema.protocols.Validator:
    full = json.loads((SHARED_SCHEMAS / "argo-workflows" / "schema.json").read_text())
    schema = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}", "definitions": closed(full["definitions"])}
    return jsonschema.Draft202012Validator(schema)


def crd_errors(manifest: Manifest) -> list[str]:
    """What the CRD of ``manifest``'s kind says is wrong with it (``None`` kind: not a known CRD)."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    if api_version == "argoproj.io/v1alpha1":
        validator = _argo_validator(kind)
    else:
        validator = _crd_validator(*CRDS[(api_version, kind)])
    return [f"{kind} {manifest['metadata'].get('name')}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(manifest)]


def is_custom(manifest: Manifest) -> bool:
    return manifest["apiVersion"] == "argoproj.io/v1alpha1" or (manifest["apiVersion"], manifest["kind"]) in CRDS
