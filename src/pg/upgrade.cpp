// phasemig_upgrade: legacy (fixed Planning/Execution phases referenced by
// every assignment) to upgraded (date-ranged phases), SPEC §2.
#include <algorithm>
#include <map>

#include "pg/archive_io.hpp"
#include "pg/fill.hpp"
#include "pg/guard.hpp"
#include "pg/model.hpp"
#include "pg/rewrite.hpp"
#include "pg/scan.hpp"
#include "pg/spi.hpp"
#include "pg/step.hpp"
#include "pg/steps.hpp"

namespace phasemig::pg {

namespace {

void require_legacy(const Target& t)
{
    switch (t.state) {
    case State::Legacy: return;
    case State::Upgraded:
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    strfmt("schema \"%s\" is already upgraded", t.schema.c_str()), t.state_detail,
                    "phasemig_verify() checks the upgraded schema; phasemig_downgrade() goes back to the legacy "
                    "revision.");
    case State::Absent:
        throw Error(ERRCODE_UNDEFINED_TABLE, strfmt("schema \"%s\" has nothing to upgrade", t.schema.c_str()),
                    t.state_detail, "Pass the schema that holds the application's tables as target_schema.");
    case State::Mixed:
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    strfmt("schema \"%s\" is half-migrated", t.schema.c_str()), t.state_detail,
                    "phasemig_status() shows what is where; restore the schema to one revision before migrating.");
    }
}

// Column definitions for the new columns: the archived ones (user edits kept
// by the last downgrade) or the SPEC's.
struct NewColumn {
    const char* name;
    std::string type;
    bool notnull;
    const ArchivedObject* archived;
};

std::vector<NewColumn> new_columns(const std::vector<ArchivedObject>& objs)
{
    std::vector<NewColumn> cols = {{"name", "character varying(100)", true, nullptr},
                                   {"start_date", "date", true, nullptr},
                                   {"end_date", "date", true, nullptr},
                                   {"description", "character varying(500)", false, nullptr}};
    for (auto& c : cols) {
        const ArchivedObject* a = find_object(objs, "column", "project_phases", c.name);
        if (a && a->type && resolve_type(*a->type)) {
            c.type = *a->type;
            if (a->collation)
                c.type += " COLLATE " + *a->collation;
            c.notnull = a->notnull;
            c.archived = a;
        }
    }
    return cols;
}

std::string summarize(const std::string& schema, bool dry_run, bool restore, std::int64_t run_id,
                      const Target& t, const LegacyData& d, const Baseline& b, std::uint64_t archived_assignments,
                      bool alembic_moved, const char* check_validation, const Stages& stages)
{
    // Phases per name, most frequent first (SPEC: counts per phase name).
    std::map<std::string, std::uint64_t> by_name;
    for (const auto& p : d.planner.planned())
        by_name[d.planner.string_at(p.name)]++;
    std::vector<std::pair<std::string, std::uint64_t>> names(by_name.begin(), by_name.end());
    std::stable_sort(names.begin(), names.end(), [](const auto& a, const auto& b) { return a.second > b.second; });

    Json j;
    j.begin_object();
    j.key("step").str("upgrade");
    j.key("schema").str(schema);
    j.key("dry_run").boolean(dry_run);
    j.key("restore").boolean(restore);
    if (dry_run)
        j.key("run_id").null();
    else
        j.key("run_id").num(run_id);
    j.key("revision");
    if (t.alembic.present())
        j.begin_object()
            .key("from")
            .str(kLegacyRevision)
            .key("to")
            .str(kUpgradedRevision)
            .key("moved")
            .boolean(alembic_moved)
            .end_object();
    else
        j.null();
    j.key("projects").num(static_cast<std::int64_t>(d.projects));
    j.key("projects_without_phases").num(static_cast<std::int64_t>(d.without_phases.count()));
    j.key("phases").num(static_cast<std::int64_t>(d.planner.planned().size()));
    j.key("phases_by_name").begin_object();
    constexpr std::size_t kMaxNames = 50;
    std::uint64_t other = 0;
    for (std::size_t i = 0; i < names.size(); i++) {
        if (i < kMaxNames)
            j.key(names[i].first).num(static_cast<std::int64_t>(names[i].second));
        else
            other += names[i].second;
    }
    if (other)
        j.key("(other names)").num(static_cast<std::int64_t>(other));
    j.end_object();
    j.key("timelines")
        .begin_object()
        .key("split")
        .num(static_cast<std::int64_t>(d.planner.projects_split()))
        .key("restored")
        .num(static_cast<std::int64_t>(d.planner.projects_restored()))
        .end_object();
    j.key("budgets").begin_object();
    j.key("capital").num_text(b.capital.value_or(""));
    j.key("expense").num_text(b.expense.value_or(""));
    j.key("total").num_text(b.total.value_or(""));
    j.end_object();
    j.key("assignments")
        .begin_object()
        .key("total")
        .num(static_cast<std::int64_t>(d.assignments))
        .key("archived")
        .num(static_cast<std::int64_t>(archived_assignments))
        .key("matched")
        .num(static_cast<std::int64_t>(d.matched))
        .key("outside")
        .num(static_cast<std::int64_t>(d.outside))
        .end_object();
    // How NOT NULL and the date check were proven: while the rows were
    // written ("rewrite") or by a scan after ("scan"); see rewrite_phases.
    j.key("phase_check_validation").str(check_validation);
    add_timings(j, stages);
    j.end_object();
    return j.text();
}

