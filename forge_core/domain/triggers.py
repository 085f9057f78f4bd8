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


def version_key(version: str) -> tuple[object, ...]:
    """Semantic-version precedence: a pre-release sorts before its release; build metadata is ignored."""
    core, _, pre = version.partition("+")[0].partition("-")
    numbers = tuple(int(n) for n in core.split("."))
    if not pre:
        return (*numbers, 1, ())
    # numeric identifiers compare as numbers and before alphanumeric ones
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*numbers, 0, parts)


def release_tag(event: SourceEvent, project: str) -> tuple[str, str, tuple[str, ...]] | None:
    """The tag on the event's commit that releases ``project``, its version, and every one of the
    project's tags there. With several (``api/v1.2.0`` and ``api/v1.3.0`` on one commit), the
    highest version wins: a commit is released once, as the newest version it was tagged with."""
    found = [(tag, v) for tag in event.all_tags() if (v := tag_version(tag, project, event.tagging_strategy))]
    if not found:
        return None
    tag, version = max(found, key=lambda pair: version_key(pair[1]))
    return tag, version, tuple(sorted(t for t, _ in found))


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
        tags = event.all_tags()
        if not tags:
            return _decision(False, spec, "no tag on this commit")
        found = release_tag(event, project.name)
        if found is None:
            expected = f"{project.name}/v<semver>" if event.tagging_strategy == "monorepo" else "v<semver>"
            which = f"tag {tags[0]!r} is not" if len(tags) == 1 else f"none of the tags {', '.join(tags)} is"
            return _decision(
                False, spec, f"{which} a release tag of this project ({expected}, strategy {event.tagging_strategy})"
            )
        tag, version, all_of_project = found
        reason = f"tag {tag!r} releases version {version}"
        if len(all_of_project) > 1:
            reason += f" (the highest of this project's tags on the commit: {', '.join(all_of_project)})"
        return _decision(True, spec, reason)


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
