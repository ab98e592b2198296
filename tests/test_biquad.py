"""BiquadCascade against scipy.signal.sosfilt (float64), and rbj() against the cookbook's analog
prototypes mapped through the bilinear transform."""
import threading

import numpy as np
import pytest
from conftest import block_lengths as lengths
from scipy import signal as ss

from pedal.kernels.biquad import BiquadCascade, rbj

SR = 48000
BLOCKS = (1, 7, 64, 4096, "random")
N = 24000
TOL = 1e-5


def chain_sos():
    """An amp-style EQ chain: every kind once."""
    return np.array([
        rbj("dcblock", 5, 0, 0, SR),
        rbj("highpass", 20, 0.7071, 0, SR),
        rbj("lowshelf", 120, 1.0, 4.0, SR),
        rbj("peaking", 800, 1.4, -6.0, SR),
        rbj("highshelf", 3500, 0.8, 3.0, SR),
        rbj("lowpass", 7000, 0.7071, 0, SR),
    ])


def stream(proc, x, block, max_block=None):
    """reset, then x through proc.process in the given schedule; returns the output."""
    sizes = lengths(len(x), block)
    proc.reset(SR, max_block or max(sizes))
    y, pos = np.zeros(len(x), np.float32), 0
    for n in sizes:
        proc.process(x[pos:pos + n], y[pos:pos + n])
        pos += n
    return y


# -- streaming ----------------------------------------------------------------------------------

@pytest.mark.parametrize("block", BLOCKS)
def test_cascade_streams_like_sosfilt(block, signal):
    x = signal(N)
    sos = chain_sos()
    bq = BiquadCascade(len(sos))
    bq.set_coefficients(sos)
    y = stream(bq, x, block)
    ref = ss.sosfilt(sos, x.astype(np.float64))
    assert np.abs(y - ref).max() <= TOL


def test_20hz_highpass_is_accurate_at_48k(signal):
    """The low-frequency case float32 state gets wrong: poles 0.998 from z = 1."""
    x = signal(2 * SR)
    sos = rbj("highpass", 20, 0.7071, 0, SR)[None]
    bq = BiquadCascade(1)
    bq.set_coefficients(sos)
    err = np.abs(stream(bq, x, 64) - ss.sosfilt(sos, x.astype(np.float64))).max()
    assert err <= 1e-6, err     # float32 output rounding is ~6e-8; float32 state gave ~1e-4


def test_in_place_and_reset_clears_state(signal):
    x = signal(5000)
    sos = chain_sos()
    bq = BiquadCascade(len(sos))
    bq.set_coefficients(sos)
    first = stream(bq, x, 64)
    bq.reset(SR, 64)                     # coefficients survive, state does not
    buf = x.copy()
    for pos in range(0, len(buf), 64):
        bq.process(buf[pos:pos + 64], buf[pos:pos + 64])
    np.testing.assert_array_equal(buf, first)


def test_starts_as_pass_through(signal):
    x = signal(1000)
    np.testing.assert_array_equal(stream(BiquadCascade(3), x, 7), x)


# -- coefficient changes ------------------------------------------------------------------------

@pytest.mark.parametrize("split", [1, 4000, 9999])
def test_coefficient_swap_carries_state(split, signal):
    """A swap between blocks equals sosfilt of the two halves with the state (scipy's zi)
    carried over: TDF-II state is kept as it is, only the coefficients change."""
    x = signal(10000)
    a = chain_sos()
    b = np.array([rbj("highpass", 80, 0.9, 0, SR), rbj("lowshelf", 200, 0.7, -5.0, SR),
                  rbj("peaking", 2000, 0.5, 8.0, SR), rbj("highshelf", 6000, 1.0, -4.0, SR),
                  rbj("lowpass", 5000, 1.2, 0, SR), rbj("dcblock", 10, 0, 0, SR)])
    bq = BiquadCascade(len(a))
    bq.set_coefficients(a)
    bq.reset(SR, 64)
    y = np.zeros_like(x)
    for pos in range(0, len(x), 64):
        end = min(pos + 64, split) if pos < split else min(pos + 64, len(x))
        bq.process(x[pos:end], y[pos:end])
        if end == split:
            bq.set_coefficients(b)
        if end < min(pos + 64, len(x)):        # the rest of a block cut at the split
            bq.process(x[end:pos + 64], y[end:pos + 64])
    x64 = x.astype(np.float64)
    first, zf = ss.sosfilt(a, x64[:split], zi=np.zeros((len(a), 2)))
    second, _ = ss.sosfilt(b, x64[split:], zi=zf)
    assert np.abs(y - np.concatenate([first, second])).max() <= TOL


def test_unnormalised_rows_are_divided_by_a0(signal):
    x = signal(3000)
    sos = chain_sos()
    scaled = sos * np.array([2.0, 0.5, 3.0, 4.0, 1.5, 0.25])[:, None]
    bq = BiquadCascade(len(sos))
    bq.set_coefficients(scaled)
    assert np.abs(stream(bq, x, 64) - ss.sosfilt(sos, x.astype(np.float64))).max() <= TOL


