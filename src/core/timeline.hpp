// Timeline splitting for the upgrade (SPEC §2): legacy Planning/Execution
// phases become consecutive, non-overlapping date ranges over their project.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/flat_map.hpp"
#include "core/huge_alloc.hpp"
#include "core/phase_index.hpp"
#include "core/prefetch.hpp"
#include "core/key.hpp"

namespace phasemig::core {

// Split [s, e] into k consecutive ranges: b_i = s + floor(i*d/k), d = e - s;
// range 1 = [s, b_1], range i = [b_{i-1} + 1, b_i], range k = [b_{k-1} + 1, e].
// Returns false (and leaves out empty) when k == 0, s > e or d + 1 < k.
bool split_timeline(Day s, Day e, std::uint32_t k, std::vector<Range>& out);

enum class PhaseKind : std::uint8_t { Planning = 0, Execution = 1 };

// ASCII case-insensitive "planning" / "execution"; anything else is unknown.
std::optional<PhaseKind> parse_phase_kind(std::string_view text) noexcept;

// "Planning", "Execution" for the first of a kind in a project, then
// "Planning 2", "Planning 3", ...
std::string phase_name(PhaseKind kind, std::uint32_t nth);

// The downgrade's rule for phases created after the upgrade:
// lower(name) LIKE '%planning%' gives PLANNING, anything else EXECUTION.
PhaseKind kind_from_name(std::string_view name) noexcept;

// SQL spelling of a kind as stored in phase_type.
const char* kind_label_upper(PhaseKind kind) noexcept;

struct LegacyPhase {
    Key id;
    Key project;
    PhaseKind kind = PhaseKind::Planning;
    bool has_created = false;  // created_at IS NOT NULL
    std::uint32_t seq = 0;     // set by add_phase: the order phases were read in
    std::int64_t created = 0;  // created_at, any monotone encoding
};

// Upgrade order within a project: kind, then created_at (NULLs last), then id.
bool legacy_order_less(const LegacyPhase& a, const LegacyPhase& b) noexcept;

// A phase's user-defined values kept by an earlier downgrade.
struct ArchivedPhase {
    Key id;
    Key project;
    std::string name;
    Range range{0, 0};
    std::optional<std::string> description;
};

enum class PlanProblem : std::uint8_t {
    MissingProject,  // phases reference a project that does not exist
    NullDates,       // project start or end is NULL
    ReversedDates,   // project start > end
    TooManyPhases,   // more phases than days in the project
};

struct ProjectProblem {
    PlanProblem kind;
    Key project;
    std::uint32_t phases;
};

struct PlannedPhase {
    Key id;
    Key project;
    Range range;
    std::uint32_t name;         // index into UpgradePlanner::strings()
    std::uint32_t description;  // index into strings(), 0 = NULL
    bool restored;
    std::uint32_t seq = 0;      // its LegacyPhase's
};

// Collects the legacy phases and their projects' dates, then computes every
// phase's name and range (or restores an archived timeline).  Memory is
// proportional to the number of phases, never to assignments.
class UpgradePlanner {
public:
    UpgradePlanner();

    // Room for about this many phases and projects with phases (estimates).
    void reserve(std::size_t phases, std::size_t projects);
    void add_phase(const LegacyPhase& phase);
    // A project that has phases, none of which could be added (for example an
    // unknown phase_type): it wants its dates all the same.
    void note_project(const Key& project);
    // True when some phase belongs to this project (only those need dates).
    bool wants_project(const Key& project) const;
    // Starts loading a project's entry that set_project_dates() will need.
    void prefetch_project(const Key& project) const noexcept { dates_.prefetch(project); }
    // Dates of a project that has phases (nullopt for a NULL date); false,
    // and nothing kept, for a project without phases.
    bool set_project_dates(const Key& project, std::optional<Day> start, std::optional<Day> end);
    void add_archived(ArchivedPhase phase);

    // Computes the plan.  A project whose current phases all appear in the
    // archive (same ids, same project, start <= end) gets its archived
    // timeline back when `restore`; every other project is split.  Problems are recorded, not
    // thrown; projects with problems get no planned phases.
    void plan(bool restore);

