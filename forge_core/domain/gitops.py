"""The ReleasePointer and the GitOps repository's layout: the format a deployment commits.

A deployment of release ``<commit>`` of project ``<project>`` (repository ``<owner>/<name>``) to
environment ``<env>`` is one file, ``environments/<env>/<name>-<project>/release.yaml``::

    apiVersion: forge.projectcatalyst.io/v1alpha1
    kind: ReleasePointer
    metadata:
      name: <project>
      namespace: <name>-<project>
      labels: {forge.projectcatalyst.io/environment: <env>, …/project: <project>, …/repository: <owner>.<name>}
      annotations: {…/release-number: "42", …/deployed-by: alice, …/deployed-at: 2026-12-01T13:00:00Z}
    spec:
      release: <40-hex commit>

Readers never split ``<name>-<project>`` on hyphens (both parts may hold hyphens): the environment,
repository and project come from the labels, or where a label is missing from the path (the
environment folder; the repository name as the folder name minus ``-<metadata.name>``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, field_validator, model_validator

from forge_core.domain.errors import ForgeError
from forge_core.domain.models import Model

API_VERSION = "forge.projectcatalyst.io/v1alpha1"
KIND = "ReleasePointer"
_PREFIX = "forge.projectcatalyst.io/"
REPOSITORY_LABEL = _PREFIX + "repository"
PROJECT_LABEL = _PREFIX + "project"
ENVIRONMENT_LABEL = _PREFIX + "environment"
RELEASE_NUMBER_ANNOTATION = _PREFIX + "release-number"
DEPLOYED_BY_ANNOTATION = _PREFIX + "deployed-by"
DEPLOYED_AT_ANNOTATION = _PREFIX + "deployed-at"

GITOPS_ROOT = "environments"
POINTER_FILE = "release.yaml"
ENV_FILE = "env.yaml"
ENV_FILES_ACCEPTED = (ENV_FILE, "env.yml")  # written: env.yaml; env.yml read too (the guide's spelling)

COMMIT = re.compile(r"^[0-9a-f]{40}$")


def full_commit(value: str) -> str:
    """``value`` if it is a full 40-hex commit SHA in lower case (the only form images and
    pointers are named by); ValueError otherwise."""
    if not COMMIT.match(value):
        raise ValueError(f"commit must be a full 40-hex SHA in lower case, got {value!r}")
    return value


FullCommit = Annotated[str, AfterValidator(full_commit)]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63
# GitHub's rules: an owner is letters, digits and single hyphens; a repository name may also hold
# `.` and `_`. So the first `.` of the label value is always the owner/name separator.
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class GitOpsError(ForgeError):
    """A name, path or ReleasePointer that does not follow the GitOps format; ``where`` names it."""

    code = "invalid_gitops_format"
    exit_code = 2


def check_dns_label(value: str, what: str) -> str:
    """``value`` if it is a DNS label (RFC 1123: lower-case letters, digits, inner hyphens, at most
    63 characters), else a GitOpsError saying which ``what`` is wrong and why."""
    if not value:
        raise GitOpsError(f"{what} is empty", where=what)
    if len(value) > DNS_LABEL_MAX:
        raise GitOpsError(f"{what} {value!r} is {len(value)} characters long, at most {DNS_LABEL_MAX} fit", where=what)
    if not DNS_LABEL.match(value):
        raise GitOpsError(
            f"{what} {value!r} is not a DNS label: use lower-case letters, digits and hyphens, "
            "starting and ending with a letter or digit",
            where=what,
        )
    return value


def repository_name(repository: str) -> str:
    """The repository's name without its owner: ``acme/monorepo`` → ``monorepo`` (``monorepo`` stays)."""
    return repository.rsplit("/", 1)[-1]


def repository_label(repository: str) -> str:
    """The label value of a full ``owner/name``: ``/`` written as ``.`` (labels cannot hold ``/``)."""
    return repository.replace("/", ".", 1)


def repository_from_label(value: str, file: str | None = None) -> str:
    """``owner/name`` back from a label value; owners cannot hold ``.``, so the first ``.`` separates.

    ``file``, when given, is named in the error with the field."""
    owner, dot, name = value.partition(".")
    if not dot or not name or not OWNER.match(owner):
        raise GitOpsError(
            f"label {REPOSITORY_LABEL} is {value!r}, expected <owner>.<name> (the repository's owner/name)",
            where=f"{file}: metadata.labels.{REPOSITORY_LABEL}" if file else f"metadata.labels.{REPOSITORY_LABEL}",
        )
    return f"{owner}/{name}"


