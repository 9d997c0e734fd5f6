"""Run one function in a forked child process while the caller does other work.

A one-shot ``coversearch query --audio`` spends its time in two independent
halves: decoding and analysing the audio (numpy + essentia, one core) and
importing torch, FAISS and pyarrow and loading the model and the index
(another core). :func:`start` forks a child for the first half so the two
overlap on a multi-core machine; :meth:`Pending.result` collects its return
value, or re-raises its exception (a ``DataError`` keeps its one-line message).

Forking is only safe before threads or libraries with thread pools exist, so
:func:`can_fork` refuses in a process that runs other threads (the HTTP
server, a test runner with helpers) or has imported torch; there the function
simply runs in the caller, with the same result. Imports nothing of ours.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading


def can_fork() -> bool:
    """Whether forking this process now is safe (POSIX, one thread, no torch yet)."""
    return hasattr(os, "fork") and threading.active_count() == 1 and "torch" not in sys.modules


class Pending:
    """The result of ``fn(*args)``, computed in a forked child (or here, if forking is not safe)."""

    def __init__(self, fn, *args) -> None:
        self.pid = None
        self._fd = None
        self._out = None
        if not can_fork():
            self._fn, self._args = fn, args  # run in the caller, on result()
            return
        self._fn = self._args = None
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running the parent's exit handlers
            os.close(r)
            try:
                try:
                    out = ("ok", fn(*args))
                except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
                    out = ("err", e)
                try:
                    data = pickle.dumps(out)
                except Exception as e:  # noqa: BLE001 - an unpicklable result or exception
                    data = pickle.dumps(("err", RuntimeError(f"{type(e).__name__}: {e}")))
                with os.fdopen(w, "wb") as f:
                    f.write(data)
            finally:
                os._exit(0)
        os.close(w)
        self.pid, self._fd = pid, r

    def result(self):
        """The function's return value; its exception is re-raised here."""
        if self._out is None:
            if self.pid is None:
                try:
                    self._out = ("ok", self._fn(*self._args))
                except BaseException as e:  # noqa: BLE001 - re-raised below, as from a child
                    self._out = ("err", e)
            else:
                with os.fdopen(self._fd, "rb") as f:
                    data = f.read()
                self._fd = None
                _, status = os.waitpid(self.pid, 0)
                self.pid = None
                if not data:
                    raise RuntimeError(f"the background analysis died ({_describe(status)})")
                self._out = pickle.loads(data)
        kind, value = self._out
        if kind == "err":
            raise value
        return value

    def cancel(self) -> None:
        """Stop the child if its result was never collected (the caller failed first)."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


def start(fn, *args) -> Pending:
    """Start ``fn(*args)`` in a forked child if :func:`can_fork`, else defer it to ``result()``."""
    return Pending(fn, *args)
