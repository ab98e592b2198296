"""pedal-train: train a model of the gear on an aligned capture.

    pedal-train CAPTURE_DIR -o RUN_DIR [--arch feather] [--minutes 15] [--resume]

CAPTURE_DIR is what `pedal-capture align` wrote. RUN_DIR receives model.pt (for
`pedal-convert`), checkpoint.pt (for --resume), model.nam where the architecture has a NAM
equivalent, and report/ (validation ESR with a verdict, plots, clips, an ABX page).
"""
import argparse
import contextlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

from pedal.cli.common import Parser, check_output_folder, json_option, note, run_command
from pedal.errors import PedalError
from pedal.model.file import Knob

from .architectures import NAMES, make
from .capturefolder import load_capture
from .losses import CaptureLoss
from .nets import load_pt, make_net, save_pt, shift_knob_origin, torch_load, torch_save_atomic
from .report import learnt

VALIDATE_EVERY_S = 20.0       # least wall time between validations (and checkpoints)
RECURRENT_WARMUP = 2048       # samples a recurrent net runs before its loss counts
RECURRENT_CONTEXT = 24000     # samples of real input before the validation section
# Peak rates (TS9 runs, BENCHMARKS.md): narrow convolutional nets (feather) learn fastest at
# 0.015; from WIDE_CHANNELS up (standard) that rate is unstable and 0.005 is the one measured.
LR_NARROW, LR_WIDE, LR_RECURRENT = 0.015, 0.005, 0.005
WIDE_CHANNELS = 12
COMPILE_FROM_S = 300          # budgets this long win back torch.compile's minute or so


