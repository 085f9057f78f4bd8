"""``forge cmp``: the Argo CD Config Management Plugin (v2, a sidecar of argocd-repo-server).

Argo CD runs ``forge cmp generate`` in the application's folder of the GitOps repository; stdout
must hold only Kubernetes objects and a non-zero exit fails the sync, so every error goes to
stderr with a non-zero exit and nothing on stdout. Argo CD calls it for every application on every
refresh (argo-cd#11189: plugins are the slow path), so start-up imports typer only and the work
is imported when a command runs. Most runs never get here: the ``forge`` launcher
(:mod:`forge_core.cli.launcher`) answers a warm one from the folder index this command writes, and
a cold one through the lean path of :mod:`forge_core.adapters.cmp_cold` when that is sure of the
answer; this command renders the rest, and reports every error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from forge_core.cli.common import fail

PLUGIN_NAME = "catalyst-forge"

PLUGIN_YAML = f"""\
# The Argo CD Config Management Plugin of Catalyst Forge (CMP v2): mount this file in the plugin's
# sidecar of argocd-repo-server at /home/argocd/cmp-server/config/plugin.yaml. The sidecar needs
# FORGE_RELEASE__REGISTRY (where Release images are) and, when the registry asks for them,
# FORGE_CMP__USERNAME and FORGE_CMP__PASSWORD (from a Secret). An Application selects the plugin
# with `source.plugin.name: {PLUGIN_NAME}`, or leaves `plugin: {{}}` and is discovered by its
# release.yaml. Written by `forge cmp plugin-yaml`.
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: {PLUGIN_NAME}
spec:
  discover:
    # A glob, evaluated by Argo CD without starting a process; generate checks the pointer.
    fileName: release.yaml
  generate:
    command: [forge, cmp, generate]
"""


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="cmp",
        help="The Argo CD Config Management Plugin: render a deployment folder's ReleasePointer.",
        no_args_is_help=True,
    )
    group.command("discover")(discover)
    group.command("generate")(generate)
    group.command("plugin-yaml")(plugin_yaml)
    app.add_typer(group, name="cmp")


FolderOption = Annotated[Path, typer.Option("--folder", help="The deployment folder (default: the working folder).")]


def discover(folder: FolderOption = Path(".")) -> None:
    """Exit 0 (printing the pointer's file) when the folder holds a release.yaml that is a
    ReleasePointer; exit 1 with the reason on stderr otherwise."""
    from forge_core.adapters.cmp import discover as discover_pointer
    from forge_core.domain.errors import ForgeError

    try:
        discover_pointer(folder, os.environ.get("ARGOCD_APP_SOURCE_PATH"))
    except ForgeError as error:
        typer.echo(f"not a Catalyst Forge deployment: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(str(folder / "release.yaml"))


def generate(
    folder: FolderOption = Path("."),
    verify_provenance: Annotated[
        bool | None,
        typer.Option(
            "--verify-provenance/--no-verify-provenance",
            help="Check each artifact's tracking image (default: the setting cmp.verify_provenance).",
        ),
    ] = None,
) -> None:
    """Print the Kubernetes objects of the release the folder's ReleasePointer names (sorted by kind
    and name), then the folder's env.yaml. Errors go to stderr with a non-zero exit."""
    import sys

    from forge_core.adapters.cmp_cache import folder_key
    from forge_core.domain.errors import ForgeError

    key = folder_key(folder, verify_provenance, os.environ)  # of the inputs as read before rendering
    try:
        text = _generate(folder, verify_provenance, key)
    except ForgeError as error:
        application = os.environ.get("ARGOCD_APP_NAME")
        if application:
            typer.echo(f"Argo CD application {application}:", err=True)
        fail(error)
    sys.stdout.write(text)
    sys.stdout.flush()


def _generate(folder: Path, verify_provenance: bool | None, key: str | None) -> str:
    from forge_core.adapters.cmp import RenderCache
    from forge_core.adapters.cmp import generate as render_folder
    from forge_core.adapters.cmp_cache import FolderEntry, FolderIndex
    from forge_core.adapters.oci import open_store
    from forge_core.adapters.oci.release_image import release_store
    from forge_core.domain.oci import Reference, RegistryCredentials
    from forge_core.ports.oci import OciStore
    from forge_core.settings import load_settings

    settings = load_settings()
    cmp = settings.cmp
    credentials = None
    if cmp.username is not None and cmp.password is not None:
        credentials = RegistryCredentials(cmp.username, cmp.password.get_secret_value())
    store = release_store(settings.release, settings.oci, credentials=credentials)

    def tracking_store(reference: Reference) -> OciStore:
        # The release registry's credentials go only to the release registry.
        same = reference.registry == store.location
        return store if same else open_store(reference, settings.oci)

    assert cmp.cache_dir is not None  # Settings places it under the state dir when unset
    verify = cmp.verify_provenance if verify_provenance is None else verify_provenance
    generated = render_folder(
        folder,
        store,
        RenderCache(cmp.cache_dir),
        limits=cmp.limits,
        source_path=os.environ.get("ARGOCD_APP_SOURCE_PATH"),
        verify_provenance=verify,
        tracking_store=tracking_store,
    )
    if key is not None and not verify:  # provenance is checked on every run, so never answered warm
        FolderIndex(cmp.cache_dir).put(key, FolderEntry(generated.digest, generated.env))
    return generated.text


def plugin_yaml() -> None:
    """Print the plugin.yaml (ConfigManagementPlugin) for the Argo CD sidecar."""
    typer.echo(PLUGIN_YAML, nl=False)
