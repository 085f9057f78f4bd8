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


PLATFORM = r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"
"""``os/architecture[/variant]``: linux/amd64, linux/arm64/v8."""


class ContainerLayer(SettingsModel):
    """One layer of files: ``{source → destination}``, owned ``owner``, with one mode or each file's."""

    files: dict[str, str] = Field(
        min_length=1,
        description="Source (a file, a folder or a glob, relative to the project) → its path in the image "
        "(absolute; a folder, a glob or a destination ending in / puts the files below it)",
    )
    mode: int | str | None = Field(
        None, description="Mode of every file of the layer (0o755 or '0755'); default 0755 if executable, else 0644"
    )
    owner: str = Field("0:0", pattern=r"^\d+:\d+$", description="Numeric uid:gid of every file")
    platforms: list[str] | None = Field(
        None, description="Only in the images of these platforms (platform-specific files); default: every platform"
    )


class ContainerSettings(SettingsModel):
    """The ``container`` producer: files onto a base image, no daemon (the approach of ko, jib, crane append)."""

    base: str = Field(
        "scratch",
        min_length=1,
        description="scratch, an OCI layout (oci-layout:PATH[:tag], PATH relative to the project) or a registry "
        "reference (host/repo:tag[@sha256:…])",
    )
    platforms: list[str] = Field(
        default_factory=lambda: ["linux/amd64"], min_length=1, description="os/arch[/variant]: one image each"
    )
    layers: list[ContainerLayer] = Field(min_length=1, description="The layers added onto the base, in order")
    entrypoint: list[str] | None = Field(None, description="Default: the base's")
    cmd: list[str] | None = Field(None, description="Default: the base's (none when entrypoint is set)")
    env: dict[str, str] = Field(default_factory=dict, description="Merged over the base's environment")
    working_dir: str | None = Field(None, min_length=1, description="Default: the base's")
    user: str | None = Field(None, min_length=1, description="Default: the base's")
    exposed_ports: list[str] = Field(default_factory=list, description="8080, 8080/tcp, 53/udp")
    labels: dict[str, str] = Field(default_factory=dict, description="Merged over the base's labels")
    annotations: dict[str, str] = Field(default_factory=dict, description="Extra manifest annotations")
    source: str | None = Field(None, min_length=1, description="org.opencontainers.image.source: the repository URL")
    out_dir: str = Field(
        "dist/oci", min_length=1, description="Where the image layout <outDir>/<artifact> is written, in the project"
    )
    insecure: bool = Field(False, description="Reach the base's registry over plain http (loopback always is)")
