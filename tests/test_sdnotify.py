"""pedal.box.sdnotify against a real unix datagram socket (a path and the abstract namespace)."""
import os
import socket
import threading
import time

import pytest

from pedal.box import sdnotify


def _receiver(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(addr)
    s.settimeout(2.0)
    return s


def _drain(sock):
    """Everything queued now (a bounded number, so a pinging sender cannot keep us here)."""
    out = []
    sock.settimeout(0.001)
    for _ in range(1000):
        try:
            out.append(sock.recv(4096).decode())
        except (TimeoutError, BlockingIOError):
            break
    return out


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path, monkeypatch):
    """(receiving socket, value of $NOTIFY_SOCKET)."""
    if request.param == "path":
        addr = str(tmp_path / "notify.sock")
        env = addr
    else:
        name = f"pedal-test-{os.getpid()}-{time.monotonic_ns()}"
        addr, env = "\0" + name, "@" + name
    sock = _receiver(addr)
    monkeypatch.setenv("NOTIFY_SOCKET", env)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def test_messages(notify_socket):
    assert sdnotify.ready()
    assert sdnotify.status("playing drive.pedal\nat 48 kHz")
    assert sdnotify.stopping()
    assert sdnotify.notify("EXTEND_TIMEOUT_USEC=1000000")
    got = [notify_socket.recv(4096).decode() for _ in range(4)]
    assert got == ["READY=1", "STATUS=playing drive.pedal at 48 kHz", "STOPPING=1",
                   "EXTEND_TIMEOUT_USEC=1000000"]


def test_no_socket_is_a_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.ready() is False
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    w = sdnotify.Watchdog(lambda: True)
    assert not w.enabled
    w.start()
    w.stop()
    assert w.pings == 0


def test_dead_socket_does_not_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    assert sdnotify.ready() is False


def test_watchdog_interval(monkeypatch):
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "5000000"}) == 2.5
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "junk"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "5000000",
                                       "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "5000000",
                                       "WATCHDOG_PID": str(os.getpid())}) == 2.5


def test_watchdog_pings_only_while_the_loop_advances(notify_socket, monkeypatch):
    # WATCHDOG_USEC=100 ms -> a ping every 50 ms while the "audio loop" advances.
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    frames = [0]
    advancing = threading.Event()
    advancing.set()
    stop = threading.Event()

    def audio():               # stands in for the audio thread: periods go by
        while not stop.is_set():
            if advancing.is_set():
                frames[0] += 64
            time.sleep(0.002)

    last = [-1]

    def healthy():             # the same rule as pedal run: frames moved since last check
        moved = frames[0] != last[0]
        last[0] = frames[0]
        return moved

    t = threading.Thread(target=audio, daemon=True)
    t.start()
    w = sdnotify.Watchdog(healthy)
    assert w.interval == pytest.approx(0.05)
    w.start()
    try:
        time.sleep(0.5)
        healthy_msgs = _drain(notify_socket)
        assert len(healthy_msgs) >= 4 and set(healthy_msgs) == {"WATCHDOG=1"}

        advancing.clear()      # the loop hangs
        time.sleep(0.15)       # let any check that still saw movement pass
        _drain(notify_socket)
        pings = w.pings
        time.sleep(0.5)
        assert _drain(notify_socket) == []
        assert w.pings == pings

        advancing.set()        # the loop recovers: pings resume
        notify_socket.settimeout(1.0)
        assert notify_socket.recv(4096).decode() == "WATCHDOG=1"
    finally:
        w.stop()
        stop.set()
        t.join()
    assert w._thread is None


def test_watchdog_healthy_raising_counts_as_unhealthy(notify_socket):
    def broken():
        raise RuntimeError("boom")

    with sdnotify.Watchdog(broken, interval=0.02) as w:
        time.sleep(0.2)
    assert w.pings == 0
    assert _drain(notify_socket) == []


def test_watchdog_disabled_without_watchdog_usec(notify_socket):
    w = sdnotify.Watchdog(lambda: True)
    assert w.interval is None and not w.enabled
    w.start()
    time.sleep(0.05)
    w.stop()
    assert _drain(notify_socket) == []
