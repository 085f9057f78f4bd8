"""Artifact types every installation has; plugins add more (``python`` comes with forge_pypi).

``container`` is the core's: several plugins build containers (forge_earthly) or push them
(forge_docker), and each must load without the others."""

from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import ArtifactTypeRegistrar


@hookimpl
def forge_register_artifact_types(register: ArtifactTypeRegistrar) -> None:
    register.add("binary", description="A standalone executable")
    register.add("archive", description="A compressed collection of files (tar.gz, zip)")
    register.add("container", description="A Docker/OCI container image")
