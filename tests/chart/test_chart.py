"""The Helm chart, rendered by Helm's own SDK (helm-python-sdk): defaults and production values,
lint clean, every object valid (built-in kinds strictly; KEDA and Argo against their projects'
schemas), the values schema refusing wrong types, and every FORGE_* variable a real setting."""

from __future__ import annotations

import copy
import os
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_support import CHART, ROOT, Manifest, crd_errors, is_custom, manifests, production_values, render

from forge_core.adapters.bus.topology import Topology
from forge_core.cli.main import core_commands
from forge_core.domain.jobs import JOB_TYPES
from forge_core.domain.manifest_schemas import ManifestSchemas
from forge_core.settings import load_settings
from forge_core.settings.reference import variable

VALUES = {"defaults": None, "production": "production"}


def values_of(which: str) -> dict[str, Any] | None:
    return production_values() if which == "production" else None


def by_kind(found: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in found if m["kind"] == kind}


def pod_specs(found: list[Manifest]) -> dict[str, dict[str, Any]]:
    """Every pod template the chart renders, by object name (WorkflowTemplate: one per template)."""
    pods: dict[str, dict[str, Any]] = {}
    for m in found:
        if m["kind"] in ("Deployment", "StatefulSet", "Job"):
            pods[f"{m['kind']}/{m['metadata']['name']}"] = m["spec"]["template"]["spec"]
        elif m["kind"] == "WorkflowTemplate":
            for template in m["spec"]["templates"]:
                pods[f"WorkflowTemplate/{template['name']}"] = {"containers": [template["container"]]}
    return pods


@pytest.fixture(scope="module", params=list(VALUES))
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    return manifests(values_of(request.param))


def test_every_object_validates_built_in_kinds_strictly_and_custom_ones_against_their_crds(
    rendered: list[Manifest],
) -> None:
    schemas = ManifestSchemas()
    problems = []
    for m in rendered:
        if is_custom(m):
            problems += crd_errors(m)
        else:
            problems += [f"{m['kind']} {m['metadata']['name']}: {v.path}: {v.message}" for v in schemas.violations(m)]
    assert problems == []
    kinds = {m["kind"] for m in rendered}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet", "ScaledObject", "Job",
            "WorkflowTemplate", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PodDisruptionBudget",
            "NetworkPolicy"} <= kinds
    assert "Secret" not in kinds  # every secret is referenced, never rendered


