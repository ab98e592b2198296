"""`pedal <verb>`: the command line on the pedal (and the desktop).

User errors print one line on stderr and exit with status 2; no tracebacks.
"""
import argparse
import json
import os
import sys
import time

from . import __version__
from .errors import PedalError

EXIT_USAGE = 2


def _progress(total_frames, rate):
    """A progress bar when the job is long enough to wait for (and stderr is a terminal)."""
    from tqdm import tqdm
    if total_frames < 20 * rate:
        return None
    return tqdm(total=total_frames, unit="frames", unit_scale=True, file=sys.stderr,
                disable=None, leave=False)


def model_card(model, path=None):
    """The model card as text lines: what it is, how good, how costly."""
    from .arch import get
    arch = get(model.architecture)
    lines = []
    name = model.metadata.get("name")
    if path:
        lines.append(f"file:          {path}")
    if name:
        lines.append(f"name:          {name}")
    lines.append(f"architecture:  {arch.describe(model.config)}")
    note = " (assumed: the source file does not say)" \
        if model.provenance.get("sample_rate_assumed") else ""
    lines.append(f"sample rate:   {model.sample_rate} Hz{note}")
    lines.append(f"weights:       {model.weight_count} ({model.quantization})")
    if path and os.path.exists(path):
        lines.append(f"file size:     {os.path.getsize(path)} bytes")
    macs = arch.macs_per_sample(model.config)
    lines.append(f"cost:          {macs} multiply-adds per sample, "
                 f"{macs * model.sample_rate / 1e6:.1f} M/s at {model.sample_rate} Hz")
    for k in model.knobs:
        lines.append(f"knob:          {k.name} {k.minimum:g}..{k.maximum:g} (default {k.default:g})")
    for key, label in (("loudness_db", "loudness dB"), ("input_level_dbu", "input dBu"),
                       ("output_level_dbu", "output dBu")):
        if key in model.calibration:
            lines.append(f"{label + ':':15}{model.calibration[key]:.2f}")
    for key, value in model.esr.items():
        lines.append(f"{'ESR ' + key + ':':15}{value:.3g}")
    for key in ("gear_make", "gear_model", "gear_settings", "gear_type", "tone_type",
                "modeled_by"):
        if key in model.metadata:
            lines.append(f"{key.replace('_', ' ') + ':':15}{model.metadata[key]}")
    for key, value in model.provenance.items():
        if key != "sample_rate_assumed":
            lines.append(f"{key.replace('_', ' ') + ':':15}{value}")
    return lines


def cmd_info(args):
    from .formats import load_model
    model = load_model(args.model)
    if args.json:
        from .arch import get
        print(json.dumps({"architecture": model.architecture, "config": model.config,
                          "sample_rate": model.sample_rate, "weights": model.weight_count,
                          "quantization": model.quantization,
                          "knobs": [k.to_json() for k in model.knobs],
                          "calibration": model.calibration, "esr": model.esr,
                          "metadata": model.metadata, "provenance": model.provenance,
                          "macs_per_sample": get(model.architecture).macs_per_sample(
                              model.config)}, indent=2))
    else:
        print("\n".join(model_card(model, args.model)))


def cmd_render(args):
    from .formats import load_model
    from .render import render_file
    model = load_model(args.model)
    _check_output(args.output)
    t0 = time.perf_counter()
    knobs = _knob_values(model, args.knob)
    make_chain = None
    if args.chain:
        def make_chain(rate, block):
            from .engine import Chain
            chain = Chain()
            chain.reset(rate, block)
            chain.load_now(args.model, args.ir)
            for k, value in zip(model.knobs, knobs):
                chain.set_param(k.name, value)
            for name, value in _pairs(args.param, "--param").items():
                chain.set_param(name, value)
            return chain
    summary = render_file(model, args.input, args.output, block=args.block,
                          channel=args.channel, allow_resample=not args.no_resample,
                          knobs=knobs, say=lambda m: print(m, file=sys.stderr),
                          progress_factory=lambda n: _progress(n, model.sample_rate),
                          make_chain=make_chain)
    elapsed = time.perf_counter() - t0
    print(f"rendered {summary['seconds']:.2f} s of {args.input} through {args.model} in "
          f"blocks of {summary['block']} -> {args.output} (peak {summary['peak_dbfs']:.1f} dBFS"
          f"{', %d samples clipped' % summary['clipped'] if summary['clipped'] else ''}; "
          f"{summary['seconds'] / elapsed:.0f}x real time)")


