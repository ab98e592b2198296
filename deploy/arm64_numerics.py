"""Numerical check of the kernels on another platform (arm64 under qemu) against references
computed on the desktop. Driven by deploy/arm64-check.sh.

    python3 arm64_numerics.py prepare DATA_DIR [--samples N] [--shared DIR]   (desktop: torch)
    python3 arm64_numerics.py check MANIFEST                                  (device: numpy)

`prepare` writes into DATA_DIR the model files (the shared NAM references, RTNeural Keras JSON
LSTM and GRU, .pedal files converted by pedal-convert from torch nets, the shipped demo model),
the input signal, each model's expected output (tools/reference.py: NAM's own code or torch,
float32, whole signal in one call; for the shipped demo model, which has no source, the desktop
kernels) and the desktop kernels' own output, and a manifest.json naming them.

`check` imports only pedal, pedal.model.formats and pedal.model.arch (numpy and scipy; no
torch, soundfile or tqdm), streams every model at block lengths 1, 7, 64 and random 1..512,
prints one line per model and a final "N passed, M failed" line; exit status 1 on any failure.
"""
import json
import os
import sys
import time

BLOCKS = (1, 7, 64, "random")     # "random": pedal.processor's schedule of 1..512
TOL = 1e-5
SAMPLE_RATE = 48000


# -- device side -----------------------------------------------------------------------------------

def check(manifest_path):
    import platform

    import numpy as np

    import pedal  # noqa: F401  (first: sets OPENBLAS_NUM_THREADS before numpy loads OpenBLAS)
    from pedal.model.arch import build
    from pedal.model.formats import load_model
    from pedal.processor import stream
    base = os.path.dirname(os.path.abspath(manifest_path))
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    x = np.load(os.path.join(base, manifest["signal"]))
    tol = float(manifest.get("tolerance", TOL))
    blocks = manifest.get("blocks", list(BLOCKS))
    print(f"arm64_numerics: {platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, {len(x)} samples, blocks {blocks}, tolerance {tol:g}",
          flush=True)
    blas = _mapped_blas()
    if blas:
        print(f"BLAS mapped: {', '.join(blas)}", flush=True)
    passed = failed = 0
    for entry in manifest["models"]:
        name = entry["name"]
        if "skip" in entry:
            print(f"SKIP  {name:<24} {entry['skip']}", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            model = load_model(os.path.join(base, entry["path"]))
            expected = np.load(os.path.join(base, entry["expected"]))
            errs = {}
            for block in blocks:
                y = stream(build(model), x, block, model.sample_rate)
                d = np.abs(y.astype(np.float64) - expected)
                errs[block] = float(d.max()) if np.all(np.isfinite(y)) else float("nan")
            worst = max(errs.values(), key=lambda e: np.inf if e != e else e)
            ok = np.isfinite(worst) and worst <= tol
            extra = ""
            if entry.get("desktop_kernels"):
                ours = stream(build(model), x, 64, model.sample_rate)
                desk = np.load(os.path.join(base, entry["desktop_kernels"]))
                extra = f"; vs x86 kernels {float(np.abs(ours - desk).max()):.2g}"
            detail = ", ".join(f"{b}: {e:.2g}" for b, e in errs.items())
            line = (f"{'PASS' if ok else 'FAIL'}  {name:<24} max abs error {worst:.3g} "
                    f"vs {entry['reference']} ({detail}){extra}")
        except Exception as e:  # report and go on with the next model
            ok = False
            line = f"FAIL  {name:<24} {type(e).__name__}: {e}"
        passed += ok
        failed += not ok
        print(f"{line}  [{time.perf_counter() - t0:.1f} s]", flush=True)
    p, f = check_dsp(x, blocks, tol)
    passed, failed = passed + p, failed + f
    loaded = sorted(m for m in sys.modules if m.startswith("pedal"))
    print(f"pedal modules loaded: {', '.join(loaded)}")
    unwanted = sorted({"torch", "soundfile", "tqdm", "nam"} & set(sys.modules))
    if unwanted:
        print(f"FAIL  the device side loaded {', '.join(unwanted)}")
        failed += 1
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


def check_dsp(x, blocks, tol):
    """The chain's kernels against scipy on this side (Debian's, independent code): the
    tone stack's biquads vs sosfilt, the IR convolver vs fftconvolve."""
    import numpy as np
    from scipy.signal import fftconvolve, sosfilt

    from pedal.kernels.biquad import BiquadCascade, rbj
    from pedal.kernels.fftconv import PartitionedConvolver
    from pedal.processor import stream
    sos = np.array([rbj("lowshelf", 120.0, 0.7, 6.0, 48000),
                    rbj("peaking", 700.0, 0.8, -4.0, 48000),
                    rbj("highshelf", 3200.0, 0.7, 3.0, 48000),
                    rbj("dcblock", 5.0, 0.7, 0.0, 48000)])
    ir = (np.random.default_rng(5).standard_normal(3000) * np.exp(-np.arange(3000) / 600.0)
          ).astype(np.float32) * 0.05
    cases = [("biquad cascade", sosfilt(sos, x.astype(np.float64)),
              lambda: _with_sos(BiquadCascade(len(sos)), sos)),
             ("partitioned convolver", fftconvolve(x.astype(np.float64), ir)[:len(x)],
              lambda: PartitionedConvolver(ir))]
    passed = failed = 0
    for name, expected, make in cases:
        errs = {b: float(np.abs(stream(make(), x, b, 48000) - expected).max()) for b in blocks}
        worst = max(errs.values())
        ok = worst <= tol * max(1.0, float(np.abs(expected).max()))
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'PASS' if ok else 'FAIL'}  {name:<24} max abs error {worst:.3g} vs scipy "
              f"({', '.join(f'{b}: {e:.2g}' for b, e in errs.items())})", flush=True)
    return passed, failed


