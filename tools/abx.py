"""A blind ABX test over a training report's clips: can you tell your gear from the model?

    pedal-abx REPORT_DIR [--trials N] [--page] [--seed S]

A is the gear (target.wav), B the model (model.wav), and X is one of them, drawn at random
for each trial. After A, B and X have played you answer "a" (X is A) or "b" (X is B); "r"
plays them again and "q" stops early. The score comes with the one-sided binomial p-value:
the chance of doing at least as well by guessing. Below 0.05 you reliably hear a difference;
above it the model passed for the gear, as far as this test can tell.

The terminal test plays through PortAudio (the `sounddevice` package; Debian's libportaudio2),
or ALSA's `aplay` where that is missing, and saves its result to REPORT_DIR/abx-result.json.
With neither, or with --page, it writes REPORT_DIR/abx.html instead: one self-contained page
(audio embedded, no network) that runs the same test in a browser, drawing X for each trial
when it is opened, so that its source gives nothing away.

Exit status: 0 done; 2 no clips in the folder, an unreadable clip, or a player that failed.
"""
import base64
import io
import json
import math
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from pedal.cli.common import Parser, emit, json_option, note, run_command
from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.io.audiofile import read_audio, to_mono

from .report import CLIP_FILES, fade_gain, loudest_window

EXCERPT_SECONDS = 4.0
FADE_SECONDS = 0.01
MAX_TRIALS = 100                # the page's p-value in doubles stays exact well beyond this
SIGNIFICANT_P = 0.05
PAGE_FILE = "abx.html"
RESULT_FILE = "abx-result.json"
ANSWERS = {"a": "a", "b": "b", "x=a": "a", "x=b": "b", "x is a": "a", "x is b": "b"}
QUIT, REPLAY = "q", "r"


def binomial_p_value(correct, trials):
    """P(at least `correct` right out of `trials` by coin-flipping), exact."""
    if not 0 <= correct <= trials:
        raise ValueError(f"correct={correct} must lie in 0..trials={trials}")
    # integer sum, one correctly rounded division
    return sum(math.comb(trials, k) for k in range(correct, trials + 1)) / 2 ** trials


def interpret(correct, trials, p_value):
    """The result line a listener reads."""
    score = f"{correct}/{trials} correct, p = {p_value:.3g}"
    if trials and p_value < SIGNIFICANT_P:
        return f"{score}: you hear a difference between the gear and the model"
    return f"{score}: no reliable difference heard (guessing does this well that often)"


# ---------------------------------------------------------------- clips

def load_clips(folder):
    """{"target": path, "model": path} of a report folder, or a PedalError naming it."""
    paths = {key: os.path.join(folder, CLIP_FILES[key]) for key in ("target", "model")}
    if not os.path.isdir(folder) or not all(os.path.isfile(p) for p in paths.values()):
        raise PedalError(folder, f"no clips ({CLIP_FILES['target']} and "
                                 f"{CLIP_FILES['model']}): not a training report folder")
    return paths


def excerpts(clips, seconds=EXCERPT_SECONDS):
    """(A samples, B samples, rate): the same loudest `seconds` of the gear and the model,
    faded at both ends, with one common gain so that neither clips in 16-bit."""
    target, rate = _clip_audio(clips["target"])
    model, model_rate = _clip_audio(clips["model"])
    if model_rate != rate or len(model) != len(target):
        raise PedalError(_clip_name(clips["model"]), "differs from the target clip in "
                                                     "sample rate or length")
    length = min(int(seconds * rate), len(target))
    start = loudest_window(target, length)
    gain = fade_gain(length, int(FADE_SECONDS * rate))
    peak = max(np.abs(target[start:start + length]).max(),
               np.abs(model[start:start + length]).max())
    if peak > 1.0:
        gain = gain / peak
    return (target[start:start + length] * gain).astype(np.float32), \
        (model[start:start + length] * gain).astype(np.float32), rate


def _clip_audio(clip):
    """A clip given as a path, or as (samples, rate), as mono float32 and its rate."""
    if isinstance(clip, (str, os.PathLike)):
        data, rate = read_audio(clip)
        return to_mono(data, clip), rate
    samples, rate = clip
    return np.asarray(samples, np.float32).reshape(-1), int(rate)


def _clip_name(clip):
    return os.fspath(clip) if isinstance(clip, (str, os.PathLike)) else "model clip"


