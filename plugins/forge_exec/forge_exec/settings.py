"""An ``exec`` step takes no settings: its ``target`` is the whole command."""

from forge_core.sdk import SettingsModel


class ExecStepSettings(SettingsModel):
    """Closed and empty, so a key in an exec step's ``settings`` is reported instead of ignored."""
