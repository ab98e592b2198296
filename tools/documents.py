"""The tool chain's JSON documents (signal layout, reamp manifest, aligned capture): each has
a format name and a version, and a reader that names the file and the field at fault."""
import json

from pedal.errors import PedalError
from pedal.files import read_regular

MAX_BYTES = 64 << 20


def read_document(path, fmt, version, missing="no such file"):
    """The JSON object at `path` of format `fmt` and `version`; `missing` says what to do
    when there is no file."""
    try:
        raw = read_regular(path, MAX_BYTES, f"{fmt} document")
    except PedalError as e:
        if e.problem == "no such file":
            raise PedalError(path, missing) from None
        raise
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise PedalError(path, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise PedalError(path, f"format: {found!r}, expected {fmt!r}")
    if doc.get("version") != version:
        raise PedalError(path, f"version: {doc.get('version')!r}, this reader knows {version}")
    return doc
