// phasemig_downgrade: upgraded (date-ranged phases) back to legacy
// (phase_type, and project_phase_id on every assignment), SPEC §3.
#include <map>

#include <optional>

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

void require_upgraded(const Target& t)
{
    switch (t.state) {
    case State::Upgraded: return;
    case State::Legacy:
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    strfmt("schema \"%s\" is already at the legacy revision", t.schema.c_str()), t.state_detail,
                    "phasemig_upgrade() moves it to the upgraded revision.");
    case State::Absent:
        throw Error(ERRCODE_UNDEFINED_TABLE, strfmt("schema \"%s\" has nothing to downgrade", t.schema.c_str()),
                    t.state_detail, "Pass the schema that holds the application's tables as target_schema.");
    case State::Mixed:
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    strfmt("schema \"%s\" is half-migrated", t.schema.c_str()), t.state_detail,
                    "phasemig_status() shows what is where; restore the schema to one revision before migrating.");
    }
}

// The type phase_type comes back with: the archived one, else the enum
// phasetype of the schema, else varchar.
std::string phase_type_type(const Target& t, const ArchivedObject* archived)
{
    if (archived && archived->type && resolve_type(*archived->type))
        return *archived->type + (archived->collation ? " COLLATE " + *archived->collation : "");
    const std::string enum_name = t.qschema + ".phasetype";
    if (auto resolved = resolve_type(enum_name))
        return enum_name;
    return "character varying";
}

// One pass over the phases: every phase's name, dates, description and
// budgets into the archive (the user's edits survive a later upgrade), and
// its phase_type for the rewrite: the archived one (by id, SPEC §3: "for
// phases that existed at upgrade time"), else derived from the name.
std::uint64_t archive_and_type_phases(const Target& t, const KeyTypes& types, std::int64_t run_id,
                                      std::optional<std::int64_t> archive_run, PhaseTypes& out,
                                      std::uint64_t& restored, std::map<std::string, std::uint64_t>& by_type)
{
    // phase -> label, in the upgrade's scan order: the same physical order
    // as the scan below, unless phases were added or deleted since.
    core::OrderedKeyMap<std::uint32_t> archived;
    std::size_t archived_cursor = 0;
    auto label_id = [&](std::string_view label) {
        for (std::uint32_t i = 0; i < out.labels.size(); i++)
            if (out.labels[i] == label)
                return i;
        out.labels.emplace_back(label);
        return static_cast<std::uint32_t>(out.labels.size() - 1);
    };
    if (archive_run) {
        // Sized once (see FlatKeyMap): about one entry per phase.
        archived.reserve(estimated_rows(t.phases.oid));
        read_phase_archive(*archive_run, [&](const core::PhaseArchiveEntry& e) {
            if (e.phase_type.present())
                archived.put(e.phase, label_id(std::string_view(reinterpret_cast<const char*>(e.phase_type.data),
                                                                e.phase_type.len)));
        });
    }
    const std::uint32_t planning = label_id(core::kind_label_upper(core::PhaseKind::Planning));
    const std::uint32_t execution = label_id(core::kind_label_upper(core::PhaseKind::Execution));

    const Table& pp = t.phases;
    const bool has_description = pp.has("description");
    std::vector<AttrNumber> attrs = {pp.col("id").attnum, pp.col("project_id").attnum, pp.col("name").attnum,
                                     pp.col("start_date").attnum, pp.col("end_date").attnum,
                                     has_description ? pp.col("description").attnum : pp.col("id").attnum};
    const bool budgets = append_budget_attrs(pp, attrs);
    const KeyType fk = key_type_of(pp.col("project_id").type);
    PhaseArchiveWriter w(run_id, types.phase, fk);
    out.by_phase.reserve(estimated_rows(pp.oid));
    std::vector<std::uint64_t> counts;
    scan_table(pp.oid, attrs, [&](const Datum* v, const bool* n) {
        const core::Key id = datum_to_key(v[0], types.phase);
        core::PhaseArchiveEntry e;
        e.phase = id;
        e.has_project = !n[1];
        if (!n[1])
            e.project = datum_to_key(v[1], fk);
        if (!n[2])
            e.name = varlena_bytes(v[2]);  // varchar and text share their representation
        e.has_start = !n[3];
        e.start = n[3] ? 0 : DatumGetDateADT(v[3]);
        e.has_end = !n[4];
        e.end = n[4] ? 0 : DatumGetDateADT(v[4]);
        if (has_description && !n[5])
            e.description = varlena_bytes(v[5]);
        if (budgets)
            set_budgets(e, v + 6, n + 6);
        w.add(e);

        std::uint32_t label;
        if (const std::uint32_t* a = archived.find_in_order(id, archived_cursor)) {
            label = *a;
            restored++;
        } else {
            const std::string_view name(reinterpret_cast<const char*>(e.name.data), e.name.len);
            label = e.name.present() && core::kind_from_name(name) == core::PhaseKind::Planning ? planning : execution;
        }
        out.by_phase.put(id, label);
        if (counts.size() <= label)
            counts.resize(label + 1, 0);
        counts[label]++;
    });
    w.finish();
    for (std::uint32_t i = 0; i < counts.size(); i++)
        if (counts[i])
            by_type[out.labels[i]] += counts[i];
    return w.written();
}

