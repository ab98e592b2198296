"""Verbs that play on an audio device: run (the pedal) and latency."""
from __future__ import annotations

import json

from .. import models
from ..box import app
from ..box.config import find_config, load_config
from ..dsp.chain import Chain
from ..dsp.params import in_range
from ..io import latency
from ..io.filedevice import has_sound_card
from .common import audio_config, device_arguments, pairs


def add_parsers(sub) -> None:
    s = sub.add_parser("run", help="play the pedal in real time on an ALSA device")
    s.add_argument("--model", "-m", help="model file (default: the bundled default model)")
    s.add_argument("--ir", help="cabinet impulse response (WAV/FLAC)")
    device_arguments(s)
    s.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a chain parameter or model knob, e.g. output_level_db=-6")
    s.add_argument("--config", help="config file (default ~/.config/pedal/pedal.toml, "
                                    "/etc/pedal/pedal.toml)")
    s.add_argument("--stats", action="store_true", help="print statistics once a second")
    s.add_argument("--seconds", type=float, help="stop after this long")
    s.add_argument("--out", default="out", help="where the no-sound-card run writes its result")
    s.add_argument("--socket", help="control socket path ('none': no socket)")
    s.add_argument("--state-dir", help="presets and last state (default $STATE_DIRECTORY or "
                                       "~/.local/state/pedal)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("latency", help="measure the round trip (output looped to input)")
    device_arguments(s)
    s.add_argument("--sweep", action="store_true",
                   help="soak periods 32/64/128/256 x 2/3 and recommend the lowest that holds")
    s.add_argument("--seconds", type=float, default=10.0, help="soak per setting (--sweep)")
    s.add_argument("--model", "-m", help="model for the soak (default: the bundled default)")
    s.add_argument("--config", help="config file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_latency)


def cmd_run(args) -> None:
    """The real-time pedal. Without a sound card it plays the bundled clip through the
    file-backed ALSA device and says where the result went."""
    if args.seconds is not None:
        in_range("--seconds", args.seconds, 0.001, 1e9, "s")
    cfg = load_config(find_config(args.config))
    audio = audio_config(args, cfg["audio"])
    params = dict(cfg["params"])
    params.update(pairs(args.param, "--param"))
    setup = app.Setup(
        model=args.model or cfg["pedal"].get("model") or models.default_model(),
        ir=args.ir or cfg["pedal"].get("ir"), params=params,
        input_level_dbu=cfg["audio"].get("input_level_dbu"),
        restore=not (args.model or args.ir or args.param), gpio=cfg.get("gpio"),
        socket=args.socket, state_dir=args.state_dir, realtime=not args.no_realtime,
        stats=args.stats, seconds=args.seconds)
    explicit_device = args.device or args.capture or args.playback or \
        any(k in cfg["audio"] for k in ("device", "capture", "playback"))
    if explicit_device or has_sound_card():
        app.play(audio, setup)
    else:
        app.play_clip(audio, setup, models.demo_clip(), args.out)


def cmd_latency(args) -> None:
    in_range("--seconds", args.seconds, 0.1, 3600, "s")
    cfg = load_config(find_config(args.config))
    audio = audio_config(args, cfg["audio"])
    realtime = not args.no_realtime
    if not args.sweep:
        r = latency.measure(audio, log=app.log, realtime=realtime)
        if args.json:
            print(json.dumps({"round_trip_frames": r.round_trip_frames,
                              "round_trip_ms": r.round_trip_ms,
                              "buffering_frames": r.buffering_frames,
                              "converter_frames": r.converter_frames,
                              "compute_ms": r.compute_ms}))
        else:
            print("\n".join(r.lines()))
        return
    model = args.model or cfg["pedal"].get("model") or models.default_model()

    def make_chain(c):
        chain = Chain()
        chain.reset(c.rate, c.period_frames)
        chain.load_now(model)
        return chain

    rows, best = latency.sweep(audio, make_chain, args.seconds, log=app.log, realtime=realtime)
    if args.json:
        print(json.dumps({"rows": rows, "recommended": best}))
    elif best:
        print(f"recommended: {best['period_frames']} frames x {best['periods']} periods "
              f"({best['latency_ms']:.2f} ms of buffering, no xruns in {args.seconds:g} s)")
    else:
        print("no setting held without xruns; check the CPU governor and other load")
