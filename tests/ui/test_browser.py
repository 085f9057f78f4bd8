"""The console in a real browser (Debian's chromium through Playwright): live runs, logs,
escaping, the environments page's actions and their refusals, CSRF, narrow screens."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from .conftest import NARROW, Console

ROOT = Path(__file__).resolve().parents[2]
EVERYTHING = ("read", "deploy", "approve")
SCREENSHOTS = os.environ.get("FORGE_CONSOLE_SCREENSHOTS")  # a folder: the README's pictures are taken


def _status(console: Console, kind: str, entity_id: str, status: str, **extra: Any) -> None:
    console.call("PUT", f"/v1/{kind}/{entity_id}/status", json={"status": status, **extra})


def test_a_run_page_follows_the_run_live_to_its_end(console: Console, page: Any) -> None:
    run = console.run_with_plan(steps=("unit", "lint"))
    task = run["task"]
    page.goto(console.login_link("alice", ("read",), f"/ui/runs/{run['id']}"))
    expect(page.locator("[data-run-status]")).to_have_text("pending")
    page.evaluate("window.notReloaded = true")  # gone if the page were loaded again
    _status(console, "runs", run["id"], "running")
    _status(console, "phases", run["phase"]["id"], "running")
    _status(console, "tasks", task["id"], "running")
    _status(console, "steps", task["steps"][0]["id"], "running")
    expect(page.locator("[data-run-status]")).to_have_text("running")
    expect(page.locator(".step").first.locator(".status")).to_have_text("running")
    _status(console, "steps", task["steps"][0]["id"], "success", exit_code=0)
    _status(console, "steps", task["steps"][1]["id"], "success", exit_code=0)
    _status(console, "tasks", task["id"], "success")
    _status(console, "phases", run["phase"]["id"], "success")
    _status(console, "runs", run["id"], "success")
    expect(page.locator("[data-run-status]")).to_have_text("success")
    expect(page.locator(".step .status")).to_have_text(["success", "success"])
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator(".step").first).to_contain_text("exit 0")


def test_a_failing_steps_log_is_shown_and_a_running_one_followed(console: Console, page: Any) -> None:
    run = console.run_with_plan(steps=("unit", "lint"))
    task = run["task"]
    failing, running = task["steps"]
    key = console.write_log(run, failing, ["collecting tests", "token ******** used", "AssertionError: 2 != 3"])
    _status(console, "runs", run["id"], "running")
    _status(console, "steps", failing["id"], "failed", exit_code=3, logs_s3_key=key)
    _status(console, "tasks", task["id"], "failed", error="step unit failed (exit 3)")
    page.goto(console.login_link("alice", ("read",), f"/ui/runs/{run['id']}"))
    expect(page.locator(".task .error")).to_contain_text("step unit failed (exit 3)")
    page.get_by_role("link", name="unit").click()
    expect(page.locator("h1")).to_have_text("api/test / unit")
    expect(page.locator(".log .line")).to_have_text(
        ["collecting tests", "token ******** used", "AssertionError: 2 != 3"]
    )
    expect(page.get_by_text("exit code 3")).to_be_visible()

    # A step that still runs: its log is followed as it grows, without reloading the page.
    log = console.write_log(run, running, ["step one"])
    _status(console, "steps", running["id"], "running", logs_s3_key=log)
    page.goto(f"{console.url}/ui/runs/{run['id']}/steps/{running['id']}/log")
    expect(page.locator(".log .line")).to_have_text(["step one"])
    page.evaluate("window.notReloaded = true")
    console.write_log(run, running, ["step one", "step two"])
    expect(page.locator(".log .line")).to_have_text(["step one", "step two"], timeout=10_000)
    assert page.evaluate("window.notReloaded") is True


def test_a_long_log_comes_in_pages(console: Console, page: Any) -> None:
    run = console.run_with_plan()
    step = run["task"]["steps"][0]
    lines = [f"line {n:05d} " + "x" * 90 for n in range(2000)]  # ~200 KB: four pages
    key = console.write_log(run, step, lines)
    _status(console, "steps", step["id"], "success", exit_code=0, logs_s3_key=key)
    page.goto(console.login_link("alice", ("read",), f"/ui/runs/{run['id']}/steps/{step['id']}/log"))
    first = page.locator(".log .line").count()
    assert 0 < first < 2000
    while page.get_by_role("link", name="Next page").count():
        page.get_by_role("link", name="Next page").click()
        page.wait_for_timeout(100)
    expect(page.locator(".log .line")).to_have_count(2000)
    expect(page.locator(".log .line").last).to_have_text(lines[-1])


def test_a_script_in_a_branch_name_and_in_step_output_is_shown_as_text(console: Console, page: Any) -> None:
    branch = "feature/<script>window.pwned=1</script>"
    run = console.run_with_plan(branch=branch)
    step = run["task"]["steps"][0]
    output = "<script>window.pwned=2</script><img src=x onerror=window.pwned=3>"
    key = console.write_log(run, step, [output])
    _status(console, "steps", step["id"], "failed", exit_code=1, logs_s3_key=key)
    page.goto(console.login_link("alice", ("read",), f"/ui/runs?branch={branch}"))
    expect(page.locator("td.ref").first).to_have_text(branch)
    page.goto(f"{console.url}/ui/runs/{run['id']}")
    expect(page.locator("dd.ref").first).to_have_text(branch)
    page.goto(f"{console.url}/ui/runs/{run['id']}/steps/{step['id']}/log")
    expect(page.locator(".log .line")).to_have_text([output])
    assert page.locator("main script, main img").count() == 0
    assert page.evaluate("window.pwned") is None


def _release_in_staging(console: Console, repository: str, project: str = "web") -> dict[str, Any]:
    release = console.call("POST", "/v1/releases", subject="bob", json={
        "repository": repository, "project": project, "commit_sha": uuid.uuid4().hex + "0" * 8,
        "trigger": {"trigger_type": "tag", "tag": "v1.0.0", "branch": "main"},
    })
    for environment in ("dev", "staging"):
        console.call("POST", "/v1/deployments", subject="bob", json={
            "release_id": release["id"], "environment": environment, "status": "active",
        })
    return release


def test_an_approval_then_a_promotion_from_the_environments_page(console: Console, page: Any) -> None:
    repository = f"acme/shop-{uuid.uuid4().hex[:6]}"
    _release_in_staging(console, repository)
    environments = f"/ui/environments?repository={repository}"
    page.goto(console.login_link("carol", ("read", "approve"), environments))
    production = page.locator('td[data-project="web"][data-environment="production"]')
    expect(production).to_contain_text("nothing deployed")
    expect(production).to_contain_text("#1 awaits approval")
    expect(page.locator('td[data-environment="staging"] .current')).to_contain_text("#1")
    expect(page.locator('td[data-environment="staging"] .current')).to_contain_text("by bob")
    expect(production.get_by_role("button", name="Promote #1…")).to_have_count(0)  # carol may not deploy

    # Approving first shows the promotion's decision: the approval rule blocks it, and why.
    production.get_by_role("button", name="Approve #1…").click()
    expect(page.locator(".verdict")).to_have_text("Refused")
    blocked = page.locator("tr.rule.blocked")
    expect(blocked).to_have_count(1)
    expect(blocked).to_contain_text("0 of 1 approval")
    page.get_by_label("Justification").fill("release checklist done")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".notice")).to_have_text("approved web release 1 for production")
    expect(production).to_contain_text("approved #1 by carol")

    # Then alice promotes: the decision (every rule passing) before it acts, then the deployment.
    page.goto(console.login_link("alice", ("read", "deploy"), environments))
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "console-environments.png"), full_page=True)
    expect(production.get_by_role("button", name="Approve #1…")).to_have_count(0)  # alice may not approve
    production.get_by_role("button", name="Promote #1…").click()
    expect(page.locator(".verdict")).to_have_text("Allowed")
    expect(page.locator("tr.rule.blocked")).to_have_count(0)
    expect(page.locator("tr.rule.passed").filter(has_text="approvals")).to_contain_text("carol")
    page.get_by_role("button", name="Confirm promote").click()
    expect(page.locator(".notice")).to_contain_text("promotion to production: #1 pending deployment")
    expect(production.locator(".pending")).to_contain_text("#1 (pending)")
    expect(production.locator(".pending")).to_contain_text("by alice")
    deployments = console.call("GET", f"/v1/deployments?repository={repository}&environment=production")
    assert [(d["release_number"], d["status"], d["deployed_by"]) for d in deployments["deployments"]] == [
        (1, "pending", "alice")
    ]


def test_a_reader_sees_no_actions_and_is_refused_them(console: Console, page: Any) -> None:
    repository = f"acme/shop-{uuid.uuid4().hex[:6]}"
    _release_in_staging(console, repository)
    page.goto(console.login_link("dave", ("read",), f"/ui/environments?repository={repository}"))
    expect(page.locator('td[data-environment="production"]')).to_contain_text("#1 awaits approval")
    assert page.locator(".actions button").count() == 0
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    form = {"csrf": csrf, "repository": repository, "project": "web", "environment": "production",
            "release": "1", "confirm": "yes", "justification": "mine"}
    for action in ("promote", "approve", "rollback"):
        refused = page.request.post(f"{console.url}/ui/environments/{action}", form=form)
        assert refused.status == 403, (action, refused.status)
        assert "dave lacks the" in refused.text()
    listing = console.call("GET", f"/v1/deployments?repository={repository}&environment=production")
    assert listing["deployments"] == []


def test_an_action_without_its_csrf_token_is_refused(console: Console, page: Any) -> None:
    repository = f"acme/shop-{uuid.uuid4().hex[:6]}"
    _release_in_staging(console, repository)
    page.goto(console.login_link("alice", EVERYTHING, f"/ui/environments?repository={repository}"))
    production = page.locator('td[data-environment="production"]')
    # The page's own form, its token taken out: refused, and nothing is done.
    production.locator("form").first.evaluate("form => form.querySelector('input[name=csrf]').remove()")
    production.get_by_role("button", name="Promote #1…").click()
    expect(page.locator(".error")).to_contain_text("CSRF token is missing or wrong")
    base = {"repository": repository, "project": "web", "environment": "staging", "release": "1", "confirm": "yes"}
    for form in (base, {**base, "csrf": "0" * 64}):
        refused = page.request.post(f"{console.url}/ui/environments/promote", form=form)
        assert refused.status == 403
    listing = console.call("GET", f"/v1/deployments?repository={repository}&status=pending")
    assert listing["deployments"] == []


def test_the_pages_fit_a_phone_and_a_desktop(console: Console, page: Any) -> None:
    repository = f"acme/shop-{uuid.uuid4().hex[:6]}"
    _release_in_staging(console, repository)
    run = console.run_with_plan(repository=repository, steps=("unit", "integration-tests-with-a-long-name"))
    page.goto(console.login_link("alice", EVERYTHING, "/ui/runs"))
    pages = [
        "/ui/runs", f"/ui/runs/{run['id']}", f"/ui/runs/{run['id']}/steps/{run['task']['steps'][0]['id']}/log",
        f"/ui/environments?repository={repository}", f"/ui/releases/{repository}", f"/ui/releases/{repository}/web/1",
        "/ui/plugins",
    ]
    for size in ({"width": 1280, "height": 900}, NARROW):
        page.set_viewport_size(size)
        for path in pages:
            page.goto(f"{console.url}{path}")
            expect(page.locator("h1")).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= size["width"], f"{path} is {width} px wide at {size['width']} px"
    page.set_viewport_size(NARROW)
    page.goto(f"{console.url}/ui/plugins")
    expect(page.locator("table")).to_contain_text("forge_docker")


def test_the_runs_page_filters_by_repository_branch_and_status_and_stays_live(console: Console, page: Any) -> None:
    repository = f"acme/list-{uuid.uuid4().hex[:6]}"
    main = console.run_with_plan(repository=repository, branch="main")
    feature = console.run_with_plan(repository=repository, branch="feature/x")
    _status(console, "runs", feature["id"], "running")
    page.goto(console.login_link("alice", ("read",), f"/ui/runs?repository={repository}"))
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Branch").fill("feature/x")
    page.get_by_label("Branch").dispatch_event("change")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("feature/x")
    page.get_by_label("Branch").fill("")
    page.get_by_label("Status").select_option("pending")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".sha")).to_have_text(main["commit_sha"][:12])
    page.get_by_label("Status").select_option("")
    expect(rows).to_have_count(2)
    page.evaluate("window.notReloaded = true")
    console.run_with_plan(repository=repository, branch="<b>bold</b>")  # a third run appears by itself
    expect(rows).to_have_count(3, timeout=10_000)
    expect(rows.first.locator("td.ref")).to_have_text("<b>bold</b>")
    assert page.evaluate("window.notReloaded") is True


def test_a_release_page_shows_its_artifacts_tracking_images_and_whether_they_verify(
    console: Console, page: Any, tmp_path: Path
) -> None:
    import hashlib
    from datetime import UTC, datetime

    from forge_core.adapters.oci.layout import LayoutStore
    from forge_core.adapters.signing_keys import load_signer
    from forge_core.domain.models import PublishedLocation
    from forge_core.domain.tracking import TrackingMetadata
    from forge_core.services.sbom import files_sbom
    from forge_core.services.tracking import create_tracking_image

    repository, commit = f"acme/rel-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex + "0" * 8
    binary = tmp_path / "acmectl"
    binary.write_bytes(b"#!/bin/sh\necho 1.2.0\n")
    digest = "sha256:" + hashlib.sha256(binary.read_bytes()).hexdigest()
    now = datetime.now(UTC)
    store = LayoutStore(tmp_path / "oci")
    images = {}
    for name, signer in (("signed", load_signer(console.settings)), ("unsigned", None)):
        metadata = TrackingMetadata.model_validate({
            "name": name, "type": "binary", "project": "cli", "repository": repository, "commit": commit,
            "run_id": "run-1", "producer": "exec", "produced_at": now, "started_at": now, "finished_at": now,
            "digest": digest, "published": [PublishedLocation(
                publisher="releases", type="s3", uri=f"s3://acme/cli/{name}", digest=digest)],
        })
        sbom = files_sbom([binary], name=name, digest=digest, timestamp=now)
        images[name] = create_tracking_image(store, metadata, sbom, signer)
    artifacts = [
        {"name": name, "type": "binary", "tracking_oci_uri": image.reference, "tracking_oci_digest": image.digest,
         "primary_published_uri": f"s3://acme/cli/{name}"}
        for name, image in images.items()
    ] + [{"name": "lost", "type": "binary", "tracking_oci_uri": f"oci-layout:{tmp_path}/nowhere:sha-{commit}",
          "primary_published_uri": "s3://acme/cli/lost"}]
    console.call("POST", "/v1/releases", json={
        "repository": repository, "project": "cli", "commit_sha": commit, "artifacts": artifacts,
    })
    page.goto(console.login_link("alice", ("read",), f"/ui/releases/{repository}"))
    page.get_by_role("link", name="#1").click()
    expect(page.locator("h1")).to_have_text("cli release #1")
    signed, unsigned, lost = (page.locator(f'.artifact[data-artifact="{n}"]') for n in ("signed", "unsigned", "lost"))
    expect(signed.locator(".status")).to_have_text("verified")
    expect(signed).to_contain_text("s3://acme/cli/signed")
    expect(signed).to_contain_text(digest)
    expect(signed).to_contain_text("CycloneDX 1.6")
    expect(signed).to_contain_text("slsa.dev/provenance/v1")
    expect(unsigned.locator(".status")).to_have_text("not verified")
    expect(lost.locator(".error")).to_contain_text("cannot read the tracking image")


def test_a_rollback_shows_its_decision_then_deploys_the_release_before(console: Console, page: Any) -> None:
    repository = f"acme/back-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        release = console.call("POST", "/v1/releases", subject="bob", json={
            "repository": repository, "project": "web", "commit_sha": uuid.uuid4().hex + "0" * 8,
        })
        console.call("POST", "/v1/deployments", subject="bob",
                     json={"release_id": release["id"], "environment": "dev", "status": "active"})
    page.goto(console.login_link("alice", ("read", "deploy"), f"/ui/environments?repository={repository}"))
    dev = page.locator('td[data-environment="dev"]')
    expect(dev.locator(".current")).to_contain_text("#2")
    dev.get_by_role("button", name="Roll back…").click()
    expect(page.locator("h2")).to_contain_text("web release #1 → dev")
    expect(page.locator(".verdict")).to_have_text("Allowed")
    page.get_by_role("button", name="Confirm rollback").click()
    expect(page.locator(".notice")).to_contain_text("rollback to dev: #1 pending deployment")
    expect(dev.locator(".pending")).to_contain_text("#1 (pending)")
