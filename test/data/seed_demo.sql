-- seed_demo.sql: the seed-shaped demo database, legacy revision 976e6adbac6f.
--
-- Deterministic (ids are md5-derived, dates and amounts are computed from
-- row numbers), re-runnable (drops its own four tables and the enum first).
--
--   psql -v ON_ERROR_STOP=1 -f test/data/seed_demo.sql                 # schema public
--   psql -v ON_ERROR_STOP=1 -v schema=other -f test/data/seed_demo.sql # another schema
--
-- What it guarantees (see seed_demo_expected.txt):
--   5 projects; 8 phases (3 PLANNING, 5 EXECUTION): projects 1-3 have one of
--   each type, projects 4-5 only an EXECUTION phase; total_budget sums to
--   2,800,000.00 with capital + expense = total on every phase; 1,011
--   assignments, each pointing at a phase of its own project, 591 dated
--   inside their project's [start_date, end_date] and 420 outside it.
--   After the upgrade phases tile each project exactly, so verify check 9
--   reports "591 matched, 420 outside any phase".

\if :{?schema}
\else
\set schema public
\endif

SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path = :"schema";

DROP TABLE IF EXISTS resource_assignments, project_phases, projects, alembic_version CASCADE;
DROP TYPE IF EXISTS phasetype CASCADE;

CREATE TYPE phasetype AS ENUM ('PLANNING', 'EXECUTION');

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        varchar(200) NOT NULL,
    start_date  date NOT NULL,
    end_date    date NOT NULL,
    created_at  timestamp,
    CHECK (start_date < end_date)
);

CREATE TABLE project_phases (
    id              uuid PRIMARY KEY,
    project_id      uuid NOT NULL REFERENCES projects(id),
    phase_type      phasetype NOT NULL,
    capital_budget  numeric(15,2),
    expense_budget  numeric(15,2),
    total_budget    numeric(15,2),
    created_at      timestamp,
    updated_at      timestamp
);
CREATE INDEX ix_project_phases_project_id ON project_phases (project_id);

CREATE TABLE resource_assignments (
    id                     uuid PRIMARY KEY,
    project_id             uuid NOT NULL REFERENCES projects(id),
    resource_id            uuid,
    project_phase_id       uuid NOT NULL,
    assignment_date        date NOT NULL,
    allocation_percentage  numeric(5,2),
    capital_percentage     numeric(5,2),
    expense_percentage     numeric(5,2),
    created_at             timestamp,
    CONSTRAINT resource_assignments_project_phase_id_fkey
        FOREIGN KEY (project_phase_id) REFERENCES project_phases(id)
);
CREATE INDEX ix_resource_assignments_project_phase_id
    ON resource_assignments (project_phase_id);

CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL PRIMARY KEY
);
INSERT INTO alembic_version (version_num) VALUES ('976e6adbac6f');

-- Projects.  Day counts (end - start + 1): 176, 299, 137, 285, 86
-- (even, odd, odd, odd, even).  n_in / n_out: assignments inside / outside.
CREATE TEMP TABLE seed_project (
    no int, name text, start_date date, end_date date, has_planning bool,
    n_in int, n_out int,
    plan_cap numeric, plan_exp numeric, exec_cap numeric, exec_exp numeric
) ON COMMIT PRESERVE ROWS;
INSERT INTO seed_project VALUES
 (1, 'Data Center Migration', '2025-01-06', '2025-06-30', true,  150, 100, 100000.25,  49999.75, 300000.00, 150000.00),
 (2, 'ERP Rollout',           '2025-02-03', '2025-11-28', true,  130,  90, 120000.00,  80000.00, 449999.50, 150000.50),
 (3, 'Mobile App Redesign',   '2025-04-01', '2025-08-15', true,  120,  80,  60000.00,  40000.00, 250000.00, 150000.00),
 (4, 'Network Refresh',       '2025-03-10', '2025-12-19', false, 101,  80,       NULL,      NULL, 400000.00, 150000.00),
 (5, 'Security Audit',        '2025-05-05', '2025-07-29', false,  90,  70,       NULL,      NULL, 200000.00, 150000.00);
-- totals: 150,000 + 450,000 + 200,000 + 600,000 + 100,000 + 400,000 + 550,000 + 350,000 = 2,800,000.00

