"""The public API for plugin authors: everything a plugin needs, from one stable module.

    from forge_core.sdk import hookimpl, PublisherRegistrar, PublishedLocation

    @hookimpl
    def forge_register_publishers(register: PublisherRegistrar) -> None:
        register.add("my-registry", "my_plugin.publisher:MyPublisher")

A publisher that copies images opens the target registry itself with :func:`open_store`
(the target's own credentials; ``ctx.oci`` is the platform's tracking store, not the target).
"""

from forge_core.adapters.oci import open_store
from forge_core.adapters.oci.release_image import read_release_image
from forge_core.domain.errors import (
    ConfigurationError,
    ForgeError,
    NotImplementedInThisVersion,
    PluginError,
    PluginLoadError,
    SecretError,
    WorkWithdrawn,
)
from forge_core.domain.logs import CONTINUATION, read_output
from forge_core.domain.models import (
    ArtifactReference,
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
from forge_core.domain.oci import (
    Descriptor,
    FetchedManifest,
    Index,
    LayoutReference,
    Manifest,
    OciAuthError,
    OciDigestMismatch,
    OciError,
    OciNotFound,
    OciUnavailable,
    RegistryCredentials,
    RegistryReference,
    parse_reference,
)
from forge_core.domain.plugin_settings import SettingsModel
from forge_core.domain.release_image import ReleaseImage, ReleaseImageError, ReleaseMetadata
from forge_core.domain.rendering import KubernetesRenderer, RenderError, RenderProblem
from forge_core.domain.secrets import ResolvedSecrets, mask_secrets
from forge_core.plugin.family import Family
from forge_core.plugin.markers import hookimpl
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
from forge_core.ports.contexts import ExecutionContext, JobContext
from forge_core.ports.oci import OciStore
from forge_core.ports.protocols import (
    JobHandler,
    Notifier,
    NotifierOptions,
    Producer,
    Publisher,
    ReleaseTrigger,
    Renderer,
    SecretProvider,
    StepRunner,
)
from forge_core.settings.oci import OciSettings

__all__ = [
    "CONTINUATION",
    "ArtifactReference",
    "ArtifactSpec",
    "ArtifactTypeRegistrar",
    "CommitStatus",
    "ConfigurationError",
    "DeploymentInfo",
    "Descriptor",
    "EventKind",
    "ExecutionContext",
    "Family",
    "FetchedManifest",
    "ForgeError",
    "Index",
    "Job",
    "JobContext",
    "JobHandler",
    "JobHandlerRegistrar",
    "JobResult",
    "JobStatus",
    "KubernetesRenderer",
    "LayoutReference",
    "Manifest",
    "NotImplementedInThisVersion",
    "Notifier",
    "NotifierOptions",
    "NotifierRegistrar",
    "OciAuthError",
    "OciDigestMismatch",
    "OciError",
    "OciNotFound",
    "OciSettings",
    "OciStore",
    "OciUnavailable",
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
    "RegistryCredentials",
    "RegistryReference",
    "ReleaseImage",
    "ReleaseImageError",
    "ReleaseInfo",
    "ReleaseMetadata",
    "ReleaseTrigger",
    "RenderError",
    "RenderProblem",
    "RenderRequest",
    "RenderedResources",
    "Renderer",
    "RendererRegistrar",
    "ResolvedSecrets",
    "RunStatus",
    "SecretError",
    "SecretProvider",
    "SecretProviderRegistrar",
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
    "open_store",
    "parse_reference",
    "read_output",
    "read_release_image",
]
