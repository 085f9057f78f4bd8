"""The public API for plugin authors: everything a plugin needs, from one stable module.

    from forge_core.sdk import hookimpl, PublisherRegistrar, PublishedLocation

    @hookimpl
    def forge_register_publishers(register: PublisherRegistrar) -> None:
        register.add("my-registry", "my_plugin.publisher:MyPublisher")
"""

from forge_core.domain.errors import (
    ConfigurationError,
    ForgeError,
    NotImplementedInThisVersion,
    PluginError,
    PluginLoadError,
    WorkWithdrawn,
)
from forge_core.domain.models import (
    ArtifactSpec,
    CommitStatus,
    DeploymentInfo,
    EventKind,
    Job,
    JobResult,
    JobStatus,
    PipelineRunInfo,
    ProducedArtifact,
    ProjectRef,
    PublishedLocation,
    PublishTarget,
    ReleaseInfo,
    RenderedResources,
    RenderRequest,
    RunStatus,
    SecretRef,
    SourceEvent,
    StepOutcome,
    StepRetries,
    StepSpec,
    StepStatus,
    TriggerDecision,
    TriggerSpec,
)
from forge_core.domain.plugin_settings import SettingsModel
from forge_core.domain.secrets import mask_secrets
from forge_core.plugin.family import Family
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import (
    ArtifactTypeRegistrar,
    JobHandlerRegistrar,
    NotifierRegistrar,
    ProducerRegistrar,
    PublisherRegistrar,
    RendererRegistrar,
    StepRunnerRegistrar,
    TriggerRegistrar,
)
from forge_core.ports.protocols import (
    ExecutionContext,
    JobContext,
    JobHandler,
    Notifier,
    NotifierOptions,
    Producer,
    Publisher,
    ReleaseTrigger,
    Renderer,
    StepRunner,
)

__all__ = [
    "ArtifactSpec",
    "ArtifactTypeRegistrar",
    "CommitStatus",
    "ConfigurationError",
    "DeploymentInfo",
    "EventKind",
    "ExecutionContext",
    "Family",
    "ForgeError",
    "Job",
    "JobContext",
    "JobHandler",
    "JobHandlerRegistrar",
    "JobResult",
    "JobStatus",
    "NotImplementedInThisVersion",
    "Notifier",
    "NotifierOptions",
    "NotifierRegistrar",
    "PipelineRunInfo",
    "PluginError",
    "PluginLoadError",
    "ProducedArtifact",
    "Producer",
    "ProducerRegistrar",
    "ProjectRef",
    "PublishTarget",
    "PublishedLocation",
    "Publisher",
    "PublisherRegistrar",
    "ReleaseInfo",
    "ReleaseTrigger",
    "RenderRequest",
    "RenderedResources",
    "Renderer",
    "RendererRegistrar",
    "RunStatus",
    "SecretRef",
    "SettingsModel",
    "SourceEvent",
    "StepOutcome",
    "StepRetries",
    "StepRunner",
    "StepRunnerRegistrar",
    "StepSpec",
    "StepStatus",
    "TriggerDecision",
    "TriggerRegistrar",
    "TriggerSpec",
    "WorkWithdrawn",
    "hookimpl",
    "mask_secrets",
]
