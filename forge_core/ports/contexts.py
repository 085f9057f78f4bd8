"""What the platform hands a plugin when it calls one: typed contexts holding exactly what the
role may use.

A job handler gets a :class:`JobContext` (the recorder, object storage, the git cache, the
secret resolver, a log sink, a heartbeat, a stop event); a step runner, producer or publisher an
:class:`ExecutionContext` (its folder, environment, its own resolved secrets, a log sink, a stop
event). Neither ever holds the worker's whole settings, nor another target's secrets.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import datetime

    from forge_core.domain.models import ProducedArtifact, PublishedLocation, SecretRef
    from forge_core.domain.secrets import ResolvedSecrets
    from forge_core.plugin.registry import Registry
    from forge_core.ports.oci import OciStore
    from forge_core.ports.platform import BlockingDeploymentReporter, BlockingReleaseApi, BlockingRunRecorder
    from forge_core.ports.storage import ObjectStore
    from forge_core.settings.cue import CueSettings


def _discard(_line: str) -> None:
    return None


def _nothing() -> None:
    return None


class GitMirrors(Protocol):
    """The worker's cache of bare git mirrors, one per repository URL."""

    def open(self, url: str, rev: str) -> tuple[Any, str]:
        """A reader of the mirror of ``url`` holding ``rev`` (fetched when missing), and the
        commit id ``rev`` names."""
        ...


class SecretResolver(Protocol):
    """Resolves secret references through the registered secret providers."""

    def resolve(self, refs: Mapping[str, SecretRef], *, owner: str) -> ResolvedSecrets:
        """Exactly the values of ``refs`` (by the same names); a reference that cannot be resolved
        raises SecretError naming ``owner`` (the target or step), the provider, the secret name
        and the key — never a value."""
        ...


@dataclass(frozen=True)
class TrackingRequest:
    """What an artifact's tracking image records: the artifact as produced (with its digest), the
    platform's repository (``owner/name``), the run, the producer, the times, where it was
    published or would be (planned), the git ref; ``secrets`` are masked out of the provenance;
    ``attach_to`` are published images (location, registry credentials or None) that list the
    tracking image among their referrers (containers)."""

    artifact: ProducedArtifact
    repository: str
    run_id: str
    producer: str
    producer_settings: Mapping[str, Any]
    started_at: datetime
    finished_at: datetime
    published: tuple[PublishedLocation, ...] = ()
    planned: tuple[PublishedLocation, ...] = ()
    ref: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    attach_to: tuple[tuple[PublishedLocation, tuple[str, str] | None], ...] = field(default=(), repr=False)
    produced_at: datetime | None = None
    """When the producer finished (the SBOM's time); None: ``finished_at``."""
    head_start: Future[bytes] | None = field(default=None, repr=False, compare=False)
    """The SBOM, if :meth:`PreparingTracker.begin` started it while the artifact was published."""


class ArtifactTracker(Protocol):
    """Writes tracking images: the worker's tracking store (``FORGE_TRACKING__REGISTRY``, else the
    embedded OCI layout) and signing key."""

    def track(self, request: TrackingRequest) -> tuple[str, str]:
        """Push the tracking image of ``request`` (attach it where asked); its reference and digest."""
        ...


@runtime_checkable
class PreparingTracker(ArtifactTracker, Protocol):
    """A tracker that can start on what depends only on the produced artifact (its SBOM, which
    reads every file of an image) while the publishers push it, so a tracking image costs little
    beyond the push. The artifact handler passes the result back as ``TrackingRequest.head_start``."""

    def begin(self, artifact: ProducedArtifact, produced_at: datetime) -> Future[bytes]: ...


@dataclass(frozen=True)
class ExecutionContext:
    """Where and how a step, producer or publisher runs.

    ``secrets`` hold the resolved values of this call's own references (a publisher: its
    target's credentials; a step: its secrets) for the duration of the call; whoever stores
    ``log`` output masks them. ``timeout`` is in seconds (None: no limit of the caller's).
    ``stop`` is set when the work is withdrawn (its job released or cancelled): stop at once,
    return a cancelled outcome. ``storage`` and ``oci`` are given to the roles that store
    objects or images (None elsewhere).
    """

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    log: Callable[[str], None] = _discard
    timeout: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    heartbeat: Callable[[], None] = _nothing
    storage: ObjectStore | None = None
    oci: OciStore | None = None
    """The OCI store (tracking and release images); typed by the OCI store port when it lands."""


