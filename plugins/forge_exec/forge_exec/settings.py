"""The settings of an ``exec`` step (none) and of the ``exec`` producer (``producer: exec: {...}``)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from forge_core.sdk import SettingsModel, parse_duration

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _relative(path: str) -> str:
    """A path inside the project's folder, as written: relative, without '..' parts."""
    if path.startswith("/") or ".." in PurePosixPath(path).parts:
        raise ValueError(f"{path!r} must be relative to the project's folder, without '..'")
    return path


Glob = Annotated[str, Field(min_length=1), AfterValidator(_relative)]


class ExecStepSettings(SettingsModel):
    """Closed and empty, so a key in an exec step's ``settings`` is reported instead of ignored."""


class ExecProducerSettings(SettingsModel):
    """A command that writes the artifact, and the one kind of output it declares.

    Paths and globs are relative to the project's folder and may not leave it."""

    command: str = Field(
        min_length=1, pattern=r"\S", description="Shell command (/bin/sh -c) run in the project's folder"
    )
    files: list[Glob] | None = Field(
        None, min_length=1, description="Globs of the files it writes (each must match at least one file)"
    )
    folder: str | None = Field(
        None, min_length=1, description="A folder it writes; an archive artifact gets it as a reproducible tar.gz"
    )
    layout: str | None = Field(None, min_length=1, description="container: the OCI image layout folder it writes")
    tag: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$",
        description="layout: the image's tag in the layout (needed when it holds several images)",
    )
    archive: str | None = Field(
        None, min_length=1, description="folder: where the tar.gz is written (default: the folder's path + .tar.gz)"
    )
    prefix: str | None = Field(
        None, description="folder: the folder inside the tar.gz its files go under (default: the folder's name)"
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for the command")
    timeout: timedelta | None = Field(None, description="How long the command may run: a duration like 10m")

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value  # "10m", as CUE writes it

    @field_validator("env")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in value if not re.fullmatch(ENV_NAME, name))
        if bad:
            raise ValueError(f"not environment variable names: {', '.join(bad)}")
        return value

    @field_validator("folder", "layout", "archive")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        return None if value is None else _relative(value)

    @model_validator(mode="after")
    def _one_output(self) -> ExecProducerSettings:
        given = [name for name in ("files", "folder", "layout") if getattr(self, name) is not None]
        if len(given) != 1:
            listed = ", ".join(given) or "none"
            raise ValueError(f"declare exactly one output: files, folder or layout (given: {listed})")
        if self.tag is not None and self.layout is None:
            raise ValueError("tag is for a layout output")
        if (self.archive is not None or self.prefix is not None) and self.folder is None:
            raise ValueError("archive and prefix are for a folder output")
        return self

