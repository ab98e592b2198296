"""What the fuzz tests share: how many examples they draw (PEDAL_FUZZ_EXAMPLES, a multiple
of it for the cheap ones; bench/reliability.py asks for more), and with PEDAL_FUZZ_LOG set,
one JSON line per input they try, which bench/reliability.py counts for BENCHMARKS.md."""
import json
import os

EXAMPLES = int(os.environ.get("PEDAL_FUZZ_EXAMPLES", "25"))


def record(kind, what, outcome):
    path = os.environ.get("PEDAL_FUZZ_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": kind, "input": what, "outcome": outcome}) + "\n")
