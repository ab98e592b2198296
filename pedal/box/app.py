"""The composition root: the running pedal built from its parts and wired together.

    chain (pedal.dsp) + loader thread
    audio loop on the ALSA device (pedal.io), in its own real-time thread
    Pedal facade <- control socket, GPIO controls, presets and last state
    systemd: READY once audio flows, WATCHDOG while it keeps flowing

Without a sound card, play_clip() runs the same pedal on the file-backed ALSA device.
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
from ..io.audiofile import read_audio, to_mono, write_audio
from ..io.filedevice import FileDevice
from ..io.loop import AudioConfig, AudioLoop, AudioThreadError
from ..io.stats import format_line
from . import sdnotify
from .control import ControlServer
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
    gpio: dict | None = None               # the config's [gpio] table
    socket: str | None = None              # control socket path; "none": no socket
    state_dir: str | None = None
    realtime: bool = True
    stats: bool = False                    # print statistics once a second
    seconds: float | None = None           # stop after this long


def play(audio: AudioConfig, setup: Setup, max_frames: int | None = None) -> AudioLoop:
    """Run the pedal until Ctrl-C, SIGTERM, `setup.seconds` or `max_frames`; returns the loop
    (its statistics) once the audio thread has stopped."""
    chain = Chain(interface_input_dbu=setup.input_level_dbu)
    chain.reset(audio.rate, audio.period_frames)
    chain.load_now(setup.model, setup.ir)
    for name, value in setup.params.items():
        chain.set_param(name, value)
    loop = AudioLoop(audio, chain, log=log, realtime=setup.realtime)
    pedal = Pedal(chain, Loader(chain, report=lambda kind, ok, msg: log(msg)),
                  Presets(setup.state_dir, log=log), loop.stats, log=log)
    pedal.model_path, pedal.ir_path = setup.model, setup.ir
    if setup.restore:
        pedal.restore_last()
    control = ControlServer(pedal, setup.socket, log=log) if setup.socket != "none" else None
    controls = _gpio_controls(pedal, setup.gpio) if setup.gpio else None
    if setup.seconds:
        max_frames = int(setup.seconds * audio.rate)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.stop())
    if setup.stats:
        threading.Thread(target=_print_stats, args=(loop, chain), daemon=True).start()
    note = chain.model.current.note if chain.model.current else ""
    log(f"pedal run: {audio.describe()}; model {chain.model_name}"
        + (f" ({note})" if note else "") + (f", IR {chain.ir_name}" if chain.ir_name else ""))
    thread = threading.Thread(target=_run_loop, args=(loop, max_frames), name="pedal-audio")
    thread.start()
    try:
        _supervise(thread, loop, pedal)
    finally:
        if controls is not None:
            controls.close()
        if control is not None:
            control.stop()
        pedal.flush()
    if loop.error is not None:
        raise loop.error
    s = loop.stats.summary(chain)
    log(f"pedal run: stopped after {loop.frames / audio.rate:.1f} s; {s['xruns']} xruns; "
        f"load median {s['load_pct_median']:.1f}%, p99 {s['load_pct_p99']:.1f}%, max "
        f"{s['compute_us_max']:.0f} us of a {s['period_us']:.0f} us period")
    return loop


def play_clip(audio: AudioConfig, setup: Setup, clip_path: str, out_dir: str) -> str:
    """The pedal on the file-backed ALSA device: `clip_path` in, the pedal's output written
    to out_dir/pedal-run.wav (whose path is returned)."""
    data, rate = read_audio(clip_path)
    clip = to_mono(data, clip_path)
    log(f"pedal run: no sound card here; playing the bundled clip ({len(clip) / rate:.1f} s) "
        f"through the pedal's file-backed ALSA device")
    audio = dataclasses.replace(audio, capture="pedal_file_in", playback="pedal_file_out",
                                format="FLOAT_LE", in_channels=1, out_channels=1,
                                input_channel=0)
    # a clip, not a pedal to tune: no socket unless asked, no saved state, no hardware
    setup = dataclasses.replace(setup, socket=setup.socket or "none", restore=False, gpio=None,
                                input_level_dbu=None)
    with FileDevice(clip) as dev:
        loop = play(audio, setup, max_frames=len(clip))
        played = dev.played()
    prime = audio.periods * audio.period_frames
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "pedal-run.wav")
    write_audio(dst, played[prime:prime + len(clip)], rate)
    print(f"pedal run: played {len(clip) / rate:.1f} s in {audio.period_frames}-frame "
          f"periods with {os.path.basename(setup.model)}; {loop.stats.xruns} xruns; "
          f"output: {os.path.abspath(dst)}")
    return dst


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
