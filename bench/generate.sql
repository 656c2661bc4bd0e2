-- bench/generate.sql: set-based generator of legacy-revision (976e6adbac6f)
-- test data for benchmarks and property tests.
--
--   psql -v ON_ERROR_STOP=1 -f bench/generate.sql
--   SELECT phasemig_bench.phasemig_bench_generate('bench', 100000, 10);            -- uuid ids
--   SELECT phasemig_bench.phasemig_bench_generate('bench_i', 100000, 10, 'bigint');
--
-- phasemig_bench_generate(target_schema, n_projects, assignments_per_project,
--                         id_type DEFAULT 'uuid', seed DEFAULT 0.42) RETURNS jsonb
--
-- (Re)creates, in target_schema, the enum phasetype and the tables projects,
-- project_phases, resource_assignments, alembic_version exactly as in
-- test/data/seed_demo.sql (same columns, constraints and index names), with
-- ids of type uuid or bigint, and fills them:
--   * n_projects projects, ranges of d = end - start = 30..720 days;
--   * phases per project: ~85% PLANNING + EXECUTION, ~10% EXECUTION only,
--     ~3% PLANNING + EXECUTION + EXECUTION, ~2% none;  created_at distinct
--     within a project (for the 3-phase ones the second EXECUTION phase is
--     sometimes created first), so (type, created_at, id) orders strictly;
--   * budgets with capital + expense = total;
--   * exactly n_projects * assignments_per_project assignments, spread at
--     random over the projects that have phases (none for the others);
--     ~85% dated inside the project range, ~15% outside (half before the
--     start, half after the end, up to 60 days away);
--   * project_phase_id: ~90% the phase the SPEC §2 split gives for the date
--     (first phase before the start, last phase after the end), otherwise
--     another phase of the same project when there is one.
-- Everything is a function of (seed, row number): the same arguments give the
-- same database (same ids too: archives that phasemig or bench/baseline.sql
-- keep for this schema would then match and be "restored" -- this function
-- calls phasemig_ref.forget(target_schema) when it exists; clear phasemig's own
-- archives yourself).  Runs ANALYZE at the end.  Returns a jsonb of counts.

CREATE SCHEMA IF NOT EXISTS phasemig_bench;

-- uniform pseudo-random float in [0, 1) from (key, salt); immutable, inlinable
CREATE OR REPLACE FUNCTION phasemig_bench.u(key bigint, salt bigint)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT (pg_catalog.hashint8extended($1, $2) & 2147483647)::float8 / 2147483648.0 $$;

CREATE OR REPLACE FUNCTION phasemig_bench.phasemig_bench_generate(
    target_schema text,
    n_projects int,
    assignments_per_project int,
    id_type text DEFAULT 'uuid',
    seed float8 DEFAULT 0.42)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $fn$
DECLARE
    s      text := target_schema;
    k      bigint;              -- hash salt derived from seed
    ty     text;                -- id column type
    n_assign bigint := n_projects::bigint * assignments_per_project;
    n_with bigint;              -- projects with phases
    -- id expressions: %1$s = kind tag, %2$s = bigint number
    pid    text;
    t0     timestamptz := clock_timestamp();
    result jsonb;