def app_folder(repository: str, project: str) -> str:
    """``<repository name>-<project>``: the pointer's folder and its namespace, checked as a DNS label."""
    name = check_dns_label(repository_name(repository), "repository name")
    check_dns_label(project, "project")
    return check_dns_label(f"{name}-{project}", "namespace <repository>-<project>")


def pointer_path(environment: str, repository: str, project: str) -> PurePosixPath:
    """``environments/<env>/<repository name>-<project>/release.yaml`` (relative to the repository root)."""
    check_dns_label(environment, "environment")
    return PurePosixPath(GITOPS_ROOT, environment, app_folder(repository, project), POINTER_FILE)


def env_file_path(environment: str, repository: str, project: str) -> PurePosixPath:
    """Where the optional per-project ``env.yaml`` lives: beside the pointer."""
    return pointer_path(environment, repository, project).with_name(ENV_FILE)


class GitOpsLocation(Model):
    """What a path inside the GitOps repository says: the environment and ``<repository>-<project>``."""

    environment: str
    app: str

    @property
    def folder(self) -> PurePosixPath:
        return PurePosixPath(GITOPS_ROOT, self.environment, self.app)


def location_from_path(path: str | PurePosixPath) -> GitOpsLocation:
    """The location of a pointer file, or of its folder, in the GitOps repository.

    Accepts ``…/environments/<env>/<app>/release.yaml`` or ``…/environments/<env>/<app>`` (the
    Argo CD source path, or an absolute working folder): whatever comes before ``environments`` is
    ignored.
    """
    parts = PurePosixPath(path).parts
    if parts and parts[-1] == POINTER_FILE:
        parts = parts[:-1]
    if len(parts) < 3 or parts[-3] != GITOPS_ROOT:
        raise GitOpsError(
            f"path {str(path)!r} is not a deployment folder: expected {GITOPS_ROOT}/<environment>/"
            f"<repository>-<project>[/{POINTER_FILE}]",
            where=str(path),
        )
    environment, app = parts[-2], parts[-1]
    check_dns_label(environment, f"environment in path {path}")
    check_dns_label(app, f"folder <repository>-<project> in path {path}")
    return GitOpsLocation(environment=environment, app=app)


def env_file_name(present: Collection[str]) -> str | None:
    """Which environment-values file of a deployment folder to use, given the names present in it.

    ``env.yaml`` or ``env.yml``; None when neither is there; both at once is ambiguous, an error.
    """
    found = [name for name in ENV_FILES_ACCEPTED if name in present]
    if len(found) > 1:
        raise GitOpsError(f"both {' and '.join(found)} are present; keep one ({ENV_FILE})", where=found[0])
    return found[0] if found else None


