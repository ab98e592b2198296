"""Deterministic test material: plucked-string guitar phrases, sweeps and the standard test
signal on which quantization and accuracy are measured."""
import numpy as np

# E standard, open strings (Hz)
OPEN_STRINGS = (82.41, 110.0, 146.83, 196.0, 246.94, 329.63)


def pluck(freq, seconds, rate, velocity=0.8, brightness=0.5, decay=0.996, rng=None):
    """A Karplus-Strong plucked string: a noise burst through a damped delay line.

    Computed one period at a time, so numpy does the per-sample work."""
    rng = rng or np.random.default_rng(0)
    period = max(2, int(round(rate / freq)))
    total = int(seconds * rate)
    y = np.zeros(total + period + 1, np.float64)
    burst = rng.uniform(-1, 1, period)
    # a softer pick is a duller burst: one-pole lowpass on the excitation
    for i in range(1, period):
        burst[i] = brightness * burst[i] + (1 - brightness) * burst[i - 1]
    y[1:period + 1] = burst * velocity
    for start in range(period + 1, total + period + 1, period):
        end = min(start + period, total + period + 1)
        prev = y[start - period:end - period]
        prev1 = y[start - period - 1:end - period - 1]
        y[start:end] = decay * 0.5 * (prev + prev1)
    return y[1:total + 1]


def guitar_phrase(seconds, rate=48000, seed=0):
    """Single notes and chords across the neck, dynamics from pianissimo to hard picking."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate) + rate, np.float64)
    t = 0.0
    while t < seconds:
        dur = rng.choice([0.25, 0.5, 0.75, 1.0, 1.5])
        velocity = float(rng.choice([0.1, 0.25, 0.5, 0.8, 1.0]))
        if rng.random() < 0.35:      # chord: three to five strings, strummed
            first = int(rng.integers(0, 2))
            strings = range(first, first + int(rng.integers(3, 6)))
            fret = int(rng.integers(0, 8))
            notes = [(OPEN_STRINGS[s] * 2 ** (fret / 12), k * 0.012) for k, s in
                     enumerate(strings) if s < 6]
        else:
            s, fret = int(rng.integers(0, 6)), int(rng.integers(0, 15))
            notes = [(OPEN_STRINGS[s] * 2 ** (fret / 12), 0.0)]
        muted = rng.random() < 0.2   # palm mute: short, dark
        for freq, strum in notes:
            note = pluck(freq, dur + 0.5, rate, velocity, 0.3 if muted else 0.7,
                         0.97 if muted else 0.996, rng)
            start = int((t + strum) * rate)
            out[start:start + len(note)] += note[:len(out) - start]
        t += dur
    x = out[:int(seconds * rate)]
    return (0.5 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


def log_sweep(seconds, rate=48000, f0=20.0, f1=20000.0, level=0.5):
    t = np.arange(int(seconds * rate)) / rate
    k = np.log(f1 / f0)
    return (level * np.sin(2 * np.pi * f0 * seconds / k * (np.exp(t / seconds * k) - 1))
            ).astype(np.float32)


def test_signal(rate=48000, seconds=4.0):
    """The standard signal for measuring a model's accuracy: guitar, sweeps at two levels,
    and noise at two levels, about `seconds` long."""
    rng = np.random.default_rng(1234)
    part = seconds / 8
    pieces = [guitar_phrase(4 * part, rate, seed=7),
              log_sweep(part, rate, level=0.1), log_sweep(part, rate, level=0.7),
              np.clip(0.05 * rng.standard_normal(int(part * rate)), -1, 1),
              np.clip(0.25 * rng.standard_normal(int(part * rate)), -1, 1)]
    return np.concatenate(pieces).astype(np.float32)


def esr(target, output):
    """Error-to-signal ratio: sum of squared error over the target's energy."""
    target = np.asarray(target, np.float64)
    err = np.asarray(output, np.float64) - target
    return float(np.sum(err ** 2) / max(np.sum(target ** 2), 1e-20))
