"""The ``artifact`` job handler: one artifact of a releasing project, produced and published.

In a checkout of the commit (the ``ci`` handler's, :mod:`forge_core.builtin.workspace`) the
producer named by the artifact's ``producer`` (which must declare the artifact's type) builds it,
its log in ``logs/<run>/artifact-<artifact_id>/produce.log``; the outputs it returns (files, an
OCI layout reference, a digest) must exist. Then, for each target (a publisher of ``repo.cue``),
in order: ``publish`` when the job says so, else ``plan`` (a publisher without ``plan`` is
reported "cannot plan; use --publish", which fails nothing) — each with its own log and only its
own target's credentials. One failed target fails the artifact, naming the target; the others
still run. When every target succeeded, the artifact's tracking image is written (the worker's
tracker: ``<tracking store>/<repository name>/<project>/<artifact>:sha-<commit>``, for a
container also attached to each published image). The outcome is recorded on the run through the API
(``PUT /v1/runs/{run}/artifacts/{project}/{artifact}``), replacing the previous record.

Idempotent: publishers make a same-digest publish a no-op, and a target the API's record says
already holds this digest is not published again, so a re-run publishes only what failed. Every
error passes through the masking of the secrets resolved for the job before it is logged,
recorded or returned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forge_core.builtin.workspace import commit_checkout, needed
from forge_core.domain.errors import ConfigurationError, ForgeError
from forge_core.domain.jobs import ArtifactJobPayload
from forge_core.domain.models import Job, JobResult, JobStatus, ProducedArtifact, PublishedLocation, PublishTarget
from forge_core.domain.oci import REGISTRY_TOKEN_USERNAME
from forge_core.domain.secrets import LoginError, ResolvedSecrets, login_from_secrets, mask_secrets
from forge_core.plugin.family import Family
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import JobHandlerRegistrar
from forge_core.ports.contexts import ExecutionContext, JobContext, PreparingTracker, TrackingRequest
from forge_core.ports.platform import BlockingRunRecorder
from forge_core.ports.protocols import PlanningPublisher, Producer, Publisher
from forge_core.ports.storage import ObjectStore, log_key
from forge_core.services import schemas as s
from forge_core.services.secrets import execution_context

CANNOT_PLAN = "cannot plan; use --publish"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_LAYOUT_PREFIXES = ("oci-layout:", "oci:")


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add(
        "artifact", "forge_core.builtin.artifact:ArtifactHandler",
        description="Produce one artifact in a checkout and publish (or plan) it to each of its targets",
    )


class ArtifactError(ForgeError):
    """An artifact could not be produced: its producer failed or did not write an output."""

    code = "artifact_failed"
    exit_code = 1


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ForgeError) else f"{type(exc).__name__}: {exc}"


def parse_payload(job: Job) -> ArtifactJobPayload:
    try:
        return ArtifactJobPayload.model_validate(job.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "payload." + ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"invalid artifact job: {first['msg']}", where=where) from None


class _Job:
    """One artifact job under way: what it records, logs and masks."""

    def __init__(self, job: Job, payload: ArtifactJobPayload, ctx: JobContext) -> None:
        self.job, self.payload, self.ctx = job, payload, ctx
        self.recorder: BlockingRunRecorder
        self.storage: ObjectStore
        self.recorder, self.storage = needed(ctx, "artifact")
        self.spec, self.project = payload.artifact.spec, payload.artifact.project
        self.where = f"artifact {self.spec.name!r} of project {self.project.name!r}"
        self.secrets: list[str] = list(ctx.step_secrets.values())  # every value this job resolved
        # target name -> (where it went or would go, the target's credentials): for the tracking image
        self.locations: dict[str, tuple[PublishedLocation, ResolvedSecrets]] = {}
        found = self.recorder.artifact_record(job.run_id, self.project.name, self.spec.name)
        self.previous = s.ArtifactRecord.model_validate(found) if found else None

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.secrets)

    def log_key(self, name: str) -> str:
        return log_key(self.job.run_id, f"artifact-{self.payload.artifact_id}", name)

    def record(self, update: s.ArtifactRecordUpdate) -> None:
        body = update.model_copy(update={"error": self.mask(update.error) if update.error else None})
        self.recorder.record_artifact(
            self.job.run_id, self.project.name, self.spec.name, body.model_dump(mode="json")
        )

    def context(self, resolved: ResolvedSecrets, workdir: Path, log: Any) -> ExecutionContext:
        return execution_context(
            resolved, workdir=workdir, log=log, env=self.payload.env,
            stop=self.ctx.stop, heartbeat=self.ctx.heartbeat, storage=self.storage, oci=self.ctx.oci,
        )


class ArtifactHandler:
    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        run = _Job(job, parse_payload(job), ctx)
        previous = run.previous  # what is out there stays recorded until this job knows better
        base = s.ArtifactRecordUpdate(
            type=run.spec.type, status=s.ArtifactStatus.RUNNING, digest=previous.digest if previous else None,
            targets=previous.targets if previous else [],
        )
        run.record(base)
        started = datetime.now(UTC)
        try:
            where = "payload.artifact.project.path"
            with commit_checkout(ctx, job, run.payload.source, run.project.path, where) as checkout:
                workdir = checkout.root  # producers read <workdir>/<project path>, as docs/hooks.md says
                produced = self._produce(run, workdir)
                produced_at = datetime.now(UTC)
                tracker = ctx.tracker  # the SBOM reads only what was produced: it runs while targets publish
                head_start = tracker.begin(produced, produced_at) if isinstance(tracker, PreparingTracker) else None
                targets = [self._target(run, t, produced, workdir) for t in run.payload.artifact.publishers]
                failed = [t for t in targets if t.outcome is s.TargetOutcome.FAILED]
                summary = "; ".join(t.error or f"target {t.publisher!r} failed" for t in failed) or None
                tracking: tuple[str | None, str | None] = (None, None)
                if not failed:  # while the checkout holds what was produced (a container's SBOM reads it)
                    try:
                        tracking = self._track(run, produced, targets, started, produced_at, head_start)
                    except Exception as exc:  # the artifact is out there, but not accounted for: a failure
                        summary = run.mask(f"tracking image: {_describe(exc)}")
        except Exception as exc:  # recorded whatever it was: the record must not stay "running"
            error = run.mask(_describe(exc))
            run.record(base.model_copy(update={"status": s.ArtifactStatus.FAILED, "error": error}))
            return JobResult(job_id=job.id, status=JobStatus.FAILED, error=error)
        published = [t for t in targets if t.outcome is s.TargetOutcome.PUBLISHED]
        record = s.ArtifactRecordUpdate(
            type=run.spec.type,
            status=s.ArtifactStatus.FAILED if summary else s.ArtifactStatus.SUCCESS,
            error=summary,
            digest=produced.digest,
            tracking_oci_uri=tracking[0],
            tracking_oci_digest=tracking[1],
            primary_published_uri=published[0].uri if published else None,
            targets=targets,
        )
        run.record(record)
        output = {"record": record.model_dump(mode="json"), "files": [str(f) for f in produced.files],
                  "reference": produced.reference}
        if summary:
            return JobResult(job_id=job.id, status=JobStatus.FAILED, output=output, error=run.mask(summary))
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output=output)

    # --- tracking -------------------------------------------------------------------------------

    def _track(
        self, run: _Job, produced: ProducedArtifact, targets: list[s.ArtifactTarget], started: datetime,
        produced_at: datetime, head_start: Future[bytes] | None,
    ) -> tuple[str | None, str | None]:
        """The tracking image's reference and digest (None when the worker writes none). A re-run
        that published nothing new keeps the one recorded: tracking images are immutable."""
        tracker, previous = run.ctx.tracker, run.previous
        if tracker is None:
            return None, None
        if previous is not None and previous.tracking_oci_uri and previous.digest == produced.digest and [
            (t.publisher, t.outcome) for t in previous.targets
        ] == [(t.publisher, t.outcome) for t in targets]:
            return previous.tracking_oci_uri, previous.tracking_oci_digest
        def where(target: s.ArtifactTarget) -> PublishedLocation:  # a target skipped as done: as recorded
            found = run.locations.get(target.publisher)
            if found is not None:
                return found[0]
            return PublishedLocation(publisher=target.publisher, type=target.type, uri=target.uri or "",
                                     digest=target.digest)

        published = tuple(where(t) for t in targets if t.outcome is s.TargetOutcome.PUBLISHED)
        planned = tuple(where(t) for t in targets if t.outcome is s.TargetOutcome.PLANNED)
        images = produced.type == "container" and run.payload.publish  # published images list it as a referrer
        attach = tuple(
            (location, _login(secrets))
            for location, secrets in (run.locations[p.publisher] for p in targets if p.publisher in run.locations)
            if images and {"registry", "repository"} <= set(location.metadata)
        )
        source = run.payload.source
        request = TrackingRequest(
            artifact=produced, repository=source.identity or f"local/{Path(source.repository).name or 'repository'}",
            run_id=run.job.run_id, producer=run.spec.producer, producer_settings=run.spec.producer_settings,
            started_at=started, finished_at=datetime.now(UTC), published=published, planned=planned,
            ref=f"refs/tags/{source.tag}" if source.tag else (f"refs/heads/{source.branch}" if source.branch else None),
            secrets=tuple(run.secrets), attach_to=attach, produced_at=produced_at, head_start=head_start,
        )
        reference, digest = tracker.track(request)
        run.ctx.log(f"tracking image {reference} ({digest})")
        return reference, digest

    # --- producing ------------------------------------------------------------------------------

    def _produce(self, run: _Job, workdir: Path) -> ProducedArtifact:
        spec, ctx = run.spec, run.ctx
        registration = ctx.registry.get(Family.PRODUCER, spec.producer)
        types = tuple(registration.options.get("artifact_types", ()))
        if spec.type not in types:
            raise ConfigurationError(
                f"producer {spec.producer!r} makes {', '.join(types) or 'no type'}, not {spec.type!r}",
                where=run.where,
            )
        with run.storage.open_log(run.log_key("produce"), tuple(run.secrets)) as sink:
            try:
                producer: Producer = registration.create()
                made = producer.produce(spec, run.project, run.payload.source.commit, run.context(
                    ResolvedSecrets(), workdir, sink.write_line
                ))
            except Exception as exc:
                message = run.mask(f"producer {spec.producer!r} failed: {_describe(exc)}")
                sink.write_line(message)
                raise ArtifactError(message, where=run.where) from None
            try:
                produced = _checked(made, run, workdir)
            except ArtifactError as exc:
                sink.write_line(str(exc))
                raise
            sink.write_line(f"produced {spec.name}: {produced.digest}")
        return produced

    # --- publishing -----------------------------------------------------------------------------

    def _target(self, run: _Job, target: PublishTarget, produced: ProducedArtifact, workdir: Path) -> s.ArtifactTarget:
        def outcome(kind: s.TargetOutcome, **fields: Any) -> s.ArtifactTarget:
            return s.ArtifactTarget(publisher=target.name, type=target.type, outcome=kind, **fields)

        def failed(message: str) -> s.ArtifactTarget:
            return outcome(s.TargetOutcome.FAILED, error=run.mask(f"target {target.name!r} ({target.type}): {message}"))

        if run.ctx.stop.is_set():
            return failed("not published: the job was withdrawn")
        done = _published(run.previous, target.name, produced.digest) if run.payload.publish else None
        if done is not None:
            run.ctx.log(f"target {target.name}: already holds {produced.digest}; not published again")
            return done
        try:
            registration = run.ctx.registry.get(Family.PUBLISHER, target.type)
            accepted = tuple(registration.options.get("artifact_types", ()))
            if accepted and run.spec.type not in accepted:
                return failed(f"publisher {target.type!r} takes {', '.join(accepted)}, not {run.spec.type!r}")
            publisher: Publisher = registration.create()
        except ForgeError as exc:
            return failed(str(exc))
        if not run.payload.publish:
            if not isinstance(publisher, PlanningPublisher):
                return outcome(s.TargetOutcome.NOT_PLANNED, note=CANNOT_PLAN)
            try:
                planned = publisher.plan(produced, target)
            except Exception as exc:
                return failed(_describe(exc))
            if isinstance(planned, PublishedLocation):
                run.locations[target.name] = (planned, ResolvedSecrets())
            return _location(outcome, s.TargetOutcome.PLANNED, planned, target, failed)
        try:
            resolved = self._credentials(run, target)
        except ForgeError as exc:
            return failed(str(exc))
        with run.storage.open_log(run.log_key(f"publish-{target.name}"), tuple(run.secrets)) as sink:
            try:
                location = publisher.publish(produced, target, run.context(resolved, workdir, sink.write_line))
            except Exception as exc:
                result = failed(_describe(exc))
                sink.write_line(result.error or "")
                return result
        if isinstance(location, PublishedLocation):
            run.locations[target.name] = (location, resolved)
        return _location(outcome, s.TargetOutcome.PUBLISHED, location, target, failed)

    def _credentials(self, run: _Job, target: PublishTarget) -> ResolvedSecrets:
        if not target.credentials:
            return ResolvedSecrets()
        if run.ctx.secrets is None:
            raise ConfigurationError(
                f"target {target.name!r} has credentials but the worker gave no secret resolver",
                where="JobContext.secrets",
            )
        resolved = run.ctx.secrets.resolve(target.credentials, owner=f"target {target.name!r}")
        run.secrets.extend(resolved.values.values())
        return resolved


def _login(secrets: ResolvedSecrets) -> tuple[str, str] | None:
    """The registry login of a docker target's credentials (the publisher's rule), to attach the
    tracking image where the image went; malformed ones already failed the publish."""
    try:
        return login_from_secrets(secrets.values, token_username=REGISTRY_TOKEN_USERNAME)
    except LoginError:
        return None


def _published(previous: s.ArtifactRecord | None, publisher: str, digest: str | None) -> s.ArtifactTarget | None:
    if previous is None or previous.digest != digest or not previous.published(publisher, previous.digest):
        return None
    return next(t for t in previous.targets if t.publisher == publisher and t.outcome is s.TargetOutcome.PUBLISHED)


def _location(
    outcome: Callable[..., s.ArtifactTarget], kind: s.TargetOutcome, location: object, target: PublishTarget,
    failed: Callable[[str], s.ArtifactTarget],
) -> s.ArtifactTarget:
    if not isinstance(location, PublishedLocation):
        return failed(f"publisher {target.type!r} returned {type(location).__name__}, not a PublishedLocation")
    return outcome(kind, uri=location.uri, digest=location.digest)


def _checked(made: object, run: _Job, workdir: Path) -> ProducedArtifact:
    """The producer's result with absolute file paths and a digest, once every output it names
    exists; else an error naming the output."""
    spec = run.spec
    producer = f"producer {spec.producer!r}"
    if not isinstance(made, ProducedArtifact):
        raise ArtifactError(f"{producer} returned {type(made).__name__}, not a ProducedArtifact", where=run.where)
    if made.type != spec.type:
        raise ArtifactError(f"{producer} made a {made.type!r} artifact, not {spec.type!r}", where=run.where)
    files = tuple(f if f.is_absolute() else workdir / f for f in made.files)
    for declared, path in zip(made.files, files, strict=True):
        if not path.is_file():
            raise ArtifactError(f"{producer} did not write its output file {str(declared)!r}", where=run.where)
    if made.reference is not None:
        layout = next((made.reference[len(p):] for p in _LAYOUT_PREFIXES if made.reference.startswith(p)), None)
        if layout is not None:
            folder = Path(re.sub(r":[^:/]*$", "", layout) if not Path(layout).exists() else layout)
            if not (folder / "oci-layout").is_file():
                raise ArtifactError(
                    f"{producer} did not write its output image layout {made.reference!r} (no oci-layout file)",
                    where=run.where,
                )
    if not files and made.reference is None:
        raise ArtifactError(f"{producer} returned no output (no files, no reference)", where=run.where)
    if made.digest is not None and not _DIGEST.match(made.digest):
        raise ArtifactError(f"{producer} returned digest {made.digest!r}, not '<algorithm>:<hex>'", where=run.where)
    digest = made.digest or _files_digest(files)
    if digest is None:
        raise ArtifactError(f"{producer} returned reference {made.reference!r} without its digest", where=run.where)
    return made.model_copy(update={
        "files": files, "digest": digest, "name": spec.name, "project": run.project.name,
        "commit": run.payload.source.commit,
        "metadata": {**_release_metadata(run), **made.metadata},
    })


def _files_digest(files: tuple[Path, ...]) -> str | None:
    """One file: its SHA-256; several: the SHA-256 of their sorted ``<name> <sha256>`` lines."""
    if not files:
        return None
    sums = sorted((f.name, _sha256(f)) for f in files)
    if len(sums) == 1:
        return f"sha256:{sums[0][1]}"
    return "sha256:" + hashlib.sha256("".join(f"{n} {h}\n" for n, h in sums).encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _release_metadata(run: _Job) -> dict[str, Any]:
    """What publishers name a release by (the docker publisher's version tag)."""
    source = run.payload.source
    found = {"tag": source.tag, "branch": source.branch, "version": run.payload.version}
    return {k: v for k, v in found.items() if v}
