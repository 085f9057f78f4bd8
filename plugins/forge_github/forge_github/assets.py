"""What a publish will do, computed from the artifact and the target alone: the release and the assets.

A file's platform comes from the artifact's metadata: ``platforms`` maps each file's name to
``os/arch`` (or ``os/arch/variant``) for an artifact built for several platforms, and ``platform``
gives the one platform of every file. The release is the one of the git tag in ``metadata["tag"]``.
"""

from __future__ import annotations

import mimetypes
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forge_core.sdk import ConfigurationError, ForgeError, ProducedArtifact, PublishTarget
from forge_github.api import GithubPublishError
from forge_github.settings import DEFAULT_API_URL, DEFAULT_ASSET_NAME, GithubTargetSettings

_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_PLATFORM = re.compile(r"^([a-z0-9]+)/([a-z0-9_]+)(?:/([a-z0-9]+))?$")
_ARCHIVE_EXTENSIONS = (".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst")
_EXTENSION = re.compile(r"^\.[A-Za-z][A-Za-z0-9]{0,4}$")
_RELEASE_FIELDS = ("tag", "project", "artifact", "version")
MAX_ASSET_SIZE = 2**31 - 1
"""GitHub's limit: each file of a release must be under 2 GiB."""
_ASSET_FIELDS = (*_RELEASE_FIELDS, "os", "arch")


class UntaggedCommit(ForgeError):
    """The artifact was built from a commit without a git tag: a release needs one."""

    code = "github_needs_tag"
    exit_code = 2


@dataclass(frozen=True)
class PlannedAsset:
    path: Path
    name: str
    content_type: str


@dataclass(frozen=True)
class ReleasePlan:
    settings: GithubTargetSettings
    tag: str
    release_name: str
    assets: tuple[PlannedAsset, ...]

    @property
    def web_url(self) -> str:
        """Where GitHub's pages and downloads live for this API (github.com, a GHES host, a stand-in)."""
        api = self.settings.api_url.rstrip("/")
        if api == DEFAULT_API_URL:
            return "https://github.com"
        return api.removesuffix("/api/v3")

    def download_url(self, name: str) -> str:
        """The ``browser_download_url`` GitHub gives an asset of this release (before it exists)."""
        return f"{self.web_url}/{self.settings.repository}/releases/download/{self.tag}/{name}"


def plan_release(artifact: ProducedArtifact, target: PublishTarget) -> ReleasePlan:
    where = f"github target {target.name!r}"
    try:
        settings = GithubTargetSettings.model_validate(target.settings)
    except ValidationError as exc:
        # field and reason only: pydantic's own text repeats the values
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}", where=where) from None
    tag = artifact.metadata.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        raise UntaggedCommit(
            f"the github publisher publishes only tagged commits: artifact {artifact.name!r} of project "
            f"{artifact.project!r} was built from {artifact.commit[:12]}, which has no git tag",
            where=where,
        )
    if not artifact.files:
        raise ConfigurationError(f"artifact {artifact.name!r} has no files to attach to a release", where=where)
    version = artifact.metadata.get("version")
    values: dict[str, str | None] = {
        "tag": tag,
        "project": artifact.project,
        "artifact": artifact.name,
        "version": str(version) if version is not None else None,
    }
    release_name = _render(settings.name, values, _RELEASE_FIELDS, setting="name", where=where)
    platforms = _platforms(artifact, where)
    assets = []
    for path in artifact.files:
        if not path.is_file():
            raise GithubPublishError(f"{path} is not a file (artifact {artifact.name!r})", where=where)
        if path.stat().st_size > MAX_ASSET_SIZE:
            raise GithubPublishError(
                f"{path.name} of artifact {artifact.name!r} is {path.stat().st_size} bytes: GitHub accepts "
                "release assets under 2 GiB",
                where=where,
            )
        name = _asset_name(path, platforms.get(path.name), settings, values, where)
        assets.append(PlannedAsset(path, name, _content_type(name)))
    names = [a.name for a in assets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(
            f"artifact {artifact.name!r} gives several files the asset name {', '.join(duplicates)}: give each "
            "file a platform (metadata platforms) or an assetName template that tells them apart",
            where=where,
        )
    return ReleasePlan(settings, tag, release_name, tuple(assets))


def _platforms(artifact: ProducedArtifact, where: str) -> dict[str, tuple[str, str]]:
    """``{file name: (os, arch)}`` from the artifact's ``platforms`` or ``platform`` metadata."""
    raw: Any = artifact.metadata.get("platforms")
    single = artifact.metadata.get("platform")
    if raw is None and single is None:
        return {}
    if raw is None:
        raw = {path.name: single for path in artifact.files}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"artifact {artifact.name!r}: metadata platforms must map file names to os/arch", where=where
        )
    known = {path.name for path in artifact.files}
    parsed = {}
    for name, platform in raw.items():
        if name not in known:
            raise ConfigurationError(
                f"artifact {artifact.name!r}: metadata platforms names {name!r}, which is none of its files",
                where=where,
            )
        match = _PLATFORM.match(str(platform))
        if not match:
            raise ConfigurationError(
                f"artifact {artifact.name!r}: the platform of {name!r} is {platform!r}, not os/arch[/variant]",
                where=where,
            )
        parsed[name] = (match[1], match[2] + (match[3] or ""))  # linux/arm/v7 -> linux, armv7
    return parsed


def _asset_name(
    path: Path,
    platform: tuple[str, str] | None,
    settings: GithubTargetSettings,
    values: dict[str, str | None],
    where: str,
) -> str:
    template = settings.asset_name or (DEFAULT_ASSET_NAME if platform else None)
    if template is None:
        name = path.name
    else:
        os_, arch = platform or (None, None)
        rendered = _render(template, {**values, "os": os_, "arch": arch}, _ASSET_FIELDS, setting="assetName",
                           where=where, file=path.name)
        extension = _extension(path.name)
        name = rendered if rendered.endswith(extension) else rendered + extension
    if not _ASSET_NAME.match(name):
        raise ConfigurationError(
            f"the asset name {name!r} of {path.name} has characters GitHub would replace (use letters, digits, "
            "'.', '_', '+', '-', not starting with a dot)",
            where=where,
        )
    return name


def _render(
    template: str,
    values: Mapping[str, str | None],
    allowed: tuple[str, ...],
    *,
    setting: str,
    where: str,
    file: str | None = None,
) -> str:
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise ConfigurationError(f"settings.{setting}: not a template: {exc}", where=where) from None
    for field in fields:
        if field not in allowed:
            raise ConfigurationError(
                f"settings.{setting}: unknown placeholder {{{field}}}; expected one of "
                f"{', '.join('{' + a + '}' for a in allowed)}",
                where=where,
            )
        if values.get(field) is None:
            whose = f" of {file}" if file else ""
            source = "metadata platforms or platform" if field in ("os", "arch") else f"metadata {field}"
            raise ConfigurationError(
                f"settings.{setting} uses {{{field}}}, but the artifact gives none{whose} ({source})", where=where
            )
    return template.format_map({k: v for k, v in values.items() if v is not None})


def _extension(name: str) -> str:
    lower = name.lower()
    for extension in _ARCHIVE_EXTENSIONS:
        if lower.endswith(extension):
            return name[-len(extension):]
    suffix = Path(name).suffix
    return suffix if _EXTENSION.match(suffix) else ""


def _content_type(name: str) -> str:
    kind, encoding = mimetypes.guess_type(name)
    if encoding:
        return "application/gzip" if encoding == "gzip" else f"application/x-{encoding}"
    return kind or "application/octet-stream"
