"""Real-time set-up of the audio thread where the system permits it, and a plain warning
where it does not (a desktop without rtprio limits still plays, just less safely)."""
import ctypes
import ctypes.util
import gc
import os
import sys

MCL_CURRENT, MCL_FUTURE = 1, 2
DEFAULT_PRIORITY = 70
# Other Python threads (control socket, loader) hand the GIL back this often; the default
# 5 ms is longer than a 64-frame period.
SWITCH_INTERVAL_S = 0.0002


def lock_memory():
    """mlockall: no page of the process is ever swapped out or faulted in mid-period."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        return f"mlockall failed ({os.strerror(err)}); raise LimitMEMLOCK / ulimit -l"
    return None


def fifo_this_thread(priority=DEFAULT_PRIORITY):
    """SCHED_FIFO for the calling thread only (on Linux, pid 0 means this thread)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as e:
        return f"SCHED_FIFO {priority} refused ({e.strerror or e}); raise LimitRTPRIO / rtprio"
    return None


class RealtimeSection:
    """Around the audio loop: collector frozen and off, GIL handed back quickly. Use as a
    context manager in the audio thread; warnings go to `warn`."""

    def __init__(self, warn, priority=DEFAULT_PRIORITY, lock=True):
        self.warn, self.priority, self.lock = warn, priority, lock

    def __enter__(self):
        for problem in (lock_memory() if self.lock else None, fifo_this_thread(self.priority)):
            if problem:
                self.warn(f"warning: {problem}")
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        gc.collect()
        gc.freeze()          # everything loaded so far is never scanned again
        gc.disable()
        return self

    def __exit__(self, *exc):
        gc.enable()
        gc.unfreeze()
        sys.setswitchinterval(self._interval)
        return False
