"""The names on the bus, from the spec, optionally behind a prefix (tests isolate with it).

| job type   | stream               | subject of one job                        | consumer filter              |
|------------|----------------------|-------------------------------------------|------------------------------|
| discovery  | pipeline-discovery   | pipeline.discovery.<run>                  | pipeline.discovery.>         |
| ci         | pipeline-tasks       | pipeline.tasks.<run>.<task>               | pipeline.tasks.>             |
| artifact   | pipeline-artifacts   | pipeline.artifacts.<run>.<artifact>       | pipeline.artifacts.>         |
| release    | pipeline-releases    | pipeline.releases.<run>.release           | pipeline.releases.*.release  |
| deployment | pipeline-releases    | pipeline.releases.<run>.deployment        | pipeline.releases.*.deployment |

Release and deployment jobs share ``pipeline-releases`` (as the spec says); a work-queue stream
allows several consumers only when their filters do not overlap, so the job type is the last
token of the subject and each worker type has its own consumer (``worker-<type>``).

Jobs that exhausted their deliveries, and messages no worker can read, are copied to
``pipeline.deadletter.<type>`` and kept in the ``pipeline-deadletter`` stream (limits retention,
so they stay for inspection) before they are removed from the work queue.

A cancelled run is announced on ``pipeline.control.cancel.<run>`` (core NATS, in no stream):
every worker running one of its jobs stops it and records it cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.jobs import JOB_TYPES, subject_token
from forge_core.domain.models import Job
from forge_core.settings.nats import NatsSettings

STREAMS: dict[str, str] = {
    "discovery": "pipeline-discovery",
    "ci": "pipeline-tasks",
    "artifact": "pipeline-artifacts",
    "release": "pipeline-releases",
    "deployment": "pipeline-releases",
}
_SUBJECT_ROOTS: dict[str, str] = {
    "pipeline-discovery": "pipeline.discovery",
    "pipeline-tasks": "pipeline.tasks",
    "pipeline-artifacts": "pipeline.artifacts",
    "pipeline-releases": "pipeline.releases",
}
DEAD_LETTER_STREAM = "pipeline-deadletter"
DEAD_LETTER_ROOT = "pipeline.deadletter"
CANCEL_ROOT = "pipeline.control.cancel"
"""Core NATS (in no stream): ``<root>.<run>`` tells every worker to cancel that run's jobs."""


def check_job_type(job_type: str) -> str:
    if job_type not in JOB_TYPES:
        raise ConfigurationError(
            f"unknown job type {job_type!r}; job types: {', '.join(JOB_TYPES)}", where="job type"
        )
    return job_type


@dataclass(frozen=True)
class Topology:
    """Stream, subject and consumer names for one prefix."""

    prefix: str = ""

    @classmethod
    def from_settings(cls, settings: NatsSettings) -> Topology:
        return cls(settings.prefix)

    def _name(self, name: str) -> str:
        return f"{self.prefix}-{name}" if self.prefix else name

    def _subject(self, subject: str) -> str:
        return f"{self.prefix}.{subject}" if self.prefix else subject

    def streams(self) -> dict[str, str]:
        """Every work-queue stream name → the subjects it holds."""
        return {self._name(s): self._subject(f"{root}.>") for s, root in _SUBJECT_ROOTS.items()}

    def stream(self, job_type: str) -> str:
        return self._name(STREAMS[check_job_type(job_type)])

    def consumer(self, job_type: str) -> str:
        return self._name(f"worker-{check_job_type(job_type)}")

    def filter_subject(self, job_type: str) -> str:
        root = _SUBJECT_ROOTS[STREAMS[check_job_type(job_type)]]
        if root == "pipeline.releases":
            return self._subject(f"{root}.*.{job_type}")
        return self._subject(f"{root}.>")

    def subject(self, job: Job) -> str:
        """The subject one job is published on."""
        job_type = check_job_type(job.type)
        run = subject_token(job.run_id, "run_id")
        root = _SUBJECT_ROOTS[STREAMS[job_type]]
        if job_type == "discovery":
            return self._subject(f"{root}.{run}")
        if job_type in ("release", "deployment"):
            return self._subject(f"{root}.{run}.{job_type}")
        key = "task" if job_type == "ci" else "artifact"
        entity = job.payload.get(key)
        entity_id = entity.get("id") if isinstance(entity, dict) and "id" in entity else None
        entity_id = entity_id or job.payload.get(f"{key}_id")  # an artifact job: payload.artifact_id
        if not isinstance(entity_id, str):
            raise ConfigurationError(
                f"a {job_type} job names its {key}: payload.{key}.id or payload.{key}_id", where="payload"
            )
        return self._subject(f"{root}.{run}.{subject_token(entity_id, f'payload.{key}.id')}")

    @property
    def dead_letter_stream(self) -> str:
        return self._name(DEAD_LETTER_STREAM)

    def dead_letter_subject(self, job_type: str) -> str:
        return self._subject(f"{DEAD_LETTER_ROOT}.{job_type}")

    @property
    def dead_letter_subjects(self) -> str:
        return self._subject(f"{DEAD_LETTER_ROOT}.>")

    def cancel_subject(self, run_id: str) -> str:
        """Where a run's cancellation is announced (``*``: every run's, what workers listen to)."""
        return self._subject(f"{CANCEL_ROOT}.{run_id if run_id == '*' else subject_token(run_id, 'run_id')}")

    def max_deliveries_advisory(self, job_type: str) -> str:
        """The server's advisory when a job of this type ran out of deliveries."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream(job_type)}.{self.consumer(job_type)}"
