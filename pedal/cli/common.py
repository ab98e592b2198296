"""What every console script shares: the error wrapper (one line, exit status 2), the ALSA
device options, NAME=VALUE pairs, output checks and progress bars."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ..errors import EXIT_USAGE, PedalError
from ..io.loop import AudioConfig

EXIT_BUG = 70        # EX_SOFTWARE: an error that is the program's fault, not the input's


class Parser(argparse.ArgumentParser):
    """argparse with the house style of errors: one line, `prog: problem`, exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (--help shows the options)\n")


def run_command(prog: str, action: Callable[[], int | None]) -> int:
    """Run a console script's work: a PedalError becomes one line on stderr and its exit
    status (2 unless the error says otherwise); an OSError from the file system too (a full
    disk, a permission); Ctrl-C 130; a closed stdout (`| head`) a quiet end. Anything else
    is a bug: one line that says so (PEDAL_DEBUG=1 shows the traceback), status 70."""
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
        print(f"{prog}: internal error, a bug ({type(e).__name__}: {e}); PEDAL_DEBUG=1 "
              f"shows where", file=sys.stderr)
        return EXIT_BUG


def progress(total_frames: int, rate: int):
    """A progress bar when the job is long enough to wait for (and stderr is a terminal)."""
    from tqdm import tqdm
    if total_frames < 20 * rate:
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
    s.add_argument("--format", help="S16_LE, S24_LE, S24_3LE, S32_LE or FLOAT_LE")
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


def check_output(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PedalError(path, "the output folder does not exist")
