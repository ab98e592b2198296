"""The training report: what `pedal-train` leaves beside a capture model, for the guitarist
to read, look at and listen to.

    report.json         summary, per-epoch history, verdict, error per frequency band
    report.md           the plain-language summary, linking everything below
    waveform.png        clean / gear / model on a loud excerpt, and a zoom of a few ms
    spectrograms.png    dry, gear and model, one panel each
    esr_per_epoch.png   validation ESR (and training loss) per epoch, log scale
    error_spectrum.png  the spectrum of (gear - model) against the gear's spectrum
    dry.wav target.wav model.wav   the same ~8 s of the validation section

Every file is written atomically (temp file, then rename). Figures are drawn on
matplotlib's Agg canvas through `matplotlib.figure.Figure`, never pyplot: no display and no
global backend state. `pedal-abx FOLDER` runs a blind test on the clips.
"""
import io
import json
import math
import os

import numpy as np
from scipy.signal import spectrogram, welch

from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.io.audiofile import write_audio
from pedal.signals import esr as compute_esr

# The verdict's ESR bands and words follow Neural Amp Modeler's trainer (nam/train/core.py:
# below 0.01 "Great!", 0.035 "Not bad!", 0.1 "...This *might* sound ok!", 0.3 "...This
# probably won't sound great :(", else "...Something seems to have gone wrong.").
GREAT_ESR = 0.01
NOT_BAD_ESR = 0.035
MIGHT_BE_OK_ESR = 0.1
NOT_GREAT_ESR = 0.3
VERDICTS = (
    (GREAT_ESR, "great: hard to tell from the gear"),
    (NOT_BAD_ESR, "not bad: close to the gear; a careful listener may hear the difference"),
    (MIGHT_BE_OK_ESR, "might sound ok: differences are audible side by side"),
    (NOT_GREAT_ESR, "probably won't sound great: clearly different from the gear"),
)
POOR_VERDICT = "something went wrong: check the capture (alignment, levels)"
# A run whose best validation ESR is not below this fraction of the ESR it started from (or
# not below 1, what silence scores) did not learn.
LEARNT_FRACTION = 0.9
NO_LEARNING = ("did not learn: the model is no closer to the gear than silence, or than the "
               "untrained net")

# Frequency bands of the per-band error (Hz); None = up to Nyquist
BANDS = (("lows", 20.0, 250.0), ("low mids", 250.0, 1000.0), ("high mids", 1000.0, 4000.0),
         ("highs", 4000.0, 10000.0), ("air", 10000.0, None))

CLIP_SECONDS = 8.0
CLIP_FADE_SECONDS = 0.005       # so a clip starts and ends without a click
EXCERPT_SECONDS = 0.05          # the waveform overlay
ZOOM_SECONDS = 0.004            # the waveform zoom
WELCH_SEGMENT = 4096
SPECTROGRAM_SEGMENT = 1024
DB_FLOOR = 1e-20                # power floor before log10, so silence is finite
DPI = 100

CLIP_FILES = {"dry": "dry.wav", "target": "target.wav", "model": "model.wav"}
PLOT_FILES = {"waveform": "waveform.png", "spectrograms": "spectrograms.png",
              "esr_per_epoch": "esr_per_epoch.png", "error_spectrum": "error_spectrum.png"}
JSON_FILE = "report.json"
SUMMARY_KEYS = ("name", "architecture", "val_esr", "minutes", "parameters")
# optional: "initial_esr", the untrained net's validation ESR
MARKDOWN_FILE = "report.md"

COLOURS = {"dry": "0.6", "target": "tab:blue", "model": "tab:orange", "error": "tab:red"}


def verdict(esr, initial_esr=None):
    """One plain line for a validation ESR (a NaN, from a diverged run, is poor); with the
    ESR the untrained net had, a run that did not improve on it says so."""
    esr = float(esr)
    if not math.isfinite(esr):
        return POOR_VERDICT
    if not learnt(esr, initial_esr):
        return NO_LEARNING
    for bound, words in VERDICTS:
        if esr < bound:
            return words
    return POOR_VERDICT


def learnt(esr, initial_esr=None):
    """Whether a run got anywhere: below 1 (silence's ESR) and, when the start is known,
    clearly below where it started."""
    esr = float(esr)
    if not esr < 1.0:
        return False
    return initial_esr is None or not math.isfinite(initial_esr) or \
        esr < LEARNT_FRACTION * initial_esr


def gain_only_esr(dry, target):
    """The ESR of the dry signal at the best volume: what a model must beat to have learnt
    more than a level (for nearly clean gear it is already small)."""
    dry, target = np.asarray(dry, np.float64), np.asarray(target, np.float64)
    gain = float(dry @ target) / max(float(dry @ dry), 1e-20)
    return compute_esr(target, gain * dry)


