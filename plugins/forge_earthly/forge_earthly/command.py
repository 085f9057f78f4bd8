"""The Earthly command line: target references resolved against the project's folder, and the
arguments of one run (one platform).

The argument order is Earthly's documented synopsis: options first, then the target form
``<target-ref> --NAME=value…`` or the artifact form ``--artifact (<target-ref>/* --NAME=value…)
<dest>/`` (build args inside the parentheses, as ``earthly --help`` and COPY write them).

Secrets go as ``--secret <id>`` with no value: Earthly then reads the value from the environment
variable of the same name. ``--secret id=value`` would put the value in the process list, and
``EARTHLY_SECRETS="id=value,…"`` cannot carry a value holding a comma, so neither is used.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forge_core.sdk import ConfigurationError

SECRET_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A secret travels in the environment variable of its id, so the id must be a variable name."""

_LOCAL = ("+", "./", "../")


@dataclass(frozen=True)
class Invocation:
    """Everything one ``earthly`` run needs, already checked."""

    binary: str
    """The resolved executable path."""
    target: str
    """The target reference as Earthly reads it from ``cwd``."""
    cwd: Path
    args: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    config: str | None = None
    allow_privileged: bool = False
    ci: bool = False

    def argv(self, platform: str | None, artifact_dest: Path | None = None) -> list[str]:
        """The command line of one run: for ``platform`` (None: Earthly's own), in the artifact
        form into ``artifact_dest`` when given."""
        command = [self.binary]
        if platform:
            command += ["--platform", platform]
        if self.config is not None:
            command += ["--config", self.config]
        if self.allow_privileged:
            command.append("--allow-privileged")
        if self.ci:
            command.append("--ci")
        for secret in self.secrets:
            command += ["--secret", secret]
        build_args = [f"--{name}={value}" for name, value in self.args.items()]
        if artifact_dest is None:
            return [*command, self.target, *build_args]
        reference = f"{self.target}/*"
        if build_args:
            reference, build_args[-1] = f"({reference}", f"{build_args[-1]})"
        return [*command, "--artifact", reference, *build_args, f"{artifact_dest}/"]


def resolve_target(target: str, checkout: Path, project_path: str, *, where: str) -> tuple[str, Path]:
    """The reference Earthly is given and the folder it runs in (the project's).

    ``+t`` and ``./dir+t`` / ``../dir+t`` are local: their Earthfile must exist inside the
    checkout. ``host.tld/owner/repo[:ref]+t`` is remote and passed as written."""
    if "+" not in target:
        raise ConfigurationError(f"Earthly target {target!r} has no '+target' part", where=where)
    root = checkout.resolve()
    project = (root / project_path).resolve()
    if not project.is_relative_to(root):
        raise ConfigurationError(f"project path {project_path!r} leaves the checkout", where=where)
    path, _, name = target.rpartition("+")
    if not name:
        raise ConfigurationError(f"Earthly target {target!r} names no target after '+'", where=where)
    if target.startswith(_LOCAL):
        folder = (project / path).resolve()
        if not folder.is_relative_to(root):
            raise ConfigurationError(f"Earthly target {target!r} leaves the checkout", where=where)
        if not (folder / "Earthfile").is_file():
            shown = folder.relative_to(root) if folder != root else Path(".")
            raise ConfigurationError(f"Earthly target {target!r}: no Earthfile in {shown}/", where=where)
        return target, project
    first = path.split("/", 1)[0]
    if path.startswith("/") or "." not in first:
        raise ConfigurationError(
            f"Earthly target {target!r}: a local reference starts with './' or '../' "
            f"(did you mean './{path}+{name}'?); a remote one with its host (github.com/owner/repo+{name})",
            where=where,
        )
    return target, project


def find_binary(binary: str, env: Mapping[str, str], *, where: str) -> str:
    """The executable ``binary`` names: a path, or a name looked up on the run's PATH."""
    found = shutil.which(binary, path=env.get("PATH", os.defpath))
    if found is None:
        raise ConfigurationError(
            f"the Earthly executable {binary!r} is not found (not on PATH, or not executable); "
            "install Earthly or set the 'binary' setting",
            where=where,
        )
    return found


def secret_ids(secrets: Mapping[str, str], *, where: str) -> tuple[str, ...]:
    bad = sorted(name for name in secrets if not SECRET_ID.fullmatch(name))
    if bad:
        raise ConfigurationError(
            f"secret names {', '.join(map(repr, bad))} cannot be Earthly secret ids "
            "(they travel as environment variables: letters, digits, '_')",
            where=where,
        )
    return tuple(sorted(secrets))


INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM", "SSH_AUTH_SOCK",
             "DOCKER_HOST", "DOCKER_CONFIG", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR")
"""The worker's variables Earthly sees (it needs its daemon's and its home's); the worker's own
credentials stay out. ``EARTHLY_*`` variables pass too: they are Earthly's own settings."""


def environment(ctx_env: Mapping[str, str], secrets: Mapping[str, str], inherited: Mapping[str, str]) -> dict[str, str]:
    """The run's environment: the kept worker variables, the context's env, then the secrets."""
    kept = {k: v for k, v in inherited.items() if k in INHERITED or k.startswith("EARTHLY_")}
    # EARTHLY_SECRETS from outside would add secrets nobody declared for this run
    kept.pop("EARTHLY_SECRETS", None)
    return {**kept, **ctx_env, **secrets}


def platform_folder(platform: str | None) -> str:
    """The output folder of one platform's run: ``<out>/linux/amd64/`` (Earthly's own: ``default``)."""
    return platform or "default"


def describe(platform: str | None) -> str:
    return platform or "the default platform"


def check_platforms(platforms: Sequence[str]) -> list[str | None]:
    return list(platforms) if platforms else [None]