class Trainer:
    """One training run: data, net, optimiser, schedule, history; resumable."""

    def __init__(self, capture, arch, config, args):
        self.capture, self.args = capture, args
        self.device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu
                                   else "cpu")
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.arch, self.config = arch, config
        self.net = make_net(arch, config).to(self.device)
        self.train_net = self.net       # a compiled view of the same parameters, see run()
        self.recurrent = arch == "Recurrent"
        self.context = RECURRENT_WARMUP if self.recurrent else self.net.receptive_field - 1
        self.loss_fn = CaptureLoss(args.pre_emphasis, capture.rate, args.dc_weight,
                                   args.stft_weight).to(self.device)
        # FiLM's weights may learn faster than the rest (--film-lr-factor): each sees only
        # the knob differences within a batch, a noisy signal that Adam turns into small steps
        film = [p for name, p in self.net.params.items() if "film" in name]
        rest = [p for name, p in self.net.params.items() if "film" not in name]
        groups = [{"params": rest, "factor": 1.0}] + \
            ([{"params": film, "factor": args.film_lr_factor}] if film else [])
        self.opt = torch.optim.Adam(groups, lr=args.lr)
        self.params = list(self.net.parameters())
        # a running average of the weights smooths the noise of a high learning rate
        self.ema = [p.detach().clone() for p in self.params] if args.ema else None
        self.starts = [t.train_starts(self.context, args.segment) for t in capture.takes]
        total = sum(len(s) for s in self.starts)
        if total == 0:
            raise PedalError(capture.path, "sections: no training material long enough for "
                                           f"segments of {args.segment} samples")
        self.take_weights = np.array([len(s) / total for s in self.starts])
        self.elapsed, self.step, self.history = 0.0, 0, []
        self.best_esr, self.best_tensors = math.inf, None
        self.initial_esr = None       # the untrained net's, to tell whether the run learnt
        drys = {}     # one tensor per dry signal, however many takes share it
        self.xs = [drys.setdefault(id(t.dry), torch.from_numpy(t.dry).to(self.device))
                   for t in capture.takes]
        self.ys = [torch.from_numpy(t.wet).to(self.device) for t in capture.takes]
        # Each take's examples are scaled to the take's own level, so that the loss weighs
        # every knob setting alike (a heavily compressed take is far quieter than the rest).
        levels = [np.sqrt(np.mean(np.concatenate([t.wet[s:e] for s, e in t.train] or [t.wet]) ** 2,
                                  dtype=np.float64)) for t in capture.takes]
        self.take_scale = torch.tensor([1.0 / max(v, 1e-6) for v in levels],
                                       dtype=torch.float32, device=self.device)
        # the net sees the knobs relative to their defaults (see nets.shift_knob_origin)
        self.origin = np.array(capture.knob_origin())
        self.knobs = torch.tensor(np.array([t.knob_vector for t in capture.takes]) - self.origin,
                                  dtype=torch.float32, device=self.device) \
            if capture.knobs else None

    # -- the schedule: warm-up, then cosine decay over the time budget -----------------------
    def lr_at(self, frac):
        a = self.args
        if frac < 0.02:
            return a.lr * max(frac / 0.02, 0.05)
        return a.lr_min + 0.5 * (a.lr - a.lr_min) * (1 + math.cos(math.pi * min(frac, 1.0)))

    def set_lr(self, frac):
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(frac) * g.get("factor", 1.0)

    def batch(self):
        """Segments of takes drawn in proportion to their training material, each with
        `context` samples of real input in front."""
        n, seg, ctx = self.args.batch, self.args.segment, self.context
        takes = self.rng.choice(len(self.ys), n, p=self.take_weights).tolist()
        offsets = torch.arange(-ctx, seg, device=self.device)
        xs, ys = [], []
        for t in takes:
            start = int(self.starts[t][self.rng.integers(0, len(self.starts[t]))])
            idx = start + offsets
            xs.append(self.xs[t][idx])
            ys.append(self.ys[t][idx[ctx:]])
        picked = torch.as_tensor(takes, device=self.device)
        k = self.knobs[picked] if self.knobs is not None else None
        return torch.stack(xs), torch.stack(ys), k, self.take_scale[picked][:, None]

    def compile(self, say):
        """Fuse the net's elementwise work with torch.compile (its compile time is not
        counted in the budget); a machine where that fails trains uncompiled."""
        t0 = time.monotonic()
        try:
            self.train_net = torch.compile(self.net)
            self.set_lr(self.elapsed / (self.args.minutes * 60.0))
            self.train_step()
        except Exception as e:  # no C++ compiler, an unsupported platform, ...
            self.train_net = self.net
            say(f"note: torch.compile failed ({type(e).__name__}); training uncompiled")
            return
        say(f"compiled the net in {time.monotonic() - t0:.0f} s")

    def train_step(self):
        x, y, k, scale = self.batch()
        pred = self._forward(x, k)
        loss = self.loss_fn(scale * y, scale * pred)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.args.clip)
        self.opt.step()
        self.step += 1
        if self.ema is not None:
            # the average starts short (about a tenth of the steps so far) and lengthens to
            # 1 / (1 - decay) steps, so that a short run is not averaged back to its start
            w = max(1.0 - self.args.ema, 9.0 / (10.0 + self.step))
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, self.params, w)
        return float(loss.detach())

    def _forward(self, x, k):
        """The net on inputs that start with `context` samples of real input: only the
        outputs after that context (convolutional nets then skip their zero padding)."""
        if self.recurrent:
            return self.train_net(x, k)[:, self.context:]
        return self.train_net(x, k, pad=False)

    def predict(self, start, end, take=0):
        """The net on [start, end) of the take's dry signal, with real input before it as
        context."""
        ctx = min(start, RECURRENT_CONTEXT if self.recurrent else self.context)
        k = self.knobs[take:take + 1] if self.knobs is not None else None
        self.net.eval()
        with torch.no_grad():
            out = self.net(self.xs[take][None, start - ctx:end], k)[0, ctx:]
        self.net.train()
        return out

    @contextlib.contextmanager
    def averaged(self):
        """The averaged weights in the net for the duration (validation, the saved model)."""
        if self.ema is None:
            yield
            return
        current = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, current)

    def validate(self, per_take=False):
        """Plain ESR on the validation sections: the mean over the takes, each knob setting
        counting alike (or a list, one per take)."""
        errs, energies = [], []
        for t, y in enumerate(self.ys):
            err = energy = 0.0
            for s, e in self.capture.takes[t].validation:
                pred = self.predict(s, e, t)
                err += float(((pred - y[s:e]) ** 2).sum())
                energy += float((y[s:e] ** 2).sum())
            errs.append(err)
            energies.append(max(energy, 1e-20))
        per = [a / b for a, b in zip(errs, energies)]
        return per if per_take else float(np.mean(per))

    def run(self, say, checkpoint_path=None):
        """Train until the time budget, the epochs or early stopping end it."""
        a = self.args
        budget = a.minutes * 60.0
        steps_per_epoch = max(1, self.capture.train_samples // (a.batch * a.segment))
        if self.initial_esr is None:
            self.initial_esr = self.validate()
        if a.compile == "on" or (a.compile == "auto" and budget >= COMPILE_FROM_S):
            self.compile(say)
        t0 = time.monotonic() - self.elapsed     # the budget is training time, not compiling
        bar = _progress(budget, self.elapsed, not a.quiet)
        last_val, interval = time.monotonic(), VALIDATE_EVERY_S
        losses, stale = [], 0
        try:
            while True:
                self.elapsed = time.monotonic() - t0
                frac = self.elapsed / budget
                if a.epochs:        # the schedule spans whichever ends first: clock or epochs
                    frac = max(frac, self.step / (a.epochs * steps_per_epoch))
                if frac >= 1.0:
                    break
                self.set_lr(frac)
                losses.append(self.train_step())
                bar.update(self.elapsed)
                if time.monotonic() - last_val >= interval:
                    started = time.monotonic()
                    stale = self._checkpoint(losses, steps_per_epoch, stale, checkpoint_path)
                    bar.postfix(losses[-1], self.best_esr, budget - self.elapsed)
                    losses, last_val = [], time.monotonic()
                    # validation (all takes) may cost at most a tenth of the training time
                    interval = max(VALIDATE_EVERY_S, 10 * (last_val - started))
                    if a.patience and stale >= a.patience:
                        say(f"early stop: validation ESR has not improved in {stale} checks")
                        break
            self.elapsed = time.monotonic() - t0
            if losses or not self.history:
                self._checkpoint(losses, steps_per_epoch, stale, checkpoint_path)
        finally:
            bar.close()
        self.net.load_tensors(self.best_tensors)
        return self.best_esr

    def _checkpoint(self, losses, steps_per_epoch, stale, path):
        with self.averaged():
            val = self.validate()
            tensors = self.net.tensors()
        self.history.append({"epoch": round(self.step / steps_per_epoch, 3), "step": self.step,
                             "train_loss": float(np.mean(losses)) if losses else None,
                             "val_esr": val, "seconds": round(self.elapsed, 1)})
        if val < self.best_esr:
            self.best_esr, self.best_tensors, stale = val, tensors, 0
        else:
            stale += 1
        if path:
            self.save_checkpoint(path)
        return stale

    def init_from(self, path):
        """Start from the weights of an earlier model.pt of the same size (a capture of the
        same gear at one knob setting, say); tensors it lacks (FiLM) keep their start."""
        ours = self.net.tensors()
        theirs = {k: v for k, v in load_pt(path).tensors.items()
                  if k in ours and v.shape == ours[k].shape}
        if not theirs:
            raise PedalError(path, "tensors: none fits this architecture and size")
        if self.capture.knobs:
            theirs = shift_knob_origin(self.arch, self.config, theirs, -self.origin)
        self.net.load_tensors(theirs)
        if self.ema is not None:
            torch._foreach_copy_(self.ema, [p.detach() for p in self.params])
        return len(theirs)

    # -- checkpoints ---------------------------------------------------------------------------
    def export_net(self):
        """The net for the model file: fed the knobs themselves, not relative to their
        defaults."""
        if not self.capture.knobs:
            return self.net
        net = make_net(self.arch, self.config)
        net.load_tensors(shift_knob_origin(self.arch, self.config, self.net.tensors(),
                                           self.origin))
        return net.eval()

    def state(self):
        return {"format": "pedal-train-checkpoint", "version": 1, "architecture": self.arch,
                "config": self.config, "step": self.step, "elapsed": self.elapsed,
                "history": self.history, "best_esr": self.best_esr,
                "initial_esr": self.initial_esr,
                "best": {k: torch.from_numpy(v) for k, v in (self.best_tensors or {}).items()},
                "tensors": {k: torch.from_numpy(v) for k, v in self.net.tensors().items()},
                "optimizer": self.opt.state_dict(), "ema": self.ema,
                "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state()}

    def save_checkpoint(self, path):
        torch_save_atomic(self.state(), path)

    def load_checkpoint(self, path):
        ck = read_checkpoint(path)
        if ck["architecture"] != self.arch or ck["config"] != self.config:
            raise PedalError(path, "config: the checkpoint is of another architecture or size "
                                   "than asked for (resume with the same --arch options)")
        try:
            self.net.load_tensors({k: v.numpy() for k, v in ck["tensors"].items()})
            self.opt.load_state_dict(ck["optimizer"])
            if self.ema is not None and ck.get("ema") is not None:
                torch._foreach_copy_(self.ema, ck["ema"])
            self.rng.bit_generator.state = ck["rng"]
            torch.set_rng_state(ck["torch_rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise PedalError(path, f"checkpoint does not fit this run ({e})") from None
        self.step, self.elapsed, self.history = ck["step"], ck["elapsed"], ck["history"]
        self.best_esr, self.initial_esr = ck["best_esr"], ck.get("initial_esr")
        self.best_tensors = {k: v.numpy() for k, v in ck["best"].items()} or None


def read_checkpoint(path):
    ck = torch_load(path, "no checkpoint to resume from", PedalError)
    if not isinstance(ck, dict) or ck.get("format") != "pedal-train-checkpoint":
        raise PedalError(path, "format: not a pedal-train checkpoint")
    return ck


class _progress:
    """A progress bar over the time budget with train loss, validation ESR and time left."""

    def __init__(self, budget_s, done_s, enabled):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=round(budget_s), initial=round(done_s), unit="s",
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}",
                            file=sys.stderr)

    def update(self, elapsed):
        if self.bar is not None and round(elapsed) != self.bar.n:
            self.bar.n = min(round(elapsed), self.bar.total)
            self.bar.refresh()

    def postfix(self, loss, best, left):
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}, val ESR {best:.4f}, "
                                     f"{max(left, 0) / 60:.1f} min left")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def model_knobs(capture):
    """The model's knobs: each capture knob as a 0..1 position of the gear's range, spaced
    by its taper (training.knob_tapers in the metadata)."""
    return [Knob(k["name"], 0.0, 1.0, capture.normalise(k["name"], k["default"]))
            for k in capture.knobs]


