"""The ``pypi`` publisher: uploads a ``python`` artifact's sdist and wheel to a PyPI-compatible index.

Twine runs as a child process, one file at a time: its output is streamed to the log, a withdrawn
publish kills it at once (a library call could not be interrupted), and the credentials reach it
through its environment, never its command line. Twine 6.2+ refuses ``--skip-existing`` outside
PyPI, so what the index already holds is read from its simple API before anything is uploaded.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    ForgeError,
    LoginError,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
    WorkWithdrawn,
    login_from_secrets,
)
from forge_pypi.distributions import Distribution, parse_filename, read_distributions
from forge_pypi.index import CredentialsRefused, IndexUnavailable, project_files
from forge_pypi.process import ToolFailed, run_tool
from forge_pypi.settings import PypiTargetSettings

TOKEN_USERNAME = "__token__"
HTTP_STATUS = re.compile(r"HTTPError: (\d{3})")
CONNECTION_TROUBLE = ("ConnectionError", "Connection refused", "Max retries exceeded", "RemoteDisconnected")


class VersionExists(ForgeError):
    """The index already holds this version with different files: a version is immutable."""

    code = "version_exists"


def credentials(secrets: Mapping[str, str], *, where: str) -> tuple[str, str]:
    """(username, password) from the target's credentials.

    ``repo.cue`` gives a target one unnamed reference (``default``): ``user:password`` (split at the
    first colon, as in HTTP basic auth, where a user name holds none) or an API token (no colon),
    sent as the user ``__token__``. Callers that name their credentials may give ``username`` and
    ``password``, or ``token``. The rule is the core's (:func:`forge_core.sdk.login_from_secrets`).
    """
    try:
        login = login_from_secrets(secrets, token_username=TOKEN_USERNAME)
    except LoginError:
        login, malformed = None, True
    else:
        malformed = False
    if login is not None:
        return login
    named = ", ".join(sorted(secrets)) or "none"
    raise ConfigurationError(
        "the target needs credentials: one reference holding `user:password` or an API token "
        f"(or `username` and `password`, or `token`); it has: {named}"
        + (" (the reference's value is not `user:password`)" if malformed else ""),
        where=where,
    )


class PypiPublisher:
    def plan(self, artifact: ProducedArtifact, target: PublishTarget) -> PublishedLocation:
        """Where ``publish`` would put the artifact, computed without contacting the index."""
        where = f"publisher {target.name}"
        settings = _settings(target, where)
        return _location(target, settings, read_distributions(artifact.files, where=where))

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        where = f"publisher {target.name}"
        if ctx.stop.is_set():
            raise WorkWithdrawn("publish withdrawn before it started", where=where)
        settings = _settings(target, where)
        dists = read_distributions(artifact.files, where=where)
        username, password = credentials(ctx.secrets, where=where)
        location = _location(target, settings, dists)
        project, version = dists[0].project, dists[0].version

        def existing() -> dict[str, str | None]:
            return project_files(location.uri, username=username, password=password, attempts=settings.attempts,
                                 where=where, log=ctx.log, wait=ctx.stop.wait)

        missing = _missing(dists, existing(), where=where)
        for dist in dists:
            if dist not in missing:
                ctx.log(f"{dist.filename}: already on the index with the same SHA-256, not uploaded")
        for dist in missing:
            self._upload(dist, settings, username, password, ctx, where=where, existing=existing)
        ctx.log(f"{project} {version}: {len(missing)} file(s) uploaded, {len(dists) - len(missing)} already there")
        return location

    def _upload(
        self,
        dist: Distribution,
        settings: PypiTargetSettings,
        username: str,
        password: str,
        ctx: ExecutionContext,
        *,
        where: str,
        existing: Callable[[], dict[str, str | None]],
    ) -> None:
        env = {k: v for k, v in {**os.environ, **ctx.env}.items() if not k.startswith("TWINE_")}
        env |= {"TWINE_USERNAME": username, "TWINE_PASSWORD": password,
                "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        command = [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
                   "--repository-url", settings.repository, str(dist.path)]
        problem = ""
        for attempt in range(1, settings.attempts + 1):
            ctx.log(f"uploading {dist.filename} to {settings.repository} (attempt {attempt} of {settings.attempts})")
            try:
                run_tool(command, ctx=ctx, cwd=dist.path.parent, env=env, what=f"twine upload {dist.filename}",
                         where=where, mask=[password])
                return
            except ToolFailed as failed:
                status = _status(failed.output)
                if status in (401, 403):
                    raise CredentialsRefused(
                        f"the index at {settings.repository} refused the credentials ({status}) "
                        f"uploading {dist.filename}", where=where) from None
                if status in (400, 409):
                    # Already there: an upload that landed although we saw it fail, or a race.
                    if not _missing([dist], existing(), where=where):
                        return
                    raise VersionExists(f"the index refused {dist.filename} ({status}): {dist.version} exists "
                                        "with different files", where=where) from None
                transient = (status is not None and status >= 500) or any(
                    marker in failed.output for marker in CONNECTION_TROUBLE)
                if not transient:
                    raise ForgeError(f"uploading {dist.filename} to {settings.repository} failed: "
                                     f"{_last_line(failed.output)}", where=where) from None
                problem = _last_line(failed.output)
            if attempt < settings.attempts:
                delay = 0.5 * 2 ** (attempt - 1)
                ctx.log(f"upload of {dist.filename} failed ({problem}); retrying in {delay:g}s")
                if ctx.stop.wait(delay):
                    raise WorkWithdrawn(f"upload of {dist.filename} withdrawn", where=where)
        raise IndexUnavailable(f"uploading {dist.filename} to {settings.repository} failed after "
                               f"{settings.attempts} attempts: {problem}", where=where)


def _settings(target: PublishTarget, where: str) -> PypiTargetSettings:
    try:
        return PypiTargetSettings.model_validate(target.settings)
    except ValueError as error:
        raise ConfigurationError(f"invalid pypi target settings: {error}", where=where) from None


def _location(target: PublishTarget, settings: PypiTargetSettings, dists: list[Distribution]) -> PublishedLocation:
    primary = next((d for d in dists if d.is_wheel), dists[0])
    return PublishedLocation(
        publisher=target.name,
        type=target.type,
        uri=f"{settings.simple_url()}{primary.project}/",
        digest=f"sha256:{primary.sha256}",
        metadata={
            "version": primary.version,
            "files": [{"filename": d.filename, "sha256": d.sha256} for d in dists],
        },
    )


def _missing(dists: list[Distribution], on_index: dict[str, str | None], *, where: str) -> list[Distribution]:
    """The distributions still to upload; refuses a version the index holds with other content."""
    version = dists[0].version
    for dist in dists:
        if dist.filename in on_index and on_index[dist.filename] != dist.sha256:
            reported = on_index[dist.filename] or "no SHA-256"
            raise VersionExists(
                f"version {version} already exists on the index with a different {dist.filename} "
                f"(index: {reported}, artifact: {dist.sha256}); a published version cannot change",
                where=where,
            )
    ours = {d.filename for d in dists}
    theirs = [f for f in on_index if parse_filename(f) == (dists[0].project, version) and f not in ours]
    if theirs and not ours & on_index.keys():
        raise VersionExists(
            f"version {version} already exists on the index with other files ({', '.join(sorted(theirs))}); "
            "a published version cannot change",
            where=where,
        )
    return [d for d in dists if d.filename not in on_index]


def _status(output: str) -> int | None:
    found = HTTP_STATUS.findall(output)
    return int(found[-1]) if found else None


def _last_line(output: str) -> str:
    """The line of twine's output that says what went wrong (its HTTP error, else its last line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    return errors[-1] if errors else lines[-1] if lines else "no output"