def test_concurrent_set_coefficients_never_tears():
    """A writer thread flips between gain sets while blocks run without the GIL. Set e makes
    every one of 4 sections a gain 2**(e/4), so a whole set gives 2**e; a torn mix of
    neighbouring sets would give a non-integer power of two."""
    sets = [np.tile([2.0 ** (e / 4), 0, 0, 1, 0, 0], (4, 1)) for e in range(8)]
    bq = BiquadCascade(4)
    bq.reset(SR, 256)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            bq.set_coefficients(sets[i % 8])
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    x, y = np.ones(256, np.float32), np.zeros(256, np.float32)
    seen = set()
    try:
        for _ in range(3000):
            bq.process(x, y)
            powers = np.log2(y)
            assert np.all(powers == np.round(powers)), powers
            seen.update(np.unique(powers).tolist())
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 1            # the swaps did happen
    bq.set_coefficients(sets[5])
    bq.process(x, y)
    np.testing.assert_array_equal(y, 32.0)


def test_bad_input():
    with pytest.raises(ValueError):
        BiquadCascade(0)
    bq = BiquadCascade(2)
    with pytest.raises(ValueError):
        bq.set_coefficients(np.zeros((3, 6)))
    with pytest.raises(ValueError):
        bq.set_coefficients([[1, 0, 0, 0, 0, 0]] * 2)           # a0 = 0
    with pytest.raises(ValueError):
        bq.set_coefficients([[np.nan, 0, 0, 1, 0, 0]] * 2)
    bq.reset(SR, 16)
    with pytest.raises(ValueError):
        bq.process(np.zeros(17, np.float32), np.zeros(17, np.float32))
    with pytest.raises(ValueError):
        rbj("notch", 1000, 1, 0, SR)
    with pytest.raises(ValueError):
        rbj("peaking", 30000, 1, 0, SR)


# -- rbj against the cookbook's analog prototypes -----------------------------------------------

def prototype(kind, s, q, gain_db):
    """The cookbook's H(s) for normalised s (corner at s = j). Shelves take Q from slope S."""
    a = 10 ** (gain_db / 40)
    if kind in ("lowshelf", "highshelf"):
        q = 1 / np.sqrt((a + 1 / a) * (1 / q - 1) + 2)
    r = np.sqrt(a) / q
    return {
        "lowpass": lambda: 1 / (s ** 2 + s / q + 1),
        "highpass": lambda: s ** 2 / (s ** 2 + s / q + 1),
        "peaking": lambda: (s ** 2 + s * a / q + 1) / (s ** 2 + s / (a * q) + 1),
        "lowshelf": lambda: a * (s ** 2 + r * s + a) / (a * s ** 2 + r * s + 1),
        "highshelf": lambda: a * (a * s ** 2 + r * s + 1) / (s ** 2 + r * s + a),
    }[kind]()


CASES = [("lowpass", 1000, 0.7071, 0), ("lowpass", 8000, 2.0, 0), ("highpass", 20, 0.7071, 0),
         ("highpass", 500, 0.5, 0), ("peaking", 800, 1.4, -6), ("peaking", 3000, 4.0, 12),
         ("lowshelf", 120, 1.0, 6), ("lowshelf", 400, 0.5, -9), ("highshelf", 3500, 0.8, 3),
         ("highshelf", 10000, 1.0, -12)]


@pytest.mark.parametrize("kind,f0,q,gain_db", CASES)
def test_rbj_matches_cookbook_prototype(kind, f0, q, gain_db):
    """The cookbook designs are the bilinear transform of H(s) prewarped at f0, so the digital
    response at f is H(j tan(pi f / fs) / tan(pi f0 / fs)) exactly."""
    freqs = np.array([10, 50, 0.5 * f0, f0, 1.7 * f0, 5000, 15000, 23000])
    freqs = freqs[freqs < SR / 2]
    _, h = ss.sosfreqz(rbj(kind, f0, q, gain_db, SR)[None], worN=freqs, fs=SR)
    s = 1j * np.tan(np.pi * freqs / SR) / np.tan(np.pi * f0 / SR)
    want = np.abs(prototype(kind, s, q, gain_db))
    np.testing.assert_allclose(np.abs(h), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind,gain_db", [("lowshelf", 6), ("highshelf", -9), ("peaking", 4)])
def test_rbj_gains_land_where_named(kind, gain_db):
    row = rbj(kind, 1000, 1.0, gain_db, SR)[None]
    where = {"lowshelf": 0.0, "highshelf": SR / 2 - 1e-6, "peaking": 1000.0}[kind]
    _, h = ss.sosfreqz(row, worN=[where], fs=SR)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(gain_db, abs=1e-6)


def test_rbj_dcblock():
    """y = x - x1 + R*y1: a zero at DC, -3 dB near the corner, flat through the guitar band."""
    row = rbj("dcblock", 5, 0, 0, SR)
    assert list(row[[0, 1, 2, 3, 5]]) == [1, -1, 0, 1, 0]
    _, h = ss.sosfreqz(row[None], worN=[0.0, 5.0, 80.0, 1000.0], fs=SR)
    db = 20 * np.log10(np.abs(h[1:]))
    assert abs(h[0]) < 1e-12
    assert db[0] == pytest.approx(-3.01, abs=0.02)
    assert db[1] == pytest.approx(0, abs=0.02)      # low E is untouched
    assert db[2] == pytest.approx(0, abs=0.01)      # +2.8 mdB: the high-frequency gain 2/(1+R)
