"""MIDI control (pedal.box.midi): the byte stream against mido's own encoding (running status,
real-time bytes inside messages, system exclusive, garbage, truncation), the bindings against
the taper formulas and the presets, bad [midi] tables, MIDI learn, and real byte streams
through a named pipe standing in for the rawmidi node of a running `pedal run`."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

mido = pytest.importorskip("mido", reason="mido is not installed")

from fuzzlog import EXAMPLES  # noqa: E402

from pedal.box.midi import MidiInput, MidiStream, parse_config  # noqa: E402
from pedal.errors import PedalError  # noqa: E402

FUZZ = settings(max_examples=EXAMPLES * 5, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


# -- the byte stream ---------------------------------------------------------------------------
def channel_messages():
    ch, data = st.integers(0, 15), st.integers(0, 127)
    return st.one_of(
        st.builds(lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v),
                  ch, data, data),
        st.builds(lambda c, n, v: mido.Message("note_off", channel=c, note=n, velocity=v),
                  ch, data, data),
        st.builds(lambda c, n, v: mido.Message("control_change", channel=c, control=n,
                                               value=v), ch, data, data),
        st.builds(lambda c, p: mido.Message("program_change", channel=c, program=p), ch, data),
        st.builds(lambda c, v: mido.Message("aftertouch", channel=c, value=v), ch, data),
        st.builds(lambda c, n, v: mido.Message("polytouch", channel=c, note=n, value=v),
                  ch, data, data),
        st.builds(lambda c, p: mido.Message("pitchwheel", channel=c, pitch=p), ch,
                  st.integers(-8192, 8191)))


def encode(messages, running, clocks, sysex):
    """The messages as a device would send them: mido's bytes, the status byte left out
    where running status allows it, real-time bytes inserted anywhere (inside messages
    too), system exclusive blocks between messages."""
    out, last = [], None
    for i, msg in enumerate(messages):
        if sysex[i % len(sysex)]:
            out += [0xF0] + [(i * 7 + k) % 128 for k in range(sysex[i % len(sysex)])] + [0xF7]
            last = None                 # system common ends running status
        b = msg.bytes()
        if running[i % len(running)] and b[0] == last:
            b = b[1:]
        last = msg.bytes()[0]
        out += b
    for pos in sorted(clocks, reverse=True):
        out.insert(pos % (len(out) + 1), 0xF8)
    return bytes(out)


@FUZZ
@given(messages=st.lists(channel_messages(), min_size=1, max_size=40),
       running=st.lists(st.booleans(), min_size=1, max_size=8),
       clocks=st.lists(st.integers(0, 10 ** 6), max_size=20),
       sysex=st.lists(st.sampled_from([0, 0, 0, 1, 5, 300]), min_size=1, max_size=5),
       cuts=st.lists(st.integers(1, 7), min_size=1, max_size=6))
def test_the_stream_decodes_what_mido_encoded(messages, running, clocks, sysex, cuts):
    data = encode(messages, running, clocks, sysex)
    stream, got, pos, i = MidiStream(), [], 0, 0
    while pos < len(data):                  # fed in arbitrary pieces, as reads return them
        n = cuts[i % len(cuts)]
        got += stream.feed(data[pos:pos + n])
        pos, i = pos + n, i + 1
    assert [m.bytes() for m in got] == [m.bytes() for m in messages]
    assert stream.dropped == 0


@FUZZ
@given(garbage=st.binary(max_size=300), cc=st.integers(1, 119), value=st.integers(0, 127))
def test_garbage_never_raises_and_the_next_message_is_read(garbage, cc, value):
    stream = MidiStream()
    stream.feed(garbage)
    # any status byte resyncs: an end of sysex, then a complete message
    got = stream.feed(bytes([0xF7, 0xB3, cc, value]))
    assert got and got[-1].bytes() == [0xB3, cc, value]


def test_truncated_messages_and_stray_bytes_are_counted_and_dropped():
    stream = MidiStream()
    got = stream.feed(bytes([0x12, 0x34,             # stray data bytes, no status yet
                             0x90, 60,                # note on cut short by...
                             0xB0, 7, 100,            # ...a complete CC
                             0xF4,                    # undefined status
                             0xF5, 0x01,              # undefined, then a stray byte
                             0xC0]))                  # program change, truncated at the end
    assert [m.bytes() for m in got] == [[0xB0, 7, 100]]
    assert stream.dropped == 2 + 2 + 1 + 1 + 1
    assert [m.bytes() for m in stream.feed(bytes([5]))] == [[0xC0, 5]]


def test_a_long_system_exclusive_is_skipped_without_storing_it():
    stream = MidiStream()
    stream.feed(bytes([0xF0]) + bytes(range(128)) * 8000)      # 1 MB, no end
    assert stream.pending == [] and stream.in_sysex
    assert [m.bytes() for m in stream.feed(bytes([0xF7, 0x90, 1, 2]))] == [[0x90, 1, 2]]


# -- bindings ----------------------------------------------------------------------------------
def reader(pedal, cfg, tmp_path, **kw):
    logs = []
    midi = MidiInput(pedal, cfg, str(tmp_path / "state"), log=logs.append, start=False, **kw)
    midi.logs = logs
    return midi


def send(midi, *messages):
    for msg in MidiStream().feed(bytes(messages)):
        midi.handle(msg)


def audio_taper(x):
    return (81.0 ** x - 1.0) / 80.0


@pytest.mark.parametrize("value", [0, 1, 64, 100, 127])
def test_a_cc_turns_a_parameter_through_its_taper(pedal, tmp_path, value):
    midi = reader(pedal, {"cc": [{"cc": 7, "param": "output_level_db", "taper": "log",
                                  "min": -40.0, "max": 6.0},
                                 {"cc": 8, "param": "drive", "min": 10.0, "max": 0.0}]},
                  tmp_path)
    send(midi, 0xB0, 7, value, 8, value)          # running status for the second CC
    assert pedal.chain.targets["output_level_db"] == pytest.approx(
        -40.0 + audio_taper(value / 127) * 46.0, abs=1e-9)
    assert pedal.get_params()["drive"] == pytest.approx(10.0 - value / 127 * 10.0, abs=1e-9)


def test_cc_ends_are_exactly_the_range_and_never_outside(pedal, tmp_path):
    midi = reader(pedal, {"cc": [{"cc": 20, "param": "input_gain_db", "taper": "antilog"},
                                 {"cc": 21, "param": "ir_mix"}]}, tmp_path)
    seen = set()
    for v in range(128):
        send(midi, 0xB0, 20, v, 21, v)
        gain, mix = pedal.chain.targets["input_gain_db"], pedal.chain.targets["ir_mix"]
        assert -24 <= gain <= 24 and 0 <= mix <= 1
        seen.add((v, gain, mix))
    assert (0, -24.0, 0.0) in seen and (127, 24.0, 1.0) in seen


def test_switches_notes_and_the_bypass_cc(pedal, tmp_path):
    for name in ("a", "b"):
        pedal.presets.save(name, pedal.state())
    midi = reader(pedal, {"cc": [{"cc": 64, "param": "bypass"}],
                          "switch": [{"action": "bypass", "note": 60},
                                     {"action": "next_preset", "cc": 80, "channel": 2}]},
                  tmp_path)
    send(midi, 0xB0, 64, 127)
    assert pedal.chain.bypassed
    send(midi, 0xB0, 64, 0)
    assert not pedal.chain.bypassed
    send(midi, 0x90, 60, 100, 0x80, 60, 0, 0x90, 60, 0)    # on, off, on with velocity 0
    assert pedal.chain.bypassed
    send(midi, 0xB0, 80, 127)                              # channel 1: not this switch
    assert pedal.preset is None
    send(midi, 0xB1, 80, 127, 80, 0, 80, 127)              # press, release, press
    assert pedal.preset == "b"


def test_program_change_loads_presets_by_number_and_bank(pedal, tmp_path):
    names = [f"p{i:03d}" for i in range(130)]
    for name in names:
        pedal.presets.save(name, pedal.state())
    midi = reader(pedal, {}, tmp_path)
    send(midi, 0xC0, 5)
    assert pedal.preset == "p005"
    send(midi, 0xB0, 0, 0, 32, 1, 0xC0, 1)                 # bank 1 (LSB): number 129
    assert pedal.preset == "p129"
    send(midi, 0xC0, 2)                                     # 130: there is none
    assert pedal.preset == "p129" and any("there are 130" in line for line in midi.logs)


def test_program_change_by_name_and_channel_filter(pedal, tmp_path):
    pedal.save_preset("clean")
    pedal.save_preset("lead")
    midi = reader(pedal, {"channel": 3, "program": [
        {"program": 4, "preset": "lead"}, {"program": 4, "bank": 2, "preset": "clean"}]},
        tmp_path)
    send(midi, 0xC0, 4)                                     # channel 1: not listened to
    assert pedal.preset == "lead"                            # (saved last)
    pedal.load_preset("clean")
    send(midi, 0xC2, 4)
    assert pedal.preset == "lead"
    send(midi, 0xB2, 0, 0, 32, 2, 0xC2, 4)
    assert pedal.preset == "clean"


@pytest.mark.parametrize("cfg,needle", [
    ({"switch": [{"action": "tap", "note": 1}]}, "nothing in the chain takes a tempo"),
    ({"switch": [{"action": "explode", "note": 1}]}, "expected one of bypass"),
    ({"switch": [{"action": "bypass"}]}, "one of note"),
    ({"cc": [{"cc": 0, "param": "bass_db"}]}, "select banks"),
    ({"cc": [{"cc": 7, "param": "bass_db", "max": 40.0}]}, "outside bass_db's range"),
    ({"cc": [{"cc": 7, "param": "bass_db", "taper": "s"}]}, "taper"),
    ({"cc": [{"cc": 7, "param": "bass_db"}, {"cc": 7, "param": "mid_db"}]}, "already bound"),
    ({"channel": 17}, "channel = 17"),
    ({"device": 3}, "expected str"),
    ({"velocity": 1}, "unknown key"),
    ({"program": [{"program": 200, "preset": "x"}]}, "program = 200"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_midi_tables_are_one_clear_line(cfg, needle):
    with pytest.raises(PedalError) as e:
        parse_config(cfg)
    assert needle in str(e.value) and "[midi]" in str(e.value) and "\n" not in str(e.value)


def test_unknown_parameters_and_knob_ranges_are_checked_when_bound(pedal, tmp_path):
    with pytest.raises(PedalError, match="unknown parameter 'volume'"):
        reader(pedal, {"cc": [{"cc": 7, "param": "volume"}]}, tmp_path)
    with pytest.raises(PedalError, match="outside drive's range"):
        reader(pedal, {"cc": [{"cc": 7, "param": "drive", "max": 11.0}]}, tmp_path)


def test_a_knob_gone_with_the_model_is_logged_once_and_nothing_breaks(pedal, tmp_path):
    midi = reader(pedal, {"cc": [{"cc": 9, "param": "drive"}]}, tmp_path)
    pedal.chain.model.current = None
    for v in range(50):
        send(midi, 0xB0, 9, v)
    assert len([line for line in midi.logs if "drive" in line]) == 1


# -- learning and the reading path -------------------------------------------------------------
def test_learn_binds_the_next_cc_saves_it_and_a_restart_keeps_it(pedal, tmp_path):
    fifo = str(tmp_path / "midi")
    os.mkfifo(fifo)
    midi = reader(pedal, {"device": fifo, "cc": [{"cc": 21, "param": "bass_db"}]}, tmp_path)
    midi._scan()                              # what the thread does; here poll() by hand
    result = {}
    learning = threading.Thread(target=lambda: result.update(midi.learn("treble_db", 5)))
    learning.start()
    with open(fifo, "wb", buffering=0) as w:
        time.sleep(0.1)
        w.write(bytes([0xB4, 0, 3, 32, 0]))       # bank select: never learned
        w.write(bytes([0xB4, 21, 127]))           # the CC the config bound to bass_db
        deadline = time.monotonic() + 5
        while learning.is_alive() and time.monotonic() < deadline:
            midi.poll(0.05)
    learning.join(5)
    assert result == {"cc": 21, "channel": 5, "param": "treble_db", "taper": "linear"}
    assert pedal.chain.targets["treble_db"] == 12.0 and pedal.chain.targets["bass_db"] == 0
    saved = json.loads((tmp_path / "state" / "midi-learned.json").read_text())
    assert saved == {"cc": [result]}
    midi.close()
    again = reader(pedal, {"cc": [{"cc": 21, "param": "bass_db"}]}, tmp_path)
    send(again, 0xB4, 21, 0)
    assert pedal.chain.targets["treble_db"] == -12.0 and pedal.chain.targets["bass_db"] == 0
    send(again, 0xB0, 21, 0)                  # channel 1: the config's binding still
    assert pedal.chain.targets["bass_db"] == -12.0
    assert again.forget("treble_db") == 1
    assert json.loads((tmp_path / "state" / "midi-learned.json").read_text()) == {"cc": []}


def test_learning_times_out_with_a_clear_line(pedal, tmp_path):
    midi = reader(pedal, {"device": str(tmp_path / "absent")}, tmp_path)
    with pytest.raises(PedalError, match="no CC arrived in 0.2 s"):
        midi.learn("bass_db", 0.2)
    with pytest.raises(PedalError, match="not a parameter"):
        midi.learn("volume", 0.2)


def test_a_broken_learned_file_is_skipped(pedal, tmp_path):
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "midi-learned.json").write_text('{"cc": [{"cc": "x"}]}')
    midi = reader(pedal, {}, tmp_path)
    assert midi.bindings.learned == [] and any("ignored" in line for line in midi.logs)


# -- end to end: bytes into a running pedal -----------------------------------------------------
def _no_sound_card():
    from pedal.io.filedevice import has_sound_card
    return not has_sound_card()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """`pedal run` without a sound card (the bundled clip, in real time), its MIDI input a
    named pipe where the rawmidi node would be, and its control socket."""
    pytest.importorskip("alsaaudio")
    if not _no_sound_card():
        pytest.skip("this machine has a sound card: `pedal run` would play on it")
    d = tmp_path_factory.mktemp("midi-run")
    fifo, sock = d / "midiC9D0", d / "ctl.sock"
    os.mkfifo(fifo)
    config = d / "pedal.toml"
    config.write_text(f'[midi]\ndevice = "{fifo}"\n'
                      '[[midi.cc]]\ncc = 7\nparam = "output_level_db"\ntaper = "log"\n'
                      'min = -60.0\nmax = 0.0\n'
                      '[[midi.cc]]\ncc = 65\nparam = "bypass"\n'
                      '[[midi.switch]]\naction = "bypass"\nnote = 64\n')
    log = open(d / "pedal.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "pedal.cli", "run", "--no-realtime",
                             "--config", str(config), "--socket", str(sock), "--state-dir",
                             str(d / "state"), "-o", str(d / "played.wav"), "-v"],
                            stderr=log, cwd=d)
    from pedal.box.control import request
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if request(str(sock), {"cmd": "midi"})["ports"]:
                break
        except PedalError:
            pass
        time.sleep(0.1)
    writer = open(fifo, "wb", buffering=0)
    yield proc, str(sock), writer, d
    writer.close()
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    log.close()


def wait_for(sock, name, value, timeout=10):
    from pedal.box.control import request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = request(sock, {"cmd": "get", "name": name})
        if got == pytest.approx(value, abs=1e-9):
            return got
        time.sleep(0.02)
    raise AssertionError(f"{name} is {got}, not {value}")


def test_bytes_in_change_the_running_engine(running):
    proc, sock, writer, d = running
    from pedal.box.control import request
    before = request(sock, {"cmd": "status"})
    # running status, a clock inside a message, a sysex, garbage and a truncated message
    writer.write(bytes([0xB0, 7, 127, 7, 0xF8, 64, 0xF0, 1, 2, 3, 0xF7, 0x55, 0x90, 0xB0,
                        7]) + bytes([100]))
    wait_for(sock, "output_level_db", -60.0 + audio_taper(100 / 127) * 60.0)
    writer.write(bytes([0x90, 64, 100]))
    deadline = time.monotonic() + 10
    while not request(sock, {"cmd": "status"})["bypass"] and time.monotonic() < deadline:
        time.sleep(0.02)
    after = request(sock, {"cmd": "status"})
    assert after["bypass"] and after["periods"] > before["periods"]
    assert after["midi"]["dropped_bytes"] == 2 and proc.poll() is None     # 0x55, 0x90


def test_a_hostile_stream_never_stops_the_pedal(running):
    proc, sock, writer, d = running
    from pedal.box.control import request
    rng = np.random.default_rng(7)
    for _ in range(50):
        writer.write(rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes())
    writer.write(bytes([0xF0]) + bytes(200_000))          # a sysex that never ends...
    writer.write(bytes([0xF7, 0xB0, 7, 0]))               # ...until it does; then a CC
    wait_for(sock, "output_level_db", -60.0)
    first = request(sock, {"cmd": "status"})
    time.sleep(0.5)
    then = request(sock, {"cmd": "status"})
    assert proc.poll() is None and then["periods"] > first["periods"] + 100
    assert then["out_nonfinite"] == 0 and then["chain_failures"] == 0


def test_midi_learn_over_the_socket_in_the_running_pedal(running):
    proc, sock, writer, d = running
    ctl = subprocess.Popen([sys.executable, "-m", "pedal.cli", "ctl", "--socket", sock,
                            "--json", "midi-learn", "drive"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    from pedal.box.control import request
    deadline = time.monotonic() + 30
    while request(sock, {"cmd": "midi"})["learning"] != "drive" and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    writer.write(bytes([0xB2, 30, 127]))    # the request is waiting; now a knob moves
    out, err = ctl.communicate(timeout=40)
    assert ctl.returncode == 0, err
    assert json.loads(out) == {"cc": 30, "channel": 3, "param": "drive", "taper": "linear"}
    writer.write(bytes([0xB2, 30, 0]))
    wait_for(sock, "drive", 0.0)
    listed = subprocess.run([sys.executable, "-m", "pedal.cli", "ctl", "--socket", sock,
                             "midi"], capture_output=True, text=True, timeout=30)
    assert "CC 30 channel 3 -> drive 0..1 linear (learned)" in listed.stdout or \
        "CC 30 channel 3 -> drive linear (learned)" in listed.stdout, listed.stdout


def test_what_it_played_follows_the_midi_controls(running):
    """The last test on the running pedal: a CC engages bypass, and what it played is then
    the clip itself, sample for sample (its position in the loop is known: the recording
    starts with the clip's first frame); then bypass off and a CC to -60 dB: nearly
    silence at the end."""
    proc, sock, writer, d = running
    writer.write(bytes([0xB0, 65, 127]))
    time.sleep(1.5)
    writer.write(bytes([0xB0, 65, 0, 7, 0]))
    wait_for(sock, "output_level_db", -60.0)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    import soundfile as sf

    from pedal import models
    y, rate = sf.read(d / "played.wav", dtype="float32")
    clip, _ = sf.read(models.demo_clip(), dtype="float32")
    dry = np.resize(clip, len(y))                      # the clip, looped, as it was played
    same = np.isclose(y, dry, rtol=0, atol=1e-6)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, same, 0])))[::2]     # lengths of True runs
    assert runs.max() > rate, "bypass never played the clip itself for a second"
    assert np.abs(y[-rate // 2:]).max() < 10 ** (-50 / 20)
