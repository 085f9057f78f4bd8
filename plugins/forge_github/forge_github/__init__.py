"""Catalyst Forge plugin: the ``github`` publisher (GitHub Releases)."""

from forge_core.sdk import PublisherRegistrar, hookimpl

__version__ = "0.1.0"


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "github",
        "forge_github.publisher:GithubReleasePublisher",
        artifact_types=["binary", "archive"],
        description="Attach binaries and archives to a GitHub release",
    )
