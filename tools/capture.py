"""pedal-capture: make the capture signal, play it through the gear, align the recording.

    pedal-capture signal -o capture.wav [--seconds 180] [--rate 48000] [--di my-di.wav ...]
    pedal-capture reamp capture.wav -o takes/ (--lv2 URI | --pedalboard SPEC | --vst3 PATH |
                        --device hw:1) [--control NAME=VALUE ...] [--sweep KNOB=v1,v2,...]
    pedal-capture align capture.wav takes/reamp.json -o aligned/ [--force]
    pedal-capture import DRY WET [WET ...] -o aligned/ [--knob NAME=v1,v2,...]
                        [--knobs-from-name PATTERN] [--validation SECONDS | START:END ...]

Then `pedal-train aligned/ -o run/`. `import` takes recordings made for other trainers
(Neural Amp Modeler's input.wav and its output, any dry/wet pair, data sets such as
SignalTrain's); see `pedal-capture import --help`.
"""
import argparse

from pedal.cli.common import (
    Parser,
    check_output,
    check_output_folder,
    emit,
    json_option,
    note,
    run_command,
)

from . import importer, reamp
from .align import align
from .capsignal import (
    DEFAULT_RATE,
    DEFAULT_SECONDS,
    MIN_SECONDS,
    check_options,
    load_di,
    make_signal,
    write_signal,
)


def cmd_signal(args, say=print):
    check_options(args.seconds, args.rate, args.seed)
    check_output(args.out, getattr(args, "force", False))
    di = [load_di(p, args.rate) for p in args.di]
    signal, layout = make_signal(args.seconds, args.rate, args.seed, di)
    write_signal(args.out, signal, layout)
    emit({"output": args.out, "seconds": len(signal) / args.rate, "rate": args.rate},
         getattr(args, "json", False),
         [f"wrote {args.out} ({len(signal) / args.rate:.1f} s at {args.rate} Hz) and its "
          f"layout; play it through the gear with `pedal-capture reamp {args.out} -o takes/ "
          f"...`"])
    return 0


def cmd_align(args, say=print):
    check_output_folder(args.out, "capture.json", args.force)
    as_json = getattr(args, "json", False)
    path = align(args.dry, args.wet, args.out, force=args.force, invert=args.invert,
                 keep_inverted=args.keep_inverted, say=note if as_json else say)
    emit({"capture": path}, as_json, [f"next: pedal-train {args.out} -o run/"])
    return 0


def cmd_import(args, say=print):
    check_output_folder(args.out, "capture.json", args.force)
    as_json = getattr(args, "json", False)
    path = importer.import_recordings(
        args.dry, args.wet, args.out, args.knob, args.knobs_from_name, args.validation,
        args.latency, args.force, args.invert, args.keep_inverted, args.gear,
        args.max_latency_ms / 1000.0, say=note if as_json else say)
    emit({"capture": path}, as_json, [f"next: pedal-train {args.out} -o run/"])
    return 0


def _check_options(p):
    p.add_argument("--force", action="store_true",
                   help="go on although a check failed; replace a capture in the folder")
    p.add_argument("--invert", action="store_true", help="flip the recording's polarity")
    p.add_argument("--keep-inverted", action="store_true",
                   help="the gear inverts polarity by design: keep it so, without complaint")


def build_parser():
    p = Parser(prog="pedal-capture", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("signal", help="write the capture signal and its layout")
    s.add_argument("-o", "--output", dest="out", default="capture.wav",
                   help="the signal (WAV; its layout .json beside it)")
    s.add_argument("--force", action="store_true", help="replace an output that exists")
    json_option(s)
    s.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                   help=f"total length without DI (at least {MIN_SECONDS:g})")
    s.add_argument("--rate", type=int, default=DEFAULT_RATE)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--di", action="append", default=[],
                   help="append a DI recording of your own playing (repeatable)")
    s.set_defaults(run=cmd_signal)
    r = sub.add_parser("reamp", help="play the signal through the gear, record the take(s)")
    reamp.add_arguments(r)
    r.set_defaults(run=reamp.run)
    a = sub.add_parser("align", help="align and check a recording, write the capture folder")
    a.add_argument("dry", help="the capture signal (its layout .json beside it)")
    a.add_argument("wet", help="the recording (WAV) or the reamp manifest (reamp.json)")
    a.add_argument("-o", "--output", dest="out", required=True,
                   help="folder for the aligned capture")
    _check_options(a)
    json_option(a)
    a.set_defaults(run=cmd_align)
    i = sub.add_parser("import", help="align and check recordings made for other trainers, "
                                      "write the capture folder",
                       description=importer.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("dry", help="the signal played into the gear ({FIELD}s filled in from "
                               "each recording's name with --knobs-from-name)")
    i.add_argument("wet", nargs="+", help="the gear's recording(s)")
    i.add_argument("-o", "--output", dest="out", required=True,
                   help="folder for the aligned capture")
    i.add_argument("--knob", action="append", default=[], metavar="NAME=v1,v2,...",
                   help="a knob's value in each recording, in order (repeatable)")
    i.add_argument("--knobs-from-name", metavar="PATTERN",
                   help="knob values from the file names: {NAME} a value, * any text "
                        f"(or one of: {', '.join(importer.NAME_PATTERNS)})")
    i.add_argument("--validation", action="append", metavar="SECONDS|START:END",
                   help="hold out the last SECONDS (default "
                        f"{importer.DEFAULT_VALIDATION_S:g}) or the range START:END in seconds "
                        "(repeatable) of a plain pair; NAM's input uses its own")
    i.add_argument("--latency", type=int, help="the latency in samples, instead of measuring it")
    i.add_argument("--max-latency-ms", type=float, default=1000 * importer.MAX_LATENCY_S,
                   help="how far behind the input the recording may be (plain pairs)")
    i.add_argument("--gear", help="what the gear is (names the model)")
    _check_options(i)
    json_option(i)
    i.set_defaults(run=cmd_import)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_command("pedal-capture", lambda: args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
