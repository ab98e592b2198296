"""MIDI control: USB MIDI controllers read from ALSA's rawmidi ports on a thread of their own,
turned into messages, and mapped onto the Pedal facade by the `[midi]` table of the config
and the bindings learned with `pedal ctl midi-learn PARAM`.

    [midi]
    device = "auto"        # every ALSA rawmidi port (/dev/snd/midiC*D*), hotplug included;
                           # or one port: "hw:1,0", "hw:CARD=nanoKONTROL2,DEV=0", a path;
                           # "none": no MIDI
    channel = 0            # 1-16: listen on that channel only; 0: every channel
    program_change = true  # program change -> preset; with no [[midi.program]], program P in
                           #   bank B loads preset number B*128+P of `pedal ctl presets`

    [[midi.program]]       # program change -> a preset by name (any number of these)
    program = 0            # 0-127
    bank = 0               # optional, default 0 (bank select: CC 0 = MSB, CC 32 = LSB,
    preset = "clean"       #   bank = MSB*128 + LSB, applied at the next program change)

    [[midi.cc]]            # a CC turns a parameter (any number of these)
    cc = 7                 # 1-31, 33-119 (0 and 32 select banks; 120-127 are mode messages)
    param = "output_level_db"
    min = -40.0            # optional: the values at CC 0 and CC 127, default the parameter's
    max = 6.0              #   range (min > max reverses the direction)
    taper = "log"          # linear | log | antilog (as the pots', pedal.dsp.params.taper)
    channel = 1            # optional, default the table's channel (0: any)

    [[midi.switch]]        # a note or a CC press runs an action (any number of these)
    action = "bypass"      # bypass (toggle), next_preset, previous_preset, next_model,
    note = 60              #   previous_model, next_ir, previous_ir; a note-on (velocity > 0)
    # cc = 80              # or a CC at 64 or more (a footswitch press; below 64, the release)
    channel = 1            # optional, as above

A CC bound to `bypass` follows a latching switch (64 or more: bypassed). A bound value is
the parameter's own: it goes through Pedal.set_param and so through the one range check
(pedal.dsp.params), and the mapping keeps it inside the parameter's range. There is no tap
tempo: nothing in the chain takes a tempo yet (no delay or modulation stage), so `tap` is
refused by name rather than bound to nothing.

Learned bindings (`pedal ctl midi-learn PARAM`: the next CC that arrives turns PARAM over its
whole range, linear) are saved in the state directory, `midi-learned.json` beside the
presets, written atomically: the config file may be root's (/etc/pedal/pedal.toml) and is
never rewritten. A learned binding wins over the config's for the same CC and channel;
`pedal ctl midi-forget PARAM` drops it, `pedal ctl midi` lists every binding.

The byte stream: messages are decoded by mido; the framing around it is ours, because mido's
tokenizer drops running status (a controller that sends one status byte for a stream of CCs)
and lets a real-time byte (MIDI clock) cut the message it lands in. Stray data bytes,
truncated messages, undefined status bytes and system exclusive data (of any length: it is
skipped, never stored) are counted and dropped; nothing in the stream can stop the reader or
the pedal. Everything here runs on the reader thread and calls only the Pedal's methods.
"""
from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import re
import select
import stat
import threading
import time

from ..dsp.params import PARAMS, TAPERS, travel_value
from ..errors import PedalError
from ..files import read_regular, write_atomic
from .pedal import ACTIONS
from .tables import TableChecks

LEARNED_FILE = "midi-learned.json"
RAWMIDI_GLOB = "/dev/snd/midiC*D*"
RESCAN_S = 2.0              # how often missing ports are looked for (hotplug)
LEARN_TIMEOUT_S = 30.0
READ_BYTES = 4096
KNOWN_MESSAGES = 4096       # decoded messages kept for reuse, per port
REPEAT_LOG_S = 5.0          # the same problem is logged at most this often
BANK_MSB, BANK_LSB = 0, 32
MODE_CCS = range(120, 128)  # channel mode messages (all notes off...), never bound

TOP_KEYS = {"device": str, "channel": int, "program_change": bool, "program": list,
            "cc": list, "switch": list}
