#include "pg/model.hpp"

#include <algorithm>
#include <cstring>

#include <boost/sort/pdqsort/pdqsort.hpp>

#include "core/archive_merge.hpp"
#include "core/coverage.hpp"
#include "pg/context.hpp"
#include "pg/guard.hpp"
#include "pg/scan.hpp"
#include "pg/spi.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

// ---------------------------------------------------------------- samples

void Sample::add(const core::Key& key)
{
    count_++;
    if (keys_.size() == kKeep && !(key < keys_.back()))
        return;
    auto pos = std::lower_bound(keys_.begin(), keys_.end(), key);
    if (pos != keys_.end() && *pos == key)
        return;
    keys_.insert(pos, key);
    if (keys_.size() > kKeep)
        keys_.pop_back();
}

std::string Sample::text(KeyType type) const
{
    std::vector<std::string> parts;
    for (const auto& k : keys_)
        parts.push_back(key_to_text(k, type));
    std::string s = join_plain(parts, ", ");
    if (count_ > keys_.size())
        s += ", ...";
    return s;
}

namespace {

Finding finding(const char* severity, const char* code, int sqlstate, std::string message, std::int64_t count,
                std::string sample = {})
{
    Finding f;
    f.severity = severity;
    f.code = code;
    f.sqlstate = sqlstate;
    f.message = std::move(message);
    f.count = count;
    f.sample = std::move(sample);
    return f;
}

KeyType column_key(const Table& t, const char* column)
{
    return key_type_of(t.col(column).type);
}

bool same_family(KeyType a, KeyType b)
{
    return (a == KeyType::Uuid) == (b == KeyType::Uuid);
}

std::string plural(std::uint64_t n, const char* one, const char* many)
{
    return group_thousands(static_cast<std::int64_t>(n)) + " " + (n == 1 ? one : many);
}

// A phase without dates: starts after every date and ends before it.
constexpr core::Range kNoDates{PG_INT32_MAX, PG_INT32_MIN};

// A phase as the last downgrade archived it: a restore candidate (a row
// without project, name or dates is none).
void add_archived_phase(core::UpgradePlanner& planner, const core::PhaseArchiveEntry& e)
{
    if (!e.has_project || !e.name.present() || !e.has_start || !e.has_end)
        return;
    auto text = [](const core::Bytes& b) { return std::string(reinterpret_cast<const char*>(b.data), b.len); };
    core::ArchivedPhase a;
    a.id = e.phase;
    a.project = e.project;
    a.name = text(e.name);
    a.range = core::Range{e.start, e.end};
    if (e.description.present())
        a.description = text(e.description);
    planner.add_archived(std::move(a));
}

// created_at as a monotone int64; false when NULL.
bool created_value(Oid type, Datum value, std::int64_t& out) noexcept
{
    switch (type) {
    case TIMESTAMPOID:
    case TIMESTAMPTZOID: out = DatumGetInt64(value); return true;
    case DATEOID: out = static_cast<std::int64_t>(DatumGetDateADT(value)) * USECS_PER_DAY; return true;
    default: return false;
    }
}

}  // namespace

namespace {

std::uint64_t hash_bytes64(const char* p, std::size_t n, std::uint64_t seed) noexcept
{
    std::uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    for (std::size_t i = 0; i < n; i++) {
        h ^= static_cast<unsigned char>(p[i]);
        h *= 0x100000001b3ULL;
    }
    return core::KeyHash{}(core::Key{h, seed});
}

bool contains_ascii_ci(std::string_view hay, std::string_view needle) noexcept
{
    for (std::size_t i = 0; i + needle.size() <= hay.size(); i++) {
        std::size_t k = 0;
        for (; k < needle.size(); k++) {
            char c = hay[i + k];
            if (c >= 'A' && c <= 'Z')
                c = static_cast<char>(c - 'A' + 'a');
            if (c != needle[k])
                break;
        }
        if (k == needle.size())
            return true;
    }
    return false;
}

}  // namespace

PhaseTypeOutput phase_type_output(const Table& pp)
{
    PhaseTypeOutput o;
    o.type = pp.col("phase_type").type;
    o.is_string = o.type == TEXTOID || o.type == VARCHAROID || o.type == BPCHAROID;
    guarded([&] {
        o.is_enum = get_typtype(o.type) == TYPTYPE_ENUM;
        Oid func;
        bool varlena;
        getTypeOutputInfo(o.type, &func, &varlena);
        o.out = static_cast<FmgrInfo*>(palloc0(sizeof(FmgrInfo)));
        fmgr_info(func, o.out);
    });
    return o;
}

bool append_budget_attrs(const Table& pp, std::vector<AttrNumber>& attrs)
{
    for (const char* c : {"capital_budget", "expense_budget", "total_budget"}) {
        if (!pp.has(c) || pp.col(c).type != NUMERICOID)
            return false;
    }
    for (const char* c : {"capital_budget", "expense_budget", "total_budget"})
        attrs.push_back(pp.col(c).attnum);
    return true;
}

// ---------------------------------------------------------------- schema checks

