"""`dlcli --help`, `validate` and `config show` never import TensorFlow, Keras, pandas or scikit-learn."""

from __future__ import annotations

import subprocess
import sys

from conftest import CONFIGS

HEAVY = ("tensorflow", "keras", "pandas", "sklearn", "matplotlib")

PROBE = """
import sys
from dlcli import cli
iris, housing, temperature = sys.argv[1:4]
for argv in (["--help"], ["validate", iris], ["validate", housing], ["config", "show", temperature]):
    try:
        cli.app(argv, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
print(" ".join(m for m in sys.argv[4:] if m in sys.modules) or "none")
"""


def test_light_commands_import_no_heavy_library():
    configs = [str(CONFIGS / f"{name}.yaml") for name in ("iris", "housing", "temperature")]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *configs, *HEAVY], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "seed: 42" in proc.stdout  # the commands really ran
    assert proc.stdout.strip().splitlines()[-1] == "none"