PROGRAM_KEYS = {"program": int, "bank": int, "preset": str}
CC_KEYS = {"cc": int, "param": str, "min": float, "max": float, "taper": str, "channel": int}
SWITCH_KEYS = {"action": str, "note": int, "cc": int, "channel": int}


# -- the byte stream ---------------------------------------------------------------------------
def _data_length(status: int) -> int:
    """Data bytes after a status byte (0x80..0xF7), -1 for an undefined one."""
    if status < 0xF0:
        return 1 if 0xC0 <= status < 0xE0 else 2      # program change, channel pressure: 1
    return {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}.get(status, -1)


class MidiStream:
    """MIDI bytes in, channel messages (mido.Message) out, for one port.

    Running status, real-time bytes anywhere (they never cut a message), system exclusive
    skipped whatever its length; everything unusable counted in `dropped` (bytes)."""

    def __init__(self):
        self._decode = _mido().Message.from_bytes
        # decoded messages by their bytes: a knob sweeps over the same few hundred, and
        # building a mido Message is most of the cost (they are only read, never changed)
        self._known = {}
        self.running = 0        # the channel status that data bytes continue (running status)
        self.pending = []       # the message being assembled
        self.need = 0           # data bytes it still needs
        self.in_sysex = False
        self.dropped = 0
        self.messages = 0

    def feed(self, data: bytes) -> list:
        out = []
        for b in data:
            if b >= 0xF8:                       # real time: clock, start, stop, sensing...
                self.messages += 1              # none of them is bound; they cut nothing
                continue
            if b >= 0x80:
                self._status(b, out)
            elif self.in_sysex:
                continue
            elif self.need:
                self.pending.append(b)
                self.need -= 1
                if not self.need:
                    self._emit(out)
            elif self.running:                  # running status: the last status again
                self.pending, self.need = [self.running, b], _data_length(self.running) - 1
                if not self.need:
                    self._emit(out)
            else:
                self.dropped += 1               # a stray data byte
        return out

    def _status(self, b, out):
        if self.need:                           # a message cut short by this status byte
            self.dropped += len(self.pending)
            self.pending, self.need = [], 0
        self.in_sysex = b == 0xF0
        if b >= 0xF0:                           # system common ends running status
            self.running = 0
            if b == 0xF7 or self.in_sysex:
                return
        n = _data_length(b)
        if n < 0:
            self.dropped += 1
            return
        if b < 0xF0:
            self.running = b
        self.pending, self.need = [b], n
        if not n:
            self._emit(out)

    def _emit(self, out):
        self.messages += 1
        key = bytes(self.pending)
        msg = self._known.get(key)
        if msg is None:
            try:
                msg = self._decode(self.pending)
            except ValueError:                  # mido's own check; not expected to fire
                self.dropped += len(self.pending)
                self.pending = []
                return
            if len(self._known) >= KNOWN_MESSAGES:
                self._known.clear()
            self._known[key] = msg
        out.append(msg)
        self.pending = []


def _mido():
    import mido  # the device install's ([device] extra); imported when MIDI is used
    return mido


# -- configuration -----------------------------------------------------------------------------
CHECK = TableChecks("midi")
_bad = CHECK.bad


