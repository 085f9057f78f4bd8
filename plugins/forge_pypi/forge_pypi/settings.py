"""What a ``pypi`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class PypiTargetSettings(SettingsModel):
    """The index to upload to; no default, so nothing reaches the public PyPI by accident."""

    repository: str = Field(pattern=r"^https?://\S+$", description="The index's upload URL")
