"""Each registration hook, exercised by one plugin that implements them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from forge_core.domain.models import (
    ArtifactSpec,
    Job,
    JobResult,
    JobStatus,
    ProducedArtifact,
    ProjectRef,
    PublishedLocation,
    PublishTarget,
    RenderedResources,
    RenderRequest,
    SourceEvent,
    StepOutcome,
    StepSpec,
    StepStatus,
    TriggerDecision,
    TriggerSpec,
)
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, PluginInfo
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import (
    ArtifactTypeRegistrar,
    JobHandlerRegistrar,
    ProducerRegistrar,
    PublisherRegistrar,
    RendererRegistrar,
    StepRunnerRegistrar,
    TriggerRegistrar,
)
from forge_core.ports.protocols import ExecutionContext, JobContext


class Echo:
    """One object satisfying every protocol, so each registration can be created and called."""

    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        return StepOutcome(status=StepStatus.SUCCESS, exit_code=0, message=step.target)

    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        return ProducedArtifact(name=spec.name, type=spec.type, project=project.name, commit=commit)

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        return PublishedLocation(publisher=target.name, type=target.type, uri=f"echo://{artifact.name}")

    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        return JobResult(job_id=job.id, status=JobStatus.SUCCESS, output={"echo": job.payload})

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        return TriggerDecision(fired=True, reason="echo", trigger=spec.type)

    def render(self, request: RenderRequest) -> RenderedResources:
        return RenderedResources(manifests=(), text="")


class KitchenSink:
    @hookimpl
    def forge_register_artifact_types(self, register: ArtifactTypeRegistrar) -> None:
        register.add("helm-chart", description="A packaged Helm chart")

    @hookimpl
    def forge_register_producers(self, register: ProducerRegistrar) -> None:
        register.add("echo-producer", Echo, artifact_types=["helm-chart"])

    @hookimpl
    def forge_register_publishers(self, register: PublisherRegistrar) -> None:
        register.add("echo-publisher", Echo)
        register.add("echo-lazy", "tests_kitchen_sink_missing:Publisher")

    @hookimpl
    def forge_register_step_runners(self, register: StepRunnerRegistrar) -> None:
        register.add("echo-step", Echo)

    @hookimpl
    def forge_register_job_handlers(self, register: JobHandlerRegistrar) -> None:
        register.add("echo-job", Echo)

    @hookimpl
    def forge_register_triggers(self, register: TriggerRegistrar) -> None:
        register.add("echo-trigger", Echo)

    @hookimpl
    def forge_register_renderers(self, register: RendererRegistrar) -> None:
        register.add("echo-renderer", Echo)


@pytest.fixture
def sink(forge_register: Callable[..., PluginInfo]) -> PluginInfo:
    return forge_register(KitchenSink(), "acme-sink", distribution="acme-forge-sink")


def test_every_registration_hook_is_called_with_its_registrar(sink: PluginInfo) -> None:
    assert sink.registrations == {
        "artifact_type": ["helm-chart"],
        "producer": ["echo-producer"],
        "publisher": ["echo-lazy", "echo-publisher"],
        "step_runner": ["echo-step"],
        "job_handler": ["echo-job"],
        "trigger": ["echo-trigger"],
        "renderer": ["echo-renderer"],
    }
    assert len(sink.hooks) == 7


def test_forge_register_producers_keeps_the_artifact_types(forge_host: PluginHost, sink: PluginInfo) -> None:
    registration = forge_host.get(Family.PRODUCER, "echo-producer")
    assert registration.options["artifact_types"] == ("helm-chart",)
    assert registration.owner.distribution == "acme-forge-sink"


def test_registered_implementations_are_created_and_called(
    forge_host: PluginHost, sink: PluginInfo, tmp_path: Path
) -> None:
    ctx = ExecutionContext(workdir=tmp_path)
    project = ProjectRef(name="api", path="services/api")
    step = forge_host.create(Family.STEP_RUNNER, "echo-step").run(
        StepSpec(name="s", action="echo-step", target="+t"), project, ctx
    )
    assert step.message == "+t"
    job = forge_host.create(Family.JOB_HANDLER, "echo-job").handle(
        Job(id="j", type="echo-job", run_id="r", payload={"x": 1}),
        JobContext(cache_dir=tmp_path, registry=forge_host.registry),
    )
    assert job.output == {"echo": {"x": 1}}
    location = forge_host.create(Family.PUBLISHER, "echo-publisher").publish(
        ProducedArtifact(name="chart", type="helm-chart", project="api", commit="c"),
        PublishTarget(name="charts", type="echo-publisher"),
        ctx,
    )
    assert location.uri == "echo://chart"


def test_lazy_registration_imports_only_when_created(forge_host: PluginHost, sink: PluginInfo) -> None:
    import sys

    assert "tests_kitchen_sink_missing" not in sys.modules
    registration = forge_host.get(Family.PUBLISHER, "echo-lazy")
    assert registration.target == "tests_kitchen_sink_missing:Publisher"


def test_artifact_type_registrations_have_no_implementation(forge_host: PluginHost, sink: PluginInfo) -> None:
    assert forge_host.get(Family.ARTIFACT_TYPE, "helm-chart").description == "A packaged Helm chart"


def test_producer_without_artifact_types_is_refused(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    class NoTypes:
        @hookimpl
        def forge_register_producers(self, register: ProducerRegistrar) -> None:
            register.add("nothing", Echo, artifact_types=[])

    info = forge_register(NoTypes(), "acme-notypes")
    assert info.status == "failed" and "declares no artifact types" in (info.error or "")
