"""The platform's kinds on Crossplane: XRDs generated from the kinds' schemas (and agreeing with
them), Compositions in pipeline mode and EnvironmentConfigs valid against Crossplane's CRDs, the
example's rendered resources valid against the XRDs, and the Compositions' Go templates executed
(by Helm's engine: Go text/template with sprig, as function-go-templating uses) into objects that
validate strictly. Running a Composition itself needs a cluster with Crossplane: not done here."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml
from chart_support import CHART, ROOT, Manifest, closed, crd_errors, manifests, production_values

from forge_core.domain.crossplane import composite_definition
from forge_core.domain.manifest_schemas import ManifestSchemas, platform_schemas
from forge_core.domain.models import ArtifactReference, PublishedLocation, RenderRequest
from forge_core.domain.rendering import KubernetesRenderer

CROSSPLANE = CHART / "crossplane"
DIGEST = "sha256:" + "a" * 64


def enabled() -> list[Manifest]:
    return manifests({"crossplane": {"enabled": True}})


def xrd_schemas() -> dict[str, dict[str, Any]]:
    return {m["spec"]["names"]["kind"]: m["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for m in enabled() if m["kind"] == "CompositeResourceDefinition"}


def xrd_validator(kind: str) -> jsonschema.protocols.Validator:
    # Closed, as the API server's pruning leaves nothing unknown standing; apiVersion, kind and
    # metadata are every object's (the API server checks those).
    schema = closed(xrd_schemas()[kind])
    schema["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                 "metadata": {"type": "object"}})
    return jsonschema.Draft7Validator(schema)


def test_the_committed_xrds_are_the_ones_generated_from_the_kinds_schemas() -> None:
    for schema in platform_schemas():
        xrd = composite_definition(schema)
        path = CROSSPLANE / f"xrd-{xrd['spec']['names']['kind'].lower()}.yaml"
        assert yaml.safe_load(path.read_text()) == xrd, f"{path} is stale: run scripts/crossplane-xrds"


@pytest.mark.parametrize("values", [{"crossplane": {"enabled": True}}, production_values()])
def test_xrds_compositions_and_environment_configs_validate_against_crossplanes_crds(values: dict[str, Any]) -> None:
    found = [m for m in manifests(values) if m["apiVersion"].startswith("apiextensions.crossplane.io/")]
    assert sorted((m["kind"], m["metadata"]["name"]) for m in found) == [
        ("CompositeResourceDefinition", "deployments.forge.projectcatalyst.io"),
        ("CompositeResourceDefinition", "networks.forge.projectcatalyst.io"),
        ("Composition", "deployments.forge.projectcatalyst.io"),
        ("Composition", "networks.forge.projectcatalyst.io"),
        ("EnvironmentConfig", "forge-catalyst-forge-defaults"),
    ]
    example = yaml.safe_load((CROSSPLANE / "examples" / "environmentconfig.yaml").read_text())
    assert [e for m in [*found, example] for e in crd_errors(m)] == []
    for composition in (m for m in found if m["kind"] == "Composition"):
        assert composition["spec"]["mode"] == "Pipeline"
        steps = [step["functionRef"]["name"] for step in composition["spec"]["pipeline"]]
        assert steps == ["function-environment-configs", "function-go-templating", "function-auto-ready"]


def test_crossplane_is_off_by_default() -> None:
    assert not [m for m in manifests() if "crossplane" in m["apiVersion"]]


def test_an_environment_config_in_an_old_shape_is_refused() -> None:
    old = {"apiVersion": "apiextensions.crossplane.io/v1beta1", "kind": "EnvironmentConfig",
           "metadata": {"name": "x"}, "spec": {"data": {"replicas": 1}}}  # data under spec: not Crossplane's shape
    assert any("'spec' was unexpected" in e for e in crd_errors(old))


@pytest.fixture(scope="module")
def example_resources(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    """The example monorepo's api resources: discovered from its CUE by `forge discover`, then
    rendered by the kubernetes renderer with the api image pinned."""
    sys.path.insert(0, str(ROOT / "examples"))
    from make_example import make_example  # type: ignore[import-not-found]

    repo = make_example(tmp_path_factory.mktemp("example") / "acme")
    found = subprocess.run([sys.executable, "-m", "forge_core.cli.main", "discover", str(repo), "--json"],
                           capture_output=True, text=True, check=True, timeout=120)
    (api,) = [p for p in json.loads(found.stdout)["projects"] if p["project"]["name"] == "api"]
    reference = ArtifactReference(published=(PublishedLocation(
        publisher="container-registry", type="docker", uri="reg.local/acme/api:1.2.0", digest=DIGEST),))
    rendered = KubernetesRenderer().render(RenderRequest(
        repository="acme/monorepo", project="api", commit="c" * 40, resources={"resources": api["resources"]},
        artifact_references={"api": reference}))
    return [dict(m) for m in rendered.manifests]


def test_the_examples_platform_resources_validate_against_the_xrds(example_resources: list[Manifest]) -> None:
    assert [(m["kind"], m["metadata"]["name"]) for m in example_resources] == [("Deployment", "api"),
                                                                               ("Network", "api")]
    for manifest in example_resources:
        assert list(xrd_validator(manifest["kind"]).iter_errors(manifest)) == []


@pytest.mark.parametrize(("kind", "change", "field"), [
    ("Deployment", {"replicas": "two"}, "replicas"),
    ("Deployment", {"image": ""}, "image"),
    ("Deployment", {"port": 70000}, "port"),
    ("Deployment", {"env": [{"name": "1BAD", "value": "x"}]}, "name"),
    ("Deployment", {"resources": {"limits": {"cpu": "lots"}}}, "cpu"),
    ("Deployment", {"colour": "blue"}, "colour"),
    ("Network", {"targetRef": {"name": "api", "kind": "Service"}}, "kind"),
    ("Network", {"hostname": "Not A Host"}, "hostname"),
])
def test_the_xrd_and_the_renderers_schema_refuse_the_same_spec(
    example_resources: list[Manifest], kind: str, change: dict[str, Any], field: str,
) -> None:
    manifest = copy.deepcopy(next(m for m in example_resources if m["kind"] == kind))
    manifest["spec"].update(change)
    cluster = list(xrd_validator(kind).iter_errors(manifest))
    renderer = ManifestSchemas().violations(manifest)
    assert cluster and renderer
    assert any(field in (".".join(map(str, e.absolute_path)) + e.message) for e in cluster)
    assert any(field in (v.path + v.message) for v in renderer)


def execute_go_template(template: str, data: dict[str, Any], tmp_path: Path) -> list[Manifest]:
    """Run a Composition's template the way function-go-templating does (Go text/template and
    sprig; the request as the template's data), here through Helm's engine with the data as values."""
    chart = tmp_path / "composition"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: composition\nversion: 0.0.0\n")
    (chart / "templates" / "composed.yaml").write_text("{{- with .Values }}\n" + template + "\n{{- end }}\n")
    loaded = helm.Chart.load(chart)
    try:
        text = loaded.render(data, name="x", namespace="mono-repo-api")["composition/templates/composed.yaml"]
    finally:
        loaded.close()
    return [d for d in yaml.safe_load_all(text) if d]


def composition_template(kind: str) -> str:
    (composition,) = [m for m in enabled()
                      if m["kind"] == "Composition" and m["spec"]["compositeTypeRef"]["kind"] == kind]
    (step,) = [s for s in composition["spec"]["pipeline"] if s["step"] == "render"]
    template: str = step["input"]["inline"]["template"]
    return template


def test_the_compositions_compose_valid_kubernetes_objects_from_the_example_and_its_environment(
    example_resources: list[Manifest], tmp_path: Path,
) -> None:
    defaults = next(m for m in enabled() if m["kind"] == "EnvironmentConfig")["data"]
    project = yaml.safe_load((CROSSPLANE / "examples" / "environmentconfig.yaml").read_text())["data"]
    environment = {**defaults, **project}  # function-environment-configs merges in order
    schemas = ManifestSchemas()
    composed: dict[str, Manifest] = {}
    for xr in example_resources:
        xr = {**xr, "metadata": {**xr["metadata"], "namespace": "mono-repo-api"}}
        data = {"observed": {"composite": {"resource": xr}},
                "context": {"apiextensions.crossplane.io/environment": environment}}
        for obj in execute_go_template(composition_template(xr["kind"]), data, tmp_path / xr["kind"]):
            if obj["apiVersion"].startswith("forge.projectcatalyst.io/"):
                assert obj["status"]["address"] == "http://orders.staging.example.internal/"
                continue
            assert schemas.violations(obj) == [], obj
            composed[obj["kind"]] = obj
    assert set(composed) == {"Deployment", "Service", "Ingress"}
    deployment = composed["Deployment"]["spec"]
    container = deployment["template"]["spec"]["containers"][0]
    assert deployment["replicas"] == 2  # the resource's own replicas win over the environment's
    assert container["image"] == f"reg.local/acme/api:1.2.0@{DIGEST}"
    assert [e["name"] for e in container["env"]] == ["API_COMMIT", "LOG_LEVEL"]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    ingress = composed["Ingress"]["spec"]
    assert ingress["ingressClassName"] == "internal"  # not public: inside only
    assert ingress["rules"][0]["host"] == "orders.staging.example.internal"
    assert ingress["rules"][0]["http"]["paths"][0]["backend"]["service"] == {"name": "api", "port": {"number": 8080}}
