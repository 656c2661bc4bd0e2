-- Version 1.0 installed, used, then updated in place to 1.1: the archives
-- and the verify history survive ALTER EXTENSION UPDATE, and 1.1 adds
-- phasemig_assert and phasemig_progress.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'phasemig';
SELECT pm_legacy_schema('up');
INSERT INTO up.projects VALUES (1, 'A', '2025-01-01', '2025-01-31');
INSERT INTO up.project_phases (id, project_id, phase_type, total_budget) VALUES (11, 1, 'PLANNING', 1), (12, 1, 'EXECUTION', 2);
INSERT INTO up.resource_assignments (id, project_id, project_phase_id, assignment_date)
VALUES (101, 1, 12, '2025-01-02'), (102, 1, 11, '2025-02-15');
SELECT phasemig_upgrade('up') -> 'assignments';
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

-- The 1.0 archive still restores the assignments after the update.
SELECT phasemig_downgrade('up') -> 'assignments';
SELECT id, project_phase_id FROM up.resource_assignments ORDER BY id;
SELECT count(*) AS progress_rows FROM phasemig_progress;

DROP SCHEMA up CASCADE;
