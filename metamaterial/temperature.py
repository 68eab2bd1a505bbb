"""Circuit temperature as ngspice reads it: the nominal temperature, the range a run may ask for, kT/q, and the
SPICE fits (silicon's band gap, the surface potential's shift) of the level-1 temperature equations.

Pure arithmetic, importing nothing of the package; the bottom of the flow: the current laws (``mos``) take kT/q
from here, a transistor moved to another temperature (``devices.NmosParams.at_temperature``) the fits, and the
config, circuit and netlist the nominal temperature and the range.
"""

from __future__ import annotations

import math

#: ngspice's nominal temperature (C): circuits run at it unless told otherwise, and model cards give their values at
#: it (tnom, which our cards leave at 27)
NOMINAL_CELSIUS = 27.0
#: the circuit temperatures (C) a run may ask for: the military range -55..125 C with margin; the level-1
#: temperature equations (``NmosParams.at_temperature``) are SPICE's empirical fits, not meant for beyond it
TEMPERATURE_RANGE = (-55.0, 150.0)
BOLTZMANN, CHARGE, KELVIN = 1.38064852e-23, 1.6021766208e-19, 273.15  # ngspice 39's constants (CODATA 2014)


def thermal_voltage(celsius: float) -> float:
    """kT/q (V) at ``celsius``, as ngspice computes it."""
    return BOLTZMANN / CHARGE * (celsius + KELVIN)


THERMAL_VOLTAGE = thermal_voltage(NOMINAL_CELSIUS)


def band_gap(kelvin: float) -> float:
    """Silicon's band gap (eV) at ``kelvin``: SPICE's fit."""
    return 1.16 - 7.02e-4 * kelvin * kelvin / (kelvin + 1108.0)


def phi_shift(kelvin: float) -> float:
    """-2 V_t [1.5 ln(T/T_0) + q a(T)] (V) of ``NmosParams.at_temperature``: the part of phi(T) (and, by the same
    form, of a junction potential) that is not proportional to T."""
    kt = BOLTZMANN * kelvin
    ref = NOMINAL_CELSIUS + KELVIN
    arg = -band_gap(kelvin) / (kt + kt) + 1.1150877 / (BOLTZMANN * (ref + ref))
    return -2.0 * thermal_voltage(kelvin - KELVIN) * (1.5 * math.log(kelvin / ref) + CHARGE * arg)