BEGIN
    IF target_schema IS NULL OR n_projects IS NULL OR n_projects < 0
       OR assignments_per_project IS NULL OR assignments_per_project < 0 THEN
        RAISE EXCEPTION 'invalid arguments to phasemig_bench_generate';
    END IF;
    IF lower(id_type) NOT IN ('uuid', 'bigint') THEN
        RAISE EXCEPTION 'id_type must be uuid or bigint, not "%"', id_type;
    END IF;
    ty := lower(id_type);
    k  := (coalesce(seed, 0.42) * 2147483647)::bigint;

    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
    -- the tables are re-created with the same ids for the same seed: archives
    -- kept by bench/baseline.sql for this schema would then look valid
    IF to_regprocedure('phasemig_ref.forget(text)') IS NOT NULL THEN
        PERFORM phasemig_ref.forget(s);
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %1$I.resource_assignments, %1$I.project_phases,'
                   ' %1$I.projects, %1$I.alembic_version CASCADE', s);
    EXECUTE format('DROP TYPE IF EXISTS %I.phasetype CASCADE', s);
    EXECUTE format($q$CREATE TYPE %I.phasetype AS ENUM ('PLANNING', 'EXECUTION')$q$, s);

    -- Tables first without keys/indexes (added after the load: faster), but
    -- with the same final definitions and constraint names as the seed demo.
    EXECUTE format($q$
        CREATE TABLE %1$I.projects (
            id          %2$s NOT NULL,
            name        varchar(200) NOT NULL,
            start_date  date NOT NULL,
            end_date    date NOT NULL,
            created_at  timestamp,
            CONSTRAINT projects_check CHECK (start_date < end_date))
        $q$, s, ty);
    EXECUTE format($q$
        CREATE TABLE %1$I.project_phases (
            id              %2$s NOT NULL,
            project_id      %2$s NOT NULL,
            phase_type      %1$I.phasetype NOT NULL,
            capital_budget  numeric(15,2),
            expense_budget  numeric(15,2),
            total_budget    numeric(15,2),
            created_at      timestamp,
            updated_at      timestamp)
        $q$, s, ty);
    EXECUTE format($q$
        CREATE TABLE %1$I.resource_assignments (
            id                     %2$s NOT NULL,
            project_id             %2$s NOT NULL,
            resource_id            %2$s,
            project_phase_id       %2$s NOT NULL,
            assignment_date        date NOT NULL,
            allocation_percentage  numeric(5,2),
            capital_percentage     numeric(5,2),
            expense_percentage     numeric(5,2),
            created_at             timestamp)
        $q$, s, ty);
    EXECUTE format($q$
        CREATE TABLE %1$I.alembic_version (
            version_num varchar(32) NOT NULL,
            CONSTRAINT alembic_version_pkey PRIMARY KEY (version_num));
        INSERT INTO %1$I.alembic_version VALUES ('976e6adbac6f')
        $q$, s);

    -- id expression for a (tag, number) pair
    IF ty = 'uuid' THEN
        pid := $q$md5(%L || ':' || %s || ':' || %s)::uuid$q$;
    ELSE
        pid := NULL;
    END IF;

    -- ---------------------------------------------------------------- projects
    -- helper: one row per project with its shape (no = 1..n_projects)
    --   nph: 0, 1, 2 or 3 phases; d = end - start in 30..720
    CREATE TEMP TABLE _gen_p ON COMMIT DROP AS
    SELECT no,
           date '2018-01-01' + floor(phasemig_bench.u(no, k + 1) * 2500)::int AS start_date,
           30 + floor(phasemig_bench.u(no, k + 2) * 691)::int                 AS d,
           CASE WHEN phasemig_bench.u(no, k + 3) < 0.02 THEN 0
                WHEN phasemig_bench.u(no, k + 3) < 0.05 THEN 3
                WHEN phasemig_bench.u(no, k + 3) < 0.15 THEN 1
                ELSE 2 END                                                AS nph,
           phasemig_bench.u(no, k + 4) < 0.5                              AS swap3
    FROM generate_series(1, n_projects) AS no;
    ALTER TABLE _gen_p ADD COLUMN pid_rank int;   -- rank among projects with phases
    UPDATE _gen_p g SET pid_rank = r.rk
    FROM (SELECT no, row_number() OVER (ORDER BY no) AS rk FROM _gen_p WHERE nph > 0) r
    WHERE g.no = r.no;
    ANALYZE _gen_p;

    EXECUTE format($q$
        INSERT INTO %1$I.projects (id, name, start_date, end_date, created_at)
        SELECT %2$s, 'Project ' || no, start_date, start_date + d,
               timestamp '2017-06-01' + no * interval '1 minute'
        FROM _gen_p ORDER BY no
        $q$, s,
        CASE WHEN ty = 'uuid' THEN format(pid, 'p' || k, 'no', '0') ELSE 'no::bigint' END);

    -- ------------------------------------------------------------------ phases
    -- j = generation index 1..nph; ord = position in the SPEC §2 order
    -- (type, created_at, id).  3-phase projects: j=1 PLANNING, j=2,3 EXECUTION;
    -- with swap3 the j=3 phase is created before j=2, so it orders second.
    CREATE TEMP TABLE _gen_ph ON COMMIT DROP AS
    SELECT g.no, g.nph, g.start_date, g.d, j,
           CASE WHEN g.nph = 1 THEN 'EXECUTION'
                WHEN j = 1 THEN 'PLANNING' ELSE 'EXECUTION' END AS phase_type,
           CASE WHEN g.nph = 3 AND g.swap3 AND j = 2 THEN 3
                WHEN g.nph = 3 AND g.swap3 AND j = 3 THEN 2
                ELSE j END AS ord,
           timestamp '2017-06-01' + g.no * interval '1 minute'
               + CASE WHEN g.nph = 3 AND g.swap3 AND j = 3 THEN interval '1 second'
                      ELSE j * interval '2 seconds' END AS created_at,
           round((20000 + phasemig_bench.u(g.no * 4 + j, k + 5) * 980000)::numeric, 2) AS total,
           phasemig_bench.u(g.no * 4 + j, k + 6) AS cap_share
    FROM _gen_p g, generate_series(1, g.nph) AS j;
    ALTER TABLE _gen_ph ADD COLUMN id text;
    EXECUTE format('UPDATE _gen_ph SET id = (%s)::text',
        CASE WHEN ty = 'uuid' THEN format(pid, 'ph' || k, 'no', 'j')
             ELSE '(no::bigint * 4 + j)' END);
    CREATE INDEX ON _gen_ph (no, ord);
    ANALYZE _gen_ph;

    EXECUTE format($q$
        INSERT INTO %1$I.project_phases (id, project_id, phase_type, capital_budget,
                                         expense_budget, total_budget, created_at, updated_at)
        SELECT id::%2$s, %3$s, phase_type::%1$I.phasetype,
               round(total * cap_share::numeric, 2),
               total - round(total * cap_share::numeric, 2),
               total, created_at,
               CASE WHEN (no + j) %% 3 = 0 THEN created_at + interval '3 days' END
        FROM _gen_ph ORDER BY no, j
        $q$, s, ty,
        CASE WHEN ty = 'uuid' THEN format(pid, 'p' || k, 'no', '0') ELSE 'no::bigint' END);

    -- ------------------------------------------------------------- assignments
    -- a = 1..n_assign; project = the one whose pid_rank = 1 + floor(u * #with phases)
    -- x = offset from start: inside 0..d (85%), else before (-1..-60) or after (d+1..d+60)
    -- split ordinal for x in 0..d: max(1, ceil(x*k/d)) capped at k; before -> 1, after -> k
    SELECT count(*) INTO n_with FROM _gen_p WHERE nph > 0;
    IF n_with = 0 THEN n_assign := 0; END IF;
    -- literal row counts, so that the planner sizes the joins right (hash joins)
    EXECUTE format($q$
        WITH a AS (
            SELECT a, 1 + floor(phasemig_bench.u(a, %3$s + 10) * %8$s)::bigint AS rk,
                   phasemig_bench.u(a, %3$s + 11) AS r_in,
                   phasemig_bench.u(a, %3$s + 12) AS r_pos,
                   phasemig_bench.u(a, %3$s + 13) AS r_ph,
                   phasemig_bench.u(a, %3$s + 14) AS r_alt
            FROM generate_series(1::bigint, %4$s::bigint) AS a
        ),
        b AS (
            SELECT a.a, g.no, g.nph, g.d, g.start_date, a.r_ph, a.r_alt,
                   CASE WHEN a.r_in < 0.85 THEN floor(a.r_pos * (g.d + 1))::int
                        WHEN a.r_in < 0.925 THEN -1 - floor(a.r_pos * 60)::int
                        ELSE g.d + 1 + floor(a.r_pos * 60)::int END AS x
            FROM a JOIN _gen_p g ON g.pid_rank = a.rk
        ),
        c AS (
            SELECT b.*,
                   CASE WHEN x < 0 THEN 1
                        WHEN x > d THEN nph
                        ELSE LEAST(nph, GREATEST(1, ceil(x::numeric * nph / d)::int)) END AS split_ord
            FROM b
        ),
        e AS (
            SELECT c.*,
                   CASE WHEN nph > 1 AND r_ph >= 0.9
                        THEN 1 + (split_ord + floor(r_alt * (nph - 1))::int) %% nph
                        ELSE split_ord END AS ord
            FROM c
        )
        INSERT INTO %1$I.resource_assignments
            (id, project_id, resource_id, project_phase_id, assignment_date,
             allocation_percentage, capital_percentage, expense_percentage, created_at)
        SELECT %5$s, %6$s, %7$s, ph.id::%2$s, e.start_date + e.x,
               (5 + floor(phasemig_bench.u(e.a, %3$s + 15) * 20)::int * 5)::numeric(5,2),
               round((phasemig_bench.u(e.a, %3$s + 16) * 100)::numeric, 2),
               100 - round((phasemig_bench.u(e.a, %3$s + 16) * 100)::numeric, 2),
               timestamp '2019-01-01' + e.a * interval '1 second'
        FROM e JOIN _gen_ph ph ON ph.no = e.no AND ph.ord = e.ord
        ORDER BY e.a
        $q$, s, ty, k, n_assign,
        CASE WHEN ty = 'uuid' THEN format(pid, 'a' || k, 'e.a', '0') ELSE 'e.a::bigint' END,
        CASE WHEN ty = 'uuid' THEN format(pid, 'p' || k, 'e.no', '0') ELSE 'e.no::bigint' END,
        CASE WHEN ty = 'uuid' THEN format(pid, 'r' || k, 'e.a % 5000', '0') ELSE '(e.a % 5000)::bigint' END,
        n_with);

    -- ---------------------------------------------------- keys, FKs, indexes
    EXECUTE format('ALTER TABLE %I.projects ADD CONSTRAINT projects_pkey PRIMARY KEY (id)', s);
    EXECUTE format('ALTER TABLE %I.project_phases ADD CONSTRAINT project_phases_pkey PRIMARY KEY (id)', s);
    EXECUTE format('ALTER TABLE %I.resource_assignments ADD CONSTRAINT resource_assignments_pkey PRIMARY KEY (id)', s);
    EXECUTE format('ALTER TABLE %1$I.project_phases ADD CONSTRAINT project_phases_project_id_fkey'
                   ' FOREIGN KEY (project_id) REFERENCES %1$I.projects(id)', s);
    EXECUTE format('CREATE INDEX ix_project_phases_project_id ON %I.project_phases (project_id)', s);
    EXECUTE format('ALTER TABLE %1$I.resource_assignments ADD CONSTRAINT resource_assignments_project_id_fkey'
                   ' FOREIGN KEY (project_id) REFERENCES %1$I.projects(id)', s);
    EXECUTE format('ALTER TABLE %1$I.resource_assignments ADD CONSTRAINT resource_assignments_project_phase_id_fkey'
                   ' FOREIGN KEY (project_phase_id) REFERENCES %1$I.project_phases(id)', s);
    EXECUTE format('CREATE INDEX ix_resource_assignments_project_phase_id'
                   ' ON %I.resource_assignments (project_phase_id)', s);

    EXECUTE format('ANALYZE %1$I.projects, %1$I.project_phases, %1$I.resource_assignments,'
                   ' %1$I.alembic_version', s);

    EXECUTE format($q$
        SELECT jsonb_build_object(
            'schema', %1$L, 'id_type', %2$L, 'seed', %3$s,
            'projects', (SELECT count(*) FROM %1$I.projects),
            'phases', (SELECT jsonb_object_agg(t, c) FROM
                         (SELECT phase_type::text t, count(*) c FROM %1$I.project_phases GROUP BY 1) x),
            'phases_per_project', (SELECT jsonb_object_agg(nph, c) FROM
                         (SELECT nph, count(*) c FROM _gen_p GROUP BY nph) y),
            'assignments', %4$s,
            'seconds', round(extract(epoch FROM clock_timestamp() - %5$L::timestamptz)::numeric, 2))
        $q$, s, ty, coalesce(seed, 0.42), n_assign, t0) INTO result;
    DROP TABLE _gen_p, _gen_ph;
    RETURN result;
END
$fn$;
