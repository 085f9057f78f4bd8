"""What a ``pypi`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class PypiTargetSettings(SettingsModel):
    repository: str = Field(pattern=r"^https?://\S+$", description="The index's URL (no default: never PyPI by accident)")
