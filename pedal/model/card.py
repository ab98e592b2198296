"""The model card: what a model is, how good, how costly (`pedal info`)."""
from __future__ import annotations

import os

from .bench import fit_size
from .file import Model
from .formats import rate_note

DEFAULT_PERIOD = 64         # pedal run's default period, for a slimmable model's size


def card_lines(model: Model, path: str | None = None) -> list[str]:
    """The model card as text lines."""
    spec = model.spec
    lines = []
    name = model.metadata.get("name")
    if path:
        lines.append(f"file:          {path}")
    if name:
        lines.append(f"name:          {name}")
    lines.append(f"architecture:  {spec.describe()}")
    if model.architecture == "Slimmable":
        lines += [f"size {line}" for line in spec.size_lines()]
        fit = fit_size(model, DEFAULT_PERIOD)
        lines.append(f"size picked:   at {DEFAULT_PERIOD}-frame periods on this machine, "
                     f"{fit.describe(spec)}")
    lines.append(f"sample rate:   {model.sample_rate} Hz")
    note = rate_note(model, path or model.provenance.get("source", "the model"))
    if note:
        lines.append(f"warning:       {note}")
    lines.append(f"weights:       {model.weight_count} ({model.quantization})")
    if path and os.path.isfile(path):
        lines.append(f"file size:     {os.path.getsize(path)} bytes")
    macs = spec.macs_per_sample
    lines.append(f"cost:          {macs} multiply-adds per sample, "
                 f"{macs * model.sample_rate / 1e6:.1f} M/s at {model.sample_rate} Hz")
    for k in model.knobs:
        lines.append(f"knob:          {k.name} {k.minimum:g}..{k.maximum:g} "
                     f"(default {k.default:g})")
    for key, label in (("loudness_db", "loudness dB"), ("input_level_dbu", "input dBu"),
                       ("output_level_dbu", "output dBu")):
        if key in model.calibration:
            lines.append(f"{label + ':':15}{model.calibration[key]:.2f}")
    for key, value in model.esr.items():
        lines.append(f"{'ESR ' + key + ':':15}{value:.3g}")
    for key in ("gear_make", "gear_model", "gear_settings", "gear_type", "tone_type",
                "modeled_by"):
        if key in model.metadata:
            lines.append(f"{key.replace('_', ' ') + ':':15}{model.metadata[key]}")
    for key, value in model.provenance.items():
        if key != "sample_rate_assumed":
            lines.append(f"{key.replace('_', ' ') + ':':15}{value}")
    return lines


def card_json(model: Model) -> dict:
    """The model card for machines (`pedal info --json`)."""
    return {"architecture": model.architecture, "config": model.config,
            "sample_rate": model.sample_rate, "weights": model.weight_count,
            "quantization": model.quantization,
            "knobs": [k.to_json() for k in model.knobs],
            "calibration": model.calibration, "esr": model.esr,
            "metadata": model.metadata, "provenance": model.provenance,
            "macs_per_sample": model.spec.macs_per_sample,
            **(_sizes(model) if model.architecture == "Slimmable" else {})}


def _sizes(model: Model) -> dict:
    fit = fit_size(model, DEFAULT_PERIOD)
    return {"sizes": model.spec.size_lines(),
            "size_picked": {"period_frames": DEFAULT_PERIOD, "size": fit.size,
                            "block_us_p95": fit.block_us, "budget_us": fit.budget_us,
                            "fits": fit.fits}}
