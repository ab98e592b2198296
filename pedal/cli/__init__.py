"""`pedal <verb>`: the command line on the pedal (and the desktop).

    model.py   info, render, bench, demo
    play.py    run (the pedal), latency
    remote.py  ctl, tune (the running pedal, over its control socket)

User errors print one line on stderr and exit with status 2; no tracebacks.
"""
from __future__ import annotations

import argparse

from . import model, play, remote
from .common import Parser, run_command


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="pedal", description="Neural guitar pedal")
    sub = p.add_subparsers(dest="verb", required=True)
    for verbs in (model, play, remote):
        verbs.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command("pedal", lambda: args.func(args))
