"""The reliability figures: hostile inputs tried against every console script and a running
pedal, saves cut short by kill -9, and what came of each (BENCHMARKS.md, "Reliability").

    python bench/reliability.py [--examples 200] [--kill-loops 100]

Runs the fuzz tests (tests/test_fuzz_cli.py, tests/test_reliability.py) with more examples
than CI does, has them log every input they try, and counts the outcomes: refused with one
line, played or done, and the ones that must stay at zero: crashes (any other exit status),
hangs, tracebacks, a stopped pedal, lost state.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import replace_section  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=200, help="hypothesis examples per command")
    p.add_argument("--kill-loops", type=int, default=100, help="kill -9 during saves, times")
    args = p.parse_args()
    log = tempfile.mktemp(prefix="pedal-fuzz-", suffix=".jsonl")
    env = dict(os.environ, PEDAL_FUZZ_EXAMPLES=str(args.examples), PEDAL_FUZZ_LOG=log,
               PEDAL_KILL_LOOPS=str(args.kill_loops))
    tests = ["tests/test_fuzz_cli.py", "tests/test_reliability.py::"
             "test_hostile_control_messages_never_stop_the_pedal", "tests/test_reliability.py::"
             "test_after_the_abuse_the_pedal_plays_clean_audio", "tests/test_reliability.py::"
             "test_kill_9_during_saves_never_loses_a_preset"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                       cwd=os.path.join(HERE, ".."), env=env)
    counts = collections.defaultdict(collections.Counter)
    with open(log) as f:
        for line in f:
            entry = json.loads(line)
            counts[entry["kind"]][entry["outcome"]] += 1
    os.unlink(log)
    rows = ["| inputs | tried | done | refused (one line) | other exit status | hangs | "
            "tracebacks | pedal stopped | lost state |", "|---|---|---|---|---|---|---|---|---|"]
    labels = {"cli": "console scripts: arguments and input files",
              "control": "control socket: messages to a playing pedal",
              "kill-9": "kill -9 during saves"}
    for kind in ("cli", "control", "kill-9"):
        c = counts[kind]
        other = sum(v for k, v in c.items() if k.startswith("status"))
        rows.append(f"| {labels[kind]} | {sum(c.values())} | {c['ok']} | {c['refused']} | "
                    f"{other} | {c['hang']} | {c['traceback']} | {c['pedal stopped']} | "
                    f"{c['lost']} |")
    rows += ["", f"pytest exit status {r.returncode}; every count after \"refused\" must be 0. "
             "The commands and the vocabulary of bad values and files are in "
             "tests/test_fuzz_cli.py; the control messages (random JSON, raw bytes, hostile "
             "paths for load-model/load-ir) in tests/test_reliability.py."]
    print("\n".join(rows))
    replace_section("reliability", "Reliability: hostile inputs and kill -9",
                    f"python bench/reliability.py --examples {args.examples} "
                    f"--kill-loops {args.kill_loops}", rows)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
