"""Per-period statistics of the audio loop: compute time, load, xruns, levels.

The audio thread only stores one number per period into a preallocated ring; summaries
(median, p99, max) are computed by whoever asks (the --stats printer, the control socket)."""
import math
import time

import numpy as np

WINDOW = 8192


class Stats:
    def __init__(self, period_frames, rate):
        self.period_us = period_frames / rate * 1e6
        self.times_ns = np.zeros(WINDOW, np.int64)
        self.count = 0
        self.xruns = 0
        self.device_losses = 0      # the device vanished and was reopened
        self.chain_failures = 0     # the chain raised; it was reset and played on
        self.started = time.monotonic()

    def record(self, ns):
        self.times_ns[self.count % WINDOW] = ns
        self.count += 1

    def summary(self, chain=None):
        n = min(self.count, WINDOW)
        t = self.times_ns[:n] / 1e3 if n else np.zeros(1)
        out = {"periods": self.count, "xruns": self.xruns,
               "device_losses": self.device_losses, "chain_failures": self.chain_failures,
               "compute_us_median": float(np.median(t)),
               "compute_us_p99": float(np.percentile(t, 99)),
               "compute_us_max": float(t.max()), "period_us": self.period_us,
               "load_pct_median": float(np.median(t)) / self.period_us * 100,
               "load_pct_p99": float(np.percentile(t, 99)) / self.period_us * 100,
               "uptime_s": time.monotonic() - self.started}
        if chain is not None:
            m = chain.meters
            out.update(in_peak_dbfs=_dbfs(m["in_peak"]), out_peak_dbfs=_dbfs(m["out_peak"]),
                       in_clipped=m["in_clipped"], out_clipped=m["out_clipped"],
                       model=chain.model_name, ir=chain.ir_name, bypass=chain.bypassed,
                       out_limited=chain.guard.limited, out_nonfinite=chain.guard.nonfinite,
                       faults=dict(chain.faults))
        return out


def _dbfs(x):
    return 20 * math.log10(x) if x > 0 else -math.inf


def format_line(s):
    return (f"load {s['load_pct_median']:.1f}% (p99 {s['load_pct_p99']:.1f}%, max "
            f"{s['compute_us_max']:.0f} us of {s['period_us']:.0f}) xruns {s['xruns']} "
            f"in {s.get('in_peak_dbfs', -math.inf):.1f} dBFS out "
            f"{s.get('out_peak_dbfs', -math.inf):.1f} dBFS"
            + (f" CLIP in {s['in_clipped']}" if s.get("in_clipped") else "")
            + (f" CLIP out {s['out_clipped']}" if s.get("out_clipped") else "")
            + (f" LIMITED {s['out_limited']}" if s.get("out_limited") else "")
            + (f" LOST {s['device_losses']}" if s.get("device_losses") else "")
            + "".join(f" FAULT {k} {v}" for k, v in s.get("faults", {}).items() if v))
