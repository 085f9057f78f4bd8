"""The settings of the ``earthly`` producer (an artifact's ``producer: earthly: {...}``) and step
runner (a step's ``settings``)."""

import re
from typing import Literal

from pydantic import Field, field_validator

from forge_core.sdk import SettingsModel, StepRetries, parse_duration

EARTHLY_TARGET = r"^\S*\+[A-Za-z][A-Za-z0-9._-]*$"
"""``+name`` in the project's Earthfile, or ``<path or remote>+name``."""

BUILD_ARG = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""An Earthfile ``ARG`` name (passed as ``--NAME=value``)."""


class EarthlyInvocation(SettingsModel):
    """What every Earthly run takes: build arguments, platforms, and the flags of the command."""

    args: dict[str, str] = Field(default_factory=dict, description="Build arguments (ARG name → value)")
    platforms: list[str] = Field(
        default_factory=list, description="Platforms to build for (one run each, --platform); none: Earthly's own"
    )
    binary: str = Field("earthly", min_length=1, description="The earthly executable: a name on PATH or a path")
    config: str | None = Field(None, description="--config: Earthly's configuration file ('' bypasses satellites)")
    allow_privileged: bool = Field(False, description="--allow-privileged: permit RUN --privileged")
    ci: bool = Field(False, description="--ci: Earthly's CI mode (inline cache, strict)")

    @field_validator("args")
    @classmethod
    def _arg_names(cls, args: dict[str, str]) -> dict[str, str]:
        bad = [name for name in args if not re.fullmatch(BUILD_ARG, name)]
        if bad:
            raise ValueError(f"build argument names must be ARG names ({BUILD_ARG}): {', '.join(map(repr, bad))}")
        return args

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, platforms: list[str]) -> list[str]:
        for platform in platforms:
            if not re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?", platform):
                raise ValueError(f"platform {platform!r} is not os/arch[/variant] (e.g. linux/amd64)")
        if len(set(platforms)) != len(platforms):
            raise ValueError(f"platforms repeat: {platforms}")
        return platforms


class EarthlyProducerSettings(EarthlyInvocation):
    """The target that builds the artifact, and where its output is, by artifact type.

    The target runs in Earthly's artifact form (``--artifact <target>/* <out>/<platform>/``); what
    it saves with ``SAVE ARTIFACT`` is checked in that folder. A container target saves its image
    as an OCI image layout, a folder or a tar of one (``image_path``, default ``image.tar``)."""

    target: str = Field(pattern=EARTHLY_TARGET, description="+docker, ./sub+binary, github.com/acme/x+wheel")
    image_ref: str | None = Field(
        None, min_length=1, description="container: the image's name; its tag (default latest) tags the layout"
    )
    image_path: str = Field(
        "image.tar", min_length=1, description="container: the OCI image layout the target saves (a folder or a tar)"
    )
    binary_path: str | None = Field(None, min_length=1, description="binary: the file the target saves")
    os: str | None = Field(None, min_length=1, description="binary: the operating system it runs on")
    arch: str | None = Field(None, min_length=1, description="binary: the CPU architecture")
    archive_path: str | None = Field(None, min_length=1, description="archive: the file the target saves")
    format: Literal["tar.gz", "tgz", "zip", "tar"] | None = Field(None, description="archive: its format")
    retries: StepRetries = Field(
        default_factory=StepRetries,
        description="When a failed platform's run goes again: attempts, delay (a duration, '10s'), filters",
    )

    @field_validator("retries", mode="before")
    @classmethod
    def _delay(cls, retries: object) -> object:
        # written in CUE as a step's retries are: the delay is a duration such as "30s"
        if isinstance(retries, dict) and isinstance(retries.get("delay"), str):
            return {**retries, "delay": parse_duration(retries["delay"])}
        return retries


class EarthlyStepSettings(EarthlyInvocation):
    """A step's Earthly invocation; its target is the step's ``target``, its retries the step's."""