LEGACY_SERVICES = ("recorder", "storage")
"""The entries ``JobContext.services`` still carries for handlers written against 0.1."""


class _DeprecatedServices(Mapping[str, object]):
    """The 0.1 string-keyed service map, read-only: each read warns and names the typed field."""

    def __init__(self, entries: Mapping[str, object]) -> None:
        self._entries = dict(entries)

    def _warn(self) -> None:
        warnings.warn(
            "JobContext.services is deprecated: use the typed fields "
            "(ctx.recorder, ctx.storage, ctx.git, ctx.secrets, ctx.step_secrets); it no longer "
            "carries the settings nor the worker's secrets",
            DeprecationWarning,
            stacklevel=3,
        )

    def __getitem__(self, key: str) -> object:
        self._warn()
        return self._entries[key]

    def get(self, key: str, default: Any = None) -> Any:
        self._warn()
        return self._entries.get(key, default)

    def __contains__(self, key: object) -> bool:
        self._warn()
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        self._warn()
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<deprecated JobContext.services: {sorted(self._entries)}>"


@dataclass(frozen=True)
class JobContext:
    """What a worker gives a job handler.

    ``cache_dir``: the handler's cache folder; ``registry``: the loaded plugins; ``log``: a log
    sink; ``heartbeat``: call it while a long job runs (it extends the job's ack deadline);
    ``stop``: set when the worker withdraws the job (shutdown past its grace) or it is cancelled
    (then ``cancel`` is set too).
    ``recorder`` records run, task and step states through the Platform API; ``storage`` holds
    logs and results; ``git`` is the worker's mirror cache; ``secrets`` resolves the secret
    references of the targets and steps the job runs (build their ExecutionContext from what it
    returns); ``step_secrets`` are the operator's secrets for every step
    (``FORGE_WORKER__SECRETS``), never for producers or publishers; ``cue`` says how to evaluate
    CUE; ``tracker`` writes tracking images. ``services`` is the deprecated 0.1 map (``recorder`` and ``storage`` only).
    """

    cache_dir: Path
    registry: Registry
    log: Callable[[str], None] = _discard
    heartbeat: Callable[[], None] = _nothing
    services: Mapping[str, object] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    recorder: BlockingRunRecorder | None = None
    storage: ObjectStore | None = None
    git: GitMirrors | None = None
    secrets: SecretResolver | None = None
    step_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    cue: CueSettings | None = None
    oci: OciStore | None = None
    """The platform's OCI store (tracking images); a ``release`` job's is the release store
    (``release.registry``, else the embedded layout)."""
    deployments: BlockingDeploymentReporter | None = None
    """Deployment states through the API (the ``deployment`` job's pending → active | failed)."""
    tracker: ArtifactTracker | None = None
    """Writes tracking images (the ``artifact`` handler's; None on other workers)."""
    releases: BlockingReleaseApi | None = None
    """The Platform API's release calls (the ``release`` job creates releases, aliases, images)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set together with ``stop`` when the job is cancelled (its run was): record what it stopped
    as cancelled. ``stop`` alone means withdrawn (the worker stops and hands the job back for
    redelivery): record no final status, the redelivery runs the work again."""

    def __post_init__(self) -> None:
        given = {} if isinstance(self.services, _DeprecatedServices) else dict(self.services)
        if given:
            # A 0.1 caller building the context the old way: take what it meant, typed.
            warnings.warn(
                "JobContext(services=...) is deprecated: pass recorder=, storage= and "
                "step_secrets= instead",
                DeprecationWarning,
                stacklevel=3,
            )
            if self.recorder is None and "recorder" in given:
                object.__setattr__(self, "recorder", given["recorder"])
            if self.storage is None and "storage" in given:
                object.__setattr__(self, "storage", given["storage"])
            if not self.step_secrets and isinstance(given.get("secrets"), Mapping):
                object.__setattr__(self, "step_secrets", dict(given["secrets"]))  # type: ignore[call-overload]
        legacy = {"recorder": self.recorder, "storage": self.storage}
        object.__setattr__(
            self, "services", _DeprecatedServices({k: v for k, v in legacy.items() if v is not None})
        )
