"""`pedal tune`: a terminal UI over the control socket, for an SSH session.

Live input/output meters, CPU load, xruns, the model and preset, and every parameter:
  up/down choose a parameter   left/right change it (shift: x10 with [ and ])
  b bypass   n / p next / previous preset   s save as the current preset   q quit
"""
import curses
import math
import time

from ..dsp.params import PARAMS
from ..errors import PedalError
from .control import request

REFRESH_S = 0.1
METER_DB = 60                       # the meters show -60..0 dBFS


def step_for(name):
    p = PARAMS.get(name)
    if p is not None and p.maximum - p.minimum <= 1:
        return 0.05
    return 1.0 if name.endswith("_db") else 0.01


def meter(db, width):
    """A bar for a level in dBFS: full at 0 dBFS, empty at -METER_DB."""
    if db is None or not math.isfinite(db):
        filled = 0
    else:
        filled = int(round(width * max(0.0, min(1.0, (db + METER_DB) / METER_DB))))
    return "#" * filled + "." * (width - filled)


def screen_lines(status, params, selected, width=72, message=""):
    """The whole screen as text lines (pure: the tests check it without a terminal)."""
    bar = max(10, width - 28)
    lines = [
        f"pedal tune   model: {status.get('model') or '-'}   preset: {status.get('preset') or '-'}"
        f"{'   BYPASS' if status.get('bypass') else ''}",
        f"in  {meter(status.get('in_peak_dbfs'), bar)} {_db(status.get('in_peak_dbfs'))}",
        f"out {meter(status.get('out_peak_dbfs'), bar)} {_db(status.get('out_peak_dbfs'))}",
        f"load {status.get('load_pct_median', 0):5.1f}%  p99 {status.get('load_pct_p99', 0):5.1f}%"
        f"   xruns {status.get('xruns', 0)}   clipped in {status.get('in_clipped', 0)} "
        f"out {status.get('out_clipped', 0)}",
        "",
    ]
    for i, (name, value) in enumerate(params.items()):
        mark = ">" if i == selected else " "
        lines.append(f"{mark} {name:20} {value:9.2f}")
    lines += ["", message or "up/down: choose  left/right: change  b: bypass  n/p: preset  "
                             "s: save  q: quit"]
    return [l[:width] for l in lines]


def _db(value):
    if value is None or not math.isfinite(value) or value < -120:
        return "  -inf dB"
    return f"{value:6.1f} dB"


def action(key, names, selected, values):
    """(request or None, new selection) for a key press."""
    if key in (curses.KEY_UP, ord("k")):
        return None, max(0, selected - 1)
    if key in (curses.KEY_DOWN, ord("j")):
        return None, min(len(names) - 1, selected + 1)
    name = names[selected] if names else None
    moves = {curses.KEY_RIGHT: 1, ord("l"): 1, curses.KEY_LEFT: -1, ord("h"): -1,
             ord("]"): 10, ord("["): -10}
    if key in moves and name is not None:
        return {"cmd": "set", "name": name,
                "value": values[name] + moves[key] * step_for(name)}, selected
    if key == ord("b"):
        return {"cmd": "bypass"}, selected
    if key in (ord("n"), ord("p")):
        return {"cmd": "next-preset", "step": 1 if key == ord("n") else -1}, selected
    return None, selected


def run(socket_path):
    curses.wrapper(_loop, socket_path)


def _loop(win, socket_path):
    curses.curs_set(0)
    win.timeout(int(REFRESH_S * 1000))
    selected, message = 0, ""
    while True:
        try:
            status = request(socket_path, {"cmd": "status"})
            params = request(socket_path, {"cmd": "params"})
        except PedalError as e:
            status, params, message = {}, {}, str(e)
        names = list(params)
        win.erase()
        height, width = win.getmaxyx()
        for y, line in enumerate(screen_lines(status, params, selected, width - 1, message)):
            if y < height:
                win.addstr(y, 0, line)
        win.refresh()
        key = win.getch()
        if key in (ord("q"), 27):
            return
        if key == ord("s") and status.get("preset"):
            message = _send(socket_path, {"cmd": "save-preset", "name": status["preset"]})
            continue
        req, selected = action(key, names, selected, params)
        if req is not None:
            message = _send(socket_path, req, status)
        time.sleep(0)


def _send(socket_path, req, status=None):
    try:
        if req["cmd"] == "next-preset":
            presets = request(socket_path, {"cmd": "presets"})
            names = presets["presets"]
            if not names:
                return "no presets yet: save one with `pedal ctl save-preset NAME`"
            i = names.index(presets["current"]) if presets["current"] in names else -1
            req = {"cmd": "load-preset", "name": names[(i + req["step"]) % len(names)]}
        result = request(socket_path, req)
        return f"{req['cmd']}: {result}"
    except PedalError as e:
        return str(e)
