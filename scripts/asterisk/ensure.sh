#!/usr/bin/env bash
# Make sure a test Asterisk is installed; print its prefix on stdout (messages on stderr).
#
#   ensure.sh            # e.g.  export ASTERISK_PREFIX="$(scripts/asterisk/ensure.sh)"
#
# Looks, in order, at $ASTERISK_PREFIX, /opt/asterisk-test and the cache prefix
# ${XDG_CACHE_HOME:-$HOME/.cache}/isymphony-sync/asterisk-22 (where tests/support/asterisk.rs
# looks too). When none holds sbin/asterisk, builds one with build.sh (1-3 minutes on 2 cores,
# once per machine) from $ASTERISK_TARBALL, else from ../shared/vendor/asterisk-22.10.1.tar.xz
# next to the repository. The build goes to $ASTERISK_PREFIX when set, else /opt/asterisk-test
# when running as root, else the cache prefix. Without a tarball it fails naming
# ASTERISK_TARBALL. With an install present it returns at once (no build.sh run).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/isymphony-sync/asterisk-22"

for p in "${ASTERISK_PREFIX:-}" /opt/asterisk-test "$cache"; do
  if [ -n "$p" ] && [ -x "$p/sbin/asterisk" ]; then
    echo "$p"
    exit 0
  fi
done

tarball="${ASTERISK_TARBALL:-}"
if [ -z "$tarball" ]; then
  vendored="$(dirname "$repo")/shared/vendor/asterisk-22.10.1.tar.xz"
  [ -f "$vendored" ] && tarball="$vendored"
fi
if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
  echo "ensure.sh: no test Asterisk installed and no source tarball: set ASTERISK_TARBALL to an" \
       "Asterisk 22 source tarball (or put it at ../shared/vendor/asterisk-22.10.1.tar.xz)," \
       "or ASTERISK_PREFIX to an existing install" >&2
  exit 1
fi

if [ -n "${ASTERISK_PREFIX:-}" ]; then
  prefix="$ASTERISK_PREFIX"
elif [ "$(id -u)" = 0 ]; then
  prefix=/opt/asterisk-test
else
  prefix="$cache"
  export ASTERISK_SKIP_APT="${ASTERISK_SKIP_APT:-1}"  # apt needs root
fi
echo "ensure.sh: building the test Asterisk from $tarball into $prefix (once per machine)" >&2
mkdir -p "$prefix"
bash "$here/build.sh" "$tarball" "$prefix" >&2
[ -x "$prefix/sbin/asterisk" ] || { echo "ensure.sh: build.sh left no $prefix/sbin/asterisk" >&2; exit 1; }
echo "$prefix"
