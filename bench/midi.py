"""What MIDI control costs: the byte stream's decoding speed, and the time from a CC's bytes
arriving at the port to the parameter set in the chain (through the reader thread, the same
path as a rawmidi node, a named pipe standing in for it). Writes its section of
BENCHMARKS.md.

    python bench/midi.py
"""
import os
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import replace_section  # noqa: E402

from pedal.box.midi import MidiInput, MidiStream  # noqa: E402
from pedal.box.pedal import Pedal  # noqa: E402
from pedal.box.presets import Presets  # noqa: E402
from pedal.dsp.chain import Chain  # noqa: E402
from pedal.dsp.loader import Loader  # noqa: E402

DIN_BYTES_PER_S = 31250 / 10      # a 5-pin MIDI cable at full load
LATENCY_MESSAGES = 400


def sweep_stream(messages):
    """A knob swept on channel 1 with running status, a MIDI clock byte every 8 bytes."""
    body = bytearray([0xB0])
    for i in range(messages):
        body += bytes([7, i % 128])
    out = bytearray()
    for i in range(0, len(body), 8):
        out += body[i:i + 8] + b"\xf8"
    return bytes(out)


def throughput():
    """(bytes per second, microseconds per message), medians of 5 runs."""
    data = sweep_stream(50_000)
    runs = []
    for _ in range(5):
        stream = MidiStream()
        t0 = time.perf_counter()
        for i in range(0, len(data), 4096):
            stream.feed(data[i:i + 4096])
        runs.append(time.perf_counter() - t0)
    seconds = float(np.median(runs))
    decode = MidiStream()._decode                 # a message seen for the first time: mido
    t0 = time.perf_counter()
    for i in range(20_000):
        decode([0xB0 | i % 16, i % 120 + 1, i % 128])
    first = (time.perf_counter() - t0) / 20_000 * 1e6
    return len(data) / seconds, seconds / stream.messages * 1e6, first


def latency():
    folder = tempfile.mkdtemp()
    fifo = os.path.join(folder, "midiC0D0")
    os.mkfifo(fifo)
    chain = Chain()
    chain.reset(48000, 64)
    pedal = Pedal(chain, Loader(chain), Presets(os.path.join(folder, "state")),
                  log=lambda m: None)
    seen = threading.Event()
    arrived = []
    set_param = pedal.set_param

    def timed(name, value):
        v = set_param(name, value)
        arrived.append(time.perf_counter())
        seen.set()
        return v
    pedal.set_param = timed
    midi = MidiInput(pedal, {"device": fifo, "cc": [{"cc": 7, "param": "bass_db"}]},
                     os.path.join(folder, "state"), log=lambda m: None)
    deadline = time.monotonic() + 10
    while not midi.ports and time.monotonic() < deadline:
        time.sleep(0.01)
    delays = []
    with open(fifo, "wb", buffering=0) as w:
        for i in range(LATENCY_MESSAGES):
            seen.clear()
            t0 = time.perf_counter()
            w.write(bytes([0xB0, 7, i % 128]))
            if not seen.wait(2):
                raise SystemExit("the reader did not answer")
            delays.append((arrived[-1] - t0) * 1e6)
            time.sleep(0.002)
    midi.close()
    return np.array(delays)


def main():
    rate, per_message, first = throughput()
    delays = latency()
    share = DIN_BYTES_PER_S / rate * 100
    load = os.getloadavg()[0]
    lines = [
        f"On this machine (x86-64, {os.cpu_count()} cores, load average {load:.1f} from other "
        f"work while it ran).",
        "",
        f"Decoding (pedal.box.midi.MidiStream: our framing, mido's Message.from_bytes, each "
        f"distinct message decoded once and reused): **{per_message:.1f} us per message**, "
        f"{rate / 1e3:.0f} kB/s of a knob swept up and down (running status, a clock byte "
        f"every 8 bytes; median of 5 runs): a 5-pin MIDI cable at full load (3125 bytes/s) "
        f"would cost {share:.1f}% of one core. A message seen for the first time costs "
        f"{first:.1f} us (mido builds it).",
        "",
        f"A CC's bytes written to the port (a named pipe, read by the reader thread as a "
        f"rawmidi node is) to the chain's parameter set, {LATENCY_MESSAGES} messages: "
        f"**median {np.median(delays):.0f} us, p99 {np.percentile(delays, 99):.0f} us, max "
        f"{delays.max():.0f} us** (no audio running; the chain applies it at its next "
        f"period, 1.3 ms at 64 frames, smoothed over 30 ms).",
    ]
    print("\n".join(lines))
    replace_section("midi", "MIDI control", "python bench/midi.py", lines)


if __name__ == "__main__":
    main()
