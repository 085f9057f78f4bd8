"""What CUE cannot check because only the installed plugins know it.

After evaluation, each configuration is held against the implementations it names: a publisher
target's, an artifact producer's and a step's settings against the schema the implementation
declared (``settings=``), an artifact's type against the types its producer builds, and against
the types each of its publishers accepts. Every problem carries the value path it is about, so
discovery can point at the line that wrote it, and names the implementation and its plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forge_core.domain.config import ProjectConfig, RepoConfig
from forge_core.domain.models import PublishTarget
from forge_core.domain.plugin_settings import Path, settings_problems
from forge_core.plugin.family import Family
from forge_core.plugin.registry import Registration, Registry


@dataclass(frozen=True)
class Problem:
    """A problem at ``path`` (a value path of the configuration file)."""

    path: Path
    message: str


def implementation(registration: Registration) -> str:
    """``publisher 'docker' (plugin forge_docker)``: what the user named, and who provides it."""
    return f"{registration.family.label} {registration.name!r} (plugin {registration.owner.plugin})"


class PluginChecks:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def repo(self, repo: RepoConfig) -> list[Problem]:
        """Each publisher target's settings (its keys besides ``type`` and ``credentials``)."""
        problems = []
        for name, target in repo.publishers.items():
            registration = self._registration(Family.PUBLISHER, target.type)
            if registration is not None:
                problems += self._settings(registration, f"of target {name!r}", ("publishers", name), target.settings)
        return problems

    def project(self, config: ProjectConfig, publishers: Mapping[str, PublishTarget]) -> list[Problem]:
        """Steps' settings; each artifact's producer (settings, types it builds) and publishers."""
        problems = []
        for phase, participation in config.phases.items():
            for index, step in enumerate(participation.steps):
                runner = self._registration(Family.STEP_RUNNER, step.action)
                if runner is not None:
                    at: Path = ("phases", phase, "steps", index, "settings")
                    problems += self._settings(runner, f"of step {step.name!r}", at, step.settings)
        for artifact in config.artifacts:
            at = ("artifacts", artifact.name)
            producer = self._registration(Family.PRODUCER, artifact.producer)
            if producer is not None:
                path: Path = (*at, "producer", artifact.producer)
                builds = producer.options.get("artifact_types", ())
                if builds and artifact.type not in builds:
                    problems.append(Problem(path, f"{implementation(producer)} of artifact {artifact.name!r} builds "
                                                  f"{', '.join(builds)}, not {artifact.type!r}"))
                problems += self._settings(producer, f"of artifact {artifact.name!r}", path, artifact.producer_settings)
            for index, name in enumerate(artifact.publishers):
                target = publishers.get(name)
                publisher = self._registration(Family.PUBLISHER, target.type) if target else None
                accepted = publisher.options.get("artifact_types", ()) if publisher else ()
                if target is not None and accepted and artifact.type not in accepted:
                    problems.append(Problem((*at, "publishers", index), (
                        f"publisher {name!r} ({target.type}) of artifact {artifact.name!r} accepts "
                        f"{', '.join(accepted)}, not {artifact.type!r}"
                    )))
        return problems

    def _registration(self, family: Family, name: str) -> Registration | None:
        # an unknown name was already a CUE error at its line; nothing more to say about it here
        return self.registry.get(family, name) if (family, name) in self.registry else None

    def _settings(self, registration: Registration, what: str, at: Path, value: Mapping[str, Any]) -> list[Problem]:
        schema = registration.options.get("settings")
        if schema is None:
            return []
        return [
            Problem((*at, *problem.path), f"{implementation(registration)} {what}: {problem.describe()}")
            for problem in settings_problems(schema, value)
        ]
