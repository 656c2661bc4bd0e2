// phasemig_verify: the checks of SPEC §4 for the state the schema is in.
// Each check passes only when what it checks holds; NULL only where there is
// no baseline to compare with.
#include "pg/verify.hpp"

#include "pg/autonomous.hpp"

#include "pg/guard.hpp"
#include "pg/model.hpp"
#include "pg/scan.hpp"
#include "pg/spi.hpp"
#include "pg/step.hpp"

namespace phasemig::pg {

namespace {

std::string count_text(std::uint64_t n, const char* one, const char* many)
{
    return group_thousands(static_cast<std::int64_t>(n)) + " " + (n == 1 ? one : many);
}

std::int64_t to_int(const std::optional<std::string>& v)
{
    return v ? std::stoll(*v) : 0;
}

// "Planning: 3, Execution: 5": planning-like names first, then
// execution-like, then the rest, each group by name.
std::string distribution(const Target& t, const char* column)
{
    const std::string col = column;
    auto rows = spi_rows("SELECT " + col + "::text, count(*) FROM " + t.phases.qualified +
                         " GROUP BY 1 ORDER BY (lower(" + col + "::text) LIKE '%planning%') DESC,"
                         " (lower(" + col + "::text) LIKE '%execution%') DESC, 1 LIMIT 21");
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < rows.size() && i < 20; i++)
        parts.push_back(rows[i][0].value_or("NULL") + ": " + group_thousands(std::stoll(rows[i][1].value_or("0"))));
    std::string s = join_plain(parts, ", ");
    if (rows.size() > 20)
        s += ", ...";
    return s.empty() ? "no phases" : s;
}

// Compares budget sums, overall and per project, with the phase archive of
// `run_id` (what the phases held when that step started).
// Names the projects whose budget sums differ from the archive of `run_id`
// (only when a check already failed: one SQL pass over both).
std::string differing_projects(const Target& t, std::int64_t run_id, std::int64_t& count)
{
    std::vector<Row> rows;
    as_extension_owner([&] {
        rows = spi_rows(
            "WITH base AS (SELECT project_id, sum(capital_budget) c, sum(expense_budget) e, sum(total_budget) t"
            "                FROM " + extension().table("phasemig_archived_phases") + " WHERE run_id = $1 GROUP BY 1),"
            "     cur AS (SELECT project_id::text AS project_id, sum(capital_budget) c, sum(expense_budget) e,"
            "                    sum(total_budget) t FROM " + t.phases.qualified + " GROUP BY 1),"
            "     diff AS (SELECT project_id FROM base FULL JOIN cur USING (project_id)"
            "               WHERE (base.c, base.e, base.t) IS DISTINCT FROM (cur.c, cur.e, cur.t))"
            " SELECT (SELECT count(*) FROM diff),"
            "        (SELECT string_agg(coalesce(project_id, 'NULL'), ', ' ORDER BY project_id)"
            "           FROM (SELECT project_id FROM diff ORDER BY project_id LIMIT 5) s)",
            {Arg::of(run_id)});
    });
    count = to_int(rows[0][0]);
    return rows[0][1].value_or("") + (count > 5 ? ", ..." : "");
}

// Compares budget sums, overall and per project, with what the step `run_id`
// recorded before it changed anything.  `computed` holds the sums of the
// scan verify made anyway; per project they are compared by digest.
CheckResult budgets_check(int no, const Target& t, std::optional<std::int64_t> run_id, const char* step,
                          const Budgets* computed)
{
    CheckResult r{no, "budgets preserved", std::nullopt, ""};
    const bool have_cols =
        t.phases.has("capital_budget") && t.phases.has("expense_budget") && t.phases.has("total_budget");
    Baseline now;
    read_budgets(t, now, computed);
    auto amount = [](const std::optional<std::string>& v) { return v ? group_thousands(*v) : std::string("none"); };
    const std::string totals =
        "total " + amount(now.total) + " (capital " + amount(now.capital) + ", expense " + amount(now.expense) + ")";
    if (!run_id) {
        r.detail = totals + "; no baseline: phasemig has not run a " + step + " of this schema";
        return r;
    }
    if (!have_cols) {
        r.passed = false;
        r.detail = "project_phases lacks capital_budget, expense_budget or total_budget";
        return r;
    }
    std::vector<Row> base;
    as_extension_owner([&] {
        base = spi_rows("SELECT total::text, budget_digest, archive_dropped_at IS NOT NULL,"
                        "       (capital, expense, total) IS NOT DISTINCT FROM ($2::numeric, $3::numeric, $4::numeric)"
                        "  FROM " + extension().table("phasemig_run") + " WHERE run_id = $1",
                        {Arg::of(*run_id), Arg::text_or_null(now.capital), Arg::text_or_null(now.expense),
                         Arg::text_or_null(now.total)});
    });
    const bool overall = base[0][3].value_or("f") == "t";
    const bool purged = base[0][2].value_or("f") == "t";
    const std::string run = std::string(step) + " run " + std::to_string(*run_id);

    std::optional<bool> per_project;  // unknown without a digest on both sides
    std::string per_project_count;
    if (now.digest && base[0][1]) {
        per_project = *now.digest == *base[0][1];
        const auto colon = base[0][1]->find(':');
        per_project_count = colon == std::string::npos ? "" : base[0][1]->substr(colon + 1);
    }
    std::int64_t differing = 0;
    std::string names;
    if (!per_project && !purged) {
        names = differing_projects(t, *run_id, differing);
        per_project = differing == 0;
    }
    if (!per_project) {
        // Only the overall sums survive the purge of the archive.
        r.passed = overall;
        r.detail = totals + (overall ? " equals" : " differs from") + " the overall baseline of " + run +
                   "; the per-project baseline was purged";
        return r;
    }
    r.passed = overall && *per_project;
    if (*r.passed) {
        std::int64_t projects = per_project_count.empty() ? 0 : std::stoll(per_project_count);
        r.detail = totals + " equals the baseline of " + run + ", overall and for each of " +
                   count_text(static_cast<std::uint64_t>(projects), "project", "projects");
        return r;
    }
    r.detail = totals;
    if (!overall)
        r.detail += "; overall sums differ from the baseline of " + run + " (total " + amount(base[0][0]) + ")";
    if (!*per_project) {
        if (names.empty() && !purged)
            names = differing_projects(t, *run_id, differing);
        if (purged)
            r.detail += "; per-project sums differ from the baseline (its archive, which would name the projects, "
                        "was purged)";
        else
            r.detail += "; " +
                        count_text(static_cast<std::uint64_t>(differing), "project differs", "projects differ") +
                        " from the baseline: " + names;
    }
    return r;
}

std::optional<std::int64_t> baseline_run(const std::string& schema, const char* step)
{
    // Only the newest run counts, and only when it left the schema in the
    // state being verified.
    std::optional<std::string> v;
    as_extension_owner([&] {
        v = spi_value("SELECT run_id FROM " + extension().table("phasemig_run") +
                          " WHERE target_schema = $1 AND finished_at IS NOT NULL"
                          " ORDER BY run_id DESC LIMIT 1",
                      {Arg::of(schema)});
    });
    if (!v)
        return std::nullopt;
    const std::int64_t id = std::stoll(*v);
    std::optional<std::string> s;
    as_extension_owner([&] {
        s = spi_value("SELECT step FROM " + extension().table("phasemig_run") + " WHERE run_id = $1", {Arg::of(id)});
    });
    if (s && *s == step)
        return id;
    return std::nullopt;
}

void verify_upgraded(const Target& t, std::vector<CheckResult>& out)
{
    KeyTypes types;
    std::vector<Finding> schema_findings;
    check_schema(t, nullptr, schema_findings, types);
    for (const auto& f : schema_findings)
        if (f.severity == "error" && f.code != "alembic_revision") {
            out.push_back(CheckResult{1, "schema", false, f.message});
            return;
        }

    // One pass over the phases gives checks 1, 4, 5, 6 and 7 what they need.
    UpgradedData data;
    load_upgraded(t, types, data, UpgradedLoad::Verify);
    const PhaseStats& stats = data.stats;
    const auto phases = static_cast<std::int64_t>(data.phases);
    const auto nulls = static_cast<std::int64_t>(stats.nulls);
    const auto reversed = static_cast<std::int64_t>(stats.reversed);
    const auto blank = static_cast<std::int64_t>(stats.blank);

    // 1. required fields
    {
        std::vector<std::string> nullable;
        for (const char* c : {"name", "start_date", "end_date"})
            if (!t.phases.col(c).notnull)
                nullable.push_back(c);
        CheckResult r{1, "required fields", nulls == 0 && nullable.empty(), ""};
        if (*r.passed)
            r.detail = count_text(static_cast<std::uint64_t>(phases), "phase", "phases") +
                       "; name, start_date and end_date are NOT NULL";
        else {
            std::vector<std::string> parts;
            if (nulls)
                parts.push_back(count_text(static_cast<std::uint64_t>(nulls), "phase has", "phases have") +
                                " a NULL name, start_date or end_date");
            if (!nullable.empty())
                parts.push_back(join_plain(nullable, ", ") + (nullable.size() == 1 ? " is" : " are") + " nullable");
            r.detail = join_plain(parts, "; ");
        }
        out.push_back(r);
    }
    // 2. phase_type removed (true by the state, checked all the same)
    out.push_back(CheckResult{2, "phase_type removed", !t.phases.has("phase_type"),
                              t.phases.has("phase_type") ? "project_phases still has phase_type"
                                                         : "project_phases has no phase_type"});
    // 3. project_phase_id removed, with its foreign key and index
    {
        const bool col = t.assignments.has("project_phase_id");
        const bool fk = OidIsValid(find_constraint(t.assignments.oid, kFkName).oid);
        const bool idx = OidIsValid(find_index(t.nsp, kAssignmentPhaseIndex).oid);
        std::vector<std::string> left;
        if (col)
            left.push_back("column project_phase_id");
        if (fk)
            left.push_back(std::string("constraint ") + kFkName);
        if (idx)
            left.push_back(std::string("index ") + kAssignmentPhaseIndex);
        out.push_back(CheckResult{3, "project_phase_id removed", left.empty(),
                                  left.empty() ? "resource_assignments has no project_phase_id, foreign key or index"
                                               : "still present: " + join_plain(left, ", ")});
    }
    // 4. phase dates ordered
    {
        const ConstraintInfo c = find_constraint(t.phases.oid, kCheckName);
        const bool ok_con = OidIsValid(c.oid) && c.type == CONSTRAINT_CHECK && c.validated;
        CheckResult r{4, "phase dates ordered", reversed == 0 && ok_con, ""};
        std::vector<std::string> parts;
        parts.push_back(reversed == 0 ? "no phase starts after it ends"
                                      : count_text(static_cast<std::uint64_t>(reversed), "phase starts",
                                                   "phases start") +
                                            " after it ends");
        if (!OidIsValid(c.oid))
            parts.push_back(std::string(kCheckName) + " is missing");
        else if (c.type != CONSTRAINT_CHECK)
            parts.push_back(std::string(kCheckName) + " is not a CHECK constraint");
        else if (!c.validated)
            parts.push_back(std::string(kCheckName) + " is NOT VALID");
        else
            parts.push_back(std::string(kCheckName) + " is validated");
        r.detail = join_plain(parts, "; ");
        out.push_back(r);
    }
    // 5. phase names
    {
        // The pass found candidates by hash; SQL confirms and names them.
        std::int64_t dups = 0;
        std::vector<Row> dup;
        if (stats.duplicate_candidates) {
            dup = spi_rows("SELECT count(*), string_agg(project_id::text || ': ' || name::text, ', ')"
                           "  FROM (SELECT project_id, name FROM " + t.phases.qualified +
                           "         WHERE name IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1"
                           "         ORDER BY 1, 2) d");
            dups = to_int(dup[0][0]);
        }
        CheckResult r{5, "phase names", blank == 0 && dups == 0, stats.distribution()};
        if (blank)
            r.detail += "; " + count_text(static_cast<std::uint64_t>(blank), "phase has", "phases have") +
                        " a blank name";
        if (dups)
            r.detail += "; " + count_text(static_cast<std::uint64_t>(dups), "name is", "names are") +
                        " used twice in a project: " + dup[0][1].value_or("");
        out.push_back(r);
    }
    // 6. timeline coverage, and 9 from the same loaded phases
    Stages* st = current_stages();
    if (st) {
        st->end();
        st->begin("coverage");
    }
    check_coverage_all(t, types, data);
    {
        const std::uint64_t with_phases = data.projects - data.without_phases.count();
        CheckResult r{6, "timeline coverage", data.not_covered.empty() && data.without_phases.empty(), ""};
        std::vector<std::string> parts;
        parts.push_back(count_text(with_phases - data.not_covered.count(), "project", "projects") +
                        " covered exactly");
        if (!data.not_covered.empty())
            parts.push_back(count_text(data.not_covered.count(), "project", "projects") + " not covered (" +
                            join_plain(data.coverage_examples, "; ") +
                            (data.not_covered.count() > data.coverage_examples.size() ? "; ..." : "") + ")");
        if (!data.without_phases.empty())
            parts.push_back(count_text(data.without_phases.count(), "project", "projects") + " without phases (" +
                            data.without_phases.text(types.project) + ")");
        r.detail = join_plain(parts, "; ");
        out.push_back(r);
    }
    // 7. budgets preserved
    if (st) {
        st->end();
        st->begin("budgets");
    }
    out.push_back(budgets_check(7, t, baseline_run(t.schema, "upgrade"), "upgrade",
                                stats.budgets_present ? &stats.budgets : nullptr));
    // 8. date indexes
    {
        std::vector<std::string> problems;
        for (const char* name : {kStartIndex, kEndIndex}) {
            const IndexInfo ix = find_index(t.nsp, name);
            const char* column = name == kStartIndex ? "start_date" : "end_date";
            if (!OidIsValid(ix.oid))
                problems.push_back(std::string(name) + " is missing");
            else if (ix.table != t.phases.oid || ix.keys.empty() || ix.keys[0] != t.phases.col(column).attnum)
                problems.push_back(std::string(name) + " is not an index on project_phases (" + column + ")");
            else if (!ix.valid)
                problems.push_back(std::string(name) + " is not valid");
        }
        out.push_back(CheckResult{8, "date indexes", problems.empty(),
                                  problems.empty() ? std::string(kStartIndex) + " and " + kEndIndex + " are valid"
                                                   : join_plain(problems, "; ")});
    }
    // 9. date-based matching: one streamed pass over the assignments
    if (st) {
        st->end();
        st->begin("assignments");
    }
    {
        tally_upgraded_assignments(t, types, std::nullopt, data);
        const std::uint64_t outside = data.outside + data.orphan_assignments;
        CheckResult r{9, "date-based matching", data.ambiguous == 0,
                      group_thousands(static_cast<std::int64_t>(data.matched)) + " matched, " +
                          group_thousands(static_cast<std::int64_t>(outside)) + " outside any phase"};
        if (data.ambiguous)
            r.detail += "; " + count_text(data.ambiguous, "assignment matches", "assignments match") +
                        " more than one phase (" + data.ambiguous_sample.text(types.assignment) + ")";
        out.push_back(r);
    }
}

void verify_legacy(const Target& t, std::vector<CheckResult>& out)
{
    KeyTypes types;
    std::vector<Finding> schema_findings;
    check_schema(t, nullptr, schema_findings, types);
    for (const auto& f : schema_findings)
        if (f.severity == "error" && f.code != "alembic_revision") {
            out.push_back(CheckResult{1, "schema", false, f.message});
            return;
        }
    const std::optional<std::int64_t> base = baseline_run(t.schema, "downgrade");

    // 1. phase_type restored
    {
        const Column& c = t.phases.col("phase_type");
        const std::string type =
            guarded([&] { return std::string(format_type_with_typemod(c.type, c.typmod)); });
        out.push_back(CheckResult{1, "phase_type restored", c.notnull,
                                  "phase_type is " + type + (c.notnull ? " NOT NULL" : ", nullable")});
    }
    // 2. phase_type values
    {
        auto bad = spi_rows("SELECT count(*) FROM " + t.phases.qualified +
                            " WHERE phase_type IS NULL OR upper(phase_type::text) NOT IN ('PLANNING', 'EXECUTION')");
        const std::int64_t n = to_int(bad[0][0]);
        CheckResult r{2, "phase_type values", n == 0, distribution(t, "phase_type")};
        if (n)
            r.detail += "; " + count_text(static_cast<std::uint64_t>(n), "phase has", "phases have") +
                        " a value other than PLANNING or EXECUTION";
        out.push_back(r);
    }
    // 3. project_phase_id restored
    {
        const Column& c = t.assignments.col("project_phase_id");
        const ConstraintInfo fk = find_constraint(t.assignments.oid, kFkName);
        const IndexInfo ix = find_index(t.nsp, kAssignmentPhaseIndex);
        std::vector<std::string> problems;
        if (!c.notnull)
            problems.push_back("project_phase_id is nullable");
        if (!OidIsValid(fk.oid) || fk.type != CONSTRAINT_FOREIGN)
            problems.push_back(std::string("foreign key ") + kFkName + " is missing");
        else if (!fk.validated)
            problems.push_back(std::string("foreign key ") + kFkName + " is NOT VALID");
        if (!OidIsValid(ix.oid) || ix.table != t.assignments.oid)
            problems.push_back(std::string("index ") + kAssignmentPhaseIndex + " is missing");
        else if (!ix.valid)
            problems.push_back(std::string("index ") + kAssignmentPhaseIndex + " is not valid");
        out.push_back(CheckResult{3, "project_phase_id restored", problems.empty(),
                                  problems.empty() ? "project_phase_id is NOT NULL, with validated foreign key and index"
                                                   : join_plain(problems, "; ")});
    }
    // 4. every assignment's phase belongs to its project (one streamed pass);
    // the pass over the phases also sums the budgets for check 6.
    LegacyData data;
    {
        const Table& pp = t.phases;
        const KeyType pfk = key_type_of(pp.col("project_id").type);
        std::vector<AttrNumber> attrs = {pp.col("id").attnum, pp.col("project_id").attnum};
        data.budgets_present = append_budget_attrs(pp, attrs);
        scan_table(pp.oid, attrs, [&](const Datum* v, const bool* n) {
            if (n[1])
                return;
            const core::Key project = datum_to_key(v[1], pfk);
            data.phase_project.put(datum_to_key(v[0], types.phase), project);
            if (data.budgets_present)
                data.budgets.add(project, v + 2, n + 2);
        });
        if (data.budgets_present)
            data.budgets.finish();
        const Table& ra = t.assignments;
        const KeyType rfk = key_type_of(ra.col("project_id").type);
        const KeyType phk = key_type_of(ra.col("project_phase_id").type);
        scan_table(ra.oid,
                   {ra.col("id").attnum, ra.col("project_id").attnum, ra.col("project_phase_id").attnum},
                   [&](const Datum* v, const bool* n) {
                       data.assignments++;
                       const core::Key id = datum_to_key(v[0], types.assignment);
                       if (n[2]) {
                           data.phase_missing.add(id);
                           return;
                       }
                       const core::Key* owner = data.phase_project.find(datum_to_key(v[2], phk));
                       if (!owner)
                           data.phase_missing.add(id);
                       else if (n[1] || *owner != datum_to_key(v[1], rfk))
                           data.phase_elsewhere.add(id);
                   });
        const bool ok = data.phase_missing.empty() && data.phase_elsewhere.empty();
        CheckResult r{4, "assignment phases", ok, ""};
        if (ok)
            r.detail = count_text(data.assignments, "assignment points", "assignments point") +
                       " at a phase of their own project";
        else {
            std::vector<std::string> parts;
            if (!data.phase_elsewhere.empty())
                parts.push_back(count_text(data.phase_elsewhere.count(), "assignment points", "assignments point") +
                                " at a phase of another project (" + data.phase_elsewhere.text(types.assignment) + ")");
            if (!data.phase_missing.empty())
                parts.push_back(count_text(data.phase_missing.count(), "assignment has", "assignments have") +
                                " no existing phase (" + data.phase_missing.text(types.assignment) + ")");
            r.detail = join_plain(parts, "; ");
        }
        out.push_back(r);
    }
    // 5. upgraded columns, constraint and indexes gone
    {
        std::vector<std::string> left;
        for (const char* c : {"name", "start_date", "end_date", "description"})
            if (t.phases.has(c))
                left.push_back(std::string("column ") + c);
        if (OidIsValid(find_constraint(t.phases.oid, kCheckName).oid))
            left.push_back(std::string("constraint ") + kCheckName);
        for (const char* name : {kStartIndex, kEndIndex})
            if (OidIsValid(find_index(t.nsp, name).oid))
                left.push_back(std::string("index ") + name);
        out.push_back(CheckResult{5, "upgraded columns removed", left.empty(),
                                  left.empty() ? "no name, start_date, end_date, description, check_phase_dates or "
                                                 "date indexes"
                                               : "still present: " + join_plain(left, ", ")});
    }
    // 6. budgets, 7. row counts
    out.push_back(budgets_check(6, t, base, "downgrade", data.budgets_present ? &data.budgets : nullptr));
    {
        auto now = spi_rows("SELECT (SELECT count(*) FROM " + t.projects.qualified + "), (SELECT count(*) FROM " +
                            t.phases.qualified + "), (SELECT count(*) FROM " + t.assignments.qualified + ")");
        auto counts_of = [](const Row& r) {
            return count_text(static_cast<std::uint64_t>(to_int(r[0])), "project", "projects") + ", " +
                   count_text(static_cast<std::uint64_t>(to_int(r[1])), "phase", "phases") + ", " +
                   count_text(static_cast<std::uint64_t>(to_int(r[2])), "assignment", "assignments");
        };
        const std::string counts = counts_of(now[0]);
        CheckResult r{7, "row counts", std::nullopt, counts};
        if (!base) {
            r.detail += "; no baseline: phasemig has not run a downgrade of this schema";
        } else {
            std::vector<Row> b;
            as_extension_owner([&] {
                b = spi_rows("SELECT projects, phases, assignments FROM " + extension().table("phasemig_run") +
                                 " WHERE run_id = $1",
                             {Arg::of(*base)});
            });
            const bool same = b[0][0] == now[0][0] && b[0][1] == now[0][1] && b[0][2] == now[0][2];
            r.passed = same;
            r.detail += same ? "; equal to the baseline of downgrade run " + std::to_string(*base)
                             : "; baseline of downgrade run " + std::to_string(*base) + ": " + counts_of(b[0]);
        }
        out.push_back(r);
    }
}

}  // namespace

