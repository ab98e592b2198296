"""The composition root: the running pedal built from its parts and wired together.

    chain (pedal.dsp) + loader thread
    audio loop on the ALSA device (pedal.io), in its own real-time thread
    Pedal facade <- control socket, GPIO controls, MIDI, presets and last state
    systemd: READY once audio flows, WATCHDOG while it keeps flowing

Without a sound card, play_clip() runs the same pedal on the file-backed ALSA device, in
real time, the bundled clip looped as its guitar.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading

from ..dsp.chain import Chain
from ..dsp.loader import Loader
from ..errors import PedalError
from ..io.audiofile import read_audio, resample, to_mono
from ..io.filedevice import RECORD_LIMIT_S, FileDevice
from ..io.loop import AudioConfig, AudioLoop, AudioThreadError
from ..io.stats import format_line
from . import sdnotify
from .control import ControlServer, default_socket_path
from .pedal import Pedal
from .presets import Presets


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Setup:
    """What the pedal plays and how it is reached: everything `pedal run` decides before the
    audio starts."""
    model: str
    ir: str | None = None
    params: dict = dataclasses.field(default_factory=dict)
    input_level_dbu: float | None = None   # the interface's analog level at 0 dBFS
    restore: bool = False                  # apply the last state saved
    keep_state: bool = True                # save the last state as it changes
    gpio: dict | None = None               # the config's [gpio] table
    midi: dict = dataclasses.field(default_factory=dict)   # the config's [midi] table
    socket: str | None = None              # control socket path; "none": no socket
    state_dir: str | None = None
    realtime: bool = True
    paced: bool = False                    # the loop keeps time (a device without a clock)
    stats: bool = False                    # print statistics once a second
    seconds: float | None = None           # stop after this long
    quiet: bool = False                    # no notes, warnings only
    verbose: bool = False                  # also each MIDI message and what it did


def play(audio: AudioConfig, setup: Setup, max_frames: int | None = None) -> AudioLoop:
    """Run the pedal until Ctrl-C, SIGTERM, `setup.seconds` or `max_frames`; returns the loop
    (its statistics) once the audio thread has stopped."""
    note = (lambda message: None) if setup.quiet else log
    chain = Chain(interface_input_dbu=setup.input_level_dbu)
    chain.reset(audio.rate, audio.period_frames)
    chain.load_now(setup.model, setup.ir)
    for name, value in setup.params.items():
        chain.set_param(name, value)
    loop = AudioLoop(audio, chain, log=log, realtime=setup.realtime, paced=setup.paced)
    presets = Presets(setup.state_dir, log=log)
    pedal = Pedal(chain, Loader(chain, report=lambda kind, ok, msg: log(msg)), presets,
                  loop.stats, log=log)
    pedal.model_path, pedal.ir_path = setup.model, setup.ir
    pedal.keeps_state = setup.keep_state
    if setup.restore:
        pedal.restore_last()
    if setup.seconds:
        max_frames = int(setup.seconds * audio.rate)
    controls = midi = control = None
    try:
        control = ControlServer(pedal, setup.socket, log=note) \
            if setup.socket != "none" else None
        controls = _gpio_controls(pedal, setup.gpio) if setup.gpio else None
        pedal.midi = midi = _midi_input(pedal, setup.midi, presets.folder, setup.verbose)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: loop.stop())
        if setup.stats:
            threading.Thread(target=_print_stats, args=(loop, chain), daemon=True).start()
        size = chain.model.current.note if chain.model.current else ""
        note(f"pedal run: {audio.describe()}; model {chain.model_name}"
             + (f" ({size})" if size else "") + (f", IR {chain.ir_name}" if chain.ir_name else ""))
        thread = threading.Thread(target=_run_loop, args=(loop, max_frames), name="pedal-audio")
        thread.start()
        _supervise(thread, loop, pedal)
    finally:
        for part in (midi, controls):
            if part is not None:
                part.close()
        if control is not None:
            control.stop()
        pedal.flush()
    if loop.error is not None:
        raise loop.error
    s = loop.stats.summary(chain)
    note(f"pedal run: stopped after {loop.frames / audio.rate:.1f} s; {s['xruns']} xruns; "
         f"load median {s['load_pct_median']:.1f}%, p99 {s['load_pct_p99']:.1f}%, max "
         f"{s['compute_us_max']:.0f} us of a {s['period_us']:.0f} us period")
    return loop


def play_clip(audio: AudioConfig, setup: Setup, clip_path: str, output: str,
              fast: bool = False) -> dict:
    """The pedal on the file-backed ALSA device, the clip at `clip_path` looped as its
    guitar, in real time (`fast`: as fast as it goes), with its control socket, until
    Ctrl-C or `setup.seconds`. What it played goes to `output` (a WAV, the first
    RECORD_LIMIT_S). Returns the summary."""
    data, rate = read_audio(clip_path)
    clip = to_mono(data, clip_path)
    if rate != audio.rate:
        clip = resample(clip, rate, audio.rate)
    if not setup.quiet:
        pace = "as fast as it goes" if fast else "in real time"
        until = f"for {setup.seconds:g} s" if setup.seconds else "until Ctrl-C"
        log(f"pedal run: no sound card here; playing the bundled clip "
            f"({len(clip) / audio.rate:.1f} s, looped) through the pedal's file-backed ALSA "
            f"device, {pace}, {until}")
    audio = dataclasses.replace(audio, capture="pedal_file_in", playback="pedal_file_out",
                                format="FLOAT_LE", in_channels=1, out_channels=1,
                                input_channel=0)
    # a pedal to try: its socket where `pedal ctl` looks, MIDI as configured; no GPIO, and
    # the last state of the pedal on this machine neither restored nor replaced
    setup = dataclasses.replace(setup, socket=setup.socket or default_socket_path(),
                                restore=False, keep_state=False, gpio=None, input_level_dbu=None,
                                paced=not fast)
    prime = audio.periods * audio.period_frames
    with FileDevice(clip, loop=True, record=output, rate=audio.rate, skip_frames=prime,
                    keep_frames=int(RECORD_LIMIT_S * audio.rate)) as dev:
        loop = play(audio, setup)
        dev.finish()
    s = loop.stats.summary(loop.chain)
    played_s = loop.frames / audio.rate
    recorded_s = dev.kept_frames / audio.rate
    return {"played_s": played_s, "clip_s": len(clip) / audio.rate,
            "period_frames": audio.period_frames, "model": os.path.basename(setup.model),
            "xruns": s["xruns"], "load_pct_median": s["load_pct_median"],
            "load_pct_p99": s["load_pct_p99"], "out_peak_dbfs": s["out_peak_dbfs"],
            "output": os.path.abspath(output), "recorded_s": recorded_s}


def _supervise(thread: threading.Thread, loop: AudioLoop, pedal: Pedal) -> None:
    """Wait for the audio thread; tell systemd when audio flows and while it keeps flowing;
    have the loader repair a stage that went non-finite."""
    last = [-1]

    def healthy():
        moved = loop.frames != last[0]
        last[0] = loop.frames
        return moved and loop.running.is_set()

    watchdog = sdnotify.Watchdog(healthy)
    watchdog.start()
    announced = False
    while thread.is_alive():
        thread.join(0.2)
        if pedal.chain.needs_repair():
            pedal.loader.repair()
        if not announced and loop.running.is_set():
            sdnotify.ready()
            announced = True
    sdnotify.stopping()
    watchdog.stop()


def _gpio_controls(pedal: Pedal, section: dict):
    from .gpio import Controls  # gpiozero: the device install only
    return Controls(pedal, section, log=log)


def _midi_input(pedal: Pedal, section: dict, state_dir: str, verbose: bool):
    """The MIDI reader of the [midi] table (on every port unless it says otherwise); without
    mido installed, MIDI is off with a note, unless the table asks for it."""
    from .midi import MidiInput
    try:
        return MidiInput(pedal, section, state_dir, log=log, verbose=verbose)
    except ImportError as e:
        if section:
            raise PedalError("midi", f"needs mido (pip install mido): {e}") from None
        log("midi: off (mido is not installed: pip install mido)")
        return None


def _run_loop(loop: AudioLoop, max_frames: int | None) -> None:
    loop.error = None
    try:
        loop.run(max_frames)
    except PedalError as e:
        loop.error = e
    except Exception as e:          # a bug: the process must end non-zero for systemd
        log(f"audio thread: {type(e).__name__}: {e}")
        loop.error = AudioThreadError("audio", f"the audio thread stopped ({type(e).__name__}:"
                                               f" {e})")


def _print_stats(loop: AudioLoop, chain: Chain) -> None:
    while not loop.stopping.wait(1.0):
        if loop.stats.count:
            print(format_line(loop.stats.summary(chain)), file=sys.stderr, flush=True)
