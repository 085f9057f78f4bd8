"""A publisher's ``credentials`` in repo.cue arrive in the plan as the references written there."""

from __future__ import annotations

from forge_core.domain.models import SecretRef
from forge_core.domain.plan import DiscoveryDocument

from .conftest import project_cue

REPO_CUE = """package repo

forgeVersion: "v1.0.0"
phases: test: {group: 1}
publishers: {
	images: {type: "docker", registry: "registry.test", credentials: {provider: "env", secretName: "REGISTRY_TOKEN"}}
	bucket: {
		type:   "s3"
		bucket: "builds"
		credentials: {provider: "file", secretName: "aws/creds.json", key: "secret_access_key"}
	}
}
"""

ARTIFACTS = """artifacts: {
	image: {type: "container", producer: earthly: {target: "+image"}, publishers: ["images"]}
	tool: {type: "binary", producer: earthly: {target: "+tool"}, publishers: ["bucket"]}
}
"""


def test_credentials_become_the_targets_secret_references(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(ARTIFACTS)})
    document = discover(repo)
    assert document.diagnostics == ()
    artifacts = {a.spec.name: a for a in document.projects[0].artifacts}
    (images,), (bucket,) = artifacts["image"].publishers, artifacts["tool"].publishers
    assert images.credentials == {"default": SecretRef(provider="env", path="REGISTRY_TOKEN")}
    assert bucket.credentials == {
        "default": SecretRef(provider="file", path="aws/creds.json", key="secret_access_key")
    }
    assert "credentials" not in bucket.settings and bucket.settings == {"bucket": "builds"}
    # what the discovery job sends on: the references survive the trip through JSON
    again = DiscoveryDocument.model_validate_json(document.model_dump_json())
    assert [p for a in again.projects[0].artifacts for p in a.publishers] == [
        p for a in document.projects[0].artifacts for p in a.publishers
    ]
    assert {p.name: p.credentials for a in again.projects[0].artifacts for p in a.publishers} == {
        "images": images.credentials, "bucket": bucket.credentials
    }


def test_an_unknown_secret_provider_is_reported_at_its_line(discover, make_repo) -> None:
    repo_cue = REPO_CUE.replace('provider: "file"', 'provider: "vault"')
    repo = make_repo({".forge/repo.cue": repo_cue, "a/.forge/project.cue": project_cue(ARTIFACTS)})
    document = discover(repo)
    assert [(d.file, d.line, d.message) for d in document.diagnostics] == [
        (".forge/repo.cue", 10, "unknown secret provider 'vault'; known: env, file")
    ]
