#include "core/coverage.hpp"

#include <algorithm>

namespace phasemig::core {

CoverageResult check_coverage(Range project, const Range* phases, std::size_t n) noexcept
{
    if (project.start > project.end)
        return {CoverageIssue::InvalidProject, project.start};
    if (n == 0)
        return {CoverageIssue::NoPhases, project.start};
    for (std::size_t i = 0; i < n; i++) {
        if (phases[i].start > phases[i].end)
            return {CoverageIssue::ReversedPhase, phases[i].start};
    }
    const std::int64_t ps = project.start;
    const std::int64_t pe = project.end;
    if (phases[0].start < ps)
        return {CoverageIssue::StartsEarly, phases[0].start};
    if (phases[0].start > ps)
        return {CoverageIssue::StartsLate, ps};
    // `next` is the first day not yet covered.
    std::int64_t next = std::int64_t{phases[0].end} + 1;
    for (std::size_t i = 1; i < n; i++) {
        const std::int64_t s = phases[i].start;
        // Phases are sorted by start, so the first issue in day order is
        // either at this phase's start, at `next`, or just past the project.
        if (s < next)
            return s <= pe ? CoverageResult{CoverageIssue::Overlap, s} : CoverageResult{CoverageIssue::EndsLate, pe + 1};
        if (s > next)
            return next <= pe ? CoverageResult{CoverageIssue::Gap, next} : CoverageResult{CoverageIssue::EndsLate, pe + 1};
        if (s > pe)
            return {CoverageIssue::EndsLate, pe + 1};
        next = std::int64_t{phases[i].end} + 1;
    }
    if (next <= pe)
        return {CoverageIssue::EndsEarly, next};
    if (next > pe + 1)
        return {CoverageIssue::EndsLate, pe + 1};
    return {CoverageIssue::Exact, 0};
}

const char* coverage_issue_text(CoverageIssue issue) noexcept
{
    switch (issue) {
    case CoverageIssue::Exact: return "covered exactly";
    case CoverageIssue::NoPhases: return "no phases";
    case CoverageIssue::InvalidProject: return "project start after its end";
    case CoverageIssue::ReversedPhase: return "phase starts after it ends";
    case CoverageIssue::StartsLate: return "first phase starts after the project";
    case CoverageIssue::StartsEarly: return "phase starts before the project";
    case CoverageIssue::Gap: return "gap";
    case CoverageIssue::Overlap: return "overlap";
    case CoverageIssue::EndsEarly: return "last phase ends before the project";
    case CoverageIssue::EndsLate: return "phase ends after the project";
    }
    return "unknown";
}

}  // namespace phasemig::core
