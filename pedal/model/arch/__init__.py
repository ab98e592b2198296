"""The registry of architectures: the one place that maps a model's architecture name to the
code that checks its config and weights and builds its streaming processor.

An architecture's check() reads the model's config once into a frozen spec (a dataclass
with the receptive field, the cost and the model card's description); build() makes the
kernel from that spec and the tensors. Adding an architecture touches its own module and the
import list at the bottom of this file.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ...errors import ModelError
from .fields import need_tensors

if TYPE_CHECKING:
    from ...processor import Processor
    from ..file import Model


class Spec:
    """What every architecture's frozen spec offers (the subclasses are dataclasses)."""
    knob_inputs: int = 0

    @property
    def macs_per_sample(self) -> int:
        """Multiply-adds per output sample: the cost figure for bench and model cards."""
        raise NotImplementedError

    @property
    def prewarm_samples(self) -> int:
        """Silence fed after reset so the state matches training's zero-padded start."""
        return 0

    def describe(self) -> str:
        """One line for the model card."""
        raise NotImplementedError


class Architecture:
    """What the pedal needs of an architecture. Subclasses set `name`."""
    name: ClassVar[str] = ""

    def parse(self, config: dict, where: str) -> Spec:
        """The config as a frozen spec; ModelError naming the field if it is not playable."""
        raise NotImplementedError

    def tensor_shapes(self, spec: Spec, tensors: dict) -> dict:
        """name -> shape of every tensor the spec needs (`tensors` for optional ones)."""
        raise NotImplementedError

    def check(self, config: dict, tensors: dict, where: str) -> Spec:
        """parse(), and the tensors checked against the spec: present, shaped, finite."""
        spec = self.parse(config, where)
        need_tensors(tensors, self.tensor_shapes(spec, tensors), where)
        return spec

    def build(self, spec: Spec, tensors: dict) -> Processor:
        """A fresh processor (reset() still to be called) playing spec with tensors."""
        raise NotImplementedError


_REGISTRY: dict[str, Architecture] = {}


def register(arch_class: type[Architecture]) -> type[Architecture]:
    if arch_class.name in _REGISTRY:
        raise ValueError(f"architecture {arch_class.name!r} is registered twice")
    _REGISTRY[arch_class.name] = arch_class()
    return arch_class


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str, where: str = "model") -> Architecture:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ModelError(where, f"architecture: {name!r} is not one this pedal plays "
                                f"(known: {', '.join(names())})") from None


def check_model(model: Model, where: str = "model") -> Spec:
    """The model's spec, its config checked against its tensors and its knobs."""
    spec = get(model.architecture, where).check(model.config, model.tensors, where)
    if spec.knob_inputs != len(model.knobs):
        raise ModelError(where, f"knobs: the model takes {spec.knob_inputs} knob inputs but "
                                f"{len(model.knobs)} knobs are described")
    return spec


def build(model: Model) -> Processor:
    """The model's processor with its knobs at their defaults; reset() prepares it."""
    proc = get(model.architecture).build(model.spec, model.tensors)
    for i, knob in enumerate(model.knobs):
        proc.set_knob(i, knob.default)
    return proc


from . import cnn, linear, recurrent, slimmable, wavenet  # noqa: E402,F401  (registers them)
