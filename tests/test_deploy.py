"""Deployment: the systemd unit (verify, hardening score), the Pi install/uninstall scripts
(shellcheck, --dry-run) and pedal-push (dry run, fake ssh/scp on PATH; never a network)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "pedal.service"
# `systemd-analyze security --offline=true` overall exposure (0 = locked down, 10 = none):
# 0.9 for this unit with systemd 252 (Debian bookworm, as on Raspberry Pi OS). It cannot go
# lower without losing what the pedal needs: realtime scheduling, ALSA/GPIO/SPI devices,
# supplementary groups, chown of the control socket. Fail if a change loosens it.
MAX_EXPOSURE = 1.5


def _need(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (apt-get install "
                    f"{'systemd' if tool == 'systemd-analyze' else tool})")
    return path


def _unit_for_verify(tmp_path):
    """The unit with ExecStart pointing at a binary that exists here: verify fails on a
    missing ExecStart binary, and /opt/pedal/venv/bin/pedal only exists on an installed Pi.
    The `pedal` console script of this checkout (or this Python) stands in for it."""
    text = UNIT.read_text()
    assert re.search(r"^ExecStart=/opt/pedal/venv/bin/pedal run$", text, re.M)
    exe = shutil.which("pedal") or sys.executable
    out = tmp_path / "pedal.service"
    out.write_text(re.sub(r"^ExecStart=\S+", f"ExecStart={exe}", text, flags=re.M))
    return out


def test_unit_settings():
    text = UNIT.read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    want = {"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "5",
            "Restart": "on-failure", "RestartSec": "2", "User": "pedal", "Group": "pedal",
            "LimitRTPRIO": "95", "LimitMEMLOCK": "infinity", "StateDirectory": "pedal",
            "ConfigurationDirectory": "pedal", "RuntimeDirectory": "pedal",
            "RestrictRealtime": "no", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
            "CapabilityBoundingSet": "", "DevicePolicy": "closed",
            "SupplementaryGroups": "audio gpio spi"}
    for key, value in want.items():
        assert settings.get(key) == [value], key
    assert "CPUSchedulingPolicy" not in settings    # would make every thread FIFO


def test_unit_verifies_without_output(tmp_path):
    _need("systemd-analyze")
    unit = _unit_for_verify(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, text=True, cwd=tmp_path)
    # Unknown keys and bad values are only warnings with exit 0: any output is a failure.
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_unit_verify_catches_a_bad_key(tmp_path):
    """The check above would see a mistake (guards against a silently passing verify)."""
    _need("systemd-analyze")
    unit = _unit_for_verify(tmp_path)
    unit.write_text(unit.read_text().replace("[Service]\n", "[Service]\nNoSuchKey=1\n"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert "NoSuchKey" in r.stdout + r.stderr


def test_unit_security_exposure(tmp_path):
    _need("systemd-analyze")
    unit = _unit_for_verify(tmp_path)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                       capture_output=True, text=True, cwd=tmp_path)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    score = float(m.group(1))
    print(f"systemd-analyze security exposure of pedal.service: {score}")
    assert score <= MAX_EXPOSURE


# ---- install / uninstall scripts ------------------------------------------------------

@pytest.mark.parametrize("script", ["deploy/install-pi.sh", "deploy/uninstall-pi.sh",
                                    "deploy/install-dev.sh", "deploy/arm64-check.sh",
                                    ".ci/run"])
def test_shellcheck(script):
    _need("shellcheck")
    if not (ROOT / script).exists():
        pytest.skip(f"{script} not in this checkout")
    r = subprocess.run(["shellcheck", "-x", script], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def _script(name, *args):
    return subprocess.run(["bash", str(DEPLOY / name), *args], capture_output=True,
                          text=True, cwd="/")


def test_install_dry_run_prints_the_steps():
    r = _script("install-pi.sh", "--dry-run", "--isolcpus", "3", "--push-user", "pi")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for expected in [
        "apt-get -o DPkg::Lock::Timeout=300 install",
        "python3-venv", "python3-dev", "build-essential", "libasound2-dev", "libsndfile1",
        "alsa-utils",
        "/opt/pedal/venv/bin/python -m pip install -q --upgrade " + str(ROOT) + "[device]",
        "python3 -m venv /opt/pedal/venv",
        "write /etc/pedal/pedal.toml",
        "install -d -m 2770 -o pedal -g pedal /var/lib/pedal/models",
        "install -m 0644 " + str(DEPLOY / "pedal.service") + " /etc/systemd/system/pedal.service",
        "write /etc/systemd/system/pedal-cpu-performance.service",
        "echo performance",
        "write /etc/security/limits.d/pedal.conf",
        "isolcpus=3",
        "/boot/firmware/cmdline.txt.pedal-backup",
        "systemctl enable pedal-cpu-performance.service pedal.service",
        "systemctl restart pedal.service",
    ]:
        assert expected in out, expected
    assert "torch" not in out.replace("(no torch)", "")
    # useradd or usermod, depending on whether this machine has a user pedal already
    assert re.search(r"\+ (useradd .*--groups audio,gpio,spi pedal|usermod -a -G "
                     r"audio,gpio,spi pedal)", out)


def test_install_config_template_is_valid():
    """The pedal.toml the script writes loads with pedal.box.config."""
    from pedal.box.config import load_config
    r = _script("install-pi.sh", "--dry-run")
    block = re.search(r"\+ write /etc/pedal/pedal.toml.*?\n((?:\|.*\n)+)", r.stdout)
    assert block, r.stdout
    toml = "".join(line[4:] + "\n" for line in block.group(1).splitlines())
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pedal-template-{os.getpid()}.toml"
    path.write_text(toml)
    try:
        cfg = load_config(str(path))
    finally:
        path.unlink()
    assert set(cfg) >= {"audio", "pedal", "params"}


def test_install_rejects_bad_options():
    assert _script("install-pi.sh", "--dry-run", "--isolcpus", "three").returncode == 2
    assert _script("install-pi.sh", "--frobnicate").returncode == 2


def _as_nobody(script):
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the script as an unprivileged user")
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "bash", str(DEPLOY / script)], capture_output=True, text=True,
                          cwd="/")


@pytest.mark.parametrize("script", ["install-pi.sh", "uninstall-pi.sh"])
def test_scripts_refuse_non_root(script):
    r = _as_nobody(script)
    assert r.returncode == 1
    assert "must run as root" in r.stderr


def test_uninstall_dry_run():
    r = _script("uninstall-pi.sh", "--dry-run")
    assert r.returncode == 0, r.stderr
    for expected in ["systemctl disable --now pedal.service pedal-cpu-performance.service",
                     "rm -f /etc/systemd/system/pedal.service",
                     "rm -f /etc/systemd/system/pedal-cpu-performance.service",
                     "rm -rf /opt/pedal", "rm -f /etc/security/limits.d/pedal.conf",
                     "mv -f /boot/firmware/cmdline.txt.pedal-backup", "kept /var/lib/pedal"]:
        assert expected in r.stdout, expected
    assert "rm -rf /var/lib/pedal" not in r.stdout
    purge = _script("uninstall-pi.sh", "--dry-run", "--purge")
    assert "rm -rf /var/lib/pedal /etc/pedal" in purge.stdout
    assert "userdel pedal" in purge.stdout


# ---- pedal-push -----------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    src = tmp_path / "src"
    (src / "presets").mkdir(parents=True)
    paths = {"model": src / "drive.pedal", "nam": src / "amp.nam", "ir": src / "4x12 v30.wav",
             "preset": src / "presets" / "clean.json", "json_model": src / "lstm.json",
             "text": src / "notes.txt"}
    for p in paths.values():
        p.write_bytes(b"data")
    return {k: str(v) for k, v in paths.items()}


def _push(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pedal.tools.push", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def _fake_ssh(tmp_path, ssh_exit=0, scp_exit=0):
    """ssh and scp that log their argv (one JSON list a line) and exit as told."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool, code in (("ssh", ssh_exit), ("scp", scp_exit)):
        script = bin_dir / tool
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            f"with open({str(log)!r}, 'a') as f:\n"
            "    f.write(json.dumps(sys.argv) + '\\n')\n"
            f"if {code} == 255:\n"
            "    sys.stderr.write('ssh: connect to host pedal port 22: No route to host\\n')\n"
            f"sys.exit({code})\n")
        script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return env, log


