"""Catalyst Forge plugin: the ``github`` publisher (GitHub Releases) and the ``github`` notifier
(commit statuses)."""

from forge_core.sdk import NotifierRegistrar, PublisherRegistrar, hookimpl
from forge_github.settings import GithubTargetSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "github",
        "forge_github.publisher:GithubReleasePublisher",
        artifact_types=["binary", "archive"],
        description="Attach binaries and archives to a GitHub release",
        settings=GithubTargetSettings,
    )


@hookimpl
def forge_register_notifiers(register: NotifierRegistrar) -> None:
    register.add(
        "github",
        "forge_github.statuses:GithubStatusNotifier",
        description="Commit statuses through the GitHub REST API",
    )
