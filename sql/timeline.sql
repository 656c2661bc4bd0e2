-- The general k-phase split (SPEC §2): order by type, created_at, id;
-- boundaries b_i = s + floor(i*d/k); names with " 2", " 3" for repeats;
-- phase_type matched case-insensitively (varchar variant).
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;
SELECT pm_legacy_schema('tl', 'bigint', 'varchar');
SET search_path = tl, public;

INSERT INTO projects VALUES
  (1, 'two phases, d = 9',   '2025-01-01', '2025-01-10'),
  (2, 'three phases, d = 10', '2025-01-01', '2025-01-11'),
  (3, 'one phase',            '2025-03-01', '2025-03-31'),
  (4, 'd + 1 = k = 4',        '2025-05-01', '2025-05-04'),
  (5, 'no phases',            '2025-06-01', '2025-06-30'),
  (6, 'two planning, created_at ties broken by id', '2025-07-01', '2025-12-31');
INSERT INTO project_phases (id, project_id, phase_type, total_budget, created_at) VALUES
  (11, 1, 'EXECUTION', 100, '2024-01-01'), (12, 1, 'PLANNING', 50, '2024-02-01'),
  (21, 2, 'execution', 10, '2024-01-03'), (22, 2, 'Execution', 10, '2024-01-02'), (23, 2, 'planning', 10, NULL),
  (31, 3, 'EXECUTION', 7, NULL),
  (44, 4, 'EXECUTION', 1, NULL), (43, 4, 'EXECUTION', 1, NULL), (42, 4, 'PLANNING', 1, NULL), (41, 4, 'EXECUTION', 1, '2020-01-01'),
  (62, 6, 'PLANNING', 5, '2024-05-05'), (61, 6, 'PLANNING', 5, '2024-05-05'), (63, 6, 'EXECUTION', 5, NULL);
INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES
  (101, 1, 11, '2025-01-03'), (102, 1, 12, '2025-01-06'), (103, 1, 11, '2024-12-31'),
  (201, 2, 21, '2025-01-04'), (202, 2, 22, '2025-01-08'), (203, 2, 23, '2025-01-11'),
  (301, 3, 31, '2025-03-15'),
  (401, 4, 41, '2025-05-04'), (402, 4, 42, '2025-05-01');

SELECT * FROM phasemig_preflight('tl');
SELECT phasemig_upgrade('tl') - 'timings' - 'budgets' - 'revision';
SELECT project_id, id, name, start_date, end_date, end_date - start_date + 1 AS days
  FROM project_phases ORDER BY project_id, start_date;
SELECT * FROM phasemig_verify('tl') WHERE check_no IN (5, 6, 9);

-- The date rule: earliest start, then smallest id; NULL outside every phase.
SELECT a.id, a.assignment_date, phasemig_phase_for(a.project_id, a.assignment_date, 'tl') AS phase
  FROM resource_assignments a ORDER BY a.id;
SELECT phasemig_phase_for(5::bigint, '2025-06-10', 'tl') AS no_phases,
       phasemig_phase_for(99::bigint, '2025-06-10', 'tl') AS no_project,
       phasemig_phase_for(NULL::bigint, '2025-06-10', 'tl') AS null_project;
-- phase_for answers in the id type of the phases: a project id of another type is refused.
SELECT phasemig_phase_for(1, '2025-01-01', 'tl');

-- Back: phase_type restored with its original type and spelling.
SELECT phasemig_downgrade('tl') -> 'phases_by_type';
SELECT id, project_id, phase_type FROM project_phases ORDER BY id;
SELECT format_type(atttypid, atttypmod) AS phase_type_type FROM pg_attribute
 WHERE attrelid = 'tl.project_phases'::regclass AND attname = 'phase_type';
SELECT id, project_phase_id FROM resource_assignments ORDER BY id;

RESET search_path;
DROP SCHEMA tl CASCADE;
