"""The ReleasePointer of DESIGN.md: rendered byte-stable, read back, and refused clearly when wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import PurePosixPath

import pytest
import yaml

from forge_core.domain.gitops import (
    ENVIRONMENT_LABEL,
    PROJECT_LABEL,
    REPOSITORY_LABEL,
    GitOpsError,
    ReleasePointer,
    check_dns_label,
    deployment_message,
    env_file_name,
    env_file_path,
    location_from_path,
    parse_release_pointer,
    pointer_path,
    release_image_tags,
    repository_from_label,
    repository_label,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def pointer(**changes: object) -> ReleasePointer:
    fields: dict[str, object] = {
        "environment": "staging",
        "repository": "acme/mono-repo",
        "project": "api-server",
        "release": COMMIT,
        "release_number": 42,
        "deployed_by": "alice",
        "deployed_at": datetime(2026, 12, 1, 13, 5, 9, tzinfo=UTC),
    }
    fields.update(changes)
    return ReleasePointer.model_validate(fields)


EXPECTED = f"""\
apiVersion: forge.projectcatalyst.io/v1alpha1
kind: ReleasePointer
metadata:
  name: api-server
  namespace: mono-repo-api-server
  labels:
    forge.projectcatalyst.io/environment: staging
    forge.projectcatalyst.io/project: api-server
    forge.projectcatalyst.io/repository: acme.mono-repo
  annotations:
    forge.projectcatalyst.io/deployed-at: '2026-12-01T13:05:09Z'
    forge.projectcatalyst.io/deployed-by: alice
    forge.projectcatalyst.io/release-number: '42'
spec:
  release: {COMMIT}
