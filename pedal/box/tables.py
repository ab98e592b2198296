"""The checks the config's control tables ([gpio], [midi]) share: each problem is one line
naming the table, the entry and the key, e.g.

    config [midi].cc[2]: taper = 's': expected one of linear, log, antilog
"""
from __future__ import annotations

import math

from ..errors import PedalError


class TableChecks:
    """Checks for the table `name`. A key's kind is float, int, bool, str or list, or a
    function (where, key, value) -> value that raises bad() itself."""

    def __init__(self, name: str):
        self.name = name

    def bad(self, where: str, problem: str) -> PedalError:
        return PedalError(f"config [{self.name}]{where}", problem)

    def value(self, where: str, key: str, kind, value):
        if not isinstance(kind, type):                  # a check of its own
            return kind(where, key, value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value):
                raise self.bad(where, f"{key} = {value!r}: expected a number")
            return float(value)
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.bad(where, f"{key} = {value!r}: expected a whole number")
            return value
        if not isinstance(value, kind):
            raise self.bad(where, f"{key} = {value!r}: expected {kind.__name__}")
        return value

    def table(self, where: str, table, keys: dict) -> dict:
        """A checked copy of `table` (a dict of known keys with values of their kinds)."""
        if not isinstance(table, dict):
            raise self.bad(where, f"expected a table, got {table!r}")
        out = {}
        for key, value in table.items():
            if key not in keys:
                raise self.bad(where, f"unknown key {key!r} (known: {', '.join(keys)})")
            out[key] = self.value(where, key, keys[key], value)
        return out

    def entries(self, section: dict, name: str, keys: dict,
                required: tuple[str, ...]) -> list[tuple[str, dict]]:
        """The `[[table.name]]` entries popped from `section`: (where, checked copy)."""
        out = []
        for i, entry in enumerate(section.pop(name, [])):
            where = f".{name}[{i + 1}]"
            entry = self.table(where, entry, keys)
            for key in required:
                if key not in entry:
                    raise self.bad(where, f"missing {key!r}")
            out.append((where, entry))
        return out

    def one_of(self, where: str, key: str, value, choices) -> None:
        if value not in choices:
            raise self.bad(where, f"{key} = {value!r}: expected one of {', '.join(choices)}")

    def within(self, where: str, key: str, value, lo, hi) -> None:
        if not lo <= value <= hi:
            raise self.bad(where, f"{key} = {value}: expected {lo}-{hi}")
