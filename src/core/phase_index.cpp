#include "core/phase_index.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

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
    std::sort(phases_.begin(), phases_.end(), [](const Phase& a, const Phase& b) {
        return std::tie(a.project, a.range.start, a.id) < std::tie(b.project, b.range.start, b.id);
    });
    projects_.clear();
    by_project_.clear();
    last_ = nullptr;
    prefix_max_end_.resize(phases_.size());

    std::size_t i = 0;
    while (i < phases_.size()) {
        std::size_t j = i;
        Project p{phases_[i].project, static_cast<std::uint32_t>(i), 0, false, false};
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
        projects_.push_back(p);
        i = j;
    }
    by_project_.reserve(projects_.size());
    for (std::uint32_t k = 0; k < projects_.size(); k++)
        by_project_.put(projects_[k].id, k);
}

const PhaseIndex::Project* PhaseIndex::find(const Key& project) const noexcept
{
    if (last_ && last_->id == project)
        return last_;
    const std::uint32_t* k = by_project_.find(project);
    if (!k)
        return nullptr;
    last_ = &projects_[*k];
    return last_;
}

const PhaseIndex::Phase* PhaseIndex::match(const Project& project, Day day) const noexcept
{
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
        return cap > 0 && match(project, day) ? 1 : 0;
    std::uint32_t n = 0;
    const Phase* begin = &phases_[project.begin];
    for (const Phase* p = begin; p != begin + project.count && p->range.start <= day && n < cap; ++p) {
        if (p->range.end >= day)
            n++;
    }
    return n;
}

}  // namespace phasemig::core
