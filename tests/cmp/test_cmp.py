"""`forge cmp generate` and `discover`, run as Argo CD runs them (a process in the deployment
folder, stdout and stderr apart), against Release images written by the release writer in the
embedded layout store and in a real docker-registry; hostile resources layers carry the test's own
bytes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from forge_core.adapters.cmp import TRACKING_ARTIFACT_TYPE
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.adapters.oci.release_image import push_release_image
from forge_core.domain.gitops import ReleasePointer
from forge_core.domain.oci import EMPTY, EMPTY_JSON, Descriptor, Manifest
from forge_core.domain.release_image import (
    METADATA,
    RESOURCES,
    PrimaryLocation,
    ReleaseArtifactRef,
    ReleaseFacts,
    ReleaseMetadata,
    ReleaseTriggerInfo,
    TrackingRef,
    release_manifest,
    release_repository,
    resource_files,
)
from forge_core.ports.oci import OciStore
from forge_core.testing.registry import RegistryServer

FORGE = str(Path(sys.executable).parent / "forge")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPOSITORY = "acme/mono-repo"
PROJECT = "api-server"  # both hold hyphens: nothing may split "mono-repo-api-server"
DIGEST = "sha256:" + "b" * 64


def manifests(count: int = 3) -> list[dict[str, Any]]:
    """Deploy resources in the renderer's order; the CMP prints them by (kind, name)."""
    found: list[dict[str, Any]] = []
    for index in range(count):
        found.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{index:03d}"},
                      "spec": {"ports": [{"port": 80 + index}]}})
        found.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"app-{index:03d}"},
                      "spec": {"replicas": 1, "template": {"spec": {"containers": [
                          {"name": "app", "image": f"reg.example/api:1.0.{index}@{DIGEST}"}]}}}})
    return found


def facts(project: str = PROJECT, artifacts: tuple[ReleaseArtifactRef, ...] = ()) -> ReleaseFacts:
    return ReleaseFacts(
        repository=REPOSITORY, project=project, commit=COMMIT, release_number=7, aliases=("7",),
        trigger=ReleaseTriggerInfo(type="branch_push", branch="main"), artifacts=artifacts,
        created=datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC),
    )


def artifact(reference: str, digest: str, name: str = "api") -> ReleaseArtifactRef:
    return ReleaseArtifactRef(name=name, type="container", tracking=TrackingRef(reference=reference, digest=digest),
                              primary=PrimaryLocation(uri="reg.example/api:1.0.0", digest=DIGEST))


def push_release(store: OciStore, project: str = PROJECT, count: int = 3,
                 artifacts: tuple[ReleaseArtifactRef, ...] = ()) -> str:
    """A Release image written by the release writer; its manifest digest."""
    return push_release_image(store, facts(project, artifacts), resource_files(manifests(count))).digest


def push_raw_release(store: OciStore, layer: bytes, project: str = PROJECT, *, canonical: bool = False) -> str:
    """A Release image whose resources layer is ``layer`` as given (for layers forge never writes:
    traversal, links, bombs); metadata and manifest as the writer's domain builds them, the
    metadata claiming a canonical layer when ``canonical`` says so (whether it is one or not)."""
    repository = release_repository(REPOSITORY, project)
    resources = Descriptor.of(layer, RESOURCES)
    metadata = ReleaseMetadata(**facts(project).model_dump(), resources_digest=resources.digest,
                               resources_canonical=canonical).to_json()
    manifest = release_manifest(ReleaseMetadata.model_validate_json(metadata), Descriptor.of(metadata, METADATA),
                                resources)
    store.push_blob(repository, EMPTY_JSON, EMPTY)
    store.push_blob(repository, layer, RESOURCES)
    store.push_blob(repository, metadata, METADATA)
    return store.push_manifest(repository, manifest, tags=[COMMIT]).digest


