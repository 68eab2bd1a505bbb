"""Solvers behind one interface (``base.AbstractSolver``): ``ngspice`` (the reference) and ``native``."""
