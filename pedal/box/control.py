"""The control socket: JSON lines over a Unix socket (mode 0660, group `pedal`), for
`pedal ctl`, `pedal tune` and `pedal-push` over SSH. No network listener.

Request:  {"cmd": "set", "name": "output_level_db", "value": -3}
Reply:    {"ok": true, "result": -3.0}   or   {"ok": false, "error": "one line"}

Commands: status, params, get NAME, set NAME VALUE, bypass [on], presets, load-preset NAME,
save-preset NAME, delete-preset NAME, next-preset [step], load-model PATH, load-ir PATH,
rescan (what the state directory holds now, after pedal-push copied files in), midi (the
bindings and ports), midi-learn NAME [timeout] (waits for the next CC and binds it),
midi-forget NAME.
A malformed, oversized or slow-drip request gets an error reply and the connection is
closed; the pedal plays on regardless.
"""
import grp
import json
import os
import socket
import socketserver
import stat
import threading
import time

from ..errors import PedalError

MAX_LINE = 64 * 1024
REQUEST_TIMEOUT_S = 2.0
MAX_CLIENTS = 8
MAX_REPLY = 16 << 20
LEARN_TIMEOUT_S = 30.0      # midi-learn waits this long for a CC unless told otherwise
MAX_LEARN_S = 300.0


def default_socket_path():
    """The service's socket when it is there (also over SSH, where XDG_RUNTIME_DIR points at
    the user's own runtime folder), else the per-user one of a `pedal run` by hand."""
    if os.environ.get("RUNTIME_DIRECTORY"):
        return os.path.join(os.environ["RUNTIME_DIRECTORY"], "control.sock")
    if os.path.exists("/run/pedal/control.sock"):
        return "/run/pedal/control.sock"
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "pedal", "control.sock")
    return f"/tmp/pedal-{os.getuid()}/control.sock"


class BadRequest(PedalError):
    """A request that is not one: the connection gets the problem and is closed."""

    def __init__(self, problem: str):
        super().__init__("request", problem)


