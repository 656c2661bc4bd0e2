-- Real databases differ (SPEC §1): integer ids, phase_type as varchar, a
-- schema whose name needs quoting, extra columns, indexes, constraints,
-- defaults, comments, triggers and foreign keys pointing at these tables.
-- All of it survives the round trip exactly.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;

SELECT pm_legacy_schema('Odd "Name"', 'integer', 'varchar');
SET search_path = "Odd ""Name""", public;
ALTER TABLE projects ADD COLUMN budget_owner text DEFAULT 'finance';
ALTER TABLE project_phases ADD COLUMN notes text, ALTER COLUMN phase_type SET DEFAULT 'PLANNING',
  ADD CONSTRAINT phase_type_known CHECK (upper(phase_type) IN ('PLANNING', 'EXECUTION'));
COMMENT ON COLUMN project_phases.phase_type IS 'fixed phase kind';
CREATE UNIQUE INDEX ux_phase_per_type ON project_phases (project_id, phase_type);
ALTER TABLE resource_assignments DROP CONSTRAINT resource_assignments_project_phase_id_fkey,
  ADD CONSTRAINT resource_assignments_project_phase_id_fkey FOREIGN KEY (project_phase_id)
      REFERENCES project_phases (id) ON DELETE CASCADE;
CREATE INDEX ix_assignment_project_phase ON resource_assignments (project_id, project_phase_id);
CREATE TABLE actuals (id serial PRIMARY KEY, assignment_id integer REFERENCES resource_assignments (id), hours numeric);
CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION audit_ra() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (what) VALUES (TG_OP); RETURN NEW; END $$;
CREATE TRIGGER ra_audit AFTER INSERT OR UPDATE ON resource_assignments FOR EACH ROW EXECUTE FUNCTION audit_ra();
CREATE VIEW project_list AS SELECT id, name FROM projects;

INSERT INTO projects (id, name, start_date, end_date) VALUES (1, 'A', '2025-01-01', '2025-01-31'), (2, 'B', '2025-02-01', '2025-03-31');
INSERT INTO project_phases (id, project_id, phase_type, total_budget) VALUES
  (11, 1, 'PLANNING', 1), (12, 1, 'EXECUTION', 2), (21, 2, 'Execution', 3);
INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES
  (101, 1, 11, '2025-01-02'), (102, 1, 12, '2025-01-20'), (201, 2, 21, '2025-04-01');
INSERT INTO actuals (assignment_id, hours) VALUES (101, 8), (201, 4);
TRUNCATE audit;
CREATE TEMP TABLE before AS SELECT * FROM pm_fingerprint('Odd "Name"');

SELECT * FROM phasemig_preflight('Odd "Name"');
SELECT phasemig_upgrade('Odd "Name"') -> 'assignments';
SELECT * FROM phasemig_verify('Odd "Name"');
\d project_phases
\d resource_assignments
SELECT kind, table_name, column_name, name, definition FROM phasemig_object_archive ORDER BY object_no;
SELECT p.name, phasemig_phase_for(a.project_id, a.assignment_date, 'Odd "Name"') AS phase
  FROM resource_assignments a JOIN projects p ON p.id = a.project_id ORDER BY a.id;

SELECT phasemig_downgrade('Odd "Name"') -> 'assignments';
SELECT * FROM phasemig_verify('Odd "Name"');
SELECT b.part, b.fingerprint = a.fingerprint AS identical
  FROM before b JOIN pm_fingerprint('Odd "Name"') a USING (part) ORDER BY b.part;
SELECT col_description('project_phases'::regclass, attnum) AS phase_type_comment
  FROM pg_attribute WHERE attrelid = 'project_phases'::regclass AND attname = 'phase_type';
-- The rewrite fired no trigger; the data around the tables is untouched.
SELECT count(*) AS audit_rows FROM audit;
SELECT * FROM actuals ORDER BY id;
SELECT * FROM project_list ORDER BY id;

-- A view on a column a step drops would be lost: preflight says so, the step refuses.
CREATE VIEW phase_kinds AS SELECT id, phase_type FROM project_phases;
SELECT severity, code, sample FROM phasemig_preflight('Odd "Name"') WHERE severity = 'error';
SELECT phasemig_upgrade('Odd "Name"');
DROP VIEW phase_kinds;

RESET search_path;
DROP SCHEMA "Odd ""Name""" CASCADE;
