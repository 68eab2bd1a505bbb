"""REPORT.md's layout (paper, profiles, seeds, measured, verdict per claim) and its constants section, which is read
from the code: the values are the configs' and presets' own, and a constant without a recorded source says so."""

from __future__ import annotations

from dataclasses import replace

from metamaterial import devices
from metamaterial.claims import constants
from metamaterial.claims.base import ClaimResult
from metamaterial.claims.registry import CLAIMS
from metamaterial.claims.report import CONSTANTS_TITLE, write_report


def _rows(lines: list[str]) -> dict[tuple[str, str], list[str]]:
    """(constant, configs) -> [value, source] of the configs table."""
    start = lines.index("### Configs")
    end = lines.index("### Timing model (energy claim)")
    out = {}
    for line in lines[start + 4:end - 1]:
        name, value, where, source = (c.strip() for c in line.strip("|").split(" | "))
        for stem in where.split(", "):
            out[(name, stem)] = [value, source]
    return out


def test_the_claims_configs_are_found_in_the_claim_modules():
    stems = constants.claim_configs(list(CLAIMS.values()))
    assert {"xor", "xor_linear", "regression", "parabola", "allostery"} <= set(stems)
    assert len(stems) == len(set(stems))


def test_constants_are_the_codes_values_with_their_sources():
    rows = _rows(constants.constants_lines(list(CLAIMS.values())))
    fit = devices.PRESETS["ald1106-fit"]
    assert rows[("V_T (V)", "xor")] == [f"{fit.vto:g}", "E2 `Vt()`"]
    assert rows[("K = kp W/L (A/V^2)", "regression")][0] == f"{fit.kp * fit.w / fit.l:g}"
    assert rows[("gate bounds (V)", "xor")][0] == "[0.4, 8]"
    assert rows[("XOR labels (V)", "xor")][0] == "[0, -0.087]"
    # t_learn is resolved from the rate by the config: alpha/eta R C / gain = 30 x 1e3 x 2.2e-6 / 0.1 = 0.66 s
    value, source = rows[("t_learn per update (s)", "xor")]
    assert value == "0.66" and source.startswith("derived")
    assert rows[("capacitor C (F)", "xor")] == ["2.2e-06", "E2:116 CCHARGE (0.47 uF is commented out on the same "
                                                           "line); PNAS 2024"]


def test_a_changed_constant_loses_its_citation(monkeypatch):
    monkeypatch.setitem(devices.PRESETS, "ald1106-fit", replace(devices.PRESETS["ald1106-fit"], vto=0.7))
    rows = _rows(constants.constants_lines(list(CLAIMS.values())))
    assert rows[("V_T (V)", "xor")] == ["0.7", "ours (no source recorded)"]


def test_the_report_shows_profiles_seeds_and_the_constants(tmp_path):
    one = ClaimResult("one", "One profile", "a statement", "reproduced", "it held", lines=["- a number"],
                      profiles={"idealized": "configs/xor.yaml"}, seeds="tuned on 0-99, reported on 100-199")
    two = ClaimResult("two", "Two profiles", "a statement", "partly", "half held",
                      profiles={"idealized": "configs/xor.yaml", "hardware": "configs/xor_hardware.yaml"})
    text = write_report(tmp_path, [one, two], {}, 1.0, list(CLAIMS.values())).read_text()
    first, second = text.split("\n## ")[1:3]
    assert "**Profile.** idealized: configs/xor.yaml" in first
    assert "**Seeds.** tuned on 0-99, reported on 100-199" in first
    assert first.index("**Paper.**") < first.index("**Profile.**") < first.index("**Measured.**") \
        < first.index("**Verdict: reproduced.**")
    assert "**Profiles.**\n\n- **idealized**: configs/xor.yaml\n- **hardware**: configs/xor_hardware.yaml" in second
    assert "**Seeds.** not stated by this claim." in second
    assert f"\n## {CONSTANTS_TITLE}\n" in text and "| V_T (V) | 0.62 |" in text


