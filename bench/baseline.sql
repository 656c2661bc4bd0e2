-- bench/baseline.sql: the plain-SQL reference implementation of SPEC §2-§4.
--
--   psql -v ON_ERROR_STOP=1 -f bench/baseline.sql
--   SELECT phasemig_ref.upgrade('public');            -- SPEC §2, returns a jsonb summary
--   SELECT * FROM phasemig_ref.verify('public');      -- SPEC §4, the nine upgraded-state checks
--   SELECT phasemig_ref.downgrade('public');          -- SPEC §3, returns a jsonb summary
--   SELECT phasemig_ref.forget('public');             -- drop its archives/baseline for a schema
--
-- It is the benchmark's baseline and an independent cross-check of the
-- extension: set-based PL/pgSQL only (window functions, UPDATE ... FROM,
-- INSERT/CREATE TABLE ... AS SELECT, dynamic SQL with format('%I')); no loop
-- over phases or assignments anywhere.
--
-- State of its own lives in schema phasemig_ref:
--   phasemig_ref.state              one row per target schema: archive tag,
--                                   archived phase_type column type, times
--   phasemig_ref.<tag>_up_phase     upgrade archive: (id, project_id, phase_type text)
--   phasemig_ref.<tag>_up_assign    upgrade archive: (id, project_id, assignment_date, project_phase_id)
--   phasemig_ref.<tag>_baseline     budgets per project at upgrade (for verify check 7)
--   phasemig_ref.<tag>_dn_phase     downgrade archive: (id, project_id, name, start_date, end_date, description)
-- where <tag> = 'a' || first 16 hex digits of md5(target_schema).  Archive
-- tables are created with CREATE TABLE AS, so their id columns have the
-- target's own id types (uuid, bigint, integer ...).  Each step replaces the
-- archive it writes.
--
-- Decisions where the SPEC leaves room are listed in bench/README-helper.md.

CREATE SCHEMA IF NOT EXISTS phasemig_ref;

CREATE TABLE IF NOT EXISTS phasemig_ref.state (
    target_schema    text PRIMARY KEY,
    tag              text NOT NULL UNIQUE,
    phase_type_type  text,          -- format_type() of the archived phase_type column, schema-qualified
    upgraded_at      timestamptz,
    downgraded_at    timestamptz
);

-- --------------------------------------------------------------- helpers

CREATE OR REPLACE FUNCTION phasemig_ref._tag(target_schema text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'a' || substr(md5($1), 1, 16) $$;

-- column present (not dropped)?
CREATE OR REPLACE FUNCTION phasemig_ref._has_col(rel regclass, col text)
RETURNS boolean LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                     WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped) $$;

-- format_type() of a column, schema-qualified (search_path is pg_catalog only)
CREATE OR REPLACE FUNCTION phasemig_ref._col_type(rel regclass, col text)
RETURNS text LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute
      WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped $$;

-- the three application tables of a schema; clear errors when absent
CREATE OR REPLACE FUNCTION phasemig_ref._tables(target_schema text,
    OUT projects regclass, OUT phases regclass, OUT assignments regclass, OUT alembic regclass)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF target_schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = target_schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', target_schema USING ERRCODE = 'invalid_schema_name';
    END IF;
    projects    := pg_catalog.to_regclass(format('%I.%I', target_schema, 'projects'));
    phases      := pg_catalog.to_regclass(format('%I.%I', target_schema, 'project_phases'));
    assignments := pg_catalog.to_regclass(format('%I.%I', target_schema, 'resource_assignments'));
    alembic     := pg_catalog.to_regclass(format('%I.%I', target_schema, 'alembic_version'));
    IF projects IS NULL OR phases IS NULL OR assignments IS NULL THEN
        RAISE EXCEPTION 'table %.% does not exist', quote_ident(target_schema),
            CASE WHEN projects IS NULL THEN 'projects' WHEN phases IS NULL THEN 'project_phases'
                 ELSE 'resource_assignments' END
            USING ERRCODE = 'undefined_table';
    END IF;
END
$fn$;

-- alembic_version, if the table exists, must hold exactly the expected revision
CREATE OR REPLACE FUNCTION phasemig_ref._check_alembic(alembic regclass, expected text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE v text[];
BEGIN
    IF alembic IS NULL THEN RETURN; END IF;
    EXECUTE format('SELECT array_agg(version_num::text ORDER BY 1) FROM %s', alembic) INTO v;
    IF v IS NOT NULL AND v <> ARRAY[expected] THEN
        RAISE EXCEPTION 'alembic_version holds revision %, expected %',
            array_to_string(v, ', '), expected
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The application''s migration chain would break.';
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION phasemig_ref._ms(t timestamptz)
RETURNS numeric LANGUAGE sql VOLATILE
AS $$ SELECT round((extract(epoch FROM pg_catalog.clock_timestamp() - $1) * 1000)::numeric, 1) $$;

-- drop this reference's archives, baseline and state row for a schema (call it
-- when the target tables were re-created: an archive of an earlier incarnation
-- whose ids happen to match would otherwise be "restored")
CREATE OR REPLACE FUNCTION phasemig_ref.forget(target_schema text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $fn$
DECLARE tag text := phasemig_ref._tag(target_schema);
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS phasemig_ref.%I, phasemig_ref.%I, phasemig_ref.%I, phasemig_ref.%I',
                   tag || '_up_phase', tag || '_up_assign', tag || '_baseline', tag || '_dn_phase');
    DELETE FROM phasemig_ref.state st WHERE st.target_schema = forget.target_schema;
