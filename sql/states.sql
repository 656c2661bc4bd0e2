-- Every function in every state: absent, legacy, upgraded, mixed; calls in
-- the wrong state; alembic_version at another revision; dry runs.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
RESET client_min_messages;
CREATE EXTENSION phasemig;

-- A schema that does not exist, and one without the tables.
SELECT phasemig_status('nowhere');
SELECT * FROM phasemig_verify('nowhere');
CREATE SCHEMA empty;
SELECT phasemig_status('empty') ->> 'state' AS state, phasemig_status('empty') ->> 'detail' AS detail;
SELECT * FROM phasemig_preflight('empty');
SELECT * FROM phasemig_verify('empty');
SELECT phasemig_upgrade('empty');
SELECT phasemig_downgrade('empty');
SELECT phasemig_upgrade(NULL);

-- Legacy.
SELECT pm_legacy_schema('st');
INSERT INTO st.projects VALUES (1, 'A', '2025-01-01', '2025-01-31');
INSERT INTO st.project_phases (id, project_id, phase_type, total_budget) VALUES (11, 1, 'PLANNING', 1), (12, 1, 'EXECUTION', 2);
INSERT INTO st.resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES (101, 1, 12, '2025-01-30');
SELECT phasemig_status('st') ->> 'state' AS state;
SELECT * FROM phasemig_verify('st');
SELECT phasemig_downgrade('st');
SELECT phasemig_phase_for(1::bigint, '2025-01-01', 'st');

-- A dry run does everything, reports it, and leaves nothing behind.
CREATE TEMP TABLE before AS SELECT * FROM pm_fingerprint('st');
SELECT phasemig_upgrade('st', dry_run => true) - 'timings' - 'budgets';
SELECT b.part FROM before b JOIN pm_fingerprint('st') a USING (part) WHERE a.fingerprint <> b.fingerprint;
SELECT count(*) AS runs FROM phasemig_run;
SELECT phasemig_status('st') ->> 'state' AS state;

-- Upgraded.
SELECT phasemig_upgrade('st') -> 'assignments';
SELECT phasemig_upgrade('st');
SELECT phasemig_downgrade('st', dry_run => true) -> 'assignments';
SELECT b.part FROM before b JOIN pm_fingerprint('st') a USING (part) WHERE a.fingerprint = b.fingerprint ORDER BY 1;
SELECT phasemig_status('st') ->> 'state' AS state;

-- alembic_version at another revision: the step refuses, nothing changes.
UPDATE st.alembic_version SET version_num = 'ffffffffffff';
SELECT phasemig_downgrade('st');
SELECT severity, code, message FROM phasemig_preflight('st') WHERE severity = 'error';
INSERT INTO st.alembic_version VALUES ('92023c163a26');
SELECT phasemig_downgrade('st');
DELETE FROM st.alembic_version;
SELECT phasemig_downgrade('st') -> 'revision';
SELECT count(*) AS alembic_rows FROM st.alembic_version;
DROP TABLE st.alembic_version;
SELECT phasemig_upgrade('st') -> 'revision';
SELECT phasemig_status('st') -> 'alembic_revision' AS revision;

-- Mixed: half-migrated by hand.
ALTER TABLE st.resource_assignments ADD COLUMN project_phase_id bigint;
SELECT phasemig_status('st') ->> 'state' AS state, phasemig_status('st') ->> 'detail' AS detail;
SELECT * FROM phasemig_verify('st');
SELECT * FROM phasemig_preflight('st');
SELECT phasemig_upgrade('st');
SELECT phasemig_downgrade('st');
SELECT target_schema, state, passed, failed_checks FROM phasemig_verify_history ORDER BY verify_id;

DROP SCHEMA st, empty CASCADE;
