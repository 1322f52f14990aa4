"""`evalkit.cli.quick_exit`: a finished command skips the interpreter's slow teardown, yet its
exit handlers run, its output is flushed and its exit code is kept; with nothing slow loaded,
or a non-daemon thread still running, the normal exit happens instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CODE = """
import atexit, sys, threading, time
from pathlib import Path
from evalkit.cli import quick_exit
mode, marker = sys.argv[1], Path(sys.argv[2])
atexit.register(lambda: marker.write_text("handler ran"))
if mode != "light":
    import torch  # noqa: F401 - slow to tear down
if mode == "thread":
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread done", end=""))).start()
print("partial line, unflushed", end="")
sys.stderr.write("to stderr")
quick_exit(3)
print(" | returned", end="")
sys.exit(4)
"""


@pytest.mark.parametrize("mode, rc, tail", [("torch", 3, ""), ("light", 4, " | returned"),
                                            ("thread", 4, " | returnedthread done")])
def test_quick_exit(tmp_path: Path, mode: str, rc: int, tail: str) -> None:
    marker = tmp_path / "marker"
    res = subprocess.run([sys.executable, "-c", CODE, mode, str(marker)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == rc, res.stderr[-2000:]
    assert res.stdout == "partial line, unflushed" + tail
    assert res.stderr.endswith("to stderr")
    assert marker.read_text() == "handler ran"


IN_PROCESS = """
import sys
import torch  # noqa: F401 - a slow module is loaded, as in a real run
from evalkit.cli import main
sys.argv = ["evalkit", "tasks"]
main()
print("main returned")
"""


def test_in_process_main_returns_and_the_console_script_exits_quickly(tmp_path: Path) -> None:
    """`main` is called in-process (tests/hostile drives every command that way): it must
    return, never end the caller's process; only the console script's `entry` exits early."""
    res = subprocess.run([sys.executable, "-c", IN_PROCESS], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.rstrip().endswith("main returned")
    script = Path(sys.executable).parent / "evalkit"
    if script.exists():
        assert "entry" in script.read_text()
