#!/usr/bin/env python3
"""How fast `forge` starts, beside the bare cost of importing the core, in the same run.

    uv run python benchmarks/cli_startup.py [--runs N]

Prints the median wall time of each command over N runs (fresh interpreters, warm file cache),
and each as a ratio of the `python -c "import forge_core"` baseline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    'python -c "import forge_core" (baseline)': [sys.executable, "-c", "import forge_core"],
    'python -c "pass" (interpreter alone)': [sys.executable, "-c", "pass"],
    "forge --help": [str(BIN / "forge"), "--help"],
    "forge version": [str(BIN / "forge"), "version"],
    "forge cmp plugin-yaml (the Argo CD plugin's start)": [str(BIN / "forge"), "cmp", "plugin-yaml"],
    "forge plugins --json (loads every plugin)": [str(BIN / "forge"), "plugins", "--json"],
}


def median_seconds(command: list[str], runs: int) -> float:
    subprocess.run(command, capture_output=True, check=True)  # warm caches and .pyc files
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    results = {label: median_seconds(command, runs) for label, command in COMMANDS.items()}
    baseline = next(iter(results.values()))
    print(f"median of {runs} runs")
    for label, seconds in results.items():
        print(f"{label:45s} {seconds * 1000:7.1f} ms   {seconds / baseline:5.1f}x baseline")


if __name__ == "__main__":
    main()
