"""The ``release`` job handler: one project of one commit becomes a numbered release with its
Release OCI image.

The payload is a :class:`~forge_core.domain.jobs.ReleaseJobPayload` (JSON)::

    {"repository": "acme/monorepo", "project": {"name": "api", "path": "services/api"},
     "commit": "<40 hex>", "committed_at": "2026-12-01T12:00:00Z",
     "branch": "main", "tag": null,                       # or the release tag, "api/v1.2.0"
     "trigger": {"release": true, "reason": "…", "version": null, "triggers": […]},
     "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", …}],   # deploy resources
     "artifacts": [{"name": "api", "type": "container",
                    "tracking": "<tracking image reference>", "tracking_digest": "sha256:…",
                    "published": [{"publisher": "docker", "type": "container",
                                   "uri": "reg/ns/api:1.2.0", "digest": "sha256:…"}]}],  # primary first
     "aliases": ["stable", "{branch}-latest"],            # custom alias templates (optional)
     "kubernetes_version": "1.31"}                        # optional

``job.run_id`` is the pipeline run the release belongs to. Steps, in order, each idempotent so a
redelivered job ends where the first would have:

1. check every artifact's primary location has a digest and the alias templates, and render the
   deploy resources with the ``kubernetes`` renderer (nothing is recorded when any fails, so no
   number is used up);
2. create the release through the API (number, trigger, artifacts) — or, when the commit already
   has one, take that one;
3. set its aliases: the number, the tag and its version (``1.2.0``), the branch (``main-42``), the
   custom ones, the project's ``release.aliases`` templates filled in with the number, branch, tag,
   version and commit (:mod:`forge_core.domain.alias_templates`; a template naming a value the
   release lacks gives none, listed in ``skipped_aliases``) —
   :func:`forge_core.domain.release_image.release_aliases`;
4. build and push the Release image (``<store>/<repository name>/<project>:<commit>``) to
   ``JobContext.oci`` — skipped when the release already records an image the store holds;
5. record ``oci_uri`` and ``oci_digest`` on the release
   (``PUT /v1/releases/{owner}/{repo}/{project}/{number}/image``).

It needs ``JobContext.releases`` (the API's release calls) and ``JobContext.oci`` (the release
store). The result's output holds ``release_id``, ``release_number``, ``aliases``, ``oci_uri``,
``oci_digest``, ``pushed`` (False when the image was already there) and ``skipped_aliases``
(template and why). Every error names the project.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from forge_core.adapters.oci.release_image import push_release_image, release_reference
from forge_core.domain.alias_templates import (
    AliasFacts,
    AliasTemplateError,
    Skipped,
    check_templates,
    expand_templates,
)
from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.jobs import ArtifactResult, ReleaseJobPayload
from forge_core.domain.models import (
    ArtifactReference,
    Job,
    JobResult,
    JobStatus,
    RenderedResources,
    RenderRequest,
)
from forge_core.domain.oci import OciNotFound
from forge_core.domain.release_image import (
    PrimaryLocation,
    ReleaseArtifactRef,
    ReleaseFacts,
    ReleaseImageConflict,
    ReleaseTriggerInfo,
    TrackingRef,
    release_aliases,
    release_repository,
    resource_files,
    tag_version,
)
from forge_core.plugin.family import Family
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import JobHandlerRegistrar
from forge_core.ports.contexts import JobContext
from forge_core.ports.oci import OciStore
from forge_core.ports.platform import CONFLICT, NOT_FOUND, BlockingReleaseApi
from forge_core.services import schemas as s

RENDERER = "kubernetes"


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add("release", "forge_core.builtin.release:ReleaseHandler",
                 description="Number a project's release and push its Release OCI image")


class ReleaseError(ForgeError):
    """A release that cannot be made; ``where`` names the project (and the artifact or field)."""

    code = "release_failed"


class ReleaseHandler:
    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        payload = _payload(job)
        try:
            output = self._release(job, payload, ctx)
        except ForgeError as error:
            message = str(error)
            if f"project {payload.project.name}" not in message:
                message = f"project {payload.project.name}: {message}"
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error=message)
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output=output)

    def _release(self, job: Job, payload: ReleaseJobPayload, ctx: JobContext) -> dict[str, Any]:
        api, store = _needed(ctx)
        project = payload.project.name
        artifacts = {artifact.name: _checked(artifact, project) for artifact in payload.artifacts}
        _alias_templates(payload)  # before the number: a bad template uses none up
        rendered = _render(ctx, payload, artifacts)
        ctx.heartbeat()
        release, created = _create_or_reuse(api, job, payload)
        number = release.release_number
        custom, skipped = _custom_aliases(payload, number)
        aliases = release_aliases(number, tag=payload.tag, branch=payload.branch, custom=custom,
                                  version=payload.trigger.version)
        release = _set_aliases(api, payload, release, aliases, reused=not created)
        if release.oci_digest is not None and _holds(store, payload, release.oci_digest):
            return _output(release, aliases, skipped, pushed=False)
        facts = ReleaseFacts(
            repository=payload.repository,
            project=project,
            commit=payload.commit,
            release_number=number,
            aliases=tuple(alias for alias, _ in aliases),
            trigger=_trigger(payload),
            artifacts=tuple(_reference(a) for a in artifacts.values()),
            created=payload.committed_at,
        )
        try:
            image = push_release_image(store, facts, resource_files(rendered.manifests))
        except ReleaseImageConflict as error:
            raise ReleaseError(f"project {project}: {error.message}", where=error.where,
                               details=error.details) from None
        ctx.heartbeat()
        release = s.Release.model_validate(api.set_release_image(
            payload.repository, project, str(number), oci_uri=image.reference, oci_digest=image.digest,
        ), extra="ignore")
        return _output(release, aliases, skipped, pushed=image.pushed)


def _payload(job: Job) -> ReleaseJobPayload:
    try:
        return ReleaseJobPayload.model_validate(job.payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(("payload", *(str(p) for p in first["loc"])))
        raise ConfigurationError(f"invalid release job: {first['msg']}", where=where) from None


def _needed(ctx: JobContext) -> tuple[BlockingReleaseApi, OciStore]:
    if ctx.releases is None or ctx.oci is None:
        missing = " and ".join(n for n in ("releases", "oci") if getattr(ctx, n) is None)
        raise ConfigurationError(f"the release handler needs the worker's {missing}", where="JobContext")
    return ctx.releases, ctx.oci


def _checked(artifact: ArtifactResult, project: str) -> ArtifactResult:
    """The artifact, if its primary location is pinned: a release never names a movable image."""
    if not artifact.primary.digest:
        raise ReleaseError(
            f"project {project}: artifact {artifact.name!r}: its primary location {artifact.primary.uri} "
            f"(publisher {artifact.primary.publisher or '?'}) has no digest, so a release cannot pin it",
            where=f"artifacts.{artifact.name}.published[0].digest",
        )
    return artifact


def _render(ctx: JobContext, payload: ReleaseJobPayload, artifacts: dict[str, ArtifactResult]) -> RenderedResources:
    renderer = ctx.registry.create(Family.RENDERER, RENDERER)
    request = RenderRequest(
        repository=payload.repository,
        project=payload.project.name,
        commit=payload.commit,
        resources={"resources": list(payload.resources)},
        artifact_references={
            name: ArtifactReference(published=a.published, tracking=a.tracking, tracking_digest=a.tracking_digest)
            for name, a in artifacts.items()
        },
        kubernetes_version=payload.kubernetes_version,
    )
    rendered: RenderedResources = renderer.render(request)  # a RenderError names project, resource, field
    if not rendered.manifests:
        raise ReleaseError(f"project {payload.project.name} has no deploy resources to release",
                           where="resources")
    return rendered


def _trigger(payload: ReleaseJobPayload) -> ReleaseTriggerInfo:
    if payload.tag:
        return ReleaseTriggerInfo(type=s.ReleaseTriggerType.TAG.value, tag=payload.tag)
    if payload.branch:
        return ReleaseTriggerInfo(type=s.ReleaseTriggerType.BRANCH_PUSH.value, branch=payload.branch)
    return ReleaseTriggerInfo(type=s.ReleaseTriggerType.MANUAL.value)


def _create_or_reuse(api: BlockingReleaseApi, job: Job, payload: ReleaseJobPayload) -> tuple[s.Release, bool]:
    """The commit's release, and whether this call created it."""
    trigger = _trigger(payload)
    try:
        body = s.ReleaseCreate.model_validate({
            "pipeline_run_id": job.run_id,
            "repository": payload.repository,
            "project": payload.project.name,
            "commit_sha": payload.commit,
            "artifacts": [
                {"name": a.name, "type": a.type, "tracking_oci_uri": a.tracking,
                 "tracking_oci_digest": a.tracking_digest, "primary_published_uri": a.primary.uri}
                for a in payload.artifacts
            ],
            "trigger": {"trigger_type": trigger.type, "branch": trigger.branch, "tag": trigger.tag},
        })
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if field == "pipeline_run_id":
            field = "job.run_id"
        raise ReleaseError(f"project {payload.project.name}: {field}: {first['msg']}", where=field) from None
    created = True
    try:
        answer = api.create_release(body.model_dump(mode="json", exclude_none=True))
    except ForgeError as error:
        if error.code != CONFLICT:
            raise
        # the commit already has its release (a redelivery, or the same commit run again): reuse it
        answer, created = api.get_release(payload.repository, payload.project.name, payload.commit), False
    release = s.Release.model_validate(answer, extra="ignore")
    if release.commit_sha != payload.commit:
        raise ReleaseError(f"project {payload.project.name}: the API returned release {release.release_number} "
                           f"of commit {release.commit_sha}, not {payload.commit}", where="commit")
    return release, created


