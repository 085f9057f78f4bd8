"""The ``exec`` producer: a shell command writes the artifact's declared outputs, which are collected.

The command runs like an ``exec`` step (:mod:`forge_exec.process`) in the project's folder of the
checkout (``ctx.workdir`` is the checkout, ``project.path`` the project's folder in it). It sees
the worker's basic variables, the settings' ``env``, the context's ``env`` and the producer's own
secrets (``ctx.secrets``, masked in every log line), plus ``SOURCE_DATE_EPOCH`` (the context's, or
1980-01-01) so tools that honour it build the same bytes, ``FORGE_COMMIT`` and ``FORGE_ARTIFACT``.
Its time limit is the settings' ``timeout`` or the context's, the shorter.

Exactly one output is declared; the producer owns it, so it is removed before the command runs and
whatever is collected was written by this run:

- ``files``: globs; each must match at least one file. ``files`` are the matches in the order of
  the globs (each glob's matches sorted); ``digest`` is the sha256 of the first, and
  ``metadata["files"]`` holds each one's path, size and sha256.
- ``folder``: for an ``archive``, a reproducible tar.gz of it (sorted entries, mtime 0, uid/gid 0,
  fixed modes, gzip mtime 0: the same files give the same digest), its files under ``prefix``;
  ``digest`` is the tar.gz's sha256. For another type, every file in it, as for ``files``.
- ``layout`` (``container`` only): an OCI image layout folder, checked (``oci-layout``,
  ``index.json``, the image's manifest present with its digest, every blob it names present);
  ``reference`` is ``oci-layout:<absolute path>[:tag]`` and ``digest`` the image's manifest or
  index digest. Without ``tag`` the layout must hold one image.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forge_core.sdk import (
    ArtifactSpec,
    ConfigurationError,
    ExecutionContext,
    FetchedManifest,
    ForgeError,
    Index,
    LayoutReference,
    OciError,
    OciStore,
    ProducedArtifact,
    ProjectRef,
    WorkWithdrawn,
    open_store,
    write_tar_gz_of_folder,
)
from forge_exec.process import CannotStart, inherited, run_command, shortest
from forge_exec.settings import ExecProducerSettings

REPRODUCIBLE_EPOCH = "315532800"
"""1980-01-01, the earliest time a zip holds: ``SOURCE_DATE_EPOCH`` unless the context sets one."""
REF_NAME = "org.opencontainers.image.ref.name"


class CommandFailed(ForgeError):
    """The command exited non-zero or ran out of time; ``output`` holds its last lines (masked)."""

    code = "command_failed"

    def __init__(self, message: str, *, where: str, exit_code: int, output: str) -> None:
        super().__init__(message, where=where, details={"exit_code": exit_code})
        self.exit_code = exit_code
        self.output = output


class OutputMissing(ForgeError):
    """A declared output the command did not write (or wrote wrong)."""

    code = "output_missing"


class ExecProducer:
    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        where = f"producer exec of artifact {spec.name} (project {project.name})"
        try:
            settings = ExecProducerSettings.model_validate(spec.producer_settings)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
            )
            raise ConfigurationError(f"invalid exec producer settings: {problems}", where=where) from None
        if (spec.type == "container") != (settings.layout is not None):
            raise ConfigurationError(
                f"a {spec.type} artifact declares "
                + ("a layout output" if spec.type == "container" else "files or a folder, not a layout"),
                where=where,
            )
        folder = _inside(ctx.workdir, Path(project.path), "the project's path", where)
        if not folder.is_dir():
            raise ConfigurationError(f"the project's folder {folder} does not exist", where=where)
        outputs = _Outputs(folder, settings, spec, where)
        outputs.clear()
        try:
            self._run(settings, spec, commit, folder, ctx, where)
            return outputs.collect(project, commit)
        except BaseException:
            outputs.clear()  # a failed or withdrawn run leaves no half-written output behind
            raise

    def _run(
        self, settings: ExecProducerSettings, spec: ArtifactSpec, commit: str, folder: Path, ctx: ExecutionContext,
        where: str,
    ) -> None:
        if ctx.stop.is_set():
            raise WorkWithdrawn("the command was withdrawn before it started", where=where)
        env = {
            **inherited(), **settings.env, **ctx.env, **ctx.secrets,
            "SOURCE_DATE_EPOCH": ctx.env.get("SOURCE_DATE_EPOCH", REPRODUCIBLE_EPOCH),
            "FORGE_COMMIT": commit, "FORGE_ARTIFACT": spec.name,
        }
        limit = shortest(settings.timeout.total_seconds() if settings.timeout else None, ctx.timeout)
        try:
            finished = run_command(settings.command, cwd=folder, env=env, log=ctx.log,
                                   secrets=ctx.secrets.values(), timeout=limit, stop=ctx.stop)
        except CannotStart as exc:
            raise ForgeError(str(exc), where=where) from None
        output = "\n".join(finished.tail)
        if finished.stopped:
            raise WorkWithdrawn("the command was withdrawn while running (its process group was killed)",
                                where=where)
        if finished.timed_out:
            raise CommandFailed(f"the command timed out after {limit:g} s; its last output:\n{output}",
                                where=where, exit_code=finished.exit_code, output=output)
        if finished.exit_code != 0:
            raise CommandFailed(f"the command exited with code {finished.exit_code}; its last output:\n{output}",
                                where=where, exit_code=finished.exit_code, output=output)


class _Outputs:
    """The declared output of one artifact: cleared before the command, collected after it."""

    def __init__(self, folder: Path, settings: ExecProducerSettings, spec: ArtifactSpec, where: str) -> None:
        self.folder, self.settings, self.spec, self.where = folder, settings, spec, where
        self.globs = list(settings.files or ())
        self.directory = _inside(folder, Path(settings.folder or settings.layout or "."), "folder/layout", where)
        self.archive: Path | None = None
        if settings.folder is not None and spec.type == "archive":
            self.archive = _inside(folder, Path(settings.archive or f"{settings.folder.rstrip('/')}.tar.gz"),
                                   "archive", where)
            if self.archive.is_relative_to(self.directory):
                raise ConfigurationError(f"archive {settings.archive} is inside the folder it archives",
                                         where=where)
        if self.directory == folder and not self.globs:
            raise ConfigurationError("the folder or layout output is the project's folder itself, not one in it",
                                     where=where)

    def clear(self) -> None:
        for pattern in self.globs:
            for path in self.folder.glob(pattern):
                if path.is_file() or path.is_symlink():
                    path.unlink()
        if not self.globs:
            shutil.rmtree(self.directory, ignore_errors=True)
        if self.archive is not None:
            self.archive.unlink(missing_ok=True)

    def collect(self, project: ProjectRef, commit: str) -> ProducedArtifact:
        base: dict[str, Any] = {"name": self.spec.name, "type": self.spec.type, "project": project.name,
                                "commit": commit}
        metadata: dict[str, Any] = {"command": self.settings.command}
        if self.settings.layout is not None:
            reference, digest, media_type = _check_layout(self.directory, self.settings.tag, self.settings.layout,
                                                          self.where)
            metadata |= {"layout": self.settings.layout, "mediaType": media_type}
            return ProducedArtifact(**base, reference=reference, digest=digest, metadata=metadata)
        if self.settings.files is not None:
            files = self._globbed()
        else:
            if not self.directory.is_dir():
                raise OutputMissing(f"declared folder {self.settings.folder} was not written by the command",
                                    where=self.where)
            files = sorted(p for p in self.directory.rglob("*") if p.is_file())
            if not files:
                raise OutputMissing(f"declared folder {self.settings.folder} is empty", where=self.where)
            for path in files:
                _inside(self.folder, path.relative_to(self.folder), f"folder {self.settings.folder}", self.where)
        if self.archive is not None:
            prefix = self.settings.prefix if self.settings.prefix is not None else self.directory.name
            try:
                write_tar_gz_of_folder(self.archive, self.directory, prefix=prefix)
            except ValueError as exc:
                raise ForgeError(f"cannot archive folder {self.settings.folder}: {exc}", where=self.where) from None
            metadata |= {"folder": self.settings.folder, "entries": len(files)}
            files = [self.archive]
        described = [self._describe(path) for path in files]
        metadata["files"] = described
        return ProducedArtifact(**base, files=tuple(files), digest=f"sha256:{described[0]['sha256']}",
                                metadata=metadata)

    def _globbed(self) -> list[Path]:
        found: dict[Path, None] = {}  # ordered, each file once
        for pattern in self.globs:
            matches = sorted(p for p in self.folder.glob(pattern) if p.is_file())
            if not matches:
                raise OutputMissing(f"declared output {pattern!r} matches no file the command wrote",
                                    where=self.where)
            for path in matches:
                _inside(self.folder, path.relative_to(self.folder), f"files {pattern!r}", self.where)
                found.setdefault(path)
        return list(found)

    def _describe(self, path: Path) -> dict[str, Any]:
        return {"path": path.relative_to(self.folder).as_posix(), "size": path.stat().st_size,
                "sha256": _sha256(path)}


def _check_layout(folder: Path, tag: str | None, declared: str, where: str) -> tuple[str, str, str]:
    """The reference, digest and media type of the image the layout holds; OutputMissing if it
    is not a complete OCI image layout with that image."""

    def bad(why: str) -> OutputMissing:
        return OutputMissing(f"declared layout {declared}: {why}", where=where)

    if not folder.is_dir():
        raise bad("was not written by the command")
    if not (folder / "oci-layout").is_file():
        raise bad("has no oci-layout file: not an OCI image layout")
    try:
        index = Index.model_validate_json((folder / "index.json").read_bytes())
    except FileNotFoundError:
        raise bad("has no index.json") from None
    except ValueError as exc:
        raise bad(f"index.json does not parse as an image index: {exc}") from None
    tags = sorted({t for e in index.manifests if (t := (e.annotations or {}).get(REF_NAME))})
    if tag is not None:
        chosen = {e.digest: e for e in index.manifests if (e.annotations or {}).get(REF_NAME) == tag}
        if not chosen:
            raise bad(f"has no image tagged {tag!r} (tags: {', '.join(tags) or 'none'})")
    else:
        chosen = {e.digest: e for e in index.manifests}
        if len(chosen) != 1:
            raise bad(f"holds {len(chosen)} images: name one with tag (tags: {', '.join(tags) or 'none'})")
    entry = next(iter(chosen.values()))
    reference = LayoutReference(folder.resolve(), tag)
    store = open_store(reference)
    try:
        fetched = store.fetch_manifest(reference.repository, entry.digest)  # present, and hashes to its digest
        missing = sorted(_missing_blobs(store, reference.repository, fetched))
    except OciError as exc:
        raise bad(f"image {entry.digest}: {exc}") from None
    if missing:
        raise bad(f"image {entry.digest} names blobs the layout lacks: {', '.join(missing)}")
    return str(reference), entry.digest, fetched.descriptor.media_type


def _missing_blobs(store: OciStore, repository: str, fetched: FetchedManifest) -> Iterator[str]:
    """The blobs a manifest names that the layout lacks (of every platform's manifest, for an index)."""
    document = fetched.document
    if isinstance(document, Index):
        for child in document.manifests:
            yield from _missing_blobs(store, repository, store.fetch_manifest(repository, child.digest))
        return
    for blob in (document.config, *document.layers):
        if not store.blob_exists(repository, blob.digest):
            yield blob.digest


def _inside(root: Path, relative: Path, field: str, where: str) -> Path:
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ConfigurationError(f"{field} {relative} leaves {root}", where=where)
    return resolved


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
