"""The container producer: images built from files with no daemon, read back by skopeo and umoci."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ArtifactSpec,
    ConfigurationError,
    ExecutionContext,
    Family,
    Index,
    Manifest,
    OciAuthError,
    ProducedArtifact,
    ProjectRef,
    PublishTarget,
    WorkWithdrawn,
    open_store,
    parse_reference,
)
from forge_core.testing import PluginHost
from forge_core.testing.contracts import ProducerContract
from forge_core.testing.registry import USER, RegistryServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TwoPlatforms = Callable[..., tuple[str, str, list[str]]]


def write_app(project: Path) -> Path:
    (project / "bin").mkdir(parents=True, exist_ok=True)
    (project / "static").mkdir(exist_ok=True)
    (project / "app.py").write_text("print('hello')\n")
    (project / "bin" / "serve").write_text("#!/bin/sh\nexec python3 /app/app.py\n")
    (project / "bin" / "serve").chmod(0o755)
    (project / "static" / "index.html").write_text("<h1>hi</h1>\n")
    (project / "static" / "style.css").write_text("h1 {}\n")
    return project


APP = {
    "entrypoint": ["/app/bin/serve"],
    "cmd": ["--port", "8080"],
    "env": {"PORT": "8080"},
    "workingDir": "/app",
    "user": "1000:1000",
    "exposedPorts": ["8080"],
    "labels": {"org.opencontainers.image.title": "api"},
    "source": "https://git.acme.test/acme/monorepo",
    "layers": [
        {"files": {"app.py": "/app/app.py", "bin/serve": "/app/bin/"}},
        {"files": {"static": "/srv/www", "*.py": "/opt/py"}, "mode": "0600", "owner": "1000:1000"},
    ],
}


@pytest.fixture
def producer(forge_installed_host: PluginHost) -> Any:
    return forge_installed_host.create(Family.PRODUCER, "container")


def produce(
    producer: Any, workdir: Path, settings: dict[str, Any], *, name: str = "api", **context: Any
) -> ProducedArtifact:
    spec = ArtifactSpec(name=name, type="container", producer="container", producer_settings=settings)
    ctx = ExecutionContext(workdir=workdir, log=lambda _line: None, **context)
    result: ProducedArtifact = producer.produce(spec, ProjectRef(name="api", path="services/api"), COMMIT, ctx)
    return result


def project(tmp_path: Path) -> Path:
    return write_app(tmp_path / "services" / "api")


def layout(result: ProducedArtifact) -> tuple[Any, str, str]:
    reference = parse_reference(result.reference or "")
    return open_store(reference), reference.repository, reference.target or ""


def blob(result: ProducedArtifact, digest: str) -> bytes:
    path = parse_reference(result.reference or "").path  # type: ignore[union-attr]
    return (path / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def image_of(result: ProducedArtifact, digest: str | None = None) -> tuple[Manifest, dict[str, Any]]:
    store, repository, tag = layout(result)
    manifest = store.fetch_manifest(repository, digest or tag).document
    assert isinstance(manifest, Manifest)
    return manifest, json.loads(blob(result, manifest.config.digest))


def skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True).stdout


def oci(result: ProducedArtifact) -> str:
    return "oci:" + (result.reference or "").removeprefix("oci-layout:")


class TestContainerProducer(ProducerContract):
    plugin_id = "forge_docker"
    distribution = "catalyst-forge-docker"
    names = ("container",)

    def producer_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"layers": [{"files": {"app.py": "/app/app.py"}}], "entrypoint": ["/app/app.py"]}

    def project(self, name: str, tmp_path: Path) -> ProjectRef:
        write_app(tmp_path / "demo")
        return ProjectRef(name="demo", path="demo")

    def verify(self, name: str, result: Any, case: Any) -> None:
        assert result.reference.startswith("oci-layout:/") and result.reference.endswith("/dist/oci/contract:contract")
        assert json.loads(skopeo("inspect", oci(result)))["Digest"] == result.digest


# --- reproducibility --------------------------------------------------------------------------------


def test_the_same_files_build_the_same_digest_and_one_change_another(producer: Any, tmp_path: Path) -> None:
    one = project(tmp_path / "one")
    two = project(tmp_path / "two")
    os.utime(two / "app.py", (2_000_000_000, 2_000_000_000))  # times and checkout place do not matter
    first = produce(producer, tmp_path / "one", APP)
    again = produce(producer, tmp_path / "one", APP)
    elsewhere = produce(producer, tmp_path / "two", APP)
    assert first.digest == again.digest == elsewhere.digest
    (one / "static" / "style.css").write_text("h1 { color: red }\n")
    changed = produce(producer, tmp_path / "one", APP)
    assert changed.digest != first.digest
    assert changed.reference == first.reference  # the producer's layout, replaced whole


def test_source_date_epoch_sets_every_time(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    dated = produce(producer, tmp_path, APP, env={"SOURCE_DATE_EPOCH": "1700000000"})
    zero = produce(producer, tmp_path, APP, name="zero")
    assert dated.digest != zero.digest
    manifest, config = image_of(dated)
    assert config["created"] == "2023-11-14T22:13:20Z" == dated.metadata["created"]
    assert manifest.annotations and manifest.annotations["org.opencontainers.image.created"] == config["created"]
    with tarfile.open(fileobj=gzip.open(_layer_file(dated, manifest, 0))) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}
    assert image_of(zero)[1]["created"] == "1970-01-01T00:00:00Z"


def _layer_file(result: ProducedArtifact, manifest: Manifest, number: int) -> Path:
    path = parse_reference(result.reference or "").path  # type: ignore[union-attr]
    return Path(path) / "blobs" / "sha256" / manifest.layers[number].digest.removeprefix("sha256:")


# --- the image on scratch -----------------------------------------------------------------------------


def test_a_scratch_image_has_its_config_layers_and_annotations(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    result = produce(producer, tmp_path, APP)
    manifest, config = image_of(result)
    assert result.digest == layout(result)[0].resolve("api", "api").digest
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    inner = config["config"]
    assert inner["Entrypoint"] == ["/app/bin/serve"] and inner["Cmd"] == ["--port", "8080"]
    assert inner["Env"] == ["PORT=8080"] and inner["WorkingDir"] == "/app" and inner["User"] == "1000:1000"
    assert inner["ExposedPorts"] == {"8080/tcp": {}}
    assert inner["Labels"] == {
        "org.opencontainers.image.title": "api",
        "org.opencontainers.image.revision": COMMIT,
        "org.opencontainers.image.source": "https://git.acme.test/acme/monorepo",
    }
    assert manifest.annotations == {
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
        "org.opencontainers.image.revision": COMMIT,
        "org.opencontainers.image.source": "https://git.acme.test/acme/monorepo",
    }
    assert len(manifest.layers) == 2 == len(config["history"])
    for number, layer in enumerate(manifest.layers):
        compressed = blob(result, layer.digest)
        assert "sha256:" + hashlib.sha256(compressed).hexdigest() == layer.digest
        assert (
            config["rootfs"]["diff_ids"][number] == "sha256:" + hashlib.sha256(gzip.decompress(compressed)).hexdigest()
        )
        assert compressed[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert "app.py -> /app/app.py" in config["history"][0]["created_by"]
    assert result.metadata["files"] == [
        "/app/app.py",
        "/app/bin/serve",
        "/opt/py/app.py",
        "/srv/www/index.html",
        "/srv/www/style.css",
    ]
    assert result.metadata["base"] == "scratch" and result.metadata["baseDigest"] is None


def test_layers_are_reproducible_tars_sorted_owned_by_number(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    result = produce(producer, tmp_path, APP)
    manifest, _ = image_of(result)
    with tarfile.open(fileobj=gzip.open(_layer_file(result, manifest, 1))) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert (
            names
            == sorted(names)
            == ["opt", "opt/py", "opt/py/app.py", "srv", "srv/www", "srv/www/index.html", "srv/www/style.css"]
        )
        files = {m.name: m for m in members if m.isfile()}
        assert {(m.mode, m.uid, m.gid, m.uname, m.gname) for m in files.values()} == {(0o600, 1000, 1000, "", "")}
        assert all(not m.pax_headers for m in members)  # short ASCII names need no PAX header
    with tarfile.open(fileobj=gzip.open(_layer_file(result, manifest, 0))) as tar:
        assert {m.name: (m.mode, m.uid) for m in tar.getmembers() if m.isfile()} == {
            "app/app.py": (0o644, 0),
            "app/bin/serve": (0o755, 0),
        }


def test_skopeo_and_umoci_read_it_and_the_rootfs_has_the_files(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    result = produce(producer, tmp_path, APP)
    inspected = json.loads(skopeo("inspect", oci(result)))
    assert inspected["Digest"] == result.digest
    assert inspected["Architecture"] == "amd64" and inspected["Env"] == ["PORT=8080"]
    skopeo("copy", "--quiet", "--preserve-digests", oci(result), f"dir:{tmp_path / 'copied'}")
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", oci(result).removeprefix("oci:"), str(bundle)], check=True, capture_output=True
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "app" / "app.py").read_text() == "print('hello')\n"
    assert (rootfs / "app" / "bin" / "serve").stat().st_mode & 0o777 == 0o755
    assert (rootfs / "srv" / "www" / "index.html").stat().st_mode & 0o777 == 0o600
    assert (rootfs / "srv" / "www" / "index.html").stat().st_uid == 1000
    assert (rootfs / "opt" / "py" / "app.py").is_file()
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == ["/app/bin/serve", "--port", "8080"]
    assert runtime["process"]["cwd"] == "/app"


# --- bases ----------------------------------------------------------------------------------------------


def _base(producer: Any, tmp_path: Path, **extra: Any) -> ProducedArtifact:
    """A base image built by the producer itself: a busybox-like layer, env, entrypoint, labels."""
    base_project = tmp_path / "services" / "api" / "base-src"
    base_project.mkdir(parents=True)
    (base_project / "sh").write_text("#!/bin/sh\n")
    (base_project / "sh").chmod(0o755)
    settings = {
        "layers": [{"files": {"base-src/sh": "/bin/sh"}}],
        "env": {"PATH": "/bin", "PORT": "80"},
        "entrypoint": ["/bin/sh"],
        "cmd": ["-c", "true"],
        "labels": {"vendor": "acme"},
        "exposedPorts": ["9090/udp"],
        "outDir": "base-out",
        **extra,
    }
    return produce(producer, tmp_path, settings, name="base")


def test_a_layout_base_keeps_its_layers_first_and_its_config_merged(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    base = _base(producer, tmp_path)
    base_manifest, base_config = image_of(base)
    path = (base.reference or "").removeprefix("oci-layout:").rsplit(":", 1)[0]
    relative = os.path.relpath(path, tmp_path / "services" / "api")
    settings = {**APP, "base": f"oci-layout:{relative}:base"}
    del settings["cmd"]
    result = produce(producer, tmp_path, settings)
    manifest, config = image_of(result)
    assert manifest.layers[0] == base_manifest.layers[0] and len(manifest.layers) == 3
    assert config["rootfs"]["diff_ids"][0] == base_config["rootfs"]["diff_ids"][0]
    assert len(config["history"]) == 3
    inner = config["config"]
    assert inner["Env"] == ["PATH=/bin", "PORT=8080"]  # the base's, ours over it
    assert inner["Entrypoint"] == ["/app/bin/serve"] and "Cmd" not in inner  # a new entrypoint drops the base's cmd
    assert inner["ExposedPorts"] == {"9090/udp": {}, "8080/tcp": {}}
    assert inner["Labels"]["vendor"] == "acme" and inner["Labels"]["org.opencontainers.image.title"] == "api"
    assert manifest.annotations is not None
    assert manifest.annotations["org.opencontainers.image.base.digest"] == base.digest
    assert result.metadata["baseDigest"] == base.digest
    inspected = json.loads(skopeo("inspect", oci(result)))
    assert inspected["Layers"][0] == base_manifest.layers[0].digest


def test_a_cmd_alone_keeps_the_bases_entrypoint(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    base = _base(producer, tmp_path)
    path = (base.reference or "").removeprefix("oci-layout:").rsplit(":", 1)[0]
    settings = {"base": f"oci-layout:{path}:base", "cmd": ["-c", "echo hi"], "layers": APP["layers"]}
    _, config = image_of(produce(producer, tmp_path, settings))
    assert config["config"]["Entrypoint"] == ["/bin/sh"] and config["config"]["Cmd"] == ["-c", "echo hi"]


def test_a_registry_base_is_pulled_with_the_secrets_credentials(
    producer: Any, oci_registry_basic: RegistryServer, tmp_path: Path
) -> None:
    project(tmp_path)
    base = _base(producer, tmp_path)
    registry = oci_registry_basic.address
    credentials = f"--dest-creds={USER}:{oci_registry_basic.password}"
    skopeo("copy", "--quiet", "--dest-tls-verify=false", credentials, oci(base), f"docker://{registry}/acme/base:1")
    settings = {**APP, "base": f"{registry}/acme/base:1"}
    secrets = {"username": USER, "password": oci_registry_basic.password or ""}
    result = produce(producer, tmp_path, settings, secrets=secrets)
    manifest, config = image_of(result)
    assert manifest.layers[0] == image_of(base)[0].layers[0]
    assert config["config"]["Env"] == ["PATH=/bin", "PORT=8080"]
    assert result.metadata["baseDigest"] == base.digest
    with pytest.raises(OciAuthError) as refused:
        produce(producer, tmp_path, settings, secrets={"username": USER, "password": "wrong-password-1"})
    assert "wrong-password-1" not in str(refused.value)


def test_a_registry_base_that_is_not_there_is_named(
    producer: Any, oci_registry: RegistryServer, tmp_path: Path
) -> None:
    project(tmp_path)
    base = f"{oci_registry.address}/acme/nothing:1"
    with pytest.raises(ConfigurationError, match=rf"base: cannot read {base}") as raised:
        produce(producer, tmp_path, {**APP, "base": base})
    assert raised.value.where == "producer container of artifact 'api' (project 'api')"


# --- platforms ---------------------------------------------------------------------------------------------


def test_two_platforms_give_an_index_of_both_with_platform_files(producer: Any, tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "arm").mkdir()
    (root / "arm" / "only-arm").write_text("arm\n")
    settings = {
        **APP,
        "platforms": ["linux/amd64", "linux/arm64/v8"],
        "layers": [*APP["layers"], {"files": {"arm/only-arm": "/etc/only-arm"}, "platforms": ["linux/arm64/v8"]}],
    }
    result = produce(producer, tmp_path, settings)
    store, repository, tag = layout(result)
    index = store.fetch_manifest(repository, tag)
    assert isinstance(index.document, Index) and index.descriptor.digest == result.digest
    platforms = [
        (m.platform.os, m.platform.architecture, m.platform.variant) for m in index.document.manifests if m.platform
    ]
    assert platforms == [("linux", "amd64", None), ("linux", "arm64", "v8")]
    amd, arm = (image_of(result, m.digest) for m in index.document.manifests)
    assert amd[0].layers == arm[0].layers[:2] and len(arm[0].layers) == 3
    assert (arm[1]["architecture"], arm[1]["variant"]) == ("arm64", "v8")
    assert result.metadata["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert list(result.metadata["manifests"].values()) == [m.digest for m in index.document.manifests]
    raw = json.loads(skopeo("inspect", "--raw", oci(result)))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json" and len(raw["manifests"]) == 2
    arm_view = json.loads(skopeo("inspect", "--override-arch", "arm64", "--override-variant", "v8", oci(result)))
    assert arm_view["Architecture"] == "arm64"


def test_a_base_index_gives_each_platform_its_own_base(
    producer: Any, two_platforms: TwoPlatforms, tmp_path: Path
) -> None:
    project(tmp_path)
    reference, digest, children = two_platforms(tmp_path / "multi", {"etc/os-release": b"base\n"})
    settings = {**APP, "base": reference, "platforms": ["linux/arm64", "linux/amd64"]}
    result = produce(producer, tmp_path, settings)
    assert result.metadata["baseManifests"] == {"linux/arm64": children[1], "linux/amd64": children[0]}
    store = open_store(parse_reference(reference))
    for platform, child in (("linux/arm64", children[1]), ("linux/amd64", children[0])):
        base_manifest = store.fetch_manifest("multi", child).document
        assert isinstance(base_manifest, Manifest)
        manifest, _ = image_of(result, result.metadata["manifests"][platform])
        assert manifest.layers[0] == base_manifest.layers[0]
    assert result.metadata["baseDigest"] == digest
    with pytest.raises(
        ConfigurationError,
        match=r"base: .* has no image for platform 'linux/s390x' \(it has: linux/amd64, linux/arm64\)",
    ):
        produce(producer, tmp_path, {**settings, "platforms": ["linux/s390x"]})


# --- publishing -----------------------------------------------------------------------------------------------


def test_the_docker_publisher_pushes_it_and_the_registry_serves_the_same_digest(
    producer: Any, forge_installed_host: PluginHost, oci_registry: RegistryServer, tmp_path: Path
) -> None:
    project(tmp_path)
    result = produce(producer, tmp_path, {**APP, "platforms": ["linux/amd64", "linux/arm64"]})
    publisher = forge_installed_host.create(Family.PUBLISHER, "docker")
    target = PublishTarget(
        name="registry", type="docker", settings={"registry": oci_registry.address, "namespace": "acme"}
    )
    location = publisher.publish(result, target, ExecutionContext(workdir=tmp_path))
    assert location.digest == result.digest
    served = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{oci_registry.address}/acme/api:sha-{COMMIT}")
    assert "sha256:" + hashlib.sha256(served).hexdigest() == result.digest
    skopeo("copy", "--quiet", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{oci_registry.address}/acme/api:sha-{COMMIT}", f"oci:{tmp_path / 'back'}:back")  # fmt: skip
    back = open_store(parse_reference(f"oci-layout:{tmp_path / 'back'}"))
    assert back.resolve("back", "back").digest == result.digest


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"layers": [{"files": {"missing.py": "/app/"}}]}, r"layers\[0\]\.files\['missing.py'\]: no such file"),
        ({"layers": [{"files": {"*.txt": "/app/"}}]}, r"layers\[0\]\.files\['\*.txt'\]: no file in .* matches"),
        ({"layers": [{"files": {"app.py": "/../etc/x"}}]}, r"layers\[0\]\.files\['app.py'\]: .* escapes /"),
        ({"layers": [{"files": {"app.py": "app/app.py"}}]}, r"layers\[0\]\.files\['app.py'\]: .* must be an absolute"),
        ({"layers": [{"files": {"../../secret": "/x"}}]}, r"layers\[0\]\.files\['../../secret'\]: .* leads outside"),
        ({"layers": [{"files": {"app.py": "/a", "static/index.html": "/a"}}]}, r"/a is also written by"),
        ({"layers": [{"files": {"app.py": "/a"}, "mode": "0799"}]}, r"layers\[0\]\.mode: '0799' is not an octal"),
        ({"platforms": ["linux/amd64", "linux"]}, r"platforms\[1\]: 'linux' is not a platform"),
        ({"platforms": ["linux/amd64", "linux/amd64"]}, r"platforms\[1\]: 'linux/amd64' is listed twice"),
        (
            {"layers": [{"files": {"app.py": "/a"}, "platforms": ["linux/arm64"]}]},
            r"layers\[0\]\.platforms\[0\]: 'linux/arm64' is not one of the built platforms \(linux/amd64\)",
        ),
        ({"exposedPorts": ["http"]}, r"exposedPorts\[0\]: 'http' is not a port"),
        ({"env": {"A=B": "c"}}, r"env\['A=B'\]: not a variable name"),
        ({"outDir": "../elsewhere"}, r"outDir: '../elsewhere' must be a folder inside the project"),
        ({"base": "oci-layout:no-such-layout:1"}, r"base: .*no-such-layout is not an OCI image layout"),
        ({"base": "Not A Reference"}, r"base: bad reference 'Not A Reference'"),
        ({"entrypont": ["/x"]}, r"invalid container producer settings: entrypont: Extra inputs"),
        ({"layers": []}, r"layers: List should have at least 1 item"),
    ],
)
def test_bad_settings_are_named_and_nothing_is_written(
    producer: Any, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    (tmp_path / "secret").write_text("no\n")
    project(tmp_path)
    with pytest.raises(ConfigurationError, match=message) as raised:
        produce(producer, tmp_path, {**APP, **change})
    assert raised.value.where == "producer container of artifact 'api' (project 'api')"
    assert not (tmp_path / "services" / "api" / "dist" / "oci" / "api").exists()


def test_symlinks_are_followed_only_inside_the_project(producer: Any, tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "linked.py").symlink_to(root / "app.py")
    (root / "static" / "loop").symlink_to(root / "static")
    (tmp_path / "outside").write_text("private\n")
    (root / "leak").symlink_to(tmp_path / "outside")
    result = produce(producer, tmp_path, {"layers": [{"files": {"linked.py": "/app/linked.py"}}]})
    assert result.metadata["files"] == ["/app/linked.py"]
    with pytest.raises(ConfigurationError, match=r"files\['static'\]: .*loop links back to a folder it is in"):
        produce(producer, tmp_path, {"layers": [{"files": {"static": "/srv"}}]})
    with pytest.raises(ConfigurationError, match=r"files\['leak'\]: .*leak leads outside the project"):
        produce(producer, tmp_path, {"layers": [{"files": {"leak": "/leak"}}]})
    with pytest.raises(ConfigurationError, match=r"files\['/etc/\*'\]: '/etc/\*' is not a glob relative"):
        produce(producer, tmp_path, {"layers": [{"files": {"/etc/*": "/etc/"}}]})


def test_a_single_image_base_of_another_platform_is_refused(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    base = _base(producer, tmp_path)
    with pytest.raises(
        ConfigurationError, match=r"base: .* is a single 'linux/amd64' image, it has no platform 'linux/arm64'"
    ):
        produce(producer, tmp_path, {**APP, "base": base.reference, "platforms": ["linux/arm64"]})


def test_a_failed_rebuild_keeps_the_previous_image(producer: Any, tmp_path: Path) -> None:
    root = project(tmp_path)
    first = produce(producer, tmp_path, APP)
    (root / "app.py").unlink()
    with pytest.raises(ConfigurationError):
        produce(producer, tmp_path, APP)
    assert json.loads(skopeo("inspect", oci(first)))["Digest"] == first.digest


def test_a_withdrawn_build_writes_nothing(producer: Any, tmp_path: Path) -> None:
    project(tmp_path)
    spec = ArtifactSpec(name="api", type="container", producer="container", producer_settings=APP)
    ctx = ExecutionContext(workdir=tmp_path)
    ctx.stop.set()
    with pytest.raises(WorkWithdrawn):
        producer.produce(spec, ProjectRef(name="api", path="services/api"), COMMIT, ctx)
    out = tmp_path / "services" / "api" / "dist" / "oci"
    assert not out.exists() or list(out.iterdir()) == []