// phase_type and budgets of every phase into phasemig_phase_archive, in one
// pass, packed into chunks.
std::uint64_t archive_legacy_phases(const Target& t, const KeyTypes& types, std::int64_t run_id)
{
    const Table& pp = t.phases;
    std::vector<AttrNumber> attrs = {pp.col("id").attnum, pp.col("project_id").attnum, pp.col("phase_type").attnum};
    const bool budgets = append_budget_attrs(pp, attrs);
    const KeyType fk = key_type_of(pp.col("project_id").type);
    PhaseArchiveWriter w(run_id, types.phase, fk);
    const PhaseTypeOutput pt = phase_type_output(pp);
    // An enum's label text kept per label OID.
    std::vector<std::pair<Oid, std::string>> enum_labels;
    scan_table(pp.oid, attrs, [&](const Datum* v, const bool* n) {
        core::PhaseArchiveEntry e;
        e.phase = datum_to_key(v[0], types.phase);
        e.has_project = !n[1];
        if (!n[1])
            e.project = datum_to_key(v[1], fk);
        if (n[2]) {
            // NULL: stays absent (preflight refused it already)
        } else if (pt.is_string) {
            e.phase_type = varlena_bytes(v[2]);
        } else if (pt.is_enum) {
            const Oid label_oid = DatumGetObjectId(v[2]);
            std::size_t i = 0;
            while (i < enum_labels.size() && enum_labels[i].first != label_oid)
                i++;
            if (i == enum_labels.size())
                enum_labels.emplace_back(label_oid, OutputFunctionCall(pt.out, v[2]));
            const std::string& label = enum_labels[i].second;
            e.phase_type = core::Bytes{reinterpret_cast<const unsigned char*>(label.data()),
                                       static_cast<std::uint32_t>(label.size())};
        } else {
            const char* label = OutputFunctionCall(pt.out, v[2]);
            e.phase_type = core::Bytes{reinterpret_cast<const unsigned char*>(label),
                                       static_cast<std::uint32_t>(strlen(label))};
        }
        if (budgets)
            set_budgets(e, v + 3, n + 3);
        w.add(e);
    });
    w.finish();
    return w.written();
}

// The new columns' values as the column types want them: a string in a
// text, varchar or char column, a date in a date column.  Other types (an
// archived definition the user changed) take the ALTER TABLE path below,
// which casts as SQL does.
bool own_rewrite_fits(Oid relid, const std::vector<NewColumn>& cols)
{
    return guarded([&] {
        for (const auto& c : cols) {
            const Oid type = get_atttype(relid, get_attnum(relid, c.name));
            const bool date_column = strcmp(c.name, "start_date") == 0 || strcmp(c.name, "end_date") == 0;
            if (date_column ? type != DATEOID : (type != TEXTOID && type != VARCHAROID && type != BPCHAROID))
                return false;
        }
        return true;
    });
}

