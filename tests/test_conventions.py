"""What every console script shares (pedal.cli.common): --version, -q/-v, --json results,
-o/--output and --force, one error prefix, the same range checks whichever way a value comes
in, bash completion generated from the parsers, the example config with every key, and the
XDG folders."""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import soundfile as sf

from pedal import __version__, cli, models
from pedal.box import config, gpio, midi
from pedal.cli import completion
from pedal.signals import guitar_phrase

ROOT = Path(__file__).resolve().parents[1]


def scripts():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_completion_knows_every_console_script():
    assert set(completion.SCRIPTS) == set(scripts())
    for name, target in scripts().items():
        assert completion.SCRIPTS[name].split(":")[0] == target.split(":")[0]


@pytest.mark.parametrize("script", sorted(scripts()))
def test_version_and_verbosity_everywhere(script, capsys):
    parser = completion.parsers()[script]
    table = {}
    completion.walk(parser, script, table)
    for path, entry in table.items():              # the command and each subcommand
        assert {"--version", "-q", "--quiet", "-v", "--verbose", "-h"} <= set(entry["opts"]), \
            path
    module, _, function = scripts()[script].partition(":")
    main = getattr(__import__(module, fromlist=[function]), function)
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"{script} {__version__}\n"


@pytest.mark.parametrize("script", sorted(scripts()))
def test_outputs_are_named_one_way(script):
    """-o is --output wherever a command writes something it is told to, never --out."""
    table = {}
    completion.walk(completion.parsers()[script], script, table)
    for path, entry in table.items():
        assert "--out" not in entry["opts"], path
        if "-o" in entry["opts"]:
            assert "--output" in entry["opts"], path


def test_bash_completion(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = tmp_path / "pedal.bash"
    script.write_text(completion.bash_script())

    def complete(*words):
        line = " ".join(f"'{w}'" for w in words)
        r = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({line}); "
                                          f"COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); "
                                          "_pedal_complete; printf '%s\\n' \"${COMPREPLY[@]}\""],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return set(r.stdout.split())

    assert complete("pedal", "ru") == {"run"}
    assert complete("pedal", "ctl", "midi-l") == {"midi-learn"}
    assert complete("pedal", "ctl", "--socket", "x", "set", "tre") == {"treble_db"}
    assert complete("pedal", "-q", "run", "--format", "S24") == {"S24_LE", "S24_3LE"}
    assert complete("pedal", "render", "--par") == {"--param"}
    assert complete("pedal-convert", "m.nam", "--quantize", "") == {"fp32", "fp16", "int8"}
    (tmp_path / "clip.wav").write_bytes(b"")
    assert complete("pedal", "render", "cl") == {"clip.wav"}


# -- results, outputs, errors -------------------------------------------------------------------
@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "in.wav"
    sf.write(path, guitar_phrase(0.5, 44100, seed=3), 44100, subtype="FLOAT")
    return str(path)


