"""Training losses: ESR on pre-emphasised signals, a DC term and a multi-resolution STFT term.

The ESR is measured after a pre-emphasis filter because the ear weighs the highs more than a
plain error sum does: first-order 1 - 0.85 z^-1 by default, or an A-weighting FIR.
"""
import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import firwin2

STFT_SIZES = (256, 1024, 4096)
A_WEIGHTING_TAPS = 101


def a_weighting_db(freqs):
    """IEC 61672 A-weighting in dB (0 dB at 1 kHz)."""
    f2 = np.maximum(np.asarray(freqs, np.float64), 1e-3) ** 2
    ra = (12194.0 ** 2 * f2 ** 2) / ((f2 + 20.6 ** 2) * np.sqrt((f2 + 107.7 ** 2)
                                     * (f2 + 737.9 ** 2)) * (f2 + 12194.0 ** 2))
    return 20 * np.log10(ra) + 2.0


def a_weighting_fir(rate, taps=A_WEIGHTING_TAPS):
    freqs = np.linspace(0, rate / 2, 512)
    gain = 10 ** (np.maximum(a_weighting_db(freqs), -80.0) / 20)
    gain[0] = 0.0
    return firwin2(taps, freqs / (rate / 2), gain).astype(np.float32)


class PreEmphasis(torch.nn.Module):
    """A fixed FIR applied along time to (batch, time) signals; 'valid' output."""

    def __init__(self, kind="first-order", rate=48000, coef=0.85):
        super().__init__()
        if kind == "first-order":
            taps = np.array([-coef, 1.0], np.float32)
        elif kind == "a-weighting":
            taps = a_weighting_fir(rate)[::-1].copy()
        elif kind == "none":
            taps = np.array([1.0], np.float32)
        else:
            raise ValueError(f"pre-emphasis {kind!r}: use first-order, a-weighting or none")
        self.register_buffer("taps", torch.from_numpy(taps)[None, None, :])

    def forward(self, x):
        return F.conv1d(x[:, None, :], self.taps)[:, 0, :]


def esr(target, pred):
    return ((target - pred) ** 2).sum() / (target ** 2).sum().clamp_min(1e-10)


def dc_term(target, pred):
    return ((target.mean(-1) - pred.mean(-1)) ** 2).mean() / (target ** 2).mean().clamp_min(1e-10)


def mrstft(target, pred, sizes=STFT_SIZES):
    """Spectral convergence plus log-magnitude distance, averaged over the FFT sizes."""
    total = 0.0
    for n in sizes:
        win = torch.hann_window(n, device=target.device, dtype=target.dtype)
        st, sp = (torch.stft(v, n, n // 4, window=win, return_complex=True).abs() + 1e-7
                  for v in (target, pred))
        total = total + torch.linalg.norm(st - sp) / torch.linalg.norm(st).clamp_min(1e-7) \
            + (st.log() - sp.log()).abs().mean()
    return total / len(sizes)


class CaptureLoss(torch.nn.Module):
    """ESR(pre-emphasised) + dc_weight * DC + stft_weight * MR-STFT."""

    def __init__(self, pre_emphasis="first-order", rate=48000, dc_weight=1.0, stft_weight=0.0):
        super().__init__()
        self.pre = PreEmphasis(pre_emphasis, rate)
        self.dc_weight, self.stft_weight = dc_weight, stft_weight

    def forward(self, target, pred):
        loss = esr(self.pre(target), self.pre(pred))
        if self.dc_weight:
            loss = loss + self.dc_weight * dc_term(target, pred)
        if self.stft_weight:
            loss = loss + self.stft_weight * mrstft(target, pred)
        return loss
