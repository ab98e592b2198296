"""Activation names as the model formats spell them, mapped to the kernels' codes.

The codes are the ACT_* constants of kernels/_dsp.pxd; keep the two tables in step.
"""
from ..errors import ModelError

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


def canonical(name, where, field):
    """The canonical spelling of an activation name, or a ModelError naming the field."""
    if isinstance(name, str) and name.lower() in _ALIASES:
        return _ALIASES[name.lower()]
    raise ModelError(where, f"{field}: activation {name!r} is not supported "
                            f"(supported: {', '.join(ACTIVATIONS)})")


def code(name):
    return ACTIVATIONS[name][0]


def default_alpha(name):
    return ACTIVATIONS[name][1]
