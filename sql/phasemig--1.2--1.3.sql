/* phasemig 1.2 -> 1.3: the phase archive packed into chunks */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION phasemig UPDATE TO '1.3'" to load this file. \quit

-- The phase archive kept a heap row per phase, its ids as text (about 160
-- bytes with its header): writing and reading it was a tenth of an upgrade
-- and of a downgrade.  1.3 packs consecutive phases into one bytea chunk of
-- about 2 kB, as 1.2 did for the assignments (src/core/phase_archive_codec.hpp).
-- phasemig_archived_phases shows one row per phase, with the old columns.
ALTER TABLE @extschema@.phasemig_phase_archive RENAME TO phasemig_phase_archive_1_2;

CREATE TABLE @extschema@.phasemig_phase_archive (
    run_id    bigint NOT NULL,
    chunk_no  integer NOT NULL,   -- 0, 1, ... per run: the order written, checked when read
    entries   integer NOT NULL,
    data      bytea NOT NULL
);
ALTER TABLE @extschema@.phasemig_phase_archive ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE FUNCTION @extschema@._phasemig_phase_entries(chunk bytea)
RETURNS TABLE(phase_id text, project_id text, phase_type text, name text, start_date date, end_date date,
              description text, capital_budget numeric, expense_budget numeric, total_budget numeric)
AS 'MODULE_PATHNAME', 'phasemig_phase_entries'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

-- The 1.2 rows, packed run by run in the order they were written.
CREATE FUNCTION @extschema@._phasemig_pack_phase_archive(old regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'phasemig_pack_phase_archive'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
SELECT @extschema@._phasemig_pack_phase_archive('@extschema@.phasemig_phase_archive_1_2');
DROP FUNCTION @extschema@._phasemig_pack_phase_archive(regclass);
-- Out of the extension first, so it also leaves the list pg_dump dumps.
ALTER EXTENSION phasemig DROP TABLE @extschema@.phasemig_phase_archive_1_2;
DROP TABLE @extschema@.phasemig_phase_archive_1_2;

-- Per phase, what a step dropped: phase_type (upgrade) or name, dates and
-- description (downgrade); budgets in both, the per-project baseline.
CREATE VIEW @extschema@.phasemig_archived_phases AS
SELECT a.run_id, e.phase_id, e.project_id, e.phase_type, e.name, e.start_date, e.end_date, e.description,
       e.capital_budget, e.expense_budget, e.total_budget
  FROM @extschema@.phasemig_phase_archive a,
       LATERAL @extschema@._phasemig_phase_entries(a.data) e;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_phase_archive', '');
REVOKE ALL ON TABLE @extschema@.phasemig_phase_archive, @extschema@.phasemig_archived_phases FROM PUBLIC;
