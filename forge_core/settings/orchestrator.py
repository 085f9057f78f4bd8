"""Which orchestrator executes runs: the embedded one (default) or Argo Workflows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ArgoSettings(BaseModel):
    """The Argo Server the platform submits Workflows to, and what every Workflow carries."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="The Argo Server's base URL (https://argo.example:2746).")
    token: SecretStr | None = Field(
        default=None, description="Bearer token for the Argo Server (a ServiceAccount token)."
    )
    namespace: str = Field(default="forge", description="Namespace the Workflows are submitted to.")
    dispatch_template: str = Field(
        default="forge-catalyst-forge-dispatch",
        description="The chart's WorkflowTemplate with a dispatch-<type> template per job type and the "
        "close-run template (<release>-catalyst-forge-dispatch).",
    )
    service_account: str = Field(default="forge-dispatcher", description="ServiceAccount of the Workflow's pods.")
    ttl_seconds: int = Field(default=86400, ge=0, description="Workflows are deleted this long after they end.")
    active_deadline_seconds: int = Field(
        default=21600, ge=1, description="A Workflow still running after this long is failed by Argo."
    )
    exit_grace_seconds: int = Field(
        default=60, ge=0,
        description="A failed Workflow's exit handler waits this long for the platform to close the run "
        "with the precise reason before it closes it itself.",
    )
    poll_interval: float = Field(default=5.0, gt=0, description="Seconds between status reads of a Workflow.")
    request_timeout: float = Field(default=30.0, gt=0, description="Seconds an Argo Server request may take.")
    verify_tls: bool = Field(default=True, description="Check the Argo Server's certificate.")


class OrchestratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["embedded", "argo"] = Field(
        default="embedded", description="embedded: runs execute in the server process; argo: one Workflow per run."
    )
    argo: ArgoSettings = Field(default_factory=ArgoSettings)

    @model_validator(mode="after")
    def _argo_needs_server(self) -> OrchestratorSettings:
        if self.kind == "argo" and (self.argo.url is None or self.argo.token is None):
            missing = "url" if self.argo.url is None else "token"
            raise ValueError(f"kind argo needs the Argo Server: set FORGE_ORCHESTRATOR__ARGO__{missing.upper()}")
        return self
