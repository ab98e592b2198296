"""pedal tune: the screen it draws and what its keys ask of the pedal."""
import curses
import subprocess
import sys

from test_control import served  # noqa: F401  (the fixture: a pedal behind a socket)

from pedal.box import tune


def test_screen_shows_levels_load_and_parameters():
    status = {"model": "Amp", "preset": "clean", "bypass": True, "in_peak_dbfs": -30.0,
              "out_peak_dbfs": float("-inf"), "load_pct_median": 12.5, "load_pct_p99": 20.0,
              "xruns": 3, "in_clipped": 0, "out_clipped": 2}
    lines = tune.screen_lines(status, {"bass_db": 2.0, "ir_mix": 0.5}, 1, width=80)
    assert "Amp" in lines[0] and "clean" in lines[0] and "BYPASS" in lines[0]
    bar = lines[1].split()[1]
    assert bar.count("#") == round(len(bar) / 2)          # -30 dBFS: half of the 60 dB scale
    assert set(lines[2].split()[1]) == {"."} and "-inf" in lines[2]
    assert "12.5%" in lines[3] and "xruns 3" in lines[3] and "out 2" in lines[3]
    assert lines[6].startswith(">") and "ir_mix" in lines[6]


def test_keys_map_to_requests():
    values = {"bass_db": 2.0, "ir_mix": 0.5}
    names = list(values)
    assert tune.action(curses.KEY_DOWN, names, 0, values) == (None, 1)
    assert tune.action(curses.KEY_UP, names, 0, values) == (None, 0)
    assert tune.action(curses.KEY_RIGHT, names, 0, values)[0] == \
        {"cmd": "set", "name": "bass_db", "value": 3.0}
    assert tune.action(ord("["), names, 1, values)[0]["value"] == 0.5 - 10 * 0.05
    assert tune.action(ord("b"), names, 0, values)[0] == {"cmd": "bypass"}


def test_tune_once_draws_the_running_pedal(served):  # noqa: F811
    pedal, path, shared = served
    r = subprocess.run([sys.executable, "-m", "pedal.cli", "tune", "--once", "--socket", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Test Model" in r.stdout and "output_level_db" in r.stdout
