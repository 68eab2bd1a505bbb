"""Learning: update rules (pure math), edge state (gate capacitors, resistors, taps), schedules, trainer."""