// Whether an archived CHECK definition is the date check phasemig itself
// defines (as written here or as pg_get_constraintdef prints it).
bool standard_date_check(const std::string& def)
{
    return def == "CHECK (start_date <= end_date)" || def == "CHECK ((start_date <= end_date))";
}

// project_phases rewritten by phasemig itself (pg/rewrite.hpp): the four
// columns added and phase_type dropped first, each row then filled from the
// plan.  Every row's name and dates come from the plan, so the rewrite
// knows whether NOT NULL and the date check hold for all of them: when the
// check is the standard one and every range is ordered, both are recorded as
// proven (as ALTER TABLE does when it checks new constraints during its own
// rewrite) instead of proven again by a scan, about a tenth of the step at
// 10M assignments.  Otherwise ALTER TABLE's scan decides (and names a row
// that fails).  Returns "rewrite" or "scan".
const char* rewrite_phases(const Target& t, const KeyTypes& types, const core::UpgradePlanner& planner,
                           const std::vector<NewColumn>& cols, const std::string& check_def)
{
    spi_exec("ALTER TABLE " + t.phases.qualified + " DROP COLUMN phase_type");

    const Oid relid = t.phases.oid;
    ColumnInput col[4];
    MemoryContext cache_cxt = CurrentMemoryContext;
    for (int i = 0; i < 4; i++)
        col[i] = column_input(relid, cols[i].name);
    // A name or description as a value of its column: once per distinct
    // string (names repeat: "Planning", "Execution"), through the type's
    // input function, which applies a varchar's or char's length.
    std::vector<Datum> cache[2];
    std::vector<char> cached[2];
    for (int i = 0; i < 2; i++) {
        cache[i].assign(planner.string_count(), 0);
        cached[i].assign(planner.string_count(), 0);
    }
    auto string_value = [&](int which, const ColumnInput& c, std::uint32_t s) {
        if (!cached[which][s]) {
            MemoryContext old = MemoryContextSwitchTo(cache_cxt);
            const std::string& text = planner.string_at(s);
            cache[which][s] = c.type == TEXTOID ? PointerGetDatum(cstring_to_text_with_len(text.data(), text.size()))
                                                : c.value(text.c_str());
            MemoryContextSwitchTo(old);
            cached[which][s] = 1;
        }
        return cache[which][s];
    };
    const AttrNumber a_id = t.phases.col("id").attnum;
    std::size_t cursor = 0;
    bool ordered = true;
    rewrite_table(
        relid,
        [&](Datum* v, bool* n, const ItemPointerData*) {
            const core::Key id = datum_to_key(v[a_id - 1], types.phase);
            const core::PlannedPhase* p = planner.find_in_order(id, cursor);
            planner.prefetch_in_order(cursor + 8);
            if (!p)
                throw phase_appeared(id, types.phase);
            ordered &= p->range.start <= p->range.end;
            v[col[0].att - 1] = string_value(0, col[0], p->name);
            n[col[0].att - 1] = false;
            v[col[1].att - 1] = DateADTGetDatum(p->range.start);
            n[col[1].att - 1] = false;
            v[col[2].att - 1] = DateADTGetDatum(p->range.end);
            n[col[2].att - 1] = false;
            n[col[3].att - 1] = p->description == 0;
            v[col[3].att - 1] = p->description == 0 ? (Datum) 0 : string_value(1, col[3], p->description);
        },
        [&](std::uint64_t rows) {
            if (Stages* s = current_stages())
                s->progress(rows, planner.phase_count());
        });

    const std::string add_check =
        "ALTER TABLE " + t.phases.qualified + " ADD CONSTRAINT " + kCheckName + " " + check_def;
    // Name and dates are never NULL in the rewrite; a description may be.
    if (ordered && standard_date_check(check_def) && !cols[3].notnull) {
        spi_exec(add_check + " NOT VALID");
        mark_constraint_validated(relid, find_constraint(relid, kCheckName).oid);
        std::vector<const char*> notnull;
        for (const auto& c : cols)
            if (c.notnull)
                notnull.push_back(c.name);
        mark_not_null(relid, notnull);
        return "rewrite";
    }
    std::string verify = add_check;
    for (const auto& c : cols)
        if (c.notnull)
            verify += ", ALTER COLUMN " + quote_ident(c.name) + " SET NOT NULL";
    spi_exec(verify);
    return "scan";
}

