"""How a quantity reads in printed text: its value with the SI prefix that fits (3.36 us, 1.09 nJ, 8.8 GB).

A report helper beside ``runfiles`` (how files read): the CLI's summaries and the claims' reports print through it,
so one value reads the same in both. Files keep plain SI numbers; only text for people goes through here.
"""

from __future__ import annotations

import math

#: (power of ten, prefix) from femto to peta; ``u`` stands for micro
PREFIXES = ((-15, "f"), (-12, "p"), (-9, "n"), (-6, "u"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G"),
            (12, "T"), (15, "P"))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """``value`` (in ``unit``) with ``digits`` significant digits and the prefix that puts it in [1, 1000): 3.36e-6 s
    reads ``3.36 us``. The value is rounded before the prefix is chosen (999.96e-12 J reads ``1 nJ``, not
    ``1e+03 pJ``); beyond femto or peta the mantissa leaves that range. ``None`` or a non-finite value reads ``n/a``,
    zero ``0 <unit>``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    rounded = float(f"{value:.{digits}g}")
    if rounded == 0:
        return f"0 {unit}"
    power = min(max(3 * math.floor(math.log10(abs(rounded)) / 3), PREFIXES[0][0]), PREFIXES[-1][0])
    prefix = dict(PREFIXES)[power]
    return f"{rounded / 10.0**power:.{digits}g} {prefix}{unit}"


def listed(items, limit: int) -> str:
    """``0, 3, 5 and 12 more``: the first ``limit`` of ``items`` (anything with a ``str``), then a count of the
    rest, the one way a long list is cut short in printed text."""
    items = [str(i) for i in items]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
