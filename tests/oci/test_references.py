"""Image references: ``host[:port]/path[:tag][@sha256:…]`` and ``oci-layout:PATH[:tag][@…]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.domain.oci import (
    LayoutReference,
    OciReferenceError,
    RegistryReference,
    fallback_tag,
    parse_reference,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/monorepo/api", RegistryReference("127.0.0.1:5000", "monorepo/api")),
        ("reg.example/ns/api:1.2.0", RegistryReference("reg.example", "ns/api", "1.2.0")),
        (f"reg.example/ns/api@{DIGEST}", RegistryReference("reg.example", "ns/api", None, DIGEST)),
        (
            f"localhost:5000/a/b/c:sha-{'0' * 40}@{DIGEST}",
            RegistryReference("localhost:5000", "a/b/c", "sha-" + "0" * 40, DIGEST),
        ),
        ("[::1]:5000/x:y", RegistryReference("[::1]:5000", "x", "y")),
    ],
)
def test_registry_references_parse(text: str, expected: RegistryReference) -> None:
    parsed = parse_reference(text)
    assert parsed == expected
    assert str(parsed) == text


def test_layout_references_parse(tmp_path: Path) -> None:
    assert parse_reference(f"oci-layout:{tmp_path}/api:v1") == LayoutReference(tmp_path / "api", "v1")
    assert parse_reference(f"oci:{tmp_path}/api") == LayoutReference(tmp_path / "api")
    pinned = parse_reference(f"oci-layout:{tmp_path}/api@{DIGEST}")
    assert isinstance(pinned, LayoutReference)
    assert (pinned.digest, pinned.tag, pinned.repository, pinned.registry) == (DIGEST, None, "api", str(tmp_path))


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("api", "expected host"),
        ("reg.example/", "expected host"),
        ("reg.example:port/x", "expected host"),
        ("reg.example/Upper/case", "bad repository name"),
        ("reg.example/x:bad tag", "bad tag"),
        ("reg.example/x:-dash", "bad tag"),
        ("reg.example/x@sha256:short", "bad digest"),
        ("reg.example/x@md5:" + "0" * 32, "bad digest"),
        ("oci-layout:", "no layout folder"),
        ("oci-layout:/tmp/x:bad tag!", "bad tag"),
    ],
)
def test_bad_references_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(OciReferenceError, match=complaint) as caught:
        parse_reference(text)
    assert repr(text)[1:-1] in str(caught.value) or caught.value.reference == text


def test_the_referrers_fallback_tag_is_the_digest_with_a_dash() -> None:
    assert fallback_tag(DIGEST) == "sha256-" + "ab" * 32
    with pytest.raises(OciReferenceError):
        fallback_tag("sha256:nope")
