"""tests/chart: the platform's Helm chart, Crossplane kinds and bootstrap commands."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