def test_render_json_force_and_quiet(tmp_path, wav, capsys):
    out = str(tmp_path / "out.wav")
    assert cli.main(["render", "-m", models.default_model(), wav, out, "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["output"] == out and result["seconds"] == pytest.approx(0.5)
    assert "resampling" in captured.err                 # a note: 44.1 kHz into a 48 kHz model
    assert cli.main(["render", "-m", models.default_model(), wav, out]) == 2
    err = capsys.readouterr().err
    assert err == f"pedal: {out}: exists; --force replaces it\n"
    assert cli.main(["render", "-q", "--force", "-m", models.default_model(), wav, out]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "rendered 0.50 s" in captured.out


def test_convert_and_namexport_refuse_to_overwrite(tmp_path, shared_dir, capsys):
    from pedal.tools import convert, namexport
    src = str(shared_dir / "reference/nam/wavenet.nam")
    out = tmp_path / "w.pedal"
    assert convert.main([src, "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output"] == str(out) and result["bytes"] == out.stat().st_size
    before = out.read_bytes()
    assert convert.main([src, "-o", str(out)]) == 2
    assert "exists; --force replaces it" in capsys.readouterr().err
    assert convert.main([src, "-o", str(out), "--force", "--quantize", "fp16"]) == 0
    assert out.read_bytes() != before and "wrote" in capsys.readouterr().out
    nam = tmp_path / "w.nam"
    assert namexport.main([str(out), "-o", str(nam), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"output": str(nam)}
    assert namexport.main([str(out), "-o", str(nam)]) == 2
    assert capsys.readouterr().err.startswith(f"pedal-namexport: {nam}: exists")


def test_capture_signal_output_json_and_force(tmp_path, capsys):
    from pedal.tools import capture
    out = str(tmp_path / "sig.wav")
    assert capture.main(["signal", "--output", out, "--seconds", "90", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == out
    assert capture.main(["signal", "-o", out, "--seconds", "90"]) == 2
    assert "--force" in capsys.readouterr().err


def test_the_same_range_check_in_render_run_and_ctl(tmp_path, wav, capsys):
    """A value out of range gets the same one line from `render`, `run` and `ctl`."""
    from pedal.box.control import ControlServer
    from pedal.box.pedal import Pedal
    from pedal.box.presets import Presets
    from pedal.dsp.chain import Chain
    from pedal.dsp.loader import Loader
    lines = {}
    assert cli.main(["render", "--chain", "-m", models.default_model(), "--param",
                     "bass_db=99", wav, str(tmp_path / "a.wav")]) == 2
    lines["render"] = capsys.readouterr().err
    assert cli.main(["render", "-m", models.default_model(), "--param", "drive=2", wav,
                     str(tmp_path / "b.wav")]) == 2
    lines["render knob"] = capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "pedal.cli", "run", "--param", "bass_db=99",
                        "--seconds", "0.1", "--socket", "none", "--state-dir",
                        str(tmp_path / "s")], capture_output=True, text=True, cwd=tmp_path)
    lines["run"] = r.stderr.splitlines()[-1] + "\n"
    chain = Chain()
    chain.reset(48000, 64)
    chain.load_now(models.default_model())
    pedal = Pedal(chain, Loader(chain), Presets(str(tmp_path / "state")), log=lambda m: None)
    server = ControlServer(pedal, str(tmp_path / "ctl.sock"), log=lambda m: None)
    try:
        for name, value in (("ctl", "99"), ("ctl knob", "2")):
            param = "bass_db" if name == "ctl" else "drive"
            assert cli.main(["ctl", "--socket", server.path, "set", param, value]) == 2
            lines[name] = capsys.readouterr().err
    finally:
        server.stop()
    assert lines["render"] == lines["run"] == lines["ctl"] == \
        "pedal: bass_db: 99 is outside -12..12 dB\n", lines
    assert lines["render knob"] == lines["ctl knob"] == "pedal: drive: 2 is outside 0..1\n"


def test_a_chain_parameter_without_the_chain_is_refused_not_ignored(tmp_path, wav, capsys):
    assert cli.main(["render", "-m", models.default_model(), "--param", "bass_db=3", wav,
                     str(tmp_path / "o.wav")]) == 2
    assert "add --chain" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_errors_have_one_prefix_per_console_script(tmp_path):
    missing = str(tmp_path / "missing.nam")
    for argv, prefix in ((["pedal", "info", missing], "pedal: "),
                         (["pedal-convert", missing], "pedal-convert: "),
                         (["pedal-namexport", missing], "pedal-namexport: "),
                         (["pedal", "run", "--frobnicate"], "pedal: "),
                         (["pedal", "run", "--seconds", "x"], "pedal: run: argument --seconds"),
                         (["pedal-capture", "signal", "--rate", "x"],
                          "pedal-capture: signal: argument --rate"),
                         (["pedal-capture", "signal", "--seconds", "1"], "pedal-capture: ")):
        exe = shutil.which(argv[0])
        if exe is None:
            pytest.skip(f"{argv[0]} is not installed")
        r = subprocess.run([exe, *argv[1:]], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith(prefix), (argv, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


# -- the config --------------------------------------------------------------------------------
EXAMPLE = ROOT / "deploy" / "pedal.toml"


def test_the_example_config_loads_and_has_every_key():
    cfg = config.load_config(str(EXAMPLE))
    doc = tomllib.loads(EXAMPLE.read_text())
    assert set(doc["audio"]) == set(config.AUDIO_KEYS)
    assert set(doc["pedal"]) == set(config.PEDAL_KEYS)
    from pedal.dsp.params import PARAMS
    assert set(doc["params"]) == set(PARAMS)
    g = doc["gpio"]
    assert set(g) == set(gpio.TOP_KEYS)
    assert set(g["encoder"][0]) == set(gpio.ENCODER_KEYS)
    assert set(g["pot"][0]) == set(gpio.POT_KEYS)
    m = doc["midi"]
    assert set(m) == set(midi.TOP_KEYS)
    assert set(m["program"][0]) == set(midi.PROGRAM_KEYS)
    assert set(m["cc"][0]) == set(midi.CC_KEYS)
    assert set(m["switch"][0]) <= set(midi.SWITCH_KEYS)          # a note or a cc, not both
    assert gpio.parse_config(cfg["gpio"])["encoder"] and midi.parse_config(cfg["midi"])["cc"]


def test_the_installed_config_is_the_example_commented_out(tmp_path):
    """install-pi.sh writes deploy/pedal.toml with every setting commented out: it loads,
    and sets nothing."""
    r = subprocess.run(["bash", str(ROOT / "deploy" / "install-pi.sh"), "--dry-run"],
                       capture_output=True, text=True, cwd="/")
    block = re.search(r"\+ write /etc/pedal/pedal.toml.*?\n((?:\|.*\n)+)", r.stdout)
    assert block, r.stdout
    text = "".join(line[4:] + "\n" for line in block.group(1).splitlines())
    (tmp_path / "pedal.toml").write_text(text)
    cfg = config.load_config(str(tmp_path / "pedal.toml"))
    assert cfg["audio"] == cfg["pedal"] == cfg["params"] == {}
    uncommented = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
    assert all(re.fullmatch(r"\[[a-z]+\]", l) for l in uncommented), uncommented
    assert len(text.splitlines()) == len(EXAMPLE.read_text().splitlines())


def test_unknown_tables_and_bad_midi_tables_are_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[midl]\ndevice = 'auto'\n")
    with pytest.raises(config.PedalError, match=r"\[midl\]: unknown table"):
        config.load_config(str(path))
    path.write_text("[midi]\nchannel = 99\n")
    with pytest.raises(config.PedalError, match="channel = 99"):
        config.load_config(str(path))


def test_xdg_folders_are_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert config.search_path()[0] == str(tmp_path / "cfg" / "pedal" / "pedal.toml")
    assert config.find_config() in (None, config.SYSTEM_CONFIG)
    (tmp_path / "cfg" / "pedal").mkdir(parents=True)
    (tmp_path / "cfg" / "pedal" / "pedal.toml").write_text("[params]\nbass_db = 2\n")
    assert config.find_config() == str(tmp_path / "cfg" / "pedal" / "pedal.toml")
    from pedal.box.presets import default_state_dir
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_state_dir() == str(tmp_path / "state" / "pedal")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == os.path.expanduser("~/.local/state/pedal")

