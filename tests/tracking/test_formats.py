"""The tracking image's names, metadata, provenance statement and DSSE signatures (pure parts)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import ValidationError

from forge_core.domain.errors import ConfigurationError
from forge_core.domain.tracking import (
    IN_TOTO_MEDIA_TYPE,
    SLSA_PROVENANCE_V1,
    STATEMENT_TYPE,
    DsseEnvelope,
    TrackingReferenceError,
    pae,
    provenance_statement,
    tracking_repository,
    tracking_tag,
)
from forge_core.services.signing import Signer, Verifier, key_id

from .conftest import BINARY_DIGEST, COMMIT, RUN_ID, make_metadata


def test_the_repository_drops_the_owner_and_the_tag_names_the_commit() -> None:
    assert tracking_repository("acme/monorepo", "api", "container") == "monorepo/api/container"
    assert tracking_repository("Acme/MonoRepo", "api", "container") == "monorepo/api/container"
    assert tracking_tag(COMMIT) == f"sha-{COMMIT}"


@pytest.mark.parametrize(
    ("repository", "project", "artifact", "field"),
    [
        ("monorepo", "api", "container", "repository"),
        ("acme/monorepo", "API", "container", "project"),
        ("acme/monorepo", "api", "con/tainer", "artifact"),
        ("acme/monorepo", "api", "", "artifact"),
    ],
)
def test_bad_names_are_refused_naming_the_field(repository: str, project: str, artifact: str, field: str) -> None:
    with pytest.raises(TrackingReferenceError) as caught:
        tracking_repository(repository, project, artifact)
    assert caught.value.where == field
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("commit", ["abc123", COMMIT.upper(), COMMIT + "0", "g" * 40])
def test_a_commit_must_be_40_lower_case_hex(commit: str) -> None:
    with pytest.raises(TrackingReferenceError, match="40 lower-case hex"):
        tracking_tag(commit)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"commit": "abc"}, "40 lower-case hex"),
        ({"repository": "monorepo"}, "owner/name"),
        ({"digest": "sha256:abc"}, "64 lower-case hex"),
        ({"produced_at": "2026-03-04T05:06:07"}, "time zone"),
        ({"colour": "blue"}, "Extra inputs"),
    ],
)
def test_metadata_is_validated(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_metadata(**change)


def test_the_provenance_is_an_in_toto_slsa_v1_statement_naming_the_commit_and_the_run() -> None:
    statement = provenance_statement(
        make_metadata(),
        ref="refs/tags/cli/v1.2.0",
        repository_url="https://github.com/acme/monorepo",
        producer_settings={"command": ["make", "acmectl"], "env": {"GOOS": "linux"}},
    )

    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == SLSA_PROVENANCE_V1
    assert statement["subject"] == [{"name": "acmectl", "digest": {"sha256": BINARY_DIGEST.removeprefix("sha256:")}}]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"].startswith("https://")
    assert definition["externalParameters"] == {
        "repository": "acme/monorepo",
        "commit": COMMIT,
        "ref": "refs/tags/cli/v1.2.0",
        "project": "cli",
        "artifact": "acmectl",
        "producer": {"type": "exec", "settings": {"command": ["make", "acmectl"], "env": {"GOOS": "linux"}}},
    }
    assert definition["resolvedDependencies"] == [
        {"uri": f"git+https://github.com/acme/monorepo@{COMMIT}", "digest": {"gitCommit": COMMIT}}
    ]
    run = statement["predicate"]["runDetails"]
    assert run["metadata"] == {
        "invocationId": RUN_ID,
        "startedOn": "2026-03-04T05:05:00Z",
        "finishedOn": "2026-03-04T05:06:07Z",
    }
    assert run["builder"]["id"].startswith("https://")


def test_the_provenance_never_holds_a_secret() -> None:
    statement = provenance_statement(
        make_metadata(),
        producer_settings={
            "args": ["--token=hunter2-value", "--verbose"],
            "secrets": [{"provider": "env", "path": "NPM"}],
            "registry_password": "p4ss",
            "nested": {"api_token": "t0k", "target": "+build"},
        },
        secrets=["hunter2-value"],
    )
    text = json.dumps(statement)

    assert "hunter2-value" not in text and "p4ss" not in text and "t0k" not in text and "NPM" not in text
    settings = statement["predicate"]["buildDefinition"]["externalParameters"]["producer"]["settings"]
    assert settings == {"args": ["--token=****", "--verbose"], "nested": {"target": "+build"}}


def test_pae_is_the_dsse_encoding() -> None:
    # The example of the DSSE protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_a_signature_verifies_with_the_public_key_alone(kind: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    signer = Signer(key)
    envelope = signer.sign(IN_TOTO_MEDIA_TYPE, b'{"_type":"x"}')
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    verified = Verifier.from_pems([(public, "key.pub")]).verify(DsseEnvelope.parse(envelope.to_json(), where="t"))

    assert verified.verified and verified.keyid == signer.keyid
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib

    assert signer.keyid == key_id(key.public_key()) == hashlib.sha256(der).hexdigest()
    assert envelope.signatures[0].keyid == signer.keyid
    assert base64.b64decode(envelope.payload) == b'{"_type":"x"}'


def test_signing_the_same_payload_twice_gives_the_same_envelope() -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))  # RFC 6979: reproducible tracking digests
    assert signer.sign(IN_TOTO_MEDIA_TYPE, b"{}").to_json() == signer.sign(IN_TOTO_MEDIA_TYPE, b"{}").to_json()


def test_a_tampered_payload_or_another_key_does_not_verify() -> None:
    signer = Signer(ed25519.Ed25519PrivateKey.generate())
    envelope = signer.sign(IN_TOTO_MEDIA_TYPE, b'{"commit":"a"}')
    tampered = envelope.model_copy(update={"payload": base64.b64encode(b'{"commit":"b"}').decode()})

    bad = signer.verifier().verify(tampered)
    assert not bad.verified and "does not match" in bad.reason
    other = Verifier([ed25519.Ed25519PrivateKey.generate().public_key()]).verify(envelope)
    assert not other.verified and "not a trusted key" in other.reason


def test_keys_of_other_kinds_are_refused_naming_the_file() -> None:
    pem = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigurationError, match="Ed25519 or ECDSA P-256") as caught:
        Verifier.from_pems([(pem, "/keys/p384.pub")])
    assert caught.value.where == "/keys/p384.pub"
    with pytest.raises(ConfigurationError, match="cannot load the private key"):
        Signer.from_pem(b"not a key", where="/keys/bad.pem")
