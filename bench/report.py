"""BENCHMARKS.md is written by the benchmark scripts, one marked section each."""
import os
import re

from pedal.files import write_atomic

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "BENCHMARKS.md")
HEAD = ("# Benchmarks\n\nEvery figure here was written by the command shown above it; rerun "
        "that command to refresh its section.\n")


def replace_section(key, title, command, lines):
    """Replace (or append) the section `key`, keeping every other section as it was."""
    text = open(PATH).read() if os.path.exists(PATH) else HEAD
    body = "\n".join([f"<!-- {key}:start -->", f"## {title}", "", "```", f"$ {command}", "```",
                      "", *lines, f"<!-- {key}:end -->"])
    pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.S)
    text = pattern.sub(lambda m: body, text) if pattern.search(text) else \
        text.rstrip("\n") + "\n\n" + body + "\n"
    write_atomic(PATH, text.encode())
