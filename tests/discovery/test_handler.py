"""The ``discovery`` job handler: a worker's view, through its git cache."""

from __future__ import annotations

from pathlib import Path

from forge_core.builtin.discovery import DiscoveryHandler
from forge_core.domain.models import Job, JobStatus
from forge_core.domain.plan import DiscoveryDocument
from forge_core.plugin.family import Family
from forge_core.ports.protocols import JobContext
from forge_core.testing.contracts import JobHandlerContract


def test_discovery_job_returns_the_document(host, example: Path, tmp_path: Path) -> None:
    assert "discovery" in host.registry.names(Family.JOB_HANDLER)
    handler = host.registry.create(Family.JOB_HANDLER, "discovery")
    ctx = JobContext(cache_dir=tmp_path / "worker", registry=host.registry)
    job = Job(id="j1", type="discovery", run_id="r1", payload={"repository": str(example), "tag": "api/v1.2.0"})
    result = handler.handle(job, ctx)
    assert result.status is JobStatus.SUCCESS, result.error
    document = DiscoveryDocument.model_validate(result.output)
    assert [p.project.name for p in document.projects if p.release.release] == ["api"]
    assert any((tmp_path / "worker" / "git").iterdir())
    again = handler.handle(job.model_copy(update={"id": "j2"}), ctx)
    assert DiscoveryDocument.model_validate(again.output).cached == 4


def test_broken_configuration_fails_the_job_with_the_document(host, make_repo, tmp_path: Path) -> None:
    repo = make_repo({".forge/repo.cue": 'package repo\nforgeVersion: "1"\n'})
    ctx = JobContext(cache_dir=tmp_path / "worker", registry=host.registry)
    job = Job(id="j", type="discovery", run_id="r", payload={"repository": str(repo)})
    result = DiscoveryHandler().handle(job, ctx)
    assert result.status is JobStatus.FAILED
    assert ".forge/repo.cue:2" in (result.error or "")
    assert result.output["diagnostics"]


def test_payload_without_repository(host, tmp_path: Path) -> None:
    ctx = JobContext(cache_dir=tmp_path, registry=host.registry)
    result = DiscoveryHandler().handle(Job(id="j", type="discovery", run_id="r"), ctx)
    assert result.status is JobStatus.FAILED
    assert "repository" in (result.error or "")


class TestDiscoveryHandlerContract(JobHandlerContract):
    plugin_id = "core.discovery"
    builtin = True
    names = ("discovery",)
