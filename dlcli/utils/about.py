"""The package's version, and when this process imported dlcli (run.json's `first_step_s` counts from
here). Its own module, so that no module needs the package's `__init__` (whose public names load the
library lazily) to read them."""

from __future__ import annotations

from time import time

__version__ = "0.1.0"
#: When this process imported dlcli (near its start).
STARTED_AT = time()
