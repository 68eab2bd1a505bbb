"""numba's cache of the compiled kernels is dropped when any module holding compiled code changes
(``kernelcache``): numba itself re-checks only the time stamp of a function's own module, so a training loop
that inlines another module's functions would otherwise load its old code after that module changed."""

from __future__ import annotations

from metamaterial import kernelcache
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
