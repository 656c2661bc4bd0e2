-- User edits after the upgrade (renames, descriptions, moved boundaries,
-- added and removed phases, overlaps, new and moved assignments), the
-- downgrade's date rule with the archive, and edits surviving the round trip.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;
SELECT pm_legacy_schema('ed');
SET search_path = ed, public;
INSERT INTO projects VALUES (1, 'A', '2025-01-01', '2025-01-31'), (2, 'B', '2025-02-01', '2025-02-28'),
                            (3, 'C', '2025-03-01', '2025-03-31');
INSERT INTO project_phases (id, project_id, phase_type, total_budget) VALUES
  (11, 1, 'PLANNING', 10), (12, 1, 'EXECUTION', 20),
  (21, 2, 'PLANNING', 30), (22, 2, 'EXECUTION', 40),
  (31, 3, 'PLANNING', 50), (32, 3, 'EXECUTION', 60);
-- 104 sits in Planning's dates but points at Execution: only the archive knows.
INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES
  (101, 1, 11, '2025-01-02'), (102, 1, 12, '2025-01-20'), (103, 1, 12, '2024-12-01'), (104, 1, 12, '2025-01-03'),
  (201, 2, 21, '2025-02-02'), (202, 2, 22, '2025-02-25'),
  (301, 3, 31, '2025-03-02'), (302, 3, 32, '2025-03-30');
CREATE TEMP TABLE before AS SELECT * FROM pm_fingerprint('ed');
SELECT phasemig_upgrade('ed') -> 'assignments';

-- The users' edits.
-- A: rename, describe, move the boundary.
UPDATE project_phases SET name = 'Discovery', description = 'scoping', end_date = '2025-01-10' WHERE id = 11;
UPDATE project_phases SET name = 'Build', start_date = '2025-01-11' WHERE id = 12;
-- B: add a phase (the timeline stays continuous), and an overlap in C.
UPDATE project_phases SET end_date = '2025-02-20' WHERE id = 22;
INSERT INTO project_phases (id, project_id, name, start_date, end_date, total_budget)
VALUES (23, 2, 'Hypercare Planning', '2025-02-21', '2025-02-28', 5);
UPDATE project_phases SET end_date = '2025-03-20' WHERE id = 31;
-- New assignments, and one moved in time.
INSERT INTO resource_assignments (id, project_id, assignment_date) VALUES
  (105, 1, '2025-01-11'), (203, 2, '2025-02-22'), (303, 3, '2025-03-18'), (304, 3, '2025-04-15');
UPDATE resource_assignments SET assignment_date = '2025-02-26' WHERE id = 201;

SELECT * FROM phasemig_verify('ed');
SELECT * FROM phasemig_preflight('ed');

-- Down: unchanged assignments get their archived phase (104 keeps 12 although
-- its date is in 11's range), the others the date rule: 303 lies in both of
-- C's phases (earliest start wins), 304 in none (first phase, and the warning).
SELECT phasemig_downgrade('ed') -> 'assignments';
SELECT id, project_id, assignment_date, project_phase_id FROM resource_assignments ORDER BY id;
SELECT id, project_id, phase_type FROM project_phases ORDER BY id;
SELECT * FROM phasemig_verify('ed');

-- Up again: the edited timelines come back from the downgrade's archive.
SELECT phasemig_upgrade('ed') -> 'timelines';
SELECT id, project_id, name, start_date, end_date, description FROM project_phases ORDER BY project_id, start_date, id;

-- restore => false recomputes every timeline from the project dates.
SELECT phasemig_downgrade('ed') -> 'assignments';
SELECT phasemig_upgrade('ed', restore => false) -> 'timelines';
SELECT id, project_id, name, start_date, end_date, description FROM project_phases ORDER BY project_id, start_date, id;

-- Without edits or new rows, the round trip is exact (rows and shape).
DELETE FROM resource_assignments WHERE id IN (105, 203, 303, 304);
DELETE FROM project_phases WHERE id = 23;
UPDATE resource_assignments SET assignment_date = '2025-02-02' WHERE id = 201;
SELECT phasemig_downgrade('ed') -> 'assignments';
SELECT b.part, b.fingerprint = a.fingerprint AS identical
  FROM before b JOIN pm_fingerprint('ed') a USING (part) ORDER BY b.part;

-- A reorganized table: rows deleted and their space vacuumed, then reused by
-- new rows and by an updated row, before the archive entries of other rows.
-- The single pass cannot tell new rows from moved ones there: the downgrade
-- reads the assignments twice, and every row still gets its rule.
SELECT phasemig_upgrade('ed') -> 'assignments';
DELETE FROM resource_assignments WHERE id IN (101, 102);
VACUUM ed.resource_assignments;
INSERT INTO resource_assignments (id, project_id, assignment_date) VALUES (106, 1, '2025-01-25'), (107, 1, '2025-01-05');
UPDATE resource_assignments SET resource_id = NULL WHERE id = 302;
SELECT s -> 'assignments' AS assignments, s -> 'assignment_passes' AS passes FROM phasemig_downgrade('ed') s;
SELECT id, project_id, assignment_date, project_phase_id FROM resource_assignments ORDER BY id;

-- Untouched since the upgrade: one pass.
SELECT phasemig_upgrade('ed') -> 'assignments';
SELECT s -> 'assignments' AS assignments, s -> 'assignment_passes' AS passes FROM phasemig_downgrade('ed') s;

RESET search_path;
DROP SCHEMA ed CASCADE;