def _with_sos(cascade, sos):
    cascade.set_coefficients(sos)
    return cascade


def _mapped_blas():
    """The BLAS / LAPACK libraries this process has mapped (qemu-user emulates the file)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if "blas" in os.path.basename(p).lower()
                  or "lapack" in os.path.basename(p).lower())


# -- desktop side ----------------------------------------------------------------------------------

def _keras_layers(kind, hidden, dense, seed):
    """RTNeural Keras-layout layers with torch-random weights (doubled so nonlinearities
    matter): recurrent layers of `hidden` sizes, then dense (size, activation) layers."""
    import numpy as np
    import torch
    nn = torch.nn
    torch.manual_seed(seed)

    def lists(t):
        return (2.0 * t.detach()).numpy().astype(np.float64).tolist()
    layers, size = [], 1
    for hid in hidden:
        if kind == "lstm":
            m = nn.LSTM(size, hid)
            W, U, b = m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0 + m.bias_hh_l0
        else:
            m = nn.GRU(size, hid)

            def keras(t, hid=hid):      # torch gate rows r, z, n -> Keras z, r, h
                return torch.cat([t[hid:2 * hid], t[:hid], t[2 * hid:]])
            W, U = keras(m.weight_ih_l0), keras(m.weight_hh_l0)
            b = torch.stack([keras(m.bias_ih_l0), keras(m.bias_hh_l0)])
        layers.append({"type": kind, "activation": "", "shape": [None, None, hid],
                       "weights": [lists(W.T), lists(U.T), lists(b)]})
        size = hid
    for out, act in dense:
        lin = nn.Linear(size, out)
        layers.append({"type": "dense", "activation": act, "shape": [None, None, out],
                       "weights": [lists(lin.weight.T), lists(lin.bias)]})
        size = out
    return layers


def prepare(out, samples, shared):
    import numpy as np
    import torch

    from pedal import models as shipped
    from pedal.model.arch import build
    from pedal.model.file import Knob
    from pedal.model.formats import load_model
    from pedal.processor import stream
    from pedal.tools import convert
    from pedal.tools.nets import make_net, save_pt
    from pedal.tools.reference import reference_output

    os.makedirs(out, exist_ok=True)
    from pedal.signals import guitar_phrase
    x = guitar_phrase(samples / 48000 + 1, 48000, seed=0)[:samples]
    np.save(os.path.join(out, "x.npy"), x)
    sources = []      # (name, model file, reference source or None, knobs, reference label)

    nam_dir = os.path.join(shared, "reference", "nam")
    for name in sorted(os.listdir(nam_dir)):
        if name.endswith(".nam"):
            sources.append((name, os.path.join(nam_dir, name), None, "NAM (torch)"))

    for kind, hidden, dense, skip in (("lstm", [12], [(8, "tanh"), (1, "")], 0),
                                      ("gru", [8, 8], [(1, "")], 1)):
        doc = {"in_shape": [None, None, 1], "in_skip": skip,
               "layers": _keras_layers(kind, hidden, dense, seed=len(hidden)),
               "metadata": {"samplerate": 48000}}
        path = os.path.join(out, f"rtneural-{kind}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        sources.append((os.path.basename(path), path, None, "torch nn." + kind.upper()))

    torch.manual_seed(1)
    nets = {
        "pt-lstm": ("Recurrent", {"cell": "LSTM", "input_size": 1, "hidden_sizes": [16],
                                  "skip": 0, "dense": [{"size": 1, "activation": "Identity"}]},
                    ()),
        "pt-gru-knob": ("Recurrent", {"cell": "GRU", "input_size": 2, "hidden_sizes": [8, 6],
                                      "skip": 1,
                                      "dense": [{"size": 4, "activation": "Tanh"},
                                                {"size": 1, "activation": "Identity"}]},
                        (Knob("drive", 0, 1, 0.3),)),
        "pt-cnn": ("CNN", {"layers": [
            {"channels": 6, "kernel_size": 2, "dilation": d, "activation": "ReLU"}
            for d in (64, 32, 16, 8, 4, 2, 1)] + [
            {"channels": 4, "kernel_size": 3, "dilation": 1, "activation": "Tanh"},
            {"channels": 1, "kernel_size": 1, "dilation": 1, "activation": "Identity"}]}, ()),
    }
    for name, (arch, cfg, knobs) in nets.items():
        net = make_net(arch, cfg)
        if arch == "CNN":      # ReLU stacks at the default init are nearly silent
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(3.0)
        pt = os.path.join(out, name + ".pt")
        pedal_file = os.path.join(out, name + ".pedal")
        save_pt(net, pt, arch, knobs=knobs)
        rc = convert.main([pt, "-o", pedal_file])
        if rc != 0:
            raise SystemExit(f"pedal-convert {pt} failed with status {rc}")
        sources.append((name + ".pedal", pedal_file, pt, f"torch {arch} net (.pt)"))

    demo = shipped.default_model()
    if os.path.isfile(demo):
        sources.append((os.path.basename(demo), demo, "x86-kernels", "x86 kernels"))

    models = []
    for name, path, ref_src, label in sources:
        local = os.path.join(out, os.path.basename(path))
        if os.path.abspath(local) != os.path.abspath(path):
            with open(path, "rb") as f, open(local, "wb") as g:
                g.write(f.read())
        try:
            model = load_model(local)
        except Exception as e:   # reported as a failure by `check`, not hidden here
            print(f"prepare: {name}: does not load on the desktop ({type(e).__name__}: {e})")
            models.append({"name": name, "skip": f"does not load on the desktop either "
                                                 f"({type(e).__name__}: {e})"})
            continue
        desktop = None
        try:
            desktop = stream(build(model), x, 64, model.sample_rate)
        except Exception as e:   # stale desktop build: informational only
            print(f"prepare: {name}: desktop kernels failed ({type(e).__name__}: {e})")
        if ref_src == "x86-kernels":
            if desktop is None:
                continue
            expected = desktop
        else:
            knobs = [k.default for k in model.knobs]
            expected = reference_output(ref_src or local, x, knobs)
        stem = os.path.basename(path).replace(".", "_")
        np.save(os.path.join(out, stem + ".expected.npy"), np.asarray(expected, np.float32))
        entry = {"name": name, "path": os.path.basename(local),
                 "expected": stem + ".expected.npy", "reference": label}
        if desktop is not None and ref_src != "x86-kernels":
            np.save(os.path.join(out, stem + ".x86.npy"), desktop)
            entry["desktop_kernels"] = stem + ".x86.npy"
            err = float(np.abs(desktop - expected).max())
            print(f"prepare: {name:<24} x86 kernels vs {label}: max abs error {err:.3g}")
        models.append(entry)
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"signal": "x.npy", "tolerance": TOL, "blocks": list(BLOCKS),
                   "models": models}, f, indent=1)
    return 0


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="desktop: models, signal, expected outputs, manifest")
    pp.add_argument("out")
    pp.add_argument("--samples", type=int, default=10000)
    pp.add_argument("--shared", required=True, help="the project's shared folder")
    pc = sub.add_parser("check", help="device: stream the models and compare")
    pc.add_argument("manifest")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        return prepare(args.out, args.samples, args.shared)
    return check(args.manifest)


if __name__ == "__main__":
    sys.exit(main())