// How resource_assignments_project_phase_id_fkey comes back validated.
// The rewrite wrote into project_phase_id only ids of the phase index, which
// was read from project_phases under the ACCESS EXCLUSIVE locks this
// transaction holds on both tables until it ends: the constraint holds for
// every row by construction.  VALIDATE CONSTRAINT would prove it again by
// joining every assignment with every phase, a fifth of the step.  So when
// the constraint is exactly project_phase_id -> project_phases (id), it is
// marked validated the way VALIDATE CONSTRAINT does after its scan; any other
// shape (say a composite key restored from the archive) is left to
// PostgreSQL's scan.  Returns "rewrite" or "scan".
const char* validate_phase_fk(const Target& t)
{
    const auto con = spi_value(
        "SELECT c.oid FROM pg_catalog.pg_constraint c"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attname = 'project_phase_id'"
        " JOIN pg_catalog.pg_attribute b ON b.attrelid = c.confrelid AND b.attname = 'id'"
        " WHERE c.conrelid = $1::pg_catalog.oid AND c.confrelid = $2::pg_catalog.oid AND c.conname = $3"
        " AND c.contype = 'f' AND NOT c.convalidated"
        " AND c.conkey = ARRAY[a.attnum] AND c.confkey = ARRAY[b.attnum]",
        {Arg::of(static_cast<std::int64_t>(t.assignments.oid)), Arg::of(static_cast<std::int64_t>(t.phases.oid)),
         Arg::of(kFkName)});
    if (!con) {
        spi_exec("ALTER TABLE " + t.assignments.qualified + " VALIDATE CONSTRAINT " + kFkName);
        return "scan";
    }
    mark_constraint_validated(t.assignments.oid, static_cast<Oid>(std::stoul(*con)));
    return "rewrite";
}

enum class Passes { One, Two };

