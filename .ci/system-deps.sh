#!/usr/bin/env bash
# Installs the Debian packages that tests run for real, only when missing.
# Never fails itself: a test that needs a missing tool skips with the reason, except
# under CI=true, where it fails naming the package (tests/tools.py), so a failed apt
# step here cannot hide the regressions those tests guard.
set -u
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)  # amtool check-config
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # verify/security of the unit
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # the TLS test's certificate
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo; command -v sudo >/dev/null 2>&1 || { echo "system-deps: not root, cannot install ${need[*]}"; exit 0; }
else
  SUDO=
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "system-deps: apt-get install ${need[*]} failed; the tests that need them will skip (fail under CI=true)"
exit 0
