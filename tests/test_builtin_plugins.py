"""The core's built-in plugins, proved with the same contracts third parties use."""

from __future__ import annotations

import pytest
import yaml

from forge_core.domain.models import EventKind, ProjectRef, RenderRequest, SourceEvent, TriggerSpec
from forge_core.domain.rendering import KubernetesRenderer, RenderError
from forge_core.domain.triggers import tag_version
from forge_core.testing.contracts import RendererContract, TriggerContract

API = ProjectRef(name="api", path="services/api")
SHA = "f" * 40


def push(branch: str) -> SourceEvent:
    return SourceEvent(repository="acme/mono", commit=SHA, branch=branch)


def tagged(tag: str, strategy: str = "monorepo") -> SourceEvent:
    return SourceEvent(repository="acme/mono", commit=SHA, tag=tag, kind=EventKind.TAG, tagging_strategy=strategy)


def spec(kind: str, value: object = True) -> TriggerSpec:
    return TriggerSpec(type=kind, settings={"value": value})


class TestCoreTriggers(TriggerContract):
    plugin_id = "core.triggers"
    builtin = True
    names = ("branch", "tag", "manual", "always", "pull_request")
    cases = [
        ("branch", spec("branch", "main"), push("main"), API, True),
        ("branch", spec("branch", "main"), push("feature-x"), API, False),
        ("branch", spec("branch", "release/.*"), push("release/2026.11"), API, True),
        ("branch", spec("branch", "release/.*"), push("hotfix/release/1"), API, False),
        ("branch", spec("branch", "main"), tagged("api/v1.0.0"), API, False),
        ("branch", spec("branch", "ma[in"), push("main"), API, False),  # broken regex: exact match only
        ("tag", spec("tag"), tagged("api/v1.2.3"), API, True),
        ("tag", spec("tag"), tagged("web/v1.2.3"), API, False),
        ("tag", spec("tag"), tagged("v1.2.3"), API, False),
        ("tag", spec("tag"), tagged("v1.2.3", "tag-all"), API, True),
        ("tag", spec("tag"), tagged("api/v1.2.3", "tag-all"), API, False),
        ("tag", spec("tag"), tagged("api/latest"), API, False),
        ("tag", spec("tag", False), tagged("api/v1.2.3"), API, False),
        ("tag", spec("tag"), push("main"), API, False),
        ("manual", spec("manual"), SourceEvent(repository="r", commit=SHA, kind=EventKind.MANUAL), API, True),
        (
            "manual",
            spec("manual"),
            SourceEvent(repository="r", commit=SHA, kind=EventKind.MANUAL, manual_projects=("web",)),
            API,
            False,
        ),
        ("manual", spec("manual"), push("main"), API, False),
        ("always", spec("always"), push("anything"), API, True),
        ("always", spec("always", False), push("anything"), API, False),
        (
            "pull_request",
            spec("pull_request"),
            SourceEvent(repository="r", commit=SHA, branch="main", kind=EventKind.PULL_REQUEST, pull_request=12),
            API,
            True,
        ),
        (
            "pull_request",
            spec("pull_request", "main"),
            SourceEvent(repository="r", commit=SHA, branch="dev", kind=EventKind.PULL_REQUEST),
            API,
            False,
        ),
        ("pull_request", spec("pull_request"), push("main"), API, False),
    ]


class TestCoreRenderer(RendererContract):
    plugin_id = "core.renderers"
    builtin = True
    names = ("kubernetes",)


@pytest.mark.parametrize(
    ("tag", "project", "strategy", "version"),
    [
        ("api/v1.2.3", "api", "monorepo", "1.2.3"),
        ("services/api/v2.0.0-rc.1", "services/api", "monorepo", "2.0.0-rc.1"),
        ("api/v1.2", "api", "monorepo", None),
        ("v3.0.0", None, "tag-all", "3.0.0"),
        ("v3.0.0", "api", "monorepo", None),
    ],
)
def test_tag_version_by_strategy(tag: str, project: str | None, strategy: str, version: str | None) -> None:
    assert tag_version(tag, project, strategy) == version


def request(resources: list[dict[str, object]], artifacts: dict[str, str]) -> RenderRequest:
    return RenderRequest(
        repository="acme/mono", project="api", commit=SHA, resources={"resources": resources}, artifacts=artifacts
    )


def test_renderer_resolves_artifact_references_and_orders_manifests() -> None:
    resources = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "api"},
            "data": {"image": "@artifact(api-image).image", "note": "@artifact is fine here"},
        },
    ]
    rendered = KubernetesRenderer().render(request(resources, {"api-image": "registry.local/acme/api:sha-" + SHA}))
    assert [m["kind"] for m in rendered.manifests] == ["ConfigMap", "Service"]
    documents = list(yaml.safe_load_all(rendered.text))
    assert documents[0]["data"]["image"] == "registry.local/acme/api:sha-" + SHA
    assert documents[0]["data"]["note"] == "@artifact is fine here"


def test_renderer_names_the_unknown_artifact_and_where() -> None:
    resources = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"i": "@artifact(web)"}}]
    with pytest.raises(RenderError) as raised:
        KubernetesRenderer().render(request(resources, {"api": "x"}))
    (problem,) = raised.value.problems
    assert problem.message == "reference to unknown artifact 'web'; known: api"
    assert (problem.index, problem.resource, problem.path) == (0, "ConfigMap/c", "data.i")


def test_renderer_refuses_a_resource_without_kind() -> None:
    with pytest.raises(RenderError, match="apiVersion and kind"):
        KubernetesRenderer().render(request([{"apiVersion": "v1"}], {}))
