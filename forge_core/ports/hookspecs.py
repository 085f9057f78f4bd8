"""The hookspecs of Catalyst Forge (pluggy project ``forge``).

Every hook is prefixed ``forge_``. Hooks may gain arguments in a minor version, never lose them;
an implementation takes only the arguments it names. ``docs/hooks.md`` documents each one and a
self-check test keeps the two in step.

Registration hooks (``forge_register_*``) are called once per plugin when the plugin manager is
built (at start of the CLI, the API and each worker), each with a registrar bound to that plugin.
Lifecycle hooks are notifications: every implementation is called, and one that raises is logged
and does not stop the others or the pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from forge_core.domain.models import DeploymentInfo, PipelineRunInfo, ReleaseInfo
    from forge_core.ports.registry import (
        ArtifactTypeRegistrar,
        JobHandlerRegistrar,
        NotifierRegistrar,
        ProducerRegistrar,
        PublisherRegistrar,
        RendererRegistrar,
        SecretProviderRegistrar,
        StepRunnerRegistrar,
        TriggerRegistrar,
    )

PROJECT = "forge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration ---------------------------------------------------------------------------


@hookspec
def forge_register_artifact_types(register: ArtifactTypeRegistrar) -> None:
    """Declare artifact types, the ``type:`` of an artifact in ``project.cue``.

    :param register: call ``register.add(name, description=...)`` once per type.
    :returns: nothing.
    Called once per plugin, first of the registration hooks, when the plugin manager is built.
    """


@hookspec
def forge_register_producers(register: ProducerRegistrar) -> None:
    """Register producers: the kinds under an artifact's ``producer:`` that build artifacts.

    :param register: call ``register.add(name, factory, artifact_types=[...], description=...)``;
        ``factory()`` returns a :class:`~forge_core.ports.protocols.Producer`; ``artifact_types``
        must be declared by some plugin.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """


@hookspec
def forge_register_publishers(register: PublisherRegistrar) -> None:
    """Register publishers: the ``type:`` of a named publisher in ``repo.cue``.

    :param register: call ``register.add(name, factory, artifact_types=[...], description=...)``;
        ``factory()`` returns a :class:`~forge_core.ports.protocols.Publisher`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """


@hookspec
def forge_register_step_runners(register: StepRunnerRegistrar) -> None:
    """Register step runners: the ``action:`` of a step in a project's phase.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns a
        :class:`~forge_core.ports.protocols.StepRunner`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """


@hookspec
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    """Register job handlers, one per job type a worker can be started for.

    :param register: call ``register.add(job_type, factory, description=...)``; ``factory()``
        returns a :class:`~forge_core.ports.protocols.JobHandler`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """


@hookspec
def forge_register_triggers(register: TriggerRegistrar) -> None:
    """Register release triggers: the ``type:`` of an entry in a project's ``release.on``.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns
        a :class:`~forge_core.ports.protocols.ReleaseTrigger`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """


@hookspec
def forge_register_renderers(register: RendererRegistrar) -> None:
    """Register renderers that turn a project's deploy resources into manifests.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns
        a :class:`~forge_core.ports.protocols.Renderer`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """


@hookspec
def forge_register_notifiers(register: NotifierRegistrar) -> None:
    """Register notifiers: deliver commit statuses from the API's outbox to where code is hosted.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns
        a :class:`~forge_core.ports.protocols.Notifier`. The operator selects one by name with
        ``FORGE_API__NOTIFIER__TYPE``.
    :returns: nothing.
    Called once per plugin when the plugin manager is built. The notifier's
    ``send_commit_status`` is later called by the outbox sender (in the API process or
    ``forge notifier``), off the request path, in order per commit; raising makes it retry later.
    """


@hookspec
def forge_register_secret_providers(register: SecretProviderRegistrar) -> None:
    """Register secret providers: the ``provider:`` of a secret reference (a publisher's
    ``credentials``) in CUE.

    :param register: call ``register.add(name, factory, description=...)``; ``factory(options)``
        returns a :class:`~forge_core.ports.protocols.SecretProvider`, ``options`` being the
        provider's own settings (``FORGE_SECRETS__<NAME>__*``).
    :returns: nothing.
    Called once per plugin when the plugin manager is built. A worker creates each provider on
    first use and resolves only the references of the target or step it is about to run.
    """


# --- lifecycle ------------------------------------------------------------------------------


@hookspec
def forge_pipeline_run_started(run: PipelineRunInfo) -> None:
    """A pipeline run has started (its status just became ``running``).

    :param run: the run, as persisted.
    :returns: nothing; a raising implementation is logged and ignored.
    """


@hookspec
def forge_pipeline_run_finished(run: PipelineRunInfo) -> None:
    """A pipeline run reached a final status (``success``, ``failed`` or ``cancelled``).

    :param run: the run, as persisted, with ``finished_at`` set.
    :returns: nothing; a raising implementation is logged and ignored.
    """


@hookspec
def forge_release_created(release: ReleaseInfo) -> None:
    """A release was recorded (its number assigned and its Release OCI image pushed).

    :param release: the new release.
    :returns: nothing; a raising implementation is logged and ignored.
    """


@hookspec
def forge_deployment_changed(deployment: DeploymentInfo, previous: DeploymentInfo | None) -> None:
    """The active deployment of a project in an environment changed.

    :param deployment: the deployment that is now active (or whose status changed).
    :param previous: the deployment it superseded, or ``None`` for the first one.
    :returns: nothing; a raising implementation is logged and ignored.
    """


# --- extension ------------------------------------------------------------------------------


@hookspec
def forge_cli_commands(cli: Any) -> None:
    """Add commands to the ``forge`` CLI.

    :param cli: the root ``typer.Typer`` application; call ``cli.command()(function)`` or
        ``cli.add_typer(sub_app, name=...)``.
    :returns: nothing.
    Called once when the CLI starts, after the plugins are loaded.
    """


@hookspec
def forge_api_routers() -> list[Any]:
    """Contribute routers to the Platform API.

    :returns: a list of ``fastapi.APIRouter``; they are mounted under ``/v1/plugins/<plugin id>``.
    Called once when the API application is built.
    """
    return []


REGISTRATION_HOOKS = (
    "forge_register_artifact_types",
    "forge_register_producers",
    "forge_register_publishers",
    "forge_register_step_runners",
    "forge_register_job_handlers",
    "forge_register_triggers",
    "forge_register_renderers",
    "forge_register_notifiers",
    "forge_register_secret_providers",
)
LIFECYCLE_HOOKS = (
    "forge_pipeline_run_started",
    "forge_pipeline_run_finished",
    "forge_release_created",
    "forge_deployment_changed",
)
EXTENSION_HOOKS = ("forge_cli_commands", "forge_api_routers")
