"""The core's renderer: deploy resources to Kubernetes manifests (see forge_core.domain.rendering)."""

from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import RendererRegistrar


@hookimpl
def forge_register_renderers(register: RendererRegistrar) -> None:
    register.add(
        "kubernetes",
        "forge_core.domain.rendering:KubernetesRenderer",
        description="Deploy resources as Kubernetes YAML, artifact references resolved",
    )