def error_spectrum(target, prediction, rate):
    """(freqs Hz, target dB, error dB): Welch power spectra of the gear's output and of
    (gear - model), on the same scale, so their gap is the error-to-signal ratio per bin."""
    target = np.asarray(target, np.float64)
    error = np.asarray(prediction, np.float64) - target
    segment = min(WELCH_SEGMENT, len(target))
    freqs, target_power = welch(target, rate, nperseg=segment, scaling="spectrum")
    _, error_power = welch(error, rate, nperseg=segment, scaling="spectrum")
    return freqs, _db(target_power), _db(error_power)


def band_errors(target, prediction, rate):
    """[{band, low_hz, high_hz, esr, error_db}]: the error's energy over the gear's in each
    band (None where the gear has no energy there, or the band is above Nyquist)."""
    target = np.asarray(target, np.float64)
    error = np.asarray(prediction, np.float64) - target
    segment = min(WELCH_SEGMENT, len(target))
    freqs, target_power = welch(target, rate, nperseg=segment, scaling="spectrum")
    _, error_power = welch(error, rate, nperseg=segment, scaling="spectrum")
    rows = []
    for name, low, high in BANDS:
        high = rate / 2 if high is None else min(high, rate / 2)
        if low >= high:
            continue
        inside = (freqs >= low) & (freqs < high)
        signal = float(target_power[inside].sum())
        band_esr = float(error_power[inside].sum()) / signal if signal > DB_FLOOR else None
        rows.append({"band": name, "low_hz": low, "high_hz": high, "esr": band_esr,
                     "error_db": _ratio_db(band_esr)})
    return rows


def loudest_window(x, length):
    """Start index of the `length`-sample window of x with the most energy."""
    length = min(length, len(x))
    energy = np.concatenate(([0.0], np.cumsum(np.asarray(x, np.float64) ** 2)))
    return int(np.argmax(energy[length:] - energy[:-length]))


def write_report(folder, dry, target, prediction, rate, history, summary):
    """Write the report folder; returns {what: path} for every file written.

    val_esr in report.json is measured here on the arrays given, so the verdict, the plots
    and the clips all speak about the same audio."""
    dry, target, prediction = _check_signals(folder, dry, target, prediction, rate)
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise PedalError(folder, f"the summary lacks {', '.join(missing)}")
    os.makedirs(folder, exist_ok=True)
    rate = int(rate)
    measured_esr = compute_esr(target, prediction)
    paths = {}
    paths.update(_write_clips(folder, dry, target, prediction, rate))
    paths.update(_write_plots(folder, dry, target, prediction, rate, history))
    report = _report_dict(summary, history, measured_esr, dry, target, prediction, rate)
    paths["json"] = _write_text(folder, JSON_FILE, json.dumps(report, indent=2,
                                                              allow_nan=False) + "\n")
    paths["markdown"] = _write_text(folder, MARKDOWN_FILE, report_markdown(report))
    return paths


def report_markdown(report):
    """The summary a guitarist reads: the verdict first, then the figures and the files."""
    esr = report["val_esr"]
    lines = [f"# {report['name']}: capture report", "",
             f"**Verdict: {report['verdict']}**", "",
             f"The model's output differs from your gear's by an error carrying "
             f"{100 * esr:.2g} % of the gear's signal energy (ESR {esr:.4g}, measured on "
             f"audio the model never trained on). Lower is better; the words follow Neural "
             f"Amp Modeler's scale (below {GREAT_ESR} great, {NOT_BAD_ESR} not bad, "
             f"{MIGHT_BE_OK_ESR} might sound ok, {NOT_GREAT_ESR} probably won't sound great). "
             f"For comparison, the dry signal at the best volume scores "
             f"{report['gain_only_esr']:.4g}{_start_text(report)}.", "",
             "| | |", "|---|---|",
             f"| Model | {report['architecture']} |",
             f"| Validation ESR | {esr:.4g} |",
             f"| Training time | {_minutes_text(report)} |",
             f"| Parameters | {int(report['parameters']):,} |", "",
             "## Listen", "",
             f"- [Dry: your DI, what went in]({CLIP_FILES['dry']})",
             f"- [Target: your gear]({CLIP_FILES['target']})",
             f"- [Model: the capture]({CLIP_FILES['model']})", "",
             "For a blind test (can you tell the gear from the model?): "
             "`pedal-abx THIS_FOLDER` (add `--page` for a page to open in "
             "a browser).", "",
             "## Where the error is", "",
             "| band | Hz | error vs signal |", "|---|---|---|"]
    for row in report["bands"]:
        figure = "n/a" if row["error_db"] is None else f"{row['error_db']:.1f} dB"
        lines.append(f"| {row['band']} | {row['low_hz']:.0f}-{row['high_hz']:.0f} | "
                     f"{figure} |")
    lines += ["", "(Below -20 dB the error is a small fraction of what you hear in that band; "
              "near 0 dB the model misses it.)", "",
              "## Plots", "",
              f"![The gear and the model on a loud excerpt]({PLOT_FILES['waveform']})", "",
              f"![Spectrograms: dry, gear, model]({PLOT_FILES['spectrograms']})", "",
              f"![Error spectrum]({PLOT_FILES['error_spectrum']})", "",
              f"![Validation ESR per epoch]({PLOT_FILES['esr_per_epoch']})", ""]
    return "\n".join(lines)


