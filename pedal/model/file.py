"""The pedal's one model file (`.pedal`): self-describing, versioned, no pickle, no torch.

Layout (little-endian):
    b"PEDALMDL"  u32 format version  u32 header length  header (UTF-8 JSON)
    zero padding to a multiple of 16, then the tensor data, each tensor 16-byte aligned
    u32 CRC-32 of every byte before it

The header holds the architecture and its config, the sample rate, the quantization, the
knobs, level calibration, provenance and measured ESR, for each tensor its dtype, shape and
offset into the data, and data_bytes, the length of the data. Quantized tensors are expanded
to float32 on load: the kernels always compute in float32. Vectors (biases, initial states)
are never quantized.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import zlib

import numpy as np

from ..errors import ModelError
from ..files import read_regular, write_atomic
from .arch import check_model

MAGIC = b"PEDALMDL"
FORMAT_VERSION = 1
ALIGN = 16
QUANTIZATIONS = ("fp32", "fp16", "int8")
_DTYPES = {"f32": np.dtype("<f4"), "f16": np.dtype("<f2"), "i8": np.dtype("i1")}
_MAX_HEADER = 64 << 20
MAX_FILE_BYTES = 256 << 20     # any model file the pedal reads, in any format
_MAX_ELEMENTS = 1 << 28
_MAX_DIMS = 8


@dataclasses.dataclass
class Knob:
    """A model input the player turns: the model sees `value` in [minimum, maximum]."""
    name: str
    minimum: float = 0.0
    maximum: float = 1.0
    default: float = 0.5

    def to_json(self) -> dict:
        return {"name": self.name, "min": self.minimum, "max": self.maximum,
                "default": self.default}


@dataclasses.dataclass
class Model:
    """A model in memory: what every loader returns and every architecture builds from."""
    architecture: str
    config: dict
    tensors: dict
    sample_rate: int = 48000
    knobs: list = dataclasses.field(default_factory=list)
    calibration: dict = dataclasses.field(default_factory=dict)
    provenance: dict = dataclasses.field(default_factory=dict)
    esr: dict = dataclasses.field(default_factory=dict)
    metadata: dict = dataclasses.field(default_factory=dict)
    quantization: str = "fp32"
    _spec: object = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def spec(self):
        """The architecture's frozen reading of config (checked against the tensors and the
        knobs), parsed once; the loaders parse it where they can name the file."""
        if self._spec is None:
            self.check()
        return self._spec

    def check(self, where: str = "model") -> Model:
        """Check the model as the pedal will play it; ModelError naming `where` and the field."""
        self._spec = check_model(self, where)
        return self

    @property
    def weight_count(self) -> int:
        return int(sum(t.size for t in self.tensors.values()))

    def replace(self, **changes) -> Model:
        return dataclasses.replace(self, **changes)


def quantize_tensor(values, mode):
    """(stored array, per-output-channel scales or None) for one float32 tensor."""
    if mode == "fp32" or values.ndim < 2:
        return values.astype("<f4"), None
    if mode == "fp16":
        return values.astype("<f2"), None
    rows = values.reshape(values.shape[0], -1)
    scales = np.abs(rows).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(rows / scales[:, None]), -127, 127).astype("i1")
    return q.reshape(values.shape), scales.astype("<f4")


def dequantize_tensor(stored, scales):
    values = stored.astype(np.float32)
    if scales is not None:
        values = (values.reshape(values.shape[0], -1) * scales[:, None]).reshape(stored.shape)
    return values


def quantized(model: Model, mode: str) -> Model:
    """The model with its weights rounded as `mode` stores them (to measure the cost)."""
    if mode not in QUANTIZATIONS:
        raise ModelError("quantization", f"unknown mode {mode!r}; use one of {QUANTIZATIONS}")
    tensors = {name: dequantize_tensor(*quantize_tensor(t, mode))
               for name, t in model.tensors.items()}
    return model.replace(tensors=tensors, quantization=mode)


def encode(model: Model, quantization: str | None = None) -> bytes:
    """The file's bytes for `model`, its tensors stored as `quantization` (default: as is)."""
    mode = quantization or model.quantization
    if mode not in QUANTIZATIONS:
        raise ModelError("quantization", f"unknown mode {mode!r}; use one of {QUANTIZATIONS}")
    blobs, index, offset = [], {}, 0

    def put(array):
        nonlocal offset
        start = offset
        raw = np.ascontiguousarray(array).tobytes()
        blobs.append(raw + b"\0" * (-len(raw) % ALIGN))
        offset += len(blobs[-1])
        return start

    code = {np.dtype("<f4"): "f32", np.dtype("<f2"): "f16", np.dtype("i1"): "i8"}
    for name, values in model.tensors.items():
        stored, scales = quantize_tensor(np.asarray(values, np.float32), mode)
        entry = {"dtype": code[stored.dtype], "shape": list(stored.shape), "offset": put(stored)}
        if scales is not None:
            entry["scales_offset"] = put(scales)
        index[name] = entry
    header = {
        "architecture": model.architecture,
        "config": model.config,
        "sample_rate": model.sample_rate,
        "quantization": mode,
        "knobs": [k.to_json() for k in model.knobs],
        "calibration": model.calibration,
        "provenance": model.provenance,
        "esr": model.esr,
        "metadata": model.metadata,
        "tensors": index,
        "data_bytes": offset,
    }
    try:
        head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as e:   # NaN or a non-JSON value in config or metadata
        raise ModelError("model", f"header: cannot be stored as JSON ({e})") from None
    prefix = MAGIC + struct.pack("<II", FORMAT_VERSION, len(head)) + head
    prefix += b"\0" * (-len(prefix) % ALIGN)
    body = prefix + b"".join(blobs)
    return body + struct.pack("<I", zlib.crc32(body))