// Adds project_phase_id and fills it in one rewrite of resource_assignments
// (every row gets a value, so the column is NOT NULL).  Passes::Two: the
// first pass (prepare_downgrade_assignments) has run.
void fill_assignments(const Target& t, const KeyTypes& types, const DowngradePrep& prep, Passes passes,
                      const std::string& phase_id_type, FillContext& ctx)
{
    const UpgradedData& data = prep.data;
    ctx.data = &data;
    ctx.phase_key = types.phase;
    ctx.project_key = key_type_of(t.assignments.col("project_id").type);
    ctx.assignment_key = types.assignment;
    ctx.one_pass = passes == Passes::One;
    ctx.expected_rows = ctx.one_pass ? estimated_rows(t.assignments.oid) : data.assignments;
    // The archive, row by row inside the rewrite.
    std::optional<AssignmentArchiveReader> reader;
    std::optional<ArchivePass2> pass2;
    std::optional<ArchiveOnePass> pass1of1;
    if (prep.restore_assignments) {
        reader.emplace(*prep.archive_run);
        // The rewrite meets rows in archive order: each entry read ahead
        // prefetches what its row will look up.
        reader->set_on_read([&](const ArchivedAssignment& e) {
            data.index.prefetch(e.project);
            data.phase_project.prefetch(e.phase);
        });
        if (ctx.one_pass) {
            pass1of1.emplace(*reader);
            ctx.archive_one_pass = &*pass1of1;
        } else {
            pass2.emplace(*reader, data.unarchived, data.early);
            ctx.archive = &*pass2;
        }
    }
    // The column comes NOT NULL with a placeholder default, which costs no
    // scan (the rows read the default until the rewrite gives each its
    // value); the rewrite clears the stored default value and the default
    // goes right after.  Every row gets a value or the step fails.
    const std::string ra = t.assignments.qualified;
    spi_exec("ALTER TABLE " + ra + " ADD COLUMN project_phase_id " + phase_id_type + " NOT NULL DEFAULT " +
             (types.phase == KeyType::Uuid ? "'00000000-0000-0000-0000-000000000000'" : "0"));
    const Oid relid = t.assignments.oid;
    const AttrNumber target = guarded([&] { return get_attnum(relid, "project_phase_id"); });
    const AttrNumber a_id = t.assignments.col("id").attnum;
    const AttrNumber a_project = t.assignments.col("project_id").attnum;
    const AttrNumber a_date = t.assignments.col("assignment_date").attnum;
    rewrite_table(relid, [&](Datum* v, bool* n, const ItemPointerData* tid) {
        AssignmentRow row;
        row.id = datum_to_key(v[a_id - 1], ctx.assignment_key);
        row.project_null = n[a_project - 1];
        if (!row.project_null)
            row.project = datum_to_key(v[a_project - 1], ctx.project_key);
        row.date_null = n[a_date - 1];
        row.date = row.date_null ? 0 : DatumGetDateADT(v[a_date - 1]);
        v[target - 1] = fill_assignment(ctx, row, tid_position(tid));
        n[target - 1] = false;
    });
    spi_exec("ALTER TABLE " + ra + " ALTER COLUMN project_phase_id DROP DEFAULT");
    if (reader)
        reader->close();
}

std::string summarize(const std::string& schema, bool dry_run, bool restore, std::int64_t run_id, const Target& t,
                      const UpgradedData& d, const Baseline& b, const std::map<std::string, std::uint64_t>& by_type,
                      std::uint64_t types_restored, int assignment_passes, const char* fk_validation,
                      bool alembic_moved, const Stages& stages)
{
    Json j;
    j.begin_object();
    j.key("step").str("downgrade");
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
            .str(kUpgradedRevision)
            .key("to")
            .str(kLegacyRevision)
            .key("moved")
            .boolean(alembic_moved)
            .end_object();
    else
        j.null();
    j.key("projects").num(static_cast<std::int64_t>(d.projects));
    j.key("phases").num(static_cast<std::int64_t>(d.phases));
    j.key("phases_by_type").begin_object();
    for (const auto& [type, n] : by_type)
        j.key(type).num(static_cast<std::int64_t>(n));
    j.end_object();
    j.key("phase_types_restored").num(static_cast<std::int64_t>(types_restored));
    j.key("budgets").begin_object();
    j.key("capital").num_text(b.capital.value_or(""));
    j.key("expense").num_text(b.expense.value_or(""));
    j.key("total").num_text(b.total.value_or(""));
    j.end_object();
    j.key("assignments")
        .begin_object()
        .key("total")
        .num(static_cast<std::int64_t>(d.assignments))
        .key("restored")
        .num(static_cast<std::int64_t>(d.restored))
        .key("matched")
        .num(static_cast<std::int64_t>(d.matched))
        .key("outside")
        .num(static_cast<std::int64_t>(d.outside))
        .end_object();
    // 2 when the table was reorganized since the upgrade (see the rewrite).
    j.key("assignment_passes").num(assignment_passes);
    // How the phase foreign key was validated (validate_phase_fk); null when
    // the archive restored it not valid, as it was.
    j.key("phase_fk_validation");
    if (fk_validation)
        j.str(fk_validation);
    else
        j.null();
    add_timings(j, stages);
    j.end_object();
    return j.text();
}

}  // namespace

