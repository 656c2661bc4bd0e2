-- The steps rewrite resource_assignments and project_phases themselves
-- (src/pg/rewrite.cpp, the way ALTER TABLE rewrites a table): what a table
-- holds beyond the migrated columns comes back byte for byte, values stored
-- out of line (TOAST) included, and the relation stays the same object.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;
SELECT pm_legacy_schema('rw');
SET search_path = rw, public;
-- Out-of-line values (compressed and not), a stored generated column, a
-- column dropped long ago, a CHECK constraint, grants and a comment.
ALTER TABLE resource_assignments ADD COLUMN notes text, ADD COLUMN scratch int,
  ADD COLUMN week int GENERATED ALWAYS AS (extract(week FROM assignment_date)::int) STORED,
  ADD CONSTRAINT allocation_range CHECK (allocation_percentage BETWEEN 0 AND 100);
ALTER TABLE resource_assignments DROP COLUMN scratch;
ALTER TABLE project_phases ADD COLUMN notes text;
COMMENT ON TABLE resource_assignments IS 'who works when';
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pm_rw_reader') THEN CREATE ROLE pm_rw_reader; END IF;
END $$;
GRANT SELECT ON resource_assignments, project_phases TO pm_rw_reader;
INSERT INTO projects VALUES (1, 'A', '2025-01-01', '2025-03-31'), (2, 'B', '2025-02-01', '2025-02-28');
INSERT INTO project_phases (id, project_id, phase_type, total_budget, notes) VALUES
  (11, 1, 'PLANNING', 1, repeat('plan ', 5000)), (12, 1, 'EXECUTION', 2, NULL), (21, 2, 'EXECUTION', 3, 'short');
-- md5 chains: 20 kB that do not compress, stored out of line as they are.
INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date, allocation_percentage, notes)
SELECT i, 1 + i % 2, CASE WHEN i % 2 = 1 THEN 21 WHEN i % 4 = 0 THEN 11 ELSE 12 END,
       DATE '2025-02-01' + i % 28, i % 100,
       CASE i % 3 WHEN 0 THEN (SELECT string_agg(md5(i::text || g::text), '') FROM generate_series(1, 640) g)
                  WHEN 1 THEN repeat('x', 30000) ELSE 'note ' || i END
  FROM generate_series(1, 300) i;
CREATE TEMP TABLE before AS SELECT * FROM pm_fingerprint('rw');
CREATE TEMP TABLE ids AS
SELECT c.relname, c.oid, c.relfilenode, c.reltoastrelid <> 0 AS has_toast
  FROM pg_class c WHERE c.relnamespace = 'rw'::regnamespace AND c.relname IN ('project_phases', 'resource_assignments');
SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'resource_assignments'::regclass AND attname = 'notes';
SELECT count(*) FILTER (WHERE pg_column_size(notes) < octet_length(notes)) AS compressed,
       count(*) FILTER (WHERE octet_length(notes) > 2000) AS long_values
  FROM resource_assignments;

SELECT phasemig_upgrade('rw') -> 'assignments';
SELECT check_no, passed FROM phasemig_verify('rw') WHERE NOT passed;
SELECT phasemig_downgrade('rw') -> 'assignments';
SELECT check_no, passed, detail FROM phasemig_verify('rw') WHERE NOT passed;

-- The same relations (OIDs), rewritten (new files), every row and the whole
-- shape as before, the out-of-line values readable.
SELECT c.relname, c.oid = i.oid AS same_oid, c.relfilenode <> i.relfilenode AS rewritten,
       (c.reltoastrelid <> 0) = i.has_toast AS toast_kept
  FROM pg_class c JOIN ids i USING (relname) WHERE c.relnamespace = 'rw'::regnamespace ORDER BY 1;
SELECT b.part, b.fingerprint = a.fingerprint AS identical
  FROM before b JOIN pm_fingerprint('rw') a USING (part) ORDER BY b.part;
SELECT sum(octet_length(notes)) AS note_bytes, count(DISTINCT md5(notes)) AS distinct_notes,
       count(*) FILTER (WHERE week = extract(week FROM assignment_date)) AS generated_ok
  FROM resource_assignments;