"""


def test_renders_the_design_format_exactly() -> None:
    assert pointer().render() == EXPECTED


def test_same_pointer_gives_the_same_bytes_and_field_order_does_not_matter() -> None:
    a = pointer()
    b = ReleasePointer(
        deployed_at=datetime(2026, 12, 1, 15, 5, 9, 999, tzinfo=timezone(timedelta(hours=2))),
        deployed_by="alice", release_number=42, release=COMMIT, project="api-server",
        repository="acme/mono-repo", environment="staging",
    )
    assert a.render().encode() == b.render().encode()
    assert a == b  # deployed-at is kept in UTC to the second, as the annotation holds it


def test_annotations_are_strings_for_kubernetes() -> None:
    annotations = yaml.safe_load(pointer().render())["metadata"]["annotations"]
    assert all(isinstance(v, str) for v in annotations.values())


def test_a_commit_of_only_digits_stays_a_string() -> None:
    digits = "1" * 40
    assert yaml.safe_load(pointer(release=digits).render())["spec"]["release"] == digits


def test_optional_annotations_are_left_out() -> None:
    text = pointer(release_number=None, deployed_by=None, deployed_at=None).render()
    assert "annotations" not in text
    assert parse_release_pointer(text).release_number is None


def test_reads_back_what_it_wrote_with_and_without_the_path() -> None:
    original = pointer()
    assert parse_release_pointer(original.render()) == original
    assert parse_release_pointer(original.render(), original.path) == original


def test_path_rules() -> None:
    assert pointer_path("dev", "acme/mono-repo", "api-server") == PurePosixPath(
        "environments/dev/mono-repo-api-server/release.yaml")
    assert pointer().path == PurePosixPath("environments/staging/mono-repo-api-server/release.yaml")
    assert env_file_path("dev", "acme/monorepo", "api") == PurePosixPath("environments/dev/monorepo-api/env.yaml")


@pytest.mark.parametrize(
    "path",
    [
        "environments/prod-eu/mono-repo-api-server/release.yaml",
        "environments/prod-eu/mono-repo-api-server",
        "/srv/argocd/checkout/environments/prod-eu/mono-repo-api-server/",
        PurePosixPath("gitops/environments/prod-eu/mono-repo-api-server/release.yaml"),
    ],
)
def test_location_is_read_from_a_path_without_splitting_hyphens(path: str) -> None:
    location = location_from_path(path)
    assert (location.environment, location.app) == ("prod-eu", "mono-repo-api-server")
    assert location.folder == PurePosixPath("environments/prod-eu/mono-repo-api-server")


@pytest.mark.parametrize(
    "path", ["dev/apps/mono/api/release.yaml", "environments/dev/release.yaml", "environments/Dev/mono-api"]
)
def test_a_path_outside_the_layout_is_refused(path: str) -> None:
    with pytest.raises(GitOpsError) as error:
        location_from_path(path)
    assert path.split("/")[-1] in str(error.value) or "Dev" in str(error.value)


def test_env_file_accepts_both_spellings_but_not_both_at_once() -> None:
    assert env_file_name({"release.yaml", "env.yaml"}) == "env.yaml"
    assert env_file_name({"release.yaml", "env.yml"}) == "env.yml"
    assert env_file_name({"release.yaml"}) is None
    with pytest.raises(GitOpsError, match=r"both env\.yaml and env\.yml"):
        env_file_name({"env.yaml", "env.yml"})


def test_repository_label_round_trip_keeps_dots_of_the_name() -> None:
    assert repository_label("acme/web.site") == "acme.web.site"
    assert repository_from_label("acme.web.site") == "acme/web.site"
    with pytest.raises(GitOpsError, match=REPOSITORY_LABEL):
        repository_from_label("monorepo")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("Api", "not a DNS label"),
        ("api_server", "not a DNS label"),
        ("-api", "not a DNS label"),
        ("a" * 64, "64 characters long"),
    ],
)
def test_names_must_be_dns_labels(value: str, message: str) -> None:
    with pytest.raises(GitOpsError, match=message) as error:
        check_dns_label(value, "project")
    assert error.value.where == "project"


def test_namespace_too_long_is_refused_naming_it() -> None:
    with pytest.raises(GitOpsError, match="namespace <repository>-<project>"):
        pointer(repository="acme/" + "r" * 40, project="p" * 30)


def test_a_malformed_sha_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="40-hex commit"):
        pointer(release="ABC")


def render_with(mutate: object) -> str:
    document = pointer().manifest()
    assert callable(mutate)
    mutate(document)
    return yaml.safe_dump(document, sort_keys=False)


def _set(path: str, value: object) -> object:
    def mutate(document: dict[str, object]) -> None:
        *parents, last = path.split("|")
        node: dict[str, object] = document
        for key in parents:
            node = node[key]  # type: ignore[assignment]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (_set("spec|release", "0123abc"), "spec.release", "40-hex"),
        (_set("spec|release", COMMIT.upper()), "spec.release", "40-hex"),
        (_set("kind", "Deployment"), "kind", "must be 'ReleasePointer'"),
        (_set("apiVersion", "forge.projectcatalyst.io/v1"), "apiVersion", "v1alpha1"),
        (_set("metadata|name", None), "metadata.name", "missing"),
        (_set("metadata|namespace", "platform"), "metadata.namespace", "mono-repo-api-server"),
        (_set("metadata|labels", ["x"]), "metadata.labels", "must be a mapping"),
        (_set(f"metadata|labels|{PROJECT_LABEL}", "web"), PROJECT_LABEL, "but metadata.name says 'api-server'"),
        (_set(f"metadata|labels|{REPOSITORY_LABEL}", "monorepo"), REPOSITORY_LABEL, "<owner>.<name>"),
        (_set("metadata|annotations|forge.projectcatalyst.io/release-number", "v1.2.3"), "release-number",
         "positive integer"),
        (_set("metadata|annotations|forge.projectcatalyst.io/deployed-at", "yesterday"), "deployed-at", "RFC 3339"),
        (_set("metadata|annotations|forge.projectcatalyst.io/deployed-at", "2026-12-01T13:00:00"), "deployed-at",
         "time zone"),
    ],
)
def test_bad_pointers_are_refused_naming_the_field(mutate: object, field: str, message: str) -> None:
    with pytest.raises(GitOpsError) as error:
        parse_release_pointer(render_with(mutate), "environments/staging/mono-repo-api-server/release.yaml")
    assert field in str(error.value.where)
    assert "release.yaml" in str(error.value.where)
    assert message in error.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "a pointer is a mapping, got list"),
        ("just text\n", "a pointer is a mapping, got str"),
        ("", "exactly one YAML document, found 0"),
        (EXPECTED + "---\n" + EXPECTED, "exactly one YAML document, found 2"),
        ("kind: [unclosed\n", "not valid YAML"),
    ],
)
def test_documents_that_are_not_one_pointer_are_refused(text: str, message: str) -> None:
    with pytest.raises(GitOpsError, match=message.replace("[", r"\[")):
        parse_release_pointer(text)


def test_missing_labels_come_from_the_path() -> None:
    document = pointer().manifest()
    del document["metadata"]["labels"]
    text = yaml.safe_dump(document)
    read = parse_release_pointer(text, "environments/staging/mono-repo-api-server/release.yaml")
    assert (read.environment, read.repository, read.project) == ("staging", "mono-repo", "api-server")
    with pytest.raises(GitOpsError, match="the path is not known to take it from") as error:
        parse_release_pointer(text)
    assert ENVIRONMENT_LABEL in str(error.value.where)


def test_labels_and_path_must_agree() -> None:
    with pytest.raises(GitOpsError, match="label says 'staging' but the path says 'production'"):
        parse_release_pointer(EXPECTED, "environments/production/mono-repo-api-server/release.yaml")
    with pytest.raises(GitOpsError, match="the folder is 'other-api-server'"):
        parse_release_pointer(EXPECTED, "environments/staging/other-api-server/release.yaml")


def test_an_unquoted_yaml_timestamp_is_accepted() -> None:
    text = EXPECTED.replace("'2026-12-01T13:05:09Z'", "2026-12-01T13:05:09Z")
    assert parse_release_pointer(text).deployed_at == datetime(2026, 12, 1, 13, 5, 9, tzinfo=UTC)


def test_a_repository_too_long_for_a_label_is_refused() -> None:
    with pytest.raises(GitOpsError, match="cannot be a label value"):
        pointer(repository="an-owner-with-a-long-name/" + "r" * 40, project="p")


def test_the_release_image_a_pointer_names() -> None:
    assert pointer().image("127.0.0.1:5055/releases/") == f"127.0.0.1:5055/releases/mono-repo/api-server:{COMMIT}"
    assert release_image_tags(COMMIT) == (COMMIT, f"sha-{COMMIT}")


def test_the_commit_message_names_projects_numbers_environment_and_actor() -> None:
    web = pointer(project="web", release="f" * 40, release_number=3)
    message = deployment_message([pointer(), web], "alice", action="promote")
    subject, blank, *body = message.splitlines()
    assert subject == "promote staging: api-server #42, web #3 (by alice)"
    assert blank == ""
    assert body == [
        f"acme/mono-repo api-server: release 42 at {COMMIT} -> environments/staging/mono-repo-api-server/release.yaml",
        f"acme/mono-repo web: release 3 at {'f' * 40} -> environments/staging/mono-repo-web/release.yaml",
    ]
    with pytest.raises(GitOpsError, match="one commit deploys to one environment, got production, staging"):
        deployment_message([pointer(), pointer(environment="production")], "alice")


def test_release_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        pointer(release_number=0)