def _calls(log):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_push_dry_run(files):
    r = _push("pedal.local", files["model"], files["ir"], files["preset"], "--dry-run",
              "--user", "me", "--port", "2222")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(line.startswith("+ ssh ") or line.startswith("+ scp ") for line in lines)
    assert "BatchMode=yes" in lines[0] and "ConnectTimeout=" in lines[0]
    assert "-p 2222 me@pedal.local" in lines[0]
    assert "-P 2222" in lines[1]
    assert "me@pedal.local:/var/lib/pedal/models/.pedal-push-" in r.stdout
    assert "/var/lib/pedal/irs/4x12 v30.wav" in r.stdout
    assert "/var/lib/pedal/presets/clean.json" in r.stdout
    assert "pedal ctl --socket /run/pedal/control.sock rescan" in lines[-1]


def test_push_with_fake_ssh(tmp_path, files):
    env, log = _fake_ssh(tmp_path)
    r = _push("pedal", files["model"], files["ir"], files["preset"], files["json_model"],
              "--dest", "/srv/pedal", "--play", env=env)
    assert r.returncode == 0, r.stderr
    calls = _calls(log)
    tools = [os.path.basename(c[0]) for c in calls]
    assert tools == ["ssh", "scp", "scp", "scp", "scp", "ssh", "ssh", "ssh"]
    for c in calls:
        assert "BatchMode=yes" in c and any(a.startswith("ConnectTimeout=") for a in c)
    assert calls[0][-1] == ("mkdir -p /srv/pedal/irs /srv/pedal/models /srv/pedal/presets")
    # every file goes to a temporary name in its final folder ...
    tmp_names = {}
    for c in calls[1:5]:
        local, remote = c[-2], c[-1]
        assert remote.startswith("pi@pedal:/srv/pedal/")
        folder, name = remote.split(":", 1)[1].rsplit("/", 1)
        assert name.startswith(".pedal-push-") and name.endswith(".tmp")
        tmp_names[local] = (folder, name)
    assert tmp_names[files["model"]][0] == "/srv/pedal/models"
    assert tmp_names[files["json_model"]][0] == "/srv/pedal/models"
    assert tmp_names[files["ir"]][0] == "/srv/pedal/irs"
    assert tmp_names[files["preset"]][0] == "/srv/pedal/presets"
    # ... and is renamed there in one remote command
    renames = calls[5][-1]
    for local, (folder, name) in tmp_names.items():
        final = f"{folder}/{os.path.basename(local)}"
        assert re.search(re.escape(f"mv -f {folder}/{name} ") + r"'?" + re.escape(final),
                         renames)
    # --play: the last model pushed and the IR are loaded
    assert calls[6][-1] == ("pedal ctl --socket /run/pedal/control.sock load-model "
                            "/srv/pedal/models/lstm.json")
    assert calls[7][-1] == ("pedal ctl --socket /run/pedal/control.sock load-ir "
                            "'/srv/pedal/irs/4x12 v30.wav'")
    assert "-> pedal:/srv/pedal/models/drive.pedal" in r.stdout


