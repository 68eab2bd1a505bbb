"""``python -m metamaterial`` and the ``metamaterial`` command (``run``): the command line, loaded so that a
Ctrl-C while the package loads (about half a second) is answered like one during a run: one line, exit 130.

While the imports run, a Ctrl-C is only noted and answered once they are done: an import cut short can fail in
ways no handler sees whole (pydantic's compiled core panics, printing its own lines, when its import of ``datetime``
is interrupted). The noting handler is taken by this module's first statements, before anything else of ours runs:
importing this module is starting the command. A Ctrl-C that lands before them (in the interpreter's start, while
``metamaterial/__init__.py`` runs, which loads nothing, or in this module's lines up to the handler: Python checks
for a pending signal at a module's entry and in its calls) is Python's own KeyboardInterrupt: no code can take a
signal before its own first instruction. Those are microseconds; tests/test_cli.py sends Ctrl-Cs across them.
"""

import _signal  # the interpreter's built-in signal module, loaded before any code of ours: this import runs none

_noted: list[int] = []  # SIGINTs taken while the command loads


def _note(signum, frame) -> None:
    _noted.append(signum)


# from here a Ctrl-C is noted, not raised; not in a process that multiprocessing spawns from the command (Dask's
# workers), which runs this module again as __mp_main__ and is not the command
_default = _signal.signal(_signal.SIGINT, _note) if __name__ != "__mp_main__" else None

import sys  # noqa: E402  (the handler first)


def run() -> int:
    before = _signal.signal(_signal.SIGINT, _note)  # already ours from the import; again for a second run
    previous = _default if before is _note else before
    try:
        from .cli import main
    finally:
        _signal.signal(_signal.SIGINT, previous)
    if _noted:
        _noted.clear()
        print("metamaterial: interrupted while starting; nothing was run", file=sys.stderr)
        return 130
    from . import interrupts

    code = 1  # main raised: no code of its own
    try:
        code = main()
    finally:
        interrupts.finish(code)
    return code


if __name__ == "__main__":
    sys.exit(run())
