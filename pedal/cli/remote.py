"""Verbs that talk to the running pedal over its control socket: ctl and tune."""
from __future__ import annotations

import json
import os
import sys

from ..box import tune
from ..box.control import default_socket_path, request
from ..errors import PedalError

CTL_VERBS = {"status": [], "params": [], "presets": [], "get": ["name"],
             "set": ["name", "value"], "bypass": [], "load-preset": ["name"],
             "save-preset": ["name"], "delete-preset": ["name"], "next-preset": [],
             "load-model": ["path"], "load-ir": ["path"], "rescan": []}


def add_parsers(sub) -> None:
    s = sub.add_parser("ctl", help="talk to the running pedal (e.g. ctl set output_level_db -3)")
    s.add_argument("verb_ctl", metavar="COMMAND", help=", ".join(CTL_VERBS))
    s.add_argument("args", nargs="*")
    s.add_argument("--socket", help="control socket (default: the service's)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ctl)

    s = sub.add_parser("tune", help="terminal UI: meters, load, presets, every parameter")
    s.add_argument("--socket", help="control socket (default: the service's)")
    s.add_argument("--once", action="store_true", help="print one screen and exit")
    s.set_defaults(func=cmd_tune)


def cmd_ctl(args) -> None:
    """One request to the running pedal over its control socket."""
    result = request(args.socket or default_socket_path(), ctl_request(args.verb_ctl, args.args))
    if args.json or not isinstance(result, dict):
        print(json.dumps(result) if args.json else result)
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


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