class ReleasePointer(Model):
    """Which release of a project an environment runs; rendered as the ``release.yaml`` of its folder.

    ``repository`` is the full ``owner/name`` (only the name is known when a pointer without the
    repository label was read back from its path).
    """

    environment: str
    repository: str
    project: str
    release: str
    release_number: int | None = Field(default=None, ge=1)
    deployed_by: str | None = None
    deployed_at: datetime | None = None

    @field_validator("release")
    @classmethod
    def _commit(cls, value: str) -> str:
        if not COMMIT.match(value):
            raise ValueError(f"spec.release must be a full 40-hex commit SHA in lower case, got {value!r}")
        return value

    @field_validator("deployed_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("deployed-at needs a time zone (RFC 3339)")
        return value.astimezone(UTC).replace(microsecond=0)  # what the annotation can hold

    @field_validator("deployed_by")
    @classmethod
    def _label_safe(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or not value.strip()):
            raise ValueError("deployed-by must be one line of text")
        return value

    @model_validator(mode="after")
    def _names(self) -> ReleasePointer:
        check_dns_label(self.environment, "environment")
        app_folder(self.repository, self.project)
        if "/" in self.repository:
            owner, name = self.repository.split("/", 1)
            if not OWNER.match(owner) or "/" in name:
                raise GitOpsError(f"repository {self.repository!r} is not <owner>/<name>", where="repository")
        label = repository_label(self.repository)
        if not LABEL_VALUE.match(label) or len(label) > DNS_LABEL_MAX:
            raise GitOpsError(f"repository {self.repository!r} cannot be a label value (at most {DNS_LABEL_MAX} "
                              "letters, digits, '-', '_' and '.')", where="repository")
        return self

    @property
    def namespace(self) -> str:
        return f"{repository_name(self.repository)}-{self.project}"

    @property
    def path(self) -> PurePosixPath:
        return pointer_path(self.environment, self.repository, self.project)

    def image(self, registry: str) -> str:
        """The Release image this pointer names, in ``registry``."""
        return release_image(registry, self.repository, self.project, self.release)

    def manifest(self) -> dict[str, Any]:
        """The Kubernetes-style object, keys in a fixed order."""
        annotations: dict[str, str] = {}
        if self.deployed_at is not None:
            annotations[DEPLOYED_AT_ANNOTATION] = rfc3339(self.deployed_at)
        if self.deployed_by is not None:
            annotations[DEPLOYED_BY_ANNOTATION] = self.deployed_by
        if self.release_number is not None:
            annotations[RELEASE_NUMBER_ANNOTATION] = str(self.release_number)
        metadata: dict[str, Any] = {
            "name": self.project,
            "namespace": self.namespace,
            "labels": {
                ENVIRONMENT_LABEL: self.environment,
                PROJECT_LABEL: self.project,
                REPOSITORY_LABEL: repository_label(self.repository),
            },
        }
        if annotations:
            metadata["annotations"] = annotations
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": {"release": self.release}}

    def render(self) -> str:
        """The ``release.yaml`` text: the same pointer always gives the same bytes."""
        return yaml.safe_dump(self.manifest(), sort_keys=False, default_flow_style=False, allow_unicode=True)


def release_image(registry: str, repository: str, project: str, commit: str) -> str:
    """The Release image a pointer names: ``<release-registry>/<repository name>/<project>:<commit>``."""
    return f"{registry.rstrip('/')}/{repository_name(repository)}/{project}:{commit}"


def release_image_tags(commit: str) -> tuple[str, str]:
    """The tags a reader tries for a release, in order: ``<commit>`` (written) and ``sha-<commit>``
    (the companion documents' spelling, accepted)."""
    return commit, f"sha-{commit}"


def deployment_message(pointers: Sequence[ReleasePointer], actor: str, *, action: str = "deploy") -> str:
    """The GitOps commit message for ``pointers`` (one environment): it names each project, release
    number and the actor, e.g. ``promote production: api #7, web #3 (by alice)``, then one line per
    pointer with its commit and path."""
    environments = sorted({p.environment for p in pointers})
    if len(environments) != 1:
        raise GitOpsError(f"one commit deploys to one environment, got {', '.join(environments) or 'none'}",
                          where="pointers")
    ordered = sorted(pointers, key=lambda p: (p.repository, p.project))
    names = ", ".join(f"{p.project} #{p.release_number}" if p.release_number else p.project for p in ordered)
    lines = [f"{action} {environments[0]}: {names} (by {actor})", ""]
    lines += [f"{p.repository} {p.project}: release {p.release_number or '?'} at {p.release} -> {p.path}"
              for p in ordered]
    return "\n".join(lines) + "\n"


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC to the second, as RFC 3339 with ``Z`` (what deployed-at holds)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_release_pointer(text: str, path: str | PurePosixPath | None = None) -> ReleasePointer:
    """A ReleasePointer from ``release.yaml`` text; ``path`` (where it was read) fills in missing
    labels and is checked against present ones. Errors name the file and the field at fault."""
    where = str(path) if path is not None else POINTER_FILE
    location = location_from_path(path) if path is not None else None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        raise GitOpsError(f"not valid YAML: {getattr(error, 'problem', None) or error}", where=at) from error
    if len(documents) != 1:
        raise GitOpsError(f"a pointer file holds exactly one YAML document, found {len(documents)}", where=where)
    (document,) = documents
    fields = _PointerFields(document, where)
    fields.expect("apiVersion", API_VERSION)
    fields.expect("kind", KIND)
    project = fields.text("metadata.name")
    namespace = fields.text("metadata.namespace")
    labels = fields.mapping("metadata.labels", required=False)
    annotations = fields.mapping("metadata.annotations", required=False)
    release = fields.text("spec.release")
    if not COMMIT.match(release):
        raise GitOpsError(f"spec.release must be a full 40-hex commit SHA in lower case, got {release!r}",
                          where=f"{where}: spec.release")

    def label(key: str, other: str | None, source: str) -> str:
        """The label's value, checked against ``other`` (what ``source`` says), or ``other`` if absent."""
        value = labels.get(key)
        at = f"{where}: metadata.labels.{key}"
        if value is not None and not isinstance(value, str):
            raise GitOpsError("must be a string", where=at)
        if value is not None and other is not None and value != other:
            raise GitOpsError(f"label says {value!r} but {source} says {other!r}", where=at)
        if value is None and other is None:
            raise GitOpsError(f"label missing, and {source} is not known to take it from", where=at)
        return value if value is not None else str(other)

    environment = label(ENVIRONMENT_LABEL, location.environment if location else None, "the path")
    label(PROJECT_LABEL, project, "metadata.name")
    if REPOSITORY_LABEL in labels:
        repository = repository_from_label(label(REPOSITORY_LABEL, None, ""), where)
    elif location is not None and location.app.endswith(f"-{project}"):
        repository = location.app.removesuffix(f"-{project}")
    else:
        raise GitOpsError(
            "label missing, and the path does not end in -<metadata.name> to take the repository from",
            where=f"{where}: metadata.labels.{REPOSITORY_LABEL}",
        )
    expected_namespace = f"{repository_name(repository)}-{project}"
    if namespace != expected_namespace:
        raise GitOpsError(f"is {namespace!r}, expected <repository>-<project> = {expected_namespace!r}",
                          where=f"{where}: metadata.namespace")
    if location is not None and location.app != expected_namespace:
        raise GitOpsError(f"the folder is {location.app!r} but the pointer is for {expected_namespace!r}", where=where)
    try:
        return ReleasePointer(
            environment=environment,
            repository=repository,
            project=project,
            release=release,
            release_number=_release_number(annotations.get(RELEASE_NUMBER_ANNOTATION), where),
            deployed_by=_optional_text(annotations, DEPLOYED_BY_ANNOTATION, where),
            deployed_at=_deployed_at(annotations.get(DEPLOYED_AT_ANNOTATION), where),
        )
    except GitOpsError as error:  # a name that is not a DNS label: say which file holds it
        raise GitOpsError(error.message, where=f"{where}: {error.where}") from error
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise GitOpsError(str(error), where=where) from error


class _PointerFields:
    """Dotted-path access to the parsed document, each failure naming the field."""

    def __init__(self, document: object, where: str):
        if not isinstance(document, Mapping):
            raise GitOpsError(f"a pointer is a mapping, got {type(document).__name__}", where=where)
        self.document, self.where = document, where

    def _get(self, dotted: str) -> object:
        node: object = self.document
        for key in dotted.split("."):
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return node

    def text(self, dotted: str) -> str:
        value = self._get(dotted)
        if not isinstance(value, str) or not value:
            got = "missing" if value is None else f"{value!r} is not a string"
            raise GitOpsError(f"required text field: {got}", where=f"{self.where}: {dotted}")
        return value

    def expect(self, dotted: str, wanted: str) -> None:
        value = self._get(dotted)
        if value != wanted:
            raise GitOpsError(f"must be {wanted!r}, got {value!r}", where=f"{self.where}: {dotted}")

    def mapping(self, dotted: str, *, required: bool) -> Mapping[str, object]:
        value = self._get(dotted)
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            raise GitOpsError(f"must be a mapping, got {type(value).__name__}", where=f"{self.where}: {dotted}")
        return value


def _optional_text(annotations: Mapping[str, object], key: str, where: str) -> str | None:
    value = annotations.get(key)
    if value is not None and not isinstance(value, str):
        raise GitOpsError("must be a string", where=f"{where}: metadata.annotations.{key}")
    return value


def _release_number(value: object, where: str) -> int | None:
    if value is None:
        return None
    text = str(value)
    if not text.isdigit() or int(text) < 1:
        raise GitOpsError(f"must be a release number (a positive integer), got {value!r}",
                          where=f"{where}: metadata.annotations.{RELEASE_NUMBER_ANNOTATION}")
    return int(text)


def _deployed_at(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    field = f"{where}: metadata.annotations.{DEPLOYED_AT_ANNOTATION}"
    if isinstance(value, datetime):  # YAML timestamps arrive parsed when unquoted
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as error:
            raise GitOpsError(f"must be an RFC 3339 time, got {value!r}", where=field) from error
    if moment.tzinfo is None:
        raise GitOpsError(f"must carry a time zone (RFC 3339), got {value!r}", where=field)
    return moment
