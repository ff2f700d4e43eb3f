"""`dlcli --help`, `validate`, `config show`, `schema` and `init` never import TensorFlow, Keras, pandas
or scikit-learn."""

from __future__ import annotations

import subprocess
import sys

from conftest import CONFIGS

HEAVY = ("tensorflow", "keras", "pandas", "sklearn", "matplotlib")

PROBE = """
import sys
from dlcli.cli import cli
iris, housing, temperature = sys.argv[1:4]
commands = (["--help"], ["validate", iris], ["validate", housing], ["config", "show", temperature],
            ["schema"], ["init", "timeseries", "starter.yaml"], ["validate", "starter.yaml"])
for argv in commands:
    try:
        cli.app(argv, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
print(" ".join(m for m in sys.argv[4:] if m in sys.modules) or "none")
"""


def test_light_commands_import_no_heavy_library(tmp_path):
    configs = [str(CONFIGS / f"{name}.yaml") for name in ("iris", "housing", "temperature")]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *configs, *HEAVY],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # the commands really ran: two validations, the resolved config, the schema, the starter file
    assert proc.stdout.count("ok ") == 3 and "seed: 42" in proc.stdout and '"$schema"' in proc.stdout
    assert (tmp_path / "starter.yaml").is_file()
    assert proc.stdout.strip().splitlines()[-1] == "none"
