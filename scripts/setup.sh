#!/usr/bin/env bash
# Install what metamaterial needs: ngspice >= 42 and its shared library (Debian packages; KLU arrived in
# ngspice 42) and the Python environment in .venv. Skips whatever is already there. Without root, says
# exactly what to install and stops. An older ngspice already installed still works (Sparse solver).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MIN_NGSPICE=42

# No pipes in these two checks: under pipefail, a reader that stops early (grep -q, head) can kill the writer
# with SIGPIPE on a loaded machine and turn a found ngspice into a missing one.
ngspice_major() {
    # "ngspice-46 : Circuit level simulation program" -> 46; nothing when ngspice is absent
    command -v ngspice >/dev/null 2>&1 || return 0
    local out
    out=$(ngspice --version 2>/dev/null) || true
    if [[ $out =~ ngspice-([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; fi
}
have_libngspice() {
    local cache
    cache=$(ldconfig -p 2>/dev/null) || return 1
    [[ $cache =~ libngspice\.so([^[:alnum:]_]|$) ]]
}
codename() { . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}"; }

# Whether apt's lists hold the suite $1. `apt-get update` exits 0 when a fetch fails (it warns and keeps the old
# lists), so a suite whose index did not arrive shows only here.
apt_knows_suite() {
    local policy
    policy=$(apt-cache policy 2>/dev/null) || return 1
    [[ $policy == *"$1"* ]]
}

install_ngspice() {
    local release suite="" try
    release=$(codename)
    if [ "$release" = "bookworm" ]; then
        # bookworm's own ngspice is 39 (no KLU); its backports suite carries 46.
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            echo "setup: adding Debian's bookworm-backports suite"
            echo "deb http://deb.debian.org/debian bookworm-backports main" \
                > /etc/apt/sources.list.d/metamaterial-bookworm-backports.list
        fi
        suite="-t bookworm-backports"
    fi
    apt-get update -qq
    if [ -n "$suite" ]; then
        for try in 2 3; do
            apt_knows_suite bookworm-backports && break
            echo "setup: apt's lists lack bookworm-backports (a fetch failed); updating again ($try of 3)" >&2
            sleep 5
            apt-get update -qq
        done
        if ! apt_knows_suite bookworm-backports; then
            echo "setup: apt could not fetch Debian's bookworm-backports index (see apt's warnings above);" >&2
            echo "  check the network or the mirror, then rerun. Or install the stock ngspice 39 (slower on large" >&2
            echo "  networks: no KLU):  apt-get install ngspice libngspice0-dev" >&2
            exit 1
        fi
    fi
    echo "setup: installing ngspice and libngspice0-dev (Debian packages${suite:+, $suite})"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $suite ngspice libngspice0-dev >/dev/null
}

major=$(ngspice_major)
if [ -z "$major" ] || ! have_libngspice || [ "$major" -lt "$MIN_NGSPICE" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        install_ngspice
        major=$(ngspice_major)
    elif [ -n "$major" ] && have_libngspice; then
        echo "setup: ngspice $major found; ngspice >= $MIN_NGSPICE solves large networks much faster (KLU)." >&2
        echo "  On Debian bookworm (as root):" >&2
        echo "    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list" >&2
        echo "    apt-get update && apt-get install -t bookworm-backports ngspice libngspice0-dev" >&2
    else
        echo "setup: ngspice is missing. Install it (as root), then rerun:" >&2
        echo "    Debian bookworm:  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list" >&2
        echo "                      apt-get update && apt-get install -t bookworm-backports ngspice libngspice0-dev" >&2
        echo "    Debian trixie or later, Ubuntu:  apt-get install ngspice libngspice0-dev" >&2
        echo "  (the 'ngspice' program and the shared library libngspice.so are both needed)" >&2
        exit 1
    fi
fi
if [ -z "$major" ] || ! have_libngspice; then
    echo "setup: ngspice or libngspice.so still missing after installing; see the messages above" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.metamaterial-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test,parquet]'
    touch "$stamp"
fi

# numba compiles the training and native-solver kernels on their first use (20 s to over a minute, depending on the
# machine) and caches them next to the sources: compile them here, once per change of the package's sources, so
# that no first run waits for it.
compiled=.venv/.metamaterial-compiled
if [ ! -f "$compiled" ] || [ -n "$(find metamaterial -name '*.py' -newer "$compiled" | head -n 1)" ]; then
    echo "setup: compiling the training kernels (numba; once per change of the sources)"
    warm=$(mktemp -d)
    # two epochs say the gates barely moved: what they print is shown only if one fails
    for backend in native ngspice; do  # ngspice's training takes the step's own kernels and the source callback
        if ! .venv/bin/python -m metamaterial train configs/xor.yaml --backend $backend --set learning.epochs=2 \
            --no-plots --no-progress --out "$warm/$backend" >"$warm/$backend.log" 2>&1; then
            cat "$warm/$backend.log" >&2
            rm -rf "$warm"
            echo "setup: compiling the kernels failed (above); the next make setup tries again" >&2
            exit 1
        fi
    done
    .venv/bin/python -c "from metamaterial.sim.native import compile_kernels; compile_kernels()"
    rm -rf "$warm"
    touch "$compiled"
fi
