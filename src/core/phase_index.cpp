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

void PhaseIndex::finalize()
{
    // pdqsort: linear on input already in order (the upgrade's plan is), and
    // faster than std::sort otherwise; ids are unique, so the order is total.
    boost::sort::pdqsort(phases_.begin(), phases_.end(), [](const Phase& a, const Phase& b) {
        return std::tie(a.project, a.range.start, a.id) < std::tie(b.project, b.range.start, b.id);
    });
    projects_.clear();
    table_.clear();
    last_ = nullptr;
    prefix_max_end_.resize(phases_.size());

    std::size_t i = 0;
    while (i < phases_.size()) {
        std::size_t j = i;
        Project p;
        p.id = phases_[i].project;
        p.begin = static_cast<std::uint32_t>(i);
        Day max_end = std::numeric_limits<Day>::min();
        bool any_valid = false;
        for (; j < phases_.size() && phases_[j].project == p.id; j++) {
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
        p.count = static_cast<std::uint32_t>(j - i);
        for (std::uint32_t k = 0; k < p.count && k < kInline; k++)
            p.inline_ranges[k] = phases_[i + k].range;
        projects_.push_back(p);
        i = j;
    }
    std::size_t capacity = 16;
    // Load up to 3/4 (see FlatKeyMap::fits): 64-byte slots make the table
    // the biggest thing a step allocates.
    while (capacity * 3 < projects_.size() * 4)
        capacity <<= 1;
    table_.assign(capacity, Project{});
    mask_ = capacity - 1;
    for (const Project& p : projects_) {
        std::size_t h = KeyHash{}(p.id) & mask_;
        while (table_[h].count != 0)
            h = (h + 1) & mask_;
        table_[h] = p;
    }
}

const PhaseIndex::Project* PhaseIndex::find(const Key& project) const noexcept
{
    if (last_ && last_->id == project)
        return last_;
    if (table_.empty())
        return nullptr;
    std::size_t h = KeyHash{}(project) & mask_;
    while (table_[h].count != 0) {
        if (table_[h].id == project) {
            last_ = &table_[h];
            return last_;
        }
        h = (h + 1) & mask_;
    }
    return nullptr;
}

int PhaseIndex::match_offset(const Project& project, Day day) const noexcept
{
    if (project.count <= kInline) {
        for (std::uint32_t i = 0; i < project.count && project.inline_ranges[i].start <= day; i++) {
            if (project.inline_ranges[i].end >= day)
                return static_cast<int>(i);
        }
        return -1;
    }
    const Phase* m = match(project, day);
    return m ? static_cast<int>(m - &phases_[project.begin]) : -1;
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