def build_parser():
    p = Parser(prog="pedal-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", help="folder (or its capture.json) written by pedal-capture align")
    p.add_argument("-o", "--output", dest="out", required=True, help="run folder")
    p.add_argument("--force", action="store_true",
                   help="train afresh into a run folder that holds a model already")
    p.add_argument("--arch", default="feather", choices=NAMES)
    p.add_argument("--channels", type=int, help="WaveNet/TCN/CNN width (custom size)")
    p.add_argument("--hidden", type=int, help="LSTM/GRU units (8..64)")
    p.add_argument("--kernel-size", type=int)
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    p.add_argument("--epochs", type=float, default=0,
                   help="stop after this many epochs too (the rate's warm-up and decay then "
                        "span whichever ends first)")
    p.add_argument("--lr", type=float,
                   help=f"peak learning rate (default {LR_NARROW} for convolutional nets "
                        f"under {WIDE_CHANNELS} channels, {LR_WIDE} for wider ones, "
                        f"{LR_RECURRENT} for recurrent ones)")
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--film-lr-factor", type=float, default=1.0,
                   help="FiLM's weights learn at this multiple of the rate (conditioned "
                        "WaveNet/TCN; 10 sped up a compressor's knob, see BENCHMARKS.md)")
    p.add_argument("--knob-taper", action="append", default=[], metavar="KNOB=TAPER",
                   help="how the net sees a knob's values: linear (default), log, or "
                        "reciprocal (a compressor's ratio: see BENCHMARKS.md); repeatable")
    p.add_argument("--batch", type=int, help="examples per step (default 4 convolutional, "
                                             "16 recurrent)")
    p.add_argument("--segment", type=int, help="samples per example (default 32768 "
                                               "convolutional, 8192 recurrent)")
    p.add_argument("--clip", type=float, default=10.0, help="gradient norm clipping")
    p.add_argument("--ema", type=float, default=0.995,
                   help="decay of the weights' running average that is validated and saved "
                        "(0: the raw weights)")
    p.add_argument("--pre-emphasis", default="first-order",
                   choices=("first-order", "a-weighting", "none"))
    p.add_argument("--dc-weight", type=float, default=1.0)
    p.add_argument("--stft-weight", type=float, default=0.0,
                   help="weight of a multi-resolution STFT term (e.g. 2e-4; off by default: "
                        "see BENCHMARKS.md)")
    p.add_argument("--patience", type=int, default=20,
                   help="stop after this many validations (20 s or more apart) without improvement "
                        "(0: never)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even with CUDA")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                   help="torch.compile the net (auto: for budgets of 5 minutes or more)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    p.add_argument("--init", metavar="MODEL_PT",
                   help="start from an earlier model.pt of the same size (e.g. one knob "
                        "setting before training the conditioned model)")
    p.add_argument("--name", help="model name (default: from the capture's gear)")
    p.add_argument("--no-report", action="store_true")
    json_option(p)
    return p


