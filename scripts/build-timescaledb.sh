#!/usr/bin/env bash
# Build and install the TimescaleDB Apache-2 edition for PostgreSQL PGVER from Debian's own
# `timescaledb` source package, as Debian builds it (APACHE_ONLY, no telemetry). Skips when
# the extension is already installed. The source comes through a temporary apt source list
# whose URI is read from this machine's existing apt sources: no host name is written here.
#
# Usage: scripts/build-timescaledb.sh PGVER      build unless installed
#        scripts/build-timescaledb.sh --version PGVER   print the installed version
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-timescaledb: %s\n' "$*" >&2; exit 1; }
read -r -a SUDO <<< "${SUDO_CMD:-}"

installed_version() {
    local control="/usr/share/postgresql/$1/extension/timescaledb.control"
    [[ -f $control && -f /usr/lib/postgresql/$1/lib/timescaledb.so ]] || return 1
    sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$control"
}

if [[ ${1:-} == "--version" ]]; then
    installed_version "$2" || echo "not installed"
    exit 0
fi
PGVER=${1:?usage: build-timescaledb.sh PGVER}
if version=$(installed_version "$PGVER"); then
    exit 0
fi

# The archive URI of this machine's main Debian or Ubuntu source, from deb822 or one-line lists.
archive_uri() {
    local files=() file
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $file ]] && files+=("$file")
    done
    [[ ${#files[@]} -gt 0 ]] || return 0
    awk -v codename="$VERSION_CODENAME" '
        /^URIs:/    { uri = $2 }
        /^Suites:/  { for (i = 2; i <= NF; i++) if ($i == codename) found = uri }
        /^deb /     { sub(/\[[^]]*\] /, ""); if ($3 == codename) found = $2 }
        found       { print found; exit }
    ' "${files[@]}" 2>/dev/null
}

# shellcheck disable=SC1091
. /etc/os-release
case "$ID" in
    debian) suites=(trixie sid); keyring=/usr/share/keyrings/debian-archive-keyring.gpg ;;
    ubuntu) suites=("$VERSION_CODENAME"); keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg ;;
    *) die "unsupported distribution $ID" ;;
esac
uri=$(archive_uri || true)
[[ -n $uri ]] || die "could not read the archive URI for $VERSION_CODENAME from /etc/apt/sources*"

say "building TimescaleDB (Apache-2 edition) for PostgreSQL $PGVER from Debian's source package"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "postgresql-server-dev-$PGVER" cmake make gcc dpkg-dev libssl-dev libkrb5-dev >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/lists/partial"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/none"
          -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root" -q)
fetched=0
for suite in "${suites[@]}"; do
    component=$([[ $ID == ubuntu ]] && echo universe || echo main)
    echo "deb-src [signed-by=$keyring] $uri $suite $component" > "$work/sources.list"
    apt-get "${apt_opts[@]}" update >/dev/null 2>&1 || continue
    if (cd "$work" && apt-get "${apt_opts[@]}" source --download-only timescaledb >/dev/null 2>&1); then
        fetched=1; break
    fi
done
[[ $fetched -eq 1 ]] || die "no timescaledb source package found in: ${suites[*]}"

(cd "$work" && dpkg-source -x --no-check ./timescaledb_*.dsc src >/dev/null)
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DPG_CONFIG="/usr/lib/postgresql/$PGVER/bin/pg_config" \
    -DAPACHE_ONLY=ON -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF \
    -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF >"$work/cmake.log" 2>&1 \
    || { tail -n 20 "$work/cmake.log" >&2; die "cmake failed"; }
make -C "$work/build" -j"$(nproc)" >"$work/make.log" 2>&1 \
    || { tail -n 30 "$work/make.log" >&2; die "compilation failed"; }
"${SUDO[@]}" make -C "$work/build" install >/dev/null
version=$(installed_version "$PGVER") || die "installation did not produce timescaledb.so"
say "TimescaleDB $version installed for PostgreSQL $PGVER"
