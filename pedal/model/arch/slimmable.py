"""Slimmable: one model in several sizes (NAM's SlimmableContainer and slimmable WaveNets), the
size chosen while it plays.

Config: {"submodels": [{"max_value", "architecture", "config"}, ...]} with max_value
increasing and the last at least 1; tensors of submodel i carry the prefix "s{i}.". The one
knob, `size` (0..1), plays the first submodel whose max_value exceeds it (the last from 1
on), as NAM's SetSlimmableSize does.
"""
from __future__ import annotations

import dataclasses
import math

from . import Architecture, Spec, get, register
from .fields import ModelError, need_list, need_object


@dataclasses.dataclass(frozen=True)
class Submodel:
    max_value: float
    architecture: str
    spec: Spec


@dataclasses.dataclass(frozen=True)
class SlimmableSpec(Spec):
    submodels: tuple[Submodel, ...]
    knob_inputs: int = 1            # size

    def index(self, size: float) -> int:
        """The submodel `size` plays."""
        for i, sub in enumerate(self.submodels):
            if size < sub.max_value:
                return i
        return len(self.submodels) - 1

    def size_for(self, index: int) -> float:
        """A size value that plays submodel `index`: 1 for the last, else the middle of its
        range (well inside it, also as the kernels' float32)."""
        if index == len(self.submodels) - 1:
            return 1.0
        low = self.submodels[index - 1].max_value if index else 0.0
        return (max(low, 0.0) + self.submodels[index].max_value) / 2

    @property
    def macs_per_sample(self) -> int:
        return self.submodels[-1].spec.macs_per_sample

    def describe(self) -> str:
        return f"slimmable, {len(self.submodels)} sizes (the `size` knob picks one)"

    def size_lines(self) -> list[str]:
        """One line per submodel: the sizes that play it, what it is and its cost."""
        lines, low = [], 0.0
        for sub in self.submodels:
            top = min(sub.max_value, 1.0)
            span = f"{low:g} .. 1" if sub is self.submodels[-1] else f"{low:g} .. <{top:g}"
            lines.append(f"{span}: {sub.spec.describe()}; {sub.spec.macs_per_sample} "
                         f"multiply-adds per sample")
            low = top
        return lines


@register
class Slimmable(Architecture):
    name = "Slimmable"

    def parse(self, config, where) -> SlimmableSpec:
        subs, last = [], -math.inf
        for i, entry in enumerate(need_list(config, "submodels", where, "config.submodels",
                                            hi=16)):
            f = f"config.submodels[{i}]"
            need_object(entry, where, f)
            top = entry.get("max_value")
            if isinstance(top, bool) or not isinstance(top, (int, float)) \
                    or not math.isfinite(top) or top <= last:
                raise ModelError(where, f"{f}.max_value: {top!r}; expected numbers that "
                                        f"increase from one submodel to the next")
            last = top
            arch = entry.get("architecture")
            if arch == self.name:
                raise ModelError(where, f"{f}.architecture: a container inside a container")
            spec = get(arch, where).parse(entry.get("config"), where)
            if spec.knob_inputs:
                raise ModelError(where, f"{f}: a submodel with knobs")
            subs.append(Submodel(float(top), arch, spec))
        if last < 1.0:
            raise ModelError(where, f"config.submodels[{len(subs) - 1}].max_value: {last}; "
                                    f"the last submodel must reach 1")
        return SlimmableSpec(tuple(subs))

    def tensor_shapes(self, spec: SlimmableSpec, tensors) -> dict:
        shapes = {}
        for i, sub in enumerate(spec.submodels):
            p = f"s{i}."
            own = {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}
            shapes.update({p + k: v for k, v in
                           get(sub.architecture).tensor_shapes(sub.spec, own).items()})
        return shapes

    def build(self, spec, tensors):
        from ...kernels.containers import Slimmable as Kernel
        subs = []
        for i, sub in enumerate(spec.submodels):
            p = f"s{i}."
            own = {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}
            subs.append(get(sub.architecture).build(sub.spec, own))
        return Kernel(spec, subs)
