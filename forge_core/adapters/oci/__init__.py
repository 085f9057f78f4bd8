"""OCI stores: a registry (:mod:`.registry`) and a folder of OCI image layouts (:mod:`.layout`).

Both adapters import lazily (httpx only for a registry), so code that only needs the embedded
layout pays nothing for the registry client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.domain.oci import LayoutReference, Reference, RegistryCredentials
from forge_core.ports.oci import OciStore
from forge_core.settings.oci import OciSettings

if TYPE_CHECKING:
    from forge_core.settings import Settings


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


def tracking_store(settings: Settings, *, credentials: RegistryCredentials | None = None) -> tuple[OciStore, str]:
    """Where tracking images go, and the repository prefix there: ``tracking.registry``
    (``host[:port][/prefix]``), or the embedded layout store when it is empty."""
    if not settings.tracking.registry:
        return embedded_store(settings.oci), ""
    host, _, prefix = settings.tracking.registry.strip("/").partition("/")
    from forge_core.adapters.oci.registry import RegistryStore

    return RegistryStore(host, credentials=credentials, settings=settings.oci), prefix