def parse_config(section) -> dict:
    """Validate the [midi] table (absent: MIDI on every port, program change -> presets);
    returns a normalised copy. Parameter names are checked against the model playing by
    MidiInput."""
    cfg = {"device": "auto", "channel": 0, "program_change": True}
    cfg.update(CHECK.table("", section if section is not None else {}, TOP_KEYS))
    CHECK.within("", "channel", cfg["channel"], 0, 16)
    if not cfg["device"] or not cfg["device"].isprintable():
        raise _bad("", f"device = {cfg['device']!r}: expected \"auto\", \"none\", hw:CARD,DEV "
                       f"or a path")
    programs = []
    for where, entry in CHECK.entries(cfg, "program", PROGRAM_KEYS, ("program", "preset")):
        entry.setdefault("bank", 0)
        CHECK.within(where, "program", entry["program"], 0, 127)
        CHECK.within(where, "bank", entry["bank"], 0, 16383)
        programs.append(entry)
    ccs = []
    for where, entry in CHECK.entries(cfg, "cc", CC_KEYS, ("cc", "param")):
        _check_cc(where, entry["cc"])
        entry.setdefault("taper", "linear")
        CHECK.one_of(where, "taper", entry["taper"], TAPERS)
        entry.setdefault("channel", cfg["channel"])
        CHECK.within(where, "channel", entry["channel"], 0, 16)
        if entry["param"] in PARAMS:
            _check_range(where, entry, PARAMS[entry["param"]].minimum,
                         PARAMS[entry["param"]].maximum)
        ccs.append(entry)
    switches = []
    for where, entry in CHECK.entries(cfg, "switch", SWITCH_KEYS, ("action",)):
        if entry["action"] == "tap":
            raise _bad(where, "action = \"tap\": nothing in the chain takes a tempo yet (no "
                              "delay or modulation stage); bind another action")
        CHECK.one_of(where, "action", entry["action"], ACTIONS)
        if ("note" in entry) == ("cc" in entry):
            raise _bad(where, "expected one of note = N or cc = N")
        if "note" in entry:
            CHECK.within(where, "note", entry["note"], 0, 127)
        else:
            _check_cc(where, entry["cc"])
        entry.setdefault("channel", cfg["channel"])
        CHECK.within(where, "channel", entry["channel"], 0, 16)
        switches.append(entry)
    cfg["program"], cfg["cc"], cfg["switch"] = programs, ccs, switches
    _check_unique(ccs, switches)
    return cfg


def _check_cc(where, cc):
    if not 0 <= cc <= 127 or cc in (BANK_MSB, BANK_LSB) or cc in MODE_CCS:
        raise _bad(where, f"cc = {cc}: expected 1-31 or 33-119 (0 and 32 select banks, "
                          f"120-127 are channel mode messages)")


def _check_range(where, entry, lo, hi):
    for key in ("min", "max"):
        if key in entry and not lo <= entry[key] <= hi:
            raise _bad(where, f"{key} = {entry[key]:g} is outside {entry['param']}'s range "
                              f"{lo:g}..{hi:g}")


def _check_unique(ccs, switches):
    seen = {}
    for kind, entries in (("cc", ccs), ("switch", switches)):
        for i, e in enumerate(entries):
            key = (e["channel"], "note" if "note" in e else "cc", e.get("note", e.get("cc")))
            where = f"[midi].{kind}[{i + 1}]"
            if key in seen:
                raise _bad("", f"{where}: {key[1]} {key[2]} on channel {key[0] or 'any'} is "
                               f"already bound by {seen[key]}")
            seen[key] = where


def port_paths(device: str) -> list[str]:
    """The rawmidi node(s) a `device` setting names: "auto" every one there is now."""
    if device == "auto":
        return sorted(glob.glob(RAWMIDI_GLOB))
    m = re.fullmatch(r"hw:(?:CARD=)?([^,]+),(?:DEV=)?(\d+)", device)
    if not m:
        return [device]
    card = m.group(1)
    if not card.isdigit():                    # a card name: /proc/asound/NAME -> cardN
        target = os.path.basename(os.path.realpath(f"/proc/asound/{card}"))
        card = target[4:] if target.startswith("card") and target[4:].isdigit() else card
    return [f"/dev/snd/midiC{card}D{m.group(2)}"]


# -- bindings ----------------------------------------------------------------------------------
def load_learned(path, log) -> list[dict]:
    """The learned CC bindings saved in `path`; a missing file is none, a broken one is
    logged and ignored (the pedal starts regardless)."""
    if not os.path.lexists(path):
        return []
    try:
        doc = json.loads(read_regular(path, 1 << 20, "MIDI bindings file").decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("cc"), list):
            raise PedalError(path, "expected {\"cc\": [...]}")
        out = []
        for where, entry in CHECK.entries(doc, "cc", CC_KEYS, ("cc", "param", "channel")):
            _check_cc(where, entry["cc"])
            CHECK.within(where, "channel", entry["channel"], 0, 16)
            entry.setdefault("taper", "linear")
            CHECK.one_of(where, "taper", entry["taper"], TAPERS)
            out.append(entry)
        return out
    except (UnicodeDecodeError, ValueError, RecursionError, PedalError) as e:
        log(f"midi: {path} ignored: {e}")
        return []


