"""Verbs that talk to the running pedal over its control socket: ctl and tune."""
from __future__ import annotations

import os
import sys

from ..box import tune
from ..box.control import LEARN_TIMEOUT_S, default_socket_path, request
from ..dsp.params import PARAMS
from ..errors import PedalError
from .common import emit, note

CTL_VERBS = {"status": [], "params": [], "presets": [], "get": ["name"],
             "set": ["name", "value"], "bypass": [], "load-preset": ["name"],
             "save-preset": ["name"], "delete-preset": ["name"], "next-preset": [],
             "load-model": ["path"], "load-ir": ["path"], "rescan": [], "midi": [],
             "midi-learn": ["name"], "midi-forget": ["name"]}


def add_parsers(sub) -> None:
    s = sub.add_parser("ctl", help="talk to the running pedal (e.g. ctl set output_level_db -3)")
    s.add_argument("verb_ctl", metavar="COMMAND", help=", ".join(CTL_VERBS)) \
        .completion_words = list(CTL_VERBS)
    s.add_argument("args", nargs="*").completion_words = list(PARAMS) + ["on", "off", "toggle"]
    s.add_argument("--socket", help="control socket (default: the service's)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ctl)

    s = sub.add_parser("tune", help="terminal UI: meters, load, presets, every parameter")
    s.add_argument("--socket", help="control socket (default: the service's)")
    s.add_argument("--once", action="store_true", help="print one screen and exit")
    s.set_defaults(func=cmd_tune)


def cmd_ctl(args) -> None:
    """One request to the running pedal over its control socket."""
    req = ctl_request(args.verb_ctl, args.args)
    timeout = 10.0
    if req["cmd"] == "midi-learn":
        timeout = LEARN_TIMEOUT_S + 10
        note(f"pedal ctl: move a knob on the MIDI controller now (waiting up to "
             f"{LEARN_TIMEOUT_S:g} s)")
    result = request(args.socket or default_socket_path(), req, timeout=timeout)
    if args.json:
        emit(result, True, [])
    elif req["cmd"] == "midi":
        print("\n".join(midi_lines(result)))
    elif not isinstance(result, dict):
        print(result)
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


def midi_lines(m: dict) -> list[str]:
    """`pedal ctl midi` for a person: ports, then every binding."""
    ch = lambda e: f" channel {e['channel']}" if e.get("channel") else ""
    lines = [f"device {m['device']}: {', '.join(m['ports']) or 'no port open'}; "
             f"{m['messages']} messages, {m['dropped_bytes']} bytes dropped"]
    for e in m["cc"]:
        span = f" {e['min']:g}..{e['max']:g}" if "min" in e and "max" in e else ""
        lines.append(f"CC {e['cc']}{ch(e)} -> {e['param']}{span} {e['taper']} ({e['source']})")
    for e in m["switch"]:
        what = f"note {e['note']}" if "note" in e else f"CC {e['cc']} press"
        lines.append(f"{what}{ch(e)} -> {e['action']}")
    if not m["program_change"]:
        lines.append("program change: off")
    elif m["program"]:
        lines += [f"program {e['program']} bank {e['bank']} -> preset {e['preset']}"
                  for e in m["program"]]
    else:
        lines.append("program change P in bank B -> preset number B*128+P+1 (pedal ctl presets)")
    lines.append(f"learned bindings: {m['learned_file']}"
                 + (f"; learning {m['learning']} now" if m.get("learning") else ""))
    return lines


def ctl_request(verb: str, rest: list[str]) -> dict:
    """The control-socket request for `pedal ctl VERB ARGS...`."""
    if verb not in CTL_VERBS:
        raise PedalError(verb, f"unknown command (known: {', '.join(CTL_VERBS)})")
    req = {"cmd": verb}
    if verb == "bypass":
        if rest and rest[0] not in ("on", "off", "toggle"):
            raise PedalError("pedal ctl bypass", f"{rest[0]!r}: use on, off or toggle")
        if rest and rest[0] != "toggle":
            req["on"] = rest[0] == "on"
        return req
    names = CTL_VERBS[verb]
    if len(rest) != len(names):
        raise PedalError(f"pedal ctl {verb}",
                         f"expects {' '.join(n.upper() for n in names) or 'no arguments'}")
    req.update(zip(names, rest))
    if "value" in req:
        try:
            req["value"] = float(req["value"])
        except ValueError:
            raise PedalError(f"pedal ctl {verb}", f"{req['value']!r} is not a number") from None
    if "path" in req:
        req["path"] = os.path.abspath(req["path"])
    return req


def cmd_tune(args) -> None:
    path = args.socket or default_socket_path()
    if args.once:
        status = request(path, {"cmd": "status"})
        params = request(path, {"cmd": "params"})
        print("\n".join(tune.screen_lines(status, params, 0)))
        return
    if not sys.stdout.isatty():
        raise PedalError("pedal tune", "needs a terminal (use --once, or pedal ctl)")
    request(path, {"cmd": "status"})            # a clear error before curses takes over
    tune.run(path)
