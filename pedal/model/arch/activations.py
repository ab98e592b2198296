"""Activation names as the model formats spell them, mapped to the kernels' codes.

The codes are the ACT_* constants of kernels/_dsp.pxd; keep the two tables in step.
"""
from __future__ import annotations

import dataclasses

from ...errors import ModelError
from .fields import need_number

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
}
_ALIASES = {name.lower(): name for name in ACTIVATIONS}
_ALIASES.update({"": "Identity", "linear": "Identity", "none": "Identity",
                 "fasttanh": "Fasttanh", "fast_tanh": "Fasttanh", "hardtanh": "Hardtanh",
                 "leakyhardtanh": "LeakyHardtanh", "swish": "SiLU"})


@dataclasses.dataclass(frozen=True)
class Activation:
    name: str               # canonical spelling
    alpha: float = 0.01     # slope or limit where the activation has one

    @property
    def code(self) -> int:
        return ACTIVATIONS[self.name][0]


def canonical(name, where, field) -> str:
    """The canonical spelling of an activation name, or a ModelError naming the field."""
    if isinstance(name, str) and name.lower() in _ALIASES:
        return _ALIASES[name.lower()]
    raise ModelError(where, f"{field}: activation {name!r} is not supported "
                            f"(supported: {', '.join(ACTIVATIONS)})")


def activation(cfg, name_key, alpha_key, default_name, where, field) -> Activation:
    """The activation named by cfg[name_key] (default_name if absent), with cfg[alpha_key]
    (default 0.01) as its alpha."""
    name = cfg.get(name_key, default_name) if isinstance(cfg, dict) else default_name
    return Activation(canonical(name, where, f"{field}.{name_key}"),
                      need_number(cfg, alpha_key, 0.01, where, f"{field}.{alpha_key}"))
