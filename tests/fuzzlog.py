"""With PEDAL_FUZZ_LOG set, the fuzz tests write one JSON line per input they try, which
bench/reliability.py counts for BENCHMARKS.md."""
import json
import os


def record(kind, what, outcome):
    path = os.environ.get("PEDAL_FUZZ_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": kind, "input": what, "outcome": outcome}) + "\n")
