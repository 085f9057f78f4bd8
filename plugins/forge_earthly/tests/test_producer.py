"""The earthly producer against the stand-in executable: outputs found in the --artifact folders."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ArtifactSpec,
    ExecutionContext,
    ForgeError,
    LayoutReference,
    ProjectRef,
    open_store,
    parse_reference,
)
from forge_earthly.producer import EarthlyProducer
from forge_earthly.testing import EarthlyStandin

PROJECT = ProjectRef(name="acme", path="tools/acme")
COMMIT = "a" * 40


def produce(tmp_path: Path, kind: str, settings: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
    spec = ArtifactSpec(name="out", type=kind, producer="earthly", producer_settings=settings)
    ctx = ExecutionContext(workdir=tmp_path, secrets=secrets or {})
    return EarthlyProducer().produce(spec, PROJECT, COMMIT, ctx)


def project(tmp_path: Path) -> Path:
    return tmp_path / PROJECT.path


def test_binary_per_platform_from_the_artifact_folders(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"binary": {"artifacts": {"bin/acmectl": "acmectl {platform}"}}})
    artifact = produce(tmp_path, "binary", {"target": "+binary", "binaryPath": "bin/acmectl",
                                            "platforms": ["linux/amd64", "darwin/arm64"], "args": {"V": "1"}})
    assert [f.read_text() for f in artifact.files] == ["acmectl linux/amd64", "acmectl darwin/arm64"]
    assert artifact.metadata["platforms"] == {"linux/amd64": ["linux/amd64/bin/acmectl"],
                                              "darwin/arm64": ["darwin/arm64/bin/acmectl"]}
    calls = earthly_standin.calls(project(tmp_path))
    out = tmp_path / ".forge" / "earthly" / "acme" / "out"
    assert calls[0]["argv"] == ["--platform", "linux/amd64", "--artifact", "(+binary/*", "--V=1)",
                                f"{out}/linux/amd64/"]
    assert calls[0]["args"] == {"V": "1"} and calls[0]["artifact"] == "*"


def test_archive_and_python_collect_the_saved_files(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {
        "docs": {"artifacts": {"site.tar.gz": "docs"}},
        "wheel": {"artifacts": {"acme-1.0-py3-none-any.whl": "w", "acme-1.0.tar.gz": "s", "notes.txt": "n"}},
    })
    archive = produce(tmp_path, "archive", {"target": "+docs", "archivePath": "site.tar.gz", "format": "tar.gz"})
    assert [f.name for f in archive.files] == ["site.tar.gz"] and archive.metadata["format"] == "tar.gz"
    python = produce(tmp_path, "python", {"target": "+wheel"})
    assert sorted(f.name for f in python.files) == ["acme-1.0-py3-none-any.whl", "acme-1.0.tar.gz"]
    assert all(f.is_file() for f in python.files)


def test_a_missing_declared_output_is_named(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"binary": {"artifacts": {"bin/other": "x"}}, "none": {},
                                               "docker": {}})
    with pytest.raises(ForgeError) as raised:
        produce(tmp_path, "binary", {"target": "+binary", "binaryPath": "bin/acmectl", "platforms": ["linux/amd64"]})
    message = str(raised.value)
    assert "binary_path 'bin/acmectl' was not saved by earthly +binary for linux/amd64" in message
    assert "bin/other" in message and "artifact out (project acme)" in message
    with pytest.raises(ForgeError, match="saved no wheel"):
        produce(tmp_path, "python", {"target": "+none"})
    with pytest.raises(ForgeError, match=r"image_path 'image\.tar' was not saved"):
        produce(tmp_path, "container", {"target": "+docker"})


def test_a_failed_platform_fails_the_artifact_naming_it(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"binary": {"artifacts": {"b": "x"},
                                                          "platforms": {"linux/arm64": {"exit": 1}}}})
    with pytest.raises(ForgeError) as raised:
        produce(tmp_path, "binary", {"target": "+binary", "platforms": ["linux/arm64", "linux/amd64"]})
    assert "linux/arm64: exited with code 1" in str(raised.value)
    assert "linux/amd64:" not in str(raised.value)


def retried(tmp_path: Path, earthly_standin: EarthlyStandin, spec: dict[str, Any], retries: dict[str, Any],
            platforms: list[str] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    earthly_standin.script(project(tmp_path), {"binary": {"artifacts": {"b": "x"}, **spec}})
    settings = {"target": "+binary", "retries": {"delay": 0, **retries}, "platforms": platforms or []}
    try:
        result: Any = produce(tmp_path, "binary", settings, secrets={"TOKEN": "a,b=c"})
    except ForgeError as error:
        result = error
    return result, earthly_standin.calls(project(tmp_path))


def test_retries_without_filters_retry_any_failure(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    artifact, calls = retried(tmp_path, earthly_standin, {"fail_first": 2, "fail_text": "flaky"}, {"attempts": 2})
    assert [f.name for f in artifact.files] == ["b"]
    assert [c["attempt"] for c in calls] == [1, 2, 3] and calls[-1]["secrets"] == {"TOKEN": "a,b=c"}


def test_retries_stop_when_attempts_run_out(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    error, calls = retried(tmp_path, earthly_standin, {"fail_first": 5, "fail_text": "flaky"}, {"attempts": 1})
    assert isinstance(error, ForgeError) and "after 2 attempts" in str(error) and len(calls) == 2


def test_filters_retry_only_matching_output(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    artifact, calls = retried(tmp_path, earthly_standin, {"fail_first": 1, "fail_text": "429 Too Many Requests"},
                              {"attempts": 3, "filters": ["Too Many"]})
    assert not isinstance(artifact, ForgeError) and len(calls) == 2


def test_filters_that_do_not_match_fail_at_once(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    error, calls = retried(tmp_path, earthly_standin, {"fail_first": 1, "fail_text": "assertion failed"},
                           {"attempts": 3, "filters": ["Too Many"]})
    assert isinstance(error, ForgeError) and "assertion failed" in str(error) and len(calls) == 1


def test_empty_output_is_a_hard_failure_never_retried(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    error, calls = retried(tmp_path, earthly_standin, {"silent": True, "exit": 1}, {"attempts": 3})
    assert isinstance(error, ForgeError) and "printed nothing" in str(error) and len(calls) == 1


def test_only_the_failing_platform_is_retried(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    spec = {"platforms": {"linux/arm64": {"fail_first": 1, "fail_text": "flaky"}}}
    artifact, calls = retried(tmp_path, earthly_standin, spec, {"attempts": 1}, ["linux/amd64", "linux/arm64"])
    assert len(artifact.files) == 2
    assert [(c["platform"], c["attempt"]) for c in calls] == [("linux/amd64", 1), ("linux/arm64", 1),
                                                              ("linux/arm64", 2)]


def _layout(artifact: Any) -> LayoutReference:
    reference = parse_reference(artifact.reference)
    assert isinstance(reference, LayoutReference) and reference.path.is_absolute()
    return reference


def test_container_one_platform_is_the_image_itself(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"docker": {"image": {"files": {"app/hello": "hi"}, "format": "dir",
                                                                    "path": "layout"}}})
    artifact = produce(tmp_path, "container", {"target": "+docker", "imagePath": "layout", "imageRef": "api:1.2"})
    reference = _layout(artifact)
    assert reference.tag == "1.2" and artifact.digest
    fetched = open_store(reference).fetch_manifest(reference.repository, "1.2")
    assert fetched.descriptor.digest == artifact.digest
    assert fetched.descriptor.media_type == "application/vnd.oci.image.manifest.v1+json"
    # umoci (installed by the setup) accepts what we wrote as a standard image layout
    subprocess.run(["umoci", "stat", "--image", f"{reference.path}:1.2"], capture_output=True, check=True)


def test_container_platforms_become_one_index_with_a_stable_digest(
    tmp_path: Path, earthly_standin: EarthlyStandin
) -> None:
    earthly_standin.script(project(tmp_path), {"docker": {"image": {"files": {"app/hello": "hi"}}}})
    settings = {"target": "+docker", "platforms": ["linux/amd64", "linux/arm64/v8"]}
    first = produce(tmp_path, "container", settings)
    reference = _layout(first)
    index = json.loads(open_store(reference).fetch_manifest(reference.repository, "latest").raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    second = produce(tmp_path, "container", settings)
    assert second.digest == first.digest and second.reference == first.reference
    # skopeo (installed by the setup) reads the index and picks each platform's image from it
    done = subprocess.run(["skopeo", "inspect", "--override-os", "linux", "--override-arch", "arm64",
                           "--override-variant", "v8", f"oci:{reference.path}:latest"],
                          capture_output=True, text=True, check=True)
    picked = json.loads(done.stdout)
    assert (picked["Os"], picked["Architecture"], picked["Digest"]) == ("linux", "arm64", first.digest)


def test_container_from_a_docker_archive(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"docker": {"image": {"files": {"app/x": "1"},
                                                                    "format": "docker-archive"}}})
    first = produce(tmp_path, "container", {"target": "+docker", "platforms": ["linux/amd64"]})
    second = produce(tmp_path, "container", {"target": "+docker", "platforms": ["linux/amd64"]})
    assert first.digest == second.digest
    reference = _layout(first)
    done = subprocess.run(["skopeo", "inspect", f"oci:{reference.path}:latest"], capture_output=True, text=True,
                          check=True)
    assert (json.loads(done.stdout)["Digest"], json.loads(done.stdout)["Architecture"]) == (first.digest, "amd64")


def test_container_saved_wrong_is_refused_naming_why(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {
        "junk": {"artifacts": {"image.tar": "not a tar"}},
        "arm": {"image": {"files": {"a": "1"}, "platform": "linux/arm64"}},
    })
    with pytest.raises(ForgeError, match=r"image\.tar is not a tar of an OCI image layout"):
        produce(tmp_path, "container", {"target": "+junk"})
    with pytest.raises(ForgeError, match="the image saved for linux/amd64 is built for linux/arm64"):
        produce(tmp_path, "container", {"target": "+arm", "platforms": ["linux/amd64", "linux/arm64"]})
