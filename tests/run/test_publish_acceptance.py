"""Issue 9's acceptance, end to end: ``forge run --publish`` (a process) on the example monorepo at
release tags, its four artifacts (the api container by ``container``, the greeting package by
``python``, the acmectl binary and the docs archive by ``exec``) published to real servers on
loopback — docker-registry (basic auth, access log on), pypiserver, moto's S3, the GitHub stand-in
— with every credential through the ``env`` secret provider from ``repo.cue``. Then each tracking
image is read back with ``forge inspect --json``, and the same pipeline again, from a fresh state
folder (no memory of the first run), publishes nothing new: judged by the servers' own evidence."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_core.testing.registry import USER, RegistryServer, htpasswd_file
from forge_github.testing import GithubStandIn
from forge_pypi.testing import Index, pypi_index
from forge_s3.testing import MotoS3, moto_s3

__all__ = ["moto_s3", "pypi_index"]  # the session's servers, as fixtures here

Forge = Callable[..., subprocess.CompletedProcess[str]]
GITHUB_TOKEN = "ghp_" + "acceptance" * 3
REGISTRY_PASSWORD = "registry-Pa55-" + "q" * 12
TAGS = ("api/v1.3.0", "greeting/v0.2.0", "acmectl/v1.0.0", "docs/v1.0.0")
ARTIFACT_DIGEST = re.compile(r"^  success  (\S+) \(\w+\)  (sha256:[0-9a-f]{64})$", re.MULTILINE)
TRACKING = re.compile(r"^ +tracking: (\S+)$", re.MULTILINE)
RUN = re.compile(r"^run ([0-9a-f-]{36}): ", re.MULTILINE)
MANIFEST = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"

PUBLISHERS = """
publishers: {
	"container-registry": {
		type:      "docker"
		registry:  "%(registry)s"
		namespace: "acme"
		credentials: {provider: "env", secretName: "ACME_REGISTRY_LOGIN"}
	}
	"package-index": {
		type:       "pypi"
		repository: "%(index)s"
		credentials: {provider: "env", secretName: "ACME_PYPI_LOGIN"}
	}
	"github-releases": {
		type:       "github"
		repository: "acme/monorepo"
		apiUrl:     "%(github)s"
		credentials: {provider: "env", secretName: "ACME_GITHUB_TOKEN"}
	}
	"artifact-bucket": {
		type:        "s3"
		bucket:      "%(bucket)s"
		prefix:      "releases"
		endpointUrl: "%(s3)s"
		credentials: {provider: "env", secretName: "ACME_S3_CREDENTIALS"}
	}
}
"""


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of this test alone (its access log counts what the second run sends)."""
    folder = tmp_path / "registry"
    folder.mkdir()
    auth = {"htpasswd": {"realm": "acceptance", "path": str(htpasswd_file(folder, USER, REGISTRY_PASSWORD))}}
    server = RegistryServer(folder, auth=auth, password=REGISTRY_PASSWORD, access_log=True).start()
    yield server
    server.stop()


@pytest.fixture
def github() -> Iterator[GithubStandIn]:
    with GithubStandIn(token=GITHUB_TOKEN) as stand_in:
        yield stand_in


def released_monorepo(example: Path, registry: RegistryServer, index: Index, github: GithubStandIn,
                      bucket: str, s3: str) -> tuple[Path, str]:
    """The example with its publishers pointed at the local servers and a new commit tagged for
    each of its four projects (the docs, which release on ``main``, on their tag too)."""
    cue = example / ".forge" / "repo.cue"
    text = cue.read_text()
    cue.write_text(text[: text.index("publishers: {")] + PUBLISHERS % {
        "registry": registry.address, "index": index.url, "github": github.url, "bucket": bucket, "s3": s3})
    pyproject = example / "libs" / "greeting" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    docs = example / "docs" / ".forge" / "project.cue"
    docs.write_text(docs.read_text().replace('release: on: [{branch: "main"}]', 'release: on: [{tag: true}]'))
    git(example, "commit", "-qam", "release: publishers on loopback, greeting 0.2.0")
    for tag in TAGS:
        git(example, "tag", tag)
    return example, git(example, "rev-parse", "HEAD")


