"""``forge server``: where it fetches each repository from, and how many tasks it runs at once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repositories: dict[str, str] = Field(
        default_factory=dict,
        description="Clone URL per repository (owner/name → URL: https://…, ssh://…, file:///…); "
        "wins over clone_url.",
    )
    clone_url: str | None = Field(
        default=None,
        description="Clone URL of any other repository, with {repository} for owner/name "
        "(https://git.example/{repository}.git); unset: only the repositories listed are run.",
    )
    parallel: int = Field(default=4, ge=1, description="Tasks, and jobs per worker type, run at once.")
    poll_seconds: float = Field(default=1.0, gt=0, description="How often pending runs are looked for.")
