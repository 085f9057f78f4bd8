"""How git authenticates to the GitOps remote, by environment only (never in the URL, the
clone's ``.git/config`` or a command line that ``ps`` shows).

HTTPS: ``http.extraHeader`` (``Authorization: Basic …`` of the username and token) through
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_0``/``GIT_CONFIG_VALUE_0``. SSH: ``GIT_SSH_COMMAND`` with the
key in a temporary file (0600) that is deleted when the block ends. :attr:`GitAuth.secrets` are
the values every message is masked with.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from forge_core.sdk import ConfigurationError
from forge_gitops.settings import GitOpsSettings


@dataclass(frozen=True)
class GitAuth:
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


def is_ssh(url: str) -> bool:
    """``ssh://…`` or git's scp-like ``user@host:path``."""
    if url.startswith("ssh://"):
        return True
    return "://" not in url and "@" in url.split(":", 1)[0] and ":" in url


def is_https(url: str) -> bool:
    return url.startswith(("https://", "http://"))


@contextmanager
def git_auth(settings: GitOpsSettings, secret: str | None) -> Iterator[GitAuth]:
    """The environment git needs for the configured remote, given the resolved credential."""
    url = settings.repository_url()
    if secret is None:
        yield GitAuth()
        return
    if is_https(url):
        basic = base64.b64encode(f"{settings.username}:{secret}".encode()).decode()
        header = f"Authorization: Basic {basic}"
        env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": header}
        yield GitAuth(env, (secret, basic))
        return
    if is_ssh(url):
        folder = Path(tempfile.mkdtemp(prefix="forge-gitops-ssh-"))
        try:
            key = folder / "key"
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secret if secret.endswith("\n") else secret + "\n")
            command = [settings.ssh_command, "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
            if settings.known_hosts is not None:
                command += ["-o", f"UserKnownHostsFile={settings.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
            else:
                command += ["-o", "StrictHostKeyChecking=accept-new"]
            yield GitAuth({"GIT_SSH_COMMAND": shlex.join(command)}, (secret,))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    raise ConfigurationError(
        "credentials are given but the GitOps URL is neither HTTPS nor SSH", where="FORGE_GITOPS__CREDENTIALS"
    )