def tar_gz(add: Callable[[tarfile.TarFile], None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        add(archive)
    return raw.getvalue()


def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_pointer(root: Path, environment: str = "dev", project: str = PROJECT, *,
                  release: str = COMMIT, edit: Callable[[dict[str, Any]], None] | None = None,
                  env_file: Mapping[str, str] | None = None) -> Path:
    """``<root>/environments/<env>/mono-repo-<project>/release.yaml`` as the deployment job writes
    it (``edit`` may change the document first); the folder."""
    pointer = ReleasePointer(environment=environment, repository=REPOSITORY, project=project, release=COMMIT,
                             release_number=7, deployed_by="alice")
    document = pointer.manifest()
    document["spec"]["release"] = release
    if edit is not None:
        edit(document)
    folder = root / pointer.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "release.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    for name, text in (env_file or {}).items():
        (folder / name).write_text(text)
    return folder


ENV_YAML = """\
apiVersion: apiextensions.crossplane.io/v1beta1
kind: EnvironmentConfig
metadata:
  name: mono-repo-api-server
data:
  replicas: 2
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Cmp:
    """`forge cmp` with its own state dir and cache; ``registry`` empty means the embedded layout."""

    state: Path
    cache: Path
    registry: str = ""
    env: dict[str, str] | None = None

    def __call__(self, folder: Path, *args: str, **extra: str) -> Run:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "ARGOCD_", "XDG_"))}
        environment |= {"FORGE_STATE_DIR": str(self.state), "FORGE_CMP__CACHE_DIR": str(self.cache),
                        "FORGE_RELEASE__REGISTRY": self.registry, "FORGE_OCI__ATTEMPTS": "1"}
        environment |= (self.env or {}) | extra
        done = subprocess.run([FORGE, "cmp", *(args or ("generate",))], cwd=folder, env=environment,
                              capture_output=True, text=True, timeout=120)
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cmp(tmp_path: Path) -> Cmp:
    return Cmp(state=tmp_path / "state", cache=tmp_path / "cache")


def kinds_and_names(text: str) -> list[tuple[str, str]]:
    return [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(text) if d is not None]


def test_generate_from_the_layout_prints_sorted_resources_then_env_yaml(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"), count=3)
    folder = write_pointer(tmp_path / "gitops", env_file={"env.yaml": ENV_YAML})
    first = cmp(folder)
    assert first.code == 0, first.stderr
    assert kinds_and_names(first.stdout) == [
        ("Deployment", "app-000"), ("Deployment", "app-001"), ("Deployment", "app-002"),
        ("Service", "svc-000"), ("Service", "svc-001"), ("Service", "svc-002"),
        ("EnvironmentConfig", "mono-repo-api-server"),  # the folder's env.yaml comes last
    ]
    assert "@sha256:" + "b" * 64 in first.stdout  # image references stay pinned by digest
    assert list(cmp.cache.iterdir()), "the rendered release is cached"
    second = cmp(folder)
    assert (second.code, second.stdout) == (0, first.stdout)  # byte-identical


def test_a_warm_run_reads_the_cache_not_the_layers(tmp_path: Path, cmp: Cmp) -> None:
    store = LayoutStore(cmp.state / "oci")
    digest = push_release(store)
    folder = write_pointer(tmp_path / "gitops")
    cold = cmp(folder)
    assert cold.code == 0, cold.stderr
    manifest = store.fetch_manifest(f"mono-repo/{PROJECT}", digest).document
    assert isinstance(manifest, Manifest)
    for layer in manifest.layers:  # without its layers only the cache can answer
        (cmp.state / "oci" / "mono-repo" / PROJECT / "blobs" / "sha256" / layer.digest.split(":")[1]).unlink()
    warm = cmp(folder)
    assert (warm.code, warm.stdout) == (0, cold.stdout)


def test_generate_from_the_registry_is_byte_identical_warm(tmp_path: Path, cmp: Cmp,
                                                          oci_registry: RegistryServer) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    with RegistryStore(oci_registry.address) as store:
        push_release(store, project=project, count=20)
    cmp.registry = oci_registry.address
    folder = write_pointer(tmp_path / "gitops", project=project, env_file={"env.yml": ENV_YAML})
    cold = cmp(folder)
    assert cold.code == 0, cold.stderr
    found = kinds_and_names(cold.stdout)
    assert len(found) == 41 and found[-1] == ("EnvironmentConfig", "mono-repo-api-server")
    assert found[:-1] == sorted(found[:-1])
    warm = cmp(folder)
    assert (warm.code, warm.stdout) == (0, cold.stdout)


def test_the_sha_prefixed_tag_is_found(tmp_path: Path, cmp: Cmp) -> None:
    store = LayoutStore(cmp.state / "oci")
    digest = push_release(store)
    repository = f"mono-repo/{PROJECT}"
    other = LayoutStore(tmp_path / "copy")
    fetched = store.fetch_manifest(repository, digest)
    assert isinstance(fetched.document, Manifest)
    for blob in [fetched.document.config, *fetched.document.layers]:
        other.push_blob(repository, store.fetch_blob(repository, blob, tmp_path / "blob").read_bytes(),
                        blob.media_type)
    other.push_manifest(repository, fetched, tags=[f"sha-{COMMIT}"])
    cmp.env = {"FORGE_OCI__LAYOUT_DIR": str(tmp_path / "copy")}
    run = cmp(write_pointer(tmp_path / "gitops"))
    assert run.code == 0, run.stderr
    assert ("Service", "svc-000") in kinds_and_names(run.stdout)


def test_discover_says_yes_only_for_a_release_pointer(tmp_path: Path, cmp: Cmp) -> None:
    folder = write_pointer(tmp_path / "gitops")
    yes = cmp(folder, "discover")
    assert yes.code == 0 and yes.stdout.strip().endswith("release.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    no = cmp(empty, "discover")
    assert no.code == 1 and "no release.yaml" in no.stderr and no.stdout == ""
    other = tmp_path / "other"
    other.mkdir()
    (other / "release.yaml").write_text("apiVersion: forge.projectcatalyst.io/v1alpha1\nkind: ConfigMap\n")
    refused = cmp(other, "discover")
    assert refused.code == 1 and "kind" in refused.stderr and "ReleasePointer" in refused.stderr


def test_a_malformed_sha_is_an_error_naming_the_field(tmp_path: Path, cmp: Cmp) -> None:
    folder = write_pointer(tmp_path / "gitops", release="0123abc")
    run = cmp(folder)
    assert run.code != 0 and run.stdout == ""
    assert "spec.release" in run.stderr and "0123abc" in run.stderr and "release.yaml" in run.stderr


def test_a_missing_image_is_an_error_naming_the_reference(tmp_path: Path, cmp: Cmp,
                                                         oci_registry: RegistryServer) -> None:
    cmp.registry = oci_registry.address
    project = f"gone{uuid.uuid4().hex[:6]}"
    run = cmp(write_pointer(tmp_path / "gitops", project=project))
    assert run.code != 0 and run.stdout == ""
    assert f"{oci_registry.address}/mono-repo/{project}:{COMMIT}" in run.stderr
    assert "no Release image" in run.stderr


def test_registry_auth_refused_is_clear_and_keeps_the_secret(tmp_path: Path, cmp: Cmp,
                                                            oci_registry_basic: RegistryServer) -> None:
    cmp.registry = oci_registry_basic.address
    folder = write_pointer(tmp_path / "gitops")
    secret = "wrong-" + uuid.uuid4().hex
    refused = cmp(folder, FORGE_CMP__USERNAME="forge", FORGE_CMP__PASSWORD=secret)
    assert refused.code != 0 and refused.stdout == ""
    assert "refused the credentials of user 'forge'" in refused.stderr
    assert secret not in refused.stderr
    anonymous = cmp(folder)
    assert anonymous.code != 0 and "asks for credentials" in anonymous.stderr


def test_credentials_from_the_settings_reach_the_registry(tmp_path: Path, cmp: Cmp,
                                                         oci_registry_basic: RegistryServer) -> None:
    from forge_core.domain.oci import RegistryCredentials

    assert oci_registry_basic.password is not None
    project = f"p{uuid.uuid4().hex[:8]}"
    credentials = RegistryCredentials("forge", oci_registry_basic.password)
    with RegistryStore(oci_registry_basic.address, credentials=credentials) as store:
        push_release(store, project=project)
    cmp.registry = oci_registry_basic.address
    run = cmp(write_pointer(tmp_path / "gitops", project=project),
              FORGE_CMP__USERNAME="forge", FORGE_CMP__PASSWORD=oci_registry_basic.password)
    assert run.code == 0, run.stderr
    assert ("Deployment", "app-000") in kinds_and_names(run.stdout)


def test_labels_disagreeing_with_the_path_are_reported(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))

    def to_staging(document: dict[str, Any]) -> None:
        document["metadata"]["labels"]["forge.projectcatalyst.io/environment"] = "staging"

    run = cmp(write_pointer(tmp_path / "gitops", "dev", edit=to_staging))
    assert run.code != 0 and run.stdout == ""
    assert "forge.projectcatalyst.io/environment" in run.stderr
    assert "'staging'" in run.stderr and "'dev'" in run.stderr


def test_argo_cds_source_path_is_the_path_checked(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops", "dev")
    ok = cmp(folder, ARGOCD_APP_SOURCE_PATH=f"environments/dev/mono-repo-{PROJECT}", ARGOCD_APP_NAME="dev-api")
    assert ok.code == 0, ok.stderr
    moved = cmp(folder, ARGOCD_APP_SOURCE_PATH=f"environments/prod/mono-repo-{PROJECT}", ARGOCD_APP_NAME="prod-api")
    assert moved.code != 0 and moved.stdout == ""
    assert "Argo CD application prod-api" in moved.stderr and "'prod'" in moved.stderr


def test_a_pointer_without_labels_takes_names_from_the_path(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))

    def unlabel(document: dict[str, Any]) -> None:
        del document["metadata"]["labels"]

    run = cmp(write_pointer(tmp_path / "gitops", edit=unlabel))
    assert run.code == 0, run.stderr
    assert ("Service", "svc-000") in kinds_and_names(run.stdout)


def test_env_yaml_and_env_yml_together_are_ambiguous(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    run = cmp(write_pointer(tmp_path / "gitops", env_file={"env.yaml": ENV_YAML, "env.yml": ENV_YAML}))
    assert run.code != 0 and run.stdout == "" and "env.yaml and env.yml" in run.stderr


def test_a_corrupted_cache_entry_is_detected_and_fetched_again(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops")
    first = cmp(folder)
    assert first.code == 0, first.stderr
    (entry,) = cmp.cache.glob("sha256-*.json")
    header, body = entry.read_bytes().split(b"\n", 1)
    tampered = json.loads(body)
    tampered["resources"] = tampered["resources"].replace("svc-000", "evil-000")
    entry.write_bytes(header + b"\n" + json.dumps(tampered).encode())
    again = cmp(folder)
    assert (again.code, again.stdout) == (0, first.stdout)
    assert "corrupt" in again.stderr
    assert b"evil" not in entry.read_bytes()  # rewritten from the image
    third = cmp(folder)
    assert (third.code, third.stdout, third.stderr) == (0, first.stdout, "")


def test_plugin_yaml_is_the_shipped_file_and_a_cmp_v2_plugin(tmp_path: Path, cmp: Cmp) -> None:
    run = cmp(tmp_path, "plugin-yaml")
    assert run.code == 0
    shipped = Path(__file__).parents[2] / "deploy" / "argocd" / "plugin.yaml"
    assert run.stdout == shipped.read_text()
    plugin = yaml.safe_load(run.stdout)
    assert plugin["apiVersion"] == "argoproj.io/v1alpha1" and plugin["kind"] == "ConfigManagementPlugin"
    assert plugin["spec"]["discover"] == {"fileName": "release.yaml"}
    assert plugin["spec"]["generate"]["command"] == ["forge", "cmp", "generate"]


# --- hostile and empty resources layers: refused, clearly, with nothing on stdout ----------------

SERVICE = b"apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n"


def symlinked(archive: tarfile.TarFile) -> None:
    add_file(archive, "ok.yaml", SERVICE)
    link = tarfile.TarInfo("secrets.yaml")
    link.type, link.linkname = tarfile.SYMTYPE, "/var/run/secrets/kubernetes.io/token"
    archive.addfile(link)


def bomb(archive: tarfile.TarFile) -> None:
    zeros = b"\0" * (17 * 1024 * 1024)  # over the default 16 MiB a file; a few KiB compressed
    add_file(archive, "bomb.yaml", zeros)


def many(archive: tarfile.TarFile) -> None:
    for index in range(100_000):
        add_file(archive, f"r{index:06d}.yaml", b"")


@pytest.mark.parametrize(
    ("layer", "rule"),
    [
        (lambda a: (add_file(a, "ok.yaml", SERVICE), add_file(a, "../../etc/cron.d/x.yaml", SERVICE)),
         "parent_component"),
        (lambda a: add_file(a, "/etc/passwd.yaml", SERVICE), "absolute_path"),
        (symlinked, "symlink"),
        (bomb, "max_file_bytes"),
        (many, "max_entries"),
    ],
    ids=["traversal", "absolute", "symlink", "size-bomb", "100000-files"],
)
@pytest.mark.parametrize("canonical", [False, True], ids=["plain", "claims-canonical"])
def test_a_hostile_resources_layer_is_refused(tmp_path: Path, cmp: Cmp, layer: Callable[[tarfile.TarFile], None],
                                             rule: str, canonical: bool) -> None:
    # Claiming a canonical layer takes the launcher's cold path as far as the archive reader.
    digest = push_raw_release(LayoutStore(cmp.state / "oci"), tar_gz(layer), canonical=canonical)
    run = cmp(write_pointer(tmp_path / "gitops"))
    assert run.code != 0 and run.stdout == ""
    assert f"rule: {rule}" in run.stderr and "resources layer refused" in run.stderr
    assert digest in run.stderr  # names the image
    assert not cmp.cache.exists() or not list(cmp.cache.iterdir())  # nothing cached


def test_the_archive_limits_are_settings(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"), count=3)
    folder = write_pointer(tmp_path / "gitops")
    run = cmp(folder, FORGE_CMP__LIMITS__MAX_ENTRIES="4")
    assert run.code != 0 and "rule: max_entries" in run.stderr and run.stdout == ""
    assert cmp(folder).code == 0


def test_an_empty_resources_layer_fails_rather_than_printing_nothing(tmp_path: Path, cmp: Cmp) -> None:
    push_raw_release(LayoutStore(cmp.state / "oci"), tar_gz(lambda archive: None))
    run = cmp(write_pointer(tmp_path / "gitops", env_file={"env.yaml": ENV_YAML}))
    assert run.code != 0 and run.stdout == ""
    assert "holds no Kubernetes objects" in run.stderr and "prune" in run.stderr


@pytest.mark.parametrize("canonical", [False, True], ids=["plain", "claims-canonical"])
def test_a_resource_without_a_kind_names_the_layer_and_file(tmp_path: Path, cmp: Cmp, canonical: bool) -> None:
    bad = b"---\napiVersion: v1\nmetadata:\n  name: x\n"  # canonical in shape, but no kind
    push_raw_release(LayoutStore(cmp.state / "oci"), tar_gz(lambda a: add_file(a, "0001-x.yaml", bad)),
                     canonical=canonical)
    run = cmp(write_pointer(tmp_path / "gitops"))
    assert run.code != 0 and run.stdout == ""
    assert "resources layer sha256:" in run.stderr and "0001-x.yaml#1" in run.stderr and "kind" in run.stderr


# --- provenance ---------------------------------------------------------------------------------


def push_tracking(store: OciStore, repository: str, tag: str, artifact_type: str = TRACKING_ARTIFACT_TYPE) -> str:
    metadata = json.dumps({"name": "api"}).encode()
    layer = store.push_blob(repository, metadata, "application/vnd.forge.artifact.metadata.v1+json")
    config = store.push_blob(repository, EMPTY_JSON, EMPTY)
    manifest = Manifest(artifact_type=artifact_type, config=config, layers=[layer])
    return store.push_manifest(repository, manifest, tags=[tag]).digest


def test_verify_provenance_checks_each_tracking_image(tmp_path: Path, cmp: Cmp,
                                                     oci_registry: RegistryServer) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    tracking_repository = f"mono-repo/{project}/api"
    with RegistryStore(oci_registry.address) as store:
        tracked = push_tracking(store, tracking_repository, f"sha-{COMMIT}")
        reference = f"{oci_registry.address}/{tracking_repository}:sha-{COMMIT}"
        push_release(store, project=project, artifacts=(artifact(reference, tracked),))
        missing = f"q{uuid.uuid4().hex[:8]}"
        push_release(store, project=missing, artifacts=(artifact(f"{oci_registry.address}/gone/api:v1", tracked),))
        wrong = f"w{uuid.uuid4().hex[:8]}"
        push_release(store, project=wrong, artifacts=(artifact(reference, "sha256:" + "c" * 64),))
    cmp.registry = oci_registry.address
    good = write_pointer(tmp_path / "gitops", project=project)
    checked = cmp(good, "generate", "--verify-provenance")
    assert checked.code == 0, checked.stderr
    assert ("Deployment", "app-000") in kinds_and_names(checked.stdout)
    assert cmp(good, "generate", "--verify-provenance").stdout == checked.stdout  # warm: checked again, same bytes

    gone = cmp(write_pointer(tmp_path / "gitops", project=missing), "generate", "--verify-provenance")
    assert gone.code != 0 and gone.stdout == ""
    assert "artifact 'api' tracking image" in gone.stderr and "does not exist" in gone.stderr

    folder = write_pointer(tmp_path / "gitops", project=wrong)
    assert cmp(folder).code == 0  # unchecked by default
    mismatch = cmp(folder, FORGE_CMP__VERIFY_PROVENANCE="true")  # the setting turns it on
    assert mismatch.code != 0 and mismatch.stdout == ""
    assert f"has digest {tracked}" in mismatch.stderr and "c" * 64 in mismatch.stderr


def test_verify_provenance_refuses_an_image_that_is_not_a_tracking_image(tmp_path: Path, cmp: Cmp) -> None:
    store = LayoutStore(cmp.state / "oci")
    other = push_tracking(store, "mono-repo/api-server/api", "v1", artifact_type="application/vnd.example")
    cmp.env = {"FORGE_RELEASE__REGISTRY": ""}
    push_release(store, artifacts=(artifact(f"oci-layout:{cmp.state / 'oci' / 'mono-repo' / 'api-server' / 'api'}:v1",
                                            other),))
    run = cmp(write_pointer(tmp_path / "gitops"), "generate", "--verify-provenance")
    assert run.code != 0 and "not a tracking image" in run.stderr and "application/vnd.example" in run.stderr


def test_strings_a_yaml_1_2_reader_takes_for_numbers_stay_quoted(tmp_path: Path, cmp: Cmp) -> None:
    config = b'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: "1e3", b: "0x1F", c: "08"}\n'
    push_raw_release(LayoutStore(cmp.state / "oci"), tar_gz(lambda a: add_file(a, "0001-configmap-cfg.yaml", config)))
    run = cmp(write_pointer(tmp_path / "gitops"))
    assert run.code == 0, run.stderr
    assert 'a: "1e3"' in run.stdout and 'b: "0x1F"' in run.stdout and 'c: "08"' in run.stdout
    (document,) = yaml.safe_load_all(run.stdout)
    assert document["data"] == {"a": "1e3", "b": "0x1F", "c": "08"}


def test_cmp_is_a_core_command_that_loads_no_plugin_and_no_validator() -> None:
    # Argo CD starts the plugin for every application on every refresh: `forge cmp` must not pay
    # for plugin discovery, and the settings it reads must not pull in the schema validators.
    code = (
        "import sys\n"
        "from forge_core.cli.main import main\n"
        "try:\n    main(['cmp', 'plugin-yaml'])\nexcept SystemExit:\n    pass\n"
        "from forge_core.settings import load_settings\nload_settings()\n"
        "heavy = [m for m in ('stevedore', 'forge_core.plugin.host', 'jsonschema', 'kubernetes_validate', 'httpx')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("[]"), done.stdout


def test_linked_pointer_and_env_files_are_refused(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops")
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-token-value\n")
    (folder / "env.yaml").symlink_to(secret)
    run = cmp(folder)
    assert run.code != 0 and run.stdout == "" and "symbolic link" in run.stderr and "env.yaml" in run.stderr
    (folder / "env.yaml").unlink()
    pointer = folder / "release.yaml"
    pointer.rename(tmp_path / "real.yaml")
    pointer.symlink_to(tmp_path / "real.yaml")
    linked = cmp(folder)
    assert linked.code != 0 and "symbolic link" in linked.stderr and "s3cr3t" not in linked.stderr


def heavy_modules_of(cmp: Cmp, folder: Path, *args: str) -> tuple[Run, list[str]]:
    """``forge cmp generate`` run through the console script's launcher, with the heavy modules it
    imported (printed to stderr by an exit hook)."""
    code = (
        "import atexit, sys\n"
        "heavy = ('pydantic', 'httpx', 'typer', 'yaml', 'forge_core.domain', 'rich', 'pygments')\n"
        "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        f"sys.argv = ['forge', 'cmp', 'generate', *{list(args)!r}]\n"
        "from forge_core.cli.launcher import main\n"
        "sys.exit(main())\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "ARGOCD_", "XDG_"))}
    environment |= {"FORGE_STATE_DIR": str(cmp.state), "FORGE_CMP__CACHE_DIR": str(cmp.cache),
                    "FORGE_RELEASE__REGISTRY": cmp.registry, "FORGE_OCI__ATTEMPTS": "1"} | (cmp.env or {})
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=environment, capture_output=True,
                          text=True, timeout=120)
    *messages, modules = done.stderr.strip().splitlines()
    return Run(done.returncode, done.stdout, "\n".join(messages)), yaml.safe_load(modules)


def test_a_warm_run_imports_neither_pydantic_nor_httpx_nor_typer(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops", env_file={"env.yaml": ENV_YAML})
    cold, cold_modules = heavy_modules_of(cmp, folder)
    assert cold.code == 0, cold.stderr
    assert cold_modules == ["forge_core.domain", "yaml"]  # the lean cold path: resource_yaml, no models
    warm, warm_modules = heavy_modules_of(cmp, folder)
    assert (warm.code, warm.stdout, warm_modules) == (0, cold.stdout, [])
    (folder_entry,) = (cmp.cache / "folders").iterdir()
    # The verifying checks run on every run, so it renders again (and its answer is not indexed).
    checked, checked_modules = heavy_modules_of(cmp, folder, "--verify-provenance")
    assert (checked.code, checked.stdout) == (0, cold.stdout) and "pydantic" in checked_modules
    assert list((cmp.cache / "folders").iterdir()) == [folder_entry]


def test_the_full_path_against_a_registry_does_not_import_httpxs_command_line(
    tmp_path: Path, cmp: Cmp, oci_registry: RegistryServer
) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    with RegistryStore(oci_registry.address) as store:
        push_release(store, project=project)
    cmp.registry = oci_registry.address
    folder = write_pointer(tmp_path / "gitops", project=project)
    cold, modules = heavy_modules_of(cmp, folder)
    # the lean path: no httpx, and no YAML parser for the platform's pointer and a canonical layer
    assert (cold.code, modules) == (0, ["forge_core.domain"]), cold.stderr
    # provenance checks run on the full path, through httpx
    checked, modules = heavy_modules_of(cmp, folder, "--verify-provenance")
    assert checked.code == 0, checked.stderr
    assert "httpx" in modules and "rich" not in modules and "pygments" not in modules


def test_a_changed_pointer_or_env_file_is_never_answered_from_the_old_entry(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops", env_file={"env.yaml": ENV_YAML})
    assert cmp(folder).code == 0
    (folder / "env.yaml").write_text(ENV_YAML.replace("replicas: 2", "replicas: 5"))
    changed = cmp(folder)
    assert changed.code == 0 and "replicas: 5" in changed.stdout and "replicas: 2" not in changed.stdout
    (folder / "env.yaml").unlink()
    gone = cmp(folder)
    assert gone.code == 0 and "EnvironmentConfig" not in gone.stdout
    other = "f" * 40  # a pointer to a release that does not exist: an error, not the cached YAML
    write_pointer(tmp_path / "gitops", release=other)
    moved = cmp(folder)
    assert moved.code != 0 and moved.stdout == "" and other in moved.stderr


def test_a_setting_that_changes_is_part_of_the_key(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops")
    assert cmp(folder).code == 0
    # Another release store: the entry of the layout store does not answer for it.
    elsewhere = cmp(folder, FORGE_RELEASE__REGISTRY="127.0.0.1:9")
    assert elsewhere.code != 0 and elsewhere.stdout == "" and "127.0.0.1:9" in elsewhere.stderr


def test_a_tampered_folder_entry_is_detected_and_rendered_again(tmp_path: Path, cmp: Cmp) -> None:
    push_release(LayoutStore(cmp.state / "oci"))
    folder = write_pointer(tmp_path / "gitops", env_file={"env.yaml": ENV_YAML})
    first = cmp(folder)
    (entry,) = (cmp.cache / "folders").iterdir()
    header, body = entry.read_bytes().split(b"\n", 1)
    entry.write_bytes(header + b"\n" + body.replace(b"EnvironmentConfig", b"EvilConfig"))
    again = cmp(folder)
    assert (again.code, again.stdout) == (0, first.stdout) and "corrupt" in again.stderr
    assert b"Evil" not in entry.read_bytes()


def test_the_launchers_names_are_the_domains() -> None:
    from forge_core.adapters import cmp_cache
    from forge_core.domain import gitops
    from forge_core.settings import CONFIG_FILE_VARIABLE, DEFAULT_CONFIG_FILE

    assert (cmp_cache.POINTER_FILE, cmp_cache.ENV_FILES) == (gitops.POINTER_FILE, gitops.ENV_FILES_ACCEPTED)
    assert (cmp_cache.CONFIG_FILE_VARIABLE, cmp_cache.DEFAULT_CONFIG_FILE) == (CONFIG_FILE_VARIABLE,
                                                                               DEFAULT_CONFIG_FILE)


# --- the launcher's lean cold path ----------------------------------------------------------------


def varied() -> list[dict[str, Any]]:
    """Resources whose YAML needs quoting, namespaces, multi-line and non-ASCII text."""
    return [*manifests(2),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "0123", "namespace": "team-a"},
             "data": {"script": "#!/bin/sh\necho 'hi'\n", "number": "1e3", "greeting": "héllo", "empty": ""}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "0123", "namespace": "team-b"},
             "data": {"on": "yes", "null": "~"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"a": "true"}}}]


def full_path(cmp: Cmp, tmp_path: Path) -> dict[str, str]:
    """Settings that send `forge cmp generate` down the full path: a config file (empty here),
    which only the settings models read, and a cache of its own."""
    config = tmp_path / "forge.toml"
    config.write_text("")
    return {"FORGE_CONFIG_FILE": str(config), "FORGE_CMP__CACHE_DIR": str(tmp_path / "full-cache")}


@pytest.mark.parametrize("where", ["layout", "registry", "token-auth"])
def test_the_cold_path_prints_what_the_full_path_prints(tmp_path: Path, cmp: Cmp, where: str,
                                                        oci_registry: RegistryServer,
                                                        oci_registry_token: RegistryServer) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    facts_ = facts(project)
    if where == "layout":
        push_release_image(LayoutStore(cmp.state / "oci"), facts_, resource_files(varied()))
    else:
        from forge_core.domain.oci import RegistryCredentials
        from forge_core.testing.registry import USER

        server = oci_registry if where == "registry" else oci_registry_token
        credentials = RegistryCredentials(USER, server.password) if server.password else None
        with RegistryStore(server.address, credentials=credentials) as store:
            push_release_image(store, facts_, resource_files(varied()))
        cmp.registry = server.address
        if server.password:
            cmp.env = {"FORGE_CMP__USERNAME": USER, "FORGE_CMP__PASSWORD": server.password}
    folder = write_pointer(tmp_path / "gitops", project=project, env_file={"env.yaml": ENV_YAML})
    cold, modules = heavy_modules_of(cmp, folder)
    assert (cold.code, cold.stderr, modules) == (0, "", ["forge_core.domain", "yaml"])
    full = cmp(folder, **full_path(cmp, tmp_path))
    assert (full.code, full.stdout) == (0, cold.stdout), full.stderr
    found = kinds_and_names(cold.stdout)
    assert found[:-1] == sorted(found[:-1]) and found[-1] == ("EnvironmentConfig", "mono-repo-api-server")
    assert 'number: "1e3"' in cold.stdout and 'name: "0123"' in cold.stdout and "héllo" in cold.stdout
    warm, modules = heavy_modules_of(cmp, folder)  # the cold path filled the caches
    assert (warm.code, warm.stdout, modules) == (0, cold.stdout, [])


def test_a_layer_the_text_does_not_show_is_parsed_by_the_full_path(tmp_path: Path, cmp: Cmp) -> None:
    # A `*` could be an alias, which only parsing tells: the launcher leaves the layer to the full path.
    starred = [*manifests(1), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cors"},
                               "data": {"origins": "*"}}]
    push_release_image(LayoutStore(cmp.state / "oci"), facts(), resource_files(starred))
    folder = write_pointer(tmp_path / "gitops")
    run, modules = heavy_modules_of(cmp, folder)
    assert run.code == 0, run.stderr
    assert "pydantic" in modules and "origins: '*'" in run.stdout
    assert cmp(folder, **full_path(cmp, tmp_path)).stdout == run.stdout


def test_an_alias_in_a_layer_claiming_canonical_is_refused(tmp_path: Path, cmp: Cmp) -> None:
    aliased = b"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: &d {a: b}\nmore: *d\n"
    push_raw_release(LayoutStore(cmp.state / "oci"), tar_gz(lambda a: add_file(a, "0001-x.yaml", aliased)),
                     canonical=True)
    run = cmp(write_pointer(tmp_path / "gitops"))
    assert run.code != 0 and run.stdout == "" and "aliases are not accepted" in run.stderr


@pytest.mark.parametrize(
    "variables",
    [{"FORGE_CMP__VERIFY_PROVENANCE": "true"}, {"FORGE_OCI__ATTEMPTS": "0"}, {"forge_cmp__cache_dir": "/elsewhere"},
     {"FORGE_CMP__USERNAME": "only-a-user"}, {"FORGE_API__URL": "http://127.0.0.1:9"}],
    ids=["provenance", "invalid-setting", "lower-case", "half-credentials", "another-setting"],
)
def test_settings_the_cold_path_does_not_read_leave_the_run_to_the_full_path(
        tmp_path: Path, cmp: Cmp, variables: dict[str, str]) -> None:
    from forge_core.adapters.cmp_cold import read_config

    environment = {"FORGE_STATE_DIR": str(cmp.state), "FORGE_CMP__CACHE_DIR": str(cmp.cache)}
    assert read_config(environment) is not None
    assert read_config(environment | variables) is None


def test_a_proxy_leaves_registry_reads_to_the_full_path(cmp: Cmp) -> None:
    from forge_core.adapters.cmp_cold import read_config

    environment = {"FORGE_STATE_DIR": str(cmp.state), "FORGE_RELEASE__REGISTRY": "registry.example:5000"}
    assert read_config(environment) is not None
    assert read_config(environment | {"https_proxy": "http://127.0.0.1:3128"}) is None  # httpx would use it
    assert read_config({"FORGE_STATE_DIR": str(cmp.state), "HTTPS_PROXY": "http://127.0.0.1:3128"}) is not None


def test_the_cold_paths_names_are_the_domains() -> None:
    from forge_core.adapters import cmp_cold
    from forge_core.adapters.oci import registry
    from forge_core.adapters.oci import release_image as image_adapter
    from forge_core.domain import gitops, oci
    from forge_core.domain import release_image as image
    from forge_core.domain.resources import ArchiveLimits
    from forge_core.settings.cmp import CmpSettings
    from forge_core.settings.oci import OciSettings

    assert (cmp_cold.API_VERSION, cmp_cold.POINTER_KIND, cmp_cold.GITOPS_ROOT) == (
        gitops.API_VERSION, gitops.KIND, gitops.GITOPS_ROOT)
    assert (cmp_cold.ENVIRONMENT_LABEL, cmp_cold.PROJECT_LABEL, cmp_cold.REPOSITORY_LABEL) == (
        gitops.ENVIRONMENT_LABEL, gitops.PROJECT_LABEL, gitops.REPOSITORY_LABEL)
    assert (cmp_cold.RELEASE_NUMBER_ANNOTATION, cmp_cold.DEPLOYED_BY_ANNOTATION, cmp_cold.DEPLOYED_AT_ANNOTATION) == (
        gitops.RELEASE_NUMBER_ANNOTATION, gitops.DEPLOYED_BY_ANNOTATION, gitops.DEPLOYED_AT_ANNOTATION)
    assert (cmp_cold.ARTIFACT_TYPE, cmp_cold.METADATA, cmp_cold.RESOURCES) == (
        image.ARTIFACT_TYPE, image.METADATA, image.RESOURCES)
    assert (cmp_cold.MANIFEST_TYPES, cmp_cold.EMPTY, cmp_cold.REF_NAME) == (oci.MANIFEST_TYPES, oci.EMPTY,
                                                                             oci.REF_NAME)
    assert (cmp_cold.MAX_MANIFEST_BYTES, cmp_cold.MAX_METADATA_BYTES) == (registry.MAX_MANIFEST_SIZE,
                                                                           image_adapter.MAX_METADATA_BYTES)
    limits = ArchiveLimits()
    assert (limits.max_total_bytes, limits.max_file_bytes, limits.max_entries) == cmp_cold.DEFAULT_LIMITS
    # every setting the cold path reads is one of the settings models'
    fields = {f"FORGE_CMP__{name.upper()}" for name in CmpSettings.model_fields}
    fields |= {f"FORGE_CMP__LIMITS__{name.upper()}" for name in ArchiveLimits.model_fields}
    fields |= {f"FORGE_OCI__{name.upper()}" for name in OciSettings.model_fields}
    assert cmp_cold._KNOWN - fields == {"FORGE_STATE_DIR", "FORGE_RELEASE__REGISTRY"}
    assert set(image.ReleaseMetadata.model_fields) == cmp_cold._METADATA_FIELDS


def pointer_texts() -> list[str]:
    base = {"environment": "dev", "repository": REPOSITORY, "project": PROJECT, "release": COMMIT}
    pointers = [ReleasePointer(**base), ReleasePointer(**base, release_number=7, deployed_by="alice"),
                ReleasePointer(**base, deployed_by="Alice O'Neil", deployed_at=datetime(2026, 12, 1, tzinfo=UTC)),
                ReleasePointer(**base, deployed_by="yes"), ReleasePointer(**(base | {"release": "1" * 40}))]
    texts = [pointer.render() for pointer in pointers]
    texts += [texts[0].replace("kind: ReleasePointer", "kind: ReleasePointer # a comment"),
              texts[0].replace("  name:", "  name:  "), texts[0] + "---\n", "spec: {release: x}\n",
              texts[0].replace("metadata:\n", "metadata:\n  labels:\n"), texts[0].rstrip("\n"),
              texts[0].replace("  namespace", "  name"), texts[0].replace("  labels:\n    ", "  labels:\n     "),
              "a:\n  b: yes\n", "a:\n  b: 'it''s'\n", "a:\n    b: c\n"]
    return texts


def test_the_cold_paths_pointer_reader_reads_what_yaml_reads_or_steps_aside() -> None:
    from forge_core.adapters.cmp_cold import simple_mapping

    read = 0
    for text in pointer_texts():
        mapping = simple_mapping(text)
        if mapping is not None:
            read += 1
            assert mapping == yaml.safe_load(text), text
    assert read >= 4  # the platform's own pointers are read without PyYAML
