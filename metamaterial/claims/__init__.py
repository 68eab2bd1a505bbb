"""Reproductions of the published claims (Dillavou et al. PNAS 2024; Wycoff et al. J. Chem. Phys. 2022).

Each claim is a function ``run(ctx) -> ClaimResult`` in its own module; ``CLAIMS`` lists them explicitly and
``report.write_report`` turns results into ``REPORT.md``.
"""
