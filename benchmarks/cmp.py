#!/usr/bin/env python3
"""`forge cmp generate` cold and warm beside a raw pull of the same layer plus tar extraction, in one run.

    .venv/bin/python benchmarks/cmp.py [--resources 200] [--rounds 10]

Starts a loopback `docker-registry` (as the tests do) and pushes, with the release writer, a Release
image of N rendered resources (Deployments and Services of a realistic size). Each round, in
rotating order, times three processes (each a fresh process, as Argo CD starts one per generate):

- cold: `forge cmp generate` in a deployment folder with an empty cache folder: the `forge`
  launcher's lean cold path (forge_core.adapters.cmp_cold: the standard library and libyaml) pulls
  the image, verifies every digest, reads the layer through the safe archive reader, prints the
  canonical layer's files in kind/name order and fills the caches;
- warm: the same with the cache a first run filled: the `forge` launcher finds the folder's entry
  and prints the verified rendering, with no network and without importing typer, pydantic or httpx;
- baseline: `skopeo copy` of the image (manifest and layers) to an OCI layout, then `tar -xzf` of the
  resources layer into a folder.

Prints the medians and the ratios; targets: cold <= 1.5x the baseline, warm under 100 ms. Reference
lines: the full path on an empty cache (the command behind the launcher, here sent there by a
config file, which only the settings models read), the interpreter alone, importing what the cold
path imports, and importing typer, pydantic-settings and the domain models (the full path's floor).
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import forge_core
from forge_core.adapters.oci.registry import RegistryStore
from forge_core.adapters.oci.release_image import push_release_image
from forge_core.domain.gitops import ReleasePointer
from forge_core.domain.release_image import RESOURCES, ReleaseFacts, ReleaseTriggerInfo, resource_files
from forge_core.testing.registry import RegistryServer

FORGE = str(Path(sys.executable).parent / "forge")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32


def resources(count: int) -> list[dict[str, Any]]:
    """Half Deployments (probes, resources, env), half Services: about 1.3 KB of YAML each."""
    found: list[dict[str, Any]] = []
    for index in range(count):
        name = f"service-{index:04d}"
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "monorepo"}
        if index % 2 == 0:
            container = {
                "name": name,
                "image": f"registry.example/monorepo/{name}:1.{index}.0@{DIGEST}",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": f"SETTING_{n}", "value": f"value-{index}-{n}"} for n in range(6)],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}, "periodSeconds": 10},
            }
            found.append({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": name, "labels": labels},
                          "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                                   "template": {"metadata": {"labels": labels},
                                                "spec": {"containers": [container]}}}})
        else:
            found.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
                          "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--importtime", action="store_true",
                        help="also list where a cold run's imports go (python -X importtime, by top package)")
    args = parser.parse_args()
    # Byte-code as an installed package has it (pip compiles it; here PYTHONDONTWRITEBYTECODE may
    # keep the first run from writing it, and every `forge` process would compile forge_core again).
    compileall.compile_dir(Path(forge_core.__file__).parent, quiet=1)

    with tempfile.TemporaryDirectory(prefix="forge-bench-cmp-") as tmp:
        folder = Path(tmp)
        (folder / "registry").mkdir()
        registry = RegistryServer(folder / "registry").start()
        try:
            times, layer_size, imports = _run(folder, registry.address, args.resources, args.rounds,
                                              args.importtime)
        finally:
            registry.stop()
    cold, warm, raw = (statistics.median(times[name]) for name in ("cold", "warm", "baseline"))
    cpu = {name: statistics.median(times[f"{name} cpu"]) * 1000 for name in ("cold", "warm", "baseline", "python")}
    print(f"forge cmp generate, a Release image of {args.resources} resources "
          f"(resources layer {layer_size / 1024:.0f} KiB), median of {args.rounds}:")
    print(f"  baseline: skopeo copy + tar -xzf   {raw * 1000:7.1f} ms")
    print(f"  cold (empty cache)                 {cold * 1000:7.1f} ms   ratio cold/baseline {cold / raw:5.2f}"
          "   (target <= 1.5)")
    print(f"  warm (folder index)                {warm * 1000:7.1f} ms   ratio warm/baseline {warm / raw:5.2f}"
          "   (target < 100 ms)")
    full = statistics.median(times["full"])
    print(f"  full path (empty cache, no lean path) {full * 1000:7.1f} ms   ratio full/baseline {full / raw:5.2f}")
    print(f"  python -c pass (interpreter alone) {statistics.median(times['python']) * 1000:7.1f} ms")
    print(f"  the cold path's imports (forge_core.adapters.cmp_cold) "
          f"{statistics.median(times['cold imports']) * 1000:7.1f} ms")
    print(f"  the full path's import floor (typer, pydantic-settings, the domain models) "
          f"{statistics.median(times['imports']) * 1000:7.1f} ms")
    print(f"  CPU time (user+sys, median): baseline {cpu['baseline']:.1f} ms, cold {cpu['cold']:.1f} ms "
          f"(ratio {cpu['cold'] / cpu['baseline']:.2f}), warm {cpu['warm']:.1f} ms, "
          f"python -c pass {cpu['python']:.1f} ms")
    if imports:
        print(f"  a cold run's imports (python -X importtime, self time by package; "
              f"{sum(micros for _, micros in imports) / 1000:.0f} ms in the top 15):")
        for package, micros in imports:
            print(f"    {package:40} {micros / 1000:7.1f} ms")


def _children_cpu() -> float:
    """User and system CPU seconds of the finished child processes: on a shared machine, what a
    step costs without the time it waited for a core."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _import_listing(stderr: str) -> list[tuple[str, int]]:
    """``python -X importtime`` output as the microseconds each package's own modules took (self
    time, so nothing counts twice): by top package, forge_core by its sub-package; largest first."""
    totals: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        parts = name.strip().split(".")
        package = ".".join(parts[:2]) if parts[0] == "forge_core" else parts[0]
        totals[package] = totals.get(package, 0) + int(own)
    return sorted(totals.items(), key=lambda item: -item[1])[:15]