def test_push_rescan_without_play(tmp_path, files):
    env, log = _fake_ssh(tmp_path)
    r = _push("pedal", files["nam"], env=env)
    assert r.returncode == 0, r.stderr
    assert _calls(log)[-1][-1] == "pedal ctl --socket /run/pedal/control.sock rescan"


def test_push_nothing_just_rescans(tmp_path):
    env, log = _fake_ssh(tmp_path)
    r = _push("pedal", env=env)
    assert r.returncode == 0, r.stderr
    assert [c[-1] for c in _calls(log)] == ["pedal ctl --socket /run/pedal/control.sock rescan"]


def test_push_missing_file(tmp_path, files):
    env, log = _fake_ssh(tmp_path)
    r = _push("pedal", files["model"], str(tmp_path / "gone.nam"), env=env)
    assert r.returncode == 2
    assert "gone.nam: no such file" in r.stderr
    assert _calls(log) == []        # checked before any network


def test_push_unknown_type(tmp_path, files):
    env, log = _fake_ssh(tmp_path)
    r = _push("pedal", files["text"], env=env)
    assert r.returncode == 2
    assert "notes.txt: unknown file type .txt" in r.stderr
    assert _calls(log) == []


def test_push_unreachable_host(tmp_path, files):
    env, log = _fake_ssh(tmp_path, ssh_exit=255)
    r = _push("pedal", files["model"], env=env)
    assert r.returncode == 2
    assert "cannot reach the pedal over SSH" in r.stderr and "No route to host" in r.stderr
    assert len(_calls(log)) == 1    # gave up after the first contact


def test_push_copy_failure_cleans_up(tmp_path, files):
    env, log = _fake_ssh(tmp_path, scp_exit=1)
    r = _push("pedal", files["model"], env=env)
    assert r.returncode == 1
    calls = _calls(log)
    assert calls[-1][-1].startswith("rm -f /var/lib/pedal/models/.pedal-push-")
    assert not any("mv -f" in c[-1] for c in calls)


def test_reload_commands_are_easy_to_adjust():
    from pedal.tools.push import reload_commands
    pushed = [("/x/a.pedal", "models", "/var/lib/pedal/models/a.pedal")]
    assert reload_commands(pushed, play=True, socket="/s") == [
        ["pedal", "ctl", "--socket", "/s", "load-model", "/var/lib/pedal/models/a.pedal"]]
    assert reload_commands(pushed, play=False, socket="/s") == [
        ["pedal", "ctl", "--socket", "/s", "rescan"]]


MDWE_CHECK = r"""
import ctypes, ctypes.util, os, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:          # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print("unsupported", os.strerror(ctypes.get_errno()))
    sys.exit(0)
import numpy as np
from pedal import models
from pedal.dsp.chain import Chain
chain = Chain()
chain.reset(48000, 64)
chain.load_now(models.default_model(), None)
x = (0.1 * np.sin(np.arange(64 * 50, dtype=np.float32) / 10)).astype(np.float32)
y = np.zeros_like(x)
for i in range(0, len(x), 64):
    chain.process(x[i:i + 64], y[i:i + 64])
a = np.random.rand(200, 200).astype(np.float32)
assert np.isfinite(y).all() and np.isfinite(a @ a).all()
print("ok")
"""


def test_memory_deny_write_execute_is_safe():
    """The unit sets MemoryDenyWriteExecute=yes: the chain (numpy, scipy's OpenBLAS, the
    Cython kernels) must run with writable+executable mappings refused. The kernel's
    PR_SET_MDWE (Linux 6.3+) enforces the same rule as systemd's seccomp filter."""
    r = subprocess.run([sys.executable, "-c", MDWE_CHECK], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    if r.stdout.startswith("unsupported"):
        pytest.skip(f"PR_SET_MDWE not supported by this kernel ({r.stdout.strip()})")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