def test_the_report_says_when_each_claim_finished_and_which_data_the_folder_holds(tmp_path):
    """A folder can hold claims run at different times (a claim rerun alone is kept beside the others): the header
    spans their times and each section gives its own; a data file not in the folder is named, not linked."""
    (tmp_path / "kept.json").write_text("{}")
    one = ClaimResult("one", "One", "a statement", "reproduced", "it held", lines=["- a number"],
                      data=["kept.json", "big.json"], measured={"run_s": 90.0, "finished": "2026-12-01 19:15"})
    two = ClaimResult("two", "Two", "a statement", "partly", "half held", lines=["- a number"],
                      measured={"run_s": 30.0, "finished": "2026-12-02 05:30"})
    text = write_report(tmp_path, [one, two], {}, 120.0).read_text()
    assert "2.0 min of claim runs, claims finished 2026-12-01 19:15 to 2026-12-02 05:30 (each section says when)" \
        in text
    first, second = text.split("\n## ")[1:3]
    assert "Data: [kept.json](kept.json), `big.json` (not in this folder: `metamaterial reproduce one --out DIR` " \
        "writes it)" in first
    assert "Finished 2026-12-01 19:15, in 1.5 min." in first and "Finished 2026-12-02 05:30, in 0.5 min." in second


def test_each_claim_says_which_machine_and_libraries_its_times_were_measured_on(tmp_path):
    """Times drift with the machine (docs/results.md, speed): a section names the processor, the load when the
    claim started and the libraries' versions it ran with; a result saved before this was recorded says nothing."""
    on = {"cpu": "Some CPU", "cpus": 2, "load_1min": 0.25, "python": "3.11.7", "numpy": "2.4.6", "scipy": "1.17.1",
          "numba": "0.68.1", "ngspice": None}
    one = ClaimResult("one", "One", "a statement", "reproduced", "it held", lines=["- a number"],
                      measured={"run_s": 90.0, "finished": "2026-12-01 19:15", "machine": on})
    two = ClaimResult("two", "Two", "a statement", "partly", "half held", lines=["- a number"],
                      measured={"run_s": 30.0, "finished": "2026-12-02 05:30"})
    first, second = write_report(tmp_path, [one, two], {}, 120.0).read_text().split("\n## ")[1:3]
    assert "Finished 2026-12-01 19:15, in 1.5 min, started on Some CPU, 2 CPUs, load 0.2; Python 3.11.7, numpy " \
        "2.4.6, scipy 1.17.1, numba 0.68.1." in first
    assert "Finished 2026-12-02 05:30, in 0.5 min." in second


def test_the_machine_record_names_what_this_process_runs_on():
    import importlib.metadata  # noqa: PLC0415

    from metamaterial import machine  # noqa: PLC0415
    now = machine.describe()
    assert now["numpy"] == importlib.metadata.version("numpy") and now["numba"] == importlib.metadata.version("numba")
    assert now["cpus"] >= 1 and now["cpu"]
    assert machine.summary(now).startswith(now["cpu"]) and f"numpy {now['numpy']}" in machine.summary(now)


def test_the_machine_record_names_the_ngspice_this_process_loaded(ngspice):
    """Once a solver has loaded ngspice's shared library, the record names the version that library reports."""
    from metamaterial import machine  # noqa: PLC0415
    now = machine.describe()
    assert now["ngspice"] == ngspice.ngspice_version and now["ngspice"].isdigit()
    assert f"ngspice {now['ngspice']}" in machine.summary(now)


def test_a_claim_modules_constants_are_listed_where_they_are_defined():
    rows = constants.module_table(list(CLAIMS.values()))
    where = {(c.name, c.where) for c in rows}
    assert len(where) == len(rows)  # every constant once
    # imported under another name by two claims: one row, under the module that defines it, naming both users
    (success,) = [c for c in rows if c.name == "SUCCESS_MARGIN_V"]
    assert success.where == "learning/trainer.py (used by claims/xor.py as SUCCESS_V, claims/damage.py as SUCCESS_V)"
    assert not [c for c in rows if c.name == "SUCCESS_V"]
    # one definition, its citation kept wherever it is used
    (criterion,) = [c for c in rows if c.name == "RMS_CRITERION_V"]
    assert criterion.where.startswith("retraining.py (used by ") and "E2:227" in criterion.source
    # a claim module's own constant stays under it, and a third party's number names its source
    (peer,) = [c for c in rows if c.name == "PEER"]
    assert peer.where == "claims/digits.py" and "[PYCLLN]" in peer.source
