"""What every console script shares, so that they all behave alike:

- Parser: argparse with one-line errors (`prog: problem`, exit status 2), `--version`, and
  `-q/--quiet` (no progress bars, no notes: results and errors only) and `-v/--verbose`
  (more detail: the traceback of an internal error, per-event logs where a command has
  them), before or after a subcommand.
- run_command: the error wrapper; every error a user sees is `prog: where: problem`.
- results: `--json` prints a command's result as one JSON object on stdout (emit()).
- outputs: `-o/--output` names what a command writes; an existing file is replaced only
  with `--force` (check_output).
- the ALSA device options, NAME=VALUE pairs, progress bars.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import traceback
from collections.abc import Callable

from .. import __version__
from ..errors import EXIT_USAGE, PedalError
from ..io.loop import AudioConfig

EXIT_BUG = 70        # EX_SOFTWARE: an error that is the program's fault, not the input's
# -1 quiet, 0 normal, 1 verbose: set by the last Parser.parse_args (one command per process)
verbosity = 0


class Parser(argparse.ArgumentParser):
    """argparse with the house conventions (see the module's docstring)."""

    def __init__(self, *args, subcommand=False, **kwargs):
        super().__init__(*args, **kwargs)
        # in a subcommand the defaults are left out, so they never undo a `prog -q verb`
        default = argparse.SUPPRESS if subcommand else False
        self.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
        talk = self.add_mutually_exclusive_group()
        talk.add_argument("-q", "--quiet", action="store_true", default=default,
                          help="results and errors only: no progress bars, no notes")
        talk.add_argument("-v", "--verbose", action="store_true", default=default,
                          help="more detail (and the traceback of an internal error)")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", functools.partial(Parser, subcommand=True))
        return super().add_subparsers(**kwargs)

    def parse_args(self, args=None, namespace=None):
        global verbosity
        ns = super().parse_args(args, namespace)
        verbosity = -1 if getattr(ns, "quiet", False) else int(bool(getattr(ns, "verbose",
                                                                              False)))
        return ns

    def error(self, message):
        # one prefix per console script, as run_command's: `pedal-capture: signal: ...`
        script, _, verb = self.prog.partition(" ")
        where = f"{verb}: " if verb else ""
        self.exit(EXIT_USAGE, f"{script}: {where}{message} (--help shows the options)\n")


def note(message: str) -> None:
    """A note for the person at the terminal (stderr); -q silences it."""
    if verbosity >= 0:
        print(message, file=sys.stderr, flush=True)


def emit(result, as_json: bool, lines: list[str] | Callable[[], list[str]]) -> None:
    """A command's result: one JSON object with --json (strict JSON: a level of -inf dBFS
    is null), else the lines for a person."""
    if as_json:
        print(json.dumps(_strict(result), default=str))
    else:
        print("\n".join(lines() if callable(lines) else lines))


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def json_option(s: argparse.ArgumentParser) -> None:
    s.add_argument("--json", action="store_true", help="print the result as one JSON object")


def output_option(s: argparse.ArgumentParser, help: str, **kwargs) -> None:
    """-o/--output and --force: the one way every command names what it writes."""
    s.add_argument("-o", "--output", help=help, **kwargs)
    s.add_argument("--force", action="store_true", help="replace an output that exists")


def check_output(path: str, force: bool = False) -> None:
    """An output file may be written: its folder exists, and it does not (or --force)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PedalError(path, "the output folder does not exist")
    if os.path.lexists(path) and not force:
        raise PedalError(path, "exists; --force replaces it")


def check_output_folder(folder: str, marker: str, force: bool = False) -> None:
    """An output folder may be (re)filled: it does not hold `marker` already (or --force)."""
    if os.path.lexists(os.path.join(folder, marker)) and not force:
        raise PedalError(folder, f"already holds {marker}; --force replaces it")


def run_command(prog: str, action: Callable[[], int | None]) -> int:
    """Run a console script's work: a PedalError becomes one line on stderr and its exit
    status (2 unless the error says otherwise); an OSError from the file system too (a full
    disk, a permission); Ctrl-C 130; a closed stdout (`| head`) a quiet end. Anything else
    is a bug: one line that says so (-v or PEDAL_DEBUG=1 shows the traceback), status 70."""
    try:
        return action() or 0
    except PedalError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output has gone; stop writing without a traceback at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:
        where = e.filename if e.filename is not None else "system"
        print(f"{prog}: {PedalError(where, e.strerror or str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:
        if os.environ.get("PEDAL_DEBUG"):
            raise
        if verbosity > 0:
            traceback.print_exc()
        print(f"{prog}: internal error, a bug ({type(e).__name__}: {e}); -v shows where",
              file=sys.stderr)
        return EXIT_BUG


def progress(total_frames: int, rate: int):
    """A progress bar when the job is long enough to wait for (and stderr is a terminal,
    and no -q)."""
    from tqdm import tqdm
    if total_frames < 20 * rate or verbosity < 0:
        return None
    return tqdm(total=total_frames, unit="frames", unit_scale=True, file=sys.stderr,
                disable=None, leave=False)


def device_arguments(s: argparse.ArgumentParser, rate_default: str = "48000",
                     input_is: str = "the guitar") -> None:
    """The ALSA device options of `pedal run`, `pedal latency` and `pedal-capture reamp`."""
    s.add_argument("--device", "-d", help="ALSA device for capture and playback")
    s.add_argument("--capture", help="ALSA capture device")
    s.add_argument("--playback", help="ALSA playback device")
    s.add_argument("--rate", type=int, help=f"sample rate (default {rate_default})")
    s.add_argument("--period", type=int, help="period frames (default 64)")
    s.add_argument("--periods", type=int, help="periods in the buffer (default 2)")
    s.add_argument("--format", help="S16_LE, S24_LE, S24_3LE, S32_LE or FLOAT_LE") \
        .completion_words = ["S16_LE", "S24_LE", "S24_3LE", "S32_LE", "FLOAT_LE"]
    s.add_argument("--in-channels", type=int, help="capture channels (1 or 2)")
    s.add_argument("--input-channel", type=int, help=f"which capture channel is {input_is}")
    s.add_argument("--out-channels", type=int, help="playback channels (1 or 2)")
    s.add_argument("--no-realtime", action="store_true", help="skip mlockall / SCHED_FIFO")


# option -> AudioConfig field; --device sets both directions
_DEVICE_OPTIONS = (("capture", "capture"), ("playback", "playback"), ("rate", "rate"),
                   ("period", "period_frames"), ("periods", "periods"), ("format", "format"),
                   ("in_channels", "in_channels"), ("input_channel", "input_channel"),
                   ("out_channels", "out_channels"))


def audio_config(args: argparse.Namespace, section: dict) -> AudioConfig:
    """The device settings: the config file's [audio] table, then the command line."""
    c = AudioConfig()
    for key in ("capture", "playback", "rate", "period_frames", "periods", "format",
                "in_channels", "input_channel", "out_channels"):
        if key in section:
            setattr(c, key, section[key])
    if "device" in section:
        c.capture = c.playback = section["device"]
    if args.device is not None:
        c.capture = c.playback = args.device
    for option, attr in _DEVICE_OPTIONS:
        value = getattr(args, option)
        if value is not None:
            setattr(c, attr, value)
    return c.check()


def pairs(items: list[str] | None, flag: str) -> dict[str, float]:
    """NAME=NUMBER options into a dict."""
    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise PedalError(flag, f"{item!r}: expected NAME=NUMBER") from None
    return out


def stages(count: int, desc: str):
    """A progress bar over the `count` stages of a long job (pedal-convert --verify):
    .set_postfix_str(what) as one starts, .update() as it ends; None with -q."""
    from tqdm import tqdm
    if verbosity < 0:
        return None
    return tqdm(total=count, desc=desc, unit="step", file=sys.stderr, disable=None,
                leave=False)
