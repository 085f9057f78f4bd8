"""Repository and project configuration as discovery reads it from evaluated CUE.

``repo.cue`` becomes a :class:`RepoConfig`, each ``project.cue`` a :class:`ProjectConfig`. The
values arrive already checked against the CUE schemas (``forge_core/schemas``); what remains here
is turning them into the domain models the rest of the platform uses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, ValidationError

from forge_core.domain.alias_templates import AliasTemplateError, check_templates
from forge_core.domain.durations import DURATION_PART as DURATION_PART  # re-exported: older imports
from forge_core.domain.durations import parse_duration as parse_duration
from forge_core.domain.errors import ForgeError
from forge_core.domain.models import (
    ArtifactSpec,
    Model,
    PublishTarget,
    SecretRef,
    StepRetries,
    StepSpec,
    TriggerSpec,
)
from forge_core.domain.promotion import Environments, EnvironmentsError


class Diagnostic(Model):
    """One problem in a configuration file, where it is (file relative to the repository root)."""

    file: str
    line: int | None = None
    column: int | None = None
    message: str
    project: str | None = None

    def location(self) -> str:
        return ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"


class ValueProblem(ValueError):
    """A value the schema accepts that the domain cannot take; ``path`` is where it is in the file."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class ProjectConfigError(ForgeError):
    """Repository or project configuration that does not validate; carries every diagnostic."""

    code = "invalid_project_configuration"
    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic], *, summary: str | None = None):
        self.diagnostics = diagnostics
        lines = "\n  ".join(str(d) for d in diagnostics)
        first = diagnostics[0].location() if diagnostics else None
        super().__init__(
            (summary or f"{len(diagnostics)} configuration error(s)") + (f":\n  {lines}" if lines else ""),
            where=first,
            details={"diagnostics": [d.model_dump() for d in diagnostics]},
        )


class PhaseConfig(Model):
    """A phase from ``repo.cue``: phases of one ``group`` run together, groups in order."""

    name: str
    group: int
    description: str = ""
    timeout: timedelta | None = None
    required: bool = False


class RepoConfig(Model):
    """``.forge/repo.cue``. ``environments`` is None when the file has no ``environments`` block
    (the platform then applies :data:`forge_core.domain.promotion.DEFAULT_ENVIRONMENTS`)."""

    forge_version: str
    tagging_strategy: str = "monorepo"
    phases: dict[str, PhaseConfig] = Field(default_factory=dict)
    publishers: dict[str, PublishTarget] = Field(default_factory=dict)
    environments: Environments | None = None

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> RepoConfig:
        phases = {
            name: PhaseConfig(
                name=name,
                group=phase["group"],
                description=phase.get("description", ""),
                timeout=_duration(phase.get("timeout")),
                required=phase.get("required", False),
            )
            for name, phase in value.get("phases", {}).items()
        }
        publishers = {name: _publisher(name, spec) for name, spec in value.get("publishers", {}).items()}
        return cls(
            forge_version=value["forgeVersion"],
            tagging_strategy=value.get("tagging", {}).get("strategy", "monorepo"),
            phases=phases,
            publishers=publishers,
            environments=_environments(value["environments"]) if "environments" in value else None,
        )


def _environments(value: Any) -> Environments:
    """The ``environments`` block; a problem is raised at its value path (so at its file:line)."""
    try:
        return Environments.from_value(value)
    except EnvironmentsError as exc:
        path = tuple((exc.where or "environments").split("."))
        raise ValueProblem(path, exc.message) from None


class PhaseParticipation(Model):
    """A project's part in one phase: its steps (run in parallel) and an optional timeout."""

    steps: tuple[StepSpec, ...] = ()
    timeout: timedelta | None = None


