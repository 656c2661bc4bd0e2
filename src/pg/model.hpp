// What a step reads from the target schema, loaded into the C++ core:
// phases (all of them — memory is bounded by phases), projects' dates, and
// assignment tallies from one streamed pass.  Also the preflight findings.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/flat_map.hpp"
#include "core/phase_index.hpp"
#include "core/timeline.hpp"
#include "pg/archive_io.hpp"
#include "pg/budget.hpp"
#include "pg/catalog.hpp"
#include "pg/keys.hpp"

namespace phasemig::pg {

using KeyMap = core::FlatKeyMap<core::Key>;

// The smallest few offending ids and how many there are: deterministic
// samples for messages.
class Sample {
public:
    static constexpr std::size_t kKeep = 5;
    void add(const core::Key& key);
    std::uint64_t count() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    std::string text(KeyType type) const;
    const std::vector<core::Key>& keys() const noexcept { return keys_; }

private:
    std::uint64_t count_ = 0;
    std::vector<core::Key> keys_;  // sorted, at most kKeep
};

struct Finding {
    std::string severity;  // "error" or "warning"
    std::string code;
    std::string message;
    std::int64_t count = 0;
    std::string sample;
    int sqlstate = 0;
};

struct KeyTypes {
    KeyType project = KeyType::Unsupported;     // projects.id
    KeyType phase = KeyType::Unsupported;       // project_phases.id
    KeyType assignment = KeyType::Unsupported;  // resource_assignments.id
};

// Appends the three budget columns of project_phases (capital, expense,
// total), in the order Budgets::add expects; false (and nothing appended)
// when one is missing or not numeric.
bool append_budget_attrs(const Table& pp, std::vector<AttrNumber>& attrs);

// How the legacy phase_type's values become text: a string type (text,
// varchar, char) is read in place; an enum's labels are worth caching by
// OID (enum_out reads the catalog cache for every value); anything else goes
// through the type's output function.
struct PhaseTypeOutput {
    Oid type = InvalidOid;
    bool is_string = false;
    bool is_enum = false;
    FmgrInfo* out = nullptr;  // palloc'd in the current memory context
};
PhaseTypeOutput phase_type_output(const Table& pp);

// Schema-level checks common to both directions: table kinds, id and date
// column types, and (unless expected_revision is null) the alembic revision.
// Fills `types` when they are usable.
void check_schema(const Target& t, const char* expected_revision, std::vector<Finding>& out, KeyTypes& types);

// Objects other than indexes and constraints that depend on columns the
// step drops (views, rules, triggers, policies, statistics).
void check_blocking_dependents(const Target& t, const std::vector<std::pair<const Table*, std::string>>& columns,
                               std::vector<Finding>& out);

// Relations or constraints that already carry a name the step creates.
void check_name_conflicts(const Target& t, const std::vector<std::string>& relations,
                          const std::vector<std::pair<const Table*, std::string>>& constraints,
                          std::vector<Finding>& out);

// ---- legacy state (before an upgrade) ----
struct LegacyData {
    core::UpgradePlanner planner;
    KeyMap phase_project;  // phase id -> project id
    std::uint64_t phases = 0;
    Sample unknown_type;   // phases whose phase_type is neither PLANNING nor EXECUTION
    Sample null_project;   // phases with a NULL project_id
    std::uint64_t projects = 0;
    Sample without_phases;  // projects without phases
    // assignments (matched against the planned timeline: planner.holds())
    std::uint64_t assignments = 0;
    std::uint64_t matched = 0;
    std::uint64_t outside = 0;
    Sample outside_sample;     // projects of assignments outside every planned phase
    Sample phase_elsewhere;    // assignments whose phase belongs to another project
    Sample phase_missing;      // assignments whose phase does not exist
    bool budgets_present = false;
    Budgets budgets;           // per project and overall, from the same pass
};

// Archived timeline rows from an earlier downgrade (restore candidates).
// owners: also map every phase to its project (for preflight's warnings
// about assignments whose phase is in another project).
void load_legacy(const Target& t, const KeyTypes& types, std::optional<std::int64_t> restore_run,
                 LegacyData& data, bool owners = true);
// One pass over the assignments: tallies against the planned timeline and,
// with a writer, the archive of every assignment's project_phase_id.
void tally_legacy_assignments(const Target& t, const KeyTypes& types, LegacyData& data,
                              AssignmentArchiveWriter* writer = nullptr);

// ---- upgraded state (before a downgrade, and for verify) ----
struct AssignmentRow {
    core::Key id;
    core::Key project;
    bool project_null = false;
    bool date_null = false;
    DateADT date = 0;
};

// What verify's phase checks need, from the one pass over project_phases.
struct PhaseStats {
    std::uint64_t nulls = 0;       // NULL name, start_date or end_date
    std::uint64_t reversed = 0;    // start_date > end_date
    std::uint64_t blank = 0;       // NULL or blank name
    std::uint64_t null_names = 0;
    std::uint64_t duplicate_candidates = 0;  // (project, name) seen twice, by hash: confirmed in SQL
    std::vector<std::pair<std::string, std::uint64_t>> names;  // distribution
    core::FlatKeyMap<std::uint32_t> name_index;
    // Names are compared within each run of one project's phases as the
    // scan meets them (a handful at a time, nothing kept); the projects met
    // in more than one run are compared again after a second scan (pairs).
    core::Key run_project;
    bool run_open = false;
    std::vector<core::Key> run_names;   // the current run's name hashes
    core::BigVector<core::Key> pairs;   // (project, name) hashes of split projects, second scan
    bool budgets_present = false;
    Budgets budgets;

