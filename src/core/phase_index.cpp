#include "core/phase_index.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

#include <boost/sort/pdqsort/pdqsort.hpp>

namespace phasemig::core {

namespace {
// Below this many phases a linear scan beats the binary searches.
constexpr std::uint32_t kLinearScan = 8;
}  // namespace

void PhaseIndex::add(const Key& project, const Key& phase, Range range)
{
    phases_.push_back(Phase{project, phase, range});
}

namespace {
// A function object, not a function: passed by pointer, the sorts would not
// inline the comparison (twice the time of a sort of all).
struct PhaseBefore {
    bool operator()(const PhaseIndex::Phase& a, const PhaseIndex::Phase& b) const noexcept
    {
        return std::tie(a.project, a.range.start, a.id) < std::tie(b.project, b.range.start, b.id);
    }
};
constexpr PhaseBefore phase_before{};
}  // namespace

PhaseIndex::Project PhaseIndex::close_project(std::size_t begin, std::size_t end)
{
    Project p;
    p.id = phases_[begin].project;
    p.begin = static_cast<std::uint32_t>(begin);
    Day max_end = std::numeric_limits<Day>::min();
    bool any_valid = false;
    for (std::size_t j = begin; j < end; j++) {
        const Range& r = phases_[j].range;
        if (r.start > r.end) {
            p.has_reversed = true;
        } else {
            if (any_valid && r.start <= max_end)
                p.overlapping = true;
            any_valid = true;
            max_end = std::max(max_end, r.end);
        }
        prefix_max_end_[j] = max_end;
    }
    p.count = static_cast<std::uint32_t>(end - begin);
    for (std::uint32_t k = 0; k < p.count && k < kInline; k++)
        p.inline_ranges[k] = phases_[begin + k].range;
    return p;
}

void PhaseIndex::size_table(std::size_t projects)
{
    std::size_t capacity = 16;
    // Load up to 3/4 (see FlatKeyMap::fits): 64-byte slots make the table
    // the biggest thing a step allocates.
    while (capacity * 3 < projects * 4)
        capacity <<= 1;
    table_.assign(capacity, Project{});
    tags_.assign(capacity, 0);
    far_ = capacity * sizeof(Project) > far_table_bytes_;
    mask_ = capacity - 1;
}

bool PhaseIndex::insert(const Project& p) noexcept
{
    const std::size_t hash = KeyHash{}(p.id);
    std::size_t h = hash & mask_;
    while (table_[h].count != 0) {
        if (table_[h].id == p.id)
            return false;
        h = (h + 1) & mask_;
    }
    table_[h] = p;
    tags_[h] = tag_of(hash);
    return true;
}

std::vector<std::uint32_t> PhaseIndex::run_starts() const
{
    std::vector<std::uint32_t> runs;
    for (std::size_t i = 0; i < phases_.size(); i++)
        if (i == 0 || phases_[i].project != phases_[i - 1].project)
            runs.push_back(static_cast<std::uint32_t>(i));
    runs.push_back(static_cast<std::uint32_t>(phases_.size()));
    return runs;
}

PhaseIndex::Project* PhaseIndex::slot_of(const Key& project) noexcept
{
    std::size_t h = KeyHash{}(project) & mask_;
    while (table_[h].count != 0) {
        if (table_[h].id == project)
            return &table_[h];
        h = (h + 1) & mask_;
    }
    return nullptr;
}

bool PhaseIndex::build_from_runs()
{
    // Each run of one project in the order added becomes the project, its
    // few phases sorted in place.  A project met again in a later run (a
    // phase updated since, stored elsewhere) is "split": its phases are
    // gathered after all runs.  Too many of those and one sort is cheaper.
    const std::vector<std::uint32_t> runs = run_starts();
    const std::size_t n_runs = runs.size() - 1;
    {
        // A quick look before the table is built: one bit per hash of a
        // project, 16 bits per run.  A run whose bit is set already met its
        // project before (or collided, for about one run in 16).  Phases in
        // no order by project show that in most runs: one sort then.
        KeyBits seen(n_runs, 16);
        std::size_t again = 0;
        for (std::size_t r = 0; r < n_runs; r++)
            again += seen.test_and_set(phases_[runs[r]].project);
        if (again > repeats_limit(n_runs))
            return false;
    }
    size_table(n_runs);
    struct Stray {
        Key project;
        std::size_t begin, end;
    };
    std::vector<Stray> strays;
    // Inserts land in random slots: the slots of runs a little ahead are
    // loaded while this one is built.
    constexpr std::size_t kAhead = 8;
    for (std::size_t r = 0; r < n_runs; r++) {
        if (r + kAhead < n_runs) {
            const std::size_t h = KeyHash{}(phases_[runs[r + kAhead]].project) & mask_;
            prefetch_read(&table_[h]);
            prefetch_read(&table_[(h + 1) & mask_]);
        }
        const std::size_t i = runs[r], j = runs[r + 1];
        // Insertion sort for the usual handful of phases; a long run sorts.
        if (j - i > 16)
            std::sort(phases_.begin() + static_cast<std::ptrdiff_t>(i), phases_.begin() + static_cast<std::ptrdiff_t>(j),
                      phase_before);
        else
            for (std::size_t k = i + 1; k < j; k++)
                for (std::size_t m = k; m > i && phase_before(phases_[m], phases_[m - 1]); m--)
                    std::swap(phases_[m], phases_[m - 1]);
        const Project p = close_project(i, j);
        if (insert(p)) {
            project_count_++;
        } else {
            strays.push_back(Stray{p.id, i, j});
            // More than one run in 16 so far: the order is not by project
            // (in a shuffled order that shows after about an eighth).
            if (strays.size() > r / 16 + 16)
                return false;
        }
    }
    live_phases_ = phases_.size();
    if (strays.empty())
        return true;
    // Each split project's phases, from all its runs, go to the end; the
    // places they leave are not referenced again.
    std::sort(strays.begin(), strays.end(), [](const Stray& a, const Stray& b) {
        return std::tie(a.project, a.begin) < std::tie(b.project, b.begin);
    });
    std::size_t extra = 0;
    for (const Stray& st : strays)
        extra += st.end - st.begin;
    for (std::size_t k = 0; k < strays.size();) {
        const Key id = strays[k].project;
        extra += slot_of(id)->count;
        split_.push_back(id);
        while (k < strays.size() && strays[k].project == id)
            k++;
    }
    // Reserved, so the copies below read from a vector that does not move.
    phases_.reserve(phases_.size() + extra);
    for (std::size_t k = 0; k < strays.size();) {
        const Key id = strays[k].project;
        Project* slot = slot_of(id);
        const std::size_t begin = phases_.size();
        for (std::uint32_t m = 0; m < slot->count; m++)
            phases_.push_back(phases_[slot->begin + m]);
        for (; k < strays.size() && strays[k].project == id; k++)
            for (std::size_t m = strays[k].begin; m < strays[k].end; m++)
                phases_.push_back(phases_[m]);
        std::sort(phases_.begin() + static_cast<std::ptrdiff_t>(begin), phases_.end(), phase_before);
        prefix_max_end_.resize(phases_.size());
        *slot = close_project(begin, phases_.size());
    }
    return true;
}

void PhaseIndex::finalize()
{
    table_.clear();
    tags_.clear();
    split_.clear();
    project_count_ = 0;
    last_ = nullptr;
    prefix_max_end_.reserve(phases_.capacity());  // the same room as phases_
    prefix_max_end_.resize(phases_.size());
    // Phases usually come grouped by project (created together, and kept in
    // that order by the steps' rewrites of project_phases): then no sort of
    // all phases is needed, only of each project's few.
    by_runs_ = build_from_runs();
    if (by_runs_)
        return;
    split_.clear();
    project_count_ = 0;
    live_phases_ = phases_.size();
    // pdqsort: faster than std::sort; ids are unique, so the order is total.
    boost::sort::pdqsort(phases_.begin(), phases_.end(), phase_before);
    // Sorted, every run is a whole project.
    const std::vector<std::uint32_t> runs = run_starts();
    size_table(runs.size() - 1);
    for (std::size_t r = 0; r + 1 < runs.size(); r++)
        (void) insert(close_project(runs[r], runs[r + 1]));
    project_count_ = runs.size() - 1;
}


const PhaseIndex::Phase* PhaseIndex::match(const Project& project, Day day) const noexcept
{
    if (project.count <= kInline) {
        const int k = match_offset(project, day);
        return k < 0 ? nullptr : &phases_[project.begin + static_cast<std::uint32_t>(k)];
    }
    const Phase* begin = &phases_[project.begin];
    const Phase* end = begin + project.count;
    if (project.count <= kLinearScan) {
        for (const Phase* p = begin; p != end && p->range.start <= day; ++p) {
            if (p->range.end >= day)
                return p;
        }
        return nullptr;
    }
    // Candidates are the phases starting on or before the day; the first of
    // them whose running maximum end reaches the day is the one that holds it.
    const Phase* limit = std::upper_bound(begin, end, day, [](Day d, const Phase& p) { return d < p.range.start; });
    const Day* pm_begin = &prefix_max_end_[project.begin];
    const Day* pm_limit = pm_begin + (limit - begin);
    const Day* hit = std::lower_bound(pm_begin, pm_limit, day);
    if (hit == pm_limit)
        return nullptr;
    return begin + (hit - pm_begin);
}

std::uint32_t PhaseIndex::count_holding(const Project& project, Day day, std::uint32_t cap) const noexcept
{
    if (!project.overlapping)
        return cap > 0 && match_offset(project, day) >= 0 ? 1 : 0;
    std::uint32_t n = 0;
    const Phase* begin = &phases_[project.begin];
    for (const Phase* p = begin; p != begin + project.count && p->range.start <= day && n < cap; ++p) {
        if (p->range.end >= day)
            n++;
    }
    return n;
}

}  // namespace phasemig::core