END
$fn$;

-- ================================================================ upgrade

CREATE OR REPLACE FUNCTION phasemig_ref.upgrade(target_schema text DEFAULT 'public',
                                                restore boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
SET work_mem = '256MB'
SET enable_nestloop = off
AS $fn$
DECLARE
    s     text := target_schema;
    tb    record;
    pr regclass; pp regclass; ra regclass;
    tag   text := phasemig_ref._tag(target_schema);
    a_upp text; a_upa text; a_bl text; a_dn text;   -- qualified archive names
    use_dn boolean;
    n     bigint;
    bad   text;
    t0    timestamptz := clock_timestamp();
    t     timestamptz;
    tm    jsonb := '{}';
    res   jsonb;
    n_assign bigint;
BEGIN
    tb := phasemig_ref._tables(s);
    pr := tb.projects; pp := tb.phases; ra := tb.assignments;
    IF NOT phasemig_ref._has_col(pp, 'phase_type') OR phasemig_ref._has_col(pp, 'name')
       OR phasemig_ref._has_col(pp, 'start_date') OR phasemig_ref._has_col(pp, 'end_date')
       OR NOT phasemig_ref._has_col(ra, 'project_phase_id') THEN
        RAISE EXCEPTION 'schema "%" is not in the legacy state', s
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Upgrade needs project_phases.phase_type and resource_assignments.project_phase_id, and no project_phases.name/start_date/end_date.';
    END IF;
    PERFORM phasemig_ref._check_alembic(tb.alembic, '976e6adbac6f');

    EXECUTE format('LOCK TABLE %s, %s IN ACCESS EXCLUSIVE MODE', pp, ra);
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', pr);

    a_upp := format('phasemig_ref.%I', tag || '_up_phase');
    a_upa := format('phasemig_ref.%I', tag || '_up_assign');
    a_bl  := format('phasemig_ref.%I', tag || '_baseline');
    a_dn  := format('phasemig_ref.%I', tag || '_dn_phase');
    use_dn := coalesce(restore, true) AND to_regclass(a_dn) IS NOT NULL;

    -- 1. unknown phase_type values
    t := clock_timestamp();
    EXECUTE format($q$SELECT count(*), string_agg(v, ', ') FROM (
                        SELECT DISTINCT coalesce(quote_literal(phase_type::text), 'NULL') AS v FROM %s
                        WHERE phase_type IS NULL OR lower(phase_type::text) NOT IN ('planning', 'execution')
                        ORDER BY 1 LIMIT 10) x$q$, pp) INTO n, bad;
    IF n > 0 THEN
        RAISE EXCEPTION 'project_phases.phase_type holds values other than PLANNING and EXECUTION'
            USING ERRCODE = 'data_exception', DETAIL = format('Unknown values: %s.', bad);
    END IF;

    -- 2. new values of every phase: restored from the downgrade archive when it
    --    holds all current phases of the project (same id, same project), else
    --    computed: order (PLANNING first, created_at NULLS LAST, id), boundaries
    --    b_i = s + floor(i*d/k).  One sort serves all windows.
    DROP TABLE IF EXISTS pg_temp._pmref_new;
    EXECUTE format($q$
        CREATE TEMP TABLE _pmref_new ON COMMIT DROP AS
        WITH o AS (
            SELECT ph.id, ph.project_id,
                   CASE WHEN lower(ph.phase_type::text) = 'planning' THEN 0 ELSE 1 END AS tkey,
                   row_number() OVER (PARTITION BY ph.project_id,
                                      CASE WHEN lower(ph.phase_type::text) = 'planning' THEN 0 ELSE 1 END
                                      ORDER BY ph.created_at, ph.id) AS rn_type,
                   count(*) FILTER (WHERE lower(ph.phase_type::text) = 'planning')
                       OVER (PARTITION BY ph.project_id) AS n_plan,
                   count(*) OVER (PARTITION BY ph.project_id) AS k,
                   %3$s
            FROM %1$s ph %4$s
        ), q AS (
            SELECT o.*, p.start_date AS ps, p.end_date AS pe, (p.id IS NOT NULL) AS has_project,
                   (p.end_date - p.start_date)::bigint AS d,
                   o.rn_type + CASE WHEN o.tkey = 1 THEN o.n_plan ELSE 0 END AS i
            FROM o LEFT JOIN %2$s p ON p.id = o.project_id
        )
        SELECT id, project_id, restored, k, ps, pe, has_project,
               CASE WHEN restored THEN r_name::varchar(100)
                    ELSE (CASE tkey WHEN 0 THEN 'Planning' ELSE 'Execution' END
                          || CASE WHEN rn_type > 1 THEN ' ' || rn_type ELSE '' END)::varchar(100) END AS name,
               CASE WHEN restored THEN r_start
                    WHEN i = 1 THEN ps
                    ELSE ps + ((i - 1) * d / k)::int + 1 END AS start_date,
               CASE WHEN restored THEN r_end
                    WHEN i = k THEN pe
                    ELSE ps + (i * d / k)::int END AS end_date,
               CASE WHEN restored THEN r_desc END::varchar(500) AS description
        FROM q
        $q$, pp, pr,
        CASE WHEN use_dn THEN
            'bool_and(dn.id IS NOT NULL) OVER (PARTITION BY ph.project_id) AS restored,
             dn.name AS r_name, dn.start_date AS r_start, dn.end_date AS r_end, dn.description AS r_desc'
        ELSE
            'false AS restored, NULL::text AS r_name, NULL::date AS r_start, NULL::date AS r_end,
             NULL::text AS r_desc' END,
        CASE WHEN use_dn THEN
            format('LEFT JOIN %s dn ON dn.id = ph.id AND dn.project_id = ph.project_id', a_dn)
        ELSE '' END);
    ANALYZE pg_temp._pmref_new;
    tm := tm || jsonb_build_object('compute_ms', phasemig_ref._ms(t));

    -- 3. projects whose timeline cannot be computed
    SELECT count(*), string_agg(x, ', ' ORDER BY x) FILTER (WHERE rn <= 10) INTO n, bad FROM (
        SELECT x, row_number() OVER (ORDER BY x) AS rn FROM (
            SELECT DISTINCT project_id::text AS x FROM pg_temp._pmref_new
            WHERE NOT restored
              AND (NOT has_project OR ps IS NULL OR pe IS NULL OR pe - ps + 1 < k)) y) z;
    IF n > 0 THEN
        RAISE EXCEPTION 'cannot compute phase dates for % project(s)', n
            USING ERRCODE = 'data_exception',
                  DETAIL = format('A project with k phases needs start_date and end_date with end_date - start_date + 1 >= k. Projects: %s%s.',
                                  bad, CASE WHEN n > 10 THEN ', ...' ELSE '' END);
    END IF;

    -- 4. baseline (budgets per project) and archives
    t := clock_timestamp();
    EXECUTE format('DROP TABLE IF EXISTS %s, %s, %s', a_bl, a_upp, a_upa);
    EXECUTE format($q$CREATE TABLE %s AS
        SELECT project_id, count(*) AS n_phases, sum(capital_budget) AS capital,
               sum(expense_budget) AS expense, sum(total_budget) AS total
        FROM %s GROUP BY project_id$q$, a_bl, pp);
    EXECUTE format('CREATE TABLE %s AS SELECT id, project_id, phase_type::text AS phase_type FROM %s',
                   a_upp, pp);
    EXECUTE format($q$CREATE TABLE %s AS
        SELECT id, project_id, assignment_date, project_phase_id FROM %s$q$, a_upa, ra);
    GET DIAGNOSTICS n_assign = ROW_COUNT;
    EXECUTE format('ANALYZE %s, %s', a_upp, a_upa);
    INSERT INTO phasemig_ref.state AS st (target_schema, tag, phase_type_type, upgraded_at)
    VALUES (s, tag, phasemig_ref._col_type(pp, 'phase_type'), now())
    ON CONFLICT ON CONSTRAINT state_pkey DO UPDATE
        SET phase_type_type = excluded.phase_type_type, upgraded_at = excluded.upgraded_at;
    tm := tm || jsonb_build_object('archive_ms', phasemig_ref._ms(t));

    -- 5. project_phases: new columns, filled by one UPDATE ... FROM, then the
    --    NOT NULLs, the check and the drop of phase_type in one ALTER (one scan)
    t := clock_timestamp();
    EXECUTE format('ALTER TABLE %s ADD COLUMN name varchar(100), ADD COLUMN start_date date,'
                   ' ADD COLUMN end_date date, ADD COLUMN description varchar(500)', pp);
    EXECUTE format($q$UPDATE %s t SET name = n.name, start_date = n.start_date,
                          end_date = n.end_date, description = n.description
                      FROM pg_temp._pmref_new n WHERE t.id = n.id$q$, pp);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN name SET NOT NULL, ALTER COLUMN start_date SET NOT NULL,'
                   ' ALTER COLUMN end_date SET NOT NULL,'
                   ' ADD CONSTRAINT check_phase_dates CHECK (start_date <= end_date),'
                   ' DROP COLUMN phase_type', pp);
    tm := tm || jsonb_build_object('phases_ms', phasemig_ref._ms(t));
    t := clock_timestamp();
    EXECUTE format('CREATE INDEX ix_project_phases_start_date ON %s (start_date)', pp);
    EXECUTE format('CREATE INDEX ix_project_phases_end_date ON %s (end_date)', pp);
    tm := tm || jsonb_build_object('indexes_ms', phasemig_ref._ms(t));

    -- 6. resource_assignments: drop project_phase_id with its FK and index
    t := clock_timestamp();
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS resource_assignments_project_phase_id_fkey', ra);
    EXECUTE format('DROP INDEX IF EXISTS %I.ix_resource_assignments_project_phase_id', s);
    EXECUTE format('ALTER TABLE %s DROP COLUMN project_phase_id', ra);
    tm := tm || jsonb_build_object('assignments_ms', phasemig_ref._ms(t));

    IF tb.alembic IS NOT NULL THEN
        EXECUTE format($q$UPDATE %s SET version_num = '92023c163a26'$q$, tb.alembic);
    END IF;

    -- 7. summary
    EXECUTE format($q$
        SELECT jsonb_build_object(
            'state', 'upgraded',
            'phases', (SELECT coalesce(jsonb_object_agg(name, c), '{}') FROM
                         (SELECT name, count(*) AS c FROM pg_temp._pmref_new GROUP BY name) x),
            'phases_total', (SELECT count(*) FROM pg_temp._pmref_new),
            'projects', (SELECT count(*) FROM %1$s),
            'projects_without_phases', (SELECT count(*) FROM %1$s p
                          WHERE NOT EXISTS (SELECT 1 FROM pg_temp._pmref_new n WHERE n.project_id = p.id)),
            'projects_restored', (SELECT count(DISTINCT project_id) FROM pg_temp._pmref_new WHERE restored),
            'assignments', %3$s,
            'budgets', (SELECT jsonb_build_object('capital', sum(capital), 'expense', sum(expense),
                                                  'total', sum(total)) FROM %2$s))
        $q$, pr, a_bl, n_assign) INTO res;
    DROP TABLE pg_temp._pmref_new;
    RETURN res || jsonb_build_object('timings', tm || jsonb_build_object('total_ms', phasemig_ref._ms(t0)));