def _run(folder: Path, address: str, count: int, rounds: int,
         importtime: bool) -> tuple[dict[str, list[float]], int, list[tuple[str, int]]]:
    facts = ReleaseFacts(repository="acme/monorepo", project="api", commit=COMMIT, release_number=1,
                         trigger=ReleaseTriggerInfo(type="branch_push", branch="main"),
                         created=datetime(2026, 12, 1, tzinfo=UTC))
    with RegistryStore(address) as store:
        pushed = push_release_image(store, facts, resource_files(resources(count)))
        manifest = store.fetch_manifest("monorepo/api", pushed.digest).document
    layer = next(d for d in getattr(manifest, "layers", []) if d.media_type == RESOURCES)
    pointer = ReleasePointer(environment="dev", repository="acme/monorepo", project="api", release=COMMIT)
    app = folder / "gitops" / pointer.path.parent
    app.mkdir(parents=True)
    (app / "release.yaml").write_text(pointer.render())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "ARGOCD_", "XDG_"))}
    env |= {"FORGE_STATE_DIR": str(folder / "state"), "FORGE_RELEASE__REGISTRY": address}
    warm_cache = folder / "warm-cache"

    config = folder / "forge.toml"
    config.write_text("")  # the lean path leaves a run with a config file to the full path

    def generate(cache: Path, extra: dict[str, str] | None = None) -> bytes:
        done = subprocess.run([FORGE, "cmp", "generate"], cwd=app, capture_output=True, check=True,
                              env=env | {"FORGE_CMP__CACHE_DIR": str(cache)} | (extra or {}))
        assert done.stdout.count(b"\n---") + 1 >= count, "output lacks resources"
        return done.stdout

    def cold(round_number: int) -> None:
        generate(folder / f"cold-cache-{round_number}")

    def full(round_number: int) -> None:
        generate(folder / f"full-cache-{round_number}", {"FORGE_CONFIG_FILE": str(config)})

    def baseline(round_number: int) -> None:
        layout, extracted = folder / f"raw-{round_number}", folder / f"extracted-{round_number}"
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                        f"docker://{address}/monorepo/api:{COMMIT}", f"oci:{layout}:{COMMIT}"],
                       capture_output=True, check=True)
        extracted.mkdir()
        blob = layout / "blobs" / "sha256" / layer.digest.split(":", 1)[1]
        subprocess.run(["tar", "-xzf", str(blob), "-C", str(extracted)], check=True)
        assert len(list(extracted.iterdir())) == count

    printed = generate(warm_cache)  # fills the warm cache, and the file cache for every process
    assert generate(folder / "full-check", {"FORGE_CONFIG_FILE": str(config)}) == printed, "the paths disagree"
    steps: dict[str, Callable[[int], object]] = {
        "cold": cold,
        "warm": lambda _round: generate(warm_cache),
        "baseline": baseline,
        "full": full,
        "python": lambda _round: subprocess.run([sys.executable, "-c", "pass"], check=True),
        "cold imports": lambda _round: subprocess.run(
            [sys.executable, "-c", "import forge_core.adapters.cmp_cold"], check=True),
        "imports": lambda _round: subprocess.run(
            [sys.executable, "-c", "import typer, pydantic_settings, forge_core.domain.models"], check=True),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    times |= {f"{name} cpu": [] for name in steps}
    names = list(steps)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:  # rotate who goes first
            started, cpu = time.perf_counter(), _children_cpu()
            steps[name](round_number)
            times[name].append(time.perf_counter() - started)
            times[f"{name} cpu"].append(_children_cpu() - cpu)
        for leftover in folder.glob(f"*-{round_number}"):
            shutil.rmtree(leftover)
    imports: list[tuple[str, int]] = []
    if importtime:
        done = subprocess.run([sys.executable, "-X", "importtime", FORGE, "cmp", "generate"], cwd=app,
                              capture_output=True, text=True, check=True,
                              env=env | {"FORGE_CMP__CACHE_DIR": str(folder / "importtime-cache")})
        imports = _import_listing(done.stderr)
    return times, layer.size, imports


if __name__ == "__main__":
    main()
