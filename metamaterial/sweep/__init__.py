"""Parameter sweeps: a YAML spec of axes over config key paths (``spec``), run on Dask (``execute``, the client;
``worker``, what its workers run), results stored per point and resumable (``store``), tabled and plotted
(``report``)."""

from .spec import Point, SweepSpec, config_key, expand_sweep, load_sweep

__all__ = ["Point", "SweepSpec", "config_key", "expand_sweep", "load_sweep"]
