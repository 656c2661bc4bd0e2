#!/usr/bin/env bash
# The pg_regress suite once more, with every backend under valgrind's
# memcheck.  Passes when valgrind reports no error whose stack goes through
# phasemig's code (errors inside PostgreSQL itself are counted and shown,
# since Debian's server is not built for valgrind, but not held against us).
#   make valgrind-check        (or: test/valgrind/run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
scripts/deps.sh
command -v valgrind >/dev/null || { apt-get install -y -qq valgrind >/dev/null; }
export PATH="$(pg_config --bindir):$PATH"
make -s -j2
if [ "$(id -u)" = 0 ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi

dir=$(mktemp -d /tmp/phasemig-valgrind.XXXXXX)
port=${PHASEMIG_VALGRIND_PORT:-54341}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_pg initdb -D "$dir/data" -U postgres --auth=trust --no-sync >/dev/null
as_pg mkdir -p "$dir/socket" "$dir/vg"
cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir/socket'
fsync = off
jit = off
max_parallel_workers_per_gather = 0
CONF
as_pg bash -c "valgrind --quiet --trace-children=yes --leak-check=no --error-limit=no --num-callers=40 \
  --suppressions=$root/test/valgrind/postgres.supp --log-file=$dir/vg/vg.%p.log \
  $(pg_config --bindir)/postgres -D $dir/data >$dir/server.log 2>&1 &"
cleanup() {
  as_pg pg_ctl -D "$dir/data" -m fast -w -t 120 stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
for i in $(seq 1 120); do
  pg_isready -h "$dir/socket" -p "$port" >/dev/null 2>&1 && break
  sleep 1
done
export PGHOST="$dir/socket" PGPORT="$port" PGUSER=postgres
rm -rf results regression.diffs regression.out
status=0
make -s installcheck || status=$?
cleanup
trap - EXIT

# One error block per "==pid== <error>" header up to the next blank record.
total=$(grep -hc "^==[0-9]*== [A-Z]" "$dir"/vg/*.log 2>/dev/null | awk '{s+=$1} END {print s+0}')
ours=$(awk '/^==[0-9]+== [A-Z]/ {if (blk != "" && blk ~ /phasemig/) n++; blk=$0; next}
            /^==[0-9]+== *$/ {if (blk != "" && blk ~ /phasemig/) n++; blk=""; next}
            {blk = blk "\n" $0}
            END {if (blk ~ /phasemig/) n++; print n+0}' "$dir"/vg/*.log)
echo "valgrind: $total error records in PostgreSQL processes, $ours through phasemig code (logs in $dir/vg)"
if [ "$ours" -gt 0 ]; then
  grep -l phasemig "$dir"/vg/*.log | head -3 | xargs -r cat | head -150
fi
echo "valgrind-check: $([ "$ours" -eq 0 ] && [ "$status" -eq 0 ] && echo 1 || echo 0) passed, $([ "$ours" -eq 0 ] && [ "$status" -eq 0 ] && echo 0 || echo 1) failed"
[ "$ours" -eq 0 ] && [ "$status" -eq 0 ]
