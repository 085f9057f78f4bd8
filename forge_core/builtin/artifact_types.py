"""Artifact types every installation has; plugins may add more.

The common ones are the core's: several plugins build them (forge_earthly builds containers and
wheels) or push them (forge_docker, forge_pypi), and each must load without the others."""

from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import ArtifactTypeRegistrar


@hookimpl
def forge_register_artifact_types(register: ArtifactTypeRegistrar) -> None:
    register.add("binary", description="A standalone executable")
    register.add("archive", description="A compressed collection of files (tar.gz, zip)")
    register.add("container", description="A Docker/OCI container image")
    # The core names the common types so any producer can declare them without depending on the
    # plugin that publishes them (Earthly builds wheels whether or not forge_pypi is installed).
    register.add("python", description="A Python distribution (wheel and sdist)")
