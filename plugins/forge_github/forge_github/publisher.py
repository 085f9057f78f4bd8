"""The ``github`` publisher: attaches an artifact's files to the GitHub release of its git tag.

The release of the tag is fetched (``GET /repos/{o}/{r}/releases/tags/{tag}``) or created
(non-draft, ``target_commitish`` = the artifact's commit). Each file becomes one asset (see
:mod:`forge_github.assets` for the names). An asset already there with the same size and SHA-256
(GitHub's ``digest`` field, or the downloaded content where a server gives none) is left alone,
so a re-run uploads nothing; one holding different content is refused before anything is
uploaded, unless the target says ``replace: true``. Uploads stream the file from disk to the
release's ``upload_url``. The token is the target's one credentials reference.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
    WorkWithdrawn,
)
from forge_github.api import GithubApi, GithubPublishError, error_codes
from forge_github.assets import PlannedAsset, ReleasePlan, plan_release

CHUNK = 256 * 2**10
"""Bytes read from disk at a time, for hashing and for the upload stream: what one upload holds."""


class AssetConflict(GithubPublishError):
    """The release already has an asset of that name holding different content."""

    code = "github_asset_conflict"


@dataclass(frozen=True)
class _Local:
    asset: PlannedAsset
    size: int
    sha256: str


class GithubReleasePublisher:
    def plan(self, artifact: ProducedArtifact, target: PublishTarget) -> PublishedLocation:
        """The release and assets ``publish`` would make, computed without contacting GitHub."""
        plan = plan_release(artifact, target)
        described = [
            {"name": a.name, "file": a.path.name, "contentType": a.content_type, "url": plan.download_url(a.name)}
            for a in plan.assets
        ]
        return _location(plan, target, None, described)

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        where = f"github target {target.name!r}"
        if ctx.stop.is_set():
            raise WorkWithdrawn("the github publish was withdrawn before it started", where=where)
        plan = plan_release(artifact, target)
        token = _token(ctx.secrets, where)
        locals_ = [_Local(a, a.path.stat().st_size, _sha256(a.path, ctx, where)) for a in plan.assets]
        settings = plan.settings
        with GithubApi(settings.api_url, token, ctx, where, settings.attempts, settings.max_wait,
                       settings.timeout) as api:
            return _Release(plan, target, ctx, api, artifact.commit).publish(locals_)


class _Release:
    """One publish into one release: decide every asset first (a conflict refuses them all), then upload."""

    def __init__(self, plan: ReleasePlan, target: PublishTarget, ctx: ExecutionContext, api: GithubApi,
                 commit: str) -> None:
        self.plan, self.target, self.ctx, self.api, self.commit = plan, target, ctx, api, commit
        self.repo = plan.settings.repository

    def publish(self, files: list[_Local]) -> PublishedLocation:
        release = self._release()
        existing = self._assets(release["id"])
        to_delete: dict[str, dict[str, Any]] = {}
        conflicts: list[str] = []
        kept: dict[str, dict[str, Any]] = {}
        for local in files:
            found = existing.get(local.asset.name)
            if found is None:
                continue
            if found.get("state") == "uploaded" and self._same(found, local):
                kept[local.asset.name] = found
            elif found.get("state") != "uploaded" or self.plan.settings.replace:
                # a broken-off upload keeps its name reserved until deleted; replace deletes on purpose
                to_delete[local.asset.name] = found
            else:
                conflicts.append(f"{local.asset.name} ({self._describe(found)}; this file: {local.size} bytes, "
                                 f"sha256:{local.sha256})")
        if conflicts:
            raise AssetConflict(
                f"the release {self.plan.tag!r} of {self.repo} already has different content under "
                f"{'; '.join(conflicts)}; refusing to overwrite (nothing was uploaded; set replace: true to "
                "replace them)",
                where=self.api.where,
            )
        published: dict[str, tuple[dict[str, Any], bool]] = {n: (a, False) for n, a in kept.items()}
        for local in files:
            if local.asset.name in kept:
                self.ctx.log(f"github: {local.asset.name}: already on release {self.plan.tag} (same SHA-256)")
                continue
            if local.asset.name in to_delete:
                self._delete(to_delete[local.asset.name])
            published[local.asset.name] = self._upload(release, local)
        described = []
        for local in files:
            asset, uploaded = published[local.asset.name]
            described.append({
                "name": local.asset.name, "file": local.asset.path.name, "contentType": local.asset.content_type,
                "url": asset.get("browser_download_url") or self.plan.download_url(local.asset.name),
                "id": asset.get("id"), "size": local.size, "digest": f"sha256:{local.sha256}", "uploaded": uploaded,
            })
        return _location(self.plan, self.target, release, described)

    def _release(self) -> dict[str, Any]:
        """The release of the tag, created when there is none (a concurrent creation is reused)."""
        what = f"reading the release of tag {self.plan.tag}"
        by_tag = self.api.url(f"/repos/{self.repo}/releases/tags/{quote(self.plan.tag, safe='')}")
        found = self.api.call("GET", by_tag, what=what, expected=(200, 404))
        if found.status_code == 200:
            release: dict[str, Any] = found.json()
            self.ctx.log(f"github: release {self.plan.tag} of {self.repo} exists (id {release['id']})")
            return release
        body = {"tag_name": self.plan.tag, "target_commitish": self.commit, "name": self.plan.release_name,
                "draft": False, "prerelease": self.plan.settings.prerelease}
        created = self.api.call("POST", self.api.url(f"/repos/{self.repo}/releases"), json=body,
                                what=f"creating the release of tag {self.plan.tag}", expected=(201, 404, 422))
        if created.status_code == 201:
            release = created.json()
            self.ctx.log(f"github: created release {self.plan.tag} of {self.repo} (id {release['id']})")
            return release
        if created.status_code == 422 and "already_exists" in error_codes(created):
            again = self.api.call("GET", by_tag, what=what, expected=(200,))  # another publisher made it meanwhile
            reused: dict[str, Any] = again.json()
            return reused
        if created.status_code == 404:
            raise GithubPublishError(
                f"the repository {self.repo} does not exist at {self.api.api_url}, or the token cannot see it",
                where=self.api.where,
            )
        raise GithubPublishError(
            f"GitHub refused to create the release of tag {self.plan.tag}: {self.api.message(created)}",
            where=self.api.where,
        )

    def _assets(self, release_id: int) -> dict[str, dict[str, Any]]:
        """The release's assets by name, every page of them."""
        assets: dict[str, dict[str, Any]] = {}
        url: str | None = self.api.url(f"/repos/{self.repo}/releases/{release_id}/assets")
        params: dict[str, Any] | None = {"per_page": 100}
        while url:
            page = self.api.call("GET", url, params=params, what=f"listing the assets of release {self.plan.tag}",
                                 expected=(200,))
            assets.update({a["name"]: a for a in page.json()})
            url, params = page.links.get("next", {}).get("url"), None  # the next link carries its own query
        return assets

    def _same(self, asset: Mapping[str, Any], local: _Local) -> bool:
        if asset.get("size") != local.size:
            return False
        digest = asset.get("digest")
        if isinstance(digest, str) and digest.startswith("sha256:"):
            return digest == f"sha256:{local.sha256}"
        # a server without the digest field (GitHub Enterprise before it): compare the content itself
        self.ctx.log(f"github: {asset['name']}: no digest from GitHub; downloading it to compare")
        downloaded = self.api.download_sha256(asset["url"], what=f"downloading asset {asset['name']} to compare")
        return downloaded == local.sha256

    def _delete(self, asset: Mapping[str, Any]) -> None:
        self.ctx.log(f"github: deleting asset {asset['name']} (id {asset['id']}) of release {self.plan.tag}")
        self.api.call("DELETE", self.api.url(f"/repos/{self.repo}/releases/assets/{asset['id']}"),
                      what=f"deleting asset {asset['name']}", expected=(204, 404))

    def _upload(self, release: Mapping[str, Any], local: _Local) -> tuple[dict[str, Any], bool]:
        """Upload one asset; (the asset, whether this call uploaded it)."""
        name = local.asset.name
        upload_url = re.sub(r"\{[^}]*\}$", "", str(release["upload_url"]))  # the URI template's {?name,label}
        headers = {"Content-Type": local.asset.content_type, "Content-Length": str(local.size)}
        what = f"uploading {name} to release {self.plan.tag}"
        for _ in range(2):
            self.ctx.log(f"github: {what} ({local.size} bytes)")
            answer = self.api.call("POST", upload_url, params={"name": name}, headers=headers, what=what,
                                   expected=(201, 422), body=lambda: _stream(local.asset.path, self.ctx, what))
            if answer.status_code == 201:
                asset: dict[str, Any] = answer.json()
                self._verify(asset, local)
                return asset, True
            if "already_exists" not in error_codes(answer):
                raise GithubPublishError(f"GitHub refused {what}: {self.api.message(answer)}", where=self.api.where)
            # an earlier attempt landed although its answer was lost, or another publisher was quicker
            found = self._assets(release["id"]).get(name)
            if found is None:
                continue
            if found.get("state") != "uploaded":
                self._delete(found)
                continue
            if self._same(found, local):
                self.ctx.log(f"github: {name}: already on release {self.plan.tag} (same SHA-256)")
                return found, False
            raise AssetConflict(
                f"asset {name} appeared on release {self.plan.tag} during the upload with different content "
                f"({self._describe(found)}); refusing to overwrite it",
                where=self.api.where,
            )
        raise GithubPublishError(f"{what}: GitHub keeps answering that the name exists but lists no such asset",
                                 where=self.api.where)

    def _verify(self, asset: Mapping[str, Any], local: _Local) -> None:
        digest = asset.get("digest")
        if asset.get("size") != local.size or (isinstance(digest, str) and digest != f"sha256:{local.sha256}"):
            raise GithubPublishError(
                f"asset {local.asset.name} arrived damaged: GitHub holds {self._describe(asset)}, the file is "
                f"{local.size} bytes, sha256:{local.sha256}",
                where=self.api.where,
            )

    @staticmethod
    def _describe(asset: Mapping[str, Any]) -> str:
        return f"{asset.get('size')} bytes, {asset.get('digest') or 'no digest'}"


