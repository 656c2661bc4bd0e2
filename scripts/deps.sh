#!/usr/bin/env bash
# Installs what building and testing phasemig needs, from Debian's archive,
# when something is missing.  Idempotent; needs root (or sudo) only to install.
set -euo pipefail

packages=(
  postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-client-15
  libboost-dev libgtest-dev libbenchmark-dev cmake g++ make
  python3 python3-psycopg2 python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "phasemig: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