VerifyResult run_verify(const std::string& schema, bool record)
{
    constexpr int t_stages = 4;
    VerifyResult res;
    Stages st("verify", schema, t_stages);
    st.begin("checks");
    Target t = inspect_target(schema);
    res.state = t.state;
    for (const Table* tab : {&t.projects, &t.phases, &t.assignments})
        if (tab->present())
            require_select(*tab);
    switch (t.state) {
    case State::Upgraded: verify_upgraded(t, res.checks); break;
    case State::Legacy: verify_legacy(t, res.checks); break;
    case State::Absent:
    case State::Mixed: res.checks.push_back(CheckResult{1, "schema state", false, t.state_detail}); break;
    }
    st.end();
    if (record)
        record_verify(history_fields(schema, res));
    st.finish();
    return res;
}

std::vector<std::string> history_fields(const std::string& schema, const VerifyResult& res)
{
    std::vector<std::string> failed;
    std::vector<std::string> checks;
    int passed = 0;
    for (const CheckResult& c : res.checks) {
        Json e;
        e.begin_object();
        e.key("check_no").num(c.no);
        e.key("check_name").str(c.name);
        e.key("passed");
        if (c.passed)
            e.boolean(*c.passed);
        else
            e.null();
        e.key("detail").str(c.detail);
        e.end_object();
        checks.push_back(e.text());
        if (c.passed && !*c.passed)
            failed.push_back(json_escape(std::to_string(c.no) + ". " + c.name));
        if (c.passed && *c.passed)
            passed++;
    }
    const std::string result =
        "{\"state\":" + json_escape(state_name(res.state)) + ",\"checks\":[" + join_plain(checks, ",") + "]}";
    const char* user = guarded([] { return GetUserNameFromId(GetUserId(), false); });
    return {schema,
            state_name(res.state),
            failed.empty() ? "true" : "false",
            std::to_string(res.checks.size()),
            std::to_string(passed),
            std::to_string(failed.size()),
            "[" + join_plain(failed, ",") + "]",
            result,
            user};
}

