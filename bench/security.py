"""The systemd unit's hardening score. Writes its section of BENCHMARKS.md.

    python bench/security.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import replace_section  # noqa: E402

UNIT = os.path.join(HERE, "..", "deploy", "pedal.service")


def main():
    folder = tempfile.mkdtemp()
    unit = os.path.join(folder, "pedal.service")
    # verify and security need the ExecStart binary to exist: point it at this machine's
    text = open(UNIT).read()
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={shutil.which('pedal')}", text, flags=re.M)
    open(unit, "w").write(text)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                       capture_output=True, text=True)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", r.stdout)
    if not score:
        raise SystemExit(r.stdout + r.stderr)
    version = subprocess.run(["systemd-analyze", "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0]
    print(f"exposure {score[1]} {score[2]}")
    replace_section("security", "systemd hardening of deploy/pedal.service",
                    "python bench/security.py", [
                        f"`systemd-analyze security --offline=true` ({version}): overall "
                        f"exposure **{score[1]} {score[2]}** (0 is the most locked down, 10 "
                        f"the least). `systemd-analyze verify` prints nothing for the unit "
                        f"(tests/test_deploy.py fails on any output)."])


if __name__ == "__main__":
    main()
