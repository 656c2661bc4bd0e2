/* phasemig 1.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION phasemig" to load this file. \quit

-- ---------------------------------------------------------------------------
-- State kept by phasemig.  These are configuration tables: pg_dump dumps
-- their rows, so a restored database can still be migrated back exactly.
-- Only the extension's owner may touch them; the functions write them on the
-- caller's behalf after checking the caller's rights on the target tables.
-- ---------------------------------------------------------------------------

-- One row per upgrade or downgrade that committed: who, when, what it
-- started from (row counts and budget sums: the baseline verify compares with).
CREATE TABLE @extschema@.phasemig_run (
    run_id               bigserial PRIMARY KEY,
    target_schema        text NOT NULL,
    step                 text NOT NULL CHECK (step IN ('upgrade', 'downgrade')),
    restore              boolean NOT NULL,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz,
    performed_by         name NOT NULL,
    from_revision        text,
    to_revision          text,
    id_type              text,          -- uuid or integer: how the archive's keys read back
    projects             bigint NOT NULL,
    phases               bigint NOT NULL,
    assignments          bigint NOT NULL,
    capital              numeric,
    expense              numeric,
    total                numeric,
    budget_digest        text,         -- the per-project budget sums, hashed: survives a purge of the archive
    archived_phases      bigint,
    archived_assignments bigint,
    archive_dropped_at   timestamptz,
    summary              jsonb
);
CREATE INDEX phasemig_run_schema_idx ON @extschema@.phasemig_run (target_schema, run_id);

-- Per phase, what the step is about to drop: phase_type (upgrade) or
-- name/dates/description (downgrade); budgets in both, the per-project baseline.
-- Written and read whole by the steps, which is why it has no index.
CREATE TABLE @extschema@.phasemig_phase_archive (
    run_id          bigint NOT NULL,
    phase_id        text NOT NULL,
    project_id      text,
    phase_type      text,
    name            text,
    start_date      date,
    end_date        date,
    description     text,
    capital_budget  numeric,
    expense_budget  numeric,
    total_budget    numeric
);

-- Per assignment, its project_phase_id at upgrade time, with the project and
-- date it had then (the restore applies only while both are unchanged).
-- Written in the table's physical order and read back in it, beside the
-- table, in one pass: no index is needed.  Ids are kept as 16-byte keys
-- (a uuid as itself; an integer id as 0...0 followed by its value with the
-- sign bit flipped), which is what the C++ core compares: no text to format
-- or parse for millions of rows.  phasemig_archived_assignments shows them
-- as the ids they are.
CREATE TABLE @extschema@.phasemig_assignment_archive (
    run_id           bigint NOT NULL,
    row_position     bigint NOT NULL,  -- ctid at the upgrade: the downgrade meets rows in this order
    assignment_key   uuid NOT NULL,
    project_key      uuid,
    assignment_date  date,
    phase_key        uuid NOT NULL
);

-- Definitions of the dropped columns (type, NOT NULL, default, collation,
-- comment) and of the indexes and constraints that went with them.
CREATE TABLE @extschema@.phasemig_object_archive (
    object_no    bigserial PRIMARY KEY,
    run_id       bigint NOT NULL,
    table_name   text NOT NULL,
    column_name  text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('column', 'index', 'constraint')),
    name         text NOT NULL,
    definition   text,
    type         text,
    not_null     boolean NOT NULL DEFAULT false,
    default_expr text,
    collation_name text,
    comment      text,
    validated    boolean NOT NULL DEFAULT true
);
CREATE INDEX phasemig_object_archive_run_idx ON @extschema@.phasemig_object_archive (run_id);

-- One row per phasemig_verify call: the trail a pg_cron job leaves.
CREATE TABLE @extschema@.phasemig_verify_history (
    verify_id      bigserial PRIMARY KEY,
    verified_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    performed_by   name NOT NULL DEFAULT session_user,
    target_schema  text NOT NULL,
    state          text NOT NULL,
    passed         boolean NOT NULL,
    checks         integer NOT NULL,
    checks_passed  integer NOT NULL,
    checks_failed  integer NOT NULL,
    failed_checks  text[] NOT NULL,
    result         jsonb NOT NULL
);
CREATE INDEX phasemig_verify_history_schema_idx ON @extschema@.phasemig_verify_history (target_schema, verified_at);

-- The assignment archive with its keys as the ids they are.
CREATE FUNCTION @extschema@._phasemig_key_text(key uuid, id_type text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN id_type = 'uuid' THEN key::text
                ELSE (('x' || substr(replace(key::text, '-', ''), 17, 16))::bit(64)::bigint
                      # (-9223372036854775807 - 1))::text END
$$;

CREATE VIEW @extschema@.phasemig_archived_assignments AS
SELECT a.run_id, a.row_position,
       @extschema@._phasemig_key_text(a.assignment_key, r.id_type) AS assignment_id,
       @extschema@._phasemig_key_text(a.project_key, r.id_type) AS project_id,
       a.assignment_date,
       @extschema@._phasemig_key_text(a.phase_key, r.id_type) AS project_phase_id
  FROM @extschema@.phasemig_assignment_archive a
  JOIN @extschema@.phasemig_run r ON r.run_id OPERATOR(pg_catalog.=) a.run_id;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_run', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_run_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_phase_archive', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_assignment_archive', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_object_archive', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_object_archive_object_no_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_verify_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_verify_history_verify_id_seq', '');

REVOKE ALL ON TABLE @extschema@.phasemig_run, @extschema@.phasemig_phase_archive,
    @extschema@.phasemig_assignment_archive, @extschema@.phasemig_object_archive,
    @extschema@.phasemig_verify_history, @extschema@.phasemig_archived_assignments FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Functions.  Each step pins search_path: every object it uses is
-- schema-qualified, and look-alikes in the caller's path are never picked up.
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.phasemig_status(target_schema text DEFAULT 'public')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'phasemig_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.phasemig_preflight(target_schema text DEFAULT 'public')
RETURNS TABLE (severity text, code text, message text, count bigint, sample text)
AS 'MODULE_PATHNAME', 'phasemig_preflight'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.phasemig_upgrade(target_schema text DEFAULT 'public', dry_run boolean DEFAULT false,
                                             restore boolean DEFAULT true)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'phasemig_upgrade'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.phasemig_downgrade(target_schema text DEFAULT 'public', dry_run boolean DEFAULT false,
                                               restore boolean DEFAULT true)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'phasemig_downgrade'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.phasemig_verify(target_schema text DEFAULT 'public')
RETURNS TABLE (check_no integer, check_name text, passed boolean, detail text)
AS 'MODULE_PATHNAME', 'phasemig_verify'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

-- Per row, so no SET clause (it would cost a GUC save and restore on every
-- call); it runs no SQL and reads the catalog by OID only.
CREATE FUNCTION @extschema@.phasemig_phase_for(project_id anyelement, on_date date, target_schema text DEFAULT 'public')
RETURNS anyelement
AS 'MODULE_PATHNAME', 'phasemig_phase_for'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.phasemig_purge_archive(target_schema text DEFAULT 'public')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'phasemig_purge_archive'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

-- Internal: the USING clauses of the ALTER TABLE statements a step runs.  They
-- answer only while that step is running (a per-step token must match), so
-- they stay executable by the roles that may run a step.
CREATE FUNCTION @extschema@._phasemig_fill_text(id anyelement, field integer, token bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'phasemig_fill_text'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@._phasemig_fill_date(id anyelement, field integer, token bigint)
RETURNS date
AS 'MODULE_PATHNAME', 'phasemig_fill_date'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@._phasemig_fill_assignment(result_type anyelement, project_id "any", on_date date,
                                                      assignment_id "any", row_position tid, token bigint)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'phasemig_fill_assignment'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Changing the schema is for owners of the tables; nobody else may even call it.
REVOKE ALL ON FUNCTION @extschema@.phasemig_upgrade(text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.phasemig_downgrade(text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.phasemig_purge_archive(text) FROM PUBLIC;