void record_verify(const std::vector<std::string>& fields)
{
    Args args;
    for (const auto& f : fields)
        args.push_back(Arg::of(f));
    as_extension_owner([&] {
        spi_exec("INSERT INTO " + extension().table("phasemig_verify_history") +
                     " (target_schema, state, passed, checks, checks_passed, checks_failed, failed_checks, result,"
                     "  performed_by)"
                     " VALUES ($1, $2, $3::boolean, $4::integer, $5::integer, $6::integer,"
                     "         ARRAY(SELECT jsonb_array_elements_text($7::jsonb)), $8::jsonb, $9::name)",
                 args);
    });
}

}  // namespace phasemig::pg

using namespace phasemig::pg;

// phasemig_verify(target_schema text) RETURNS TABLE(check_no int, check_name text, passed boolean, detail text)
PHASEMIG_FUNCTION(phasemig_verify)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        spi_connect();
        VerifyResult res = run_verify(schema);
        spi_finish();
        guarded([&] { InitMaterializedSRF(fcinfo, 0); });
        auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
        for (const CheckResult& c : res.checks) {
            guarded([&] {
                Datum values[4];
                bool nulls[4] = {false, false, false, false};
                values[0] = Int32GetDatum(c.no);
                values[1] = CStringGetTextDatum(c.name.c_str());
                if (c.passed)
                    values[2] = BoolGetDatum(*c.passed);
                else
                    nulls[2] = true;
                values[3] = CStringGetTextDatum(c.detail.c_str());
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            });
        }
        return (Datum) 0;
    });
}

