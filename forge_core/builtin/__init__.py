"""The core's built-in plugins: registered through the same hooks as installed ones (like pytest's)."""

from forge_core.plugin.builtins import BUILTINS

__all__ = ["BUILTINS"]