def cmd_bench(args):
    from .bench import bench_model
    from .formats import load_model
    model = load_model(args.model)
    if not 1 <= args.block <= 4096:
        raise PedalError("--block", f"{args.block} frames; use 1..4096")
    if not 0.1 <= args.seconds <= 3600:
        raise PedalError("--seconds", f"{args.seconds}; use 0.1..3600")
    r = bench_model(model, args.block, args.seconds)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{args.model}: {r['seconds']:.1f} s at {r['rate']} Hz in blocks of {r['block']}, "
          f"one thread")
    print(f"  real-time factor  {r['realtime_factor']:.1f}x")
    print(f"  per block (us)    median {r['block_us_median']:.1f}  p99 {r['block_us_p99']:.1f}  "
          f"max {r['block_us_max']:.1f}  (period {r['period_us']:.0f} us, p99 load "
          f"{r['p99_load_pct']:.1f}%)")
    print(f"  arithmetic        {r['macs_per_sample']} MACs/sample, "
          f"{r['gmacs_per_second']:.2f} GMAC/s achieved")


def cmd_demo(args):
    """The built-in default job: the demo clip through the default model."""
    from .formats import load_model
    from .render import render_file
    from . import models
    model_path, clip = models.default_model(), models.demo_clip()
    out_dir = args.out
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "demo-rendered.wav")
    model = load_model(model_path)
    t0 = time.perf_counter()
    s = render_file(model, clip, dst, block=64, say=lambda m: print(m, file=sys.stderr))
    elapsed = time.perf_counter() - t0
    print(f"pedal demo: played the bundled clip ({s['seconds']:.1f} s guitar, {s['rate']} Hz)")
    print(f"  through the default model {os.path.basename(model_path)}: "
          f"{model.metadata.get('name', model.architecture)}")
    print(f"  in blocks of 64 frames, as the pedal streams it, {s['seconds'] / elapsed:.0f}x "
          f"faster than real time on one core")
    print(f"  output: {os.path.abspath(dst)} (peak {s['peak_dbfs']:.1f} dBFS)")


def cmd_run(args):
    """The real-time pedal. Without a sound card it plays the bundled clip through the
    file-backed ALSA device and says where the result went."""
    from . import models
    from .config import find_config, load_config
    from .filedevice import FileDevice, has_sound_card
    cfg = load_config(find_config(args.config))
    audio_cfg = audio_config(args, cfg["audio"])
    model = args.model or cfg["pedal"].get("model") or models.default_model()
    ir = args.ir or cfg["pedal"].get("ir")
    params = dict(cfg["params"])
    params.update(_pairs(args.param, "--param"))
    explicit_device = args.device or args.capture or args.playback or \
        any(k in cfg["audio"] for k in ("device", "capture", "playback"))
    restore = not (args.model or args.ir or args.param)
    if explicit_device or has_sound_card():
        return _play(audio_cfg, model, ir, params, args, cfg["audio"].get("input_level_dbu"),
                     restore=restore, gpio=cfg.get("gpio"))
    from .audio import read_audio, to_mono, write_audio
    clip_path = models.demo_clip()
    data, rate = read_audio(clip_path)
    clip = to_mono(data, clip_path)
    print(f"pedal run: no sound card here; playing the bundled clip ({len(clip) / rate:.1f} s) "
          f"through the pedal's file-backed ALSA device", file=sys.stderr)
    audio_cfg.capture, audio_cfg.playback, audio_cfg.format = \
        "pedal_file_in", "pedal_file_out", "FLOAT_LE"
    audio_cfg.in_channels = audio_cfg.out_channels = 1
    audio_cfg.input_channel = 0
    args.socket = args.socket or "none"         # a clip, not a pedal to tune
    with FileDevice(clip) as dev:
        loop = _play(audio_cfg, model, ir, params, args, None, max_frames=len(clip))
        played = dev.played()
    prime = audio_cfg.periods * audio_cfg.period_frames
    os.makedirs(args.out, exist_ok=True)
    dst = os.path.join(args.out, "pedal-run.wav")
    write_audio(dst, played[prime:prime + len(clip)], rate)
    print(f"pedal run: played {len(clip) / rate:.1f} s in {loop.config.period_frames}-frame "
          f"periods with {os.path.basename(model)}; {loop.stats.xruns} xruns; "
          f"output: {os.path.abspath(dst)}")


