"""Importing quickfix resets SIGINT to the C default: a process holding FIX sessions
(`simulate --venues`, `oms run --venues`) would die on Ctrl-C without logging out."""

from __future__ import annotations

import subprocess
import sys

_CHILD = """
import os, signal, time
import trading.venues.fix.venue
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    print("interrupted")
"""


def test_venue_import_when_ctrl_c_then_python_sees_an_interrupt() -> None:
    # Act: a process that imported the adapter (and so quickfix) gets SIGINT
    done = subprocess.run([sys.executable, "-c", _CHILD], check=False, capture_output=True,
                          text=True, timeout=60)  # fmt: skip

    # Assert: Python's handler ran (KeyboardInterrupt), the process was not killed by it
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.strip() == "interrupted"
