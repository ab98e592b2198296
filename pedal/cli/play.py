"""Verbs that play on an audio device: run (the pedal) and latency."""
from __future__ import annotations

import os

from .. import models
from ..box.config import find_config, load_config, search_path
from ..box.control import default_socket_path
from ..dsp.params import in_range
from ..io.filedevice import RECORD_LIMIT_S, has_sound_card
from .common import (
    audio_config,
    check_output,
    device_arguments,
    emit,
    json_option,
    note,
    pairs,
)
from .model import param_option

DEFAULT_OUTPUT = os.path.join("out", "pedal-run.wav")


def add_parsers(sub) -> None:
    s = sub.add_parser("run", help="play the pedal in real time on an ALSA device")
    s.add_argument("--model", "-m", help="model file (default: the bundled default model)")
    s.add_argument("--ir", help="cabinet impulse response (WAV/FLAC)")
    device_arguments(s)
    param_option(s, "a chain parameter or model knob, e.g. output_level_db=-6")
    s.add_argument("--config", help=f"config file (default {' or '.join(search_path())})")
    s.add_argument("--stats", action="store_true", help="print statistics once a second")
    s.add_argument("--seconds", type=float, help="stop after this long")
    s.add_argument("--socket", help="control socket path ('none': no socket; default "
                                    f"{default_socket_path()})")
    s.add_argument("--state-dir", help="presets, last state, learned MIDI bindings (default "
                                       "$STATE_DIRECTORY or $XDG_STATE_HOME/pedal)")
    s.add_argument("--midi", metavar="DEVICE",
                   help="MIDI input: auto (every port), hw:1,0, a path, or none (default: "
                        "the config's [midi] device, else auto)")
    no_card = s.add_argument_group("without a sound card (the bundled clip, looped)")
    no_card.add_argument("-o", "--output", default=DEFAULT_OUTPUT,
                         help="what the pedal played, the first "
                              f"{RECORD_LIMIT_S:g} s (default out/pedal-run.wav, "
                              f"replaced each run)")
    no_card.add_argument("--fast", action="store_true",
                         help="as fast as it goes, not in real time")
    json_option(s)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("latency", help="measure the round trip (output looped to input)")
    device_arguments(s)
    s.add_argument("--sweep", action="store_true",
                   help="soak periods 32/64/128/256 x 2/3 and recommend the lowest that holds")
    s.add_argument("--seconds", type=float, default=10.0, help="soak per setting (--sweep)")
    s.add_argument("--model", "-m", help="model for the soak (default: the bundled default)")
    s.add_argument("--config", help="config file")
    json_option(s)
    s.set_defaults(func=cmd_latency)


def cmd_run(args) -> None:
    """The real-time pedal. Without a sound card it plays the bundled clip, looped, through
    the file-backed ALSA device, in real time, and says what it played."""
    from ..box import app
    if args.seconds is not None:
        in_range("--seconds", args.seconds, 0.001, 1e9, "s")
    cfg = load_config(find_config(args.config))
    audio = audio_config(args, cfg["audio"])
    params = dict(cfg["params"])
    params.update(pairs(args.param, "--param"))
    midi = dict(cfg.get("midi", {}))
    if args.midi is not None:
        midi["device"] = args.midi
    setup = app.Setup(
        model=args.model or cfg["pedal"].get("model") or models.default_model(),
        ir=args.ir or cfg["pedal"].get("ir"), params=params,
        input_level_dbu=cfg["audio"].get("input_level_dbu"),
        restore=not (args.model or args.ir or args.param), gpio=cfg.get("gpio"), midi=midi,
        socket=args.socket, state_dir=args.state_dir, realtime=not args.no_realtime,
        stats=args.stats, seconds=args.seconds, quiet=args.quiet, verbose=args.verbose)
    explicit_device = args.device or args.capture or args.playback or \
        any(k in cfg["audio"] for k in ("device", "capture", "playback"))
    if explicit_device or has_sound_card():
        if args.fast or args.output != DEFAULT_OUTPUT:
            note("pedal run: -o and --fast are for a run without a sound card; not used here")
        loop = app.play(audio, setup)
        if args.json:
            emit(dict(loop.stats.summary(loop.chain), played_s=loop.frames / audio.rate),
                 True, [])
        return
    if args.output == DEFAULT_OUTPUT:
        os.makedirs(os.path.dirname(DEFAULT_OUTPUT), exist_ok=True)
    check_output(args.output, force=True)         # its folder; the file is a scratch one
    r = app.play_clip(audio, setup, models.demo_clip(), args.output, fast=args.fast)
    kept = f" (the first {r['recorded_s']:.0f} s)" if r["recorded_s"] < r["played_s"] - 1 \
        else ""
    emit(r, args.json, [
        f"pedal run: played {r['played_s']:.1f} s (the {r['clip_s']:.1f} s clip, looped) in "
        f"{r['period_frames']}-frame periods with {r['model']}; {r['xruns']} xruns; load "
        f"median {r['load_pct_median']:.1f}%, p99 {r['load_pct_p99']:.1f}%; output: "
        f"{r['output']}{kept}"])


def cmd_latency(args) -> None:
    from ..box import app
    from ..dsp.chain import Chain
    from ..io import latency
    in_range("--seconds", args.seconds, 0.1, 3600, "s")
    cfg = load_config(find_config(args.config))
    audio = audio_config(args, cfg["audio"])
    realtime = not args.no_realtime
    if not args.sweep:
        r = latency.measure(audio, log=app.log, realtime=realtime)
        emit({"round_trip_frames": r.round_trip_frames, "round_trip_ms": r.round_trip_ms,
              "buffering_frames": r.buffering_frames, "converter_frames": r.converter_frames,
              "compute_ms": r.compute_ms}, args.json, r.lines)
        return
    model = args.model or cfg["pedal"].get("model") or models.default_model()

    def make_chain(c):
        chain = Chain()
        chain.reset(c.rate, c.period_frames)
        chain.load_now(model)
        return chain

    rows, best = latency.sweep(audio, make_chain, args.seconds, log=app.log, realtime=realtime)
    emit({"rows": rows, "recommended": best}, args.json, [
        f"recommended: {best['period_frames']} frames x {best['periods']} periods "
        f"({best['latency_ms']:.2f} ms of buffering, no xruns in {args.seconds:g} s)" if best
        else "no setting held without xruns; check the CPU governor and other load"])