void prepare_downgrade(const Target& t, bool restore, DowngradePrep& prep, bool coverage, bool scan_assignments)
{
    check_schema(t, kUpgradedRevision, prep.findings, prep.types);
    std::vector<std::pair<const Table*, std::string>> cols;
    for (const char* c : {"name", "start_date", "end_date", "description"})
        cols.push_back({&t.phases, c});
    check_blocking_dependents(t, cols, prep.findings);
    // The archive always gives back phase_type and the dropped objects;
    // restore => false only stops it from giving assignments their phase.
    prep.archive_run = latest_run(t.schema, "upgrade");
    prep.restore_assignments = restore && prep.archive_run.has_value();
    prep.objects = load_objects(prep.archive_run);
    std::vector<std::string> relations = {kAssignmentPhaseIndex};
    std::vector<std::pair<const Table*, std::string>> constraints = {{&t.assignments, kFkName}};
    for (const auto& o : prep.objects) {
        const Table* table = o.table == "project_phases" ? &t.phases : &t.assignments;
        if (o.kind == "index" && o.name != kAssignmentPhaseIndex)
            relations.push_back(o.name);
        if (o.kind == "constraint" && o.name != kFkName)
            constraints.push_back({table, o.name});
    }
    check_name_conflicts(t, relations, constraints, prep.findings);
    if (has_errors(prep.findings))
        return;
    load_upgraded(t, prep.types, prep.data, UpgradedLoad::Downgrade);
    if (coverage)
        check_coverage_all(t, prep.types, prep.data);
    else
        prep.data.projects = static_cast<std::uint64_t>(spi_int("SELECT count(*) FROM " + t.projects.qualified));
    if (scan_assignments)
        prepare_downgrade_assignments(t, prep);
    findings_for_downgrade(prep.data, prep.types, prep.archive_run.has_value(), prep.findings);
}

void prepare_downgrade_assignments(const Target& t, DowngradePrep& prep)
{
    tally_upgraded_assignments(t, prep.types, prep.restore_assignments ? prep.archive_run : std::nullopt, prep.data);
}