-- project_phase_id: NOT NULL, no default left behind, no stored missing
-- value (the placeholder the column was added with).
SELECT a.attname, a.attnotnull, a.atthasdef, a.atthasmissing
  FROM pg_attribute a WHERE a.attrelid IN ('resource_assignments'::regclass, 'project_phases'::regclass)
   AND a.attname IN ('project_phase_id', 'phase_type') ORDER BY 1;
SELECT relname, has_table_privilege('pm_rw_reader', c.oid, 'SELECT') AS reader_may_select,
       obj_description(c.oid, 'pg_class') AS comment
  FROM pg_class c WHERE c.relnamespace = 'rw'::regnamespace AND relname IN ('project_phases', 'resource_assignments')
 ORDER BY 1;

-- Row versions the rewrite must tell apart: one whose update was rolled
-- back (its xmax is an aborted transaction), and rows changed, deleted and
-- added in the step's own transaction; all as SQL sees them, after commit too.
BEGIN;
UPDATE resource_assignments SET notes = 'rolled back' WHERE id = 3;
ROLLBACK;
SELECT phasemig_upgrade('rw') -> 'assignments';
BEGIN;
UPDATE resource_assignments SET notes = 'same transaction', assignment_date = '2025-02-27' WHERE id = 4;
DELETE FROM resource_assignments WHERE id = 5;
INSERT INTO resource_assignments (id, project_id, assignment_date, notes) VALUES (301, 2, '2025-02-03', 'new');
SELECT phasemig_downgrade('rw') -> 'assignments';
SELECT id, project_phase_id, assignment_date, left(notes, 16) AS notes FROM resource_assignments
 WHERE id IN (3, 4, 5, 301) ORDER BY id;
COMMIT;
SELECT id, project_phase_id, assignment_date, left(notes, 16) AS notes FROM resource_assignments
 WHERE id IN (3, 4, 5, 301) ORDER BY id;
SELECT count(*) AS rows FROM resource_assignments;
SELECT check_no, passed FROM phasemig_verify('rw') WHERE NOT passed;
DELETE FROM resource_assignments WHERE id = 301;

-- An unlogged table stays unlogged.
ALTER TABLE resource_assignments SET UNLOGGED;
SELECT phasemig_upgrade('rw') -> 'assignments';
SELECT phasemig_downgrade('rw') -> 'assignments';
SELECT relname, relpersistence FROM pg_class WHERE oid = 'resource_assignments'::regclass;
SELECT count(*) AS rows, count(DISTINCT md5(notes)) AS distinct_notes FROM resource_assignments;

-- Column types the upgrade's own rewrite does not produce (set by the user
-- on the upgraded model, archived by the downgrade, restored by the next
-- upgrade) go through ALTER TABLE ... USING, which casts as SQL does.
SELECT phasemig_upgrade('rw') -> 'timelines';
CREATE DOMAIN rw.phase_label AS varchar(40) CHECK (VALUE <> '');
ALTER TABLE project_phases ALTER COLUMN name TYPE rw.phase_label, ALTER COLUMN description TYPE text;
UPDATE project_phases SET description = 'kick-off' WHERE id = 11;
SELECT phasemig_downgrade('rw') -> 'assignments';
SELECT phasemig_upgrade('rw') -> 'timelines';
SELECT id, name, description, start_date, end_date, pg_typeof(name) AS name_type,
       pg_typeof(description) AS description_type
  FROM project_phases ORDER BY id;
SELECT check_no, passed FROM phasemig_verify('rw') WHERE NOT passed;
-- text columns: the own rewrite again.
ALTER TABLE project_phases ALTER COLUMN name TYPE text;
SELECT phasemig_downgrade('rw') -> 'assignments';
SELECT phasemig_upgrade('rw') -> 'timelines';
SELECT id, name, description, pg_typeof(name) AS name_type, pg_typeof(description) AS description_type
  FROM project_phases ORDER BY id;
SELECT phasemig_downgrade('rw') -> 'assignments';