class Bindings:
    """What each message does: program changes, CCs and notes mapped to the Pedal."""

    def __init__(self, cfg, learned):
        self.cfg = cfg
        self.learned = list(learned)
        self.banks = {}                     # channel -> [msb, lsb]
        self._index()

    def _index(self):
        self.ccs = {}
        for entry in self.cfg["cc"] + self.learned:     # learned last: they win
            self.ccs[(entry["channel"], entry["cc"])] = entry
        self.switches = {(e["channel"], "note" if "note" in e else "cc",
                          e.get("note", e.get("cc"))): e for e in self.cfg["switch"]}

    def learn(self, entry):
        """Bind a learned CC: it replaces any learned binding of the same CC or parameter."""
        self.learned = [e for e in self.learned
                        if (e["channel"], e["cc"]) != (entry["channel"], entry["cc"])
                        and e["param"] != entry["param"]]
        self.learned.append(entry)
        self._index()

    def forget(self, name) -> int:
        before = len(self.learned)
        self.learned = [e for e in self.learned if e["param"] != name]
        self._index()
        return before - len(self.learned)

    def listing(self) -> dict:
        return {"cc": [dict(e, source="config") for e in self.cfg["cc"]]
                + [dict(e, source="learned") for e in self.learned],
                "switch": list(self.cfg["switch"]), "program": list(self.cfg["program"]),
                "program_change": self.cfg["program_change"]}

    def _find(self, table, channel, kind, number):
        key = (channel, kind, number) if kind else (channel, number)
        anywhere = (0, kind, number) if kind else (0, number)
        return table.get(key) or table.get(anywhere)

    def apply(self, msg, pedal) -> str | None:
        """Do what `msg` is bound to; returns what was done, in words, or None."""
        channel = msg.channel + 1 if hasattr(msg, "channel") else 0
        if self.cfg["channel"] and channel != self.cfg["channel"]:
            return None
        if msg.type == "control_change":
            if msg.control in (BANK_MSB, BANK_LSB):
                bank = self.banks.setdefault(channel, [0, 0])
                bank[msg.control == BANK_LSB] = msg.value
                return None
            entry = self._find(self.ccs, channel, None, msg.control)
            if entry is not None:
                return self._turn(entry, msg.value, pedal)
            entry = self._find(self.switches, channel, "cc", msg.control)
            if entry is not None and msg.value >= 64:
                return pedal.act(entry["action"])
        elif msg.type == "note_on" and msg.velocity > 0:
            entry = self._find(self.switches, channel, "note", msg.note)
            if entry is not None:
                return pedal.act(entry["action"])
        elif msg.type == "program_change" and self.cfg["program_change"]:
            msb, lsb = self.banks.get(channel, (0, 0))
            return self._program(msb * 128 + lsb, msg.program, pedal)
        return None

    @staticmethod
    def _turn(entry, value, pedal):
        name = entry["param"]
        if name in PARAMS and PARAMS[name].switch:
            v = 1.0 if value >= 64 else 0.0
        else:
            lo, hi = pedal.param_range(name)
            v = travel_value(value / 127.0, entry["taper"], entry.get("min", lo),
                             entry.get("max", hi))
        return f"{name} {pedal.set_param(name, v):g}"

    def _program(self, bank, program, pedal):
        if self.cfg["program"]:
            for entry in self.cfg["program"]:
                if (entry["bank"], entry["program"]) == (bank, program):
                    pedal.load_preset(entry["preset"])
                    return f"preset {entry['preset']}"
            raise PedalError(f"program {program}", f"no preset bound to it in bank {bank} "
                                                   f"([[midi.program]])")
        names = pedal.presets.names()
        index = bank * 128 + program
        if index >= len(names):
            raise PedalError(f"program {program}", f"bank {bank}: preset number {index + 1} "
                                                   f"asked, there are {len(names)}")
        pedal.load_preset(names[index])
        return f"preset {names[index]}"