def _check_signals(folder, dry, target, prediction, rate):
    arrays = [np.asarray(a, np.float32) for a in (dry, target, prediction)]
    if any(a.ndim != 1 for a in arrays):
        raise PedalError(folder, "dry, target and prediction must be 1-D (mono) arrays")
    if len({len(a) for a in arrays}) != 1 or len(arrays[0]) == 0:
        raise PedalError(folder, f"dry, target and prediction must have the same nonzero "
                                 f"length (got {[len(a) for a in arrays]})")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise PedalError(folder, "dry, target or prediction contains NaN or Inf")
    if int(rate) <= 0:
        raise PedalError(folder, f"sample rate {rate} is not positive")
    return arrays


def _report_dict(summary, history, measured_esr, dry, target, prediction, rate):
    report = dict(summary)
    if summary["val_esr"] is not None and not math.isclose(summary["val_esr"], measured_esr,
                                                           rel_tol=1e-3):
        report["trainer_val_esr"] = summary["val_esr"]      # measured on other audio
    report.update(val_esr=measured_esr, verdict=verdict(measured_esr, summary.get("initial_esr")),
                  gain_only_esr=gain_only_esr(dry, target), sample_rate=rate,
                  history=[_plain(h) for h in history],
                  bands=band_errors(target, prediction, rate),
                  files={**CLIP_FILES, **PLOT_FILES, "markdown": MARKDOWN_FILE})
    return _plain(report)


