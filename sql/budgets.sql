-- Verify's budget check (SPEC §4 check 7): sums overall and per project
-- against the baseline the upgrade recorded, exact for any numeric: large,
-- negative, fractional, NULL, and values with more decimals than the fixed
-- point phasemig sums in (those are compared in SQL instead).
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;
SELECT pm_legacy_schema('bu');
ALTER TABLE bu.project_phases ALTER COLUMN capital_budget TYPE numeric, ALTER COLUMN expense_budget TYPE numeric;
INSERT INTO bu.projects VALUES (1, 'A', '2025-01-01', '2025-01-31'), (2, 'B', '2025-02-01', '2025-02-28'),
                               (3, 'C', '2025-03-01', '2025-03-31');
INSERT INTO bu.project_phases (id, project_id, phase_type, capital_budget, expense_budget, total_budget) VALUES
  (11, 1, 'PLANNING', 123456789012.345678, -5.5, 9999999999999.99),
  (12, 1, 'EXECUTION', 0.000001, 5.50, -0.01),
  (21, 2, 'PLANNING', NULL, NULL, NULL),
  (22, 2, 'EXECUTION', 1e20, 2.5e-3, 0),
  (31, 3, 'EXECUTION', 1, 2, 3);
SELECT phasemig_upgrade('bu') -> 'budgets';
SELECT passed, detail FROM phasemig_verify('bu') WHERE check_no = 7;
SELECT sum(capital_budget) AS capital, sum(expense_budget) AS expense, sum(total_budget) AS total FROM bu.project_phases;

-- Moving budget between phases of one project keeps the per-project sums.
UPDATE bu.project_phases SET total_budget = total_budget - 1 WHERE id = 11;
UPDATE bu.project_phases SET total_budget = total_budget + 1 WHERE id = 12;
SELECT passed, detail FROM phasemig_verify('bu') WHERE check_no = 7;
-- Moving it between projects keeps the overall sums only: both projects named.
UPDATE bu.project_phases SET capital_budget = capital_budget - 1 WHERE id = 31;
UPDATE bu.project_phases SET capital_budget = 1 WHERE id = 21;
SELECT passed, detail FROM phasemig_verify('bu') WHERE check_no = 7;
UPDATE bu.project_phases SET capital_budget = 1 WHERE id = 31;
UPDATE bu.project_phases SET capital_budget = NULL WHERE id = 21;
SELECT passed FROM phasemig_verify('bu') WHERE check_no = 7;

-- A seventh decimal is beyond the fixed point: the sums are then compared in SQL.
UPDATE bu.project_phases SET expense_budget = expense_budget + 0.0000001 WHERE id = 22;
SELECT passed, detail FROM phasemig_verify('bu') WHERE check_no = 7;
UPDATE bu.project_phases SET expense_budget = expense_budget - 0.0000001 WHERE id = 22;
SELECT passed, detail FROM phasemig_verify('bu') WHERE check_no = 7;

-- A project whose phases lie apart in the table (an updated row is stored
-- elsewhere) is still one project to checks 5 and 7: a duplicate name made
-- by an update is found, and so is budget moved to another project.
UPDATE bu.project_phases SET name = 'Planning' WHERE id = 12;
UPDATE bu.project_phases SET description = 'moved' WHERE id = 22;
SELECT ctid, id, project_id, name FROM bu.project_phases ORDER BY ctid;
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no IN (5, 7);
UPDATE bu.project_phases SET name = 'Execution' WHERE id = 12;
UPDATE bu.project_phases SET total_budget = total_budget + 7 WHERE id = 22;
UPDATE bu.project_phases SET total_budget = total_budget - 7 WHERE id = 31;
SELECT ctid, id, project_id, name FROM bu.project_phases ORDER BY ctid;
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no IN (5, 7);
UPDATE bu.project_phases SET total_budget = total_budget - 7 WHERE id = 22;
UPDATE bu.project_phases SET total_budget = total_budget + 7 WHERE id = 31;
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no IN (5, 7);

-- The downgrade records its own baseline; the legacy state compares with it.
SELECT phasemig_downgrade('bu') -> 'budgets';
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no IN (6, 7);
UPDATE bu.project_phases SET total_budget = 1 WHERE id = 31;
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no = 6;
UPDATE bu.project_phases SET total_budget = 3 WHERE id = 31;
-- Projects whose legacy phases lie apart are summed whole as well.
UPDATE bu.project_phases SET total_budget = total_budget + 1 WHERE id = 11;
UPDATE bu.project_phases SET total_budget = total_budget - 1 WHERE id = 22;
SELECT ctid, id, project_id FROM bu.project_phases ORDER BY ctid;
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no = 6;
UPDATE bu.project_phases SET total_budget = total_budget - 1 WHERE id = 11;
UPDATE bu.project_phases SET total_budget = total_budget + 1 WHERE id = 22;
SELECT ctid, id, project_id FROM bu.project_phases ORDER BY ctid;
SELECT check_no, passed, detail FROM phasemig_verify('bu') WHERE check_no = 6;

