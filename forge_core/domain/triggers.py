"""The release triggers the core ships: pure rules deciding whether an event releases a project.

A ``release.on`` entry is one key (the trigger type) and its value, e.g. ``{branch: "main"}``,
``{tag: true}``; ``TriggerSpec.settings["value"]`` holds that value.
"""

from __future__ import annotations

import re

from forge_core.domain.models import EventKind, ProjectRef, SourceEvent, TriggerDecision, TriggerSpec

VERSION_PATTERN = re.compile(r"^v(?P<version>\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)$")


def tag_version(tag: str, project: str | None, strategy: str) -> str | None:
    """The version a tag carries for ``project`` under the tagging strategy, or None.

    ``monorepo``: ``<project>/v1.2.3`` (only that project); ``tag-all``: ``v1.2.3`` (every project).
    """
    if strategy == "monorepo":
        prefix, _, rest = tag.rpartition("/")
        if project is not None and prefix != project:
            return None
        match = VERSION_PATTERN.match(rest) if prefix else None
    else:
        match = VERSION_PATTERN.match(tag)
    return match.group("version") if match else None


def _value(spec: TriggerSpec) -> object:
    return spec.settings.get("value", True)


def _decision(fired: bool, spec: TriggerSpec, reason: str) -> TriggerDecision:
    return TriggerDecision(fired=fired, reason=reason, trigger=spec.type)


class BranchTrigger:
    """Fires on a push to a branch equal to the value, or fully matching it as a regular expression."""

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        pattern = str(_value(spec))
        if event.kind is not EventKind.PUSH or not event.branch:
            return _decision(False, spec, f"branch {pattern!r}: the event is a {event.kind.value}, not a branch push")
        if event.branch == pattern:
            return _decision(True, spec, f"push to branch {event.branch!r}")
        try:
            matched = re.fullmatch(pattern, event.branch) is not None
        except re.error:
            matched = False
        if matched:
            return _decision(True, spec, f"push to branch {event.branch!r} matches {pattern!r}")
        return _decision(False, spec, f"branch {event.branch!r} does not match {pattern!r}")


class TagTrigger:
    """Fires on a version tag for the project, by the repository's tagging strategy."""

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        if _value(spec) is False:
            return _decision(False, spec, "tag trigger disabled")
        if not event.tag:
            return _decision(False, spec, "no tag on this commit")
        version = tag_version(event.tag, project.name, event.tagging_strategy)
        if version is None:
            expected = f"{project.name}/v<semver>" if event.tagging_strategy == "monorepo" else "v<semver>"
            return _decision(
                False, spec, f"tag {event.tag!r} is not a release tag of this project ({expected}, "
                f"strategy {event.tagging_strategy})"
            )
        return _decision(True, spec, f"tag {event.tag!r} releases version {version}")


class ManualTrigger:
    """Fires when a run was started by hand for this project (or for all projects)."""

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        if event.kind is not EventKind.MANUAL:
            return _decision(False, spec, "not a manual run")
        if event.manual_projects and project.name not in event.manual_projects:
            return _decision(False, spec, "manual run for other projects")
        return _decision(True, spec, "manual release requested")


class AlwaysTrigger:
    """Fires for every event (dry-run style pipelines, previews)."""

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        if _value(spec) is False:
            return _decision(False, spec, "always trigger disabled")
        return _decision(True, spec, "always releases")


class PullRequestTrigger:
    """Fires for pull-request events (optionally only those whose base branch matches the value)."""

    def evaluate(self, spec: TriggerSpec, event: SourceEvent, project: ProjectRef) -> TriggerDecision:
        if event.kind is not EventKind.PULL_REQUEST:
            return _decision(False, spec, "not a pull request")
        value = _value(spec)
        if isinstance(value, str) and event.branch is not None and re.fullmatch(value, event.branch) is None:
            return _decision(False, spec, f"pull request base {event.branch!r} does not match {value!r}")
        return _decision(True, spec, f"pull request #{event.pull_request}" if event.pull_request else "pull request")
