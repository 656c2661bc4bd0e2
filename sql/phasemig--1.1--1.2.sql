/* phasemig 1.1 -> 1.2: the assignment archive packed into chunks */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION phasemig UPDATE TO '1.2'" to load this file. \quit

-- The archive kept a heap row per assignment (about 100 bytes with its
-- header); the upgrade spent most of its archive time writing them.  1.2 packs
-- a few dozen to a few hundred consecutive entries into one bytea chunk of
-- about 2 kB: each entry is stored as what differs from the one before it
-- (src/core/archive_codec.hpp).  The chunks stay under the TOAST threshold,
-- so they are stored inline and never compressed.  phasemig_archived_assignments
-- still shows one row per assignment.
DROP VIEW @extschema@.phasemig_archived_assignments;
ALTER TABLE @extschema@.phasemig_assignment_archive RENAME TO phasemig_assignment_archive_1_1;

CREATE TABLE @extschema@.phasemig_assignment_archive (
    run_id          bigint NOT NULL,
    chunk_no        integer NOT NULL,   -- 0, 1, ... per run: the order written, checked when read
    entries         integer NOT NULL,
    first_position  bigint NOT NULL,    -- ctid (block << 16 | offset) of the first and last entry
    last_position   bigint NOT NULL,
    data            bytea NOT NULL
);
ALTER TABLE @extschema@.phasemig_assignment_archive ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE FUNCTION @extschema@._phasemig_archive_entries(chunk bytea)
RETURNS TABLE(row_position bigint, assignment_key uuid, project_key uuid, assignment_date date, phase_key uuid)
AS 'MODULE_PATHNAME', 'phasemig_archive_entries'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

-- The 1.1 rows, packed run by run in the order they were written.
CREATE FUNCTION @extschema@._phasemig_pack_archive(old regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'phasemig_pack_archive'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
SELECT @extschema@._phasemig_pack_archive('@extschema@.phasemig_assignment_archive_1_1');
DROP FUNCTION @extschema@._phasemig_pack_archive(regclass);
-- Out of the extension first, so it also leaves the list pg_dump dumps.
ALTER EXTENSION phasemig DROP TABLE @extschema@.phasemig_assignment_archive_1_1;
DROP TABLE @extschema@.phasemig_assignment_archive_1_1;

CREATE VIEW @extschema@.phasemig_archived_assignments AS
SELECT a.run_id, e.row_position,
       @extschema@._phasemig_key_text(e.assignment_key, r.id_type) AS assignment_id,
       @extschema@._phasemig_key_text(e.project_key, r.id_type) AS project_id,
       e.assignment_date,
       @extschema@._phasemig_key_text(e.phase_key, r.id_type) AS project_phase_id
  FROM @extschema@.phasemig_assignment_archive a
  JOIN @extschema@.phasemig_run r ON r.run_id OPERATOR(pg_catalog.=) a.run_id,
       LATERAL @extschema@._phasemig_archive_entries(a.data) e;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.phasemig_assignment_archive', '');
REVOKE ALL ON TABLE @extschema@.phasemig_assignment_archive, @extschema@.phasemig_archived_assignments FROM PUBLIC;

-- The downgrade fills project_phase_id in its own rewrite of
-- resource_assignments (no USING clause any more).
DROP FUNCTION @extschema@._phasemig_fill_assignment(anyelement, "any", date, "any", tid, bigint);