void check_schema(const Target& t, const char* expected_revision, std::vector<Finding>& out, KeyTypes& types)
{
    for (const Table* tab : {&t.projects, &t.phases, &t.assignments}) {
        if (tab->present() && tab->relkind != RELKIND_RELATION)
            out.push_back(finding("error", "unsupported_table_kind", ERRCODE_FEATURE_NOT_SUPPORTED,
                                  strfmt("%s is not an ordinary table (partitioned tables, views and foreign tables "
                                         "are not supported)",
                                         tab->name.c_str()),
                                  1, tab->name));
    }
    struct Need {
        const Table* table;
        const char* column;
    };
    std::vector<Need> needs = {{&t.projects, "id"},          {&t.projects, "start_date"},
                               {&t.projects, "end_date"},    {&t.phases, "id"},
                               {&t.phases, "project_id"},    {&t.assignments, "id"},
                               {&t.assignments, "project_id"}, {&t.assignments, "assignment_date"}};
    std::vector<std::string> missing;
    for (const Need& n : needs)
        if (!n.table->has(n.column))
            missing.push_back(n.table->name + "." + n.column);
    if (!missing.empty()) {
        out.push_back(finding("error", "missing_column", ERRCODE_UNDEFINED_COLUMN,
                              "required columns are missing: " + join_plain(missing, ", "),
                              static_cast<std::int64_t>(missing.size()), join_plain(missing, ", ")));
        return;
    }

    std::vector<std::string> bad_keys;
    for (const Need& n : std::vector<Need>{{&t.projects, "id"},
                                           {&t.phases, "id"},
                                           {&t.phases, "project_id"},
                                           {&t.assignments, "id"},
                                           {&t.assignments, "project_id"},
                                           {&t.assignments, "project_phase_id"}}) {
        if (n.table->has(n.column) && column_key(*n.table, n.column) == KeyType::Unsupported)
            bad_keys.push_back(n.table->name + "." + n.column + " (" +
                               guarded([&] { return format_type_be(n.table->col(n.column).type); }) + ")");
    }
    if (!bad_keys.empty())
        out.push_back(finding("error", "unsupported_id_type", ERRCODE_FEATURE_NOT_SUPPORTED,
                              "id columns must be uuid, bigint, integer or smallint: " + join_plain(bad_keys, ", "),
                              static_cast<std::int64_t>(bad_keys.size()), join_plain(bad_keys, ", ")));
    else {
        KeyType proj = column_key(t.projects, "id");
        bool ok = same_family(proj, column_key(t.phases, "project_id")) &&
                  same_family(proj, column_key(t.assignments, "project_id"));
        if (t.assignments.has("project_phase_id"))
            ok = ok && same_family(column_key(t.phases, "id"), column_key(t.assignments, "project_phase_id"));
        if (!ok)
            out.push_back(finding("error", "id_type_mismatch", ERRCODE_DATATYPE_MISMATCH,
                                  "referencing id columns do not have the type of the ids they reference", 1));
        else {
            types.project = proj;
            types.phase = column_key(t.phases, "id");
            types.assignment = column_key(t.assignments, "id");
        }
    }

    std::vector<std::string> bad_dates;
    for (const Need& n : std::vector<Need>{{&t.projects, "start_date"},
                                           {&t.projects, "end_date"},
                                           {&t.assignments, "assignment_date"},
                                           {&t.phases, "start_date"},
                                           {&t.phases, "end_date"}}) {
        if (n.table->has(n.column) && n.table->col(n.column).type != DATEOID)
            bad_dates.push_back(n.table->name + "." + n.column);
    }
    if (t.phases.has("created_at")) {
        Oid ct = t.phases.col("created_at").type;
        if (ct != TIMESTAMPOID && ct != TIMESTAMPTZOID && ct != DATEOID)
            bad_dates.push_back("project_phases.created_at");
    }
    if (!bad_dates.empty())
        out.push_back(finding("error", "unsupported_date_type", ERRCODE_FEATURE_NOT_SUPPORTED,
                              "these columns must be of type date (created_at: timestamp or date): " +
                                  join_plain(bad_dates, ", "),
                              static_cast<std::int64_t>(bad_dates.size()), join_plain(bad_dates, ", ")));

    if (expected_revision && t.alembic.present()) {
        if (!t.alembic.has("version_num")) {
            out.push_back(finding("error", "alembic_revision", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                  "alembic_version has no column version_num", 1));
        } else {
            auto rows = spi_rows("SELECT version_num::text FROM " + t.alembic.qualified + " ORDER BY 1");
            if (rows.size() > 1) {
                std::vector<std::string> revs;
                for (auto& r : rows)
                    revs.push_back(r[0].value_or("NULL"));
                out.push_back(finding("error", "alembic_revision", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                      strfmt("alembic_version holds %zu rows; phasemig moves a single revision",
                                             rows.size()),
                                      static_cast<std::int64_t>(rows.size()), join_plain(revs, ", ")));
            } else if (rows.size() == 1 && rows[0][0].value_or("") != expected_revision) {
                out.push_back(finding("error", "alembic_revision", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                      strfmt("alembic_version holds revision %s, not %s; the application's migration "
                                             "chain would break",
                                             rows[0][0].value_or("NULL").c_str(), expected_revision),
                                      1, rows[0][0].value_or("NULL")));
            }
        }
    }
}

void check_blocking_dependents(const Target& /*t*/, const std::vector<std::pair<const Table*, std::string>>& columns,
                               std::vector<Finding>& out)
{
    std::vector<std::string> blocking;
    for (const auto& [table, column] : columns) {
        std::vector<DependentObject> archivable;
        std::vector<std::string> b;
        column_dependents(*table, column, archivable, b);
        for (auto& d : b)
            blocking.push_back(d + " (on " + table->name + "." + column + ")");
    }
    if (!blocking.empty())
        out.push_back(finding("error", "dependent_objects", ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                              strfmt("%zu %s on columns the step drops and would be lost; drop %s first and "
                                     "re-create %s afterwards",
                                     blocking.size(), blocking.size() == 1 ? "object depends" : "objects depend",
                                     blocking.size() == 1 ? "it" : "them", blocking.size() == 1 ? "it" : "them"),
                              static_cast<std::int64_t>(blocking.size()), join_plain(blocking, "; ")));
}

