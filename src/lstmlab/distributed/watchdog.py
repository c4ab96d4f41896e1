"""A stop signal must end a rank even while it waits, forever, for a rank that died.

``lstmlab train`` turns SIGINT / SIGTERM into "finish this step, save, exit". Python runs a signal's handler
only when the main thread comes back to the interpreter, and a rank blocked in an ``Allreduce`` whose peer was
killed never does: when mpirun then tears the job down with SIGTERM, the handler never runs and the rank
would spin on as an orphan. Python's C-level handler, however, writes the signal's number to the wakeup fd
at once, from any thread; this watchdog thread reads it there and gives the main thread ``grace`` seconds to
stop cleanly (the ranks agree on the stop at the next step, rank 0 saves). A rank still alive after that is
stuck, and ends with status 128 + signal, as the default action would. Atomic writes keep the last
checkpoint whole whatever moment this lands.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time


class StopWatchdog:
    """Ends this process ``grace()`` seconds after a stop signal unless it has exited by then.

    Parameters
    ----------
    min_grace : float
        Seconds allowed at least; :meth:`beat` raises the allowance to three times the longest step seen.
    """

    def __init__(self, min_grace: float = 10.0):
        self.min_grace = min_grace
        self.longest_step = 0.0
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)  # raises off the main thread
        threading.Thread(target=self._run, name="lstmlab-stop-watchdog", daemon=True).start()

    def beat(self, step_seconds: float) -> None:
        """The main thread finished a step that took ``step_seconds``."""
        self.longest_step = max(self.longest_step, step_seconds)

    def grace(self) -> float:
        return self.min_grace + 3.0 * self.longest_step

    def _run(self) -> None:
        while True:
            data = self._read.recv(1)
            if not data:
                return
            signum = data[0]
            if signum in (signal.SIGINT, signal.SIGTERM):
                break
        deadline = time.monotonic() + self.grace()
        while time.monotonic() < deadline:
            time.sleep(0.1)
        sys.stderr.write(f"lstmlab: error: still running {self.grace():.0f} s after signal {signum} (another rank "
                         "has probably died); ending this rank\n")
        sys.stderr.flush()
        os._exit(128 + signum)
