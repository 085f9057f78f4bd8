"""The core's kubernetes renderer: artifact references pinned, every kind validated strictly,
every problem reported at once, YAML that reads back as the same data."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
import yaml

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.manifest_schemas import (
    UnsupportedKubernetesVersion,
    supported_kubernetes_versions,
)
from forge_core.domain.models import ArtifactReference, PublishedLocation, RenderRequest
from forge_core.domain.rendering import KubernetesRenderer, RenderError
from forge_core.settings import load_settings

COMMIT = "c0ffee" + "0" * 34
API_DIGEST = "sha256:" + "a" * 64
TRACKING_DIGEST = "sha256:" + "b" * 64
TRACKING = f"registry.local/monorepo/api/api:sha-{COMMIT}"

# The example's deploy resources (examples/monorepo/services/api/.forge/project.cue) as discovery leaves them.
EXAMPLE: list[dict[str, Any]] = [
    {
        "apiVersion": "forge.projectcatalyst.io/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {
            "image": "@artifact(api).image",
            "replicas": 2,
            "port": 8080,
            "env": [{"name": "API_COMMIT", "value": COMMIT[:7]}],
        },
    },
    {
        "apiVersion": "forge.projectcatalyst.io/v1alpha1",
        "kind": "Network",
        "metadata": {"name": "api"},
        "spec": {"hostname": "orders", "port": 8080, "targetRef": {"name": "api"}},
    },
]


def api_reference(digest: str | None = API_DIGEST) -> ArtifactReference:
    return ArtifactReference(
        published=(
            PublishedLocation(publisher="container-registry", type="docker", uri="reg.local/acme/api:1.2.0",
                              digest=digest, metadata={"registry": "reg.local"}),
            PublishedLocation(publisher="mirror", type="docker", uri="mirror.local/api:1.2.0", digest=API_DIGEST),
        ),
        tracking=TRACKING,
        tracking_digest=TRACKING_DIGEST,
    )


def request(resources: list[dict[str, Any]], **references: ArtifactReference) -> RenderRequest:
    return RenderRequest(
        repository="acme/monorepo",
        project="api",
        commit=COMMIT,
        resources={"resources": copy.deepcopy(resources)},
        artifact_references=references or {"api": api_reference()},
    )


def problems(resources: list[dict[str, Any]], renderer: KubernetesRenderer | None = None,
             **references: ArtifactReference) -> list[tuple[int | None, str, str, str]]:
    with pytest.raises(RenderError) as raised:
        (renderer or KubernetesRenderer()).render(request(resources, **references))
    assert raised.value.where == "project api"
    return [(p.index, p.resource, p.path, p.message) for p in raised.value.problems]


def apps_deployment(**spec_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "@artifact(api).image",
                                         "ports": [{"containerPort": 8080}]}]},
            },
            **spec_extra,
        },
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}
CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web"},
    "data": {"enabled": "true", "ratio": "1.0", "big": "1e3", "mode": "0o17", "empty": "", "yes": "yes"},
}


def test_the_example_renders_with_its_image_pinned_and_reads_back_as_the_same_data() -> None:
    rendered = KubernetesRenderer().render(request(EXAMPLE))
    assert [(m["kind"], m["metadata"]["name"]) for m in rendered.manifests] == [("Deployment", "api"),
                                                                               ("Network", "api")]
    assert rendered.manifests[0]["spec"]["image"] == f"reg.local/acme/api:1.2.0@{API_DIGEST}"
    assert list(yaml.safe_load_all(rendered.text)) == list(rendered.manifests)
    assert rendered.text.startswith("---\napiVersion: forge.projectcatalyst.io/v1alpha1\nkind: Deployment\n")
    assert rendered.text.count("\n---\n") == 1


def test_same_input_same_bytes_whatever_the_order_of_the_resources() -> None:
    elsewhere = copy.deepcopy(SERVICE)
    elsewhere["metadata"]["namespace"] = "other"
    first = KubernetesRenderer().render(request([*EXAMPLE, SERVICE, elsewhere, CONFIG_MAP, apps_deployment()])).text
    again = KubernetesRenderer().render(
        request([apps_deployment(), elsewhere, CONFIG_MAP, *reversed(EXAMPLE), SERVICE])).text
    assert first == again
    assert first.index("name: web\nspec:") < first.index("namespace: other")


def test_tracking_digest_uri_and_metadata_fields_resolve() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "refs"}, "data": {
        "tracking": "@artifact(api).tracking", "uri": "@artifact(api)", "digest": "@artifact(api).digest",
        "registry": "@artifact(api).registry", "image": "@artifact(api).image"}}
    (manifest,) = KubernetesRenderer().render(request([config])).manifests
    assert manifest["data"] == {
        "tracking": f"{TRACKING}@{TRACKING_DIGEST}",
        "uri": "reg.local/acme/api:1.2.0",
        "digest": API_DIGEST,
        "registry": "reg.local",
        "image": f"reg.local/acme/api:1.2.0@{API_DIGEST}",
    }
    unpinned = ArtifactReference(published=api_reference().published, tracking=TRACKING)
    (manifest,) = KubernetesRenderer().render(request([config], api=unpinned)).manifests
    assert manifest["data"]["tracking"] == TRACKING


def test_an_image_whose_primary_location_has_no_digest_is_refused() -> None:
    assert problems(EXAMPLE, api=api_reference(digest=None)) == [(
        0, "Deployment/api", "spec.image",
        "artifact 'api': its primary published location reg.local/acme/api:1.2.0 (container-registry) has no "
        "digest, so .image cannot be pinned",
    )]


def test_an_unknown_artifact_and_an_unknown_field_are_named() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
              "data": {"a": "@artifact(web).image", "b": "@artifact(api).colour"}}
    assert problems([config]) == [
        (0, "ConfigMap/c", "data.a", "reference to unknown artifact 'web'; known: api"),
        (0, "ConfigMap/c", "data.b", "artifact 'api' has no field 'colour'; it has: digest, image, tracking, uri, "
                                     "registry"),
    ]


def test_the_flat_artifacts_strings_still_resolve() -> None:
    legacy = RenderRequest(repository="acme/monorepo", project="api", commit=COMMIT,
                           resources={"resources": copy.deepcopy(EXAMPLE)},
                           artifacts={"api.image": f"reg.local/acme/api:1.2.0@{API_DIGEST}"})
    rendered = KubernetesRenderer().render(legacy)
    assert rendered.manifests[0]["spec"]["image"] == f"reg.local/acme/api:1.2.0@{API_DIGEST}"


def test_service_config_map_and_apps_v1_deployment_are_valid() -> None:
    rendered = KubernetesRenderer("1.33").render(request([apps_deployment(), SERVICE, CONFIG_MAP]))
    assert [m["kind"] for m in rendered.manifests] == ["ConfigMap", "Deployment", "Service"]
    container = rendered.manifests[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"reg.local/acme/api:1.2.0@{API_DIGEST}"


def test_an_unknown_field_in_an_apps_v1_deployment_is_refused_naming_it() -> None:
    assert problems([apps_deployment(replicaz=3)]) == [
        (0, "Deployment/web", "spec.replicaz", "unknown field (not in the schema)"),
    ]


def test_a_wrong_type_in_a_platform_kind_names_project_resource_and_field() -> None:
    broken = copy.deepcopy(EXAMPLE)
    broken[1]["spec"]["port"] = "8080"
    with pytest.raises(RenderError) as raised:
        KubernetesRenderer().render(request(broken))
    message = str(raised.value)
    assert message.startswith("project api: 1 problem(s) in its deploy resources:")
    assert "deploy.resources[1] (Network/api) spec.port: '8080' is not of type 'integer'" in message
    assert raised.value.details["problems"] == [
        {"index": 1, "resource": "Network/api", "path": "spec.port", "message": "'8080' is not of type 'integer'"},
    ]


def test_every_problem_is_reported_together() -> None:
    deployment = apps_deployment(replicaz=3)
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    platform = copy.deepcopy(EXAMPLE)
    platform[0]["spec"]["replicas"] = "two"
    platform[0]["spec"]["colour"] = "blue"
    del platform[1]["spec"]["targetRef"]
    found = problems([*platform, deployment, {"apiVersion": "acme.io/v1", "kind": "Widget",
                                              "metadata": {"name": "w"}}])
    assert [(i, r, p) for i, r, p, _ in found] == [
        (0, "Deployment/api", "spec.colour"),
        (0, "Deployment/api", "spec.replicas"),
        (1, "Network/api", "spec"),
        (2, "Deployment/web", "spec.replicaz"),
        (2, "Deployment/web", "spec.template.spec.containers[0].ports[0].containerPort"),
        (3, "Widget/w", "kind"),
    ]
    assert found[2][3] == "'targetRef' is a required property"
    assert "acme.io/v1 Widget is neither a built-in kind of Kubernetes" in found[5][3]


def test_a_platform_kind_the_platform_does_not_define_is_refused() -> None:
    secrets = {"apiVersion": "forge.projectcatalyst.io/v1alpha1", "kind": "Database", "metadata": {"name": "db"},
               "spec": {}}
    assert problems([secrets]) == [(
        0, "Database/db", "kind",
        "forge.projectcatalyst.io/v1alpha1 Database is not one of the platform's kinds "
        "(forge.projectcatalyst.io/v1alpha1/Deployment, forge.projectcatalyst.io/v1alpha1/Network)",
    )]


def test_a_kind_with_a_schema_given_to_the_renderer_is_validated() -> None:
    # How a plugin adds kinds: it registers a renderer of its own, the core's with more schemas.
    from forge_core import sdk

    schema = {"type": "object", "required": ["spec"], "properties": {
        "apiVersion": {"const": "acme.io/v1"}, "kind": {"const": "Widget"},
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}, "additionalProperties": False}}}
    renderer = functools.partial(sdk.KubernetesRenderer, schemas=[schema])()
    widget = {"apiVersion": "acme.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    assert renderer.render(request([widget])).manifests[0]["spec"] == {"size": 3}
    widget["spec"] = {"size": "big"}
    assert problems([widget], renderer) == [(0, "Widget/w", "spec.size", "'big' is not of type 'integer'")]


def test_two_resources_of_one_kind_and_name_are_refused() -> None:
    assert problems([SERVICE, SERVICE]) == [(1, "Service/web", "metadata.name", "defined twice (also "
                                                                                   "deploy.resources[0])")]


def test_a_resource_without_kind_or_name_is_refused() -> None:
    found = problems([{"apiVersion": "v1"}, {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}])
    assert found[0] == (0, "?", "", "a resource needs apiVersion and kind (strings)")
    assert found[1] == (1, "ConfigMap/?", "metadata.name", "a resource needs a name (a string)")


def test_strings_that_look_like_numbers_or_booleans_stay_strings() -> None:
    rendered = KubernetesRenderer().render(request([CONFIG_MAP]))
    assert yaml.safe_load(rendered.text)["data"] == CONFIG_MAP["data"]
    # "1e3" and "0o17" are numbers to a YAML 1.2 reader (kubectl's, Argo CD's) though not to PyYAML
    assert rendered.text.endswith(
        'data:\n  enabled: "true"\n  ratio: "1.0"\n  big: "1e3"\n  mode: "0o17"\n  empty: ""\n  \'yes\': \'yes\'\n'
    )


def test_no_anchors_or_aliases_in_the_output() -> None:
    labels = {"app": "web"}
    shared = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": labels},
              "data": {"x": "1"}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "labels": labels}}
    text = KubernetesRenderer().render(request([shared, other])).text
    assert "&" not in text and "*" not in text
    assert text.count("app: web") == 2


@pytest.mark.parametrize("version", ["1.20", "2.0", "latest", "1.33.x"])
def test_an_unsupported_kubernetes_version_lists_the_supported_ones(version: str) -> None:
    with pytest.raises(UnsupportedKubernetesVersion) as raised:
        KubernetesRenderer(version)
    supported = supported_kubernetes_versions()
    assert "1.25" in supported and "1.37" in supported
    assert str(raised.value) == (f"render.kubernetes_version: Kubernetes version {version!r} is not supported; "
                                 f"supported: {', '.join(supported)}")


@pytest.mark.parametrize(("given", "used"), [("1.30", "1.30"), ("v1.31", "1.31"), ("1.29.4", "1.29")])
def test_a_kubernetes_version_is_read_as_major_minor(given: str, used: str) -> None:
    assert KubernetesRenderer(given).schemas.version == used


def test_the_version_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().render.kubernetes_version == supported_kubernetes_versions()[-1]
    monkeypatch.setenv("FORGE_RENDER__KUBERNETES_VERSION", "v1.30.2")
    assert load_settings().render.kubernetes_version == "1.30"
    monkeypatch.setenv("FORGE_RENDER__KUBERNETES_VERSION", "1.19")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "FORGE_RENDER__KUBERNETES_VERSION: Value error, Kubernetes version '1.19' is not supported; supported: " \
        "1.25, 1.26" in str(raised.value)


def test_a_field_newer_than_the_configured_version_is_refused() -> None:
    # Pod.spec.hostUsers arrived in Kubernetes 1.25's schema; resizePolicy of containers in 1.27.
    deployment = apps_deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["resizePolicy"] = [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    assert KubernetesRenderer("1.33").render(request([deployment])).manifests
    assert problems([deployment], KubernetesRenderer("1.26")) == [
        (0, "Deployment/web", "spec.template.spec.containers[0].resizePolicy", "unknown field (not in the schema)"),
    ]


def test_the_request_names_the_kubernetes_version() -> None:
    deployment = apps_deployment()
    deployment["spec"]["template"]["spec"]["containers"][0]["resizePolicy"] = [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    renderer = KubernetesRenderer("1.33")
    older = request([deployment]).model_copy(update={"kubernetes_version": "1.26"})
    with pytest.raises(RenderError, match=r"containers\[0\].resizePolicy: unknown field"):
        renderer.render(older)
    assert renderer.render(request([deployment])).manifests
    with pytest.raises(UnsupportedKubernetesVersion, match=r"'1\.99' is not supported"):
        renderer.render(request([deployment]).model_copy(update={"kubernetes_version": "1.99"}))