// The same through ALTER TABLE ... USING (the columns added already), for
// column types the own rewrite does not produce: every column filled in the
// one rewrite (the USING
// clauses of one ALTER TABLE are evaluated in one pass over the table).
void alter_phases(const Target& t, const KeyTypes& types, const core::UpgradePlanner& planner,
                  const std::vector<NewColumn>& cols, const std::string& check_def, std::uint64_t phases)
{
    const Extension& ext = extension();
    FillContext ctx;
    ctx.token = new_fill_token();
    ctx.planner = &planner;
    ctx.phase_key = types.phase;
    ctx.expected_rows = phases * 4;
    ActiveFill active(ctx);
    const std::string tok = std::to_string(ctx.token);
    const std::string fill_text = ext.qschema + "._phasemig_fill_text(id, ";
    const std::string fill_date = ext.qschema + "._phasemig_fill_date(id, ";
    std::string alter = "ALTER TABLE " + t.phases.qualified;
    alter += " ALTER COLUMN name TYPE " + cols[0].type + " USING " + fill_text + "1, " + tok + ")";
    alter += ", ALTER COLUMN start_date TYPE " + cols[1].type + " USING " + fill_date + "1, " + tok + ")";
    alter += ", ALTER COLUMN end_date TYPE " + cols[2].type + " USING " + fill_date + "2, " + tok + ")";
    alter += ", ALTER COLUMN description TYPE " + cols[3].type + " USING " + fill_text + "2, " + tok + ")";
    for (const auto& c : cols)
        if (c.notnull)
            alter += ", ALTER COLUMN " + quote_ident(c.name) + " SET NOT NULL";
    alter += ", ADD CONSTRAINT " + std::string(kCheckName) + " " + check_def;
    alter += ", DROP COLUMN phase_type";
    spi_exec(alter);
}

}  // namespace

void prepare_upgrade(const Target& t, bool restore, UpgradePrep& prep, bool scan_assignments)
{
    check_schema(t, kLegacyRevision, prep.findings, prep.types);
    check_blocking_dependents(t, {{&t.phases, "phase_type"}, {&t.assignments, "project_phase_id"}}, prep.findings);
    // Dropped objects and column definitions always come back; restore =>
    // false only recomputes the timelines instead of restoring them.
    const std::optional<std::int64_t> last_downgrade = latest_run(t.schema, "downgrade");
    prep.restore_run = restore ? last_downgrade : std::nullopt;
    prep.objects = load_objects(last_downgrade);
    std::vector<std::string> relations = {kStartIndex, kEndIndex};
    std::vector<std::pair<const Table*, std::string>> constraints = {{&t.phases, kCheckName}};
    for (const auto& o : prep.objects) {
        if (o.kind == "index" && o.name != kStartIndex && o.name != kEndIndex)
            relations.push_back(o.name);
        if (o.kind == "constraint" && o.name != kCheckName)
            constraints.push_back({&t.phases, o.name});
    }
    check_name_conflicts(t, relations, constraints, prep.findings);
    if (has_errors(prep.findings))
        return;
    load_legacy(t, prep.types, prep.restore_run, prep.data, scan_assignments);
    if (scan_assignments)
        tally_legacy_assignments(t, prep.types, prep.data);
    findings_for_upgrade(prep.data, prep.types, prep.findings);
}