def wav_bytes(samples, rate):
    """16-bit PCM WAV: what every browser and aplay plays."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# ---------------------------------------------------------------- terminal

def run_terminal_abx(clips, trials, play, ask, rng, say=print, result_path=None):
    """Play A, B, X per trial through `play(samples, rate)` and read the answer from
    `ask(prompt)`. `rng.random() < 0.5` makes X the gear. Returns {"trials" (answered),
    "correct", "p_value", "answers": [{"x", "answer", "correct"}], ...}, also saved as
    JSON at `result_path` when given."""
    _check_trials(trials)
    a, b, rate = excerpts(clips)
    answers = []
    for trial in range(1, trials + 1):
        x_is = "a" if rng.random() < 0.5 else "b"
        answer = _one_trial(trial, trials, (a, b, a if x_is == "a" else b), rate, play, ask,
                            say)
        if answer == QUIT:
            break
        answers.append({"x": x_is, "answer": answer, "correct": answer == x_is})
    result = _result(answers, trials)
    say(interpret(result["correct"], result["trials"], result["p_value"]))
    if result_path is not None:
        write_atomic(result_path, (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    return result


def _one_trial(trial, trials, sounds, rate, play, ask, say):
    """"a", "b" or QUIT; anything unrecognised is asked again."""
    prompt = f"Trial {trial}/{trials}: is X A or B? [a/b, r = replay, q = quit] "
    _play_all(sounds, rate, play, say)
    while True:
        reply = " ".join(ask(prompt).strip().lower().split())
        if reply in ANSWERS:
            return ANSWERS[reply]
        if reply == QUIT:
            return QUIT
        if reply == REPLAY:
            _play_all(sounds, rate, play, say)
        else:
            say(f"'{reply}' is not an answer: type a (X is A), b (X is B), r or q")


def _play_all(sounds, rate, play, say):
    for name, samples in zip(("A (the gear)", "B (the model)", "X"), sounds):
        say(f"  playing {name}")
        play(samples, rate)


def _result(answers, planned):
    correct = sum(a["correct"] for a in answers)
    return {"trials": len(answers), "planned_trials": planned, "correct": correct,
            "p_value": binomial_p_value(correct, len(answers)), "answers": answers}


def _check_trials(trials):
    if not 1 <= int(trials) <= MAX_TRIALS:
        raise PedalError("--trials", f"{trials} is not in 1..{MAX_TRIALS}")


def sounddevice_player(samples, rate):
    """Play through PortAudio (the `sounddevice` package) on the default output device."""
    import sounddevice
    try:
        sounddevice.play(np.asarray(samples, np.float32), int(rate), blocking=True)
    except sounddevice.PortAudioError as e:
        raise PedalError("PortAudio", f"{str(e).splitlines()[0]} (try --page for a page to "
                                      f"open in a browser)") from None


def aplay_player(samples, rate):
    """Play through ALSA's `aplay` from a temporary 16-bit WAV."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        f.write(wav_bytes(samples, rate))
        f.flush()
        done = subprocess.run(["aplay", "-q", f.name], capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        problem = lines[-1].removeprefix("aplay: ")
        raise PedalError("aplay", f"{problem} (try --page for a page to open in a browser)")


def choose_player():
    """(name, play) of the first way to play sound here: PortAudio with an output device,
    else `aplay`; (None, None) with neither."""
    try:
        import sounddevice
    except (ImportError, OSError):          # not installed, or no libportaudio2
        sounddevice = None
    if sounddevice is not None:
        try:
            sounddevice.query_devices(kind="output")
            return "PortAudio", sounddevice_player
        except sounddevice.PortAudioError:  # no output device
            pass
    if shutil.which("aplay"):
        return "aplay", aplay_player
    return None, None


# ---------------------------------------------------------------- the page

def write_abx_page(folder, clips, trials=10):
    """Write FOLDER/abx.html: one page, no network, audio embedded as base64 WAV; the page
    draws X for each trial when it opens (the answers are in no file) and scores the test
    with the p-value in its script."""
    _check_trials(trials)
    a, b, rate = excerpts(clips)
    config = {"trials": trials, "significant": SIGNIFICANT_P}
    page = (PAGE_TEMPLATE
            .replace("__CONFIG__", json.dumps(config))
            .replace("__A__", _data_uri(a, rate))
            .replace("__B__", _data_uri(b, rate)))
    path = os.path.join(folder, PAGE_FILE)
    write_atomic(path, page.encode("utf-8"))
    return path


def _data_uri(samples, rate):
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(samples, rate)).decode("ascii")


PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ABX: the gear or the model?</title>
<style>
body { font-family: sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.5; }
.player { margin: 0.6em 0; } .player b { display: inline-block; width: 7em; }
button.answer { font-size: 1.2em; margin: 0.5em 0.5em 0.5em 0; padding: 0.3em 1em; }
#result { font-weight: bold; margin-top: 1em; }
</style></head>
<body>
<h1>Blind ABX test</h1>
<p>A is your gear, B is the model. X is one of them, chosen at random for each trial.
Listen as often as you like, then say which one X is. Use headphones and the same volume
throughout.</p>
<div class="player"><b>A (the gear)</b>
  <audio id="player-a" controls preload="auto" src="__A__"></audio></div>
<div class="player"><b>B (the model)</b>
  <audio id="player-b" controls preload="auto" src="__B__"></audio></div>
<div class="player"><b>X</b>
  <audio id="player-x" controls preload="auto"></audio></div>
<p id="trial"></p>
<button class="answer" id="answer-a">X is A</button>
<button class="answer" id="answer-b">X is B</button>
<p id="result"></p>
<script>
"use strict";
const CONFIG = __CONFIG__;
const players = { a: document.getElementById("player-a"), b: document.getElementById("player-b"),
                  x: document.getElementById("player-x") };
// X of each trial, drawn now, from the browser's cryptographic generator
const sequence = Array.from(crypto.getRandomValues(new Uint8Array(CONFIG.trials)),
                            function (v) { return v & 1 ? "a" : "b"; });
let trial = 0, correct = 0;

function choose(n, k) {
  let c = 1;
  for (let i = 1; i <= k; i++) c = c * (n - k + i) / i;
  return c;
}
// one-sided: the chance of at least `k` right out of `n` by guessing
function pValue(k, n) {
  let total = 0;
  for (let i = k; i <= n; i++) total += choose(n, i);
  return total / Math.pow(2, n);
}
function stopAll() {
  for (const key in players) { players[key].pause(); players[key].currentTime = 0; }
}
function showTrial() {
  stopAll();
  players.x.src = players[sequence[trial]].src;
  document.getElementById("trial").textContent =
    "Trial " + (trial + 1) + " of " + CONFIG.trials;
}
function finish() {
  stopAll();
  players.x.removeAttribute("src");
  document.getElementById("answer-a").disabled = true;
  document.getElementById("answer-b").disabled = true;
  const p = pValue(correct, CONFIG.trials);
  let line = correct + "/" + CONFIG.trials + " correct, p = " + p.toPrecision(3) +
    " (the chance of doing at least that well by guessing): ";
  line += p < CONFIG.significant ? "you hear a difference between the gear and the model."
                                 : "no reliable difference heard.";
  document.getElementById("trial").textContent = "Done. X was: " +
    sequence.map(function (v) { return v.toUpperCase(); }).join(" ") + ".";
  document.getElementById("result").textContent = line;
}
function answer(choice) {
  if (trial >= CONFIG.trials) return;
  if (choice === sequence[trial]) correct += 1;
  trial += 1;
  if (trial < CONFIG.trials) showTrial(); else finish();
}
document.getElementById("answer-a").addEventListener("click", function () { answer("a"); });
document.getElementById("answer-b").addEventListener("click", function () { answer("b"); });
showTrial();
</script>
</body></html>
"""


# ---------------------------------------------------------------- command line

def build_parser():
    p = Parser(prog="pedal-abx",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("folder", metavar="REPORT_DIR", help="a folder written by pedal-train")
    p.add_argument("--trials", type=int, default=10, help="number of trials (default 10)")
    p.add_argument("--page", action="store_true",
                   help="write abx.html to open in a browser instead of playing here")
    p.add_argument("--seed", type=int,
                   help="fix the terminal test's choice of X (for repeatable tests; the page "
                        "draws its own)")
    json_option(p)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def work():
        clips = load_clips(args.folder)
        name, play = (None, None) if args.page else choose_player()
        if play is None:
            path = write_abx_page(args.folder, clips, args.trials)
            reason = "" if args.page else "nothing here to play the clips with (PortAudio " \
                                          "or aplay): "
            emit({"page": path}, args.json, [f"{reason}open {path} in a browser to take the test"])
            return
        say = note if args.json else print
        say(f"playing through {name}")
        result = run_terminal_abx(clips, args.trials, play, _ask_terminal,
                                  np.random.default_rng(args.seed), say=say,
                                  result_path=os.path.join(args.folder, RESULT_FILE))
        if args.json:
            print(json.dumps(result))

    return run_command("pedal-abx", work)


def _ask_terminal(prompt):
    try:
        return input(prompt)
    except (EOFError, KeyboardInterrupt):
        print()
        return QUIT


if __name__ == "__main__":
    raise SystemExit(main())
