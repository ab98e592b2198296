"""Every model file the pedal reads, behind one call: load_model(path) -> Model.

The pedal's own `.pedal` files, Neural Amp Modeler `.nam`, RTNeural / AIDA-X JSON and
GuitarML JSON are recognised by content, not by extension. A PyTorch `.pt` needs the desktop
converter (pedal-convert), which has torch.
"""
from __future__ import annotations

import json
import os

from ...errors import ModelError
from ...files import read_regular
from .. import file as modelfile
from ..file import Model
from .nam import is_nam, read_nam
from .rtneural import is_guitarml, is_rtneural, read_guitarml, read_rtneural

_JSON_READERS = ((is_nam, read_nam), (is_rtneural, read_rtneural), (is_guitarml, read_guitarml))


def load_model(path) -> Model:
    """The Model in `path`, whatever its format; ModelError naming file and field otherwise."""
    path = os.fspath(path)
    raw = read_regular(path, modelfile.MAX_FILE_BYTES, "model file", ModelError)
    if modelfile.is_model_data(raw):
        return modelfile.decode(raw, path)
    doc = _parse_json(raw, path)
    for recognises, read in _JSON_READERS:
        if recognises(doc):
            model = read(doc, path).check(path)
            model.provenance.setdefault("source", os.path.basename(path))
            return model
    raise ModelError(path, "not a model this pedal knows: expected a .pedal file, a .nam, "
                           "RTNeural/AIDA-X JSON or GuitarML JSON")


def _parse_json(raw, path):
    if raw[:2] == b"PK" or raw[:1] == b"\x80":
        raise ModelError(path, "this looks like a PyTorch checkpoint; convert it on the desktop "
                               "with pedal-convert")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ModelError(path, "not a model file (binary content, not JSON)") from None
    except ValueError as e:
        raise ModelError(path, f"not valid JSON (truncated?): {e}") from None
    except RecursionError:
        raise ModelError(path, "JSON nested too deeply") from None
