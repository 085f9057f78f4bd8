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

from pydantic import Field

from forge_core.domain.canonical_layer import YAML_SUFFIXES, ArchiveError, ResourceError, in_print_order
from forge_core.domain.models import Model
from forge_core.domain.resource_yaml import dump_manifests, load_documents, resource_identity

__all__ = ["YAML_SUFFIXES", "ArchiveError", "ArchiveLimits", "LayerFile", "MiB", "Resource", "ResourceError",
           "parse_resources", "render_resources"]

MiB = 1024 * 1024


class ArchiveLimits(Model):
    """Bounds on reading a resources layer (a settings object may embed it).

    ``max_total_bytes`` caps the inflated tar stream (headers included), ``max_file_bytes`` each
    file, ``max_entries`` the number of entries of any type.
    """

    max_total_bytes: int = Field(default=64 * MiB, gt=0)
    max_file_bytes: int = Field(default=16 * MiB, gt=0)
    max_entries: int = Field(default=10_000, gt=0)


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


def parse_resources(files: Iterable[LayerFile]) -> tuple[Resource, ...]:
    """Every Kubernetes object in ``files``, sorted by (kind, metadata.name); empty documents skipped.

    Raises ResourceError naming file, document and field; two objects with one kind, namespace and
    name are an error too (Argo CD could apply only one of them).
    """
    resources: list[Resource] = []
    for file in files:
        resources.extend(_documents(file))
    order = in_print_order([r.sort_key for r in resources])
    return tuple(resources[position] for position in order)


def _documents(file: LayerFile) -> list[Resource]:
    found: list[Resource] = []
    for index, body in load_documents(file.name, file.data):
        kind, name, namespace = resource_identity(body, file.name, index)
        found.append(Resource(kind=kind, name=name, namespace=namespace, file=file.name, document=index, body=body))
    return found


def render_resources(resources: Iterable[Resource]) -> str:
    """The objects as one multi-document YAML stream (keys sorted: same objects, same bytes), with
    the renderer's quoting: strings a YAML 1.2 reader (Argo CD's) would take for numbers stay strings."""
    return dump_manifests((r.body for r in resources), sort_keys=True)
