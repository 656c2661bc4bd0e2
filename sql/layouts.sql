-- The scans read heap rows in place (src/pg/scan.cpp): at offsets known once
-- per scan when a row has no NULL and only fixed-width columns up to the ones
-- read, else by walking the row.  Here the assignments have text of both
-- header sizes, a NULL and a dropped column before their keys, and rows
-- written before assignment_date existed (their date is the column's
-- stored default).  A value read wrongly shows in the counts, in the phases
-- matched, or in the archive's entries not restoring their rows.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;

SELECT pm_legacy_schema('lay', 'uuid');
SET search_path = lay, public;
DROP TABLE resource_assignments;
CREATE TABLE resource_assignments (
    note text, id uuid PRIMARY KEY, scratch bigint, resource_id uuid,
    project_id uuid NOT NULL REFERENCES projects (id),
    project_phase_id uuid NOT NULL CONSTRAINT resource_assignments_project_phase_id_fkey REFERENCES project_phases (id));
CREATE INDEX ix_resource_assignments_project_phase_id ON resource_assignments (project_phase_id);

INSERT INTO projects (id, name, start_date, end_date)
SELECT md5('p' || i)::uuid, 'P' || i, date '2025-01-01' + 40 * i, date '2025-01-01' + 40 * i + 30
  FROM generate_series(0, 2) i;
INSERT INTO project_phases (id, project_id, phase_type, total_budget)
SELECT md5(t || i)::uuid, md5('p' || i)::uuid, t::phasetype, i
  FROM generate_series(0, 2) i, unnest(ARRAY['PLANNING', 'EXECUTION']) t;
-- Rows written before assignment_date exists; half of them point at the
-- phase their date does not fall in (only the archive restores that).
INSERT INTO resource_assignments (note, id, scratch, resource_id, project_id, project_phase_id)
SELECT CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN 'short' ELSE repeat('long ', 60) END,
       md5('a' || i)::uuid, i, CASE WHEN i % 4 = 0 THEN NULL ELSE md5('r' || i)::uuid END,
       md5('p' || i % 3)::uuid, md5(CASE WHEN i % 2 = 0 THEN 'PLANNING' ELSE 'EXECUTION' END || i % 3)::uuid
  FROM generate_series(1, 24) i;
ALTER TABLE resource_assignments DROP COLUMN scratch;
ALTER TABLE resource_assignments ADD COLUMN assignment_date date NOT NULL DEFAULT '2025-01-05';
-- Rows with their date stored, on both sides of each project's midpoint.
INSERT INTO resource_assignments (note, id, resource_id, project_id, project_phase_id, assignment_date)
SELECT CASE WHEN i % 2 = 0 THEN 'x' END, md5('b' || i)::uuid, md5('r' || i)::uuid, md5('p' || i % 3)::uuid,
       md5('EXECUTION' || i % 3)::uuid, date '2025-01-01' + 40 * (i % 3) + 3 * (i % 10)
  FROM generate_series(1, 30) i;
CREATE TEMP TABLE kept AS SELECT id, project_id, project_phase_id, assignment_date FROM resource_assignments;
SELECT count(*) FILTER (WHERE attmissingval IS NOT NULL) AS stored_defaults
  FROM pg_attribute WHERE attrelid = 'resource_assignments'::regclass AND attname = 'assignment_date';

SELECT phasemig_upgrade('lay') -> 'assignments';
-- What the scan read, against SQL: every date and project as stored.
SELECT count(*) AS assignments,
       count(*) FILTER (WHERE EXISTS (SELECT FROM project_phases p WHERE p.project_id = a.project_id
                                       AND a.assignment_date BETWEEN p.start_date AND p.end_date)) AS matched
  FROM resource_assignments a;
