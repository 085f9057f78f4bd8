"""docs/operations.md's settings table is the Settings model's (it cannot drift), and what it says
about reading settings holds for the chart's variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chart_support import ROOT

from forge_core.settings import Settings
from forge_core.settings.reference import SERVICE_SECTIONS, section_model, setting_variables, variable

DOC = ROOT / "docs" / "operations.md"


def generated_table(home: Path) -> str:
    # In a fresh interpreter with a neutral environment: defaults under $HOME and $XDG_* are computed at import.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "XDG_"))}
    environment["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", "from forge_core.settings.reference import markdown_table as t; print(t(), end='')"],
        capture_output=True, text=True, env=environment, check=True, timeout=60)
    return done.stdout


def test_the_settings_table_is_generated_from_the_model(tmp_path: Path) -> None:
    text = DOC.read_text()
    table = text.split("<!-- settings-table:start -->\n")[1].split("<!-- settings-table:end -->")[0]
    assert table == generated_table(tmp_path), "docs/operations.md is stale: run scripts/settings-table"
    assert table.count("\n| `FORGE_") == len(setting_variables())
    assert str(tmp_path) not in table  # machine-independent: home is written as ~


def test_every_variable_names_a_real_setting_and_unknown_ones_none() -> None:
    for v in setting_variables():
        model: Any = Settings
        for part in v.path[:-1]:
            model = section_model(model.model_fields[part].annotation)
        assert v.path[-1] in model.model_fields, v.name
    assert variable("FORGE_NATS__ACK_WAIT__CI") is not None
    assert variable("FORGE_NATS__ACK_WAIT") is None  # a section, not a setting
    assert variable("FORGE_NOT_A_SETTING") is None
    secret = {v.name for v in setting_variables() if v.secret}
    assert {"FORGE_API__TOKEN", "FORGE_NATS__TOKEN", "FORGE_API__WEBHOOK_SECRET"} <= secret
    assert "FORGE_NATS__URL" not in secret


def test_every_service_reads_sections_that_exist() -> None:
    sections = set(Settings.model_fields)
    for service, parts in SERVICE_SECTIONS.items():
        for part in parts:
            head, *rest = part.split(".")
            assert head in sections, (service, part)
            if rest:
                section: Any = section_model(Settings.model_fields[head].annotation)
                assert rest[0] in section.model_fields, (service, part)
