"""What a ``docker`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class DockerTargetSettings(SettingsModel):
    """An image goes to ``<registry>/<namespace>/<repository>``."""

    registry: str = Field("docker.io", min_length=1, description="Registry host (and port): ghcr.io")
    namespace: str | None = Field(None, min_length=1, description="The path below the registry: an organisation")
    repository: str | None = Field(None, min_length=1, description="The image's name; default: the artifact's")