SELECT count(*) AS archived,
       count(*) FILTER (WHERE k.id IS NOT NULL) AS same_values
  FROM phasemig_archived_assignments x
  LEFT JOIN kept k ON k.id::text = x.assignment_id AND k.project_id::text = x.project_id
                  AND k.assignment_date = x.assignment_date AND k.project_phase_id::text = x.project_phase_id;
SELECT check_no, check_name, passed, detail FROM phasemig_verify('lay') WHERE check_no = 9;

SELECT phasemig_downgrade('lay') -> 'assignments';
SELECT count(*) AS assignments, count(*) FILTER (WHERE a.project_phase_id = k.project_phase_id) AS phase_restored
  FROM resource_assignments a JOIN kept k USING (id);
SELECT count(*) AS checks, count(*) FILTER (WHERE passed) AS passed FROM phasemig_verify('lay');

-- The upgrade reads resource_assignments, which it holds exclusively, once:
-- with phasemig.direct_reads = on (by default only for a table larger than a
-- quarter of shared_buffers), straight from the table's files (scan.cpp,
-- DirectPages), a page VACUUM marked all-visible with all its line pointers,
-- any other page through shared buffers under the snapshot.  Rows deleted,
-- and old versions of rows updated, since the VACUUM must not be archived;
-- no live row missed.
CREATE EXTENSION IF NOT EXISTS pg_visibility WITH SCHEMA public;
-- VACUUM marks no page all-visible while the inserting commit's WAL may be
-- unflushed (the test clusters run with synchronous_commit = off).
SET synchronous_commit = on;
SET phasemig.direct_reads = on;
INSERT INTO resource_assignments (note, id, resource_id, project_id, project_phase_id, assignment_date)
SELECT repeat('n', 200), md5('c' || i)::uuid, NULL, md5('p' || i % 3)::uuid,
       md5('PLANNING' || i % 3)::uuid, date '2025-01-01' + 40 * (i % 3) + i % 31
  FROM generate_series(1, 3000) i;
VACUUM (FREEZE) resource_assignments;
-- What the rows will be, taken before the changes below: a scan would prune
-- their pages, and the dead versions must still be there for the upgrade.
CREATE TEMP TABLE kept_now AS SELECT id, project_id, project_phase_id, assignment_date FROM resource_assignments;
DELETE FROM kept_now WHERE id IN (SELECT md5('c' || i)::uuid FROM generate_series(1000, 1100) i);
UPDATE kept_now SET assignment_date = assignment_date + 1
 WHERE id IN (SELECT md5('c' || i)::uuid FROM generate_series(2000, 2040) i);
DELETE FROM resource_assignments WHERE id IN (SELECT md5('c' || i)::uuid FROM generate_series(1000, 1100) i);
UPDATE resource_assignments SET assignment_date = assignment_date + 1
 WHERE id IN (SELECT md5('c' || i)::uuid FROM generate_series(2000, 2040) i);
SELECT all_visible > 0 AS some_pages_all_visible,
       all_visible < pg_relation_size('resource_assignments') / 8192 AS some_pages_not
  FROM pg_visibility_map_summary('resource_assignments');
SELECT phasemig_upgrade('lay') -> 'assignments';
SELECT (SELECT count(*) FROM kept_now) AS rows, count(*) AS archived,
       count(*) FILTER (WHERE k.id IS NOT NULL) AS same_values
  FROM phasemig_archived_assignments x
  LEFT JOIN kept_now k ON k.id::text = x.assignment_id AND k.project_id::text = x.project_id
                      AND k.assignment_date = x.assignment_date AND k.project_phase_id::text = x.project_phase_id;
SELECT phasemig_downgrade('lay') -> 'assignments';
SELECT count(*) AS assignments, count(*) FILTER (WHERE a.project_phase_id = k.project_phase_id) AS phase_restored
  FROM resource_assignments a JOIN kept_now k USING (id);
DROP EXTENSION pg_visibility;
RESET synchronous_commit;
RESET phasemig.direct_reads;

DROP SCHEMA lay CASCADE;
