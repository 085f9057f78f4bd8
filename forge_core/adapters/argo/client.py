"""The Argo Server REST API (``/api/v1/workflows/{namespace}``…), with a bearer token."""

from __future__ import annotations

from typing import Any

import httpx

from forge_core.domain.errors import ForgeError
from forge_core.settings.orchestrator import ArgoSettings


class ArgoServerError(ForgeError):
    """The Argo Server could not be reached or refused a request."""

    code = "argo_server_error"
    exit_code = 7

    def __init__(self, message: str, *, where: str | None = None, status: int | None = None) -> None:
        super().__init__(message, where=where)
        self.status = status


class ArgoClient:
    def __init__(self, settings: ArgoSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if settings.url is None or settings.token is None:
            raise ArgoServerError("the Argo Server needs a URL and a token", where="FORGE_ORCHESTRATOR__ARGO")
        self.namespace = settings.namespace
        self.base = settings.url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base,
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            timeout=settings.request_timeout,
            verify=settings.verify_tls,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def submit(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """Create the Workflow; :class:`ArgoServerError` with ``status`` 409 when it exists."""
        return await self._call("POST", "", json={"namespace": self.namespace, "workflow": workflow})

    async def get(self, name: str) -> dict[str, Any] | None:
        """The Workflow, or None when it does not exist (deleted, or garbage-collected)."""
        try:
            return await self._call("GET", f"/{name}")
        except ArgoServerError as error:
            if error.status == 404:
                return None
            raise

    async def stop(self, name: str, message: str) -> None:
        """Stop: no new tasks, running ones finish, exit handlers run."""
        await self._call("PUT", f"/{name}/stop", json={"name": name, "namespace": self.namespace, "message": message})

    async def terminate(self, name: str) -> None:
        """Terminate: running pods are killed, exit handlers do not run."""
        await self._call("PUT", f"/{name}/terminate", json={"name": name, "namespace": self.namespace})

    async def delete(self, name: str) -> None:
        await self._call("DELETE", f"/{name}")

    async def _call(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        url = f"/api/v1/workflows/{self.namespace}{path}"
        where = f"{self.base}{url}"
        try:
            response = await self._http.request(method, url, json=json)
        except httpx.HTTPError as exc:
            raise ArgoServerError(f"the Argo Server is unreachable: {type(exc).__name__}: {exc}", where=where) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("message") or response.text
            except ValueError:
                detail = response.text
            raise ArgoServerError(
                f"{method} answered {response.status_code}: {str(detail)[:500]}", where=where,
                status=response.status_code,
            )
        body: dict[str, Any] = response.json() if response.content else {}
        return body