@pytest.mark.parametrize("which", list(VALUES))
def test_lint_is_clean(which: str) -> None:
    report = helm.lint(CHART, values_of(which), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_a_wrong_type_is_refused_by_the_values_schema_with_helms_message() -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render({"api": {"port": "eighty"}})
    assert "at '/api/port': got string, want integer" in str(refused.value)
    with pytest.raises(helm.HelmValuesError, match="/workers/types/ci/replicas"):
        render({"workers": {"types": {"ci": {"replicas": -1}}}})
    with pytest.raises(helm.HelmValuesError, match="additional properties 'replica' not allowed"):
        render({"api": {"replica": 3}})
    with pytest.raises(helm.HelmValuesError, match="'NOT_A_FORGE_VARIABLE' does not match pattern"):
        render({"settings": {"NOT_A_FORGE_VARIABLE": "x"}})


def test_the_workers_have_the_specs_profiles_and_keda_scales_each_on_its_own_consumer() -> None:
    found = manifests({"keda": {"enabled": False}})
    sets = by_kind(found, "StatefulSet")
    profile = {name.removeprefix("forge-catalyst-forge-worker-"): (
        s["spec"]["replicas"], s["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
        for name, s in sets.items()}
    assert profile == {"discovery": (3, "50Gi"), "ci": (10, "200Gi"), "artifact": (5, "150Gi"),
                       "release": (3, "100Gi"), "deployment": (2, "20Gi")}
    for job_type in JOB_TYPES:
        container = sets[f"forge-catalyst-forge-worker-{job_type}"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["worker", "--type", job_type]
        assert {"name": "cache", "mountPath": "/var/cache/forge"} in container["volumeMounts"]
    assert "ScaledObject" not in {m["kind"] for m in found}


@pytest.mark.parametrize("prefix", ["", "staging"])
def test_scaled_objects_name_the_topologys_streams_and_consumers(prefix: str) -> None:
    found = manifests({"nats": {"prefix": prefix}})
    topology = Topology(prefix)
    scaled = by_kind(found, "ScaledObject")
    assert len(scaled) == len(JOB_TYPES)
    for job_type in JOB_TYPES:
        name = f"forge-catalyst-forge-worker-{job_type}"
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name}
        assert "replicas" not in by_kind(found, "StatefulSet")[name]["spec"]  # KEDA owns the count
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "nats-jetstream"
        assert trigger["metadata"] == {
            "natsServerMonitoringEndpoint": "nats:8222", "account": "$G", "stream": topology.stream(job_type),
            "consumer": topology.consumer(job_type), "lagThreshold": trigger["metadata"]["lagThreshold"],
            "useHttps": "false"}


def test_every_forge_variable_the_chart_sets_is_a_real_setting_and_loads(rendered: list[Manifest],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for where, pod in pod_specs(rendered).items():
        for container in pod["containers"]:
            environment: dict[str, str] = {}
            for entry in container.get("env", []):
                name = entry["name"]
                if not name.startswith("FORGE_"):
                    continue
                setting = variable(name)
                assert setting is not None, f"{where}: {name} is not a setting"
                if "valueFrom" in entry:
                    # Secrets by reference; any setting that is secret must come this way.
                    assert set(entry["valueFrom"]) == {"secretKeyRef"}, f"{where}: {name}"
                    environment[name] = "postgresql+asyncpg://forge:pw@db/forge" if "DATABASE" in name else "s3cret"
                else:
                    assert not setting.secret, f"{where}: the secret {name} is written into the chart"
                    environment[name] = entry["value"]
            with monkeypatch.context() as patch:
                for name in [n for n in os.environ if n.startswith("FORGE_")]:
                    patch.delenv(name)
                for name, value in environment.items():
                    patch.setenv(name, value)
                settings = load_settings()
            assert settings.nats.url == environment["FORGE_NATS__URL"]
            assert settings.nats.replicas == 3


def test_the_api_is_probed_on_its_health_endpoints_and_scaled_on_cpu_and_memory() -> None:
    from forge_core.api.routers.system import router

    routes = {getattr(route, "path", None) for route in router.routes}
    found = manifests()
    (api,) = by_kind(found, "Deployment").values()
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["api"]
    probes = {probe: container[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe",
                                                                        "readinessProbe")}
    assert probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    assert set(probes.values()) <= routes
    (hpa,) = by_kind(found, "HorizontalPodAutoscaler").values()
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    budgets = by_kind(found, "PodDisruptionBudget")
    assert set(budgets) == {"forge-catalyst-forge-api", *(f"forge-catalyst-forge-worker-{t}" for t in JOB_TYPES)}


def test_the_hook_jobs_run_real_commands_before_install_and_upgrade() -> None:
    jobs = by_kind(manifests(), "Job")
    commands = {}
    for name, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        commands[name] = (int(annotations["helm.sh/hook-weight"]), args)
    assert commands == {"forge-catalyst-forge-streams": (0, ["streams", "apply", "--replicas", "3"]),
                        "forge-catalyst-forge-migrations": (1, ["db", "upgrade"])}
    assert {"streams", "db"} <= core_commands()


def test_dispatcher_pods_have_a_template_per_job_type_a_service_account_and_the_executors_rbac() -> None:
    found = manifests()
    (template,) = by_kind(found, "WorkflowTemplate").values()
    names = [t["name"] for t in template["spec"]["templates"]]
    stages = ["stage-release", "stage-deploy", "close-run"]
    assert sorted(names) == sorted([*(f"dispatch-{t}" for t in JOB_TYPES), *stages])
    account = template["spec"]["serviceAccountName"]
    assert account in by_kind(found, "ServiceAccount")
    (binding,) = by_kind(found, "RoleBinding").values()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "forge"}]
    assert by_kind(found, "Role")[binding["roleRef"]["name"]]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
    ci = next(t for t in template["spec"]["templates"] if t["name"] == "dispatch-ci")
    assert ci["container"]["args"][:3] == ["dispatch", "--type", "ci"]
    assert ci["retryStrategy"]["expression"] == "asInt(lastRetry.exitCode) == 7"  # only the bus failing


def token_of(container: dict[str, Any]) -> dict[str, str]:
    (entry,) = [e for e in container["env"] if e["name"] == "FORGE_API__TOKEN"]
    reference: dict[str, str] = entry["valueFrom"]["secretKeyRef"]
    return reference


def test_the_close_run_template_takes_its_token_by_reference_defaulting_to_the_workers() -> None:
    def close_run(found: list[Manifest]) -> dict[str, Any]:
        (template,) = by_kind(found, "WorkflowTemplate").values()
        found_template: dict[str, Any] = next(t for t in template["spec"]["templates"] if t["name"] == "close-run")
        return found_template

    default = close_run(manifests())
    assert default["container"]["args"][:2] == ["workflow", "close"]
    assert {p["name"] for p in default["inputs"]["parameters"]} == {"run-id", "status", "grace"}
    assert token_of(default["container"]) == {"name": "catalyst-forge-api", "key": "token"}
    own = close_run(manifests({"argo": {"closeRun": {"existingSecret": "forge-close", "tokenKey": "jwt"}}}))
    assert token_of(own["container"]) == {"name": "forge-close", "key": "jwt"}
    assert "workflow" in core_commands()


def test_with_an_argo_server_the_api_submits_workflows_with_its_token_by_reference() -> None:
    def api_env(found: list[Manifest]) -> dict[str, Any]:
        (api,) = by_kind(found, "Deployment").values()
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in api["spec"]["template"]["spec"]["containers"][0]
                ["env"]}

    assert "FORGE_ORCHESTRATOR__KIND" not in api_env(manifests())  # no Argo Server named: runs are only recorded
    env = api_env(manifests(values_of("production")))
    assert env["FORGE_ORCHESTRATOR__KIND"] == "argo"
    assert env["FORGE_ORCHESTRATOR__ARGO__URL"] == "https://argo-server.argo.svc.cluster.local:2746"
    assert env["FORGE_ORCHESTRATOR__ARGO__TOKEN"] == {
        "secretKeyRef": {"name": "catalyst-forge-argo-server", "key": "token"}}
    assert env["FORGE_ORCHESTRATOR__ARGO__DISPATCH_TEMPLATE"] == "forge-catalyst-forge-dispatch"
    (template,) = by_kind(manifests(values_of("production")), "WorkflowTemplate")
    assert template == env["FORGE_ORCHESTRATOR__ARGO__DISPATCH_TEMPLATE"]


def test_an_argo_server_without_its_token_secret_is_refused_by_name() -> None:
    with pytest.raises(Exception, match=r"argo\.server\.existingSecret"):
        manifests({"argo": {"server": {"url": "https://argo.example:2746"}}})


def test_every_pod_is_under_a_network_policy(rendered: list[Manifest]) -> None:
    policies = by_kind(rendered, "NetworkPolicy").values()
    covered = {c for p in policies for e in p["spec"]["podSelector"]["matchExpressions"] for c in e["values"]}
    components = set()
    for m in rendered:
        if m["kind"] in ("Deployment", "StatefulSet", "Job"):
            components.add(m["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])
        elif m["kind"] == "WorkflowTemplate":
            components |= {t["metadata"]["labels"]["app.kubernetes.io/component"] for t in m["spec"]["templates"]}
    assert components and components <= covered


def test_the_cmp_plugin_config_is_shipped_and_the_repo_server_snippet_mounts_it() -> None:
    found = manifests()
    (config_map,) = by_kind(found, "ConfigMap").values()
    shipped = (CHART / "files" / "argocd-cmp-plugin.yaml").read_text()
    assert config_map["data"]["plugin.yaml"].strip() == shipped.strip()
    plugin = yaml.safe_load(shipped)
    assert (plugin["kind"], plugin["metadata"]["name"]) == ("ConfigManagementPlugin", "catalyst-forge")
    assert plugin["spec"]["generate"]["command"] == ["forge", "cmp", "generate"]
    written = ROOT / "deploy" / "argocd" / "plugin.yaml"  # the cmp branch's copy, once merged
    if written.exists():
        assert written.read_text() == shipped

    snippet = yaml.safe_load((CHART / "argocd-repo-server-values.yaml").read_text())["repoServer"]
    (sidecar,) = snippet["extraContainers"]
    volumes = {v["name"]: v for v in snippet["volumes"]}
    mount = next(m for m in sidecar["volumeMounts"] if m["mountPath"] == "/home/argocd/cmp-server/config/plugin.yaml")
    assert mount["subPath"] == "plugin.yaml"
    assert volumes[mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    # The sidecar as Kubernetes would take it: a container of a pod with those volumes.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "repo-server"},
           "spec": {"containers": [copy.deepcopy(sidecar)], "volumes": snippet["volumes"]}}
    assert ManifestSchemas().violations(pod) == []
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