DROP SCHEMA bu CASCADE;

-- Sums are kept in cents while every value has at most two decimals (the
-- usual numeric(15,2)), and in the wide fixed point from the first value
-- that does not fit, earlier projects included: the baseline of one form
-- and a verify in the other compare equal when the sums are.
SELECT pm_legacy_schema('bn');
ALTER TABLE bn.project_phases ALTER COLUMN capital_budget TYPE numeric;
INSERT INTO bn.projects SELECT i, 'P' || i, '2025-01-01', '2025-01-31' FROM generate_series(1, 4) i;
INSERT INTO bn.project_phases (id, project_id, phase_type, capital_budget, expense_budget, total_budget)
SELECT 10 * i + k, i, (CASE k WHEN 1 THEN 'PLANNING' ELSE 'EXECUTION' END)::bn.phasetype, 1000.25 * i + k, 0.5 * k, NULL
  FROM generate_series(1, 4) i, generate_series(1, 2) k;
SELECT phasemig_upgrade('bn') -> 'budgets';
SELECT passed, detail FROM phasemig_verify('bn') WHERE check_no = 7;
-- A third decimal in the last project, its sum unchanged: verify widens
-- after three projects in cents.
UPDATE bn.project_phases SET capital_budget = capital_budget + 0.001 WHERE id = 41;
UPDATE bn.project_phases SET capital_budget = capital_budget - 0.001 WHERE id = 42;
SELECT passed, detail FROM phasemig_verify('bn') WHERE check_no = 7;
-- The same third decimal moved to another project: both are named.
UPDATE bn.project_phases SET capital_budget = capital_budget + 0.001 WHERE id = 42;
UPDATE bn.project_phases SET capital_budget = capital_budget - 0.001 WHERE id = 11;
SELECT passed, detail FROM phasemig_verify('bn') WHERE check_no = 7;
-- Beyond 64 bits of cents: wide as well.
UPDATE bn.project_phases SET capital_budget = capital_budget + 1e17 WHERE id = 21;
UPDATE bn.project_phases SET capital_budget = capital_budget - 1e17 WHERE id = 22;
UPDATE bn.project_phases SET capital_budget = capital_budget + 0.001 WHERE id = 11;
UPDATE bn.project_phases SET capital_budget = capital_budget - 0.001 WHERE id = 42;
SELECT passed, detail FROM phasemig_verify('bn') WHERE check_no = 7;
-- Check 5 compares names within each run of one project's phases as it
-- scans (here a new project's two phases, inserted together), and the
-- projects met in more than one run over all their phases again (above).
INSERT INTO bn.projects VALUES (5, 'P5', '2025-01-01', '2025-01-31');
INSERT INTO bn.project_phases (id, project_id, name, start_date, end_date) VALUES
  (51, 5, 'Build', '2025-01-01', '2025-01-15'), (52, 5, 'Build', '2025-01-16', '2025-01-31');
SELECT check_no, passed, detail FROM phasemig_verify('bn') WHERE check_no = 5;
DROP SCHEMA bn CASCADE;

-- Phases in no order by project (every second phase inserted after all
-- first ones): check 5 compares every project's names after a second scan.
SELECT pm_legacy_schema('nm');
INSERT INTO nm.projects SELECT i, 'P' || i, '2025-01-01', '2025-12-31' FROM generate_series(1, 200) i;
INSERT INTO nm.project_phases (id, project_id, phase_type)
SELECT 10 * i + 1, i, 'PLANNING' FROM generate_series(1, 200) i;
INSERT INTO nm.project_phases (id, project_id, phase_type)
SELECT 10 * i + 2, i, 'EXECUTION' FROM generate_series(1, 200) i;
SELECT phasemig_upgrade('nm') -> 'phases_by_name';
SELECT check_no, passed, detail FROM phasemig_verify('nm') WHERE check_no = 5;
UPDATE nm.project_phases SET name = 'Planning' WHERE id IN (72, 1002);
SELECT check_no, passed, detail FROM phasemig_verify('nm') WHERE check_no = 5;
DROP SCHEMA nm CASCADE;