namespace {

std::string upgrade(const std::string& schema, bool dry_run, bool restore)
{
    Stages st("upgrade", schema, 7);

    const int settings = pin_step_settings();
    st.begin("lock");
    Target t = inspect_target(schema);
    require_legacy(t);
    require_owner(t.phases);
    require_owner(t.assignments);
    require_select(t.projects);
    if (t.alembic.present())
        require_update(t.alembic);
    lock_target(t);
    begin_locked_snapshot();
    t = inspect_target(schema);  // what we locked is what we change
    require_legacy(t);
    st.end();

    st.begin("preflight");
    UpgradePrep prep;
    // The assignments are read once, later, while they are archived.
    prepare_upgrade(t, restore, prep, false);
    if (has_errors(prep.findings))
        refuse("upgrade", schema, prep.findings);
    const KeyTypes& types = prep.types;
    const std::vector<ArchivedObject>& objs = prep.objects;
    LegacyData& data = prep.data;
    st.end();

    st.begin("archive");
    Baseline base;
    base.projects = data.projects;
    base.phases = data.phases;
    base.assignments = data.assignments;
    read_budgets(t, base, data.budgets_present ? &data.budgets : nullptr);
    const std::int64_t run_id = begin_run(schema, "upgrade", restore, t, base, kLegacyRevision, kUpgradedRevision,
                                         types.assignment == KeyType::Uuid ? "uuid" : "integer");
    drop_superseded_archives(schema, "upgrade", run_id);
    std::uint64_t archived = 0;
    const std::uint64_t archived_phases = archive_legacy_phases(t, types, run_id);
    {
        // One pass over the assignments: archived in their physical order,
        // and tallied against the new timeline for the summary.
        AssignmentArchiveWriter writer(run_id);
        tally_legacy_assignments(t, types, data, &writer);
        writer.finish();
        archived = writer.written();
    }
    archive_objects(run_id, t.phases, {"phase_type"});
    archive_objects(run_id, t.assignments, {"project_phase_id"});
    st.end();

    st.begin("phases");
    const char* check_validation = nullptr;
    {
        const auto cols = new_columns(objs);
        const ArchivedObject* check = find_object(objs, "constraint", "project_phases", kCheckName);
        const std::string check_def =
            check && check->definition ? *check->definition : std::string("CHECK (start_date <= end_date)");
        std::string add = "ALTER TABLE " + t.phases.qualified;
        for (std::size_t i = 0; i < cols.size(); i++)
            add += std::string(i ? "," : "") + " ADD COLUMN " + quote_ident(cols[i].name) + " " + cols[i].type;
        spi_exec(add);
        if (own_rewrite_fits(t.phases.oid, cols)) {
            check_validation = rewrite_phases(t, types, data.planner, cols, check_def);
        } else {
            // ALTER TABLE checks its new constraints while it rewrites.
            alter_phases(t, types, data.planner, cols, check_def, data.phases);
            check_validation = "rewrite";
        }
        for (const auto& c : cols)
            if (c.archived)
                restore_column_extras(t.phases, *c.archived);
    }
    st.end();

    st.begin("indexes");
    for (const char* name : {kStartIndex, kEndIndex}) {
        const ArchivedObject* idx = find_object(objs, "index", "project_phases", name);
        if (idx && idx->definition)
            spi_exec(*idx->definition);
        else
            spi_exec(strfmt("CREATE INDEX %s ON %s (%s)", name, t.phases.qualified.c_str(),
                            name == kStartIndex ? "start_date" : "end_date"));
    }
    for (const auto& o : objs)
        if (o.kind != "column" && o.name != kStartIndex && o.name != kEndIndex && o.name != kCheckName)
            restore_object(t.phases, o);
    st.end();

    st.begin("assignments");
    // Drops the column's foreign key and index with it; their definitions are
    // in the archive.
    spi_exec("ALTER TABLE " + t.assignments.qualified + " DROP COLUMN project_phase_id");
    st.end();

    st.begin("alembic");
    const bool moved = move_alembic(t, kLegacyRevision, kUpgradedRevision);
    st.end();

    std::string summary =
        summarize(schema, dry_run, restore, run_id, t, data, base, archived, moved, check_validation, st);
    st.finish();
    end_locked_snapshot();
    restore_step_settings(settings);
    finish_run(run_id, summary, archived_phases, archived, data.assignments);
    return summary;
}

}  // namespace

}  // namespace phasemig::pg

using namespace phasemig::pg;

// phasemig_upgrade(target_schema text, dry_run boolean, restore boolean) RETURNS jsonb
PHASEMIG_FUNCTION(phasemig_upgrade)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        const bool dry_run = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
        const bool restore = PG_ARGISNULL(2) || PG_GETARG_BOOL(2);
        spi_connect();
        std::string summary = run_step(dry_run, [&] { return upgrade(schema, dry_run, restore); });
        spi_finish();
        return jsonb_from_text(summary);
    });
}