def served(registry: RegistryServer, repository: str, tag: str) -> tuple[str, bytes]:
    response = httpx.get(f"http://{registry.address}/v2/{repository}/manifests/{tag}",
                         headers={"Accept": MANIFEST}, auth=(USER, REGISTRY_PASSWORD))
    assert response.status_code == 200, (repository, tag, response.text)
    assert response.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(response.content).hexdigest()
    return response.headers["Docker-Content-Digest"], response.content


def skopeo_digest(registry: RegistryServer, reference: str) -> str:
    """The digest of what the registry serves, read by an independent client."""
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"--creds={USER}:{REGISTRY_PASSWORD}",
                          f"docker://{registry.address}/{reference}"], check=True, capture_output=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def evidence(registry: RegistryServer, moto: MotoS3, bucket: str, index: Index, github: GithubStandIn,
             image_tags: list[str]) -> dict[str, Any]:
    """What the servers hold, as they say it: tag digests, object ETags and times, index file
    times, release assets."""
    objects = moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    release = github.release("acme/monorepo", "acmectl/v1.0.0")
    return {
        "tags": {tag: served(registry, "acme/api", tag)[0] for tag in image_tags},
        "objects": {o["Key"]: (o["ETag"], o["LastModified"].isoformat()) for o in objects},
        "index": {p.name: p.stat().st_mtime_ns for p in index.packages.iterdir() if p.name.startswith("acme_greeting")},
        "assets": sorted((a["name"], a["id"]) for a in (release or {}).get("assets", [])),
    }


