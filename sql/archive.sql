-- What phasemig keeps, and for what: the archive in phasemig_status, what
-- restore => false still takes from it (structure and phase_type, not the
-- assignments' phases), and what purging it changes.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;
SELECT pm_legacy_schema('ar', 'bigint', 'varchar');
SET search_path = ar, public;
ALTER TABLE project_phases ALTER COLUMN phase_type SET DEFAULT 'EXECUTION';
CREATE INDEX ix_phase_kind ON project_phases (project_id, phase_type);
INSERT INTO projects VALUES (1, 'A', '2025-01-01', '2025-01-31'), (2, 'B', '2025-02-01', '2025-02-28');
INSERT INTO project_phases (id, project_id, phase_type, total_budget) VALUES
  (11, 1, 'planning', 10), (12, 1, 'Execution', 20), (21, 2, 'EXECUTION', 30);
INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES
  (101, 1, 12, '2025-01-02'), (102, 1, 11, '2025-03-01'), (201, 2, 21, '2025-02-10');
CREATE TEMP TABLE before AS SELECT * FROM pm_fingerprint('ar');

SELECT phasemig_upgrade('ar') -> 'assignments';
SELECT s -> 'upgrade' ->> 'phases' AS phases, s -> 'upgrade' ->> 'assignments' AS assignments,
       s -> 'upgrade' ->> 'objects' AS objects, s -> 'downgrade' AS downgrade
  FROM (SELECT phasemig_status('ar') -> 'archive' AS s) x;
SELECT phase_id, project_id, phase_type, total_budget FROM phasemig_archived_phases ORDER BY phase_id;
SELECT run_id, chunk_no, entries FROM phasemig_phase_archive;
SELECT row_position, assignment_id, project_id, assignment_date, project_phase_id
  FROM phasemig_archived_assignments ORDER BY row_position;
-- The table holds chunks of packed entries; the view decodes them.
SELECT run_id, chunk_no, entries, first_position, last_position, length(data) AS bytes FROM phasemig_assignment_archive;
SELECT assignment_key FROM phasemig_assignment_archive, _phasemig_archive_entries(data) ORDER BY row_position LIMIT 1;
SELECT kind, name, type, definition, default_expr FROM phasemig_object_archive ORDER BY object_no;

-- A damaged archive is refused, never guessed at: a chunk cut short, a chunk
-- of an unknown format, a chunk missing or twice.
\set SHOW_CONTEXT never
BEGIN;
UPDATE phasemig_assignment_archive SET data = substr(data, 1, length(data) - 1);
SELECT phasemig_downgrade('ar') -> 'assignments';
ROLLBACK;
BEGIN;
UPDATE phasemig_assignment_archive SET chunk_no = 1;
SELECT phasemig_downgrade('ar') -> 'assignments';
ROLLBACK;
SELECT * FROM _phasemig_archive_entries('\x02');
SELECT count(*) FROM _phasemig_archive_entries('\x01');
-- The same for the phase archive, which the downgrade reads for phase_type.
BEGIN;
UPDATE phasemig_phase_archive SET data = substr(data, 1, length(data) - 1);
SELECT phasemig_downgrade('ar') -> 'phase_types_restored';
ROLLBACK;
BEGIN;
UPDATE phasemig_phase_archive SET entries = entries + 1;
SELECT phasemig_downgrade('ar') -> 'phase_types_restored';
ROLLBACK;
BEGIN;
UPDATE phasemig_phase_archive SET chunk_no = 1;
SELECT phasemig_downgrade('ar') -> 'phase_types_restored';
ROLLBACK;
BEGIN;
INSERT INTO phasemig_phase_archive SELECT * FROM phasemig_phase_archive;
SELECT phasemig_downgrade('ar') -> 'phase_types_restored';
ROLLBACK;
SELECT * FROM _phasemig_phase_entries('\x0104');
SELECT count(*) FROM _phasemig_phase_entries('\x0103');
\set SHOW_CONTEXT errors

-- restore => false: every assignment is matched by date (102 lies outside its
-- project: first phase, and the warning), but phase_type keeps its archived
-- type, values (by phase id, even for a phase moved to another project) and
-- the index and default that went with the column.
UPDATE project_phases SET project_id = 2, name = 'Moved', start_date = '2025-02-01', end_date = '2025-02-01' WHERE id = 12;
UPDATE project_phases SET start_date = '2025-01-01', end_date = '2025-01-31' WHERE id = 11;
UPDATE project_phases SET start_date = '2025-02-02' WHERE id = 21;
SELECT phasemig_downgrade('ar', restore => false) -> 'assignments';
SELECT id, project_id, phase_type FROM project_phases ORDER BY id;
SELECT id, project_phase_id FROM resource_assignments ORDER BY id;
SELECT b.part FROM before b JOIN pm_fingerprint('ar') a USING (part) WHERE b.part LIKE '%shape' AND a.fingerprint <> b.fingerprint;
UPDATE project_phases SET project_id = 1 WHERE id = 12;
UPDATE resource_assignments SET project_phase_id = 12 WHERE id = 101;
UPDATE resource_assignments SET project_phase_id = 11 WHERE id = 102;

-- Purging: the archive is gone, the baseline's sums are not.
SELECT phasemig_upgrade('ar') -> 'timelines';
SELECT phasemig_purge_archive('ar');
SELECT phasemig_status('ar') -> 'archive' AS archive;
SELECT (SELECT count(*) FROM phasemig_phase_archive) AS phase_rows,
       (SELECT count(*) FROM phasemig_assignment_archive) AS assignment_rows,
       (SELECT count(*) FROM phasemig_object_archive) AS object_rows;
SELECT check_no, passed, detail FROM phasemig_verify('ar') WHERE check_no = 7;
UPDATE project_phases SET total_budget = 11 WHERE id = 11;
SELECT check_no, passed, detail FROM phasemig_verify('ar') WHERE check_no = 7;
UPDATE project_phases SET total_budget = 10 WHERE id = 11;
-- Without the archive, the downgrade falls back to the dates and the names,
-- and says so before it starts.
SELECT code, message FROM phasemig_preflight('ar') WHERE code = 'no_archive';
SELECT phasemig_downgrade('ar') -> 'assignments';
SELECT id, phase_type FROM project_phases ORDER BY id;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'ar.project_phases'::regclass AND attname = 'phase_type';

-- A chunk table whose storage is new in the transaction, and empty, is filled
-- page by page and written without shared buffers (pg/archive_io.cpp), as
-- the upgrade does after it TRUNCATEs the assignment archive.  Here the phase
-- archive gets new storage the same way; descriptions of 500 characters make
-- some of its chunks too big to stay inline, and from the first of them on,
-- rows go through TOAST and shared buffers.  Every description comes back.
INSERT INTO project_phases (id, project_id, phase_type, total_budget)
SELECT 20 + i, 2, 'EXECUTION', 0 FROM generate_series(2, 9) i;
SELECT phasemig_upgrade('ar') -> 'timelines';
SELECT phasemig_purge_archive('ar') -> 'runs' AS purged_runs;
UPDATE project_phases SET description = repeat(chr(97 + (id % 20)::int), CASE WHEN id < 25 THEN 300 ELSE 500 END);
BEGIN;
TRUNCATE phasemig_phase_archive;
SELECT phasemig_downgrade('ar') -> 'phases' AS phases;
COMMIT;
SELECT chunk_no, entries, octet_length(data) AS bytes FROM phasemig_phase_archive ORDER BY chunk_no;
SELECT pg_relation_size(reltoastrelid) > 0 AS toast_used FROM pg_class WHERE oid = 'phasemig_phase_archive'::regclass;
SELECT phasemig_upgrade('ar') -> 'timelines';
SELECT count(*) AS phases,
       count(*) FILTER (WHERE description = repeat(chr(97 + (id % 20)::int), CASE WHEN id < 25 THEN 300 ELSE 500 END))
         AS descriptions_back
  FROM project_phases;

RESET search_path;
DROP SCHEMA ar CASCADE;
