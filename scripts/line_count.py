"""The package's size at git revisions: all lines and code lines (no blank, comment or docstring lines) of
``metamaterial/``, and what given commits added or removed.

    python scripts/line_count.py                          # the working tree
    python scripts/line_count.py --at 31c63b2 --at HEAD   # revisions side by side
    python scripts/line_count.py --commits f62e921 7f54798 ...   # each commit's change, and their sum

A commit's change is its tree's count minus its first parent's, so a list of commits gives what those commits
(say, one issue's) did to the package, whatever other commits came between them.
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import tarfile
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def count(text: str) -> tuple[int, int]:
    """(all lines, code lines) of one Python source."""
    doc: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                doc.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    code = {line for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type not in skip
            for line in range(tok.start[0], tok.end[0] + 1) if line not in doc}
    return len(text.splitlines()), len(code)


def sources(rev: str | None) -> dict[str, str]:
    """The package's ``.py`` files at ``rev`` (None: the working tree), by path."""
    if rev is None:
        return {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "metamaterial").rglob("*.py"))}
    tar = subprocess.run(["git", "archive", rev, "metamaterial"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return {m.name: t.extractfile(m).read().decode() for m in t.getmembers() if m.name.endswith(".py")}


def size(rev: str | None) -> tuple[int, int]:
    counts = [count(text) for text in sources(rev).values()]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--at", action="append", default=[], help="a revision to count (repeatable)")
    ap.add_argument("--commits", nargs="+", default=[], help="commits whose changes to sum")
    args = ap.parse_args()
    for rev in args.at or ([] if args.commits else [None]):
        lines, code = size(rev)
        print(f"{rev or 'working tree':>14}: {lines:6d} lines, {code:6d} code lines")
    total = [0, 0]
    for rev in args.commits:
        (a, b), (c, d) = size(f"{rev}^"), size(rev)
        total = [total[0] + c - a, total[1] + d - b]
        print(f"{rev:>14}: {c - a:+6d} lines, {d - b:+6d} code lines")
    if args.commits:
        print(f"{'sum':>14}: {total[0]:+6d} lines, {total[1]:+6d} code lines")


if __name__ == "__main__":
    main()
