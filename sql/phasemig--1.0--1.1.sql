/* phasemig 1.0 -> 1.1: verification for schedulers, and progress */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION phasemig UPDATE TO '1.1'" to load this file. \quit

-- Runs phasemig_verify, records it in phasemig_verify_history, and raises an
-- error naming the failing checks when any fails (so a pg_cron run shows as
-- failed); otherwise returns the number of checks passed.
CREATE FUNCTION @extschema@.phasemig_assert(target_schema text DEFAULT 'public')
RETURNS integer
AS 'MODULE_PATHNAME', 'phasemig_assert'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

-- Steps in progress in other sessions: a running upgrade, downgrade or verify
-- reports its stage (and rows done in long stages) as its query text.
CREATE VIEW @extschema@.phasemig_progress AS
SELECT a.pid,
       a.usename,
       a.datname,
       m[1] AS step,
       m[2] AS target_schema,
       m[5] AS stage,
       m[3]::integer AS stage_no,
       m[4]::integer AS stages,
       m[6]::bigint AS rows_done,
       m[7]::bigint AS rows_total,
       pg_catalog.now() OPERATOR(pg_catalog.-) a.query_start AS running_for
  FROM pg_catalog.pg_stat_activity a,
       LATERAL pg_catalog.regexp_match(a.query,
           '^phasemig (upgrade|downgrade|verify) of schema "(.*)": stage ([0-9]+)/([0-9]+) ([a-z_]+)(?:, ([0-9]+) of ([0-9]+) rows)?$') m
 WHERE m IS NOT NULL AND a.state OPERATOR(pg_catalog.=) 'active'
   AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid();
