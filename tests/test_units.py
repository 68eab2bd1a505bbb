"""Printed quantities (metamaterial.units): the SI prefix that puts the value in [1, 1000), chosen after rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metamaterial.units import listed, si


@pytest.mark.parametrize("value, unit, text", [
    (3.36e-6, "s", "3.36 us"),          # transient's settling maximum on XOR, once printed as 3.36e+03 ns
    (6.43e-5, "s", "64.3 us"),
    (1.09e-9, "J", "1.09 nJ"),          # once printed as 1.09e+03 pJ
    (2.99e-7, "s", "299 ns"),
    (12.3e-9, "W", "12.3 nW"),
    (5e-13, "F", "500 fF"),
    (-4.5e-3, "V", "-4.5 mV"),
    (8.8e9, "B", "8.8 GB"),
    (999.96e-12, "J", "1 nJ"),          # rounds up into the next prefix
    (1.2e18, "B", "1.2e+03 PB"),        # past the last prefix
    (0.0, "J", "0 J"),
    (None, "s", "n/a"),
    (math.nan, "s", "n/a"),
    (math.inf, "s", "n/a"),
])
def test_a_value_reads_with_the_prefix_that_fits(value, unit, text):
    assert si(value, unit) == text


def test_every_prefixed_value_reads_back_to_three_digits():
    for exponent in range(-15, 16):
        for mantissa in (1.0, 2.345, 9.994):
            value = mantissa * 10.0**exponent
            number, unit = si(value, "B").split()
            scale = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9,
                     "T": 1e12, "P": 1e15}.get(unit[:-1], 1.0)
            assert 1 <= float(number) < 1000
            assert float(number) * scale == pytest.approx(value, rel=5e-3)


def test_a_long_list_is_cut_to_its_first_items_and_a_count():
    assert listed(range(3), 5) == "0, 1, 2"
    assert listed(range(8), 5) == "0, 1, 2, 3, 4 and 3 more"
    assert listed([], 5) == ""
    assert listed(np.array([7, 9]), 1) == "7 and 1 more"  # numpy integers read as plain ones
