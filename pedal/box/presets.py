"""Named presets (model, IR, every parameter) as JSON files in the pedal's state directory.

Written atomically (temp file, fsync, rename, fsync of the folder), so a power cut mid-save
leaves the old preset or the new one, never a broken file. A corrupt or unreadable preset
is skipped with one log line. `last-state.json` holds what was playing, restored at boot.
"""
import contextlib
import json
import os
import re

from ..errors import PedalError
from ..files import fsync_dir, read_regular, write_atomic

LAST_STATE = "last-state"
MAX_BYTES = 1 << 20
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def default_state_dir():
    """The service's $STATE_DIRECTORY (/var/lib/pedal), else $XDG_STATE_HOME/pedal
    (~/.local/state/pedal)."""
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"]
    home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(home, "pedal")


class Presets:
    def __init__(self, folder=None, log=print):
        self.folder = folder or default_state_dir()
        self.log = log
        os.makedirs(os.path.join(self.folder, "presets"), exist_ok=True)
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self):
        """A save cut short (power cut, kill -9) leaves its temporary file: never the preset
        itself, which is the old or the new one."""
        for folder in (self.folder, os.path.join(self.folder, "presets")):
            for entry in os.listdir(folder):
                if entry.startswith(".tmp-"):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(folder, entry))

    def _path(self, name):
        if not isinstance(name, str) or not NAME.match(name) or name == LAST_STATE:
            raise PedalError("preset", f"{name!r} is not a preset name (letters, digits, "
                                       f"space, _ . -, at most 64)")
        return os.path.join(self.folder, "presets", name + ".json")

    def names(self):
        """The presets that read back cleanly, sorted; broken ones are logged and skipped."""
        out = []
        for entry in sorted(os.listdir(os.path.join(self.folder, "presets"))):
            if entry.endswith(".json") and not entry.startswith("."):
                name = entry[:-5]
                if self._read(os.path.join(self.folder, "presets", entry)) is not None:
                    out.append(name)
        return out

    def load(self, name):
        state = self._read(self._path(name))
        if state is None:
            raise PedalError(name, "preset missing or unreadable")
        return state

    def save(self, name, state):
        write_atomic(self._path(name), _encode(state))

    def delete(self, name):
        path = self._path(name)
        try:
            os.unlink(path)
        except FileNotFoundError:       # never there, or deleted a moment ago by another
            raise PedalError(name, "no such preset") from None
        fsync_dir(os.path.dirname(path))

    def save_last(self, state):
        write_atomic(os.path.join(self.folder, LAST_STATE + ".json"), _encode(state))

    def load_last(self):
        path = os.path.join(self.folder, LAST_STATE + ".json")
        return self._read(path) if os.path.exists(path) else None

    def _read(self, path):
        if not os.path.lexists(path):
            return None
        try:
            state = json.loads(read_regular(path, MAX_BYTES, "preset").decode("utf-8"))
            return _check(state, path)
        except (UnicodeDecodeError, ValueError, RecursionError, PedalError) as e:
            self.log(f"preset {path} skipped: {e}")
            return None


def _encode(state):
    return json.dumps(_check(state, "preset"), indent=2, sort_keys=True).encode() + b"\n"


def _check(state, where):
    """A preset is {"model": path|None, "ir": path|None, "params": {name: number}}."""
    if not isinstance(state, dict):
        raise PedalError(where, "not a JSON object")
    for key in ("model", "ir"):
        if state.get(key) is not None and not isinstance(state[key], str):
            raise PedalError(where, f"{key}: expected a file path")
    params = state.get("params", {})
    if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in params.items()):
        raise PedalError(where, "params: expected names with numbers")
    return {"model": state.get("model"), "ir": state.get("ir"), "params": dict(params)}
