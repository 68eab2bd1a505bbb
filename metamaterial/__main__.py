"""``python -m metamaterial`` and the ``metamaterial`` command (``run``): the command line, loaded so that a
Ctrl-C while the package loads (about half a second) is answered like one during a run: one line, exit 130.

While the imports run, a Ctrl-C is only noted and answered once they are done: an import cut short can fail in
ways no handler sees whole (pydantic's compiled core panics, printing its own lines, when its import of ``datetime``
is interrupted)."""

import _signal  # the interpreter's built-in signal module: no Python code to load (``signal`` wraps it in enums)
import sys


def run() -> int:
    noted: list[int] = []
    previous = _signal.signal(_signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        from .cli import main
    finally:
        _signal.signal(_signal.SIGINT, previous)
    if noted:
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
