"""How deploy resources are rendered: the Kubernetes version whose schemas built-in kinds must meet."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forge_core.domain.errors import ForgeError
from forge_core.domain.manifest_schemas import default_kubernetes_version, kubernetes_version


class RenderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kubernetes_version: str = Field(
        default_factory=default_kubernetes_version,
        description="The Kubernetes version (major.minor) whose strict schemas built-in kinds are validated "
        "against; one of those kubernetes-validate bundles (default: the newest).",
    )

    @field_validator("kubernetes_version")
    @classmethod
    def _supported(cls, value: str) -> str:
        try:
            return kubernetes_version(value)
        except ForgeError as error:  # pydantic reports ValueErrors with the variable's name
            raise ValueError(error.message) from None
