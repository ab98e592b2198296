"""Every model file the pedal reads, behind one call: load_model(path) -> Model.

The pedal's own `.pedal` files, Neural Amp Modeler `.nam`, RTNeural / AIDA-X JSON and
GuitarML JSON are recognised by content, not by extension. A PyTorch `.pt` needs the desktop
converter (pedal-convert), which has torch.
"""
from __future__ import annotations

import json
import os
import re

from ...errors import ModelError
from ...files import read_regular
from .. import file as modelfile
from ..file import Model
from .nam import is_nam, read_nam
from .rtneural import is_guitarml, is_rtneural, read_guitarml, read_rtneural

_JSON_READERS = ((is_nam, read_nam), (is_rtneural, read_rtneural), (is_guitarml, read_guitarml))


def load_model(path, rate: int | None = None) -> Model:
    """The Model in `path`, whatever its format; ModelError naming file and field otherwise.

    `rate`: the sample rate of a file that does not state its own (GuitarML JSON never does);
    a file that states another rate is refused rather than played at the wrong one."""
    path = os.fspath(path)
    raw = read_regular(path, modelfile.MAX_FILE_BYTES, "model file", ModelError)
    if modelfile.is_model_data(raw):
        model = modelfile.decode(raw, path)
    else:
        model = _read(raw, path)
    if rate is not None:
        if not model.provenance.get("sample_rate_assumed"):
            if rate != model.sample_rate:
                raise ModelError(path, f"sample_rate: the file states {model.sample_rate} Hz, "
                                       f"not {rate}")
        else:
            model.sample_rate = int(rate)
            model.provenance.pop("sample_rate_assumed")
            model.provenance["sample_rate_given"] = True
    return model


def _read(raw, path) -> Model:
    doc = _parse_json(raw, path)
    for recognises, read in _JSON_READERS:
        if recognises(doc):
            model = read(doc, path).check(path)
            model.provenance.setdefault("source", os.path.basename(path))
            return model
    raise ModelError(path, "not a model this pedal knows: expected a .pedal file, a .nam, "
                           "RTNeural/AIDA-X JSON or GuitarML JSON")


def rate_note(model: Model, path) -> str | None:
    """The warning for a model whose sample rate was assumed: what was assumed, any hint in
    the file's name that it is wrong, and how to state the rate. None when the file says."""
    if not model.provenance.get("sample_rate_assumed"):
        return None
    name = os.path.basename(os.fspath(path))
    hint = re.search(r"(?<![0-9a-z])(22|32|44|48|88|96)(?:[._,]?[0-9])?k(?:hz)?(?![a-z])", name,
                     re.IGNORECASE)
    said = f", but its name says {hint.group(0)}" if hint else ""
    source = str(model.provenance.get("source_format", "")).split(" ")[0]
    why = {"guitarml": "GuitarML's usual rate", "nam": "NAM's default",
           "rtneural": "RTNeural's default"}.get(source, "the default")
    return (f"{name} does not state its sample rate: assuming {model.sample_rate} Hz ({why})"
            f"{said}; if that is wrong, convert it with pedal-convert --rate RATE")


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