def default_lr(arch, config):
    if arch == "Recurrent":
        return LR_RECURRENT
    layers = config.get("layer_arrays") or config.get("layers")
    return LR_WIDE if max(lay["channels"] for lay in layers) >= WIDE_CHANNELS else LR_NARROW


# option -> (lowest, highest) it takes; None: any value is the default's
LIMITS = {"channels": (1, 256), "hidden": (1, 256), "kernel_size": (1, 64),
          "minutes": (0.001, 7 * 24 * 60), "epochs": (0, 1e9), "lr": (1e-30, 1.0),
          "lr_min": (0, 1.0), "batch": (1, 4096), "segment": (256, 1 << 22),
          "clip": (1e-6, 1e9), "ema": (0, 0.999999), "dc_weight": (0, 1e9),
          "stft_weight": (0, 1e9), "patience": (0, 1 << 30), "seed": (0, 2 ** 32 - 1),
          "threads": (0, 1024)}


def check_arguments(args):
    """Every number the user gave within its range (NaN is in none)."""
    for key, (lo, hi) in LIMITS.items():
        value = getattr(args, key, None)
        if value is not None and not lo <= value <= hi:
            raise PedalError("--" + key.replace("_", "-"), f"{value!r}; use {lo:g}..{hi:g}")


def train(args, say=print):
    check_arguments(args)
    if not args.resume:
        check_output_folder(args.out, "model.pt", args.force)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    capture = load_capture(args.capture)
    for item in args.knob_taper:
        name, _, kind = item.partition("=")
        capture.set_taper(name.strip(), kind.strip())
    arch, config = make(args.arch, len(capture.knobs), args.channels, args.hidden,
                        args.kernel_size)
    recurrent = arch == "Recurrent"
    defaults = {"lr": (default_lr(arch, config), LR_RECURRENT), "batch": (4, 16),
                "segment": (32768, 8192)}
    for key, (conv, rec) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, rec if recurrent else conv)
    os.makedirs(args.out, exist_ok=True)
    trainer = Trainer(capture, arch, config, args)
    ck_path = os.path.join(args.out, "checkpoint.pt")
    if args.init:
        say(f"starting from {args.init}: {trainer.init_from(args.init)} tensors")
    if args.resume:
        trainer.load_checkpoint(ck_path)
        say(f"resuming at {trainer.elapsed / 60:.1f} min, best validation ESR "
            f"{trainer.best_esr:.4f}")
    say(f"training {args.arch} ({sum(p.numel() for p in trainer.net.parameters())} weights) "
        f"on {capture.describe()} for {args.minutes:g} min on {trainer.device}")
    val_esr = trainer.run(say, ck_path)
    name = args.name or capture.gear_name()
    training = {"architecture": args.arch, "minutes": round(trainer.elapsed / 60, 2),
                "steps": trainer.step, "validation_esr": val_esr,
                "initial_validation_esr": trainer.initial_esr}
    if capture.tapers:
        training["knob_tapers"] = capture.tapers
    if len(capture.takes) > 1:
        training["validation_esr_per_take"] = [
            {"knobs": t.knobs, "esr": v} for t, v in zip(capture.takes,
                                                         trainer.validate(per_take=True))]
        for entry in training["validation_esr_per_take"]:
            say(f"  {entry['knobs']}: validation ESR {entry['esr']:.4f}")
    metadata = {"name": name, **capture.gear_metadata(), "training": training}
    pt_path = os.path.join(args.out, "model.pt")
    save_pt(trainer.export_net(), pt_path, arch, capture.rate, model_knobs(capture), metadata,
            {"validation": val_esr})
    say(f"validation ESR {val_esr:.4f}; wrote {pt_path} (pedal-convert {pt_path})")
    if not learnt(val_esr, trainer.initial_esr):
        say(f"this run did not learn: validation ESR {val_esr:.4g} against "
            f"{trainer.initial_esr:.4g} untrained; check the capture, or train longer or at "
            f"another --lr")
    _export_nam(pt_path, os.path.join(args.out, "model.nam"), say)
    if not args.no_report:
        _report(trainer, args, name, val_esr, say)
    return val_esr


