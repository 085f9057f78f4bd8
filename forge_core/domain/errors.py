"""Errors are types that carry where and why; entry points turn them into exit codes and HTTP bodies."""

from __future__ import annotations


class ForgeError(Exception):
    """Base of every error the platform raises on purpose.

    ``code`` is a stable machine-readable identifier (it becomes the API error code), ``where``
    names the place at fault (a file:line, a field, a plugin id) and ``exit_code`` is what the CLI
    exits with.
    """

    code = "forge_error"
    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, details: dict[str, object] | None = None):
        self.message = message
        self.where = where
        self.details = dict(details or {})
        super().__init__(f"{where}: {message}" if where else message)


class ConfigurationError(ForgeError):
    """Settings or configuration that cannot be used as given."""

    code = "invalid_configuration"
    exit_code = 2


class PluginError(ForgeError):
    """Something is wrong with a plugin; ``where`` is the plugin id."""

    code = "plugin_error"
    exit_code = 3


class PluginLoadError(PluginError):
    """A plugin could not be imported, or does not validate against the hookspecs."""

    code = "plugin_load_failed"


class PluginConflictError(PluginError):
    """Two plugins registered the same name in one family."""

    code = "plugin_conflict"


class PluginRequirementError(PluginError):
    """A required plugin is missing, failed to load, or has a version outside the required range."""

    code = "plugin_requirement_unmet"


class UnknownImplementationError(ForgeError):
    """A configuration names an implementation (publisher type, step action, …) nobody registered."""

    code = "unknown_implementation"
    exit_code = 2


class NotImplementedInThisVersion(ForgeError):
    """A registered implementation whose behaviour arrives in a later version of its plugin.

    Raised instead of pretending to succeed, so a pipeline that depends on it fails loudly.
    """

    code = "not_implemented"
    exit_code = 4

    def __init__(self, *origin: str, detail: str = ""):
        """``NotImplementedInThisVersion("what is missing")`` from a plugin's implementation: the
        family, name and plugin are filled in from the registration that created it. The 0.1
        form ``NotImplementedInThisVersion(family, name, plugin, detail=...)`` still works."""
        if len(origin) not in (0, 1, 3):
            raise TypeError("NotImplementedInThisVersion(detail) or (family, name, plugin, detail=...)")
        self.family: str | None = origin[0] if len(origin) == 3 else None
        self.name: str | None = origin[1] if len(origin) == 3 else None
        self.plugin: str | None = origin[2] if len(origin) == 3 else None
        self.detail = origin[0] if len(origin) == 1 else detail
        super().__init__(self._message(), where=self.plugin)

    def attribute(self, family: str, name: str, plugin: str) -> None:
        """Fill in where the error comes from, unless the raiser said so itself."""
        if self.plugin is None:
            self.family, self.name, self.plugin, self.where = family, name, plugin, plugin
            self.message = self._message()
            self.args = (f"{plugin}: {self.message}",)

    def _message(self) -> str:
        what = f"{self.family} {self.name!r} of plugin {self.plugin}" if self.plugin else "this implementation"
        return f"{what} is not implemented in this version" + (f": {self.detail}" if self.detail else "")


class WorkWithdrawn(ForgeError):
    """A producer or publisher saw its context's ``stop`` set (the job was released or cancelled)
    and stopped without finishing: nothing it returns would be true, so it raises this instead."""

    code = "withdrawn"
    exit_code = 8

    def __init__(self, message: str = "withdrawn before it finished", *, where: str | None = None):
        super().__init__(message, where=where)


class SecretError(ForgeError):
    """A secret reference that cannot be resolved: the message names the provider, the secret
    name and the key (and, once resolution wraps it, the target) — never a value."""

    code = "secret_unavailable"
    exit_code = 2


class MessagingError(ForgeError):
    """The job bus cannot be used: NATS unreachable, a stream that cannot be provisioned, a lost
    connection (``where`` names the URL or the stream)."""

    code = "messaging_unavailable"
    exit_code = 7


class JobFailedError(ForgeError):
    """A job ran and its handler reported failure (the dispatcher's exit code for it)."""

    code = "job_failed"
    exit_code = 5


class JobTimeoutError(ForgeError):
    """No reply for a job within the dispatcher's timeout."""

    code = "job_timeout"
    exit_code = 6