def _alias_templates(payload: ReleaseJobPayload) -> None:
    try:
        check_templates(payload.aliases)
    except AliasTemplateError as error:
        raise ReleaseError(f"project {payload.project.name}: release.aliases[{error.index}]: {error}",
                           where=f"aliases.{error.index}") from None


def _custom_aliases(payload: ReleaseJobPayload, number: int) -> tuple[tuple[str, ...], tuple[Skipped, ...]]:
    """The project's alias templates filled in for release ``number``."""
    facts = AliasFacts(number=number, project=payload.project.name, commit=payload.commit, branch=payload.branch,
                       tag=payload.tag,
                       version=payload.trigger.version or (tag_version(payload.tag) if payload.tag else None))
    try:
        return expand_templates(payload.aliases, facts)
    except AliasTemplateError as error:
        raise ReleaseError(f"project {payload.project.name}: release.aliases[{error.index}]: {error}",
                           where=f"aliases.{error.index}") from None


def _set_aliases(
    api: BlockingReleaseApi,
    payload: ReleaseJobPayload,
    release: s.Release,
    aliases: tuple[tuple[str, str], ...],
    *,
    reused: bool,
) -> s.Release:
    """Point the aliases at the release. For a reused release (the same commit again), an alias
    that meanwhile names another release is left there: running an old commit again never takes
    ``stable`` back from a newer release."""
    present = {a.alias for a in release.aliases}
    for alias, kind in aliases:
        if alias in present or kind == s.AliasType.NUMERIC.value:
            continue  # the API made the number (and the tag) an alias when it created the release
        if reused and _elsewhere(api, payload, alias):
            continue
        release = s.Release.model_validate(api.set_alias(
            payload.repository, payload.project.name, alias, release=str(release.release_number), alias_type=kind,
        ), extra="ignore")
    return release


