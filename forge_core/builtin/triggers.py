"""The release triggers of the core; their rules live in :mod:`forge_core.domain.triggers`."""

from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import TriggerRegistrar

_RULES = "forge_core.domain.triggers"


@hookimpl
def forge_register_triggers(register: TriggerRegistrar) -> None:
    register.add("branch", f"{_RULES}:BranchTrigger", description="Push to a branch (exact or regular expression)")
    register.add("tag", f"{_RULES}:TagTrigger", description="Version tag, by the repository's tagging strategy")
    register.add("manual", f"{_RULES}:ManualTrigger", description="A release requested by hand")
    register.add("always", f"{_RULES}:AlwaysTrigger", description="Every event releases")
    register.add("pull_request", f"{_RULES}:PullRequestTrigger", description="Pull-request events")