namespace {

std::string downgrade(const std::string& schema, bool dry_run, bool restore)
{
    Stages st("downgrade", schema, 6);

    const int settings = pin_step_settings();
    st.begin("lock");
    Target t = inspect_target(schema);
    require_upgraded(t);
    require_owner(t.phases);
    require_owner(t.assignments);
    require_select(t.projects);
    if (t.alembic.present())
        require_update(t.alembic);
    lock_target(t);
    begin_locked_snapshot();
    t = inspect_target(schema);
    require_upgraded(t);
    st.end();

    st.begin("preflight");
    DowngradePrep prep;
    // The coverage warnings are for phasemig_preflight; the step goes
    // without.  The assignments are read in the rewrite (see below).
    prepare_downgrade(t, restore, prep, false, false);
    if (has_errors(prep.findings))
        refuse("downgrade", schema, prep.findings);
    const KeyTypes& types = prep.types;
    const std::vector<ArchivedObject>& objs = prep.objects;
    const std::optional<std::int64_t>& archive_run = prep.archive_run;
    UpgradedData& data = prep.data;
    const std::vector<std::string> dropped = {"name", "start_date", "end_date", "description"};
    st.end();

    st.begin("archive");
    Baseline base;
    base.projects = data.projects;
    base.phases = data.phases;
    base.assignments = data.assignments;
    read_budgets(t, base, data.stats.budgets_present ? &data.stats.budgets : nullptr);
    const std::int64_t run_id = begin_run(schema, "downgrade", restore, t, base, kUpgradedRevision, kLegacyRevision,
                                         types.assignment == KeyType::Uuid ? "uuid" : "integer");
    drop_superseded_archives(schema, "downgrade", run_id);
    archive_objects(run_id, t.phases, dropped);
    PhaseTypes phase_types;
    std::uint64_t types_restored = 0;
    std::map<std::string, std::uint64_t> by_type;
    const std::uint64_t archived_phases =
        archive_and_type_phases(t, types, run_id, archive_run, phase_types, types_restored, by_type);
    st.end();

    const std::string phase_id_type =
        guarded([&] { return std::string(format_type_be_qualified(t.phases.col("id").type)); });

    st.begin("assignments");
    // One pass first: the rewrite meets the archive as it goes, inside a
    // subtransaction.  If a row may come before its archive entry (the table
    // was reorganized since the upgrade), or a row cannot get a phase, the
    // rewrite gives up, is rolled back, and the assignments are read once
    // more before it: the two passes of core/archive_merge.hpp, and the
    // preflight's error for assignments without phases.
    const char* fk_validation = nullptr;
    FillContext one;
    const bool done = try_subtransaction(
        [&] { fill_assignments(t, types, prep, Passes::One, phase_id_type, one); },
        [&] { return one.needs_second_pass; });
    if (done) {
        data.assignments = one.rows;
        data.restored = one.restored;
        data.matched = one.matched;
        data.outside = one.outside;
    } else {
        prepare_downgrade_assignments(t, prep);
        std::vector<Finding> findings;
        findings_for_downgrade(data, types, archive_run.has_value(), findings);
        if (has_errors(findings))
            refuse("downgrade", schema, findings);
        FillContext two;
        fill_assignments(t, types, prep, Passes::Two, phase_id_type, two);
        // Both passes apply the same rule to the same rows under the same lock.
        if (two.restored != data.restored || two.matched != data.matched || two.outside != data.outside)
            throw Error(ERRCODE_INTERNAL_ERROR, "phasemig's two passes over the assignments disagree",
                        strfmt("First pass: %llu restored, %llu matched, %llu outside; rewrite: %llu, %llu, %llu.",
                               static_cast<unsigned long long>(data.restored),
                               static_cast<unsigned long long>(data.matched),
                               static_cast<unsigned long long>(data.outside),
                               static_cast<unsigned long long>(two.restored),
                               static_cast<unsigned long long>(two.matched),
                               static_cast<unsigned long long>(two.outside)));
    }
    {
        const ArchivedObject* col = find_object(objs, "column", "resource_assignments", "project_phase_id");
        if (col)
            restore_column_extras(t.assignments, *col);
        const ArchivedObject* fk = find_object(objs, "constraint", "resource_assignments", kFkName);
        bool validate = true;
        if (fk)
            validate = add_archived_object(t.assignments, *fk);
        else
            spi_exec("ALTER TABLE " + t.assignments.qualified + " ADD CONSTRAINT " + kFkName +
                     " FOREIGN KEY (project_phase_id) REFERENCES " + t.phases.qualified + " (id) NOT VALID");
        if (validate)
            fk_validation = validate_phase_fk(t);
        const ArchivedObject* idx = find_object(objs, "index", "resource_assignments", kAssignmentPhaseIndex);
        if (idx && idx->definition)
            spi_exec(*idx->definition);
        else
            spi_exec(strfmt("CREATE INDEX %s ON %s (project_phase_id)", kAssignmentPhaseIndex,
                            t.assignments.qualified.c_str()));
        for (const auto& o : objs)
            if (o.table == "resource_assignments" && o.kind != "column" && o.name != kFkName &&
                o.name != kAssignmentPhaseIndex)
                restore_object(t.assignments, o);
    }
    if (data.outside > 0) {
        // The text is the reference behaviour's, word for word (SPEC §3).
        const unsigned long long n = data.outside;
        guarded([&] {
            ereport(WARNING,
                    (errmsg("%llu assignments were outside phase date ranges and assigned to first phase", n),
                     errdetail("No phase of their project holds their assignment_date, and the archive did not give "
                               "them a phase back.")));
        });
    }
    st.end();

    st.begin("phases");
    {
        const ArchivedObject* col = find_object(objs, "column", "project_phases", "phase_type");
        const std::string type = phase_type_type(t, col);
        const std::string pp = t.phases.qualified;
        const bool notnull = !col || col->notnull;
        // As in the assignments' rewrite: NOT NULL with a placeholder default
        // (one of the labels written) costs no scan; the columns the upgrade
        // added go first, so the rewrite writes them as NULL.
        std::string alter = "ALTER TABLE " + pp;
        const char* sep = " ";
        for (const auto& c : dropped)
            if (t.phases.has(c)) {
                alter += std::string(sep) + "DROP COLUMN " + c;
                sep = ", ";
            }
        alter += std::string(sep) + "ADD COLUMN phase_type " + type;
        if (notnull && !phase_types.labels.empty())
            alter += " NOT NULL DEFAULT " + sql_literal(phase_types.labels[0]);
        spi_exec(alter);
        const Oid relid = t.phases.oid;
        const ColumnInput phase_type = column_input(relid, "phase_type");
        const AttrNumber target = phase_type.att;
        const AttrNumber a_id = t.phases.col("id").attnum;
        // Each label as a value of the column's type, once.
        std::vector<Datum> label_values(phase_types.labels.size());
        guarded([&] {
            for (std::size_t i = 0; i < label_values.size(); i++)
                label_values[i] = phase_type.value(phase_types.labels[i].c_str());
        });
        std::size_t cursor = 0;
        rewrite_table(
            relid,
            [&](Datum* v, bool* n, const ItemPointerData*) {
                const core::Key id = datum_to_key(v[a_id - 1], types.phase);
                const std::uint32_t* label = phase_types.by_phase.find_in_order(id, cursor);
                if (!label)
                    throw phase_appeared(id, types.phase);
                v[target - 1] = label_values[*label];
                n[target - 1] = false;
            },
            [&](std::uint64_t rows) {
                if (Stages* s = current_stages())
                    s->progress(rows, data.phases);
            });
        if (notnull && phase_types.labels.empty())
            spi_exec("ALTER TABLE " + pp + " ALTER COLUMN phase_type SET NOT NULL");
        else if (notnull)
            spi_exec("ALTER TABLE " + pp + " ALTER COLUMN phase_type DROP DEFAULT");
        if (col)
            restore_column_extras(t.phases, *col);
        for (const auto& o : objs)
            if (o.table == "project_phases" && o.kind != "column")
                restore_object(t.phases, o);
    }
    st.end();

    st.begin("alembic");
    const bool moved = move_alembic(t, kUpgradedRevision, kLegacyRevision);
    st.end();

    std::string summary =
        summarize(schema, dry_run, restore, run_id, t, data, base, by_type, types_restored, done ? 1 : 2, fk_validation,
                  moved, st);
    st.finish();
    end_locked_snapshot();
    restore_step_settings(settings);
    finish_run(run_id, summary, archived_phases, 0, data.assignments);
    return summary;
}

}  // namespace

}  // namespace phasemig::pg

using namespace phasemig::pg;

// phasemig_downgrade(target_schema text, dry_run boolean, restore boolean) RETURNS jsonb
PHASEMIG_FUNCTION(phasemig_downgrade)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        const bool dry_run = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
        const bool restore = PG_ARGISNULL(2) || PG_GETARG_BOOL(2);
        spi_connect();
        std::string summary = run_step(dry_run, [&] { return downgrade(schema, dry_run, restore); });
        spi_finish();
        return jsonb_from_text(summary);
    });
}
