-- Privileges and a hostile search_path (SPEC §6): a caller without the
-- rights gets 42501 and nothing changes; the owner of the tables may migrate
-- without superuser; look-alike objects earlier in search_path are never used.
\set ECHO none
\i test/regress/fixture.sql
\set ECHO all
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS phasemig CASCADE;
DROP ROLE IF EXISTS pm_owner;
DROP ROLE IF EXISTS pm_intruder;
DROP ROLE IF EXISTS pm_monitor;
RESET client_min_messages;
CREATE EXTENSION phasemig;

CREATE ROLE pm_owner;
CREATE ROLE pm_intruder;
CREATE ROLE pm_monitor;
SELECT pm_legacy_schema('sec');
ALTER SCHEMA sec OWNER TO pm_owner;
ALTER TABLE sec.projects OWNER TO pm_owner;
ALTER TABLE sec.project_phases OWNER TO pm_owner;
ALTER TABLE sec.resource_assignments OWNER TO pm_owner;
ALTER TABLE sec.alembic_version OWNER TO pm_owner;
ALTER TYPE sec.phasetype OWNER TO pm_owner;
GRANT USAGE ON SCHEMA sec TO pm_intruder, pm_monitor;
GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA sec TO pm_intruder;
GRANT SELECT ON sec.projects, sec.project_phases, sec.resource_assignments TO pm_monitor;
INSERT INTO sec.projects VALUES (1, 'A', '2025-01-01', '2025-01-31');
INSERT INTO sec.project_phases (id, project_id, phase_type, total_budget) VALUES (11, 1, 'PLANNING', 1), (12, 1, 'EXECUTION', 2);
INSERT INTO sec.resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES (101, 1, 12, '2025-01-02');

-- The steps are not executable by PUBLIC.
SELECT p.proname, has_function_privilege('pm_intruder', p.oid, 'EXECUTE') AS intruder_may_call
  FROM pg_proc p JOIN pg_extension e ON e.extname = 'phasemig'
  JOIN pg_depend d ON d.objid = p.oid AND d.refobjid = e.oid AND d.deptype = 'e'
 ORDER BY 1;
SET ROLE pm_intruder;
SELECT * FROM pm_try('sec', $$SELECT phasemig_upgrade('sec')$$);
RESET ROLE;

-- Granted EXECUTE, a role that does not own the tables is still refused.
GRANT EXECUTE ON FUNCTION phasemig_upgrade(text, boolean, boolean), phasemig_downgrade(text, boolean, boolean)
   TO pm_intruder, pm_owner;
SET ROLE pm_intruder;
SELECT * FROM pm_try('sec', $$SELECT phasemig_upgrade('sec')$$);
SELECT * FROM pm_try('sec', $$SELECT * FROM phasemig_assignment_archive$$);
RESET ROLE;

-- The owner of the tables migrates, without superuser and without rights on
-- phasemig's own tables: phasemig keeps its records as the extension owner.
SET ROLE pm_owner;
SELECT phasemig_upgrade('sec') -> 'assignments';
SELECT * FROM pm_try('sec', $$SELECT count(*) FROM phasemig_run$$);
RESET ROLE;
SELECT run_id, step, performed_by FROM phasemig_run;

-- A monitoring role with SELECT on the tables verifies; without it, 42501.
SET ROLE pm_monitor;
SELECT check_no, passed FROM phasemig_verify('sec') WHERE check_no IN (6, 9);
RESET ROLE;
REVOKE SELECT ON sec.resource_assignments FROM pm_monitor;
SET ROLE pm_monitor;
SELECT * FROM phasemig_verify('sec');
RESET ROLE;

-- A hostile search_path: look-alike functions, operators and tables in a
-- schema searched before pg_catalog, all of which would leave a trace.
CREATE SCHEMA evil;
CREATE TABLE evil.trace (what text);
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.trace VALUES ('lower'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION evil.upper(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.trace VALUES ('upper'); RETURN pg_catalog.upper($1); END $$;
CREATE FUNCTION evil.btrim(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.trace VALUES ('btrim'); RETURN pg_catalog.btrim($1); END $$;
CREATE FUNCTION evil.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.trace VALUES ('='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq);
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.trace VALUES ('text ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE TABLE evil.projects (id bigint);
CREATE TABLE evil.project_phases (id bigint);
CREATE TABLE evil.phasemig_run (run_id bigint);
CREATE TEMP TABLE resource_assignments (id bigint);
GRANT ALL ON SCHEMA evil TO PUBLIC;
GRANT ALL ON ALL TABLES IN SCHEMA evil TO PUBLIC;
SET search_path = evil, pg_catalog, public;

SELECT phasemig_downgrade('sec') -> 'assignments';
SELECT check_no, passed FROM phasemig_verify('sec') WHERE NOT passed;
SELECT phasemig_upgrade('sec') -> 'assignments';
SELECT check_no, passed FROM phasemig_verify('sec') WHERE NOT passed;
SELECT phasemig_phase_for(1::bigint, '2025-01-20', 'sec') AS phase;
SELECT count(*) AS preflight_rows FROM phasemig_preflight('sec');
SELECT phasemig_status('sec') ->> 'state' AS state;
SELECT phasemig_assert('sec');
SELECT count(*) AS traces FROM evil.trace;
SELECT count(*) AS evil_runs FROM evil.phasemig_run;
RESET search_path;

DROP SCHEMA sec, evil CASCADE;
DROP OWNED BY pm_owner, pm_intruder, pm_monitor;
DROP ROLE pm_owner;
DROP ROLE pm_intruder;
DROP ROLE pm_monitor;
