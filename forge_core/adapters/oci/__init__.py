"""OCI stores: a registry (:mod:`.registry`) and a folder of OCI image layouts (:mod:`.layout`).

Both adapters import lazily (httpx only for a registry), so code that only needs the embedded
layout pays nothing for the registry client. The reproducible layer writer (:mod:`.archive`,
standard library only) is re-exported for the sdk.
"""

from __future__ import annotations

from forge_core.adapters.oci.archive import LayerEntry, WrittenLayer, write_layer
from forge_core.domain.oci import LayoutReference, Reference, RegistryCredentials
from forge_core.ports.oci import OciStore
from forge_core.settings.oci import OciSettings

__all__ = ["LayerEntry", "WrittenLayer", "embedded_store", "open_store", "write_layer"]


def open_store(
    reference: Reference, settings: OciSettings | None = None, *, credentials: RegistryCredentials | None = None
) -> OciStore:
    """The store a parsed reference lives in (its ``.repository`` is the path inside it)."""
    if isinstance(reference, LayoutReference):
        from forge_core.adapters.oci.layout import LayoutStore

        return LayoutStore(reference.path.parent)
    from forge_core.adapters.oci.registry import RegistryStore

    return RegistryStore(reference.registry, credentials=credentials, settings=settings)


def embedded_store(settings: OciSettings) -> OciStore:
    """The embedded default: image layouts under ``settings.layout_dir`` (the state directory)."""
    from forge_core.adapters.oci.layout import LayoutStore

    return LayoutStore(settings.layout_dir)
