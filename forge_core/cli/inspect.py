"""``forge inspect REF``: show a tracking image and whether its signature verifies.

REF is ``host[:port]/repo/project/artifact:sha-<commit>`` (a registry), ``oci-layout:PATH:tag``
(a layout folder), or the short form ``repo/project/artifact:sha-<commit>`` resolved against the
tracking store of the settings (``tracking.registry``, else the embedded layout store). Exit codes:
0 verified (or signed but no public key to check it with: said on stderr), 1 not verified
(unsigned, an untrusted key, a bad signature) or unreadable, 2 a bad reference.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forge_core.cli.common import fail

if TYPE_CHECKING:
    from forge_core.ports.oci import OciStore
    from forge_core.services.tracking import TrackingRecord
    from forge_core.settings import Settings


def register(app: typer.Typer) -> None:
    app.command(name="inspect")(inspect_command)


def inspect_command(
    reference: Annotated[str, typer.Argument(metavar="REF", help="The tracking image (see `forge inspect --help`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    public_keys: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="A PEM public key to verify with (repeatable; default: the settings')."),
    ] = None,
    username: Annotated[str | None, typer.Option("--username", help="Registry user name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the registry password from standard input.")
    ] = False,
) -> None:
    """Show a tracking image: metadata, published locations, provenance, SBOM summary, signature.

    REF: host[:port]/repo/project/artifact:sha-<commit>, oci-layout:PATH:tag, or the short form
    repo/project/artifact:sha-<commit> in the configured tracking store. Exit 1 when the signature
    does not verify, 2 for a bad reference."""
    from forge_core.domain.errors import ForgeError

    try:
        record = _read(reference, public_keys or [], username, password_stdin)
    except ForgeError as error:
        fail(error)
    if as_json:
        import json

        typer.echo(json.dumps(_as_dict(record), indent=2))
    else:
        _print(record)
    if record.signature is None:
        typer.echo(f"warning: {record.signature_note}", err=True)
    elif not record.signature:
        raise typer.Exit(1)


def _read(reference: str, public_keys: list[Path], username: str | None, password_stdin: bool) -> TrackingRecord:
    from forge_core.adapters.signing_keys import load_verifier
    from forge_core.domain.oci import RegistryCredentials
    from forge_core.services.signing import Verifier
    from forge_core.services.tracking import read_tracking_image
    from forge_core.settings import load_settings

    settings = load_settings()
    credentials = None
    if username:
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else ""
        credentials = RegistryCredentials(username, password)
    store, repository, target = _locate(reference, settings, credentials)
    if public_keys:
        verifier: Verifier | None = Verifier.from_pems((_read_key(path), str(path)) for path in public_keys)
    else:
        verifier = load_verifier(settings)
    return read_tracking_image(store, repository, target, verifier)


def _read_key(path: Path) -> bytes:
    from forge_core.domain.errors import ConfigurationError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the public key: {exc.strerror}", where=str(path)) from None


def _is_short(reference: str) -> bool:
    """No registry host: the first component has no '.', no ':' and is not ``localhost`` (docker's rule)."""
    first = reference.split("/", 1)[0]
    return "/" in reference and not any(c in first for c in ".:[") and first != "localhost"


def _locate(reference: str, settings: Settings, credentials: Any) -> tuple[OciStore, str, str]:
    from forge_core.adapters.oci import open_store, tracking_store
    from forge_core.domain.oci import RegistryReference, parse_reference
    from forge_core.domain.tracking import TrackingReferenceError

    if _is_short(reference) and not reference.startswith(("oci-layout:", "oci:")):
        store, prefix = tracking_store(settings, credentials=credentials)
        parsed = parse_reference(f"short.invalid/{reference}")  # the grammar of a registry reference
        repository = f"{prefix}/{parsed.repository}" if prefix else parsed.repository
    else:
        parsed = parse_reference(reference)
        registry_credentials = credentials if isinstance(parsed, RegistryReference) else None
        store = open_store(parsed, settings.oci, credentials=registry_credentials)
        repository = parsed.repository
    if parsed.target is None:
        raise TrackingReferenceError(
            f"bad reference {reference!r}: name the tracking image's tag (sha-<commit>) or digest", where=reference
        )
    return store, repository, parsed.target


def _as_dict(record: TrackingRecord) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "reference": record.reference,
        "digest": record.digest,
        "metadata": record.metadata.model_dump(mode="json"),
        "provenance": record.provenance,
        "sbom": asdict(record.sbom),
        "signature": {"verified": record.signature, "note": record.signature_note, "keyid": record.keyid},
        "subject": record.subject.model_dump(mode="json", by_alias=True, exclude_none=True) if record.subject else None,
    }


def _print(record: TrackingRecord) -> None:
    meta = record.metadata
    predicate = record.provenance.get("predicate", {})
    run = predicate.get("runDetails", {})
    dependencies = predicate.get("buildDefinition", {}).get("resolvedDependencies", [])
    lines = [
        f"tracking image  {record.reference}",
        f"digest          {record.digest}",
        f"artifact        {meta.name} ({meta.type}) of project {meta.project} in {meta.repository}",
        f"commit          {meta.commit}",
        f"run             {meta.run_id}",
        f"producer        {meta.producer}",
        f"produced at     {meta.produced_at.isoformat()} (started {meta.started_at.isoformat()}, "
        f"finished {meta.finished_at.isoformat()})",
        f"artifact digest {meta.digest}",
    ]
    for title, locations in (("published", meta.published), ("planned", meta.planned)):
        for location in locations:
            digest = f" {location.digest}" if location.digest else ""
            lines.append(f"{title:<16}{location.publisher} ({location.type}): {location.uri}{digest}")
    if not meta.published and not meta.planned:
        lines.append("published       nowhere")
    lines += [
        f"provenance      builder {run.get('builder', {}).get('id', '?')}, "
        f"invocation {run.get('metadata', {}).get('invocationId', '?')}",
    ]
    lines += [f"  source        {d.get('uri')}" for d in dependencies if isinstance(d, dict)]
    sbom = record.sbom
    lines.append(
        f"sbom            CycloneDX {sbom.spec_version}: {sbom.components} components "
        f"({sbom.files} files) describing {sbom.root}"
    )
    if sbom.packages:
        lines.append(f"  packages      {', '.join(sbom.packages)}")
    state = {True: "verified", False: "NOT VERIFIED", None: "not checked"}[record.signature]
    lines.append(f"signature       {state}: {record.signature_note}")
    if record.subject:
        lines.append(f"attached to     {record.subject.digest}")
    typer.echo("\n".join(lines))
