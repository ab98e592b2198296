"""Rebuild the bundled demo: the guitar clip and a small WaveNet of a synthetic overdrive.

The "gear" is an analytic overdrive (pre-emphasis, asymmetric soft clipping, tone lowpass),
so the recipe needs no plugin host. Desktop only (torch):

    python models/recipes/demo_overdrive.py [--minutes 3]
"""
import argparse
import os
import time

import numpy as np
import torch
from scipy.signal import butter, lfilter

from pedal.modelfile import save
from pedal.signals import esr, guitar_phrase, log_sweep, test_signal
from pedal.audio import write_audio
from pedal.tools.nets import WaveNetNet

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
RATE = 48000
CONFIG = {"layer_arrays": [
    {"input_size": 1, "condition_size": 1, "channels": 8, "head_size": 4, "head_bias": False,
     "layers": [{"kernel_size": 3, "dilation": 2 ** i, "activation": "Tanh", "gating": "none"}
                for i in range(10)]},
    {"input_size": 8, "condition_size": 1, "channels": 4, "head_size": 1, "head_bias": True,
     "layers": [{"kernel_size": 3, "dilation": 2 ** i, "activation": "Tanh", "gating": "none"}
                for i in range(10)]}]}


def overdrive(x, drive_db=24.0):
    """Tube-screamer-like: boost the mids, clip asymmetrically, roll off the fizz."""
    b, a = butter(1, 720 / (RATE / 2), "high")
    mids = lfilter(b, a, x)
    pre = x + 3.0 * mids
    g = 10 ** (drive_db / 20)
    clipped = np.tanh(g * pre + 0.2) - np.tanh(0.2)
    b, a = butter(2, 4000 / (RATE / 2), "low")
    return (0.3 * lfilter(b, a, clipped)).astype(np.float32)


def capture_signal(seconds):
    parts = [guitar_phrase(seconds * 0.7, RATE, seed=11), log_sweep(seconds * 0.1, RATE, level=0.3),
             guitar_phrase(seconds * 0.2, RATE, seed=12) * 0.3]
    return np.concatenate(parts).astype(np.float32)


def train(x, y, minutes, threads, seed=0):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    net = WaveNetNet(CONFIG)
    opt = torch.optim.Adam(net.parameters(), lr=4e-3)
    rf = net.receptive_field
    seg, batch = rf + 4096, 8
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    deadline = time.time() + 60 * minutes
    step = 0
    while time.time() < deadline:
        starts = rng.integers(0, len(x) - seg, batch)
        xb = torch.stack([xt[s:s + seg] for s in starts])
        yb = torch.stack([yt[s:s + seg] for s in starts])
        pred, yb = net(xb)[:, rf:], yb[:, rf:]   # outputs that saw a full receptive field
        # ESR on the pre-emphasised signals: the ear hears the highs more than the error sum
        pe = lambda v: v[:, 1:] - 0.85 * v[:, :-1]
        loss = ((pe(pred) - pe(yb)) ** 2).sum() / (pe(yb) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0:
            for group in opt.param_groups:
                group["lr"] *= 0.9
            print(f"step {step}: loss {loss.item():.4f}", flush=True)
    return net.eval()


def write_card(path):
    """The model card beside the model: gear, settings, accuracy, size and speed."""
    from pedal.bench import bench_model
    from pedal.cli import model_card
    from pedal.formats import load_model
    model = load_model(path)
    speed = bench_model(model, 64, 5.0)
    card = os.path.splitext(path)[0] + ".md"
    with open(card, "w") as f:
        f.write(f"# {model.metadata['name']}\n\n"
                "Gear: an analytic overdrive (first-order 720 Hz high-pass mixed in 3:1, "
                "tanh clipping at 24 dB drive with a 0.2 bias for asymmetry, 4 kHz "
                "second-order low-pass), so the recipe needs no plugin host. Trained on 60 s "
                "of synthetic guitar and a sweep.\n\n"
                "Rebuild: `python models/recipes/demo_overdrive.py --minutes 6` (desktop, torch)"
                "\n\n```\n$ pedal info models/" + os.path.basename(path) + "\n"
                + "\n".join(model_card(model)) + "\n```\n\n"
                f"Speed (`pedal bench -m models/{os.path.basename(path)} --seconds 5`, one "
                f"thread, 64-frame blocks): real-time factor {speed['realtime_factor']:.0f}x, "
                f"{speed['block_us_median']:.0f} us median and {speed['block_us_p99']:.0f} us "
                f"p99 per block ({speed['p99_load_pct']:.1f}% of the period at p99).\n")
    print(f"wrote {card}")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--card-only", action="store_true",
                   help="only rewrite the model card of the existing model")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch threads (fewer than the cores when the machine is busy)")
    args = p.parse_args()
    if args.card_only:
        return write_card(os.path.join(MODELS, "demo-overdrive.pedal"))
    clip = guitar_phrase(8.0, RATE, seed=42)
    write_audio(os.path.join(MODELS, "demo-clip.flac"), clip, RATE)
    x = capture_signal(60.0)
    net = train(x, overdrive(x), args.minutes, args.threads)
    from pedal.modelfile import Model
    model = Model("WaveNet", CONFIG, net.tensors(), sample_rate=RATE,
                  metadata={"name": "Demo overdrive (synthetic TS-style, small WaveNet)",
                            "gear_type": "pedal", "gear_make": "synthetic",
                            "gear_model": "analytic overdrive, drive 24 dB"},
                  provenance={"source": "models/recipes/demo_overdrive.py",
                              "converter": "recipe"})
    sig = test_signal(RATE)
    with torch.no_grad():
        pred = net(torch.from_numpy(sig)[None])[0].numpy()
    model.esr["test_signal"] = esr(overdrive(sig), pred)
    print(f"ESR on the standard test signal: {model.esr['test_signal']:.4f}")
    save(model, os.path.join(MODELS, "demo-overdrive.pedal"), "fp32")
    write_card(os.path.join(MODELS, "demo-overdrive.pedal"))


if __name__ == "__main__":
    main()