def save(model: Model, path, quantization: str | None = None) -> int:
    """Write atomically: a crash mid-write leaves the old file (or none), never half a file."""
    data = encode(model, quantization)
    write_atomic(path, data)
    return len(data)


def is_model_data(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def load(path) -> Model:
    """Read and check a model file; every problem is a ModelError naming file and field."""
    return decode(read_regular(path, MAX_FILE_BYTES, "model file", ModelError), os.fspath(path))


def decode(data: bytes, where: str = "<bytes>") -> Model:
    if len(data) < 20 or data[:8] != MAGIC:
        raise ModelError(where, "not a pedal model file (bad magic)")
    version, head_len = struct.unpack_from("<II", data, 8)
    if version != FORMAT_VERSION:
        raise ModelError(where, f"format version {version}; this pedal reads {FORMAT_VERSION}")
    if head_len > _MAX_HEADER or 16 + head_len + 4 > len(data):
        raise ModelError(where, f"header: length {head_len} runs past the end (truncated file?)")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(memoryview(data)[:-4]) != crc:
        raise ModelError(where, "checksum mismatch: the file is truncated or corrupt")
    try:
        header = json.loads(data[16:16 + head_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelError(where, f"header: not valid JSON ({e})") from None
    except RecursionError:
        raise ModelError(where, "header: JSON nested too deeply") from None
    if not isinstance(header, dict):
        raise ModelError(where, "header: not a JSON object")
    data_start = 16 + head_len + (-(16 + head_len) % ALIGN)
    blob = memoryview(data)[data_start:len(data) - 4]
    # The checksum cannot catch a writer that laid the data out differently; the size can.
    if header.get("data_bytes") != len(blob):
        raise ModelError(where, f"data_bytes: the header describes {header.get('data_bytes')!r} "
                                f"bytes of tensor data, the file holds {len(blob)}")
    model = Model(
        architecture=_field(header, "architecture", str, where),
        config=_field(header, "config", dict, where),
        tensors=_read_tensors(_field(header, "tensors", dict, where), blob, where),
        sample_rate=_sample_rate(header.get("sample_rate"), where),
        knobs=_knobs(header.get("knobs", []), where),
        calibration=_field(header, "calibration", dict, where, {}),
        provenance=_field(header, "provenance", dict, where, {}),
        esr=_field(header, "esr", dict, where, {}),
        metadata=_field(header, "metadata", dict, where, {}),
        quantization=_field(header, "quantization", str, where, "fp32"),
    )
    if model.quantization not in QUANTIZATIONS:
        raise ModelError(where, f"quantization: unknown mode {model.quantization!r}")
    return model.check(where)


def _field(header, key, kind, where, default=None):
    if key not in header:
        if default is not None:
            return default
        raise ModelError(where, f"{key}: missing")
    value = header[key]
    if not isinstance(value, kind):
        raise ModelError(where, f"{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _sample_rate(value, where, field="sample_rate"):
    if not isinstance(value, (int, float)) or isinstance(value, bool) \
            or not 8000 <= value <= 384000 or value != int(value):
        raise ModelError(where, f"{field}: {value!r} is not a sample rate in 8000..384000")
    return int(value)


def _knobs(items, where):
    if not isinstance(items, list):
        raise ModelError(where, "knobs: expected a list")
    knobs = []
    for i, k in enumerate(items):
        try:
            knob = Knob(str(k["name"]), float(k["min"]), float(k["max"]), float(k["default"]))
        except (TypeError, KeyError, ValueError, OverflowError):
            raise ModelError(where, f"knobs[{i}]: needs name, min, max, default") from None
        if not (math.isfinite(knob.minimum) and math.isfinite(knob.maximum)
                and knob.minimum < knob.maximum and knob.minimum <= knob.default <= knob.maximum):
            raise ModelError(where, f"knobs[{i}] ({knob.name}): range or default is not sane")
        knobs.append(knob)
    return knobs


def _read_tensors(index, blob, where):
    tensors = {}
    for name, entry in index.items():
        field = f"tensors.{name}"
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = tuple(int(s) for s in entry["shape"])
            offset = int(entry["offset"])
        except (TypeError, KeyError, ValueError, OverflowError):
            raise ModelError(where, f"{field}: needs dtype (f32|f16|i8), shape, offset") from None
        count = math.prod(shape)
        # Each dimension too: [0, 10**30] has no elements but no array can take that shape.
        if len(shape) > _MAX_DIMS or any(not 0 <= s <= _MAX_ELEMENTS for s in shape) \
                or count > _MAX_ELEMENTS:
            raise ModelError(where, f"{field}: absurd shape {list(shape)}")
        stored = _slice(blob, offset, count, dtype, where, field).reshape(shape)
        scales = None
        if dtype == _DTYPES["i8"]:
            if "scales_offset" not in entry or len(shape) < 1 or count == 0:
                raise ModelError(where, f"{field}: int8 tensor without scales_offset "
                                        f"or without elements")
            scales = _slice(blob, entry["scales_offset"], shape[0], _DTYPES["f32"], where,
                            field + ".scales")
        with np.errstate(over="ignore", invalid="ignore"):   # Inf or NaN: refused below
            values = dequantize_tensor(stored, scales)
        if not np.all(np.isfinite(values)):
            raise ModelError(where, f"{field}: contains NaN or Inf")
        tensors[name] = values
    return tensors


def _slice(blob, offset, count, dtype, where, field):
    if not isinstance(offset, int) or offset < 0 or offset + count * dtype.itemsize > len(blob):
        raise ModelError(where, f"{field}: data runs past the end of the file")
    return np.frombuffer(blob, dtype, count, offset).copy()