def _play(audio_cfg, model, ir, params, args, input_dbu, max_frames=None, restore=False,
          gpio=None):
    """Run the pedal: chain, loader, presets, control socket, (GPIO), audio loop."""
    import signal
    import threading
    from .app import Pedal
    from .control import ControlServer
    from .engine import Chain, Loader
    from .loop import AudioLoop
    from .presets import Presets
    from .stats import format_line
    log = lambda m: print(m, file=sys.stderr, flush=True)
    chain = Chain(interface_input_dbu=input_dbu)
    chain.reset(audio_cfg.rate, audio_cfg.period_frames)
    chain.load_now(model, ir)
    for name, value in params.items():
        chain.set_param(name, value)
    loop = AudioLoop(audio_cfg, chain, log=log, realtime=not args.no_realtime)
    pedal = Pedal(chain, Loader(chain, report=lambda kind, ok, msg: log(msg)),
                  Presets(getattr(args, "state_dir", None), log=log), loop.stats, log=log)
    pedal.model_path, pedal.ir_path = model, ir
    if restore:
        pedal.restore_last()
    control = None
    if getattr(args, "socket", None) != "none":
        control = ControlServer(pedal, getattr(args, "socket", None), log=log)
    controls = _gpio_controls(pedal, gpio, log) if gpio else None
    if args.seconds:
        max_frames = int(args.seconds * audio_cfg.rate)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.stop())
    if args.stats:
        threading.Thread(target=_print_stats, args=(loop, chain, format_line),
                         daemon=True).start()
    log(f"pedal run: {audio_cfg.describe()}; model {chain.model_name}"
        + (f", IR {chain.ir_name}" if chain.ir_name else ""))
    audio = threading.Thread(target=_run_loop, args=(loop, max_frames), name="pedal-audio")
    audio.start()
    try:
        _supervise(audio, loop)
    finally:
        if controls is not None:
            controls.close()
        if control is not None:
            control.stop()
        pedal.flush()
    if loop.error is not None:
        raise loop.error
    s = loop.stats.summary(chain)
    log(f"pedal run: stopped after {loop.frames / audio_cfg.rate:.1f} s; {s['xruns']} xruns; "
        f"load median {s['load_pct_median']:.1f}%, p99 {s['load_pct_p99']:.1f}%, max "
        f"{s['compute_us_max']:.0f} us of a {s['period_us']:.0f} us period")
    return loop


def _supervise(audio, loop):
    """Wait for the audio thread; tell systemd when audio flows and while it keeps flowing."""
    from . import sdnotify
    last = [-1]

    def healthy():
        moved = loop.frames != last[0]
        last[0] = loop.frames
        return moved and loop.running.is_set()

    watchdog = sdnotify.Watchdog(healthy)
    watchdog.start()
    announced = False
    while audio.is_alive():
        audio.join(0.2)
        if not announced and loop.running.is_set():
            sdnotify.ready()
            announced = True
    sdnotify.stopping()
    watchdog.stop()


def _gpio_controls(pedal, section, log):
    from .gpio import Controls
    return Controls(pedal, section, log=log)


def cmd_latency(args):
    from . import latency, models
    from .config import find_config, load_config
    cfg = load_config(find_config(args.config))
    audio_cfg = audio_config(args, cfg["audio"])
    log = lambda m: print(m, file=sys.stderr, flush=True)
    realtime = not args.no_realtime
    if not args.sweep:
        r = latency.measure(audio_cfg, log=log, realtime=realtime)
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
        from .engine import Chain
        chain = Chain()
        chain.reset(c.rate, c.period_frames)
        chain.load_now(model)
        return chain

    rows, best = latency.sweep(audio_cfg, make_chain, args.seconds, log=log, realtime=realtime)
    if args.json:
        print(json.dumps({"rows": rows, "recommended": best}))
    elif best:
        print(f"recommended: {best['period_frames']} frames x {best['periods']} periods "
              f"({best['latency_ms']:.2f} ms of buffering, no xruns in {args.seconds:g} s)")
    else:
        print("no setting held without xruns; check the CPU governor and other load")


def device_arguments(s, rate_default="48000", input_is="the guitar"):
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


CTL_VERBS = {"status": [], "params": [], "presets": [], "get": ["name"],
             "set": ["name", "value"], "bypass": [], "load-preset": ["name"],
             "save-preset": ["name"], "delete-preset": ["name"], "load-model": ["path"],
             "load-ir": ["path"], "rescan": []}