void check_name_conflicts(const Target& t, const std::vector<std::string>& relations,
                          const std::vector<std::pair<const Table*, std::string>>& constraints,
                          std::vector<Finding>& out)
{
    std::vector<std::string> taken;
    for (const auto& r : relations)
        if (relation_name_taken(t.nsp, r))
            taken.push_back(r);
    for (const auto& [table, name] : constraints)
        if (OidIsValid(find_constraint(table->oid, name.c_str()).oid))
            taken.push_back(name + " on " + table->name);
    if (!taken.empty())
        out.push_back(finding("error", "name_conflict", ERRCODE_DUPLICATE_OBJECT,
                              "names the step creates are already taken: " + join_plain(taken, ", "),
                              static_cast<std::int64_t>(taken.size()), join_plain(taken, ", ")));
}

// ---------------------------------------------------------------- legacy

namespace {
// How far ahead of the row being processed a scan prefetches its lookups.
constexpr std::size_t kPrefetch = 16;
}  // namespace

void load_legacy(const Target& t, const KeyTypes& types, std::optional<std::int64_t> restore_run,
                 LegacyData& data, bool owners)
{
    const Table& pp = t.phases;
    const KeyType phase_fk = column_key(pp, "project_id");
    const bool has_created = pp.has("created_at");
    const Oid created_type = has_created ? pp.col("created_at").type : InvalidOid;
    std::vector<AttrNumber> attrs = {pp.col("id").attnum, pp.col("project_id").attnum, pp.col("phase_type").attnum,
                                     has_created ? pp.col("created_at").attnum : pp.col("id").attnum};
    data.budgets_present = append_budget_attrs(pp, attrs);

    // phase_type as text; an enum's kind kept per label OID.
    const PhaseTypeOutput pt = phase_type_output(pp);
    core::FlatKeyMap<std::int8_t> enum_kinds;  // label OID -> kind, -1 unknown

    // Sized once from the statistics: growing by doubling touches twice the
    // memory, and fresh memory costs a page fault per page.
    const std::uint64_t expected = estimated_rows(pp.oid);
    data.planner.reserve(expected, std::min<std::uint64_t>(expected, estimated_rows(t.projects.oid)));
    if (owners)
        data.phase_project.reserve(expected);
    if (data.budgets_present)
        data.budgets.reserve(expected);

    core::DelayedPuts<core::Key> owner_puts(data.phase_project);
    scan_table(pp.oid, attrs, [&](const Datum* v, const bool* n) {
        data.phases++;
        const core::Key id = datum_to_key(v[0], types.phase);
        if (n[1]) {
            data.null_project.add(id);
            return;
        }
        const core::Key project = datum_to_key(v[1], phase_fk);
        if (owners)
            owner_puts.put(id, project);
        if (data.budgets_present)
            data.budgets.add(project, v + 4, n + 4);
        if (n[2]) {
            data.unknown_type.add(id);
            data.planner.note_project(project);
            return;
        }
        std::optional<core::PhaseKind> kind;
        if (pt.is_enum) {
            const core::Key label = core::Key::from_int(DatumGetObjectId(v[2]));
            const std::int8_t* known = enum_kinds.find(label);
            if (!known) {
                const auto k = core::parse_phase_kind(OutputFunctionCall(pt.out, v[2]));
                known = &enum_kinds.put(label, k ? static_cast<std::int8_t>(*k) : std::int8_t{-1});
            }
            if (*known >= 0)
                kind = static_cast<core::PhaseKind>(*known);
        } else if (pt.is_string) {
            text* t = DatumGetTextPP(v[2]);
            std::string_view sv(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
            if (pt.type == BPCHAROID)
                while (!sv.empty() && sv.back() == ' ')
                    sv.remove_suffix(1);  // char(n) pads; its comparisons ignore the padding
            kind = core::parse_phase_kind(sv);
        } else {
            kind = core::parse_phase_kind(OutputFunctionCall(pt.out, v[2]));
        }
        if (!kind) {
            data.unknown_type.add(id);
            data.planner.note_project(project);
            return;
        }
        core::LegacyPhase lp;
        lp.id = id;
        lp.project = project;
        lp.kind = *kind;
        lp.has_created = has_created && !n[3] && created_value(created_type, v[3], lp.created);
        data.planner.add_phase(lp);
    });

    owner_puts.finish();
    if (data.budgets_present)
        data.budgets.finish();

    // Projects in batches: each lookup of the planner's map is prefetched a
    // few rows ahead (a million projects are far beyond the caches).
    const Table& pr = t.projects;
    const std::vector<ScanColumn> project_cols = {{pr.col("id").attnum, false, types.project},
                                                  {pr.col("start_date").attnum, true, KeyType::Unsupported},
                                                  {pr.col("end_date").attnum, true, KeyType::Unsupported}};
    scan_batches(pr.oid, project_cols, [&](const RowBatch& b) {
        for (std::size_t i = 0; i < b.n; i++) {
            if (i + kPrefetch < b.n && !b.nulls[0][i + kPrefetch])
                data.planner.prefetch_project(b.keys[0][i + kPrefetch]);
            data.projects++;
            if (b.nulls[0][i])
                continue;  // a NULL primary key cannot be, and no phase could name it
            const core::Key id = b.keys[0][i];
            std::optional<core::Day> s, e;
            if (!b.nulls[1][i] && date_is_finite(b.days[1][i]))
                s = b.days[1][i];
            if (!b.nulls[2][i] && date_is_finite(b.days[2][i]))
                e = b.days[2][i];
            if (!data.planner.set_project_dates(id, s, e))
                data.without_phases.add(id);
        }
    });

    if (restore_run) {
        // The timeline kept by the last downgrade: restore candidates.
        read_phase_archive(*restore_run, [&](const core::PhaseArchiveEntry& e) { add_archived_phase(data.planner, e); });
    }
    data.planner.plan(restore_run.has_value());
}

void tally_legacy_assignments(const Target& t, const KeyTypes& types, LegacyData& data,
                              AssignmentArchiveWriter* writer)
{
    const Table& ra = t.assignments;
    const std::vector<ScanColumn> cols = {{ra.col("id").attnum, false, types.assignment},
                                          {ra.col("project_id").attnum, false, column_key(ra, "project_id")},
                                          {ra.col("assignment_date").attnum, true, KeyType::Unsupported},
                                          {ra.col("project_phase_id").attnum, false, column_key(ra, "project_phase_id")}};
    scan_batches(
        ra.oid, cols,
        [&](const RowBatch& b) {
            const auto& id = b.keys[0];
            const auto& project = b.keys[1];
            const auto& date = b.days[2];
            const auto& phase = b.keys[3];
            for (std::size_t i = 0; i < b.n; i++) {
                if (i + kPrefetch < b.n) {
                    data.planner.prefetch_project(project[i + kPrefetch]);
                    if (!writer)
                        data.phase_project.prefetch(phase[i + kPrefetch]);
                }
                data.assignments++;
                const bool project_null = b.nulls[1][i];
                const bool date_null = b.nulls[2][i];
                if (writer && !b.nulls[3][i])
                    writer->add(b.pos[i], id[i], project_null, project[i], date_null, date[i], phase[i]);
                if (project_null) {
                    data.outside++;
                    continue;
                }
                const bool m = !date_null && data.planner.holds(project[i], date[i]);
                if (m) {
                    data.matched++;
                } else {
                    data.outside++;
                    data.outside_sample.add(project[i]);
                }
                // Phases of other projects only make warnings, for preflight:
                // the step (which archives) skips that lookup.
                if (!writer && !b.nulls[3][i]) {
                    const core::Key* owner = data.phase_project.find(phase[i]);
                    if (!owner)
                        data.phase_missing.add(id[i]);
                    else if (*owner != project[i])
                        data.phase_elsewhere.add(id[i]);
                }
            }
        },
        [&](std::uint64_t seen) {
            if (Stages* s = current_stages())
                s->progress(seen, estimated_rows(ra.oid));
        },
        // The step reads the assignments this once (it only drops a column
        // of theirs after): no point in passing them through shared buffers.
        writer ? Read::Once : Read::Buffered);
}

// ---------------------------------------------------------------- upgraded

PhaseStats::RecentName* PhaseStats::recent(const char* name, std::size_t len) noexcept
{
    for (std::size_t i = 0; i < recent_names.size() && i < recent_next; i++) {
        RecentName& r = recent_names[i];
        if (r.text.size() == len && std::memcmp(r.text.data(), name, len) == 0)
            return &r;
    }
    return nullptr;
}

core::Key PhaseStats::name_hash(const char* name, std::size_t len) noexcept
{
    return core::Key{hash_bytes64(name, len, 0x243f6a8885a308d3ULL), hash_bytes64(name, len, 0x13198a2e03707344ULL)};
}

void PhaseStats::add_name(const core::Key& project, const char* name, std::size_t len)
{
    bool blank_name = true;
    for (std::size_t i = 0; i < len && blank_name; i++)
        blank_name = name[i] == ' ';
    if (blank_name)
        blank++;
    // Most phases carry one of a few names ("Planning", "Execution"): the
    // last ones met are compared byte by byte before anything is hashed.
    core::Key name_key;
    if (RecentName* hit = recent(name, len)) {
        name_key = hit->key;
        names[hit->index].second++;
    } else {
        name_key = name_hash(name, len);
        std::uint32_t index;
        if (std::uint32_t* idx = name_index.find(name_key)) {
            index = *idx;
            names[index].second++;
        } else {
            index = static_cast<std::uint32_t>(names.size());
            name_index.put(name_key, index);
            names.emplace_back(std::string(name, len), 1);
        }
        // Short names only: a long one is not worth the comparisons.
        if (len <= kRecentNameBytes) {
            RecentName& r = recent_names[recent_next++ % recent_names.size()];
            r.text.assign(name, len);
            r.key = name_key;
            r.index = index;
        }
    }
    if (!run_open || !(run_project == project)) {
        settle_run();
        run_project = project;
        run_open = true;
    }
    run_names.push_back(name_key);
}

namespace {
// Sorts the keys and counts those equal to the one before.
template <typename Keys>
std::uint64_t sorted_repeats(Keys& keys)
{
    boost::sort::pdqsort(keys.begin(), keys.end());
    std::uint64_t n = 0;
    for (std::size_t i = 0; i + 1 < keys.size(); i++)
        n += keys[i] == keys[i + 1];
    return n;
}
}  // namespace

void PhaseStats::settle_run()
{
    // A duplicate is only a candidate (by hash): SQL confirms and names it.
    duplicate_candidates += sorted_repeats(run_names);
    run_names.clear();
}

void PhaseStats::add_split_name(const core::Key& project, const char* name, std::size_t len)
{
    const RecentName* hit = recent(name, len);
    const core::Key name_key = hit ? hit->key : name_hash(name, len);
    pairs.push_back(core::Key{core::KeyHash{}(project) ^ name_key.hi, project.lo ^ project.hi ^ name_key.lo});
}

void PhaseStats::finish()
{
    settle_run();
    duplicate_candidates += sorted_repeats(pairs);
    core::BigVector<core::Key>().swap(pairs);
}

std::string PhaseStats::distribution() const
{
    // Planning-like names first, then execution-like, then the rest; each
    // group by name (bytewise, so the text does not depend on the locale).
    auto group = [](const std::string& n) {
        return contains_ascii_ci(n, "planning") ? 0 : contains_ascii_ci(n, "execution") ? 1 : 2;
    };
    std::vector<std::pair<std::string, std::uint64_t>> sorted = names;
    std::sort(sorted.begin(), sorted.end(), [&](const auto& a, const auto& b) {
        const int ga = group(a.first), gb = group(b.first);
        return ga != gb ? ga < gb : a.first < b.first;
    });
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < sorted.size() && i < 20; i++)
        parts.push_back(sorted[i].first + ": " + group_thousands(static_cast<std::int64_t>(sorted[i].second)));
    std::string out = join_plain(parts, ", ");
    if (sorted.size() > 20)
        out += ", ...";
    if (null_names)
        out += std::string(out.empty() ? "" : ", ") + "NULL: " + group_thousands(static_cast<std::int64_t>(null_names));
    return out.empty() ? "no phases" : out;
}

