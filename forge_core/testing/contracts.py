"""Contract test classes, one per family. A plugin subclasses one per family it registers in.

    class TestDockerPublisher(PublisherContract):
        plugin_id = "forge_docker"
        distribution = "catalyst-forge-docker"
        names = ("docker",)

Each contract proves: the entry point is installed and loads; the plugin registers the names it
declares and they validate; the names are unique and conflict with nothing installed; each
implementation satisfies the family's protocol; and its behaviour meets the family's contract.
Set ``implemented = False`` while a name's behaviour arrives in a later version: the contract
then proves that calling it raises :class:`NotImplementedInThisVersion` (never a silent success).
Override the input hooks (``target_settings``, ``producer_settings``, ``payload``, ``step``,
``request``, ``options``, ``status``; each gets the name and the test's ``tmp_path``) to give
realistic inputs, and ``verify`` to check the world. Inputs honour what the plugin declared: a
publisher registered for ``archive`` gets an archive, a producer's case asks for one of its types.
A family without a contract of its own gets a generic one from :func:`contract_for`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from forge_core import DISTRIBUTION
from forge_core.domain.errors import NotImplementedInThisVersion, SecretError, WorkWithdrawn
from forge_core.domain.models import (
    ArtifactSpec,
    CommitStatus,
    Job,
    JobResult,
    ProducedArtifact,
    ProjectRef,
    PublishedLocation,
    PublishTarget,
    RenderedResources,
    RenderRequest,
    SecretRef,
    SourceEvent,
    StepOutcome,
    StepSpec,
    TriggerDecision,
    TriggerSpec,
)
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, Status, load_plugins
from forge_core.plugin.registry import NAME_PATTERN, Registration
from forge_core.ports.protocols import ExecutionContext, JobContext, NotifierOptions
from forge_core.settings import PluginSettings

__all__ = [
    "JobHandlerContract",
    "NotifierContract",
    "PluginContract",
    "ProducerContract",
    "PublisherContract",
    "RendererContract",
    "SecretProviderContract",
    "StepRunnerContract",
    "TriggerContract",
    "contract_for",
]

_CONTRACTS: dict[str, type[PluginContract]] = {}


class PluginContract:
    """What every family's contract checks. Subclasses set the class attributes below."""

    plugin_id: ClassVar[str]
    """The entry-point name in ``forge.plugins`` (or the built-in's id)."""
    distribution: ClassVar[str | None] = None
    """The distribution that must provide it (checked when set)."""
    builtin: ClassVar[bool] = False
    family: ClassVar[Family]
    names: ClassVar[tuple[str, ...]]
    """The names the plugin registers in this family."""
    implemented: ClassVar[bool] = True

    loaded: PluginHost
    """The host the current behaviour test runs against (set before the inputs are built)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__ and "family" in vars(cls):
            _CONTRACTS[cls.family] = cls

    @pytest.fixture
    def host(self) -> PluginHost:
        """Only this plugin (and the core's built-ins) loaded, as an operator's allow list would."""
        allow = [] if self.builtin else [self.plugin_id]
        return load_plugins(PluginSettings(allow=allow))

    def registration(self, host: PluginHost, name: str) -> Registration:
        return host.get(self.family, name)

    def test_entry_point_installed_and_loads(self, host: PluginHost) -> None:
        info = host.plugins.get(self.plugin_id)
        assert info is not None, f"plugin {self.plugin_id} is not installed (no forge.plugins entry point)"
        assert info.status == Status.LOADED, f"{self.plugin_id} did not load: {info.error}"
        assert info.builtin is self.builtin
        expected = DISTRIBUTION if self.builtin else self.distribution
        if expected is not None:
            assert info.distribution is not None
            assert info.distribution.replace("_", "-").lower() == expected

    def test_registers_declared_names(self, host: PluginHost) -> None:
        registered = host.plugins[self.plugin_id].registrations.get(self.family.value, [])
        assert sorted(self.names) == sorted(set(self.names)), "declared names repeat"
        for name in self.names:
            assert NAME_PATTERN.match(name), name
            assert name in registered, f"{self.family.label} {name!r} not registered (has: {registered})"
            assert self.registration(host, name).owner.plugin == self.plugin_id

    def test_names_conflict_with_nothing_installed(self) -> None:
        everything = load_plugins(PluginSettings())  # raises PluginConflictError on a clash
        for name in self.names:
            assert everything.get(self.family, name).owner.plugin == self.plugin_id

    def test_implementations_satisfy_protocol(self, host: PluginHost, tmp_path: Path) -> None:
        for name in self.names:
            self.create(host, name, tmp_path)  # raises PluginError naming the missing method

    def test_behaviour(self, host: PluginHost, tmp_path: Path) -> None:
        self.loaded = host
        for name in self.names:
            instance = self.create(host, name, tmp_path)
            case = self.case(name, tmp_path)
            if not self.implemented:
                with pytest.raises(NotImplementedInThisVersion) as raised:
                    self.invoke(instance, case)
                assert raised.value.plugin == self.plugin_id
                assert raised.value.name == name
                assert "not implemented in this version" in str(raised.value)
                continue
            result = self.invoke(instance, case)
            self.check(name, result, case, host)
            self.verify(name, result, case)

    # --- per family ---------------------------------------------------------------------------

    def create(self, host: PluginHost, name: str, tmp_path: Path) -> Any:
        return host.create(self.family, name)

    def case(self, name: str, tmp_path: Path) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: give case(name, tmp_path) the arguments of one call")

    def invoke(self, instance: Any, case: Any) -> Any:
        """Call the family's protocol method with ``case`` (a tuple of its arguments)."""
        return getattr(instance, self.family.method or "")(*case)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        raise NotImplementedError(f"{type(self).__name__}: give check(...) the family's rules for a result")

    def declared_types(self, name: str) -> tuple[str, ...]:
        """The artifact types ``name`` was registered with (empty: any)."""
        return tuple(self.loaded.get(self.family, name).options.get("artifact_types", ()))

    def given(self, hook: Callable[..., Any], name: str, tmp_path: Path) -> Any:
        """An input hook's value; 0.1 overrides take only ``name`` (still called, with a warning)."""
        if len(inspect.signature(hook).parameters) >= 2:
            return hook(name, tmp_path)
        warnings.warn(
            f"{type(self).__name__}.{hook.__name__}(name) is deprecated: accept (name, tmp_path)",
            DeprecationWarning,
            stacklevel=2,
        )
        return hook(name)

    def verify(self, name: str, result: Any, case: Any) -> None:
        """Override to check the outside world (the registry really holds the image, …)."""


def _context(tmp_path: Path) -> ExecutionContext:
    lines: list[str] = []
    return ExecutionContext(workdir=tmp_path, log=lines.append)


class PublisherContract(PluginContract):
    family = Family.PUBLISHER

    def target_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        """The ``settings`` of the publish target (``repo.cue``'s publisher entry)."""
        return {}

    def artifact(self, name: str, tmp_path: Path) -> ProducedArtifact:
        """An artifact of the first type the publisher accepts (``binary`` if it accepts any)."""
        kind = (self.declared_types(name) or ("binary",))[0]
        payload = tmp_path / f"contract.{kind}"
        payload.write_bytes(f"contract {kind} payload\n".encode())
        return ProducedArtifact(name="contract", type=kind, project="demo", commit="0" * 40, files=(payload,))

    def case(self, name: str, tmp_path: Path) -> tuple[ProducedArtifact, PublishTarget, ExecutionContext]:
        settings = self.given(self.target_settings, name, tmp_path)
        target = PublishTarget(name=f"{name}-target", type=name, settings=settings)
        return self.given(self.artifact, name, tmp_path), target, _context(tmp_path)

    def test_a_withdrawn_publish_publishes_nothing(self, host: PluginHost, tmp_path: Path) -> None:
        """With the context's ``stop`` set, ``publish`` raises WorkWithdrawn (never a location)."""
        if not self.implemented:
            return
        for name in self.names:
            self.loaded = host
            artifact, target, ctx = self.case(name, tmp_path)
            ctx.stop.set()
            with pytest.raises(WorkWithdrawn):
                host.create(self.family, name).publish(artifact, target, ctx)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        artifact, target, _ = case
        accepted = self.declared_types(name)
        assert not accepted or artifact.type in accepted, f"the case publishes a {artifact.type}: not in {accepted}"
        assert isinstance(result, PublishedLocation)
        assert result.type == name and result.publisher == target.name
        assert result.uri


class ProducerContract(PluginContract):
    family = Family.PRODUCER

    def producer_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        """The ``producer: {<name>: {...}}`` settings of the artifact in ``project.cue``."""
        return {}

    def project(self, name: str, tmp_path: Path) -> ProjectRef:
        return ProjectRef(name="demo", path="demo")

    def case(self, name: str, tmp_path: Path) -> tuple[ArtifactSpec, ProjectRef, str, ExecutionContext]:
        settings = self.given(self.producer_settings, name, tmp_path)
        kind = self.declared_types(name)[0]  # a producer declares at least one type
        spec = ArtifactSpec(name="contract", type=kind, producer=name, producer_settings=settings)
        return spec, self.given(self.project, name, tmp_path), "0" * 40, _context(tmp_path)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        spec, project, commit, _ = case
        assert isinstance(result, ProducedArtifact)
        assert (result.name, result.project, result.commit) == (spec.name, project.name, commit)
        assert result.type in self.registration(host, name).options["artifact_types"]


class StepRunnerContract(PluginContract):
    family = Family.STEP_RUNNER

    def step(self, name: str, tmp_path: Path) -> StepSpec:
        return StepSpec(name="contract", action=name, target="true")

    def case(self, name: str, tmp_path: Path) -> tuple[StepSpec, ProjectRef, ExecutionContext]:
        return self.given(self.step, name, tmp_path), ProjectRef(name="demo", path="."), _context(tmp_path)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        assert isinstance(result, StepOutcome)
        assert result.duration_seconds >= 0


class JobHandlerContract(PluginContract):
    family = Family.JOB_HANDLER

    def payload(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {}

    def case(self, name: str, tmp_path: Path) -> tuple[Job, JobContext]:
        payload = self.given(self.payload, name, tmp_path)
        job = Job(id="job-contract", type=name, run_id="run-contract", payload=payload)
        return job, JobContext(cache_dir=tmp_path, registry=load_plugins(PluginSettings(autoload=False)).registry)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        job, _ = case
        assert isinstance(result, JobResult)
        assert result.job_id == job.id


class TriggerContract(PluginContract):
    family = Family.TRIGGER

    cases: ClassVar[list[tuple[str, TriggerSpec, SourceEvent, ProjectRef, bool]]] = []
    """(name, spec, event, project, expected fired) for every registered name."""

    def test_every_name_has_cases(self) -> None:
        assert {c[0] for c in self.cases} >= set(self.names), "give at least one case per trigger name"

    def case(self, name: str, tmp_path: Path) -> list[tuple[TriggerSpec, SourceEvent, ProjectRef, bool]]:
        return [c[1:] for c in self.cases if c[0] == name]

    def invoke(self, instance: Any, case: Any) -> Any:
        return [(instance.evaluate(spec, event, project), fired) for spec, event, project, fired in case]

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        for decision, fired in result:
            assert isinstance(decision, TriggerDecision)
            assert decision.fired is fired, decision.reason
            assert decision.reason and decision.trigger == name


class RendererContract(PluginContract):
    family = Family.RENDERER

    def request(self, name: str, tmp_path: Path) -> RenderRequest:
        return RenderRequest(
            repository="acme/monorepo",
            project="demo",
            commit="0" * 40,
            resources={
                "resources": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo"}, "data": {"a": "b"}},
                ]
            },
        )

    def case(self, name: str, tmp_path: Path) -> tuple[RenderRequest]:
        return (self.given(self.request, name, tmp_path),)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        assert isinstance(result, RenderedResources)
        assert result.manifests and result.text.strip()


class NotifierContract(PluginContract):
    """Override ``options`` to point the notifier at a receiver (a stand-in server) and
    ``verify`` to check that the receiver got the status."""

    family = Family.NOTIFIER

    def status(self, name: str, tmp_path: Path) -> CommitStatus:
        return CommitStatus(
            repository="acme/monorepo",
            commit_sha="0" * 40,
            state="success",
            context="catalyst-forge",
            description="Pipeline succeeded",
            run_id="00000000-0000-4000-8000-000000000000",
        )

    def options(self, name: str, tmp_path: Path) -> NotifierOptions:
        return NotifierOptions()

    def case(self, name: str, tmp_path: Path) -> tuple[CommitStatus, NotifierOptions]:
        return self.given(self.status, name, tmp_path), self.given(self.options, name, tmp_path)

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        assert result is None, "send_commit_status returns nothing; failures raise"


class SecretProviderContract(PluginContract):
    """Override ``options`` (the provider's settings, as ``FORGE_SECRETS__<NAME>__*`` would give
    them) and ``secret`` (store a secret where the provider finds it, under ``tmp_path`` for
    example, and return its reference and value). The contract resolves it, and proves that a
    reference to nothing fails with a SecretError naming the provider and the secret, not a value."""

    family = Family.SECRET_PROVIDER

    def options(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {}

    def secret(self, name: str, tmp_path: Path) -> tuple[SecretRef, str]:
        raise NotImplementedError("override secret(): store a secret for the provider, return (reference, value)")

    def missing(self, name: str) -> SecretRef:
        return SecretRef(provider=name, path="forge-contract-no-such-secret")

    def create(self, host: PluginHost, name: str, tmp_path: Path) -> Any:
        return host.create(self.family, name, self.options(name, tmp_path))

    def case(self, name: str, tmp_path: Path) -> tuple[SecretRef, str, SecretRef]:
        ref, value = self.secret(name, tmp_path)
        return ref, value, self.missing(name)

    def invoke(self, instance: Any, case: Any) -> Any:
        ref, _, missing = case
        try:
            instance.resolve(missing)
        except SecretError as error:
            return instance.resolve(ref), error
        raise AssertionError(f"resolving {missing.path!r}, which does not exist, did not raise SecretError")

    def check(self, name: str, result: Any, case: Any, host: PluginHost) -> None:
        _, value, missing = case
        resolved, error = result
        assert resolved == value
        assert name in str(error) and missing.path in str(error), f"the error must name both: {error}"
        assert value not in str(error)


def contract_for(family: Family) -> type[PluginContract]:
    """The contract base of ``family``: its own class, or a generic one that checks the entry
    point, the names, conflicts and the protocol (a subclass gives ``case`` and ``check``)."""
    if family not in _CONTRACTS:
        name = "".join(part.title() for part in family.split("_")) + "Contract"
        _CONTRACTS[family] = type(name, (PluginContract,), {"family": family, "__module__": __name__})
    return _CONTRACTS[family]
