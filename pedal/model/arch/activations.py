"""Activation names as the model formats spell them, mapped to the kernels' codes.

The codes are the ACT_* constants of kernels/_dsp.pxd; keep the two tables in step.

In a config an activation is a name ("Tanh", with the slope in a sibling "alpha" key where
it has one) or an object {"name": ..., params}: "alpha" (LeakyReLU's negative slope,
LeakyHardtanh's slope below min_val), "min_val"/"max_val" (Hardtanh and LeakyHardtanh
bounds), "max_slope" (LeakyHardtanh above max_val), "slopes" (PReLU: one per channel).
"""
from __future__ import annotations

import dataclasses

from ...errors import ModelError
from .fields import MAX_CHANNELS, need_number

# canonical name -> (kernel code, default alpha)
ACTIVATIONS = {
    "Identity": (0, 0.0),
    "Tanh": (1, 0.0),
    "ReLU": (2, 0.0),
    "LeakyReLU": (3, 0.01),
    "Hardtanh": (4, 0.0),
    "Sigmoid": (5, 0.0),
    "Fasttanh": (6, 0.0),
    "SiLU": (7, 0.0),
    "Softsign": (8, 0.0),
    "LeakyHardtanh": (9, 0.01),
    "Hardswish": (10, 0.0),
    "PReLU": (11, 0.25),
    "Softsigmoid": (12, 0.0),
}
_ALIASES = {name.lower(): name for name in ACTIVATIONS}
_ALIASES.update({"": "Identity", "linear": "Identity", "none": "Identity",
                 "fast_tanh": "Fasttanh", "swish": "SiLU", "hard_swish": "Hardswish"})
_PARAMS = {"alpha", "min_val", "max_val", "max_slope", "slopes"}


@dataclasses.dataclass(frozen=True)
class Activation:
    name: str                       # canonical spelling
    alpha: float = 0.01             # LeakyReLU/PReLU slope; LeakyHardtanh slope below min_val
    min_val: float = -1.0           # Hardtanh and LeakyHardtanh bounds
    max_val: float = 1.0
    max_slope: float = 0.01         # LeakyHardtanh slope above max_val (a name with an alpha
                                    # alone: alpha on both sides)
    slopes: tuple[float, ...] = ()  # PReLU: one slope per channel (empty: alpha for all)

    @property
    def code(self) -> int:
        return ACTIVATIONS[self.name][0]

    def to_config(self):
        """The config spelling: the bare name when every parameter is at its default."""
        d = {"name": self.name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and value != f.default:
                d[f.name] = list(value) if f.name == "slopes" else value
        return d["name"] if len(d) == 1 else d


def canonical(name, where, field) -> str:
    """The canonical spelling of an activation name, or a ModelError naming the field."""
    if isinstance(name, str) and name.lower() in _ALIASES:
        return _ALIASES[name.lower()]
    raise ModelError(where, f"{field}: activation {name!r} is not supported "
                            f"(supported: {', '.join(ACTIVATIONS)})")


def activation(cfg, name_key, alpha_key, default_name, where, field) -> Activation:
    """The activation cfg[name_key] (default_name if absent): a name, with cfg[alpha_key]
    (default 0.01) as its alpha, or an object with its parameters."""
    value = cfg.get(name_key, default_name) if isinstance(cfg, dict) else default_name
    f = f"{field}.{name_key}"
    if not isinstance(value, dict):
        alpha = need_number(cfg, alpha_key, 0.01, where, f"{field}.{alpha_key}")
        return Activation(canonical(value, where, f), alpha, max_slope=alpha)
    extra = sorted(set(value) - _PARAMS - {"name"})
    if extra:
        raise ModelError(where, f"{f}.{extra[0]}: not a parameter of an activation")
    num = {k: need_number(value, k, d, where, f"{f}.{k}") for k, d in
           (("alpha", 0.01), ("min_val", -1.0), ("max_val", 1.0))}
    num["max_slope"] = need_number(value, "max_slope", num["alpha"], where, f + ".max_slope")
    slopes = value.get("slopes", [])
    if not isinstance(slopes, list) or len(slopes) > MAX_CHANNELS:
        raise ModelError(where, f"{f}.slopes: expected a list of at most {MAX_CHANNELS} numbers")
    slopes = tuple(need_number({"s": s}, "s", 0.0, where, f"{f}.slopes[{i}]")
                   for i, s in enumerate(slopes))
    return Activation(canonical(value.get("name"), where, f + ".name"), slopes=slopes, **num)
