#!/usr/bin/env bash
# The demo: builds and installs phasemig, starts a throwaway cluster, loads a
# database shaped like the seed's (5 projects, 8 phases, $2.8M, 1,011
# assignments), then upgrade -> verify -> downgrade -> verify, printed for a
# person to read.  Usage: scripts/demo.sh [--keep]   (--keep leaves the cluster up)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=${1:-}

scripts/deps.sh
export PATH="$(pg_config --bindir):$PATH"
echo "Building and installing phasemig ..."
make -s -j2
if [ "$(id -u)" = 0 ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi

dir=$(mktemp -d /tmp/phasemig-demo.XXXXXX)
port=${PHASEMIG_DEMO_PORT:-54330}
if [ "$keep" != "--keep" ]; then
  trap 'scripts/cluster.sh stop "$dir"; rm -rf "$dir"' EXIT
fi
scripts/cluster.sh start "$dir" "$port"
export PGHOST="$dir/socket" PGPORT="$port" PGUSER=postgres
psql -X -q -c "CREATE DATABASE demo" postgres
# Snapshot function for the round-trip comparison at the end.
psql -X -q -d demo -v ON_ERROR_STOP=1 -f test/regress/fixture.sql
psql -X -q -d demo -v ON_ERROR_STOP=1 -f test/data/seed_demo.sql
psql -X -q -d demo -c "CREATE EXTENSION phasemig"

run() {
  echo
  echo "== $1"
  shift
  psql -X -d demo -P pager=off -v ON_ERROR_STOP=1 "$@"
}

run "The legacy database (revision 976e6adbac6f)" -c "
  SELECT (SELECT count(*) FROM projects) AS projects,
         (SELECT count(*) FROM project_phases) AS phases,
         (SELECT string_agg(phase_type || ': ' || n, ', ' ORDER BY phase_type) FROM
            (SELECT phase_type::text, count(*) n FROM project_phases GROUP BY 1) t) AS by_type,
         (SELECT to_char(sum(total_budget), 'FM\$9,999,999.00') FROM project_phases) AS budget,
         (SELECT count(*) FROM resource_assignments) AS assignments"
psql -X -q -d demo -c "CREATE TABLE demo_before AS SELECT * FROM pm_fingerprint('public')"
run "Preflight: what would stop the upgrade, what to know" -c "SELECT severity, code, message, count FROM phasemig_preflight()"
run "Upgrade (one transaction, in the server)" -c "SELECT jsonb_pretty(phasemig_upgrade())"
run "Verify the upgraded schema" -c "SELECT * FROM phasemig_verify()"
run "The new timeline" -c "
  SELECT p.name AS project, ph.name AS phase, ph.start_date, ph.end_date
    FROM project_phases ph JOIN projects p ON p.id = ph.project_id ORDER BY p.name, ph.start_date"
run "phasemig_phase_for: which phase holds a date" -c "
  SELECT p.name AS project, d::date AS on_date, ph.name AS phase
    FROM projects p CROSS JOIN LATERAL (VALUES (p.start_date), (p.end_date + 1)) v(d)
    LEFT JOIN project_phases ph ON ph.id = phasemig_phase_for(p.id, v.d::date)
   ORDER BY p.name, d"
run "Downgrade (every assignment gets its archived phase back)" -c "SELECT jsonb_pretty(phasemig_downgrade())"
run "Verify the legacy schema" -c "SELECT * FROM phasemig_verify()"
run "Round trip: identical to the original?" -c "
  SELECT b.part, b.fingerprint = a.fingerprint AS identical
    FROM demo_before b JOIN pm_fingerprint('public') a USING (part) ORDER BY b.part"
run "For comparison: the reference (seed) behaviour, restore => false" \
  -c "SELECT phasemig_upgrade() -> 'assignments' AS upgrade" \
  -c "SELECT phasemig_downgrade(restore => false) -> 'assignments' AS downgrade_without_archive"
run "What phasemig keeps" -c "SELECT jsonb_pretty(phasemig_status() -> 'archive')"

if [ "$keep" = "--keep" ]; then
  echo
  echo "The cluster is still running: psql -h $dir/socket -p $port -U postgres demo"
  echo "Stop it with: scripts/cluster.sh stop $dir"
fi
