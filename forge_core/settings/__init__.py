"""One configuration object, validated at start and passed down (nothing reads os.environ deeper).

Sources, strongest first: explicit arguments, ``FORGE_*`` environment variables (nested fields
with ``__``, e.g. ``FORGE_PLUGINS__BLOCK=forge_s3,forge_pypi``), the TOML file named by
``FORGE_CONFIG_FILE`` (or ``forge.toml`` in the working directory), then the defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from forge_core.domain.errors import ConfigurationError
from forge_core.settings.api import ApiSettings
from forge_core.settings.auth import AuthSettings
from forge_core.settings.cmp import CmpSettings
from forge_core.settings.cue import CueSettings
from forge_core.settings.database import DEFAULT_STATE_DIR, DatabaseSettings
from forge_core.settings.git import GitSettings
from forge_core.settings.leases import LeaseSettings
from forge_core.settings.nats import NatsSettings
from forge_core.settings.oci import OciSettings
from forge_core.settings.orchestrator import OrchestratorSettings
from forge_core.settings.release import ReleaseSettings
from forge_core.settings.render import RenderSettings
from forge_core.settings.secrets import SecretsSettings
from forge_core.settings.server import ServerSettings
from forge_core.settings.storage import StorageSettings
from forge_core.settings.tracking import TrackingSettings
from forge_core.settings.worker import WorkerSettings

if TYPE_CHECKING:
    from packaging.requirements import Requirement

CONFIG_FILE_VARIABLE = "FORGE_CONFIG_FILE"
DEFAULT_CONFIG_FILE = "forge.toml"


def _split_list(value: Any) -> Any:
    """Accept a JSON list or a comma/whitespace separated string (friendlier in a shell)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item for item in text.replace(",", " ").split() if item]
    return value


class PluginSettings(BaseModel):
    """Which plugins are loaded, and how strictly."""

    model_config = ConfigDict(extra="forbid")

    allow: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Only these plugin ids are loaded (unset: all installed)."
    )
    block: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="These plugin ids are never imported."
    )
    autoload: bool = Field(default=True, description="Load installed plugins (off: only the core's built-ins).")
    strict: bool = Field(default=False, description="Any plugin that fails to load is a start-up error.")
    trace: bool = Field(default=False, description="Write one line per plugin hook call to stderr.")
    required: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Plugins that must load, with optional version ranges: 'forge_docker>=0.1,<1'.",
    )

    @field_validator("allow", "block", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("required", mode="before")
    @classmethod
    def _requirements(cls, value: Any) -> Any:
        # Specifier sets contain commas, so entries are separated by whitespace or ';' only.
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else text.replace(";", " ").split()
        return value

    @field_validator("required")
    @classmethod
    def _valid_requirements(cls, value: list[str]) -> list[str]:
        # packaging is imported here, not at the top: every `forge` process reads the settings,
        # and most (the Argo CD plugin's above all) name no required plugin.
        from packaging.requirements import InvalidRequirement, Requirement

        for item in value:
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                raise ValueError(f"{item!r} is not a plugin requirement like 'forge_docker>=0.1,<1': {exc}") from exc
        return value

    def requirements(self) -> list[Requirement]:
        from packaging.requirements import Requirement

        return [Requirement(item) for item in self.required]


class Settings(BaseSettings):
    """All of Catalyst Forge's settings."""

    model_config = SettingsConfigDict(
        env_prefix="FORGE_", env_nested_delimiter="__", extra="forbid", nested_model_default_partial_update=True
    )

    state_dir: Path = Field(
        default=DEFAULT_STATE_DIR,
        description="Where the embedded defaults keep their state: the SQLite file, the local signing "
        "key, step logs and results (unless database.url / storage.url say otherwise), NATS's store, "
        "and the caches (worker, git, discovery) unless their cache_dir is set.",
    )
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    cue: CueSettings = Field(default_factory=CueSettings)
    git: GitSettings = Field(default_factory=GitSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    oci: OciSettings = Field(default_factory=OciSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    release: ReleaseSettings = Field(default_factory=ReleaseSettings)
    cmp: CmpSettings = Field(default_factory=CmpSettings)
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    leases: LeaseSettings = Field(default_factory=LeaseSettings)

    @model_validator(mode="after")
    def _locations_follow_the_state_dir(self) -> Settings:
        # One folder for a machine's state: what was not placed explicitly goes under state_dir.
        if "state_dir" not in self.database.model_fields_set:
            self.database.state_dir = self.state_dir
        if "url" not in self.storage.model_fields_set:
            self.storage.url = str(self.state_dir / "storage")
        caches = self.state_dir / "cache"
        if "cache_dir" not in self.worker.model_fields_set:
            self.worker.cache_dir = caches / "worker"
        if "cache_dir" not in self.git.model_fields_set:
            self.git.cache_dir = caches / "git"
        if "cache_dir" not in self.cue.model_fields_set:
            self.cue.cache_dir = caches / "discovery"
        if self.cmp.cache_dir is None:
            self.cmp.cache_dir = caches / "cmp"
        if not self.oci.layout_dir.is_absolute():
            self.oci.layout_dir = self.state_dir / self.oci.layout_dir
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def _config_file() -> Path | None:
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigurationError(f"configuration file {path} does not exist", where=CONFIG_FILE_VARIABLE)
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; every bad value is named in one ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigurationError(
            "invalid settings:\n  " + "\n  ".join(problems), details={"errors": problems}
        ) from None
    except (ValueError, OSError) as exc:  # malformed JSON in a variable, unreadable TOML file
        raise ConfigurationError(f"invalid settings: {exc}") from None


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "FORGE_" + "__".join(str(part).upper() for part in loc)
