"""The YAML of Kubernetes resources, read and written without pydantic (the Argo CD plugin's cold
path imports this for an env file).

Reading: libyaml's safe loader where PyYAML has it; anchors and aliases refused (a few bytes of
aliases can expand into gigabytes on output); each document a mapping with ``apiVersion``,
``kind`` and ``metadata.name`` (:func:`resource_identity`). Writing (:func:`dump_manifests`):
``---``-separated, no aliases, and strings a YAML 1.2 reader (Go's, in kubectl and Argo CD) would
take for numbers, booleans or null quoted. :func:`render_one` is what the CMP prints for one
resource: the release writer writes each resources-layer file with it, so the plugin can print a
canonical layer's files as they are (:mod:`forge_core.domain.canonical_layer`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from yaml.events import AliasEvent

from forge_core.domain.canonical_layer import ResourceError

# libyaml's parser where PyYAML has it: several times faster than the pure-Python one.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def refuse_aliases(text: str) -> None:
    """A ConstructorError at the first alias of ``text``. An alias is written ``*name``: a text
    without ``*`` holds none, and is not parsed a second time."""
    if "*" not in text:
        return
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, AliasEvent):
            mark: Any = event.start_mark  # libyaml's Mark, which the stubs do not count as one
            raise yaml.constructor.ConstructorError(None, None, "YAML aliases are not accepted in resources", mark)


def load_documents(name: str, data: bytes) -> list[tuple[int, Any]]:
    """The non-empty documents of the file ``name`` as (1-based position, value); ResourceError
    naming the file (and line) when it is not UTF-8, not YAML, or holds an alias."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ResourceError(f"not UTF-8 text (byte {error.start})", where=name) from error
    try:
        refuse_aliases(text)
        return [(index, body) for index, body in enumerate(yaml.load_all(text, Loader=LOADER), start=1)
                if body is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ResourceError(f"not valid YAML: {getattr(error, 'problem', None) or error}", where=where) from error


def resource_identity(body: object, file: str, index: int) -> tuple[str, str, str | None]:
    """(kind, metadata.name, metadata.namespace) of a document that is a Kubernetes object;
    ResourceError naming ``file#index`` and the field otherwise."""
    where = f"{file}#{index}"
    if not isinstance(body, dict):
        raise ResourceError(f"a resource is a mapping, got {type(body).__name__}", where=where)
    for field in ("apiVersion", "kind"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise ResourceError(f"{field} is missing or not a string", where=f"{where}: {field}")
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise ResourceError("metadata.name is missing or not a string", where=f"{where}: metadata.name")
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ResourceError("metadata.namespace is not a string", where=f"{where}: metadata.namespace")
    return body["kind"], metadata["name"], namespace


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is one resource exactly as :func:`render_one` writes it (the release writer
    asks before it says so in the metadata)."""
    try:
        documents = load_documents("file", data)
    except ResourceError:
        return False
    return len(documents) == 1 and isinstance(documents[0][1], dict) and render_one(documents[0][1]).encode() == data


# Plain scalars a YAML 1.2 reader (Go's, in kubectl and Argo CD) would not read as strings, beyond
# the YAML 1.1 ones PyYAML already quotes: 1e3, 0o17, 0x1F, .inf, null spellings, etc.
_YAML12_NON_STRING = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(inf|Inf|INF)"
    r"|\.(nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|"
)


# libyaml's emitter where PyYAML has it: the same bytes as the pure-Python one, several times faster
# (the CMP prints a release's resources on every Argo CD refresh).
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class SafeDumper(_Dumper):  # type: ignore[misc]  # a base chosen at import
    """No anchors or aliases (a repeated object is written again), and strings that another YAML
    reader could take for numbers, booleans or null are quoted."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _YAML12_NON_STRING.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


SafeDumper.add_representer(str, _represent_str)


def dump_manifests(manifests: Iterable[Mapping[str, Any]], *, sort_keys: bool = False) -> str:
    """``---``-separated YAML of ``manifests``, keys in the author's order (or sorted): same input,
    same bytes."""
    return yaml.dump_all(list(manifests), Dumper=SafeDumper, sort_keys=sort_keys, explicit_start=True,
                         default_flow_style=False, allow_unicode=True, width=4096)


def render_one(manifest: Mapping[str, Any]) -> str:
    """One resource as the CMP prints it: its own ``---`` document, keys sorted."""
    return dump_manifests([manifest], sort_keys=True)
