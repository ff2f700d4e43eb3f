"""`dlcli --help` and `dlcli validate` never import TensorFlow, Keras, pandas or scikit-learn."""

from __future__ import annotations

import subprocess
import sys

from conftest import CONFIGS

HEAVY = ("tensorflow", "keras", "pandas", "sklearn", "matplotlib")

PROBE = f"""
import sys
from dlcli import cli
for argv in (["--help"], ["validate", {str(CONFIGS / "iris.yaml")!r}], ["validate", {str(CONFIGS / "housing.yaml")!r}],
             ["config", "show", {str(CONFIGS / "temperature.yaml")!r}]):
    try:
        cli.app(argv, standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, exc.code
print(" ".join(m for m in {HEAVY!r} if m in sys.modules) or "none")
"""


def test_light_commands_import_no_heavy_library():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "none"
