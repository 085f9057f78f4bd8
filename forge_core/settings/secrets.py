"""The secret providers' settings: one section per provider, named after it.

``FORGE_SECRETS__FILE__DIR`` is the ``file`` provider's folder; a plugin's provider reads its own
section (``FORGE_SECRETS__VAULT__ADDRESS`` → ``{"address": ...}`` for the provider ``vault``).
A provider is given its own section only, never the others' nor the rest of the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FileSecretsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: Path | None = Field(
        default=None,
        description="The folder the `file` provider reads secrets from (unset: it resolves nothing).",
    )


class SecretsSettings(BaseModel):
    # Unknown sections are the settings of plugins' providers, each read by its own provider.
    model_config = ConfigDict(extra="allow")

    file: FileSecretsSettings = Field(default_factory=FileSecretsSettings)

    def options(self, provider: str) -> dict[str, Any]:
        """The settings of ``provider`` alone: what its factory receives."""
        if provider in type(self).model_fields:
            section: BaseModel = getattr(self, provider)
            return section.model_dump()
        extra = (self.model_extra or {}).get(provider, {})
        return dict(extra) if isinstance(extra, dict) else {}
