"""The test interpreter as a program other scripts can run by path.

A symlink to `sys.executable` placed outside its virtual environment is not that environment's
interpreter: Python looks for `pyvenv.cfg` beside the path it was started by, finds none, and runs
as the base interpreter without the project's packages. On a machine where the base interpreter had
the packages installed by hand that passed; on a fresh machine it failed. A two-line shell launcher
that execs the interpreter by its own path keeps the virtual environment.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_python_launcher(path: Path) -> Path:
    """Make `path` an executable that runs this test run's interpreter (its virtual environment included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nexec '{sys.executable}' \"$@\"\n")
    path.chmod(0o755)
    return path