// Up to this many projects met in more than one run have their names
// compared by SQL (an index scan each); more take a second scan.
constexpr std::size_t kSplitNamesBySql = 10000;

void load_upgraded(const Target& t, const KeyTypes& types, UpgradedData& data, UpgradedLoad what)
{
    const Table& pp = t.phases;
    const KeyType phase_fk = column_key(pp, "project_id");
    std::vector<AttrNumber> attrs = {pp.col("id").attnum, pp.col("project_id").attnum, pp.col("start_date").attnum,
                                     pp.col("end_date").attnum, pp.col("name").attnum};
    const bool with_stats = what == UpgradedLoad::Verify;
    const bool budgets = what != UpgradedLoad::Index && append_budget_attrs(pp, attrs);
    const bool owners = what == UpgradedLoad::Downgrade;
    data.stats.budgets_present = budgets;
    PhaseStats& st = data.stats;
    const std::uint64_t expected = estimated_rows(pp.oid);
    data.index.reserve(expected);
    if (owners)
        data.phase_project.reserve(expected);
    if (budgets)
        st.budgets.reserve(expected);
    core::DelayedPuts<core::Key> owner_puts(data.phase_project);
    scan_table(pp.oid, attrs, [&](const Datum* v, const bool* n) {
        data.phases++;
        const core::Key id = datum_to_key(v[0], types.phase);
        if (with_stats) {
            if (n[2] || n[3] || n[4])
                st.nulls++;
            else if (DatumGetDateADT(v[2]) > DatumGetDateADT(v[3]))
                st.reversed++;
            if (n[4]) {
                st.null_names++;
                st.blank++;
            }
        }
        if (n[1])
            return;  // a phase of no project is never matched
        const core::Key project = datum_to_key(v[1], phase_fk);
        if (with_stats && !n[4]) {
            text* name = DatumGetTextPP(v[4]);
            st.add_name(project, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
        }
        if (budgets)
            st.budgets.add(project, v + 5, n + 5);
        if (owners)
            owner_puts.put(id, project);
        if (n[2] || n[3] || !date_is_finite(DatumGetDateADT(v[2])) || !date_is_finite(DatumGetDateADT(v[3]))) {
            // Kept, so the project still has phases, but sorted last (as
            // NULLs are) and holding no day.
            data.null_dates.add(id);
            data.index.add(project, id, kNoDates);
            return;
        }
        core::Range r{DatumGetDateADT(v[2]), DatumGetDateADT(v[3])};
        if (r.start > r.end)
            data.reversed.add(id);
        data.index.add(project, id, r);
    });
    owner_puts.finish();
    data.index.finalize();
    // The index saw the same phases in the same order (those of a project).
    const std::vector<core::Key>* split = data.index.by_runs() ? &data.index.split_projects() : nullptr;
    if (with_stats) {
        // Names were compared within each run of one project.  A project
        // met in more than one run (a phase updated since the table was
        // written lies elsewhere) is compared again over all its phases: a
        // few by SQL through the project_id index, many (or all, when the
        // phases came in no order by project) by a second scan.
        if (split && !split->empty() && split->size() <= kSplitNamesBySql) {
            std::string keys = "{";
            for (std::size_t i = 0; i < split->size(); i++)
                keys += (i ? "," : "") + key_to_text((*split)[i], phase_fk);
            keys += "}";
            const Column& pc = pp.col("project_id");
            const std::string type = guarded([&] { return std::string(format_type_be_qualified(pc.type)); });
            const auto dups = spi_value("SELECT count(*) FROM (SELECT FROM " + pp.qualified +
                                            " WHERE project_id OPERATOR(pg_catalog.=) ANY ($1::text[]::" + type +
                                            "[]) AND name IS NOT NULL GROUP BY project_id, name"
                                            " HAVING count(*) > 1) d",
                                        {Arg::of(keys)});
            st.duplicate_candidates += dups ? std::stoull(*dups) : 0;
        } else if (!split || !split->empty()) {
            scan_table(pp.oid, {pp.col("project_id").attnum, pp.col("name").attnum},
                       [&](const Datum* v, const bool* n) {
                           if (n[0] || n[1])
                               return;
                           const core::Key project = datum_to_key(v[0], phase_fk);
                           if (split && !std::binary_search(split->begin(), split->end(), project))
                               return;
                           text* name = DatumGetTextPP(v[1]);
                           st.add_split_name(project, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
                       });
        }
        st.finish();
    }
    if (budgets)
        st.budgets.finish(split);
}

void check_coverage_all(const Target& t, const KeyTypes& types, UpgradedData& data)
{
    const Table& pr = t.projects;
    std::vector<core::Range> ranges;
    auto one = [&](const core::Key& id, bool dates_null, core::Day start, core::Day end) {
        data.projects++;
        const core::PhaseIndex::Project* slot = data.index.find(id);
        if (!slot) {
            data.without_phases.add(id);
            return;
        }
        if (slot->overlapping)
            data.overlapping.add(id);
        core::CoverageResult res;
        if (dates_null || !date_is_finite(start) || !date_is_finite(end)) {
            res = {core::CoverageIssue::InvalidProject, 0};
        } else {
            const core::Range* r = slot->inline_ranges;
            if (slot->count > core::PhaseIndex::kInline) {
                ranges.clear();
                for (std::uint32_t i = 0; i < slot->count; i++)
                    ranges.push_back(data.index.phases()[slot->begin + i].range);
                r = ranges.data();
            }
            res = core::check_coverage(core::Range{start, end}, r, slot->count);
        }
        if (res.issue == core::CoverageIssue::Exact)
            return;
        const bool new_low = data.not_covered.keys().size() < Sample::kKeep || id < data.not_covered.keys().back();
        data.not_covered.add(id);
        if (new_low) {
            // Keep examples for the smallest ids only, so the text is deterministic.
            std::string ex = "project " + key_to_text(id, types.project) + ": " + core::coverage_issue_text(res.issue);
            if (res.issue != core::CoverageIssue::InvalidProject && res.issue != core::CoverageIssue::NoPhases)
                ex += " at " + day_to_text(res.at);
            data.coverage_examples.push_back(std::move(ex));
        }
    };
    scan_batches(pr.oid,
                 {{pr.col("id").attnum, false, types.project},
                  {pr.col("start_date").attnum, true, KeyType::Unsupported},
                  {pr.col("end_date").attnum, true, KeyType::Unsupported}},
                 [&](const RowBatch& b) {
                     for (std::size_t i = 0; i < b.n; i++) {
                         if (i + kPrefetch < b.n)
                             data.index.prefetch(b.keys[0][i + kPrefetch]);
                         one(b.keys[0][i], b.nulls[1][i] || b.nulls[2][i], b.days[1][i], b.days[2][i]);
                     }
                 });
    // Keep the examples that belong to the kept sample, in id order.
    std::vector<std::string> kept;
    for (const auto& k : data.not_covered.keys()) {
        const std::string prefix = "project " + key_to_text(k, types.project) + ":";
        for (const auto& ex : data.coverage_examples)
            if (ex.compare(0, prefix.size(), prefix) == 0) {
                kept.push_back(ex);
                break;
            }
    }
    data.coverage_examples = std::move(kept);
}

bool UpgradedData::restorable(const AssignmentRow& row, const ArchivedAssignment& e) const
{
    // SPEC §3: same project, same date, and the archived phase still exists
    // in that project.
    if (row.project_null || !e.has_project || e.project != row.project)
        return false;
    if (row.date_null != !e.has_date || (!row.date_null && row.date != e.date))
        return false;
    const core::Key* owner = phase_project.find(e.phase);
    return owner && *owner == row.project;
}

void tally_upgraded_assignments(const Target& t, const KeyTypes& types, std::optional<std::int64_t> archive_run,
                                UpgradedData& data)
{
    const Table& ra = t.assignments;
    const KeyType fk = column_key(ra, "project_id");

    // The rule for one row; `entry` is its archive entry, if any.  Rows read
    // without their id (sample_ids false) leave the ambiguous sample alone.
    bool sample_ids = true;
    auto decide = [&](const AssignmentRow& row, const ArchivedAssignment* entry, std::size_t hash) {
        data.assignments++;
        const core::PhaseIndex::Project* slot = row.project_null ? nullptr : data.index.find_hashed(row.project, hash);
        if (!slot) {
            data.orphan_assignments++;
            if (!row.project_null)
                data.orphan_projects.add(row.project);
            return;
        }
        const bool m = !row.date_null && data.index.match_offset(*slot, row.date) >= 0;
        if (m && slot->overlapping && data.index.count_holding(*slot, row.date, 2) > 1) {
            data.ambiguous++;
            if (sample_ids)
                data.ambiguous_sample.add(row.id);
        }
        if (entry && data.restorable(row, *entry)) {
            data.restored++;
            return;
        }
        if (m)
            data.matched++;
        else
            data.outside++;
    };
    auto progress = [&](std::uint64_t seen) {
        if (Stages* s = current_stages())
            s->progress(seen, estimated_rows(ra.oid));
    };
    const std::vector<ScanColumn> cols = {{ra.col("id").attnum, false, types.assignment},
                                          {ra.col("project_id").attnum, false, fk},
                                          {ra.col("assignment_date").attnum, true, KeyType::Unsupported}};
    auto row_at = [](const RowBatch& b, std::size_t i) {
        AssignmentRow row;
        row.id = b.keys[0][i];
        row.project_null = b.nulls[1][i];
        row.project = b.keys[1][i];
        row.date_null = b.nulls[2][i];
        row.date = b.days[2][i];
        return row;
    };

    if (!archive_run) {
        // Without the id: it only names assignments held by two phases,
        // which a second pass collects when there are any.
        sample_ids = false;
        // Each project's hash once, for the prefetch and the lookup.
        std::vector<std::size_t> hash;
        scan_batches(
            ra.oid, {cols[1], cols[2]},
            [&](const RowBatch& b) {
                hash.resize(b.n);
                for (std::size_t i = 0; i < b.n; i++)
                    hash[i] = core::KeyHash{}(b.keys[0][i]);
                for (std::size_t i = 0; i < b.n; i++) {
                    if (i + 2 * kPrefetch < b.n)
                        data.index.prefetch_tag(hash[i + 2 * kPrefetch]);
                    if (i + kPrefetch < b.n)
                        data.index.prefetch_hashed(hash[i + kPrefetch]);
                    AssignmentRow row;
                    row.project_null = b.nulls[0][i];
                    row.project = b.keys[0][i];
                    row.date_null = b.nulls[1][i];
                    row.date = b.days[1][i];
                    decide(row, nullptr, hash[i]);
                }
            },
            progress);
        if (data.ambiguous == 0)
            return;
        scan_batches(ra.oid, cols, [&](const RowBatch& b) {
            for (std::size_t i = 0; i < b.n; i++) {
                if (b.nulls[1][i] || b.nulls[2][i])
                    continue;
                const core::PhaseIndex::Project* slot = data.index.find(b.keys[1][i]);
                if (slot && slot->overlapping && data.index.count_holding(*slot, b.days[2][i], 2) > 1)
                    data.ambiguous_sample.add(b.keys[0][i]);
            }
        });
        return;
    }

    // One pass over the table and the archive side by side (first pass of
    // core::ArchiveMatch*): what it learns is kept for the rewrite.  Entries
    // come a little ahead of their rows: their lookups are prefetched.
    AssignmentArchiveReader reader(*archive_run);
    reader.set_on_read([&](const ArchivedAssignment& e) { data.phase_project.prefetch(e.phase); });
    core::ArchiveMatchPass1<AssignmentRow, ArchivedAssignment, AssignmentArchiveReader> pass(reader);
    auto on_pair = [&](const AssignmentRow& row, const ArchivedAssignment& e) {
        decide(row, &e, core::KeyHash{}(row.project));
    };
    auto on_entry = [&](const ArchivedAssignment&) {};
    scan_batches(
        ra.oid, cols,
        [&](const RowBatch& b) {
            for (std::size_t i = 0; i < b.n; i++) {
                if (i + kPrefetch < b.n)
                    data.index.prefetch(b.keys[1][i + kPrefetch]);
                pass.row(b.pos[i], row_at(b, i), on_pair, on_entry);
            }
        },
        progress);
    pass.finish(on_pair, [&](const AssignmentRow& row) { decide(row, nullptr, core::KeyHash{}(row.project)); }, on_entry);
    reader.close();
    data.unarchived = pass.unarchived();
    data.early = pass.early_rows();
    data.peak_waiting = pass.peak_waiting();
}

// ---------------------------------------------------------------- findings

void findings_for_upgrade(const LegacyData& d, const KeyTypes& types, std::vector<Finding>& out)
{
    if (!d.unknown_type.empty())
        out.push_back(finding("error", "unknown_phase_type", ERRCODE_INVALID_TEXT_REPRESENTATION,
                              plural(d.unknown_type.count(), "phase has", "phases have") +
                                  " a phase_type other than PLANNING or EXECUTION (matched case-insensitively)",
                              static_cast<std::int64_t>(d.unknown_type.count()), d.unknown_type.text(types.phase)));
    if (!d.null_project.empty())
        out.push_back(finding("error", "phase_without_project", ERRCODE_NOT_NULL_VIOLATION,
                              plural(d.null_project.count(), "phase has", "phases have") + " a NULL project_id",
                              static_cast<std::int64_t>(d.null_project.count()), d.null_project.text(types.phase)));
    struct Kind {
        core::PlanProblem problem;
        const char* code;
        int sqlstate;
        const char* one;
        const char* many;
    };
    const Kind kinds[] = {
        {core::PlanProblem::MissingProject, "missing_project", ERRCODE_FOREIGN_KEY_VIOLATION,
         "project referenced by phases does not exist", "projects referenced by phases do not exist"},
        {core::PlanProblem::NullDates, "null_project_dates", ERRCODE_NULL_VALUE_NOT_ALLOWED,
         "project with phases has a NULL or infinite start_date or end_date",
         "projects with phases have a NULL or infinite start_date or end_date"},
        {core::PlanProblem::ReversedDates, "reversed_project_dates", ERRCODE_CHECK_VIOLATION,
         "project with phases starts after it ends", "projects with phases start after they end"},
        {core::PlanProblem::TooManyPhases, "too_many_phases", ERRCODE_CHECK_VIOLATION,
         "project has more phases than days", "projects have more phases than days"},
    };
    for (const Kind& k : kinds) {
        Sample s;
        for (const auto& p : d.planner.problems())
            if (p.kind == k.problem)
                s.add(p.project);
        if (!s.empty())
            out.push_back(finding("error", k.code, k.sqlstate, plural(s.count(), k.one, k.many),
                                  static_cast<std::int64_t>(s.count()), s.text(types.project)));
    }
    if (!d.planner.duplicate_kind_projects().empty()) {
        Sample s;
        for (const auto& k : d.planner.duplicate_kind_projects())
            s.add(k);
        out.push_back(finding("warning", "duplicate_phase_type", 0,
                              plural(s.count(), "project has", "projects have") +
                                  " more than one phase of a type; they are named \"Planning 2\", \"Execution 2\", ...",
                              static_cast<std::int64_t>(s.count()), s.text(types.project)));
    }
    if (!d.without_phases.empty())
        out.push_back(finding("warning", "project_without_phases", 0,
                              plural(d.without_phases.count(), "project has", "projects have") +
                                  " no phases and will have none after the upgrade",
                              static_cast<std::int64_t>(d.without_phases.count()),
                              d.without_phases.text(types.project)));
    if (d.outside > 0)
        out.push_back(finding("warning", "assignments_outside_phases", 0,
                              plural(d.outside, "assignment falls", "assignments fall") +
                                  " outside every phase after the upgrade (date outside its project's dates, or a "
                                  "project without phases); its phase is kept in the archive",
                              static_cast<std::int64_t>(d.outside), d.outside_sample.text(types.project)));
    if (!d.phase_elsewhere.empty())
        out.push_back(finding("warning", "assignment_phase_of_other_project", 0,
                              plural(d.phase_elsewhere.count(), "assignment points", "assignments point") +
                                  " at a phase of another project",
                              static_cast<std::int64_t>(d.phase_elsewhere.count()),
                              d.phase_elsewhere.text(types.assignment)));
    if (!d.phase_missing.empty())
        out.push_back(finding("warning", "assignment_phase_missing", 0,
                              plural(d.phase_missing.count(), "assignment points", "assignments point") +
                                  " at a phase that does not exist",
                              static_cast<std::int64_t>(d.phase_missing.count()),
                              d.phase_missing.text(types.assignment)));
}

void findings_for_downgrade(const UpgradedData& d, const KeyTypes& types, bool have_archive,
                            std::vector<Finding>& out)
{
    if (d.orphan_assignments > 0) {
        std::string msg = plural(d.orphan_assignments, "assignment belongs", "assignments belong") + " to " +
                          plural(d.orphan_projects.count(), "project", "projects") +
                          " without phases (or to no project): project_phase_id cannot be NOT NULL";
        out.push_back(finding("error", "assignments_without_phases", ERRCODE_NOT_NULL_VIOLATION, msg,
                              static_cast<std::int64_t>(d.orphan_assignments), d.orphan_projects.text(types.project)));
    }
    if (!d.null_dates.empty())
        out.push_back(finding("warning", "phase_without_dates", 0,
                              plural(d.null_dates.count(), "phase has", "phases have") +
                                  " a NULL or infinite start_date or end_date and never matches a date",
                              static_cast<std::int64_t>(d.null_dates.count()), d.null_dates.text(types.phase)));
    if (!d.reversed.empty())
        out.push_back(finding("warning", "phase_reversed_dates", 0,
                              plural(d.reversed.count(), "phase starts", "phases start") +
                                  " after it ends and never matches a date",
                              static_cast<std::int64_t>(d.reversed.count()), d.reversed.text(types.phase)));
    if (!d.overlapping.empty())
        out.push_back(finding("warning", "overlapping_phases", 0,
                              plural(d.overlapping.count(), "project has", "projects have") +
                                  " overlapping phases; a date held by two phases goes to the earliest start",
                              static_cast<std::int64_t>(d.overlapping.count()), d.overlapping.text(types.project)));
    if (!d.not_covered.empty())
        out.push_back(finding("warning", "timeline_not_covered", 0,
                              plural(d.not_covered.count(), "project is", "projects are") +
                                  " not covered exactly by their phases",
                              static_cast<std::int64_t>(d.not_covered.count()), d.not_covered.text(types.project)));
    if (d.outside > 0)
        out.push_back(finding("warning", "assignments_outside_phases", 0,
                              plural(d.outside, "assignment falls", "assignments fall") +
                                  " outside every phase of its project and is not restored from the archive; it "
                                  "will be assigned to its project's first phase",
                              static_cast<std::int64_t>(d.outside), ""));
    if (!have_archive)
        out.push_back(finding("warning", "no_archive", 0,
                              "no archive of an upgrade by phasemig: phase_type is derived from phase names and "
                              "project_phase_id from assignment dates",
                              0, ""));
}

bool has_errors(const std::vector<Finding>& findings)
{
    return std::any_of(findings.begin(), findings.end(), [](const Finding& f) { return f.severity == "error"; });
}

void refuse(const char* step, const std::string& schema, const std::vector<Finding>& findings)
{
    std::vector<std::string> lines;
    int sqlstate = 0;
    std::size_t errors = 0;
    for (const Finding& f : findings) {
        if (f.severity != "error")
            continue;
        errors++;
        if (!sqlstate)
            sqlstate = f.sqlstate;
        const bool show_sample = !f.sample.empty() && f.message.find(f.sample) == std::string::npos;
        if (lines.size() < 3)
            lines.push_back(f.code + ": " + f.message + (show_sample ? " (" + f.sample + ")" : "") + ".");
    }
    std::string detail = join_plain(lines, "\n");
    if (errors > lines.size())
        detail += strfmt("\n... and %zu more.", errors - lines.size());
    throw Error(sqlstate ? sqlstate : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                strfmt("cannot %s schema \"%s\": preflight found %zu %s", step, schema.c_str(), errors,
                       errors == 1 ? "error" : "errors"),
                detail,
                strfmt("Nothing has been changed. Run SELECT * FROM phasemig_preflight(%s); to see every problem.",
                       sql_literal(schema).c_str()));
}

}  // namespace phasemig::pg