END
$fn$;

-- ============================================================== downgrade

CREATE OR REPLACE FUNCTION phasemig_ref.downgrade(target_schema text DEFAULT 'public',
                                                  restore boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
SET work_mem = '256MB'
SET enable_nestloop = off
AS $fn$
DECLARE
    s     text := target_schema;
    tb    record;
    pr regclass; pp regclass; ra regclass;
    tag   text := phasemig_ref._tag(target_schema);
    a_upp text; a_upa text; a_dn text;
    id_type text;
    pt_type text;
    archived_type text;
    use_upa boolean;
    use_upp boolean;
    n     bigint;
    bad   text;
    n_restored bigint := 0;
    n_matched  bigint := 0;
    n_outside  bigint := 0;
    t0    timestamptz := clock_timestamp();
    t     timestamptz;
    tm    jsonb := '{}';
    res   jsonb;
BEGIN
    tb := phasemig_ref._tables(s);
    pr := tb.projects; pp := tb.phases; ra := tb.assignments;
    IF phasemig_ref._has_col(pp, 'phase_type') OR NOT phasemig_ref._has_col(pp, 'name')
       OR NOT phasemig_ref._has_col(pp, 'start_date') OR NOT phasemig_ref._has_col(pp, 'end_date')
       OR phasemig_ref._has_col(ra, 'project_phase_id') THEN
        RAISE EXCEPTION 'schema "%" is not in the upgraded state', s
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Downgrade needs project_phases.name/start_date/end_date, and no project_phases.phase_type nor resource_assignments.project_phase_id.';
    END IF;
    PERFORM phasemig_ref._check_alembic(tb.alembic, '92023c163a26');

    EXECUTE format('LOCK TABLE %s, %s IN ACCESS EXCLUSIVE MODE', pp, ra);
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', pr);

    a_upp := format('phasemig_ref.%I', tag || '_up_phase');
    a_upa := format('phasemig_ref.%I', tag || '_up_assign');
    a_dn  := format('phasemig_ref.%I', tag || '_dn_phase');
    use_upa := coalesce(restore, true) AND to_regclass(a_upa) IS NOT NULL;
    use_upp := to_regclass(a_upp) IS NOT NULL;

    -- 1. a project with assignments but no phases cannot satisfy NOT NULL
    t := clock_timestamp();
    EXECUTE format($q$SELECT count(*), string_agg(x, ', ') FROM (
            SELECT DISTINCT ra.project_id::text AS x FROM %s ra
            WHERE NOT EXISTS (SELECT 1 FROM %s ph WHERE ph.project_id = ra.project_id)
            ORDER BY 1) z$q$, ra, pp) INTO n, bad;
    IF n > 0 THEN
        RAISE EXCEPTION '% project(s) have assignments but no phases', n
            USING ERRCODE = 'not_null_violation',
                  DETAIL = format('resource_assignments.project_phase_id cannot be filled for projects: %s.',
                                  array_to_string((string_to_array(bad, ', '))[1:10], ', ')
                                  || CASE WHEN n > 10 THEN ', ...' ELSE '' END),
                  HINT = 'Add a phase to each of these projects, or move their assignments.';
    END IF;
    -- reversed phase dates (possible only if check_phase_dates was dropped)
    EXECUTE format('SELECT count(*) FROM %s WHERE start_date > end_date', pp) INTO n;
    IF n > 0 THEN
        RAISE EXCEPTION '% phase(s) have start_date after end_date', n
            USING ERRCODE = 'data_exception',
                  HINT = 'Fix the phase dates; verify check 4 lists the problem.';
    END IF;
    tm := tm || jsonb_build_object('precheck_ms', phasemig_ref._ms(t));

    -- 2. archive the user's names/dates/descriptions
    t := clock_timestamp();
    EXECUTE format('DROP TABLE IF EXISTS %s', a_dn);
    EXECUTE format('CREATE TABLE %s AS SELECT id, project_id, name, start_date, end_date, %s AS description FROM %s',
                   a_dn, CASE WHEN phasemig_ref._has_col(pp, 'description') THEN 'description'
                              ELSE 'NULL::varchar(500)' END, pp);
    INSERT INTO phasemig_ref.state (target_schema, tag, downgraded_at) VALUES (s, tag, now())
    ON CONFLICT ON CONSTRAINT state_pkey DO UPDATE SET downgraded_at = excluded.downgraded_at;
    tm := tm || jsonb_build_object('archive_ms', phasemig_ref._ms(t));

    -- 3. segmentation of every project's date line into disjoint segments,
    --    each owned by one phase.  Phase j (order: start_date, id) effectively
    --    owns [max(start_j, M_j + 1), end_j], M_j = max end of the phases before
    --    it, so a date held by several phases goes to the earliest (start, id).
    --    Gaps, and everything before/after, belong to the project's first phase
    --    and are flagged "outside".
    t := clock_timestamp();
    id_type := phasemig_ref._col_type(pp, 'id');
    DROP TABLE IF EXISTS pg_temp._pmref_seg;
    EXECUTE format($q$
        CREATE TEMP TABLE _pmref_seg ON COMMIT DROP AS
        WITH ph AS (
            SELECT id, project_id, start_date, end_date,
                   max(end_date) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max,
                   first_value(id) OVER w AS first_id
            FROM %s WINDOW w AS (PARTITION BY project_id ORDER BY start_date, id)
        ), eff AS (
            SELECT project_id, id, first_id, GREATEST(start_date, prev_max + 1) AS lo, end_date AS hi
            FROM ph WHERE prev_max IS NULL OR end_date > prev_max
        ), e2 AS (
            SELECT eff.*, lag(hi) OVER w AS prev_hi, lead(lo) OVER w AS next_lo
            FROM eff WINDOW w AS (PARTITION BY project_id ORDER BY lo)
        )
        SELECT project_id, lo, hi, id AS phase_id, false AS outside FROM e2
        UNION ALL
        SELECT project_id, prev_hi + 1, lo - 1, first_id, true FROM e2
        WHERE prev_hi IS NOT NULL AND lo > prev_hi + 1
        UNION ALL
        SELECT project_id, '-infinity'::date, lo - 1, first_id, true FROM e2
        WHERE prev_hi IS NULL AND lo > '-infinity'::date
        UNION ALL
        SELECT project_id, hi + 1, 'infinity'::date, first_id, true FROM e2
        WHERE next_lo IS NULL AND hi < 'infinity'::date
        $q$, pp);
    ANALYZE pg_temp._pmref_seg;
    tm := tm || jsonb_build_object('segments_ms', phasemig_ref._ms(t));

    -- 4. project_phase_id: add, fill (archive first, then by date), constrain
    t := clock_timestamp();
    EXECUTE format('ALTER TABLE %s ADD COLUMN project_phase_id %s', ra, id_type);
    IF use_upa THEN
        EXECUTE format($q$
            UPDATE %1$s t SET project_phase_id = a.project_phase_id
            FROM %2$s a JOIN %3$s ph ON ph.id = a.project_phase_id AND ph.project_id = a.project_id
            WHERE t.id = a.id AND t.project_id = a.project_id AND t.assignment_date = a.assignment_date
            $q$, ra, a_upa, pp);
        GET DIAGNOSTICS n_restored = ROW_COUNT;
    END IF;
    tm := tm || jsonb_build_object('fill_restore_ms', phasemig_ref._ms(t));
    t := clock_timestamp();
    EXECUTE format($q$
        WITH u AS (
            UPDATE %s t SET project_phase_id = g.phase_id
            FROM pg_temp._pmref_seg g
            WHERE g.project_id = t.project_id
              AND t.assignment_date BETWEEN g.lo AND g.hi %s
            RETURNING g.outside)
        SELECT count(*) FILTER (WHERE NOT outside), count(*) FILTER (WHERE outside) FROM u
        $q$, ra, CASE WHEN use_upa AND n_restored > 0 THEN 'AND t.project_phase_id IS NULL' ELSE '' END)
        INTO n_matched, n_outside;
    tm := tm || jsonb_build_object('fill_date_ms', phasemig_ref._ms(t));

    -- 5. phase_type: type = archived one if it still resolves, else the
    --    schema's enum phasetype, else varchar; values from the upgrade archive
    --    (same id), else from the name
    t := clock_timestamp();
    SELECT st.phase_type_type INTO archived_type FROM phasemig_ref.state st WHERE st.target_schema = s;
    IF archived_type IS NOT NULL AND to_regtype(archived_type) IS NOT NULL THEN
        pt_type := archived_type;
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_namespace ns ON ns.oid = ty.typnamespace
                  WHERE ns.nspname = s AND ty.typname = 'phasetype' AND ty.typtype = 'e') THEN
        pt_type := format('%I.phasetype', s);
    ELSE
        pt_type := 'varchar';
    END IF;
    -- the check and the date indexes go first: the UPDATE below then
    -- maintains two indexes instead of four
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS check_phase_dates', pp);
    EXECUTE format('DROP INDEX IF EXISTS %1$I.ix_project_phases_start_date, %1$I.ix_project_phases_end_date', s);
    EXECUTE format('ALTER TABLE %s ADD COLUMN phase_type %s', pp, pt_type);
    EXECUTE format($q$
        UPDATE %1$s t SET phase_type = x.v::%2$s
        FROM (SELECT p.id, %3$s AS v FROM %1$s p %4$s) x
        WHERE t.id = x.id
        $q$, pp, pt_type,
        CASE WHEN use_upp THEN $c$coalesce(a.phase_type, CASE WHEN lower(p.name) LIKE '%planning%'
                                        THEN 'PLANNING' ELSE 'EXECUTION' END)$c$
             ELSE $c$CASE WHEN lower(p.name) LIKE '%planning%' THEN 'PLANNING' ELSE 'EXECUTION' END$c$ END,
        CASE WHEN use_upp THEN format('LEFT JOIN %s a ON a.id = p.id', a_upp) ELSE '' END);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN phase_type SET NOT NULL, DROP COLUMN name,'
                   ' DROP COLUMN start_date, DROP COLUMN end_date, DROP COLUMN IF EXISTS description', pp);
    tm := tm || jsonb_build_object('phases_ms', phasemig_ref._ms(t));

    -- 6. NOT NULL + FK (one ALTER: one scan + the FK's validation query), index
    t := clock_timestamp();
    EXECUTE format('ALTER TABLE %s ALTER COLUMN project_phase_id SET NOT NULL,'
                   ' ADD CONSTRAINT resource_assignments_project_phase_id_fkey'
                   ' FOREIGN KEY (project_phase_id) REFERENCES %s(id)', ra, pp);
    tm := tm || jsonb_build_object('constrain_ms', phasemig_ref._ms(t));
    t := clock_timestamp();
    EXECUTE format('CREATE INDEX ix_resource_assignments_project_phase_id ON %s (project_phase_id)', ra);
    tm := tm || jsonb_build_object('index_ms', phasemig_ref._ms(t));

    IF tb.alembic IS NOT NULL THEN
        EXECUTE format($q$UPDATE %s SET version_num = '976e6adbac6f'$q$, tb.alembic);
    END IF;

    IF n_outside > 0 THEN
        RAISE WARNING '% assignments were outside phase date ranges and assigned to first phase', n_outside;
    END IF;

    EXECUTE format($q$
        SELECT jsonb_build_object(
            'state', 'legacy',
            'phase_types', (SELECT coalesce(jsonb_object_agg(v, c), '{}') FROM
                              (SELECT phase_type::text AS v, count(*) AS c FROM %s GROUP BY 1) x),
            'phase_type_type', %L,
            'assignments', jsonb_build_object('total', %s, 'restored', %s, 'matched', %s,
                                              'outside_assigned_to_first_phase', %s))
        $q$, pp, pt_type, n_restored + n_matched + n_outside, n_restored, n_matched, n_outside) INTO res;
    DROP TABLE pg_temp._pmref_seg;
    RETURN res || jsonb_build_object('timings', tm || jsonb_build_object('total_ms', phasemig_ref._ms(t0)));
END
$fn$;

-- ================================================================= verify

CREATE OR REPLACE FUNCTION phasemig_ref.verify(target_schema text DEFAULT 'public')
RETURNS TABLE(check_no int, check_name text, passed boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
AS $fn$
DECLARE
    s     text := target_schema;
    tb    record;
    pr regclass; pp regclass; ra regclass;
    a_bl  text := format('phasemig_ref.%I', phasemig_ref._tag(target_schema) || '_baseline');
    has_name bool; has_start bool; has_end bool; cols_ok bool;
    missing text;
    n1 bigint; n2 bigint; n3 bigint; n4 bigint;
    x1 text; x2 text; x3 text;
    ok bool;
BEGIN
    tb := phasemig_ref._tables(s);
    pr := tb.projects; pp := tb.phases; ra := tb.assignments;
    has_name  := phasemig_ref._has_col(pp, 'name');
    has_start := phasemig_ref._has_col(pp, 'start_date');
    has_end   := phasemig_ref._has_col(pp, 'end_date');
    cols_ok   := has_name AND has_start AND has_end;
    missing   := concat_ws(', ', CASE WHEN NOT has_name THEN 'name' END,
                           CASE WHEN NOT has_start THEN 'start_date' END,
                           CASE WHEN NOT has_end THEN 'end_date' END);

    -- 1. required fields
    check_no := 1; check_name := 'required fields';
    IF NOT cols_ok THEN
        passed := false; detail := format('project_phases lacks column(s) %s', missing);
    ELSE
        SELECT string_agg(attname, ', ' ORDER BY attname) INTO x1 FROM pg_catalog.pg_attribute
        WHERE attrelid = pp AND attname IN ('name', 'start_date', 'end_date') AND NOT attnotnull
          AND attnum > 0 AND NOT attisdropped;
        EXECUTE format('SELECT count(*) FILTER (WHERE name IS NULL OR start_date IS NULL OR end_date IS NULL),'
                       ' count(*) FILTER (WHERE start_date > end_date) FROM %s', pp)
            INTO n1, n4;
        passed := n1 = 0 AND x1 IS NULL;
        detail := format('%s phase(s) with NULL name/start_date/end_date', n1)
                  || CASE WHEN x1 IS NULL THEN '; name, start_date, end_date are NOT NULL'
                          ELSE format('; column(s) %s nullable', x1) END;
    END IF;
    RETURN NEXT;

    -- 2. phase_type removed
    check_no := 2; check_name := 'phase_type removed';
    passed := NOT phasemig_ref._has_col(pp, 'phase_type');
    detail := CASE WHEN passed THEN 'project_phases.phase_type absent'
                   ELSE 'project_phases.phase_type still present' END;
    RETURN NEXT;

    -- 3. project_phase_id removed, with its FK and index
    check_no := 3; check_name := 'project_phase_id removed';
    x1 := concat_ws(', ',
        CASE WHEN phasemig_ref._has_col(ra, 'project_phase_id') THEN 'column project_phase_id' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                          WHERE conrelid = ra AND conname = 'resource_assignments_project_phase_id_fkey')
             THEN 'constraint resource_assignments_project_phase_id_fkey' END,
        CASE WHEN to_regclass(format('%I.ix_resource_assignments_project_phase_id', s)) IS NOT NULL
             THEN 'index ix_resource_assignments_project_phase_id' END);
    passed := x1 = '';
    detail := CASE WHEN passed THEN 'column, foreign key and index absent' ELSE 'still present: ' || x1 END;
    RETURN NEXT;

    -- 4. phase dates ordered, check_phase_dates present and validated
    check_no := 4; check_name := 'phase dates ordered';
    IF NOT cols_ok THEN
        passed := false; detail := format('project_phases lacks column(s) %s', missing);
    ELSE
        n1 := n4;   -- counted with check 1
        SELECT c.convalidated, pg_catalog.pg_get_constraintdef(c.oid) INTO ok, x1
        FROM pg_catalog.pg_constraint c
        WHERE c.conrelid = pp AND c.conname = 'check_phase_dates' AND c.contype = 'c';
        passed := n1 = 0 AND coalesce(ok, false) AND x1 = 'CHECK ((start_date <= end_date))';
        detail := format('%s phase(s) with start_date > end_date; ', n1)
                  || CASE WHEN x1 IS NULL THEN 'constraint check_phase_dates missing'
                          WHEN x1 <> 'CHECK ((start_date <= end_date))' THEN 'check_phase_dates is ' || x1
                          WHEN NOT ok THEN 'check_phase_dates not validated'
                          ELSE 'check_phase_dates present and validated' END;
    END IF;
    RETURN NEXT;

    -- 5. phase names: none blank, unique within a project; distribution
    check_no := 5; check_name := 'phase names';
    IF NOT has_name THEN
        passed := false; detail := 'project_phases lacks column name';
    ELSE
        EXECUTE format($q$
            WITH g AS (SELECT project_id, name, count(*) AS c FROM %s GROUP BY project_id, name)
            SELECT (SELECT count(*) FROM g WHERE c > 1),
                   (SELECT coalesce(sum(c), 0) FROM g WHERE btrim(name) = ''),
                   (SELECT string_agg(name || ': ' || c, ', '
                                      ORDER BY name !~ '^Planning( [0-9]+)?$', name !~ '^Execution( [0-9]+)?$',
                                               length(name), name COLLATE "C")
                    FROM (SELECT name, sum(c) AS c FROM g GROUP BY name) d)
            $q$, pp) INTO n1, n2, x1;
        passed := n1 = 0 AND n2 = 0;
        detail := coalesce(x1, 'no phases')
                  || CASE WHEN n2 > 0 THEN format('; %s blank name(s)', n2) ELSE '' END
                  || CASE WHEN n1 > 0 THEN format('; %s duplicate name(s) within a project', n1) ELSE '' END;
    END IF;
    RETURN NEXT;

    -- 6. timeline coverage: first start = project start, last end = project
    --    end, each next start = previous end + 1; projects without phases fail
    check_no := 6; check_name := 'timeline coverage';
    IF NOT (has_start AND has_end) THEN
        passed := false; detail := 'project_phases lacks start_date/end_date';
    ELSE
        EXECUTE format($q$
            WITH o AS (
                SELECT project_id, start_date, end_date,
                       lag(end_date) OVER w AS prev_end,
                       row_number() OVER w AS i, count(*) OVER (PARTITION BY project_id) AS k
                FROM %1$s WINDOW w AS (PARTITION BY project_id ORDER BY start_date, end_date, id)
            ), bad AS (
                SELECT o.project_id FROM o LEFT JOIN %2$s p ON p.id = o.project_id
                WHERE p.id IS NULL
                   OR (o.i = 1 AND o.start_date IS DISTINCT FROM p.start_date)
                   OR (o.i = o.k AND o.end_date IS DISTINCT FROM p.end_date)
                   OR (o.i > 1 AND o.start_date IS DISTINCT FROM o.prev_end + 1)
                GROUP BY o.project_id
            ), nophase AS (
                SELECT p.id FROM %2$s p WHERE NOT EXISTS (SELECT 1 FROM %1$s ph WHERE ph.project_id = p.id)
            )
            SELECT (SELECT count(*) FROM o WHERE i = 1),
                   (SELECT count(*) FROM bad),
                   (SELECT string_agg(x, ', ') FROM (SELECT project_id::text AS x FROM bad ORDER BY 1 LIMIT 5) b),
                   (SELECT count(*) FROM nophase),
                   (SELECT string_agg(x, ', ') FROM (SELECT id::text AS x FROM nophase ORDER BY 1 LIMIT 5) c)
            $q$, pp, pr) INTO n1, n2, x1, n3, x2;
        passed := n2 = 0 AND n3 = 0;
        detail := format('%s of %s project(s) with phases covered exactly', n1 - n2, n1)
                  || CASE WHEN n2 > 0 THEN format('; %s with a gap, overlap or boundary mismatch (%s%s)',
                                                  n2, x1, CASE WHEN n2 > 5 THEN ', ...' ELSE '' END) ELSE '' END
                  || CASE WHEN n3 > 0 THEN format('; %s project(s) without phases (%s%s)',
                                                  n3, x2, CASE WHEN n3 > 5 THEN ', ...' ELSE '' END) ELSE '' END;
    END IF;
    RETURN NEXT;

    -- 7. budgets preserved: overall and per project, against the baseline
    check_no := 7; check_name := 'budgets preserved';
    EXECUTE format('SELECT sum(capital_budget), sum(expense_budget), sum(total_budget) FROM %s', pp)
        INTO x1, x2, x3;
    IF to_regclass(a_bl) IS NULL THEN
        passed := NULL;
        detail := format('capital %s, expense %s, total %s; no baseline recorded for this schema',
                         coalesce(x1, '0'), coalesce(x2, '0'), coalesce(x3, '0'));
    ELSE
        EXECUTE format($q$
            WITH cur AS (SELECT project_id, sum(capital_budget) AS capital, sum(expense_budget) AS expense,
                                sum(total_budget) AS total FROM %1$s GROUP BY project_id),
                 base AS (SELECT project_id, capital, expense, total FROM %2$s),
                 diff AS ((TABLE cur EXCEPT ALL TABLE base) UNION ALL (TABLE base EXCEPT ALL TABLE cur))
            SELECT (SELECT count(DISTINCT project_id) FROM diff),
                   (SELECT ROW(sum(capital), sum(expense), sum(total)) FROM base)
                       IS NOT DISTINCT FROM (SELECT ROW(sum(capital), sum(expense), sum(total)) FROM cur)
            $q$, pp, a_bl) INTO n1, ok;
        passed := n1 = 0 AND ok;
        detail := format('capital %s, expense %s, total %s; ', coalesce(x1, '0'), coalesce(x2, '0'), coalesce(x3, '0'))
                  || CASE WHEN passed THEN 'equal to the baseline recorded at upgrade, overall and per project'
                          ELSE format('differs from the baseline recorded at upgrade (%s project(s)%s)', n1,
                                      CASE WHEN NOT ok THEN ', overall sums' ELSE '' END) END;
    END IF;
    RETURN NEXT;

    -- 8. date indexes present, valid, on the right column
    check_no := 8; check_name := 'date indexes';
    SELECT concat_ws(', ',
             CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                                     ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                                   WHERE i.indexrelid = to_regclass(format('%I.ix_project_phases_start_date', s))
                                     AND i.indrelid = pp AND i.indisvalid AND i.indnatts = 1
                                     AND a.attname = 'start_date')
                  THEN 'ix_project_phases_start_date' END,
             CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                                     ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                                   WHERE i.indexrelid = to_regclass(format('%I.ix_project_phases_end_date', s))
                                     AND i.indrelid = pp AND i.indisvalid AND i.indnatts = 1
                                     AND a.attname = 'end_date')
                  THEN 'ix_project_phases_end_date' END) INTO x1;
    passed := x1 = '';
    detail := CASE WHEN passed THEN 'ix_project_phases_start_date and ix_project_phases_end_date present and valid'
                   ELSE 'missing or invalid: ' || x1 END;
    RETURN NEXT;

    -- 9. date-based matching: each assignment in at most one phase.
    --    Sweep per project: +1 at start_date, -1 at end_date + 1; the running sum
    --    gives disjoint segments with their coverage (events on the same date
    --    give empty segments, dropped); one pass over the assignments joins
    --    each to at most one segment.
    check_no := 9; check_name := 'date-based matching';
    IF NOT (has_start AND has_end) THEN
        passed := false; detail := 'project_phases lacks start_date/end_date';
    ELSE
        EXECUTE format($q$
            WITH seg AS (
                SELECT ph.project_id, e.d AS lo, lead(e.d) OVER w - 1 AS hi,
                       sum(e.delta) OVER (w ROWS UNBOUNDED PRECEDING) AS cov
                FROM %1$s ph,
                     LATERAL (VALUES (ph.start_date, 1), (ph.end_date + 1, -1)) AS e(d, delta)
                WINDOW w AS (PARTITION BY ph.project_id ORDER BY e.d)
            )
            SELECT count(*) FILTER (WHERE g.cov = 1),
                   count(*) FILTER (WHERE g.cov IS NULL),
                   count(*) FILTER (WHERE g.cov > 1)
            FROM %2$s a LEFT JOIN (SELECT * FROM seg WHERE cov > 0 AND hi >= lo) g
              ON g.project_id = a.project_id AND a.assignment_date BETWEEN g.lo AND g.hi
            $q$, pp, ra) INTO n1, n2, n3;
        passed := n3 = 0;
        detail := format('%s matched, %s outside any phase', n1, n2)
                  || CASE WHEN n3 > 0 THEN format(', %s in more than one phase', n3) ELSE '' END;
    END IF;
    RETURN NEXT;
END
$fn$;