def _elsewhere(api: BlockingReleaseApi, payload: ReleaseJobPayload, alias: str) -> bool:
    try:
        api.get_release(payload.repository, payload.project.name, alias)
    except ForgeError as error:
        if error.code != NOT_FOUND:
            raise
        return False
    return True  # not among the release's own aliases (checked before), so it names another


def _reference(artifact: ArtifactResult) -> ReleaseArtifactRef:
    assert artifact.primary.digest is not None  # _checked
    return ReleaseArtifactRef(
        name=artifact.name,
        type=artifact.type,
        tracking=TrackingRef(reference=artifact.tracking, digest=artifact.tracking_digest),
        primary=PrimaryLocation(uri=artifact.primary.uri, digest=artifact.primary.digest),
    )


def _holds(store: OciStore, payload: ReleaseJobPayload, digest: str) -> bool:
    """Whether the store's tag of the commit points at the image the release records."""
    try:
        found = store.resolve(release_repository(payload.repository, payload.project.name), payload.commit)
    except OciNotFound:
        return False
    if found.digest != digest:
        raise ReleaseError(
            f"project {payload.project.name}: release image "
            f"{release_reference(store, payload.repository, payload.project.name, payload.commit)} is {found.digest}, "
            f"the release records {digest}",
            where="oci_digest",
        )
    return True


def _output(
    release: s.Release, aliases: tuple[tuple[str, str], ...], skipped: tuple[Skipped, ...], *, pushed: bool
) -> dict[str, Any]:
    return {
        "release_id": str(release.id),
        "release_number": release.release_number,
        "aliases": [alias for alias, _ in aliases],
        "oci_uri": release.oci_uri,
        "oci_digest": release.oci_digest,
        "pushed": pushed,
        "skipped_aliases": [{"template": s.template, "reason": s.reason} for s in skipped],
    }
