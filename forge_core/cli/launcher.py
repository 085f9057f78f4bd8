"""The ``forge`` console script: ``forge cmp generate`` is answered here when it can be, before
typer, pydantic or httpx are imported; everything else goes to :func:`forge_core.cli.main.main`.

Argo CD runs the plugin once per application per refresh (argo-cd#11189), and each ``forge``
process used to spend most of its time importing. A hit in the plugin's folder index
(:mod:`forge_core.adapters.cmp_cache`, keyed by every input of the run and verified by sha256)
prints what the same inputs printed before; on a miss the lean cold path
(:mod:`forge_core.adapters.cmp_cold`: the standard library and libyaml) fetches, checks and prints
a canonical Release image and fills the caches. An option this launcher does not know, an error,
or any doubt runs the command as usual, which renders, reports errors and fills the index.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_VERIFY = {"--verify-provenance": True, "--no-verify-provenance": False}


def _generate_options(args: list[str]) -> tuple[Path, bool | None] | None:
    """The folder and provenance option of ``forge cmp generate`` ``args``; None for anything
    else (``--help``, an unknown option), which the full command line handles."""
    folder, verify, rest = Path("."), None, list(args)
    while rest:
        arg = rest.pop(0)
        if arg in _VERIFY:
            verify = _VERIFY[arg]
        elif arg == "--folder" and rest:
            folder = Path(rest.pop(0))
        elif arg.startswith("--folder="):
            folder = Path(arg.removeprefix("--folder="))
        else:
            return None
    return folder, verify


def generate(args: list[str]) -> str | None:
    """The output of ``forge cmp generate`` ``args`` from the cache (warm) or the lean cold path
    (:mod:`forge_core.adapters.cmp_cold`), or None when the full command must run."""
    from forge_core.adapters.cmp_cache import cache_dir_from_environment, folder_key, warm_output

    options = _generate_options(args)
    if options is None or options[1] is True:  # provenance is checked on every run, by the command
        return None
    key = folder_key(*options, os.environ)  # of the inputs as read before rendering, as the command does
    cache = cache_dir_from_environment(os.environ)
    if key is not None and cache is not None and (text := warm_output(cache, key)):
        return text
    from forge_core.adapters.cmp_cold import cold_generate

    return cold_generate(*options, key, os.environ)


def main() -> Any:
    args = sys.argv[1:]
    # httpx imports its own command line (httpx._main: rich, pygments, click) whenever rich is
    # installed; a forge process never runs it, and it was the largest import of a cold
    # `cmp generate` against a registry. A None entry makes httpx take its no-CLI branch.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if args[:2] == ["cmp", "generate"]:
        text = generate(args[2:])
        if text:  # never an empty output: Argo CD would prune the application
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
        # A cold run builds pydantic models: without this, the first one scans every installed
        # distribution's entry points for pydantic plugins (observability hooks the sidecar has none of).
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from forge_core.cli.main import main as run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
