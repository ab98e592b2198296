"""systemd service notifications without dependencies (the sd_notify protocol).

A message is one datagram of `KEY=VALUE` lines to the unix socket named by $NOTIFY_SOCKET
(a path, or `@name` for the abstract namespace). Without $NOTIFY_SOCKET (not started by
systemd as Type=notify) every call is a no-op, so `pedal run` calls them unconditionally:

    ready()            READY=1 once audio flows
    status(text)       STATUS=... shown by `systemctl status pedal`
    stopping()         STOPPING=1 on the way out
    Watchdog(healthy)  WATCHDOG=1 every WATCHDOG_USEC/2 while healthy() says the audio
                       loop still advances; a stalled loop stops the pings and systemd
                       restarts the service (WatchdogSec= in deploy/pedal.service).
"""
import os
import socket
import threading


def _address(env=None):
    env = os.environ if env is None else env
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr[0] == "@":
        return "\0" + addr[1:]          # abstract namespace
    if addr[0] != "/":
        return None                     # vsock and other forms are not used here
    return addr


def notify(message):
    """Send one datagram to $NOTIFY_SOCKET. True if sent, False if there is no socket or
    the send failed (a notification must never take the pedal down)."""
    addr = _address()
    if addr is None:
        return False
    data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(data, addr)
    except OSError:
        return False
    return True


def ready():
    return notify("READY=1")


def stopping():
    return notify("STOPPING=1")


def status(text):
    return notify("STATUS=" + " ".join(str(text).splitlines()))


def watchdog_interval(env=None):
    """Seconds between pings (half of $WATCHDOG_USEC), or None when no watchdog is asked
    for. $WATCHDOG_PID, when set, must be this process."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return usec / 2e6


class Watchdog:
    """A daemon thread that sends WATCHDOG=1 every WATCHDOG_USEC/2, but only when
    `healthy()` returns True at that moment (for the pedal: audio periods advanced since
    the previous check). When healthy() returns False or raises, that ping is skipped, so a
    hung audio loop makes systemd kill and restart the service after WatchdogSec."""

    def __init__(self, healthy, interval=None):
        self.healthy = healthy
        self.interval = watchdog_interval() if interval is None else interval
        self.pings = 0           # pings sent (for tests and stats)
        self._stop = threading.Event()
        self._thread = None

    @property
    def enabled(self):
        return self.interval is not None and _address() is not None

    def start(self):
        if not self.enabled or self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pedal-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 2 * (self.interval or 0)))
            self._thread = None

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                ok = bool(self.healthy())
            except Exception:
                ok = False
            if ok and notify("WATCHDOG=1"):
                self.pings += 1

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
