#!/usr/bin/env bash
# Install what metamaterial needs: ngspice and its shared library (Debian packages) and the Python
# environment in .venv. Skips whatever is already there. Without root, says what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

have_ngspice() {
    command -v ngspice >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q 'libngspice\.so\b'
}

if ! have_ngspice; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ngspice and libngspice0-dev (Debian packages)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ngspice libngspice0-dev >/dev/null
    else
        echo "setup: ngspice is missing. Install it, then rerun:" >&2
        echo "    sudo apt-get install ngspice libngspice0-dev      # Debian/Ubuntu" >&2
        echo "  (the 'ngspice' program and the shared library libngspice.so are both needed)" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.metamaterial-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
fi
