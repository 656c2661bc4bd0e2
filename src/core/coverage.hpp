// Timeline coverage (SPEC §4 check 6): a project's phases must cover
// [project start, project end] exactly — no gap, no overlap, nothing outside.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/key.hpp"

namespace phasemig::core {

enum class CoverageIssue : std::uint8_t {
    Exact = 0,
    NoPhases,        // the project has no phase
    InvalidProject,  // project start > end
    ReversedPhase,   // a phase has start > end            (at = its start)
    StartsLate,      // first phase starts after the project (at = project start)
    StartsEarly,     // a phase starts before the project    (at = that start)
    Gap,             // a day no phase holds                 (at = first such day)
    Overlap,         // a day two phases hold                (at = first such day)
    EndsEarly,       // last covered day before project end  (at = first uncovered day)
    EndsLate,        // a phase ends after the project       (at = project end + 1)
};

struct CoverageResult {
    CoverageIssue issue = CoverageIssue::Exact;
    std::int64_t at = 0;  // the first offending day (64-bit: may be end + 1)
};

// `phases` must be sorted by start.  Reports the first issue in day order.
CoverageResult check_coverage(Range project, const Range* phases, std::size_t n) noexcept;

const char* coverage_issue_text(CoverageIssue issue) noexcept;

}  // namespace phasemig::core