def dispatch(pedal, req):
    """Run one request against the Pedal facade; returns the result or raises."""
    if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
        raise BadRequest("expected a JSON object with a \"cmd\"")
    cmd = req["cmd"]
    arg = lambda key, kind: _arg(req, key, kind)
    if cmd == "status":
        return pedal.status()
    if cmd == "params":
        return pedal.get_params()
    if cmd == "get":
        params = pedal.get_params()
        name = arg("name", str)
        if name not in params:
            raise PedalError(name, f"no such parameter (known: {', '.join(params)})")
        return params[name]
    if cmd == "set":
        if "value" not in req:
            raise BadRequest("set: needs \"value\"")
        return pedal.set_param(arg("name", str), req["value"])   # checked by the schema
    if cmd == "bypass":
        on = req.get("on")
        if on is not None and not isinstance(on, bool):
            raise PedalError("bypass", f"\"on\": {on!r}; expected true, false or null (toggle)")
        return pedal.bypass(on)
    if cmd == "presets":
        return {"presets": pedal.presets.names(), "current": pedal.preset}
    if cmd in ("load-preset", "save-preset", "delete-preset"):
        getattr(pedal, cmd.replace("-preset", "_preset"))(arg("name", str))
        return pedal.preset
    if cmd == "next-preset":
        step = req.get("step", 1)
        if step not in (1, -1) or isinstance(step, bool):
            raise PedalError("next-preset", f"\"step\": {step!r}; expected 1 or -1")
        return pedal.next_preset(step)
    if cmd == "rescan":
        return pedal.rescan()
    if cmd == "midi":
        return pedal.midi_bindings()
    if cmd == "midi-learn":
        timeout = req.get("timeout", LEARN_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
                not 0 < timeout <= MAX_LEARN_S:
            raise PedalError("midi-learn", f"\"timeout\": {timeout!r}; expected 0 to "
                                           f"{MAX_LEARN_S} seconds")
        return pedal.midi_learn(arg("name", str), float(timeout))
    if cmd == "midi-forget":
        return pedal.midi_forget(arg("name", str))
    if cmd in ("load-model", "load-ir"):
        getattr(pedal, cmd.replace("-", "_"))(arg("path", str))
        return pedal.status()["model" if cmd == "load-model" else "ir"]
    raise BadRequest(f"unknown command {cmd!r}")


def _arg(req, key, kind):
    value = req.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadRequest(f"{req.get('cmd')}: needs \"{key}\"")
    return value


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        server = self.server
        conn = self.request
        buf = b""
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while True:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._fail("request timed out (send one JSON line at a time)")
                conn.settimeout(left)
                try:
                    chunk = conn.recv(4096)
                except (TimeoutError, OSError):
                    return self._fail("request timed out (send one JSON line at a time)")
                if not chunk:
                    return
                buf += chunk
                if len(buf) > MAX_LINE:
                    return self._fail(f"request longer than {MAX_LINE} bytes")
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                return self._fail("not a JSON line")
            try:
                reply = {"ok": True, "result": dispatch(server.pedal, req)}
            except BadRequest as e:
                return self._fail(e.problem)
            except PedalError as e:
                reply = {"ok": False, "error": str(e)}
            except OSError as e:                # a full disk, a preset deleted meanwhile
                where = e.filename or "pedal"
                reply = {"ok": False, "error": f"{where}: {e.strerror or e}"}
            except Exception as e:              # a bug: say so, keep serving, keep playing
                server.pedal.log(f"control: {req.get('cmd')!r} failed: {type(e).__name__}: {e}")
                reply = {"ok": False, "error": f"internal error ({type(e).__name__}); "
                                               f"the pedal plays on"}
            self._send(reply)
            deadline = time.monotonic() + REQUEST_TIMEOUT_S

    def _send(self, reply):
        try:
            self.request.sendall(json.dumps(reply, default=str).encode() + b"\n")
        except OSError:
            pass

    def _fail(self, message):
        self._send({"ok": False, "error": message})


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, pedal):
        self.pedal = pedal
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(path, _Handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            request.sendall(b'{"ok": false, "error": "too many connections"}\n')
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class ControlServer:
    """Serves the socket in a daemon thread; stop() removes it."""

    def __init__(self, pedal, path=None, log=print):
        self.path = path or default_socket_path()
        try:
            self.server = self._listen(pedal)
        except (OSError, ValueError) as e:     # no such folder, too long, a NUL byte...
            raise PedalError(self.path, f"cannot serve the control socket here: "
                                        f"{getattr(e, 'strerror', None) or e}") from None
        self.thread = threading.Thread(target=self.server.serve_forever, name="pedal-control",
                                       kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()
        log(f"control socket: {self.path}")

    def _listen(self, pedal):
        folder = os.path.dirname(self.path)
        os.makedirs(folder or ".", mode=0o750, exist_ok=True)
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise PedalError(self.path, "exists and is not a socket; choose another "
                                            "--socket path")
            if _alive(self.path):
                raise PedalError(self.path, "another pedal is already running here")
            os.unlink(self.path)
        old = os.umask(0o117)
        try:
            server = _Server(self.path, pedal)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o660)
        _group_pedal(self.path)
        return server

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _group_pedal(path):
    try:
        gid = grp.getgrnam("pedal").gr_gid
        os.chown(path, -1, gid)
    except (KeyError, PermissionError):
        pass


def _alive(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def request(path, req, timeout=10.0):
    """One request to a running pedal; returns the result or raises PedalError."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        raise PedalError(path, "no pedal is running here (is `pedal run` or the service "
                               "up? --socket picks another path)") from None
    except PermissionError:
        s.close()
        raise PedalError(path, "permission denied: add yourself to the `pedal` group") from None
    except (OSError, ValueError) as e:
        s.close()
        raise PedalError(path, f"not a control socket ({getattr(e, 'strerror', None) or e})") \
            from None
    try:
        s.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n") and len(data) <= MAX_REPLY:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise PedalError(path, "the pedal did not answer in time") from None
    except OSError as e:
        raise PedalError(path, f"the connection failed: {e.strerror or e}") from None
    finally:
        s.close()
    try:
        reply = json.loads(data.decode())
    except (ValueError, RecursionError):
        raise PedalError(path, "garbled reply from the pedal") from None
    if not isinstance(reply, dict):
        raise PedalError(path, "garbled reply from the pedal")
    if not reply.get("ok"):
        # the pedal's own one line ("bass_db: 99 is outside -12..12 dB"), as it is
        where, _, problem = str(reply.get("error", "error")).partition(": ")
        raise PedalError(where, problem) if problem else PedalError("pedal", where)
    return reply.get("result")
