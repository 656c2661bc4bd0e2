#!/usr/bin/env bash
# The Debian package, end to end: builds postgresql-15-phasemig from this
# repository with debian/ (dpkg-buildpackage -us -uc -b, in a copy of the
# tree under /tmp), installs it with dpkg -i, starts a throwaway cluster and
# runs the pg_regress suite against the installed package (make installcheck
# in the copy, which builds nothing and installs nothing: the server loads
# the extension from the package's files).
#
#   test/package/test_package.sh [--keep]     (as root, on Debian 12)
#
# Port: 55435 by default (PHASEMIG_PACKAGE_PORT overrides it); the cluster
# (scripts/cluster.sh) lives in a temporary directory and listens only on its
# own Unix socket there, never on TCP.
# The build dependencies are installed with apt-get (apt-get build-dep on the
# copy's debian/control), plus the PostgreSQL 15 server to run the tests.
#
# By default the package is removed at the end and any phasemig files it
# replaced (a "make install" of a working tree) are put back, so the machine
# is left as it was; --keep leaves the package installed.
#
# Prints "package: N passed, M failed"; every check counts (the build, the
# package's contents, the installed files, each pg_regress test).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
port=${PHASEMIG_PACKAGE_PORT:-55435}
keep=${1:-}
pkg=postgresql-15-phasemig
export DEBIAN_FRONTEND=noninteractive

