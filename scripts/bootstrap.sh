#!/usr/bin/env bash
# Install everything p2pdash needs on Debian or Ubuntu, idempotently and quickly when done:
# PostgreSQL with TimescaleDB (built from Debian's source package when missing), Redis,
# and the virtualenv in .venv. With --test also Chromium + chromedriver and the test extra.
#
# Usage: scripts/bootstrap.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: run as root or install sudo"
    SUDO=(sudo)
fi
export SUDO_CMD="${SUDO[*]:-}"

check_os() {
    [[ -r /etc/os-release ]] || die "no /etc/os-release: this script knows Debian and Ubuntu only"
    # shellcheck disable=SC1091
    . /etc/os-release
    case " ${ID:-} ${ID_LIKE:-} " in
        *" debian "*|*" ubuntu "*) ;;
        *) die "${PRETTY_NAME:-this system} is not Debian or Ubuntu. Install by hand: PostgreSQL 14+
with its server headers, TimescaleDB (Apache edition) for it, Redis, Python 3.11+ with venv,
and for the tests Chromium and chromedriver; then: python3 -m venv .venv && .venv/bin/pip install -e '.[test]'" ;;
    esac
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || printf '%s\n' "$pkg"
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "installing system packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

python_bin() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

setup_venv() {
    local python extras stamp want have have_extras
    python=$(python_bin) || die "Python 3.11 or newer is needed (apt-get install python3)"
    if [[ ! -x .venv/bin/python ]]; then
        "$python" -m venv .venv 2>/dev/null || {
            install_packages python3-venv
            "$python" -m venv .venv
        }
    fi
    extras=$([[ $WITH_TEST -eq 1 ]] && echo "[test]" || true)
    stamp=.venv/.p2pdash-installed
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ -f $stamp ]]; then
        read -r have have_extras < "$stamp" || true
        # An install with the test extra also serves a plain run.
        [[ $have == "$want" && ( -z $extras || ${have_extras:-} == "[test]" ) ]] && return 0
    fi
    say "installing p2pdash into .venv ${extras}"
    .venv/bin/python -m pip install -q --upgrade pip >.venv/pip.log 2>&1
    .venv/bin/python -m pip install -e ".${extras}" >>.venv/pip.log 2>&1 \
        || { tail -n 30 .venv/pip.log >&2; die "pip install failed (full log: .venv/pip.log)"; }
    echo "$want $extras" > "$stamp"
}

main() {
    check_os
    install_packages postgresql postgresql-contrib redis-server ca-certificates
    local pgver
    pgver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
    [[ -n $pgver ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    scripts/build-timescaledb.sh "$pgver"
    if [[ $WITH_TEST -eq 1 ]]; then
        install_packages chromium chromium-driver
        # nginx only to check deploy/nginx.conf (nginx -t): no server of its own is wanted.
        if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
            install_packages nginx
            if [[ -d /run/systemd/system ]]; then
                "${SUDO[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
            fi
        fi
    fi
    setup_venv
    say "ready (PostgreSQL $pgver with TimescaleDB $(scripts/build-timescaledb.sh --version "$pgver"))"
}

main
