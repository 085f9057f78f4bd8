"""The platform's kinds as Crossplane composite resources: each kind's JSON Schema
(``forge_core/schemas/kinds/``) turned into the CompositeResourceDefinition Crossplane serves it by,
so the schema the renderer checks and the schema the cluster checks are one schema.

Kubernetes takes a *structural* OpenAPI v3 schema: no ``$ref`` (inlined here), no ``const`` (an
``enum`` of one), no ``additionalProperties: false`` beside ``properties`` (the API server prunes
unknown fields instead; the renderer refuses them before they get there).
"""

from __future__ import annotations

import copy
from typing import Any

_Schema = dict[str, Any]
_DROPPED = ("$schema", "$id", "$defs", "title", "additionalProperties")


def structural(schema: _Schema, definitions: _Schema | None = None) -> _Schema:
    """``schema`` as a structural OpenAPI v3 schema, references inlined."""
    definitions = schema.get("$defs", {}) if definitions is None else definitions
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix("#/$defs/")
        merged = {**definitions[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, definitions)
    result: _Schema = {}
    for key, value in schema.items():
        if key in _DROPPED and not (key == "additionalProperties" and isinstance(value, dict)):
            continue
        if key == "const":
            result["enum"] = [value]
            result.setdefault("type", _json_type(value))
        elif key == "properties":
            result[key] = {name: structural(sub, definitions) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = structural(value, definitions)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(value), "object")


def composite_definition(kind_schema: _Schema) -> _Schema:
    """The Crossplane v2 XRD (namespaced) of one platform kind."""
    properties = kind_schema["properties"]
    group, version = str(properties["apiVersion"]["const"]).split("/")
    kind = str(properties["kind"]["const"])
    plural = f"{kind.lower()}s"
    spec = structural(properties["spec"], kind_schema.get("$defs", {}))
    open_api: _Schema = {
        "type": "object",
        "description": kind_schema.get("description", kind),
        "required": ["spec"],
        "properties": {
            "spec": spec,
            "status": {
                "type": "object",
                "description": "What the composition reports back.",
                "properties": {
                    "address": {"type": "string", "description": "Where the composed service is reached."},
                },
            },
        },
    }
    return {
        "apiVersion": "apiextensions.crossplane.io/v2",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural},
            "versions": [{
                "name": version,
                "served": True,
                "referenceable": True,
                "schema": {"openAPIV3Schema": open_api},
            }],
        },
    }
