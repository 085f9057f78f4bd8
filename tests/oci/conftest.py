"""Fixtures of the OCI store tests: a store on the session's real registry, a fresh repository name,
and a recording transport to see which requests a store sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.settings.oci import OciSettings
from forge_core.testing.registry import RegistryServer

FAST = OciSettings(attempts=3, backoff=0.05, max_backoff=0.2, timeout=10)
"""Retry settings that keep fault tests short."""


class Recorder(httpx.HTTPTransport):
    """An HTTP transport that remembers ``(method, path?query, status)`` of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        target = request.url.raw_path.decode()
        self.seen.append((request.method, target, response.status_code))
        return response

    def uploads(self) -> list[tuple[str, str, int]]:
        return [s for s in self.seen if "/blobs/uploads/" in s[1]]


@pytest.fixture
def repository() -> str:
    return f"forge-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry_store(oci_registry: RegistryServer, recorder: Recorder) -> Iterator[RegistryStore]:
    with RegistryStore(oci_registry.address, settings=FAST, transport=recorder) as store:
        yield store


@pytest.fixture
def layout_store(tmp_path: Path) -> LayoutStore:
    return LayoutStore(tmp_path / "layouts")


@pytest.fixture(params=["registry", "layout"])
def store(request: pytest.FixtureRequest) -> RegistryStore | LayoutStore:
    """Each behaviour of the port, once on the real registry and once on a layout folder."""
    name = "registry_store" if request.param == "registry" else "layout_store"
    value: RegistryStore | LayoutStore = request.getfixturevalue(name)
    return value