def test_forge_run_publish_publishes_every_artifact_then_the_same_run_publishes_nothing_new(
    forge: Forge, example: Path, registry: RegistryServer, pypi_index: Index, moto_s3: MotoS3,
    github: GithubStandIn, tmp_path: Path,
) -> None:
    bucket = moto_s3.bucket(f"acme-{tmp_path.name.lower().replace('_', '-')[-40:]}")
    repo, commit = released_monorepo(example, registry, pypi_index, github, bucket, moto_s3.endpoint)
    secrets = {
        "ACME_REGISTRY_LOGIN": f"{USER}:{REGISTRY_PASSWORD}",
        "ACME_PYPI_LOGIN": f"{pypi_index.username}:{pypi_index.password}",
        "ACME_GITHUB_TOKEN": GITHUB_TOKEN,
        "ACME_S3_CREDENTIALS": json.dumps(moto_s3.credentials),
        # one signing key for both runs: a fresh state folder would otherwise make a new one
        "FORGE_TRACKING__SIGNING_KEY_FILE": str(signing_key(tmp_path / "signing.pem")),
    }

    first = forge("run", str(repo), "--publish", env=secrets, timeout=600)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    for value in (REGISTRY_PASSWORD, pypi_index.password, GITHUB_TOKEN, moto_s3.credentials["secret_access_key"]):
        assert value not in out
    assert "artifacts (published):" in first.stdout

    # the container: every tag serves the image forge built, read back by skopeo too
    digest, raw = served(registry, "acme/api", f"sha-{commit}")
    # its tags, and the referrers fallback tag listing its tracking image
    image_tags = [f"sha-{commit}", "1.3.0", "sha256-" + digest.removeprefix("sha256:")]
    assert json.loads(raw)["mediaType"] == "application/vnd.oci.image.index.v1+json"  # two platforms
    assert skopeo_digest(registry, "acme/api:1.3.0") == digest
    assert f"{registry.address}/acme/api:1.3.0@{digest}" in first.stdout

    # the python package: installed from the index into a fresh venv, offline otherwise
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    pip = subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "--index-url", pypi_index.simple,
         "acme-greeting==0.2.0"],
        capture_output=True, text=True, env={**os.environ, "PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": ""},
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    greeted = subprocess.run([str(target / "bin" / "python"), "-c", "import greeting; print(greeting.greet('you'))"],
                             capture_output=True, text=True, check=True).stdout
    assert greeted.strip() == "Hello, you."

    # the binary and the archive: in the bucket with the artifact's SHA-256; the binary on GitHub
    digests = dict(ARTIFACT_DIGEST.findall(first.stdout))
    assert set(digests) == {"api/api", "greeting/greeting", "acmectl/acmectl", "docs/site"}, first.stdout
    keys = [o["Key"] for o in moto_s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    (binary_key,) = [k for k in keys if k.endswith("/acmectl.pyz")]
    binary = moto_s3.client().get_object(Bucket=bucket, Key=binary_key)["Body"].read()
    assert f"sha256:{hashlib.sha256(binary).hexdigest()}" == digests["acmectl/acmectl"]
    (archive_key,) = [k for k in keys if k.endswith(".tar.gz")]
    archive = moto_s3.client().get_object(Bucket=bucket, Key=archive_key)["Body"].read()
    assert f"sha256:{hashlib.sha256(archive).hexdigest()}" == digests["docs/site"]
    with tarfile.open(fileobj=io.BytesIO(archive)) as site:
        assert any(name.startswith("site/index.") for name in site.getnames()), site.getnames()
    release = github.release("acme/monorepo", "acmectl/v1.0.0")
    assert release is not None
    (asset,) = release["assets"]
    assert github.content(asset["id"]) == binary

    # each tracking image: metadata, provenance and an SBOM naming the commit and the run; signed
    run_id = RUN.search(first.stdout).group(1)  # type: ignore[union-attr]
    tracking = TRACKING.findall(first.stdout)
    assert len(tracking) == 4, first.stdout
    for reference in tracking:
        record = inspect(forge, reference, secrets)
        assert record["signature"]["verified"] is True, record["signature"]
        meta, provenance = record["metadata"], record["provenance"]
        assert (meta["commit"], meta["run_id"]) == (commit, run_id), meta
        assert meta["digest"] == digests[f"{meta['project']}/{meta['name']}"]
        assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
        assert provenance["subject"][0]["digest"]["sha256"] == meta["digest"].removeprefix("sha256:")
        assert commit in json.dumps(provenance["predicate"]) and run_id in json.dumps(provenance["predicate"])
        sbom = record["sbom"]  # CycloneDX 1.6 whose root is the artifact, listing its files
        assert sbom["spec_version"] == "1.6" and sbom["files"] >= 1 and meta["name"] in sbom["root"], sbom
    before = evidence(registry, moto_s3, bucket, pypi_index, github, image_tags)
    requests_before = len(registry.requests())
    uploads_before = len(github.uploads())

    # the same pipeline again, from a fresh state folder: nothing new reaches any server
    fresh = {**secrets, "FORGE_STATE_DIR": str(tmp_path / "state-again"),
             "FORGE_WORKER__CACHE_DIR": str(tmp_path / "cache-again")}
    second = forge("run", str(repo), "--publish", env=fresh, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert evidence(registry, moto_s3, bucket, pypi_index, github, image_tags) == before
    assert github.uploads()[uploads_before:] == []
    sent = registry.requests()[requests_before:]
    assert sent, "the second run never asked the registry what it holds"
    writes = [line for line in sent if line.startswith(("POST", "PUT", "PATCH", "DELETE"))]
    assert writes == [], writes


def signing_key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def inspect(forge: Forge, reference: str, env: dict[str, str]) -> dict[str, Any]:
    result = forge("inspect", reference, "--json", env=env)
    assert result.returncode == 0, (reference, result.stdout + result.stderr)
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