class ProjectConfig(Model):
    """``<project>/.forge/project.cue``; ``path`` is the project folder relative to the root."""

    name: str
    path: str
    config_file: str
    phases: dict[str, PhaseParticipation] = Field(default_factory=dict)
    artifacts: tuple[ArtifactSpec, ...] = ()
    triggers: tuple[TriggerSpec, ...] = ()
    aliases: tuple[str, ...] = ()
    """``release.aliases``: custom alias templates (:mod:`forge_core.domain.alias_templates`)."""
    resources: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_value(cls, value: dict[str, Any], *, path: str, config_file: str) -> ProjectConfig:
        return cls(
            name=value.get("name") or project_name(path),
            path=path,
            config_file=config_file,
            phases={
                phase: PhaseParticipation(
                    steps=tuple(_step((phase, i), step) for i, step in enumerate(spec.get("steps", []))),
                    timeout=_duration(spec.get("timeout")),
                )
                for phase, spec in value.get("phases", {}).items()
            },
            artifacts=tuple(_artifact(name, spec) for name, spec in value.get("artifacts", {}).items()),
            triggers=tuple(_trigger(i, entry) for i, entry in enumerate(value.get("release", {}).get("on", []))),
            aliases=_aliases(value.get("release", {}).get("aliases", [])),
            resources=tuple(value.get("deploy", {}).get("resources", [])),
        )


def project_name(path: str) -> str:
    """The default name of the project in folder ``path``: the folder's own name."""
    return path.rstrip("/").rsplit("/", 1)[-1] or "root"


def trigger_spec(entry: dict[str, Any]) -> TriggerSpec:
    """A ``release.on`` entry, one key (the type) and its value: ``{branch: "main"}``."""
    if len(entry) != 1:
        kinds = ", ".join(sorted(entry)) or "none"
        raise ValueError(f"a release.on entry has exactly one trigger type, like {{branch: \"main\"}} (got: {kinds})")
    ((kind, value),) = entry.items()
    return TriggerSpec(type=kind, settings={"value": value})


def _trigger(index: int, entry: dict[str, Any]) -> TriggerSpec:
    try:
        return trigger_spec(entry)
    except ValueError as exc:
        raise ValueProblem(("release", "on", index), str(exc)) from None


def _aliases(templates: list[str]) -> tuple[str, ...]:
    try:
        return check_templates(templates)
    except AliasTemplateError as exc:
        raise ValueProblem(("release", "aliases", exc.index), str(exc)) from None


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None


def _step(where: tuple[str, int], spec: dict[str, Any]) -> StepSpec:
    return StepSpec(
        name=spec["name"],
        action=spec["action"],
        target=spec.get("target", ""),
        timeout=_duration(spec.get("timeout")),
        settings=spec.get("settings", {}),
        secrets={env: _secret_ref(ref) for env, ref in spec.get("secrets", {}).items()},
        retries=_retries(("phases", where[0], "steps", where[1], "retries"), spec.get("retries")),
    )


def _retries(path: tuple[str | int, ...], spec: dict[str, Any] | None) -> StepRetries:
    if not spec:
        return StepRetries()
    try:
        return StepRetries(
            attempts=spec.get("attempts", 0),
            delay=parse_duration(spec.get("delay", "10s")),
            filters=tuple(spec.get("filters", ())),
        )
    except ValidationError as exc:  # a filter that is not a regular expression
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ValueProblem((*path, "filters"), message) from None


def _secret_ref(ref: dict[str, Any]) -> SecretRef:
    """A CUE ``#SecretRef`` (``{provider, secretName, key?}``) as the domain names it."""
    return SecretRef(provider=ref["provider"], path=ref["secretName"], key=ref.get("key"))


def _artifact(name: str, spec: dict[str, Any]) -> ArtifactSpec:
    if len(spec["producer"]) != 1:
        kinds = ", ".join(sorted(spec["producer"])) or "none"
        message = f"artifact {name!r} needs exactly one producer kind (got: {kinds})"
        raise ValueProblem(("artifacts", name, "producer"), message)
    ((producer, settings),) = spec["producer"].items()
    return ArtifactSpec(
        name=name,
        type=spec["type"],
        producer=producer,
        producer_settings=settings,
        publishers=tuple(spec.get("publishers", [])),
    )


def _publisher(name: str, spec: dict[str, Any]) -> PublishTarget:
    settings = {k: v for k, v in spec.items() if k not in ("type", "credentials")}
    credentials = {}
    if "credentials" in spec:
        credentials["default"] = _secret_ref(spec["credentials"])
    return PublishTarget(name=name, type=spec["type"], settings=settings, credentials=credentials)
