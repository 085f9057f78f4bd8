"""The Kubernetes resources of a release: the files of its resources layer, parsed and ordered.

A resources layer is a tar.gz of ``.yaml``/``.yml`` files (read safely by
``forge_core.adapters.archive``). Each file may hold several YAML documents; each document must be
a mapping with ``apiVersion``, ``kind`` and ``metadata.name``. The CMP prints them sorted by
(kind, metadata.name) — then namespace, file and position, so equal pairs stay in a fixed order.
YAML anchors and aliases are refused: a few bytes of aliases can expand into gigabytes on output.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from pydantic import Field
from yaml.events import AliasEvent

from forge_core.domain.errors import ForgeError
from forge_core.domain.models import Model

MiB = 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")


class ArchiveLimits(Model):
    """Bounds on reading a resources layer (a settings object may embed it).

    ``max_total_bytes`` caps the inflated tar stream (headers included), ``max_file_bytes`` each
    file, ``max_entries`` the number of entries of any type.
    """

    max_total_bytes: int = Field(default=64 * MiB, gt=0)
    max_file_bytes: int = Field(default=16 * MiB, gt=0)
    max_entries: int = Field(default=10_000, gt=0)


class ArchiveError(ForgeError):
    """An archive refused: ``where`` is the entry (or the archive), ``details["rule"]`` the rule broken."""

    code = "unsafe_archive"

    def __init__(self, message: str, *, entry: str | None, rule: str):
        self.entry, self.rule = entry, rule
        super().__init__(f"{message} (rule: {rule})", where=entry, details={"entry": entry, "rule": rule})


class ResourceError(ForgeError):
    """A document of a resources layer that is not a Kubernetes object; ``where`` is file#document."""

    code = "invalid_resource"


class LayerFile(Model):
    """One regular file read from a layer: its normalised path and its bytes."""

    name: str
    data: bytes


class Resource(Model):
    """One Kubernetes object and where it came from (``file`` and 1-based ``document``)."""

    kind: str
    name: str
    namespace: str | None
    file: str
    document: int
    body: dict[str, Any]

    @property
    def sort_key(self) -> tuple[str, str, str, str, int]:
        return (self.kind, self.name, self.namespace or "", self.file, self.document)


# libyaml's parser where PyYAML has it: several times faster than the pure-Python one.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse_aliases(text: str) -> None:
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, AliasEvent):
            mark: Any = event.start_mark  # libyaml's Mark, which the stubs do not count as one
            raise yaml.constructor.ConstructorError(None, None, "YAML aliases are not accepted in resources", mark)


def parse_resources(files: Iterable[LayerFile]) -> tuple[Resource, ...]:
    """Every Kubernetes object in ``files``, sorted by (kind, metadata.name); empty documents skipped.

    Raises ResourceError naming file, document and field; two objects with one kind, namespace and
    name are an error too (Argo CD could apply only one of them).
    """
    resources: list[Resource] = []
    for file in files:
        resources.extend(_documents(file))
    seen: dict[tuple[str, str, str], Resource] = {}
    for resource in resources:
        key = (resource.kind, resource.namespace or "", resource.name)
        if key in seen:
            first = seen[key]
            raise ResourceError(
                f"{resource.kind} {resource.name!r} is defined twice (also in {first.file}#{first.document})",
                where=f"{resource.file}#{resource.document}",
            )
        seen[key] = resource
    return tuple(sorted(resources, key=lambda r: r.sort_key))


def _documents(file: LayerFile) -> list[Resource]:
    try:
        text = file.data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ResourceError(f"not UTF-8 text (byte {error.start})", where=file.name) from error
    found: list[Resource] = []
    try:
        _refuse_aliases(text)
        for index, body in enumerate(yaml.load_all(text, Loader=_LOADER), start=1):
            if body is not None:
                found.append(_resource(body, file.name, index))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{file.name}:{mark.line + 1}" if mark is not None else file.name
        raise ResourceError(f"not valid YAML: {getattr(error, 'problem', None) or error}", where=where) from error
    return found


def _resource(body: object, file: str, index: int) -> Resource:
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
    return Resource(kind=body["kind"], name=metadata["name"], namespace=namespace, file=file, document=index,
                    body=body)


def render_resources(resources: Iterable[Resource]) -> str:
    """The objects as one multi-document YAML stream (keys sorted: same objects, same bytes), with
    the renderer's quoting: strings a YAML 1.2 reader (Argo CD's) would take for numbers stay strings."""
    from forge_core.domain.rendering import dump_manifests  # the renderer's validators stay unloaded

    return dump_manifests((r.body for r in resources), sort_keys=True)
