"""The ``python`` producer: builds a Python project's sdist, then its wheel from that sdist, with
``python -m build`` (the PyPA frontend), into a folder it owns."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from forge_core.sdk import (
    ArtifactSpec,
    ConfigurationError,
    ExecutionContext,
    ForgeError,
    ProducedArtifact,
    ProjectRef,
)
from forge_pypi.distributions import canonical, file_sha256, normalize_sdist, read_distributions, wheel_metadata
from forge_pypi.process import ToolFailed, run_tool
from forge_pypi.settings import PythonBuildSettings

REPRODUCIBLE_EPOCH = "315532800"


class PythonProducer:
    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        where = f"producer python of artifact {spec.name} (project {project.name})"
        try:
            settings = PythonBuildSettings.model_validate(spec.producer_settings)
        except ValueError as error:
            raise ConfigurationError(f"invalid python producer settings: {error}", where=where) from None
        source = _inside(ctx.workdir, Path(project.path) / settings.path, "path", where)
        if not (source / "pyproject.toml").is_file() and not (source / "setup.py").is_file():
            raise ConfigurationError(f"{source} has no pyproject.toml or setup.py: not a Python project", where=where)
        out = _inside(source, Path(settings.out_dir), "outDir", where)
        if out == source:
            raise ConfigurationError("outDir must be a folder inside the Python project, not the project itself",
                                     where=where)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

        command = [sys.executable, "-m", "build", "--outdir", str(out)]
        if not settings.isolation:
            command.append("--no-isolation")
        command.append(str(source))
        # Fixed timestamps (1980-01-01, the earliest a zip holds): the same source builds the same
        # files, so a re-run finds the version already published instead of a conflicting one.
        epoch = int(ctx.env.get("SOURCE_DATE_EPOCH", REPRODUCIBLE_EPOCH))
        env = {**os.environ, **ctx.env, "SOURCE_DATE_EPOCH": str(epoch)}
        try:
            run_tool(command, ctx=ctx, cwd=source, env=env, what="python -m build", where=where)
        except ToolFailed as failed:
            raise ForgeError(f"building {source} failed ({failed.message}):\n{failed.output}", where=where) from None

        files = tuple(sorted(p for p in out.iterdir() if p.is_file()))
        for built in files:
            normalize_sdist(built, epoch=epoch)
        dists = read_distributions(files, where=where)
        wheels = [d for d in dists if d.is_wheel]
        if len(wheels) != 1 or len(dists) != 2:
            raise ForgeError(f"python -m build wrote {[p.name for p in files]}, not one sdist and one wheel",
                             where=where)
        name, version = wheel_metadata(wheels[0].path)
        if canonical(name) != wheels[0].project:
            raise ForgeError(f"the wheel's METADATA names {name}, its file name {wheels[0].project}", where=where)
        return ProducedArtifact(
            name=spec.name,
            type=spec.type,
            project=project.name,
            commit=commit,
            files=files,
            digest=f"sha256:{file_sha256(wheels[0].path)}",
            metadata={"distribution": name, "version": version,
                      "files": [{"filename": d.filename, "sha256": d.sha256} for d in dists]},
        )


def _inside(root: Path, relative: Path, field: str, where: str) -> Path:
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ConfigurationError(f"{field} {relative} leaves {root}", where=where)
    return resolved
