"""What a ``pypi`` publisher target in ``repo.cue`` and a ``python`` producer in ``project.cue`` hold."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class PypiTargetSettings(SettingsModel):
    """The index to upload to; no default, so nothing reaches the public PyPI by accident."""

    repository: str = Field(pattern=r"^https?://\S+$", description="The index's upload URL")
    index: str | None = Field(
        default=None,
        pattern=r"^https?://\S+/$",
        description="The index's simple API (PEP 503/691), read to find what is already there; "
        "default: the repository URL if it ends in /simple/, else the repository URL + simple/",
    )
    attempts: int = Field(default=3, ge=1, le=10, description="Tries per request on transient errors")

    def simple_url(self) -> str:
        if self.index:
            return self.index
        base = self.repository if self.repository.endswith("/") else self.repository + "/"
        return base if base.endswith("/simple/") else base + "simple/"


class PythonBuildSettings(SettingsModel):
    """How the ``python`` producer builds a project's sdist and wheel (``python -m build``)."""

    path: str = Field(default=".", description="The Python project's folder, relative to the project's")
    isolation: bool = Field(
        default=True,
        description="Build in an isolated environment that downloads the build requirements; "
        "false builds with what the worker has installed (`--no-isolation`, works offline)",
    )
    out_dir: str = Field(
        default="dist/forge",
        description="Where the distributions are written, relative to the Python project's folder "
        "(emptied first: the producer owns it)",
    )
