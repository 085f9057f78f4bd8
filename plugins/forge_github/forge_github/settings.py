"""What a ``github`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_ASSET_NAME = "{artifact}-{os}-{arch}"


class GithubTargetSettings(SettingsModel):
    """The release of the artifact's git tag in ``repository`` gets one asset per file.

    ``name`` and ``assetName`` are templates over ``{tag}``, ``{project}``, ``{artifact}``,
    ``{version}`` (the artifact's ``metadata["version"]``) and, for ``assetName``, ``{os}`` and
    ``{arch}`` (the file's platform); the file's extension (``.tar.gz``, ``.zip``, ``.exe``) is
    appended to the asset name. A file without a platform keeps its own name unless ``assetName``
    is set. The upload URL is the one the release's response gives.
    """

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name of the repository")
    api_url: str = Field(
        DEFAULT_API_URL, pattern=r"^https?://\S+$", description="The REST API (GitHub Enterprise: https://HOST/api/v3)"
    )
    name: str = Field("{tag}", min_length=1, description="The release's name when forge creates it")
    prerelease: bool = Field(False, description="Create the release as a prerelease")
    replace: bool = Field(False, description="Replace an asset of the same name holding different content")
    asset_name: str | None = Field(
        None,
        min_length=1,
        description=f"The asset name template (default {DEFAULT_ASSET_NAME} when the file has a platform)",
    )
    attempts: int = Field(5, ge=1, le=20, description="Attempts per request on 5xx, 429 and connection errors")
    max_wait: float = Field(60.0, ge=0, le=3600, description="Longest wait (seconds) a rate limit may impose")
    timeout: float = Field(60.0, gt=0, le=3600, description="Seconds without progress before a request fails")
