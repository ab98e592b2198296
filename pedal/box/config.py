"""The pedal's config file (TOML): audio device settings, the model, IR and parameters.

    [audio]
    capture = "hw:1"          # or device = "hw:1" for both directions
    playback = "hw:1"
    rate = 48000
    period_frames = 64
    periods = 2
    format = "S32_LE"         # S16_LE, S24_LE, S24_3LE, S32_LE, FLOAT_LE
    in_channels = 1
    input_channel = 0
    out_channels = 2
    input_level_dbu = 12.0    # the interface's analog level at 0 dBFS, for model calibration

    [pedal]
    model = "/var/lib/pedal/models/drive.pedal"
    ir = "/var/lib/pedal/irs/4x12.wav"

    [params]
    output_level_db = -6

    [gpio]                    # footswitches, encoders, pots, LED: see pedal/box/gpio.py
    footswitch = 17
    led = 22

    [midi]                    # MIDI controllers: see pedal/box/midi.py
    device = "auto"

deploy/pedal.toml is an example with every key. The file is found at --config, else
$XDG_CONFIG_HOME/pedal/pedal.toml (~/.config/pedal/pedal.toml), else /etc/pedal/pedal.toml.
"""
import os
import tomllib

from ..dsp.params import PARAMS, in_range
from ..errors import PedalError
from ..files import read_regular

MAX_BYTES = 1 << 20
SYSTEM_CONFIG = "/etc/pedal/pedal.toml"
AUDIO_KEYS = {"capture": str, "playback": str, "device": str, "rate": int,
              "period_frames": int, "periods": int, "format": str, "in_channels": int,
              "input_channel": int, "out_channels": int, "input_level_dbu": (int, float)}
PEDAL_KEYS = {"model": str, "ir": str}


def search_path():
    """Where the config is looked for, first found wins."""
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return [os.path.join(home, "pedal", "pedal.toml"), SYSTEM_CONFIG]


def find_config(explicit=None):
    if explicit:
        return explicit
    for path in search_path():
        if os.path.exists(path):
            return path
    return None


def load_config(path):
    """{"audio": {...}, "pedal": {...}, "params": {...}}, checked key by key."""
    if path is None:
        return {"audio": {}, "pedal": {}, "params": {}}
    raw = read_regular(path, MAX_BYTES, "config file (TOML)")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PedalError(path, "not a text file (a TOML config is UTF-8 text)") from None
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise PedalError(path, f"not valid TOML: {e}") from None
    out = {}
    for table, keys in (("audio", AUDIO_KEYS), ("pedal", PEDAL_KEYS), ("params", None)):
        section = doc.get(table, {})
        if not isinstance(section, dict):
            raise PedalError(path, f"[{table}]: expected a table")
        for key, value in section.items():
            kind = keys.get(key) if keys is not None else (int, float)
            if kind is None:
                raise PedalError(path, f"[{table}] {key}: unknown setting "
                                       f"(known: {', '.join(keys)})")
            if isinstance(value, bool) or not isinstance(value, kind):
                raise PedalError(path, f"[{table}] {key}: {value!r} has the wrong type")
            if key == "input_level_dbu":
                try:
                    in_range(key, value, -60, 60, "dBu")
                except PedalError as e:
                    raise PedalError(path, f"[audio] {e}") from None
            if table == "params" and key in PARAMS:
                try:
                    PARAMS[key].check(key, value)
                except PedalError as e:
                    raise PedalError(path, f"[params] {e}") from None
        out[table] = dict(section)
    from . import gpio, midi
    for table, parse in (("gpio", gpio.parse_config), ("midi", midi.parse_config)):
        section = doc.get(table)
        if section is not None:
            try:
                parse(section)      # the parameter names are checked when the controls start
            except PedalError as e:
                raise PedalError(path, str(e)) from None
            out[table] = section
    unknown = set(doc) - {"audio", "pedal", "params", "gpio", "midi"}
    if unknown:
        raise PedalError(path, f"[{sorted(unknown)[0]}]: unknown table (known: audio, pedal, "
                               f"params, gpio, midi)")
    return out