def _plain(value):
    """JSON-ready copy: numpy scalars to Python numbers, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _minutes_text(report):
    """Minutes, epochs (as the plot's axis counts them) and validations."""
    history = report.get("history") or []
    text = f"{float(report['minutes']):.1f} min"
    if not history or history[-1].get("epoch") is None:
        return text
    checks = len(history)
    return f"{text}, {history[-1]['epoch']:.3g} epochs ({checks} validation{'s' * (checks != 1)})"


def _start_text(report):
    start = report.get("initial_esr")
    return "" if start is None else f", and the untrained net scored {start:.4g}"


def _db(power):
    return 10 * np.log10(np.maximum(power, DB_FLOOR))


def _ratio_db(ratio):
    return None if ratio is None else float(10 * math.log10(max(ratio, DB_FLOOR)))


def _write_text(folder, name, text):
    path = os.path.join(folder, name)
    write_atomic(path, text.encode("utf-8"))
    return path


# ---------------------------------------------------------------- clips

def clip_window(dry, rate):
    """(start, stop) of the ~8 s the clips share: where the guitar plays the most."""
    length = min(int(CLIP_SECONDS * rate), len(dry))
    start = loudest_window(dry, length)
    return start, start + length


def _write_clips(folder, dry, target, prediction, rate):
    start, stop = clip_window(dry, rate)
    fade = fade_gain(stop - start, int(CLIP_FADE_SECONDS * rate))
    paths = {}
    for key, signal in (("dry", dry), ("target", target), ("model", prediction)):
        paths[key] = os.path.join(folder, CLIP_FILES[key])
        write_audio(paths[key], (signal[start:stop] * fade).astype(np.float32), rate)
    return paths


def fade_gain(length, fade_length):
    """Gain curve: raised-cosine fade in and out, flat between."""
    gain = np.ones(length, np.float32)
    n = min(fade_length, length // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        gain[:n] = ramp
        gain[length - n:] = ramp[::-1]
    return gain


# ---------------------------------------------------------------- plots

def _write_plots(folder, dry, target, prediction, rate, history):
    drawers = {"waveform": lambda: _waveform_figure(dry, target, prediction, rate),
               "spectrograms": lambda: _spectrogram_figure(dry, target, prediction, rate),
               "esr_per_epoch": lambda: _history_figure(history),
               "error_spectrum": lambda: _error_spectrum_figure(target, prediction, rate)}
    paths = {}
    for key, draw in drawers.items():
        paths[key] = os.path.join(folder, PLOT_FILES[key])
        _save_figure(draw(), paths[key])
    return paths


def _save_figure(figure, path):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    write_atomic(path, buffer.getvalue())


def _new_figure(rows, height):
    from matplotlib.figure import Figure
    figure = Figure(figsize=(10, height), layout="constrained")
    return figure, figure.subplots(rows, 1, squeeze=False)[:, 0]


def _waveform_figure(dry, target, prediction, rate):
    """Overlay on the loudest few tens of ms of the gear's output, then a few ms around its
    peak, where a difference in the shape of the clipping shows."""
    figure, (whole, zoom) = _new_figure(2, 7)
    length = max(2, int(EXCERPT_SECONDS * rate))
    start = loudest_window(target, length)
    stop = min(start + length, len(target))
    zoom_length = max(2, int(ZOOM_SECONDS * rate))
    peak = start + int(np.argmax(np.abs(target[start:stop])))
    zoom_start = max(0, min(peak - zoom_length // 2, len(target) - zoom_length))
    zoom_stop = min(zoom_start + zoom_length, len(target))
    for axes, (a, b), title in ((whole, (start, stop), "Loudest excerpt"),
                                (zoom, (zoom_start, zoom_stop), "Zoom on the peak")):
        t_ms = 1000 * np.arange(a, b) / rate
        axes.plot(t_ms, dry[a:b], color=COLOURS["dry"], lw=1, label="dry (DI)")
        axes.plot(t_ms, target[a:b], color=COLOURS["target"], lw=1.5, label="gear")
        axes.plot(t_ms, prediction[a:b], color=COLOURS["model"], lw=1, ls="--", label="model")
        axes.set(title=title, xlabel="time (ms)", ylabel="amplitude")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper right")
    return figure


def _spectrogram_figure(dry, target, prediction, rate):
    """Three panels on one colour scale over the clips' window, log frequency."""
    start, stop = clip_window(dry, rate)
    figure, panels = _new_figure(3, 9)
    segment = min(SPECTROGRAM_SEGMENT, stop - start)
    computed = []
    for signal in (dry, target, prediction):
        freqs, times, power = spectrogram(signal[start:stop], rate, nperseg=segment,
                                          noverlap=segment // 2, scaling="spectrum")
        computed.append((freqs, times, _db(power)))
    top = max(float(p.max()) for _, _, p in computed)
    for axes, (freqs, times, power), title in zip(panels, computed,
                                                  ("Dry (DI)", "Gear", "Model")):
        keep = freqs > 0          # log axis: drop DC
        mesh = axes.pcolormesh(times, freqs[keep], power[keep], shading="auto",
                               vmin=top - 100, vmax=top, cmap="magma")
        axes.set_yscale("log")
        axes.set(title=title, ylabel="frequency (Hz)", ylim=(max(20.0, freqs[keep][0]),
                                                             rate / 2))
    panels[-1].set_xlabel("time (s)")
    figure.colorbar(mesh, ax=list(panels), label="level (dB)")
    return figure


def _history_figure(history):
    figure, (axes,) = _new_figure(1, 4.5)
    plotted = []
    for key, label, colour in (("val_esr", "validation ESR", COLOURS["model"]),
                               ("train_loss", "training loss", COLOURS["target"])):
        points = [(h["epoch"], h[key]) for h in history
                  if h.get(key) is not None and math.isfinite(h[key]) and h[key] > 0]
        if points:
            epochs, values = zip(*points)
            axes.plot(epochs, values, marker="o", ms=3, color=colour, label=label)
            plotted += values
    if plotted:
        axes.set_yscale("log")
        _verdict_lines(axes, min(plotted), max(plotted))
        axes.legend()
    else:
        axes.text(0.5, 0.5, "no training history", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set(title="Validation ESR per epoch", xlabel="epoch", ylabel="ESR / loss (log)")
    axes.grid(alpha=0.3, which="both")
    return figure


def _verdict_lines(axes, low, high):
    """Dotted lines at the verdict bounds that fall near the curves, named by the verdict."""
    for bound, words in VERDICTS:
        if low / 3 <= bound <= high * 3:
            axes.axhline(bound, color="0.6", lw=0.8, ls=":")
            axes.annotate(words.split(":")[0], (1.0, bound), xycoords=("axes fraction", "data"),
                          ha="right", va="top", fontsize=8, color="0.4")  # the band below


def _error_spectrum_figure(target, prediction, rate):
    freqs, target_db, error_db = error_spectrum(target, prediction, rate)
    keep = freqs > 0
    figure, (axes,) = _new_figure(1, 4.5)
    axes.semilogx(freqs[keep], target_db[keep], color=COLOURS["target"], label="gear")
    axes.semilogx(freqs[keep], error_db[keep], color=COLOURS["error"],
                  label="error (gear - model)")
    axes.set(title="Error spectrum: where the model misses", xlabel="frequency (Hz)",
             ylabel="level (dB)", xlim=(max(20.0, freqs[keep][0]), rate / 2))
    top = float(max(target_db.max(), error_db.max()))
    axes.set_ylim(top - 120, top + 6)
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return figure
