"""``forge run --ui``: the console served beside the run, its page followed live in the browser."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from make_example import make_example  # noqa: E402

from .test_browser import SCREENSHOTS  # noqa: E402


def _commit(repo: Path, path: str, old: str, new: str) -> None:
    file = repo / path
    assert old in file.read_text()
    file.write_text(file.read_text().replace(old, new))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", f"change {path}"], check=True, env=env)


def test_forge_run_ui_shows_the_run_live_to_its_end(tmp_path: Path, nats_prefix: str, page: Any) -> None:
    example = make_example(tmp_path / "acme")
    _commit(  # a test step that takes a few seconds, so the page sees it running
        example, "services/api/.forge/project.cue",
        'target: "python3 -m unittest discover -s tests", timeout: "2m"',
        'target: "python3 -c \\"import time; print(\'api tests\'); time.sleep(4)\\"", timeout: "2m"',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STATE_DIR=str(tmp_path / "state"), FORGE_WORKER__CACHE_DIR=str(tmp_path / "cache"),
               FORGE_NATS__URL="nats://127.0.0.1:4222", FORGE_NATS__PREFIX=nats_prefix, COLUMNS="200")
    runner = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "run", "--ui", str(example)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=lambda: [lines.put(line) for line in runner.stdout or []], daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=120)
            seen.append(line)
            if line.startswith("console: "):
                url = line.removeprefix("console: ").strip()
        assert "/ui/session?token=" in url and "next=%2Fui%2Fruns%2F" in url
        page.goto(url)
        status = page.locator("[data-run-status]")
        expect(status).to_have_text("running", timeout=30_000)
        task = page.locator('.task[data-task="api/test"]')
        expect(task.locator(".status").first).to_have_text("running", timeout=120_000)
        page.evaluate("window.notReloaded = true")
        expect(status).to_have_text("success", timeout=180_000)
        expect(task.locator(".status").first).to_have_text("success")
        assert page.evaluate("window.notReloaded") is True
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / "console-run.png"), full_page=True)
        task.get_by_role("link").first.click()
        expect(page.locator(".log .line").first).to_contain_text("api tests")
        while "the console stays open" not in "".join(seen):
            seen.append(lines.get(timeout=60))
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=30) == 0, "".join(seen)
    finally:
        if runner.poll() is None:
            runner.kill()


def test_forge_ui_serves_the_console_and_prints_a_login_link(tmp_path: Path) -> None:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STATE_DIR=str(tmp_path / "state"))
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "forge"), "ui", "--no-browser"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("console: http://127.0.0.1:"), line
        url = line.removeprefix("console: ").strip()
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            runs = browser.get(url)
            assert runs.status_code == 200 and "<h1>Runs</h1>" in runs.text
            assert str(runs.url).endswith("/ui/runs")
            assert os.environ.get("USER", "") in runs.text or "Log out" in runs.text
        assert "Ctrl-C stops the console." in server.stdout.readline()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
