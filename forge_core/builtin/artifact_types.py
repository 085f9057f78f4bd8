"""Artifact types every installation has; plugins add more (``container`` comes with forge_docker)."""

from forge_core.ports.hookspecs import hookimpl
from forge_core.ports.registry import ArtifactTypeRegistrar


@hookimpl
def forge_register_artifact_types(register: ArtifactTypeRegistrar) -> None:
    register.add("binary", description="A standalone executable")
    register.add("archive", description="A compressed collection of files (tar.gz, zip)")
