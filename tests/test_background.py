"""coversearch._background: a function run in a forked child, its result or its
exception brought back; run in a fresh interpreter (pytest itself has threads
and torch, where forking is refused and the function runs in the caller)."""

import subprocess
import sys
from pathlib import Path

from coversearch import _background
from coversearch.errors import DataError

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import os, time
import numpy as np
from coversearch import _background
from coversearch.errors import DataError

def work(n):
    return np.arange(n, dtype=np.float32), os.getpid()

def fail(name):
    raise DataError(f"{name}: unreadable or corrupt audio (test)")

assert _background.can_fork()
p = _background.start(work, 5)
assert p.pid is not None and p.pid != os.getpid()
arr, child = p.result()
assert child != os.getpid() and arr.tolist() == [0, 1, 2, 3, 4]
assert p.result()[1] == child  # collected once, kept
p = _background.start(fail, "x.mp3")
try:
    p.result()
    raise SystemExit("no error")
except DataError as e:
    assert str(e) == "x.mp3: unreadable or corrupt audio (test)", e
p = _background.start(time.sleep, 60)
pid = p.pid
t0 = time.perf_counter()
p.cancel()
assert time.perf_counter() - t0 < 5 and p.pid is None
try:
    os.kill(pid, 0)
    raise SystemExit("child still alive")
except ProcessLookupError:
    pass
p = _background.start(os._exit, 3)  # a child that dies without answering
try:
    p.result()
    raise SystemExit("no error")
except RuntimeError as e:
    assert "exit status 3" in str(e), e
print("ok")
'''


def test_fork_result_error_and_cancel_in_a_fresh_process():
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_runs_in_the_caller_where_forking_is_unsafe():
    import torch  # noqa: F401 - as in the server or a test run: no fork

    assert not _background.can_fork()
    p = _background.start(sum, [1, 2, 3])
    assert p.pid is None and p.result() == 6
    p = _background.start(lambda: (_ for _ in ()).throw(DataError("bad.wav: all silence")))
    try:
        p.result()
        raise AssertionError("no error")
    except DataError as e:
        assert "bad.wav" in str(e)
