"""LV2 plugins, run by Debian's `lv2apply` (package lilv-utils), described by `lv2info`."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from pedal.errors import PedalError

from . import Gear, Knob, last_line, tool


@dataclasses.dataclass
class Lv2Port:
    index: int
    types: list
    symbol: str = ""
    name: str = ""
    minimum: float = None
    maximum: float = None
    default: float = None

    def has(self, kind):
        return any(t.endswith("#" + kind) for t in self.types)


def parse_lv2info(text):
    """(plugin name, [Lv2Port]) from `lv2info URI` output: plugin fields one tab deep, port
    fields two tabs deep, a port's Type continued on lines of URIs alone; scale points
    (three tabs deep) are not needed and skipped."""
    name, ports, key = "", [], None
    for line in text.splitlines():
        depth = len(line) - len(line.lstrip("\t"))
        body = line.strip()
        port = re.fullmatch(r"Port (\d+):", body)
        if port:
            ports.append(Lv2Port(int(port.group(1)), []))
            key = None
            continue
        field = re.fullmatch(r"([A-Z][A-Za-z ]*):\s*(.*)", body)
        if field and depth == 1 and field.group(1) == "Name" and not ports:
            name = field.group(2)
        elif field and depth == 2 and ports:
            key, value = field.group(1), field.group(2)
            _set_port_field(ports[-1], key, value)
        elif field is None and key == "Type" and body.startswith("http"):
            ports[-1].types.append(body)
    return name, ports


def _set_port_field(port, key, value):
    if key == "Type":
        port.types.append(value)
    elif key == "Symbol":
        port.symbol = value
    elif key == "Name":
        port.name = value
    elif key in ("Minimum", "Maximum", "Default"):
        try:
            setattr(port, key.lower(), float(value))
        except ValueError:
            pass


class Lv2Gear(Gear):
    backend = "lv2"

    def __init__(self, uri):
        self.uri = uri
        self.lv2apply = tool("lv2apply", "lilv-utils")
        r = subprocess.run([tool("lv2info", "lilv-utils"), uri], capture_output=True,
                           text=True, timeout=60)
        name, ports = parse_lv2info(r.stdout)
        if r.returncode != 0 or not ports:
            raise PedalError("--lv2", f"{uri}: no such LV2 plugin installed (`lv2ls` lists "
                                      f"them; {last_line(r.stderr or r.stdout, 'lv2info failed')})")
        self.name = name or uri
        audio_in = [p for p in ports if p.has("AudioPort") and p.has("InputPort")]
        audio_out = [p for p in ports if p.has("AudioPort") and p.has("OutputPort")]
        if len(audio_in) != 1 or len(audio_out) != 1:
            raise PedalError("--lv2", f"{self.name} has {len(audio_in)} audio inputs and "
                                      f"{len(audio_out)} outputs; reamping needs a mono in / "
                                      "mono out plugin")
        self.ports = [p for p in ports if p.has("ControlPort") and p.has("InputPort")]

    def describe(self):
        return {"backend": self.backend, "name": self.name, "uri": self.uri}

    def knobs(self):
        return {p.symbol: Knob(p.minimum, p.maximum, p.default,
                               (p.name,) if p.name and p.name != p.symbol else ())
                for p in self.ports}

    def process(self, dry, rate, controls):
        with tempfile.TemporaryDirectory(prefix="pedal-reamp-") as tmp:
            src, dst = os.path.join(tmp, "dry.wav"), os.path.join(tmp, "wet.wav")
            # lv2apply runs the plugin at the input file's rate
            sf.write(src, dry, rate, subtype="FLOAT")
            cmd = [self.lv2apply, "-i", src, "-o", dst]
            for symbol, value in controls.items():
                cmd += ["-c", symbol, repr(float(value))]
            r = subprocess.run(cmd + [self.uri], capture_output=True, text=True)
            if r.returncode != 0 or not os.path.exists(dst):
                raise PedalError(self.uri, "lv2apply failed: " + last_line(
                    r.stderr or r.stdout, f"exit status {r.returncode}"))
            wet, wet_rate = sf.read(dst, dtype="float32", always_2d=True)
        if wet_rate != rate or len(wet) != len(dry):
            raise PedalError(self.uri, f"lv2apply wrote {len(wet)} frames at {wet_rate} Hz "
                                       f"for {len(dry)} at {rate} Hz")
        return np.ascontiguousarray(wet[:, 0]), 0
