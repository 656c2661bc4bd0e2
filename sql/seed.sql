-- The seed-shaped database (5 projects, 8 phases, $2.8M, 1,011 assignments)
-- through upgrade, verify, downgrade, verify, and back: the numbers of the
-- seed's own report, honestly checked, and nothing lost on the way.
\set ECHO none
\i test/regress/fixture.sql
\set schema seed
\i test/data/seed_demo.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;

SELECT phasemig_status('seed') #>> '{state}' AS state,
       phasemig_status('seed') #>> '{alembic_revision}' AS revision;
SELECT * FROM phasemig_preflight('seed');
CREATE TEMP TABLE before AS SELECT * FROM pm_fingerprint('seed');

-- Upgrade; timings vary, everything else is deterministic.
SELECT jsonb_pretty(phasemig_upgrade('seed') - 'timings');
SELECT * FROM phasemig_verify('seed');
SELECT name, start_date, end_date, description FROM seed.project_phases ORDER BY start_date, name;
SELECT version_num FROM seed.alembic_version;

-- The date rule as a function.
SELECT p.name AS project, d AS on_date, ph.name AS phase
  FROM seed.projects p
  CROSS JOIN LATERAL (VALUES (p.start_date), (p.end_date), (p.start_date - 1), (p.end_date + 1)) v(d)
  LEFT JOIN seed.project_phases ph ON ph.id = phasemig_phase_for(p.id, v.d, 'seed')
 ORDER BY p.name, d;

-- Back to the legacy revision: every assignment gets its archived phase.
SELECT jsonb_pretty(phasemig_downgrade('seed') - 'timings');
SELECT * FROM phasemig_verify('seed');
SELECT b.part, b.fingerprint = a.fingerprint AS identical
  FROM before b JOIN pm_fingerprint('seed') a USING (part) ORDER BY b.part;

-- The archive and the history are visible.
SELECT s #>> '{state}' AS state, s #> '{archive,upgrade,assignments}' AS archived_assignments,
       s #> '{archive,downgrade,phases}' AS archived_phases, s #> '{last_verify,passed}' AS last_verify_passed
  FROM phasemig_status('seed') s;
SELECT target_schema, state, passed, checks, checks_passed, checks_failed FROM phasemig_verify_history ORDER BY verify_id;
SELECT run_id, step, projects, phases, assignments, total, archived_phases, archived_assignments
  FROM phasemig_run ORDER BY run_id;

-- Without the archive (the reference behaviour), 420 assignments fall back
-- to their project's first phase, with the seed's warning.
SELECT phasemig_upgrade('seed') #> '{timelines}';
SELECT phasemig_downgrade('seed', restore => false) #> '{assignments}';

DROP SCHEMA seed CASCADE;
