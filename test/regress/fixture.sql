-- Helpers for the pg_regress tests (included with \ir, not echoed).

-- The legacy schema of SPEC §1 in `s`, with ids of type `id_type` and
-- phase_type as the enum phasetype ('enum') or as varchar ('varchar').
CREATE OR REPLACE FUNCTION public.pm_legacy_schema(s text, id_type text DEFAULT 'bigint',
                                                   type_kind text DEFAULT 'enum', alembic boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pt text := CASE type_kind WHEN 'enum' THEN format('%I.phasetype', s) ELSE 'varchar(20)' END;
BEGIN
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
    IF type_kind = 'enum' THEN
        EXECUTE format($f$CREATE TYPE %I.phasetype AS ENUM ('PLANNING', 'EXECUTION')$f$, s);
    END IF;
    EXECUTE format($f$CREATE TABLE %1$I.projects (
        id %2$s PRIMARY KEY, name text, start_date date NOT NULL, end_date date NOT NULL,
        CHECK (start_date < end_date))$f$, s, id_type);
    EXECUTE format($f$CREATE TABLE %1$I.project_phases (
        id %2$s PRIMARY KEY, project_id %2$s NOT NULL REFERENCES %1$I.projects (id),
        phase_type %3$s NOT NULL,
        capital_budget numeric(15,2), expense_budget numeric(15,2), total_budget numeric(15,2),
        created_at timestamp, updated_at timestamp)$f$, s, id_type, pt);
    EXECUTE format('CREATE INDEX ix_project_phases_project_id ON %I.project_phases (project_id)', s);
    EXECUTE format($f$CREATE TABLE %1$I.resource_assignments (
        id %2$s PRIMARY KEY, project_id %2$s NOT NULL REFERENCES %1$I.projects (id), resource_id %2$s,
        project_phase_id %2$s NOT NULL, assignment_date date NOT NULL,
        allocation_percentage numeric(5,2),
        CONSTRAINT resource_assignments_project_phase_id_fkey FOREIGN KEY (project_phase_id)
            REFERENCES %1$I.project_phases (id))$f$, s, id_type);
    EXECUTE format('CREATE INDEX ix_resource_assignments_project_phase_id ON %I.resource_assignments (project_phase_id)', s);
    IF alembic THEN
        EXECUTE format('CREATE TABLE %I.alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)', s);
        EXECUTE format($f$INSERT INTO %I.alembic_version VALUES ('976e6adbac6f')$f$, s);
    END IF;
END $$;

-- A fingerprint of everything phasemig promises to keep: every row of the
-- three tables (by column name, so column order does not matter) and their
-- shape (column types, NOT NULL, defaults, constraints, indexes).
CREATE OR REPLACE FUNCTION public.pm_fingerprint(s text)
RETURNS TABLE (part text, fingerprint text) LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['projects', 'project_phases', 'resource_assignments', 'alembic_version'] LOOP
        CONTINUE WHEN to_regclass(format('%I.%I', s, t)) IS NULL;
        part := t || ' rows';
        EXECUTE format('SELECT count(*) || '':'' || md5(coalesce(string_agg(r::text, '','' ORDER BY r::text), '''')) '
                       'FROM (SELECT to_jsonb(x) AS r FROM %I.%I x) q', s, t) INTO fingerprint;
        RETURN NEXT;
        part := t || ' shape';
        SELECT md5(string_agg(d, ';' ORDER BY d)) INTO fingerprint FROM (
            SELECT format('col %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(ad.adbin, ad.adrelid)) AS d
              FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
             WHERE a.attrelid = format('%I.%I', s, t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL
            SELECT format('con %s %s %s', conname, pg_get_constraintdef(c.oid), convalidated)
              FROM pg_constraint c WHERE conrelid = format('%I.%I', s, t)::regclass
            UNION ALL
            SELECT format('idx %s %s %s', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisvalid)
              FROM pg_index i WHERE i.indrelid = format('%I.%I', s, t)::regclass) q;
        RETURN NEXT;
    END LOOP;
END $$;

-- Runs a statement and reports how it ended: 'ok', or its SQLSTATE with
-- message and detail (caught in a subtransaction, as a caller's own
-- exception block would), and whether schema `s` is unchanged by it
-- (rows and shape, by pm_fingerprint).
CREATE OR REPLACE FUNCTION public.pm_try(s text, stmt text)
RETURNS TABLE (state text, message text, detail text, unchanged boolean) LANGUAGE plpgsql AS $$
DECLARE
    before jsonb;
BEGIN
    SELECT jsonb_object_agg(part, fingerprint) INTO before FROM pm_fingerprint(s);
    BEGIN
        EXECUTE stmt;
        state := 'ok';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    END;
    SELECT before IS NOT DISTINCT FROM jsonb_object_agg(part, fingerprint) INTO unchanged FROM pm_fingerprint(s);
    RETURN NEXT;
END $$;
