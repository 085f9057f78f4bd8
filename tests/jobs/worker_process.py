"""A worker process for the tests: ``python worker_process.py SETTINGS_JSON TYPE RECORDER_FILE``.

Built like ``forge worker`` (settings, plugins, storage, serve with signal handling), with the
test plugin admitted and a recorder that appends its calls to a file the test reads.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import jobs_support

from forge_core.adapters.storage import FsspecStore
from forge_core.plugin.host import PluginInfo, load_plugins
from forge_core.settings import PluginSettings, Settings
from forge_core.worker.runner import Worker, serve


def main() -> None:
    settings_json, job_type, recorder_file = sys.argv[1:4]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.model_validate_json(settings_json)
    host = load_plugins(PluginSettings(allow=["forge_exec", "forge_earthly"]))
    host.withdraw("core.artifact")  # the test handler stands in for the artifact job
    host.admit(jobs_support, PluginInfo("jobs-test", None, None))
    recorder = jobs_support.RecordingRecorder(Path(recorder_file))
    worker = Worker(settings, host, job_type, recorder, FsspecStore.from_settings(settings.storage))
    asyncio.run(serve(worker))


if __name__ == "__main__":
    main()
