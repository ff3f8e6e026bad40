#!/usr/bin/env bash
# Install what `make test`, `make bench` and `make demo` need on a Debian/Ubuntu machine.
#
#   scripts/ensure-tools.sh               uv, the project venv, redis-server, PostgreSQL, Chromium,
#                                         poppler-utils, the QuickFIX example counterparties
#   scripts/ensure-tools.sh --no-servers  uv and the project venv only (enough for the demo)
#   scripts/ensure-tools.sh --fix         also the `fix` extra (quickfix: compiled from source
#                                         once, ~9 minutes, then reused from uv's cache)
#
# Idempotent: when everything is present it only runs `uv sync --frozen` (well under a
# second). Missing system packages are installed with apt-get when running as root or with
# passwordless sudo; otherwise it prints the command to run and exits 1.
# Network use is limited to PyPI (uv and the locked dependencies) and the Debian archive.
set -euo pipefail

export UV_PYTHON_DOWNLOADS=never
export DEBIAN_FRONTEND=noninteractive
export PATH="${HOME:-/root}/.local/bin:${PATH}"

servers=1
fix=0
for arg in "$@"; do
    case "$arg" in
        --no-servers) servers=0 ;;
        --fix) fix=1 ;;
        -h | --help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "ensure-tools: unknown argument: $arg (use --no-servers, --fix or --help)" >&2
            exit 2
            ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "ensure-tools: $*" >&2; }

# How to run apt-get: as root directly, or through passwordless sudo; empty = not possible.
apt_prefix=""
can_apt=0
if [ "$(id -u)" -eq 0 ]; then
    can_apt=1
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    apt_prefix="sudo -n"
    can_apt=1
fi

apt_updated=0
apt_install() {
    # apt_install PKG...: install Debian packages, or tell the user how to, and exit 1.
    if [ "$can_apt" -ne 1 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure-tools: missing $*; run: sudo apt-get install -y $*" >&2
        exit 1
    fi
    log "installing $* with apt-get"
    if [ "$apt_updated" -eq 0 ]; then
        $apt_prefix apt-get update -qq
        apt_updated=1
    fi
    $apt_prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- uv -------------------------------------------------------------------------------
if ! command -v uv >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null 2>&1; then
        apt_install python3 python3-pip
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    log "installing uv from PyPI with pip"
    if [ "$(id -u)" -eq 0 ]; then
        # Root: a normal install puts uv in /usr/local/bin. Debian's system Python refuses
        # (PEP 668) unless told; uv is a standalone binary, so that is harmless.
        python3 -m pip install -q uv 2>/dev/null ||
            python3 -m pip install -q --break-system-packages uv
    else
        python3 -m pip install -q --user uv 2>/dev/null ||
            python3 -m pip install -q --user --break-system-packages uv
    fi
    hash -r
    if ! command -v uv >/dev/null 2>&1; then
        echo "ensure-tools: uv was installed but is not on PATH; add $(python3 -m site --user-base)/bin to PATH" >&2
        exit 1
    fi
fi

# --- the project environment -------------------------------------------------------------
# `uv sync` is exact: without --extra fix it would uninstall quickfix, and the next
# `make test` would reinstall it. A venv that has it keeps it (uv's cache holds the wheel).
sync_args=(--frozen --quiet)
if [ "$fix" -eq 1 ] || compgen -G '.venv/lib/python3*/site-packages/quickfix.py' >/dev/null; then
    sync_args+=(--extra fix)
fi
if [ "$fix" -eq 1 ] && ! compgen -G '.venv/lib/python3*/site-packages/quickfix.py' >/dev/null; then
    # The build needs a C++ compiler; uv keeps the wheel it builds in its cache
    # (UV_CACHE_DIR, default ~/.cache/uv), so only the first sync on a machine compiles.
    if ! command -v g++ >/dev/null 2>&1; then
        apt_install g++
    fi
    log "installing the fix extra: quickfix compiles from source once (about 9 minutes)"
fi
uv sync "${sync_args[@]}"

if [ "$servers" -eq 0 ]; then
    exit 0
fi

# --- redis-server and PostgreSQL (used by the throwaway test servers, tests/servers.py) ---
missing=()
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    missing+=(redis-server)
fi

pg_bin_dir() {
    # Highest-version /usr/lib/postgresql/*/bin holding initdb and pg_ctl, else pg_ctl on PATH.
    local dir
    dir=$(
        for d in /usr/lib/postgresql/*/bin; do
            if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
                v=${d#/usr/lib/postgresql/}
                echo "${v%/bin} $d"
            fi
        done | sort -V -k1,1 | tail -n 1 | cut -d' ' -f2-
    )
    if [ -z "$dir" ] && command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dir=$(dirname "$(command -v pg_ctl)")
    fi
    echo "$dir"
}
if [ -z "$(pg_bin_dir)" ]; then
    missing+=(postgresql)
fi
# The dashboard's browser test drives Debian's Chromium through Playwright (never
# `playwright install`, which downloads its own browser from the internet).
if [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium)
fi
# pdftoppm and pdftotext: the tests render the statements' PDFs and read their text.
if ! command -v pdftoppm >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1; then
    missing+=(poppler-utils)
fi

# The QuickFIX C++ engine's example counterparties (executor, ordermatch), which the FIX
# interop tests run on loopback (tests/fix/counterparties.py): Debian ships them prebuilt in
# libquickfix-doc, linked to libquickfix17; `cc` builds the tests' bind() shim, `ss` checks
# where they listen.
quickfix_examples=/usr/share/doc/libquickfix-doc/examples
if [ ! -f "$quickfix_examples/executor/C++/.libs/executor.gz" ] ||
    [ ! -f "$quickfix_examples/ordermatch/.libs/ordermatch.gz" ]; then
    missing+=(libquickfix-doc)
fi
# Read whole, not piped into `grep -q` (under pipefail an early exit reads as a failure).
ld_cache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
if [[ "$ld_cache" != *libquickfix.so.17* ]]; then
    missing+=(libquickfix17)
fi
if ! command -v cc >/dev/null 2>&1; then
    missing+=(gcc libc6-dev)
fi
if ! command -v ss >/dev/null 2>&1; then
    missing+=(iproute2)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
    if [ ! -f "$quickfix_examples/executor/C++/.libs/executor.gz" ]; then
        # Slim images tell dpkg to skip /usr/share/doc (path-exclude in /etc/dpkg/dpkg.cfg.d).
        echo "ensure-tools: libquickfix-doc is installed but $quickfix_examples is empty;" \
            "remove the path-exclude for /usr/share/doc in /etc/dpkg/dpkg.cfg.d and reinstall it" >&2
        exit 1
    fi
    if [ -z "$(pg_bin_dir)" ] || ! command -v redis-server >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
        echo "ensure-tools: ${missing[*]} installed but initdb/pg_ctl, redis-server or /usr/bin/chromium still not found" >&2
        exit 1
    fi
fi

# As root the throwaway cluster runs as the `postgres` user (PostgreSQL refuses root).
if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
    echo "ensure-tools: running as root but there is no 'postgres' user; run: apt-get install -y postgresql" >&2
    exit 1
fi