def _token(secrets: Mapping[str, str], where: str) -> str:
    token = secrets.get("token") or secrets.get("default")
    if not token:
        raise ConfigurationError(
            "the target has no credentials: give it one reference to a GitHub token with contents: write "
            f"(it has: {', '.join(sorted(secrets)) or 'none'})",
            where=where,
        )
    return token


def _location(plan: ReleasePlan, target: PublishTarget, release: Mapping[str, Any] | None,
              assets: list[dict[str, Any]]) -> PublishedLocation:
    single = len(assets) == 1
    shown = release or {}
    release_url = shown.get("html_url") or f"{plan.web_url}/{plan.settings.repository}/releases/tag/{plan.tag}"
    metadata = {
        "repository": plan.settings.repository,
        "tag": plan.tag,
        "releaseName": shown.get("name") or plan.release_name,
        "releaseId": shown.get("id"),
        "releaseUrl": release_url,
        "assets": assets,
    }
    return PublishedLocation(
        publisher=target.name,
        type=target.type,
        uri=assets[0]["url"] if single else release_url,
        digest=assets[0].get("digest") if single else None,
        metadata=metadata,
    )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _stream(path: Path, ctx: ExecutionContext, what: str) -> Iterator[bytes]:
    for chunk in _chunks(path):
        if ctx.stop.is_set():
            raise WorkWithdrawn(f"the github publish was withdrawn during {what}")
        yield chunk
        ctx.heartbeat()


def _sha256(path: Path, ctx: ExecutionContext, where: str) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        if ctx.stop.is_set():
            raise WorkWithdrawn("the github publish was withdrawn while hashing its files", where=where)
        digest.update(chunk)
    return digest.hexdigest()
