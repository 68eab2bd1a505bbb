"""numba's cache of the compiled kernels is dropped when any module holding compiled code changes
(``kernelcache``): numba itself re-checks only the time stamp of a function's own module, so a training loop
that inlines another module's functions would otherwise load its old code after that module changed."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from conftest import ROOT
from metamaterial import cli, kernelcache
from metamaterial.kernelcache import SOURCES, STAMP, drop_stale


def _package(root):
    for source in SOURCES:
        (root / source).parent.mkdir(parents=True, exist_ok=True)
        (root / source).write_text(f"# {source}\n")
    return root


def _cache(root):
    """One cached function (index and data) per module, as numba names them."""
    files = []
    for source in SOURCES:
        path = root / source
        (path.parent / "__pycache__").mkdir(exist_ok=True)
        for suffix in ("nbi", "1.nbc"):
            f = path.parent / "__pycache__" / f"{path.stem}.kernel-12.py311.{suffix}"
            f.write_text("code")
            files.append(f)
    return files


def test_the_cache_is_dropped_when_any_compiled_module_changes_and_kept_otherwise(tmp_path):
    root = _package(tmp_path)
    assert drop_stale(root) and (root / STAMP).exists()  # no record yet: nothing cached can be trusted
    kept = _cache(root)
    other = root / "__pycache__" / "plots.cpython-311.pyc"
    other.write_text("bytecode")
    assert not drop_stale(root) and all(f.exists() for f in kept)  # same sources: numba's cache stays
    (root / "sim" / "native_kernels.py").write_text("# a callee of the training loop changed\n")
    assert drop_stale(root)
    assert not any(f.exists() for f in kept)  # the loop's cache too, though its own module did not change
    assert other.exists()  # nothing but numba's files
    assert not drop_stale(root)


def test_the_package_records_the_hash_of_its_compiled_modules():
    kernelcache.refresh()
    assert not drop_stale(kernelcache.PACKAGE)  # refresh has recorded today's sources


def _kernel(folder, signatures=()):
    """What ``announce`` reads of a numba function: its Python function (defined in a file of ``folder``) and the
    signatures compiled or loaded in this process."""
    source = folder / "kernels.py"
    source.write_text("def solve(x):\n    return x\n")
    scope: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), scope)  # noqa: S102 (a function with a file)
    return SimpleNamespace(py_func=scope["solve"], signatures=list(signatures))


def test_a_kernel_is_announced_once_and_only_when_nothing_holds_its_code(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=kernelcache.LOG.name)
    kernelcache.announce(_kernel(tmp_path), "the solver")
    kernelcache.announce(_kernel(tmp_path), "the solver")  # another function object, so announced again...
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["compiling the solver"] * 2
    kernel = _kernel(tmp_path)
    kernelcache.announce(kernel, "the solver")
    kernelcache.announce(kernel, "the solver")  # ...but the same one once
    assert len(caplog.records) == 3
    (tmp_path / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "__pycache__" / "kernels.solve-1.py311.nbi").write_text("index")
    kernelcache.announce(_kernel(tmp_path), "the solver")  # numba's cache holds it
    (tmp_path / "loaded").mkdir()
    kernelcache.announce(_kernel(tmp_path / "loaded", ["(float64,)"]), "the solver")  # compiled in this process
    assert len(caplog.records) == 3


def test_the_command_line_shows_the_announcement_unless_progress_is_off(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["solve", "configs/xor.yaml", "--backend", "native"]) == 0
    capsys.readouterr()
    kernelcache.announce(_kernel(tmp_path), "the solver")
    assert capsys.readouterr().err.startswith("metamaterial: compiling the solver (numba: once after an install")
    assert cli.main(["train", "configs/xor.yaml", "--backend", "native", "--no-progress", "--no-plots",
                     "--set", "learning.epochs=1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    kernelcache.announce(_kernel(tmp_path), "the solver")
    assert capsys.readouterr().err == ""


def test_setup_compiles_the_solvers_batch_and_sparse_paths():
    """``make setup`` runs ``compile_kernels`` after a short training, so that no first run waits for numba on the
    paths that training does not take."""
    from metamaterial.sim import native_kernels as nk
    from metamaterial.sim.native import compile_kernels

    compile_kernels()
    assert nk.newton_dense_parallel.signatures and nk.assemble.signatures
    assert "compile_kernels()" in (ROOT / "scripts" / "setup.sh").read_text()


def test_the_summary_says_when_its_time_includes_the_kernels_compile(tmp_path, capsys, monkeypatch):
    """In a fresh clone without ``make setup`` the first run printed "14040 solves in 14.0 s", a compile's time
    given as the solver's (0.2 s on the next run): a process that compiled a kernel says so in that line."""
    monkeypatch.chdir(ROOT)
    train = ["train", "configs/xor.yaml", "--backend", "native", "--no-progress", "--no-plots",
             "--set", "learning.epochs=1", "--out"]
    monkeypatch.setattr(kernelcache, "compiled", [])
    assert cli.main([*train, str(tmp_path / "warm")]) == 0
    assert "solves in" in (out := capsys.readouterr().out) and "compile" not in out
    monkeypatch.setattr(kernelcache, "compiled", ["the native solver"])
    assert cli.main([*train, str(tmp_path / "cold")]) == 0
    out = capsys.readouterr().out
    assert "(this run also compiled numba's kernels, once: the time may include it); learning time" in out
