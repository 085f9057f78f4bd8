"""The plugin's settings: ``FORGE_GITOPS__*`` environment variables (job handlers have no
settings section of their own in the core, so the plugin reads its own, like the core does).

- ``FORGE_GITOPS__URL``: the GitOps repository (``https://…``, ``ssh://…``, ``git@host:path``, a
  path or ``file://``); unset: the embedded bare repository ``<state_dir>/gitops.git``, created
  on first use with an initial commit on the branch.
- ``FORGE_GITOPS__BRANCH`` (``main``), ``FORGE_GITOPS__CREDENTIALS`` (a secret reference, JSON:
  ``{"provider": "env", "path": "GITOPS_TOKEN"}``: an HTTPS token or password, or an SSH private
  key), ``FORGE_GITOPS__USERNAME`` (who the HTTPS token authenticates as),
  ``FORGE_GITOPS__KNOWN_HOSTS`` (an SSH known_hosts file; unset: the host key is accepted on
  first use), ``FORGE_GITOPS__SSH_COMMAND`` (the ssh program, ``ssh``).
- ``FORGE_GITOPS__PUSH_ATTEMPTS`` (10), ``FORGE_GITOPS__BACKOFF_SECONDS`` (0.5, doubled per
  attempt, with jitter), ``FORGE_GITOPS__BACKOFF_MAX_SECONDS`` (10), ``FORGE_GITOPS__GIT_TIMEOUT_SECONDS``
  (120 per git command).
- ``FORGE_GITOPS__MAX_BATCH`` (50): the deployment jobs that wait for one worker's turn at the
  remote land together in one commit, at most this many (1: one commit per job);
  ``FORGE_GITOPS__BATCH_LINGER_SECONDS`` (0.02): how long a turn waits for the jobs started with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from forge_core.sdk import DEFAULT_STATE_DIR, ConfigurationError, SecretRef


class GitOpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORGE_GITOPS__", extra="forbid", frozen=True)

    url: str | None = Field(default=None, description="The GitOps repository; unset: the embedded one.")
    branch: str = Field(default="main", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    credentials: SecretRef | None = Field(default=None, description="HTTPS token/password or SSH key.")
    username: str = Field(default="x-access-token", min_length=1)
    known_hosts: Path | None = None
    ssh_command: str = Field(default="ssh", min_length=1, description="The ssh program git runs.")
    state_dir: Path | None = Field(default=None, description="Unset: FORGE_STATE_DIR, else the default.")
    push_attempts: int = Field(default=10, ge=1, le=100)
    backoff_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=10.0, ge=0)
    git_timeout_seconds: float = Field(default=120.0, gt=0)
    fetch_protocol: int = Field(
        default=0, description="git's wire protocol for fetches: 0 asks in one request fewer (a GitOps "
        "repository has few refs; go-git, which Argo CD and Flux use, speaks only this one); 2 filters refs "
        "on the server, for a remote with very many refs")
    max_batch: int = Field(default=50, ge=1, le=1000,
                           description="Most deployment jobs one worker lands in one commit (1: a commit each).")
    batch_linger_seconds: float = Field(default=0.02, ge=0, le=5,
                                        description="How long a turn waits for jobs started with it.")
    author_name: str = "Catalyst Forge"
    author_email: str = "forge@catalyst-forge.invalid"

    @field_validator("fetch_protocol")
    @classmethod
    def _a_protocol_git_speaks(cls, value: int) -> int:
        if value not in (0, 2):
            raise ValueError("must be 0 or 2")
        return value

    @field_validator("url")
    @classmethod
    def _no_credentials_in_the_url(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and urlsplit(value).password is not None:
            raise ValueError("the URL holds a password or token: give it as FORGE_GITOPS__CREDENTIALS "
                             "(a secret reference)")
        return value or None

    @property
    def embedded(self) -> bool:
        return self.url is None

    def repository_url(self) -> str:
        """Where to clone from and push to."""
        if self.url is not None:
            return self.url
        return str(self.embedded_path())

    def embedded_path(self) -> Path:
        state = self.state_dir or Path(os.environ.get("FORGE_STATE_DIR") or DEFAULT_STATE_DIR)
        return state / "gitops.git"


def load_settings() -> GitOpsSettings:
    """The settings from the environment; a bad value is a ConfigurationError naming its variable."""
    from pydantic import ValidationError

    try:
        return GitOpsSettings()
    except ValidationError as exc:
        problems = [f"FORGE_GITOPS__{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError("invalid GitOps settings: " + "; ".join(problems), where="FORGE_GITOPS") from None
