"""The families of Catalyst Forge, each declared once (see :mod:`forge_core.plugin.family`).

The order is the order the registration hooks are called in: artifact types first, so the
producers and publishers after them are checked against the declared types.
"""

from __future__ import annotations

from forge_core.plugin.family import Family, declare
from forge_core.plugin.registry import (
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
from forge_core.ports.protocols import (
    JobHandler,
    Notifier,
    Producer,
    Publisher,
    ReleaseTrigger,
    Renderer,
    SecretProvider,
    StepRunner,
)

ARTIFACT_TYPE = declare(
    Family(
        "artifact_type",
        registrar=ArtifactTypeRegistrar,
        protocol=None,
        cue="#ArtifactType",
        doc="""Declare artifact types, the ``type:`` of an artifact in ``project.cue``.

    :param register: call ``register.add(name, description=...)`` once per type.
    :returns: nothing.
    Called once per plugin, first of the registration hooks, when the plugin manager is built.
    """,
    )
)

PRODUCER = declare(
    Family(
        "producer",
        registrar=ProducerRegistrar,
        protocol=Producer,
        cue="#ProducerKind",
        doc="""Register producers: the kinds under an artifact's ``producer:`` that build artifacts.

    :param register: call ``register.add(name, factory, artifact_types=[...], description=...)``;
        ``factory()`` returns a :class:`~forge_core.sdk.Producer`; every one of ``artifact_types``
        must be declared by some plugin (else the plugin fails to load).
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """,
    )
)

PUBLISHER = declare(
    Family(
        "publisher",
        registrar=PublisherRegistrar,
        protocol=Publisher,
        cue="#PublisherType",
        doc="""Register publishers: the ``type:`` of a named publisher in ``repo.cue``.

    :param register: call ``register.add(name, factory, artifact_types=[...], description=...)``;
        ``factory()`` returns a :class:`~forge_core.sdk.Publisher`; ``artifact_types`` (empty:
        any) must be declared by some plugin (else the plugin fails to load).
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """,
    )
)

STEP_RUNNER = declare(
    Family(
        "step_runner",
        registrar=StepRunnerRegistrar,
        protocol=StepRunner,
        cue="#StepAction",
        doc="""Register step runners: the ``action:`` of a step in a project's phase.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns a
        :class:`~forge_core.sdk.StepRunner`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """,
    )
)

JOB_HANDLER = declare(
    Family(
        "job_handler",
        registrar=JobHandlerRegistrar,
        protocol=JobHandler,
        doc="""Register job handlers, one per job type a worker can be started for.

    :param register: call ``register.add(job_type, factory, description=...)``; ``factory()``
        returns a :class:`~forge_core.sdk.JobHandler`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """,
    )
)

TRIGGER = declare(
    Family(
        "trigger",
        registrar=TriggerRegistrar,
        protocol=ReleaseTrigger,
        cue="#TriggerType",
        doc="""Register release triggers: the ``type:`` of an entry in a project's ``release.on``.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns
        a :class:`~forge_core.sdk.ReleaseTrigger`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """,
    )
)

RENDERER = declare(
    Family(
        "renderer",
        registrar=RendererRegistrar,
        protocol=Renderer,
        doc="""Register renderers that turn a project's deploy resources into manifests.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns
        a :class:`~forge_core.sdk.Renderer`.
    :returns: nothing.
    Called once per plugin when the plugin manager is built.
    """,
    )
)

NOTIFIER = declare(
    Family(
        "notifier",
        registrar=NotifierRegistrar,
        protocol=Notifier,
        doc="""Register notifiers: deliver commit statuses from the API's outbox to where code is hosted.

    :param register: call ``register.add(name, factory, description=...)``; ``factory()`` returns
        a :class:`~forge_core.sdk.Notifier`. The operator selects one by name with
        ``FORGE_API__NOTIFIER__TYPE``.
    :returns: nothing.
    Called once per plugin when the plugin manager is built. The notifier's
    ``send_commit_status`` is later called by the outbox sender (in the API process or
    ``forge notifier``), off the request path, in order per commit; raising makes it retry later.
    """,
    )
)

SECRET_PROVIDER = declare(
    Family(
        "secret_provider",
        registrar=SecretProviderRegistrar,
        protocol=SecretProvider,
        cue="#SecretProvider",
        doc="""Register secret providers: the ``provider:`` of a secret reference (a publisher's
    ``credentials``, a step's ``secrets``) in CUE.

    :param register: call ``register.add(name, factory, description=...)``; ``factory(options)``
        returns a :class:`~forge_core.sdk.SecretProvider`, ``options`` being the provider's own
        settings (``FORGE_SECRETS__<NAME>__*``).
    :returns: nothing.
    Called once per plugin when the plugin manager is built. A worker creates each provider on
    first use and resolves only the references of the target or step it is about to run.
    """,
    )
)