    // The names met last, with their hash and place in `names`.
    struct RecentName {
        std::string text;
        core::Key key;
        std::uint32_t index = 0;
    };
    static constexpr std::size_t kRecentNameBytes = 64;
    std::array<RecentName, 4> recent_names;
    std::size_t recent_next = 0;

    // First scan: every named phase of a project, in scan order.
    void add_name(const core::Key& project, const char* name, std::size_t len);
    // Second scan, only when needed (see load_upgraded): every named phase
    // of the projects met in more than one run.
    void add_split_name(const core::Key& project, const char* name, std::size_t len);
    void finish();
    RecentName* recent(const char* name, std::size_t len) noexcept;
    static core::Key name_hash(const char* name, std::size_t len) noexcept;
    void settle_run();
    std::string distribution() const;  // "Planning: 3, Execution: 5"
};

struct UpgradedData {
    core::PhaseIndex index;  // phases with both dates
    KeyMap phase_project;    // every phase
    std::uint64_t phases = 0;
    Sample null_dates;       // phases with a NULL start_date or end_date
    Sample reversed;         // phases with start_date > end_date
    std::uint64_t projects = 0;
    Sample without_phases;   // projects without phases
    Sample not_covered;      // projects whose phases do not cover them exactly
    Sample overlapping;      // projects with two phases holding the same day
    std::vector<std::string> coverage_examples;  // "project X: gap at 2024-03-01"
    PhaseStats stats;        // with_stats only
    // assignments
    std::uint64_t assignments = 0;
    std::uint64_t matched = 0;   // date-matched (not restored)
    std::uint64_t outside = 0;   // not restored and outside every phase: first phase
    std::uint64_t ambiguous = 0; // held by two or more phases
    std::uint64_t restored = 0;  // given their archived phase back
    Sample ambiguous_sample;
    Sample orphan_projects;      // projects with assignments but no phases
    std::uint64_t orphan_assignments = 0;
    // From the pass over the archive, for the rewrite's second pass: rows
    // without an entry, and rows that come before their entry.
    core::FlatKeyMap<char> unarchived;
    core::FlatKeyMap<ArchivedAssignment> early;
    std::size_t peak_waiting = 0;

    bool restorable(const AssignmentRow& row, const ArchivedAssignment& entry) const;
};

// What one pass over the phases collects besides the index: for a
// downgrade the phases' projects and budgets, for verify the counts, names
// and budgets of its checks.
enum class UpgradedLoad { Index, Downgrade, Verify };
void load_upgraded(const Target& t, const KeyTypes& types, UpgradedData& data,
                   UpgradedLoad what = UpgradedLoad::Index);
void check_coverage_all(const Target& t, const KeyTypes& types, UpgradedData& data);
// One pass over the assignments.  With `archive_run`, joins the upgrade's
// archive and records which assignments get their archived phase back.
void tally_upgraded_assignments(const Target& t, const KeyTypes& types, std::optional<std::int64_t> archive_run,
                                UpgradedData& data);

// Findings for the next step from loaded data.
void findings_for_upgrade(const LegacyData& d, const KeyTypes& types, std::vector<Finding>& out);
void findings_for_downgrade(const UpgradedData& d, const KeyTypes& types, bool have_archive,
                            std::vector<Finding>& out);

bool has_errors(const std::vector<Finding>& findings);
// Raises the refusal: the first errors in the message, all of them in preflight.
[[noreturn]] void refuse(const char* step, const std::string& schema, const std::vector<Finding>& findings);

}  // namespace phasemig::pg
