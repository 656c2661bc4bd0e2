-- Version 1.0 installed, used, then updated in place to 1.1, 1.2 and 1.3:
-- the archives and the verify history survive ALTER EXTENSION UPDATE; 1.1
-- adds phasemig_assert and phasemig_progress; 1.2 packs the assignment
-- archive (a row per assignment until 1.1) into chunks, 1.3 the phase
-- archive (a row per phase until 1.2).
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;

-- The state a 1.0 upgrade leaves: made by this version's upgrade, kept aside,
-- and written back in the 1.0 layout under an extension created at 1.0
-- (this module no longer writes that layout).
CREATE EXTENSION phasemig;
SELECT pm_legacy_schema('up');
INSERT INTO up.projects VALUES (1, 'A', '2025-01-01', '2025-01-31');
INSERT INTO up.project_phases (id, project_id, phase_type, total_budget) VALUES (11, 1, 'PLANNING', 1), (12, 1, 'EXECUTION', 2);
INSERT INTO up.resource_assignments (id, project_id, project_phase_id, assignment_date)
VALUES (101, 1, 12, '2025-01-02'), (102, 1, 11, '2025-02-15');
-- Enough assignments for the 1.2 archive to take several chunks.
INSERT INTO up.resource_assignments (id, project_id, project_phase_id, assignment_date)
SELECT 1000 + i, 1, CASE WHEN i % 3 = 0 THEN 11 ELSE 12 END, DATE '2025-01-01' + i % 40 FROM generate_series(1, 5000) i;
SELECT phasemig_upgrade('up') -> 'assignments';
CREATE TEMP TABLE kept_run AS SELECT * FROM phasemig_run;
CREATE TEMP TABLE kept_phases AS
SELECT run_id, phase_id, project_id, phase_type, name, start_date, end_date, description,
       capital_budget, expense_budget, total_budget FROM phasemig_archived_phases;
CREATE TEMP TABLE kept_objects AS SELECT * FROM phasemig_object_archive;
CREATE TEMP TABLE kept_entries AS
SELECT a.run_id, e.* FROM phasemig_assignment_archive a, _phasemig_archive_entries(a.data) e;
DROP EXTENSION phasemig;
CREATE EXTENSION phasemig VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'phasemig';
INSERT INTO phasemig_run SELECT * FROM kept_run;
SELECT setval('phasemig_run_run_id_seq', (SELECT max(run_id) FROM phasemig_run)) AS run_id_seq;
INSERT INTO phasemig_phase_archive SELECT * FROM kept_phases;
INSERT INTO phasemig_object_archive SELECT * FROM kept_objects;
SELECT setval('phasemig_object_archive_object_no_seq', (SELECT max(object_no) FROM phasemig_object_archive)) AS object_no_seq;
INSERT INTO phasemig_assignment_archive
SELECT run_id, row_position, assignment_key, project_key, assignment_date, phase_key FROM kept_entries ORDER BY row_position;
SELECT row_position, assignment_id, project_phase_id FROM phasemig_archived_assignments ORDER BY row_position LIMIT 3;
SELECT check_no, passed FROM phasemig_verify('up') WHERE NOT passed;
SELECT 'phasemig_assert(text)'::regprocedure;

ALTER EXTENSION phasemig UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'phasemig';
SELECT (SELECT count(*) FROM phasemig_run) AS runs, (SELECT count(*) FROM phasemig_assignment_archive) AS archived,
       (SELECT count(*) FROM phasemig_verify_history) AS verifications;

-- phasemig_assert: the number of checks passed, or an error naming the failures.
SELECT phasemig_assert('up');
UPDATE up.project_phases SET end_date = '2025-01-10' WHERE id = 11;
SELECT phasemig_assert('up');
SELECT passed, failed_checks FROM phasemig_verify_history ORDER BY verify_id;
UPDATE up.project_phases SET end_date = '2025-01-16' WHERE id = 11;

-- 1.2: the rows become one chunk, which the view shows as the same entries;
-- nothing else of phasemig's state changes, and the dump still covers it.
ALTER EXTENSION phasemig UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'phasemig';
SELECT count(*) > 1 AS several_chunks, sum(entries) AS entries, min(chunk_no) = 0 AND max(chunk_no) = count(*) - 1 AS numbered,
       min(first_position) AS first_position, max(last_position) AS last_position
  FROM phasemig_assignment_archive;
SELECT run_id, chunk_no, entries, first_position, last_position FROM phasemig_assignment_archive ORDER BY chunk_no LIMIT 2;
-- The same entries as before the update, in the same order.
SELECT count(*) AS differing FROM (
  (SELECT run_id, row_position, assignment_key, project_key, assignment_date, phase_key FROM kept_entries
   EXCEPT SELECT a.run_id, e.* FROM phasemig_assignment_archive a, _phasemig_archive_entries(a.data) e)
  UNION ALL
  (SELECT a.run_id, e.* FROM phasemig_assignment_archive a, _phasemig_archive_entries(a.data) e
   EXCEPT SELECT run_id, row_position, assignment_key, project_key, assignment_date, phase_key FROM kept_entries)) d;
SELECT row_position, assignment_id, project_phase_id FROM phasemig_archived_assignments ORDER BY row_position LIMIT 3;
SELECT (SELECT count(*) FROM phasemig_run) AS runs, (SELECT count(*) FROM phasemig_phase_archive) AS phases,
       (SELECT count(*) FROM phasemig_verify_history) AS verifications;

-- 1.3: the phase rows become a chunk, which the view shows as the same rows.
ALTER EXTENSION phasemig UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'phasemig';
SELECT run_id, chunk_no, entries FROM phasemig_phase_archive ORDER BY run_id, chunk_no;
SELECT count(*) AS differing FROM (
  (SELECT * FROM kept_phases EXCEPT SELECT * FROM phasemig_archived_phases)
  UNION ALL
  (SELECT * FROM phasemig_archived_phases EXCEPT SELECT * FROM kept_phases)) d;
SELECT phase_id, project_id, phase_type, total_budget FROM phasemig_archived_phases ORDER BY phase_id;
SELECT c.relname FROM pg_extension x, unnest(x.extconfig) t(oid) JOIN pg_class c ON c.oid = t.oid
 WHERE x.extname = 'phasemig' ORDER BY 1;
SELECT count(*) AS dangling FROM pg_extension x, unnest(x.extconfig) t(oid)
 WHERE x.extname = 'phasemig' AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.oid);

-- Chunks need not lie in the order written (a restore's COPY reuses free
-- space): stored in reverse, they are read all the same.
CREATE TEMP TABLE chunks AS SELECT * FROM phasemig_assignment_archive;
DELETE FROM phasemig_assignment_archive;
INSERT INTO phasemig_assignment_archive SELECT * FROM chunks ORDER BY chunk_no DESC;
SELECT (array_agg(chunk_no ORDER BY ctid))[1] = max(chunk_no) AS stored_in_reverse FROM phasemig_assignment_archive;

-- The 1.0 archive still restores the assignments and the phase types after
-- the updates (101 by date alone would get phase 11).
SELECT d -> 'assignments' AS assignments, d -> 'phase_types_restored' AS phase_types_restored FROM phasemig_downgrade('up') d;
SELECT id, project_phase_id FROM up.resource_assignments ORDER BY id LIMIT 4;
SELECT id, phase_type FROM up.project_phases ORDER BY id;
SELECT count(*) AS progress_rows FROM phasemig_progress;

DROP SCHEMA up CASCADE;