    // After plan(): whether a planned phase of the project holds the day.  A
    // split project's phases cover its dates exactly, one after another, so
    // only a restored timeline needs its ranges (an index of those alone).
    bool holds(const Key& project, Day day) const noexcept
    {
        const ProjectDates* d = dates_.find(project);
        if (!d || d->plan == kPlanNone)
            return false;
        if (d->plan == kPlanSplit)
            return d->start <= day && day <= d->end;
        return restored_.match(project, day) != nullptr;
    }

    const std::vector<ProjectProblem>& problems() const { return problems_; }
    const BigVector<PlannedPhase>& planned() const { return planned_; }
    const PlannedPhase* find(const Key& phase) const;
    // The same for phases asked for in the order they were added (a rewrite
    // of the table they were read from): `cursor` (0 at first) follows that
    // order without hashing, and falls back to find() for any other phase.
    const PlannedPhase* find_in_order(const Key& phase, std::size_t& cursor) const;
    // Starts loading the phase `ahead` places after the cursor.
    void prefetch_in_order(std::size_t cursor) const noexcept
    {
        if (cursor < by_seq_.size() && by_seq_[cursor] != kNotPlanned)
            prefetch_read(&planned_[by_seq_[cursor]]);
    }
    const std::string& string_at(std::uint32_t index) const { return strings_[index]; }
    std::size_t string_count() const { return strings_.size(); }

    std::size_t phase_count() const { return phases_.size(); }
    // Whether every project's phases came in one run, so plan() sorts each
    // run on its own rather than all phases.
    bool phases_in_runs() const noexcept { return split_.size() <= runs_ / 16 + 16; }
    // Projects with phases (once their dates are set, or planned).
    std::size_t project_count() const { return dates_.size(); }
    std::size_t projects_restored() const { return projects_restored_; }
    std::size_t projects_split() const { return projects_split_; }
    // Split projects with two phases of the same kind (named "Planning 2", ...).
    const std::vector<Key>& duplicate_kind_projects() const { return duplicate_kinds_; }

private:
    std::uint32_t intern(const std::string& s);
    std::uint32_t name_id(PhaseKind kind, std::uint32_t nth);
    std::vector<std::uint32_t> name_ids_[2];

    static constexpr std::uint8_t kPlanNone = 0, kPlanSplit = 1, kPlanRestored = 2;
    struct ProjectDates {
        bool known = false;      // the project row was seen
        bool has_dates = false;  // neither date NULL
        std::uint8_t plan = kPlanNone;  // what plan() made of it
        Day start = 0;
        Day end = 0;
    };
    // Phases are grouped by project in plan(): where each project's phases
    // came in one run (a table's usual order), each run is sorted on its
    // own and the few projects met in more than one run (split_: a phase
    // updated since, its new version stored elsewhere) are gathered and
    // sorted at the end; when there are many, all are sorted once.  The
    // projects that have phases map to their dates.
    BigVector<LegacyPhase> phases_;
    std::size_t runs_ = 0;
    std::vector<Key> split_;
    // The project of each new run is looked up in dates_ a few runs later,
    // its slot prefetched meanwhile (a million projects miss every cache).
    void resolve_oldest();
    void flush_pending();
    static constexpr std::size_t kPending = 8;
    Key pending_[kPending];
    std::size_t pending_head_ = 0;
    std::size_t pending_count_ = 0;
    FlatKeyMap<ProjectDates> dates_;
    std::vector<ArchivedPhase> archived_;
    PhaseIndex restored_;  // the phases of restored projects (see holds())
    std::vector<ProjectProblem> problems_;
    std::vector<Key> duplicate_kinds_;
    BigVector<PlannedPhase> planned_;
    mutable FlatKeyMap<std::uint32_t> planned_by_id_;  // see find()
    mutable bool by_id_built_ = false;
    // Per phase in the order added: its index in planned_.
    static constexpr std::uint32_t kNotPlanned = ~std::uint32_t{0};
    BigVector<std::uint32_t> by_seq_;
    std::vector<std::string> strings_;
    std::unordered_map<std::string, std::uint32_t> string_ids_;
    std::size_t projects_restored_ = 0;
    std::size_t projects_split_ = 0;
};

}  // namespace phasemig::core