-- The phase foreign key comes back validated without a second scan: the
-- rewrite wrote only ids it read from project_phases under lock.  It is
-- enforced from then on.  A key of another shape (here a composite one
-- restored from the archive) is validated by PostgreSQL's own scan.
SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'resource_assignments'::regclass AND contype = 'f' ORDER BY conname;
SELECT phasemig_upgrade('rw') -> 'assignments';
SELECT phasemig_downgrade('rw') -> 'phase_fk_validation' AS phase_fk_validation;
SELECT conname, convalidated FROM pg_constraint
 WHERE conrelid = 'resource_assignments'::regclass AND contype = 'f' ORDER BY conname;
SELECT check_no, passed, detail FROM phasemig_verify('rw') WHERE check_no = 3;
\set VERBOSITY terse
INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES (999, 1, 99, '2025-02-01');
\set VERBOSITY default
ALTER TABLE project_phases ADD CONSTRAINT project_phases_project_id_id_key UNIQUE (project_id, id);
ALTER TABLE resource_assignments DROP CONSTRAINT resource_assignments_project_phase_id_fkey,
  ADD CONSTRAINT resource_assignments_project_phase_id_fkey FOREIGN KEY (project_id, project_phase_id)
      REFERENCES project_phases (project_id, id);
SELECT phasemig_upgrade('rw') -> 'assignments';
SELECT phasemig_downgrade('rw') -> 'phase_fk_validation' AS phase_fk_validation;
SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'resource_assignments'::regclass AND contype = 'f' ORDER BY conname;
-- Archived not valid, it comes back not valid, and nothing validates it.
ALTER TABLE resource_assignments DROP CONSTRAINT resource_assignments_project_phase_id_fkey,
  ADD CONSTRAINT resource_assignments_project_phase_id_fkey FOREIGN KEY (project_phase_id)
      REFERENCES project_phases (id) NOT VALID;
SELECT phasemig_upgrade('rw') -> 'assignments';
SELECT phasemig_downgrade('rw') -> 'phase_fk_validation' AS phase_fk_validation;
SELECT conname, convalidated FROM pg_constraint
 WHERE conrelid = 'resource_assignments'::regclass AND contype = 'f' ORDER BY conname;

-- NOT NULL and the date check come back proven by the upgrade's own rewrite:
-- it wrote every name and range from the plan and checked them as it wrote.
-- Both are enforced from then on.  A check of another definition (here one
-- the user changed, archived by the downgrade) is proven by ALTER TABLE's
-- scan, and so is a description the user made NOT NULL: the rewrite writes
-- NULL descriptions, which that scan refuses.
SELECT phasemig_upgrade('rw') -> 'phase_check_validation' AS phase_check_validation;
SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'project_phases'::regclass AND contype = 'c';
SELECT attname, attnotnull FROM pg_attribute
 WHERE attrelid = 'project_phases'::regclass AND attname IN ('name', 'start_date', 'end_date', 'description')
 ORDER BY attnum;
\set VERBOSITY terse
UPDATE project_phases SET start_date = end_date + 1 WHERE id = 11;
UPDATE project_phases SET name = NULL WHERE id = 11;
\set VERBOSITY default
UPDATE project_phases SET description = 'phase ' || id;
ALTER TABLE project_phases ALTER COLUMN description SET NOT NULL;
SELECT phasemig_downgrade('rw') -> 'assignments';
\set VERBOSITY terse
SELECT phasemig_upgrade('rw', restore => false) -> 'phase_check_validation' AS phase_check_validation;
\set VERBOSITY default
SELECT phasemig_upgrade('rw') -> 'phase_check_validation' AS phase_check_validation;
SELECT id, description FROM project_phases ORDER BY id;
ALTER TABLE project_phases ALTER COLUMN description DROP NOT NULL,
  DROP CONSTRAINT check_phase_dates,
  ADD CONSTRAINT check_phase_dates CHECK (start_date <= end_date AND end_date < DATE '2100-01-01');
SELECT phasemig_downgrade('rw') -> 'assignments';
SELECT phasemig_upgrade('rw') -> 'phase_check_validation' AS phase_check_validation;
SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'project_phases'::regclass AND contype = 'c';
SELECT phasemig_downgrade('rw') -> 'assignments';

RESET search_path;
DROP SCHEMA rw CASCADE;
DROP ROLE pm_rw_reader;
