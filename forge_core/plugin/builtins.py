"""The core's built-in plugins: registered through the same hooks as installed ones (like pytest's).

Modules are named, not imported, so the host (below the built-ins' layer) imports them by name.
"""

BUILTINS: list[tuple[str, str]] = [
    ("core.artifact_types", "forge_core.builtin.artifact_types"),
    ("core.triggers", "forge_core.builtin.triggers"),
    ("core.renderers", "forge_core.builtin.renderers"),
    ("core.ci", "forge_core.builtin.ci"),
    ("core.release", "forge_core.builtin.release"),
    ("core.discovery", "forge_core.builtin.discovery"),
    ("core.secrets", "forge_core.builtin.secrets"),
]
"""(plugin id, module) of every built-in plugin, in load order."""