// phasemig_assert(target_schema text) RETURNS int — for schedulers: the
// verification as an error when any check fails, so a pg_cron run is
// recorded as failed with the failing checks in its message.
PHASEMIG_FUNCTION(phasemig_assert)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        spi_connect();
        VerifyResult res = run_verify(schema, false);
        std::vector<std::string> fields = history_fields(schema, res);
        std::vector<std::string> failed;
        std::vector<std::string> details;
        int passed = 0;
        for (const CheckResult& c : res.checks) {
            if (c.passed && *c.passed)
                passed++;
            if (c.passed && !*c.passed) {
                failed.push_back(std::to_string(c.no) + " (" + c.name + ")");
                details.push_back("Check " + std::to_string(c.no) + " (" + c.name + "): " + c.detail + ".");
            }
        }
        if (failed.empty()) {
            record_verify(fields);
        } else if (!insert_history_autonomously(fields)) {
            guarded([] {
                ereport(WARNING, (errmsg("the failed verification could not be recorded in phasemig_verify_history"),
                                  errdetail("No background worker slot was free to write it outside of this "
                                            "transaction, which is about to fail."),
                                  errhint("Raise max_worker_processes.")));
            });
        }
        spi_finish();
        if (!failed.empty())
            throw Error(ERRCODE_CHECK_VIOLATION,
                        strfmt("phasemig verification of schema \"%s\" failed: %s %s", schema.c_str(),
                               failed.size() == 1 ? "check" : "checks", join_plain(failed, ", ").c_str()),
                        join_plain(details, "\n"),
                        "SELECT * FROM phasemig_verify_history ORDER BY verify_id DESC LIMIT 1; keeps the full "
                        "result.");
        return Int32GetDatum(passed);
    });
}
