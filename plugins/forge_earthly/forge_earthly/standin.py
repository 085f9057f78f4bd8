"""A stand-in for the ``earthly`` executable, for tests on machines where Earthly cannot run.

Standard library only (it starts as a fresh interpreter for every run). It reads Earthly's
command line the way Earthly does (global options, then the target form ``<target-ref>
--NAME=value…`` or the artifact form ``--artifact (<ref>/<path> --NAME=value…) <dest>``), refuses
unknown flags with Earthly's message and exit code 1, and needs an ``Earthfile`` in the target's
folder. What each target does comes from ``earthly-standin.json`` beside that Earthfile::

    {"targets": {"build": {
        "print": ["a log line"],        # printed as '+build | a log line'
        "exit": 0,                      # the exit code (after printing)
        "fail_first": 2, "fail_text": "connection reset",   # attempts 1-2 print it and exit 1
        "silent": true,                 # print nothing at all, exit with "exit"
        "sleep": 30,                    # seconds to sleep before finishing (timeouts)
        "child": true,                  # start a 'sleep' child first, its pid in standin-child.pid
        "print_secrets": true,          # print 'secret ID=value' for each --secret (masking tests)
        "artifacts": {"bin/tool": "content for {platform}"},   # written into <dest> (artifact form)
        "image": {"files": {"app/hello": "hi"}, "format": "tar", "path": "image.tar",
                  "platform": "linux/amd64"},  # format: tar | dir | docker-archive; platform: the
                                               # one it claims (default: --platform)
        "platforms": {"linux/arm64": {"exit": 1}}             # overrides for one --platform
    }}}

Every run is recorded (argv, target, platform, build args, the secret values it received) as one
JSON line in ``earthly-standin.calls.jsonl`` beside the Earthfile; a target's attempt number is
the count of earlier runs of the same target and platform there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

SCRIPT = "earthly-standin.json"
CALLS = "earthly-standin.calls.jsonl"
VALUED = {"--platform", "--config", "--secret", "-s", "--secret-file", "--build-arg", "--remote-cache",
          "--installation-name", "--buildkit-host"}
BOOLEAN = {"--allow-privileged", "-P", "--ci", "--push", "--no-output", "--output", "--no-cache", "--strict",
           "--verbose", "-V", "--use-inline-cache", "--save-inline-cache", "--interactive", "-i"}


class Refused(Exception):
    """Earthly would refuse the command: its message, exit code 1."""


def parse(argv: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {"secrets": [], "flags": [], "args": {}}
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] not in ("--artifact", "-a"):
        flag = rest.pop(0)
        name, has_value, inline = flag.partition("=")
        if name in BOOLEAN:
            options["flags"].append(name)
        elif name in VALUED:
            if not has_value:
                if not rest:
                    raise Refused(f"flag needs an argument: {name}")
                inline = rest.pop(0)
            key = {"-s": "--secret"}.get(name, name)
            if key == "--secret":
                options["secrets"].append(inline)
            else:
                options[key] = inline
        else:
            raise Refused(f"flag provided but not defined: {name}")
    if not rest:
        raise Refused("no target reference provided")
    if rest[0] in ("--artifact", "-a"):
        rest.pop(0)
        if not rest:
            raise Refused("flag needs an argument: --artifact")
        reference = rest.pop(0)
        inner: list[str] = []
        if reference.startswith("("):
            reference = reference[1:]
            closed = reference.endswith(")")
            reference = reference.removesuffix(")")
            while not closed:
                if not rest:
                    raise Refused("unterminated '(' in the artifact reference")
                token = rest.pop(0)
                closed = token.endswith(")")
                inner.append(token.removesuffix(")") if closed else token)
        where, plus, after = reference.rpartition("+")
        name, slash, artifact = after.partition("/")
        if not plus or not slash or not artifact:
            raise Refused(f"invalid artifact reference {reference!r}: expected <target-ref>/<artifact-path>")
        options["artifact"], options["target"] = artifact, f"{where}+{name}"
        options["dest"] = rest.pop(0) if rest and not rest[0].startswith("--") else None
        build_args = inner + rest
    else:
        options["target"] = rest.pop(0)
        build_args = rest
    for token in build_args:
        if not token.startswith("--") or "=" not in token:
            raise Refused(f"invalid build arg {token!r}: expected --NAME=value")
        key, _, value = token[2:].partition("=")
        options["args"][key] = value
    if "artifact" in options and "--no-output" in options["flags"]:
        raise Refused("cannot use --no-output with --artifact")
    return options


def run(argv: list[str]) -> int:
    try:
        options = parse(argv)
    except Refused as refused:
        print(f"Error: {refused}", file=sys.stderr)
        return 1
    target_ref: str = options["target"]
    path, _, name = target_ref.rpartition("+")
    if not target_ref.startswith(("+", "./", "../", "/")):
        print(f"Error: remote target {target_ref}: the stand-in has no network", file=sys.stderr)
        return 1
    folder = (Path.cwd() / path).resolve()
    if not (folder / "Earthfile").is_file():
        print(f"Error: resolve build context for target {target_ref}: Earthfile not found in {folder}")
        return 1
    script = json.loads((folder / SCRIPT).read_text()) if (folder / SCRIPT).is_file() else {"targets": {}}
    spec = script["targets"].get(name)
    if spec is None:
        print(f"Error: target {target_ref} not found in {folder / 'Earthfile'}")
        return 1
    platform = options.get("--platform")
    spec = {**spec, **spec.get("platforms", {}).get(platform or "", {})}
    secrets = {}
    for secret in options["secrets"]:
        secret_id, has_value, value = secret.partition("=")
        if not has_value:
            if secret_id not in os.environ:
                print(f"Error: secret {secret_id} not found in the environment")
                return 1
            value = os.environ[secret_id]
        secrets[secret_id] = value
    calls = folder / CALLS
    earlier = [json.loads(line) for line in calls.read_text().splitlines()] if calls.is_file() else []
    attempt = 1 + sum(1 for c in earlier if c["target"] == target_ref and c["platform"] == platform)
    record = {"argv": argv, "target": target_ref, "platform": platform, "args": options["args"],
              "secrets": secrets, "flags": options["flags"], "config": options.get("--config"),
              "artifact": options.get("artifact"), "dest": options.get("dest"), "attempt": attempt}
    with calls.open("a") as file:
        file.write(json.dumps(record) + "\n")
    if spec.get("child"):  # a helper process, as BuildKit's are: a kill must reach it too
        import subprocess

        child = subprocess.Popen(["sleep", "60"])
        (folder / "standin-child.pid").write_text(str(child.pid))
    return build(spec, target_ref, platform, options, secrets, attempt)


def build(spec: dict[str, Any], target: str, platform: str | None, options: dict[str, Any],
          secrets: dict[str, str], attempt: int) -> int:
    if spec.get("silent"):
        time.sleep(float(spec.get("sleep", 0)))
        return int(spec.get("exit", 0))
    def say(text: str) -> None:
        print(f"{target} | {text}", flush=True)

    print(f" Init - platform {platform or 'native'}", flush=True)
    say(f"--> BUILD {target} {' '.join(f'--{k}={v}' for k, v in options['args'].items())}".rstrip())
    if spec.get("print_secrets"):
        for key, value in secrets.items():
            say(f"secret {key}={value}")
    for line in spec.get("print", []):
        say(line.format(platform=platform, attempt=attempt))
    if float(spec.get("sleep", 0)):
        time.sleep(float(spec["sleep"]))
    if attempt <= int(spec.get("fail_first", 0)):
        say(spec.get("fail_text", "transient failure"))
        print(f"Error: build target: {target}: exit code 1")
        return 1
    code = int(spec.get("exit", 0))
    if code:
        print(f"Error: build target: {target}: exit code {code}")
        return code
    if options.get("artifact") is not None and options.get("dest"):
        dest = Path(options["dest"])
        for relative, content in spec.get("artifacts", {}).items():
            out = dest / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(content.format(platform=platform))
            print(f"Artifact {target}/{relative} output as {out}")
        if "image" in spec:
            image = spec["image"]
            out = dest / image.get("path", "image.tar")
            claimed = image.get("platform") or platform or "linux/amd64"
            write_image(out, image.get("files", {}), claimed, image.get("format", "tar"))
            print(f"Artifact {target}/{out.name} output as {out}")
    print("========================== Earthly Build  SUCCESS ==========================")
    return 0


# --- a reproducible OCI image layout ------------------------------------------------------------


def _tar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(entries):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(entries[name]), 0, 0o644
            archive.addfile(info, io.BytesIO(entries[name]))
    return buffer.getvalue()


def write_image(out: Path, files: dict[str, str], platform: str, form: str) -> None:
    """An OCI image layout holding one image of ``files`` (one layer) for ``platform``."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{digest[7:]}"] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_tar = _tar({name: text.encode() for name, text in files.items()})
    layer = blob(gzip.compress(layer_tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
    os_name, arch, *_ = platform.split("/")
    config = {"architecture": arch, "os": os_name, "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]}}
    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    manifest = {"schemaVersion": 2, "mediaType": manifest_type,
                "config": blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json"),
                "layers": [layer]}
    root = blob(json.dumps(manifest).encode(), manifest_type)
    entries = {**blobs, "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
               "index.json": json.dumps({"schemaVersion": 2, "manifests": [root]}).encode()}
    if form == "docker-archive":  # what `docker save` writes: manifest.json, config, layer tars
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        layer_name = hashlib.sha256(layer_tar).hexdigest() + "/layer.tar"
        listing = [{"Config": config_name, "RepoTags": ["standin:latest"], "Layers": [layer_name]}]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(_tar({"manifest.json": json.dumps(listing).encode(), config_name: config_bytes,
                              layer_name: layer_tar}))
        return
    if form == "dir":
        for name, data in entries.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(_tar(entries))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