INSERT INTO projects (id, name, start_date, end_date, created_at)
SELECT md5('project-' || no)::uuid, name, start_date, end_date,
       timestamp '2024-12-01 09:00' + no * interval '1 day'
FROM seed_project ORDER BY no;

-- Phases: the PLANNING phase is created first; project 2's EXECUTION phase has
-- an earlier created_at than its PLANNING phase (the type still orders first).
INSERT INTO project_phases (id, project_id, phase_type, capital_budget, expense_budget,
                            total_budget, created_at, updated_at)
SELECT md5('phase-' || no || '-planning')::uuid, md5('project-' || no)::uuid, 'PLANNING'::phasetype,
       plan_cap, plan_exp, plan_cap + plan_exp,
       timestamp '2024-12-01 10:00' + no * interval '1 day',
       timestamp '2024-12-15 10:00' + no * interval '1 day'
FROM seed_project WHERE has_planning
UNION ALL
SELECT md5('phase-' || no || '-execution')::uuid, md5('project-' || no)::uuid, 'EXECUTION'::phasetype,
       exec_cap, exec_exp, exec_cap + exec_exp,
       timestamp '2024-12-01 10:00' + no * interval '1 day'
           + CASE WHEN no = 2 THEN interval '-1 hour' ELSE interval '5 minutes' END,
       NULL
FROM seed_project
ORDER BY 1;

-- Assignments.
--   inside, i = 1..n_in: offsets 0, d, d/2, d/2 + 1 (the boundaries), then a
--     scatter ((i * 7919) mod (d + 1)).  They point at the phase the SPEC §2
--     split gives for their date, except every 23rd, which points at the other
--     phase (projects with two phases only).
--   outside, i = 1..n_out: odd i before the start (i = 1: start - 1), even i
--     after the end (i = 2: end + 1).  Before-start ones point at PLANNING
--     (every third at EXECUTION), after-end ones at EXECUTION (every third at
--     PLANNING); single-phase projects point at their only phase.
WITH p AS (
    SELECT no, start_date AS s, end_date AS e, end_date - start_date AS d, has_planning,
           n_in, n_out,
           md5('project-' || no)::uuid                AS project_id,
           md5('phase-' || no || '-planning')::uuid   AS planning_id,
           md5('phase-' || no || '-execution')::uuid  AS execution_id
    FROM seed_project
), a AS (
    SELECT p.*, 'in' AS kind, i,
           s + CASE i WHEN 1 THEN 0 WHEN 2 THEN d WHEN 3 THEN d / 2 WHEN 4 THEN d / 2 + 1
                      ELSE (i * 7919) % (d + 1) END AS adate
    FROM p, generate_series(1, p.n_in) AS i
    UNION ALL
    SELECT p.*, 'out', i,
           CASE WHEN i % 2 = 1 THEN s - 1 - ((i - 1) * 31) % 90
                ELSE e + 1 + ((i - 2) * 53) % 120 END
    FROM p, generate_series(1, p.n_out) AS i
), numbered AS (
    SELECT a.*, row_number() OVER (ORDER BY no, kind, i) AS n,
           CASE WHEN NOT has_planning THEN execution_id
                WHEN kind = 'in' THEN
                     CASE WHEN (adate <= s + d / 2) <> (i % 23 = 0) THEN planning_id ELSE execution_id END
                WHEN adate < s THEN CASE WHEN i % 3 = 0 THEN execution_id ELSE planning_id END
                ELSE CASE WHEN i % 3 = 0 THEN planning_id ELSE execution_id END
           END AS phase_id
    FROM a
)
INSERT INTO resource_assignments (id, project_id, resource_id, project_phase_id, assignment_date,
                                  allocation_percentage, capital_percentage, expense_percentage,
                                  created_at)
SELECT md5('assignment-' || n)::uuid, project_id, md5('resource-' || (n * 17) % 41)::uuid,
       phase_id, adate,
       ((n * 37) % 20 + 1) * 5.00,
       (n * 13) % 101,
       100 - (n * 13) % 101,
       timestamp '2025-01-01 08:00' + n * interval '7 minutes'
FROM numbered
ORDER BY n;

DROP TABLE seed_project;
ANALYZE projects, project_phases, resource_assignments, alembic_version;
RESET search_path;
RESET client_min_messages;