# -- the reader --------------------------------------------------------------------------------
class _Port:
    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.keep = None
        try:
            if stat.S_ISFIFO(os.fstat(self.fd).st_mode):
                # a named pipe standing in for a port: hold a write end, so that a writer
                # that comes and goes is not an end of file
                self.keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            os.close(self.fd)
            raise
        self.stream = MidiStream()

    def close(self):
        for fd in (self.fd, self.keep):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


class MidiInput:
    """Reads every MIDI port `config` (the [midi] table) names on its own thread and applies
    what each message is bound to through `pedal` (a Pedal). close() stops it."""

    def __init__(self, pedal, config, state_dir, log=print, verbose=False, start=True):
        self.pedal, self.log, self.verbose = pedal, log, verbose
        self.cfg = cfg = parse_config(config)
        if cfg["device"] != "none":
            _mido()                             # ImportError now, not on the thread
        for i, entry in enumerate(cfg["cc"]):
            try:
                lo, hi = pedal.param_range(entry["param"])
            except PedalError as e:
                raise _bad(f".cc[{i + 1}]", f"unknown parameter {e.where!r} (known: "
                                            f"{', '.join(pedal.chain.param_names())})") from None
            _check_range(f".cc[{i + 1}]", entry, lo, hi)
        self.learned_path = os.path.join(state_dir, LEARNED_FILE)
        self.bindings = Bindings(cfg, load_learned(self.learned_path, log))
        self.ports = {}
        self.dropped = self.messages = 0     # of ports since closed
        self._lock = threading.Lock()        # bindings and the learn request
        self._learning = None                # [param, threading.Event, result]
        self._stop = threading.Event()
        self._failed = {}                    # path -> the last problem logged for it
        self._logged = {}                    # message -> when last logged
        self._thread = None
        if start and cfg["device"] != "none":
            self._thread = threading.Thread(target=self._run, name="pedal-midi", daemon=True)
            self._thread.start()

    # -- the thread -------------------------------------------------------------------------
    def _run(self):
        next_scan = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self._scan()
                next_scan = now + RESCAN_S
            self.poll(min(0.25, max(next_scan - time.monotonic(), 0.0)))

    def _scan(self):
        for path in port_paths(self.cfg["device"]):
            if path in self.ports:
                continue
            try:
                self.ports[path] = _Port(path)
            except OSError as e:
                problem = e.strerror or str(e)
                if self._failed.get(path) != problem:
                    self._failed[path] = problem
                    waiting = " (waiting for it)" if isinstance(e, FileNotFoundError) else ""
                    self.log(f"midi: {path}: {problem}{waiting}")
                continue
            self._failed.pop(path, None)
            self.log(f"midi: reading {path}")

    def poll(self, timeout):
        """Wait up to `timeout` s for bytes on the open ports and handle them (the thread's
        step; tests call it directly with MidiInput(..., start=False))."""
        ports = list(self.ports.values())
        if not ports:
            self._stop.wait(timeout)
            return
        try:
            ready, _, _ = select.select([p.fd for p in ports], [], [], timeout)
        except (OSError, ValueError):
            ready = [p.fd for p in ports]       # a port closed under us: find which below
        for port in ports:
            if port.fd in ready:
                self._read(port)

    def _read(self, port):
        try:
            data = os.read(port.fd, READ_BYTES)
        except BlockingIOError:
            return
        except OSError as e:                    # unplugged: ENODEV; rescans bring it back
            data, problem = b"", e.strerror or str(e)
        else:
            problem = "end of file"
        if not data:
            self.log(f"midi: {port.path}: {problem}; closed")
            self._close(port)
            return
        for msg in port.stream.feed(data):
            self.handle(msg)

    def handle(self, msg):
        """One message: a pending learn takes the first bindable CC; then the bindings."""
        try:
            with self._lock:
                learned = self._learn_from(msg)
            done = self.bindings.apply(msg, self.pedal)
            if learned:
                self.log(f"midi: learned {learned}")
            if done and self.verbose:
                self.log(f"midi: {_describe(msg)} -> {done}")
        except PedalError as e:
            self._log_once(str(e), f"midi: {_describe(msg)}: {e}")
        except Exception as e:                  # never let a message end the reader
            problem = f"{type(e).__name__}: {e}"
            self._log_once(problem, f"midi: {_describe(msg)}: {problem}")

    def _log_once(self, problem, line):
        """A knob swept over an unbound parameter must not write a line per message."""
        now = time.monotonic()
        if now - self._logged.get(problem, -math.inf) >= REPEAT_LOG_S:
            self._logged[problem] = now
            if len(self._logged) > 256:
                self._logged.clear()
            self.log(line)

    def _close(self, port):
        port.close()
        self.dropped += port.stream.dropped
        self.messages += port.stream.messages
        self.ports.pop(port.path, None)

    # -- learning ----------------------------------------------------------------------------
    def learn(self, name, timeout=LEARN_TIMEOUT_S) -> dict:
        """Bind the next CC that arrives to parameter `name`; returns the binding. Called
        from the control socket's thread; waits up to `timeout` s."""
        self.pedal.param_range(name)            # a parameter of the pedal, or PedalError
        if self.cfg["device"] == "none":
            raise PedalError("midi-learn", "MIDI is off (device = \"none\" in [midi], or "
                                           "pedal run --midi none)")
        done = threading.Event()
        with self._lock:
            if self._learning is not None:
                raise PedalError("midi-learn", f"already waiting for a CC for "
                                               f"{self._learning[0]}")
            self._learning = [name, done, None]
        try:
            if not done.wait(timeout):
                raise PedalError("midi-learn", f"no CC arrived in {timeout:g} s (ports: "
                                               f"{', '.join(self.ports) or 'none'}); turn a "
                                               f"knob on the controller while learning")
        finally:
            with self._lock:
                result, self._learning = self._learning[2], None
        return result

    def _learn_from(self, msg):
        if self._learning is None or msg.type != "control_change" or \
                msg.control in (BANK_MSB, BANK_LSB) or msg.control in MODE_CCS or \
                (self.cfg["channel"] and msg.channel + 1 != self.cfg["channel"]):
            return None
        name, done, _ = self._learning
        entry = {"cc": msg.control, "channel": msg.channel + 1, "param": name,
                 "taper": "linear"}
        self.bindings.learn(entry)
        self._save()
        self._learning[2] = entry
        done.set()
        return f"CC {msg.control} on channel {msg.channel + 1} -> {name}"

    def forget(self, name) -> int:
        with self._lock:
            n = self.bindings.forget(name)
            if n:
                self._save()
        return n

    def _save(self):
        data = {"cc": [{k: e[k] for k in ("cc", "channel", "param", "taper", "min", "max")
                        if k in e} for e in self.bindings.learned]}
        try:
            write_atomic(self.learned_path, json.dumps(data, indent=2).encode() + b"\n")
        except (OSError, PedalError) as e:
            self.log(f"midi: could not save the learned bindings to {self.learned_path}: {e}")

    # -- status and the end ------------------------------------------------------------------
    def status(self) -> dict:
        ports = list(self.ports.values())
        learning = self._learning
        return {"ports": [p.path for p in ports],
                "messages": self.messages + sum(p.stream.messages for p in ports),
                "dropped_bytes": self.dropped + sum(p.stream.dropped for p in ports),
                "learning": learning[0] if learning else None}

    def listing(self) -> dict:
        with self._lock:
            return dict(self.bindings.listing(), device=self.cfg["device"],
                        learned_file=self.learned_path, **self.status())

    def close(self):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        for port in list(self.ports.values()):
            self._close(port)


def _describe(msg) -> str:
    ch = f" (channel {msg.channel + 1})" if hasattr(msg, "channel") else ""
    if msg.type == "control_change":
        return f"CC {msg.control} = {msg.value}{ch}"
    if msg.type == "program_change":
        return f"program {msg.program}{ch}"
    if msg.type in ("note_on", "note_off"):
        return f"{msg.type.replace('_', ' ')} {msg.note}{ch}"
    return msg.type + ch