def _export_nam(pt_path, nam_path, say):
    """A .nam beside model.pt where NAM can express the model, so it also plays in NAM."""
    from .namexport import export_nam
    try:
        export_nam(load_pt(pt_path), nam_path)
        say(f"wrote {nam_path} (plays in Neural Amp Modeler)")
    except PedalError as e:
        say(f"no .nam export: {e.problem}")


def _report(trainer, args, name, val_esr, say):
    from .abx import load_clips, write_abx_page
    from .report import write_report
    take = trainer.capture.default_take()
    t = trainer.capture.takes[take]
    s, e = max(t.validation, key=lambda r: r[1] - r[0])
    pred = trainer.predict(s, e, take).cpu().numpy()
    summary = {"name": name, "architecture": args.arch, "val_esr": val_esr,
               "initial_esr": trainer.initial_esr, "minutes": round(trainer.elapsed / 60, 2),
               "parameters": sum(p.numel() for p in trainer.net.parameters())}
    folder = os.path.join(args.out, "report")
    write_report(folder, t.dry[s:e], t.wet[s:e], pred, trainer.capture.rate, trainer.history,
                 summary)
    write_abx_page(folder, load_clips(folder))
    say(f"report: {folder}/report.md; blind test: pedal-abx {folder} (or open abx.html)")


def main(argv=None):
    args = build_parser().parse_args(argv)

    def work():
        try:
            esr = train(args, say=note if args.json else print)
            if args.json:
                print(json.dumps({"validation_esr": esr, "run": args.out,
                                  "model_pt": os.path.join(args.out, "model.pt")}))
        except KeyboardInterrupt:
            print("pedal-train: interrupted; --resume continues from the last checkpoint",
                  file=sys.stderr)
            return 130

    return run_command("pedal-train", work)


if __name__ == "__main__":
    raise SystemExit(main())