def cmd_ctl(args):
    """One request to the running pedal over its control socket."""
    from .control import default_socket_path, request
    verb, rest = args.verb_ctl, args.args
    if verb not in CTL_VERBS:
        raise PedalError("pedal ctl", f"unknown command {verb!r} (known: {', '.join(CTL_VERBS)})")
    req = {"cmd": verb}
    if verb == "bypass":
        if rest and rest[0] not in ("on", "off", "toggle"):
            raise PedalError("pedal ctl bypass", f"{rest[0]!r}: use on, off or toggle")
        if rest and rest[0] != "toggle":
            req["on"] = rest[0] == "on"
    else:
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
    result = request(args.socket or default_socket_path(), req)
    if args.json or not isinstance(result, dict):
        print(json.dumps(result) if args.json else result)
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


def cmd_tune(args):
    from . import tune
    from .control import default_socket_path, request
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


def _run_loop(loop, max_frames):
    loop.error = None
    try:
        loop.run(max_frames)
    except PedalError as e:
        loop.error = e


def _print_stats(loop, chain, format_line):
    while not loop.stopping.wait(1.0):
        if loop.stats.count:
            print(format_line(loop.stats.summary(chain)), file=sys.stderr, flush=True)


def audio_config(args, section):
    from .loop import AudioConfig
    c = AudioConfig()
    for key in ("capture", "playback", "rate", "period_frames", "periods", "format",
                "in_channels", "input_channel", "out_channels"):
        if key in section:
            setattr(c, key, section[key])
    if "device" in section:
        c.capture = c.playback = section["device"]
    for key, attr in (("device", None), ("capture", "capture"), ("playback", "playback"),
                      ("rate", "rate"), ("period", "period_frames"), ("periods", "periods"),
                      ("format", "format"), ("in_channels", "in_channels"),
                      ("input_channel", "input_channel"), ("out_channels", "out_channels")):
        value = getattr(args, key)
        if value is not None:
            if attr is None:
                c.capture = c.playback = value
            else:
                setattr(c, attr, value)
    from .alsa_io import format_name
    c.format = format_name(c.format)          # refuses unknown formats by name
    return c


def _pairs(items, flag):
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise PedalError(flag, f"{item!r}: expected NAME=NUMBER") from None
    return out


def _check_output(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PedalError(path, "the output folder does not exist")


def _knob_values(model, items):
    values = [k.default for k in model.knobs]
    for item in items or []:
        name, _, value = item.partition("=")
        names = [k.name for k in model.knobs]
        if name not in names:
            raise PedalError("--knob", f"{name!r} is not a knob of this model "
                                       f"(knobs: {', '.join(names) or 'none'})")
        k = model.knobs[names.index(name)]
        try:
            v = float(value)
        except ValueError:
            raise PedalError("--knob", f"{item!r}: expected NAME=NUMBER") from None
        if not k.minimum <= v <= k.maximum:
            raise PedalError("--knob", f"{name}={v} is outside {k.minimum:g}..{k.maximum:g}")
        values[names.index(name)] = v
    return values


def parser():
    p = argparse.ArgumentParser(prog="pedal", description="Neural guitar pedal")
    p.add_argument("--version", action="version", version=f"pedal {__version__}")
    sub = p.add_subparsers(dest="verb", required=True)

    s = sub.add_parser("info", help="print a model's card")
    s.add_argument("model")
    s.add_argument("--json", action="store_true", help="machine-readable")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("render", help="stream an audio file through a model offline")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64, help="frames per block (default 64)")
    s.add_argument("--channel", type=int, help="use this input channel instead of the mix")
    s.add_argument("--no-resample", action="store_true",
                   help="refuse a file whose rate differs from the model's")
    s.add_argument("--knob", action="append", metavar="NAME=VALUE",
                   help="set a knob of a conditioned model")
    s.add_argument("--chain", action="store_true",
                   help="the pedal's whole chain (gain, gate, EQ, IR, level) as `pedal run` "
                        "plays it, not the model alone")
    s.add_argument("--ir", help="with --chain: cabinet impulse response")
    s.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="with --chain: a chain parameter")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("bench", help="time a model on one thread")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

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

    s = sub.add_parser("latency", help="measure the round trip (output looped to input)")
    device_arguments(s)
    s.add_argument("--sweep", action="store_true",
                   help="soak periods 32/64/128/256 x 2/3 and recommend the lowest that holds")
    s.add_argument("--seconds", type=float, default=10.0, help="soak per setting (--sweep)")
    s.add_argument("--model", "-m", help="model for the soak (default: the bundled default)")
    s.add_argument("--config", help="config file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_latency)

    s = sub.add_parser("demo", help="render the bundled clip through the default model")
    s.add_argument("--out", default="out", help="output folder (default ./out)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except PedalError as e:
        print(f"pedal: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
