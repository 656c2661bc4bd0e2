#!/usr/bin/env bash
# Sets everything up and runs every test phasemig has:
#   1. the C++ core's unit tests and a benchmark smoke run (ctest),
#   2. the pg_regress suite against a throwaway cluster,
#   3. the integration tests (pg_cron, concurrency, cancels, crashes, ...).
# Usage: scripts/test.sh            (as root, or a user with sudo for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/deps.sh
export PATH="$(pg_config --bindir):$PATH"

echo "== build and install the extension"
make -s -j2
if [ "$(id -u)" = 0 ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi

passed=0
failed=0
suite() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "!! $name failed"; fi
}

echo "== build the core and its tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
suite "core unit tests (ctest)" ctest --test-dir build --output-on-failure
echo "== build the core tests with AddressSanitizer and UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPHASEMIG_SANITIZE=ON >/dev/null
cmake --build build-asan -j2 --target phasemig_core_tests >/dev/null
suite "core unit tests under ASan+UBSan" ctest --test-dir build-asan --output-on-failure -E core_bench_smoke

dir=$(mktemp -d /tmp/phasemig-test.XXXXXX)
port=${PHASEMIG_TEST_PORT:-54329}
cleanup() { scripts/cluster.sh stop "$dir"; rm -rf "$dir"; }
trap cleanup EXIT
scripts/cluster.sh start "$dir" "$port" \
  "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'postgres'" "max_worker_processes = 16"
export PGHOST="$dir/socket" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
export PHASEMIG_CLUSTER_DIR="$dir"

regress() {
  rm -rf results regression.diffs regression.out
  if make -s installcheck; then return 0; fi
  [ -f regression.diffs ] && head -200 regression.diffs
  return 1
}
suite "pg_regress suite" regress

for t in test/integration/test_*.py; do
  [ -e "$t" ] || continue
  suite "integration: $(basename "$t" .py)" /usr/bin/python3 "$t"
done

# The benchmark harness on tiny sizes, so that it cannot rot (figures of a
# real run: bench/README.md).
suite "benchmark smoke run" /usr/bin/python3 bench/run.py --quick --out "$dir/bench" --plot "$dir/bench/scaling.png"

# The same pg_regress suite with every backend under valgrind: no error may
# come through phasemig's code.
if [ "${PHASEMIG_SKIP_VALGRIND:-}" != 1 ]; then
  suite "pg_regress under valgrind" test/valgrind/run.sh
fi

# Last: it installs the Debian package over the files installed above (and
# puts them back), then runs the regress suite against the package.
if [ "${PHASEMIG_SKIP_PACKAGE:-}" != 1 ]; then
  suite "Debian package" test/package/test_package.sh
fi

echo
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
