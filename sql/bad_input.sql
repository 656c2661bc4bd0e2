-- SPEC §6, bad input: every case ends in a correct result or a clean error
-- with a fitting SQLSTATE (never XX000) that names what is wrong, and
-- nothing of the database is changed.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;

-- A legacy schema without the usual constraints, so bad data can get in.
SELECT pm_legacy_schema('bad', 'bigint', 'varchar');
ALTER TABLE bad.projects ALTER COLUMN start_date DROP NOT NULL, ALTER COLUMN end_date DROP NOT NULL,
  DROP CONSTRAINT projects_check;
ALTER TABLE bad.project_phases ALTER COLUMN phase_type DROP NOT NULL;
ALTER TABLE bad.resource_assignments DROP CONSTRAINT resource_assignments_project_id_fkey;
INSERT INTO bad.projects VALUES (1, 'fine', '2025-01-01', '2025-01-31');
INSERT INTO bad.project_phases (id, project_id, phase_type) VALUES (11, 1, 'PLANNING'), (12, 1, 'EXECUTION');
INSERT INTO bad.resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES (101, 1, 11, '2025-01-05');

-- Unknown phase_type values, NULL among them (matched case-insensitively: 'execution' is fine).
INSERT INTO bad.projects VALUES (2, 'odd types', '2025-02-01', '2025-02-28');
INSERT INTO bad.project_phases (id, project_id, phase_type) VALUES (21, 2, 'Design'), (22, 2, NULL), (23, 2, 'execution');
SELECT severity, code, message, count, sample FROM phasemig_preflight('bad') WHERE severity = 'error';
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade('bad')$$);
DELETE FROM bad.project_phases WHERE project_id = 2;
DELETE FROM bad.projects WHERE id = 2;

-- NULL, reversed and too short project dates (more phases than days).
INSERT INTO bad.projects VALUES (3, 'no end', '2025-03-01', NULL), (4, 'reversed', '2025-04-30', '2025-04-01'),
                                (5, 'two days, three phases', '2025-05-01', '2025-05-02');
INSERT INTO bad.project_phases (id, project_id, phase_type) VALUES
  (31, 3, 'PLANNING'), (41, 4, 'PLANNING'), (51, 5, 'PLANNING'), (52, 5, 'EXECUTION'), (53, 5, 'EXECUTION');
SELECT severity, code, message, count, sample FROM phasemig_preflight('bad') WHERE severity = 'error';
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade('bad')$$);
DELETE FROM bad.project_phases WHERE project_id IN (3, 4, 5);
DELETE FROM bad.projects WHERE id IN (3, 4, 5);

-- Infinite dates are refused like NULL ones.
UPDATE bad.projects SET end_date = 'infinity' WHERE id = 1;
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade('bad')$$);
UPDATE bad.projects SET end_date = '2025-01-31' WHERE id = 1;

-- Assignments without a project: archived on the way up; on the way down
-- they cannot get a phase, and the downgrade names their project and refuses.
INSERT INTO bad.resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES (901, 99, 11, '2025-01-05');
SELECT phasemig_upgrade('bad') -> 'assignments';
SELECT severity, code, message, count, sample FROM phasemig_preflight('bad') WHERE severity = 'error';
SELECT * FROM pm_try('bad', $$SELECT phasemig_downgrade('bad')$$);
-- A project with assignments but no phases: the same.
DELETE FROM bad.resource_assignments WHERE id = 901;
INSERT INTO bad.projects VALUES (6, 'no phases', '2025-06-01', '2025-06-30');
INSERT INTO bad.resource_assignments (id, project_id, assignment_date) VALUES (601, 6, '2025-06-02');
SELECT * FROM pm_try('bad', $$SELECT phasemig_downgrade('bad')$$);
SELECT phasemig_status('bad') ->> 'state' AS still;
DELETE FROM bad.resource_assignments WHERE id = 601;

-- Overlapping phases made by users: the earliest start wins, with a warning in preflight.
INSERT INTO bad.project_phases (id, project_id, name, start_date, end_date) VALUES (13, 1, 'Overlap', '2025-01-03', '2025-01-20');
SELECT code, count, sample FROM phasemig_preflight('bad');
SELECT phasemig_downgrade('bad') -> 'phases_by_type';
SELECT id, phase_type FROM bad.project_phases ORDER BY id;

-- Missing tables and columns.
ALTER TABLE bad.resource_assignments RENAME COLUMN assignment_date TO assigned_on;
SELECT severity, code, message FROM phasemig_preflight('bad');
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade('bad')$$);
ALTER TABLE bad.resource_assignments RENAME COLUMN assigned_on TO assignment_date;
ALTER TABLE bad.projects RENAME TO projects_old;
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade('bad')$$);
SELECT * FROM phasemig_verify('bad');
ALTER TABLE bad.projects_old RENAME TO projects;

-- Unsupported types: text ids, timestamp dates.
CREATE SCHEMA bad_types;
CREATE TABLE bad_types.projects (id text PRIMARY KEY, start_date timestamp, end_date timestamp);
CREATE TABLE bad_types.project_phases (id text PRIMARY KEY, project_id text, phase_type text);
CREATE TABLE bad_types.resource_assignments (id text PRIMARY KEY, project_id text, project_phase_id text, assignment_date date);
SELECT severity, code, message FROM phasemig_preflight('bad_types');
SELECT * FROM pm_try('bad_types', $$SELECT phasemig_upgrade('bad_types')$$);

-- Arguments: NULL schema, a schema name that is SQL.
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade(NULL)$$);
SELECT * FROM pm_try('bad', $$SELECT phasemig_upgrade('bad"; DROP TABLE bad.projects; --')$$);
SELECT count(*) AS projects_still_there FROM bad.projects;

DROP SCHEMA bad, bad_types CASCADE;
