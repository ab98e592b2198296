"""pedalboard's built-in effects as gear: a chain spec read with ast, never evaluated."""
from __future__ import annotations

import ast

import numpy as np

from pedal.errors import PedalError

from . import Gear, Knob, pedalboard_module


def builtin_effects():
    """The pedalboard classes a --pedalboard spec may name: its effects, not its containers
    or plugin loaders."""
    pb = pedalboard_module()
    skip = {"Plugin", "PluginContainer", "Pedalboard", "Chain", "Mix", "ExternalPlugin",
            "VST3Plugin", "AudioUnitPlugin"}
    return sorted(n for n in dir(pb) if not n.startswith("_") and n not in skip
                  and isinstance(getattr(pb, n), type) and issubclass(getattr(pb, n), pb.Plugin))


def split_chain(spec):
    """The effects of a chain, separated by ';' or '|' outside quotes and parentheses."""
    parts, current, depth, quote = [], [], 0, None
    for ch in spec:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in ";|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _literal(node, piece):
    """A keyword argument's value: a number (maybe negative), a string or a boolean only."""
    inner = node.operand if isinstance(node, ast.UnaryOp) and \
        isinstance(node.op, (ast.USub, ast.UAdd)) else node
    if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float, str)) and \
            (inner is node or not isinstance(inner.value, (str, bool))):
        return ast.literal_eval(node)
    raise PedalError("--pedalboard", f"{piece!r}: arguments must be numbers or strings")


def parse_effect(piece, known):
    """"Name(key=literal, ...)" or "Name" -> (Name, {key: value}), read with ast, never run."""
    try:
        node = ast.parse(piece, mode="eval").body
    except SyntaxError:
        raise PedalError("--pedalboard", f"{piece!r} is not an effect like "
                                         "Distortion(drive_db=20)") from None
    call = node if isinstance(node, ast.Call) else None
    func = call.func if call else node
    if not isinstance(func, ast.Name):
        raise PedalError("--pedalboard", f"{piece!r} is not an effect like "
                                         "Distortion(drive_db=20)")
    if func.id not in known:
        raise PedalError("--pedalboard", f"{func.id!r} is not a pedalboard effect "
                                         f"(known: {', '.join(known)})")
    if call and (call.args or any(k.arg is None for k in call.keywords)):
        raise PedalError("--pedalboard", f"{piece!r}: name the arguments (key=value)")
    return func.id, {k.arg: _literal(k.value, piece) for k in (call.keywords if call else [])}


class BuiltinGear(Gear):
    """A chain of pedalboard's own effects, rebuilt for every take (no state carried over)."""
    backend = "pedalboard"

    def __init__(self, spec):
        self.spec = spec
        known = builtin_effects()
        pieces = split_chain(spec)
        if not all(pieces):
            raise PedalError("--pedalboard", f"{spec!r}: an empty effect in the chain")
        self.effects = [parse_effect(p, known) for p in pieces]
        self.name = " -> ".join(cls for cls, _ in self.effects)
        self._knobs, self._where = self._find_knobs(self._build())

    def _build(self):
        pb = pedalboard_module()
        plugins = []
        for cls, kwargs in self.effects:
            try:
                plugins.append(getattr(pb, cls)(**kwargs))
            except (TypeError, ValueError, RuntimeError) as e:
                args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
                raise PedalError("--pedalboard", f"{cls}({args}): {e}") from None
        return plugins

    def _find_knobs(self, plugins):
        """Numeric parameters by name: `attr` when only one effect has it, else
        `Class.attr` (unique class) or `N.attr` (N counted from 1); all three always find it."""
        found = []                                          # (index, class, attr, value)
        for i, plugin in enumerate(plugins):
            for attr in dir(type(plugin)):
                prop = getattr(type(plugin), attr)
                if isinstance(prop, property) and prop.fset is not None:
                    value = getattr(plugin, attr)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        found.append((i, type(plugin).__name__, attr, float(value)))
        knobs, where = {}, {}
        for i, cls, attr, value in found:
            same_attr = sum(a == attr for _, _, a, _ in found)
            same_cls = sum(c == cls and a == attr for _, c, a, _ in found)
            names = [attr, f"{cls}.{attr}", f"{i + 1}.{attr}"]
            key = attr if same_attr == 1 else names[1] if same_cls == 1 else names[2]
            knobs[key] = Knob(None, None, value, tuple(n for n in names if n != key))
            where[key] = (i, attr)
        return knobs, where

    def describe(self):
        return {"backend": self.backend, "name": self.name, "spec": self.spec,
                "pedalboard": pedalboard_module().__version__}

    def knobs(self):
        return self._knobs

    def process(self, dry, rate, controls):
        pb = pedalboard_module()
        plugins = self._build()
        for key, value in controls.items():
            i, attr = self._where[key]
            try:
                setattr(plugins[i], attr, value)
            except (TypeError, ValueError, RuntimeError) as e:
                raise PedalError("--control", f"{key}={value:g}: {e}") from None
        try:
            wet = pb.Pedalboard(plugins)(dry, rate)
        except (TypeError, ValueError, RuntimeError) as e:
            raise PedalError("--pedalboard", f"{self.spec}: {e}") from None
        return np.ascontiguousarray(wet, np.float32).reshape(-1), 0
