"""What a ``docker`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class DockerTargetSettings(SettingsModel):
    """An image goes to ``<registry>/<namespace>/<repository>``."""

    registry: str = Field("docker.io", min_length=1, description="Registry host (and port): ghcr.io")
    namespace: str | None = Field(None, min_length=1, description="The path below the registry: an organisation")
    repository: str | None = Field(None, min_length=1, description="The image's name; default: the artifact's")
    aliases: list[str] = Field(
        default_factory=list,
        description="Moving tags set on every publish (latest, stable); the only tags that may move",
    )
    mount_from: list[str] = Field(
        default_factory=list,
        description="Repositories of the same registry to mount blobs from instead of uploading them",
    )
    insecure: bool = Field(False, description="Reach the registry over plain http (loopback always is)")
