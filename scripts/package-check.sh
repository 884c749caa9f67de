#!/usr/bin/env bash
# Builds the Debian package from the already-built binary, installs it with dpkg on this
# machine, checks what it installed (files, owners, modes, the service user), runs the
# installed binary, then purges the package again. Part of the test command (scripts/test.sh).
#   PROFILE=release bash scripts/package-check.sh   # check a release build instead
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-dev}
bindir=target/$([ "$profile" = dev ] && echo debug || echo "$profile")

fail() { echo "package-check: FAIL: $*" >&2; exit 1; }

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "package-check: installing cargo-deb"
  cargo install --locked cargo-deb >/dev/null
fi
if dpkg -s isymphony-sync >/dev/null 2>&1; then
  fail "isymphony-sync is already installed on this machine; refusing to touch it"
fi

cargo build --locked --profile "$profile" --bin isymphony-sync
"$bindir/isymphony-sync" --generate-assets target/assets
deb=$(cargo deb --no-build --profile "$profile" --output target/debian/ 2>&1 | tail -n 1)
[ -f "$deb" ] || fail "cargo deb did not produce a package: $deb"
echo "package-check: built $deb"

cleanup() { dpkg --purge isymphony-sync >/dev/null 2>&1 || true; }
trap cleanup EXIT
dpkg -i "$deb" >/dev/null

check_file() { # path mode owner:group
  [ -e "$1" ] || fail "$1 missing"
  got=$(stat -c '%a %U:%G' "$1")
  [ "$got" = "$2 $3" ] || fail "$1 is '$got', expected '$2 $3'"
}
check_file /usr/bin/isymphony-sync 755 root:root
check_file /lib/systemd/system/isymphony-sync.service 644 root:root
check_file /etc/isymphony-sync/config.toml 640 root:isymphony-sync
check_file /var/lib/isymphony-sync 700 isymphony-sync:isymphony-sync
# A random password per install for the agent's port, never the documented factory one.
check_file /etc/isymphony-sync/agent-password 640 root:isymphony-sync
pw=$(head -n 1 /etc/isymphony-sync/agent-password)
[ ${#pw} -ge 24 ] || fail "the generated password is too short (${#pw} characters)"
[ "$pw" != "manag3rpa55word" ] || fail "the generated password is the factory default"
# --check-config exits 1 here (no FreePBX on this machine): read its output, not its status.
check_out=$(/usr/bin/isymphony-sync --config /etc/isymphony-sync/config.toml --check-config 2>&1 || true)
grep -qE '^ok +password .*/etc/isymphony-sync/agent-password' <<<"$check_out" \
  || fail "--check-config does not say where the password is"
check_file /usr/share/man/man1/isymphony-sync.1.gz 644 root:root
check_file /usr/share/bash-completion/completions/isymphony-sync 644 root:root
check_file /usr/share/zsh/vendor-completions/_isymphony-sync 644 root:root
getent passwd isymphony-sync >/dev/null || fail "system user isymphony-sync missing"
dpkg-query -W -f='${Conffiles}\n' isymphony-sync | grep -q '/etc/isymphony-sync/config.toml' \
  || fail "config.toml is not a conffile"
/usr/bin/isymphony-sync --version | grep -q '^isymphony-sync ' || fail "--version from /usr/bin"
if [ -d /run/systemd/system ] && systemctl is-active --quiet isymphony-sync; then
  fail "the service was started on install"
fi

# An edited config survives an upgrade (reinstall) and a remove; purge removes it.
echo '# edited by the administrator' >> /etc/isymphony-sync/config.toml
dpkg -i "$deb" >/dev/null
grep -q 'edited by the administrator' /etc/isymphony-sync/config.toml || fail "reinstall overwrote the edited config"
[ "$(head -n 1 /etc/isymphony-sync/agent-password)" = "$pw" ] || fail "reinstall changed the generated password"
dpkg --remove isymphony-sync >/dev/null
[ -f /etc/isymphony-sync/config.toml ] || fail "remove deleted the config"
[ ! -e /usr/bin/isymphony-sync ] || fail "remove left the binary"
dpkg --purge isymphony-sync >/dev/null
[ ! -e /etc/isymphony-sync/config.toml ] || fail "purge left the config"
[ ! -e /etc/isymphony-sync/agent-password ] || fail "purge left the generated password"
trap - EXIT
echo "package-check: 1 passed, 0 failed"
