"""The web scenarios share their tests: molecule/resources/web/tests/web_checks.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources" / "web" / "tests"))
