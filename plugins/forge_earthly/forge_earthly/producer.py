"""The ``earthly`` producer: runs an Earthly target in the artifact form, one run per platform,
each into ``<out>/<platform>/`` (``<out>`` is ``.forge/earthly/<project>/<artifact>`` in the
checkout, emptied first), then checks that folder for what the artifact type needs:

- binary: ``binary_path`` (else every file the target saved), per platform;
- archive: ``archive_path`` (else every file), per platform;
- python: the wheels and sdists the target saved;
- container: the OCI image layout at ``image_path`` (a folder or a tar; see ``image.py``), all
  platforms into one layout ``<out>/image``: ``reference = oci-layout:<out>/image:<tag>`` and
  ``digest`` its manifest (one platform) or index (several).

Outputs are found by looking at the files, never by reading Earthly's log. ``metadata.platforms``
lists, per platform, the files it gave (for a container, its image digest)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from pydantic import ValidationError

from forge_core.sdk import (
    ArtifactSpec,
    ConfigurationError,
    ExecutionContext,
    ForgeError,
    ProducedArtifact,
    ProjectRef,
    WorkWithdrawn,
)
from forge_earthly.command import (
    Invocation,
    describe,
    environment,
    find_binary,
    platform_folder,
    resolve_target,
    secret_ids,
)
from forge_earthly.image import assemble, read_layout
from forge_earthly.runs import PlatformRun, run_platforms
from forge_earthly.settings import EarthlyProducerSettings

OUTPUT_ROOT = Path(".forge") / "earthly"
PYTHON_FILES = (".whl", ".tar.gz")


class EarthlyProducer:
    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        where = f"producer earthly of artifact {spec.name} (project {project.name})"
        try:
            settings = EarthlyProducerSettings.model_validate(spec.producer_settings)
        except ValidationError as error:
            raise ConfigurationError(f"invalid earthly producer settings: {error}", where=where) from None
        target, cwd = resolve_target(settings.target, ctx.workdir, project.path, where=where)
        env = environment(ctx.env, ctx.secrets, os.environ)
        invocation = Invocation(
            binary=find_binary(settings.binary, env, where=where), target=target, cwd=cwd, args=settings.args,
            secrets=secret_ids(ctx.secrets, where=where), config=settings.config,
            allow_privileged=settings.allow_privileged, ci=settings.ci,
        )
        if ctx.stop.is_set():
            raise WorkWithdrawn("earthly withdrawn before it started", where=where)
        out = (ctx.workdir / OUTPUT_ROOT / project.name / spec.name).resolve()
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

        def dest(platform: str | None) -> Path:
            folder = out / platform_folder(platform)
            folder.mkdir(parents=True, exist_ok=True)
            return folder

        deadline = time.monotonic() + ctx.timeout if ctx.timeout else None
        runs = run_platforms(invocation, settings.platforms, ctx=ctx, env=env, retries=settings.retries,
                             deadline=deadline, artifact_dest=dest)
        _check(runs, target, ctx, where)
        platforms = [run.platform for run in runs]
        if spec.type == "container":
            return self._container(spec, project, commit, settings, out, platforms, target, where)
        outputs = {p: _files(spec.type, settings, out / platform_folder(p), describe(p), target, where)
                   for p in platforms}
        files = tuple(path for p in platforms for path in outputs[p])
        return ProducedArtifact(
            name=spec.name, type=spec.type, project=project.name, commit=commit, files=files,
            metadata={
                "producer": "earthly", "target": target,
                "platforms": {platform_folder(p): [str(f.relative_to(out)) for f in outputs[p]] for p in platforms},
                **{k: v for k, v in {"os": settings.os, "arch": settings.arch, "format": settings.format}.items() if v},
            },
        )

    def _container(self, spec: ArtifactSpec, project: ProjectRef, commit: str, settings: EarthlyProducerSettings,
                   out: Path, platforms: list[str | None], target: str, where: str) -> ProducedArtifact:
        layouts: list[tuple[str | None, Path]] = []
        for platform in platforms:
            folder = out / platform_folder(platform)
            saved = _inside(folder, settings.image_path, where)
            if not saved.exists():
                raise ForgeError(_missing("image_path", settings.image_path, target, platform, folder), where=where)
            unpack = out / ".layouts" / platform_folder(platform)
            layouts.append((platform, read_layout(saved, unpack, where=f"{where}, {describe(platform)}")))
        tag = _tag(settings.image_ref)
        layout = out / "image"
        root = assemble(layouts, layout, tag, where=where)
        return ProducedArtifact(
            name=spec.name, type=spec.type, project=project.name, commit=commit,
            reference=f"oci-layout:{layout}:{tag}", digest=root.digest,
            metadata={"producer": "earthly", "target": target,
                      "platforms": [platform_folder(p) for p in platforms], "media_type": root.media_type},
        )


def _check(runs: list[PlatformRun], target: str, ctx: ExecutionContext, where: str) -> None:
    last = runs[-1].last
    if last.stopped:
        raise WorkWithdrawn(f"earthly {target} withdrawn while running", where=where)
    failed = [run for run in runs if not run.last.succeeded]
    if failed:
        tail = "\n".join(failed[0].last.tail)
        message = f"earthly {target} failed: " + "; ".join(run.failure() for run in failed)
        ctx.log(message)
        raise ForgeError(f"{message}\n{tail}" if tail else message, where=where)


def _files(kind: str, settings: EarthlyProducerSettings, folder: Path, platform: str, target: str,
           where: str) -> list[Path]:
    declared = {"binary": ("binary_path", settings.binary_path),
                "archive": ("archive_path", settings.archive_path)}.get(kind)
    if declared is not None and declared[1] is not None:
        path = _inside(folder, declared[1], where)
        if not path.is_file():
            raise ForgeError(_missing(declared[0], declared[1], target, platform, folder), where=where)
        return [path]
    saved = sorted(p for p in folder.rglob("*") if p.is_file())
    if kind == "python":
        saved = [p for p in saved if p.name.endswith(PYTHON_FILES)]
        if not any(p.name.endswith(".whl") for p in saved):
            raise ForgeError(f"earthly {target} saved no wheel (.whl) for {platform} in {folder}", where=where)
    if not saved:
        raise ForgeError(f"earthly {target} saved no files for {platform} in {folder}", where=where)
    return saved


def _missing(field: str, path: str, target: str, platform: str | None, folder: Path) -> str:
    saved = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())[:10]
    return (f"the declared output {field} {path!r} was not saved by earthly {target} for {describe(platform)} "
            f"(it saved: {', '.join(saved) or 'nothing'})")


def _inside(folder: Path, relative: str, where: str) -> Path:
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ConfigurationError(f"output path {relative!r} leaves the output folder", where=where)
    return path


def _tag(image_ref: str | None) -> str:
    if image_ref is None:
        return "latest"
    name, _, tag = image_ref.rpartition(":")
    return tag if name and "/" not in tag else "latest"
