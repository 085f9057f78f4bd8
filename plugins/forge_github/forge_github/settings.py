"""What a ``github`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class GithubTargetSettings(SettingsModel):
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name of the repository")