passed=0
failed=0
check() { # check <description> <command...>
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $what"
  else
    failed=$((failed + 1))
    echo "FAIL: $what"
  fi
}
finish() {
  echo "package: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

[ "$(id -u)" = 0 ] || { echo "test_package.sh: run as root (apt-get, dpkg -i)" >&2; exit 2; }
started=$(date +%s)

work=$(mktemp -d /tmp/phasemig-pkg.XXXXXX)
chmod 755 "$work" # the server runs as postgres and must reach its cluster directory
tree="$work/phasemig-1.3"
cluster="$work/cluster"
saved="$work/saved"
installed=""
cleanup() {
  set +e
  [ -d "$cluster" ] && "$tree/scripts/cluster.sh" stop "$cluster"
  if [ -n "$installed" ] && [ "$keep" != "--keep" ]; then
    restore_files
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the copy
# Tracked files and untracked ones that are not ignored (build products,
# results/ etc. stay behind), as they are in the working tree now.
mkdir -p "$tree"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$tree"
else
  cp -a "$root/." "$tree/"
fi
rm -rf "$tree/.git"
echo "== copied the tree to $tree"

# ---------------------------------------------------------------- build deps
echo "== build dependencies (apt-get)"
apt-get update -qq
apt-get build-dep -y -qq "$tree" >/dev/null
apt-get install -y -qq --no-install-recommends build-essential dpkg-dev postgresql-15 postgresql-client-15 >/dev/null

# ---------------------------------------------------------------- build
echo "== dpkg-buildpackage -us -uc -b"
jobs=$(nproc 2>/dev/null || echo 1)
if (cd "$tree" && DEB_BUILD_OPTIONS="parallel=$jobs nocheck" dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
  check "dpkg-buildpackage -us -uc -b builds the package" true
else
  tail -60 "$work/build.log"
  check "dpkg-buildpackage -us -uc -b builds the package" false
  finish
  exit 1
fi
deb=$(ls "$work"/${pkg}_*.deb 2>/dev/null | head -1)
check "the binary package $pkg was produced ($(basename "${deb:-none}"))" test -n "$deb"
[ -n "$deb" ] || { finish; exit 1; }
grep -E '^(g\+\+|clang).*-std=c\+\+17.*-fvisibility=hidden' "$work/build.log" >/dev/null &&
  check "the build used the Makefile's C++ flags (-std=c++17 -fvisibility=hidden ...)" true ||
  check "the build used the Makefile's C++ flags (-std=c++17 -fvisibility=hidden ...)" false

# ---------------------------------------------------------------- install
# Files the package will own that exist already (a "make install"): saved,
# to be put back when the package is removed.
mapfile -t files < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$')
for f in "${files[@]}"; do
  if [ -f "$f" ]; then mkdir -p "$saved$(dirname "$f")" && cp -a "$f" "$saved$f"; fi
done
restore_files() {
  # Whoever installed over the package's files meanwhile keeps their files;
  # otherwise what was there before the test comes back.
  local newer="$work/newer"
  mkdir -p "$newer" "$work/pkgfiles"
  dpkg-deb -x "$deb" "$work/pkgfiles"
  for f in "${files[@]}"; do
    if [ -f "$f" ] && ! cmp -s "$f" "$work/pkgfiles$f"; then
      mkdir -p "$newer$(dirname "$f")" && cp -a "$f" "$newer$f"
    fi
  done
  dpkg -r "$pkg" >/dev/null
  cp -a "$saved/." / 2>/dev/null
  cp -a "$newer/." / 2>/dev/null
  echo "== removed $pkg; put back the files it had replaced"
}

echo "== dpkg -i $(basename "$deb")"
dpkg -i "$deb" >/dev/null
installed=yes
check "dpkg -i installs $pkg" sh -c "dpkg-query -W -f='\${Status}' $pkg | grep -q 'install ok installed'"
listing=$(dpkg -L "$pkg")
libdir=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)
sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)
for f in "$libdir/phasemig.so" "$sharedir/extension/phasemig.control" \
         "$sharedir/extension/phasemig--1.0.sql" "$sharedir/extension/phasemig--1.0--1.1.sql" \
         "$sharedir/extension/phasemig--1.1--1.2.sql" "$sharedir/extension/phasemig--1.2--1.3.sql"; do
  check "dpkg -L $pkg lists $f" grep -qx "$f" <<<"$listing"
  check "$f is installed" test -s "$f"
done
check "dpkg -S: $libdir/phasemig.so belongs to $pkg" sh -c "dpkg -S '$libdir/phasemig.so' | grep -q '^$pkg:'"
check "the installed phasemig.so exports no C++ symbols (visibility and export map applied)" \
  sh -c "! nm -D --defined-only '$libdir/phasemig.so' | grep -q ' _Z'"
check "the installed phasemig.so exports Pg_magic_func and _PG_init" \
  sh -c "nm -D --defined-only '$libdir/phasemig.so' | grep -q ' Pg_magic_func\$' && nm -D --defined-only '$libdir/phasemig.so' | grep -q ' _PG_init\$'"
check "the package depends on postgresql-15" sh -c "dpkg-query -W -f='\${Depends}' $pkg | grep -q 'postgresql-15'"
check "default_version 1.3 is installed" grep -q "^default_version = '1.3'" "$sharedir/extension/phasemig.control"

# ---------------------------------------------------------------- regress
echo "== cluster on port $port"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
if ! "$tree/scripts/cluster.sh" start "$cluster" "$port"; then
  cat "$cluster/initdb.log" "$cluster/server.log" 2>/dev/null | tail -30
  check "a throwaway cluster starts on port $port" false
  finish
  exit 1
fi
export PGHOST="$cluster/socket" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
check "the server starts and CREATE EXTENSION phasemig works from the package" \
  sh -c "psql -X -q -c 'CREATE DATABASE pkgcheck' && psql -X -At -d pkgcheck -c 'CREATE EXTENSION phasemig' -c \"SELECT extversion FROM pg_extension WHERE extname = 'phasemig'\" | grep -qx 1.3"

echo "== make installcheck (against the installed package)"
rm -rf "$tree/results" "$tree/regression.diffs" "$tree/regression.out"
set +e
(cd "$tree" && make installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config) >"$work/regress.log" 2>&1
rc=$?
set -e
cat "$work/regress.log"
ok=$(grep -Ec '\.\.\. ok( |$)|^ok [0-9]+ ' "$work/regress.log" || true)
bad=$(grep -Ec '\.\.\. FAILED|^not ok [0-9]+ ' "$work/regress.log" || true)
passed=$((passed + ok))
failed=$((failed + bad))
[ -f "$tree/regression.diffs" ] && head -200 "$tree/regression.diffs"
check "make installcheck ran the suite ($ok passed, $bad failed, exit $rc)" test "$rc" -eq 0 -a "$ok" -gt 0
check "make installcheck built and installed nothing" sh -c "! ls '$tree'/*.so '$tree'/src/pg/*.o >/dev/null 2>&1"

echo "test_package.sh took $(( $(date +%s) - started )) s"
finish
