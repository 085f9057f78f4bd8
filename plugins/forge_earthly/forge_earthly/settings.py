"""The settings of the ``earthly`` producer (an artifact's ``producer: earthly: {...}``) and step
runner (a step's ``settings``)."""

from typing import Literal

from pydantic import ConfigDict, Field

from forge_core.sdk import SettingsModel

EARTHLY_TARGET = r"^\S*\+[A-Za-z][A-Za-z0-9._-]*$"
"""``+name`` in the project's Earthfile, or ``<path or remote>+name``."""


class EarthlyInvocation(SettingsModel):
    """What every Earthly run takes: build arguments and platforms."""

    args: dict[str, str] = Field(default_factory=dict, description="Build arguments (ARG name → value)")
    platforms: list[str] = Field(default_factory=list, description="Platforms to build for (--platform)")


class EarthlyProducerSettings(EarthlyInvocation):
    """The target that builds the artifact, and where its output is, by artifact type."""

    target: str = Field(pattern=EARTHLY_TARGET, description="+docker, ./sub+binary, github.com/acme/x+wheel")
    image_ref: str | None = Field(None, min_length=1, description="container: the image the target saves")
    binary_path: str | None = Field(None, min_length=1, description="binary: the file the target saves")
    os: str | None = Field(None, min_length=1, description="binary: the operating system it runs on")
    arch: str | None = Field(None, min_length=1, description="binary: the CPU architecture")
    archive_path: str | None = Field(None, min_length=1, description="archive: the file the target saves")
    format: Literal["tar.gz", "tgz", "zip", "tar"] | None = Field(None, description="archive: its format")


class EarthlyStepSettings(EarthlyInvocation):
    """Typed where Earthly's meaning is fixed; open for the rest until the Earthly issue defines it."""

    model_config = ConfigDict(extra="allow")
