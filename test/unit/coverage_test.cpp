// check_coverage: SPEC §4 check 6 — a project's phases cover its
// [start, end] exactly; otherwise the first issue in day order.
#include <algorithm>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "core/coverage.hpp"
#include "test_support.hpp"

using namespace phasemig::core;
using phasemig::test::Rng;
using phasemig::test::where;

namespace {

constexpr Day kDayMin = std::numeric_limits<Day>::min();
constexpr Day kDayMax = std::numeric_limits<Day>::max();

CoverageResult check(Range project, std::vector<Range> phases)
{
    std::stable_sort(phases.begin(), phases.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
    return check_coverage(project, phases.data(), phases.size());
}

::testing::AssertionResult is(CoverageResult got, CoverageIssue issue, std::int64_t at)
{
    if (got.issue == issue && got.at == at)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "got " << coverage_issue_text(got.issue) << " at " << got.at << ", want "
                                         << coverage_issue_text(issue) << " at " << at;
}

}  // namespace

TEST(Coverage, Exact)
{
    EXPECT_TRUE(is(check({0, 10}, {{0, 10}}), CoverageIssue::Exact, 0));
    EXPECT_TRUE(is(check({0, 10}, {{0, 5}, {6, 10}}), CoverageIssue::Exact, 0));
    EXPECT_TRUE(is(check({0, 10}, {{6, 10}, {0, 5}}), CoverageIssue::Exact, 0));  // sorted by the helper
    EXPECT_TRUE(is(check({3, 3}, {{3, 3}}), CoverageIssue::Exact, 0));
    EXPECT_TRUE(is(check({-5, 4}, {{-5, -5}, {-4, 0}, {1, 1}, {2, 4}}), CoverageIssue::Exact, 0));
    EXPECT_TRUE(is(check({kDayMin, kDayMax}, {{kDayMin, -1}, {0, kDayMax}}), CoverageIssue::Exact, 0));
    EXPECT_TRUE(is(check({kDayMax, kDayMax}, {{kDayMax, kDayMax}}), CoverageIssue::Exact, 0));
}

TEST(Coverage, NoPhasesAndInvalidProject)
{
    EXPECT_TRUE(is(check_coverage({0, 10}, nullptr, 0), CoverageIssue::NoPhases, 0));
    EXPECT_TRUE(is(check_coverage({7, 10}, nullptr, 0), CoverageIssue::NoPhases, 7));
    EXPECT_TRUE(is(check({10, 9}, {{9, 10}}), CoverageIssue::InvalidProject, 10));
    // An invalid project is reported before having no phases.
    EXPECT_TRUE(is(check_coverage({10, 9}, nullptr, 0), CoverageIssue::InvalidProject, 10));
}

TEST(Coverage, ReversedPhase)
{
    EXPECT_TRUE(is(check({0, 10}, {{0, 5}, {9, 6}}), CoverageIssue::ReversedPhase, 9));
    // Reported before any day-order issue, at the smallest reversed start.
    EXPECT_TRUE(is(check({0, 10}, {{-5, 20}, {9, 6}, {7, 3}}), CoverageIssue::ReversedPhase, 7));
}

TEST(Coverage, StartsLateAndEarly)
{
    EXPECT_TRUE(is(check({0, 10}, {{1, 10}}), CoverageIssue::StartsLate, 0));
    EXPECT_TRUE(is(check({0, 10}, {{20, 30}}), CoverageIssue::StartsLate, 0));
    EXPECT_TRUE(is(check({0, 10}, {{-1, 10}}), CoverageIssue::StartsEarly, -1));
    EXPECT_TRUE(is(check({0, 10}, {{-9, -5}, {0, 10}}), CoverageIssue::StartsEarly, -9));
    // Starting early is the first issue even when the phase also ends late.
    EXPECT_TRUE(is(check({0, 10}, {{-3, 30}}), CoverageIssue::StartsEarly, -3));
}

TEST(Coverage, GapAndOverlap)
{
    EXPECT_TRUE(is(check({0, 10}, {{0, 3}, {5, 10}}), CoverageIssue::Gap, 4));
    EXPECT_TRUE(is(check({0, 10}, {{0, 3}, {4, 5}, {8, 10}}), CoverageIssue::Gap, 6));
    EXPECT_TRUE(is(check({0, 10}, {{0, 5}, {5, 10}}), CoverageIssue::Overlap, 5));
    EXPECT_TRUE(is(check({0, 10}, {{0, 10}, {3, 4}}), CoverageIssue::Overlap, 3));
    EXPECT_TRUE(is(check({0, 10}, {{0, 4}, {0, 10}}), CoverageIssue::Overlap, 0));  // equal starts
    // The earlier of a gap and an overlap wins.
    EXPECT_TRUE(is(check({0, 20}, {{0, 3}, {5, 10}, {8, 20}}), CoverageIssue::Gap, 4));
    EXPECT_TRUE(is(check({0, 20}, {{0, 5}, {4, 10}, {12, 20}}), CoverageIssue::Overlap, 4));
    // A gap followed by a phase that starts only after the project's end is
    // still a gap: some day after it is covered.
    EXPECT_TRUE(is(check({0, 10}, {{0, 3}, {12, 15}}), CoverageIssue::Gap, 4));
}

TEST(Coverage, EndsEarlyAndLate)
{
    EXPECT_TRUE(is(check({0, 10}, {{0, 9}}), CoverageIssue::EndsEarly, 10));
    EXPECT_TRUE(is(check({0, 10}, {{0, 3}, {4, 6}}), CoverageIssue::EndsEarly, 7));
    EXPECT_TRUE(is(check({0, 10}, {{0, 11}}), CoverageIssue::EndsLate, 11));
    EXPECT_TRUE(is(check({0, 10}, {{0, 30}}), CoverageIssue::EndsLate, 11));
    EXPECT_TRUE(is(check({0, 10}, {{0, 10}, {11, 12}}), CoverageIssue::EndsLate, 11));
    EXPECT_TRUE(is(check({0, 10}, {{0, 10}, {15, 20}}), CoverageIssue::EndsLate, 11));  // 'at' is always end + 1
    // Overlap lying wholly after the project's end: EndsLate comes first.
    EXPECT_TRUE(is(check({0, 10}, {{0, 20}, {11, 12}}), CoverageIssue::EndsLate, 11));
    EXPECT_TRUE(is(check({0, 10}, {{0, 20}, {15, 16}}), CoverageIssue::EndsLate, 11));
    // 'at' does not overflow at the top of the day range.
    EXPECT_TRUE(is(check({0, kDayMax - 1}, {{0, kDayMax}}), CoverageIssue::EndsLate, std::int64_t{kDayMax}));
    EXPECT_TRUE(is(check({0, kDayMax}, {{0, kDayMax - 1}}), CoverageIssue::EndsEarly, std::int64_t{kDayMax}));
}

TEST(Coverage, TextForEveryIssue)
{
    for (int i = 0; i <= static_cast<int>(CoverageIssue::EndsLate); i++) {
        const char* t = coverage_issue_text(static_cast<CoverageIssue>(i));
        ASSERT_NE(t, nullptr);
        EXPECT_STRNE(t, "unknown") << i;
        EXPECT_GT(std::string(t).size(), 0u);
    }
}

// ---------------------------------------------------------------- randomized

namespace {

// Brute-force model by painting days.
//
// How it decides, following the definitions in coverage.hpp:
//  1. project start > end: InvalidProject at the project start (before all else);
//  2. no phase: NoPhases at the project start;
//  3. a reversed phase: ReversedPhase at the smallest start of a reversed phase
//     (checked before any day-order issue: a reversed phase holds no day);
//  4. otherwise count, for every day of [min(all starts, project start),
//     max(all ends, project end)], how many phases hold it, and walk the days
//     in order; the first day that is wrong decides:
//       - a day before the project held by a phase: StartsEarly at that day;
//       - a day of the project held by none: StartsLate when it is the
//         project's first day; else EndsEarly when no later day (inside or
//         outside the project) is held by any phase; else Gap;
//       - a day of the project held by two or more: Overlap at that day;
//       - a day after the project held by a phase: EndsLate, reported at
//         project end + 1 whatever the day (by definition);
//     no wrong day: Exact at 0.
//  The kinds never compete for one day except as resolved above.
CoverageResult model(Range project, const std::vector<Range>& phases)
{
    if (project.start > project.end)
        return {CoverageIssue::InvalidProject, project.start};
    if (phases.empty())
        return {CoverageIssue::NoPhases, project.start};
    bool reversed = false;
    std::int64_t rev_at = 0;
    for (const auto& p : phases)
        if (p.start > p.end && (!reversed || p.start < rev_at)) {
            reversed = true;
            rev_at = p.start;
        }
    if (reversed)
        return {CoverageIssue::ReversedPhase, rev_at};

    std::int64_t lo = project.start, hi = project.end;
    for (const auto& p : phases) {
        lo = std::min<std::int64_t>(lo, p.start);
        hi = std::max<std::int64_t>(hi, p.end);
    }
    std::vector<int> paint(static_cast<std::size_t>(hi - lo + 1), 0);
    for (const auto& p : phases)
        for (std::int64_t d = p.start; d <= p.end; d++)
            paint[static_cast<std::size_t>(d - lo)]++;
    // last_held: the last day held by any phase.
    std::int64_t last_held = lo - 1;
    for (std::int64_t d = hi; d >= lo; d--)
        if (paint[static_cast<std::size_t>(d - lo)] > 0) {
            last_held = d;
            break;
        }
    const std::int64_t ps = project.start, pe = project.end;
    for (std::int64_t d = lo; d <= hi; d++) {
        const int c = paint[static_cast<std::size_t>(d - lo)];
        if (d < ps) {
            if (c > 0)
                return {CoverageIssue::StartsEarly, d};
        } else if (d <= pe) {
            if (c == 0) {
                if (d == ps)
                    return {CoverageIssue::StartsLate, ps};
                if (last_held < d)
                    return {CoverageIssue::EndsEarly, d};
                return {CoverageIssue::Gap, d};
            }
            if (c >= 2)
                return {CoverageIssue::Overlap, d};
        } else if (c > 0) {
            return {CoverageIssue::EndsLate, pe + 1};
        }
    }
    return {CoverageIssue::Exact, 0};
}

}  // namespace

TEST(Coverage, RandomAgainstPaintingModel)
{
    Rng rng;
    std::vector<std::uint64_t> seen(static_cast<std::size_t>(CoverageIssue::EndsLate) + 1, 0);
    constexpr std::uint64_t kCases = 60000;
    for (std::uint64_t c = 0; c < kCases; c++) {
        // Work near zero, or at the top or bottom of the int32 day range.
        const int where_mode = static_cast<int>(rng.range(0, 9));
        const std::int64_t base = where_mode == 0   ? std::int64_t{kDayMin}
                                  : where_mode == 1 ? std::int64_t{kDayMax} - 60
                                                    : rng.range(-100000, 100000);
        auto clamp = [](std::int64_t v) { return static_cast<Day>(std::clamp<std::int64_t>(v, kDayMin, kDayMax)); };

        Range project{clamp(base + rng.range(0, 10)), 0};
        project.end = clamp(project.start + rng.range(rng.chance(0.03) ? -3 : 0, 40));

        std::vector<Range> phases;
        const int shape = static_cast<int>(rng.range(0, 3));
        if (shape <= 1) {
            // A tiling of the project, then a few perturbations: most cases
            // are exact or off by one somewhere, which is where bugs live.
            std::int64_t d = project.start;
            while (d <= project.end) {
                const std::int64_t len = rng.range(1, 12);
                phases.push_back({clamp(d), clamp(std::min<std::int64_t>(d + len - 1, project.end))});
                d += len;
            }
            const int perturb = shape == 0 ? 0 : static_cast<int>(rng.range(1, 3));
            for (int i = 0; i < perturb && !phases.empty(); i++) {
                auto& p = phases[static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(phases.size()) - 1))];
                switch (rng.range(0, 6)) {
                case 0: p.start = clamp(p.start + rng.range(-2, 2)); break;
                case 1: p.end = clamp(p.end + rng.range(-2, 2)); break;
                case 2: phases.erase(phases.begin() + (&p - phases.data())); break;
                case 3: phases.push_back(p); break;  // a duplicate
                case 4: phases.push_back({p.end, p.start}); break;
                case 5: phases.push_back({clamp(project.end + rng.range(-1, 4)), clamp(project.end + rng.range(0, 6))}); break;
                default: phases.push_back({clamp(project.start - rng.range(0, 4)), clamp(project.start + rng.range(-3, 1))});
                }
            }
        } else {
            // Arbitrary phases around the project.
            const int n = static_cast<int>(rng.range(0, 6));
            for (int i = 0; i < n; i++) {
                const std::int64_t s = project.start + rng.range(-8, 48);
                phases.push_back({clamp(s), clamp(s + rng.range(rng.chance(0.05) ? -3 : 0, 20))});
            }
        }
        // check_coverage needs phases sorted by start; ties in any order.
        std::shuffle(phases.begin(), phases.end(), rng.gen);
        std::stable_sort(phases.begin(), phases.end(), [](const Range& a, const Range& b) { return a.start < b.start; });

        const CoverageResult want = model(project, phases);
        const CoverageResult got = check_coverage(project, phases.data(), phases.size());
        if (got.issue != want.issue || got.at != want.at) {
            std::string desc = "project [" + std::to_string(project.start) + "," + std::to_string(project.end) + "] phases";
            for (const auto& p : phases)
                desc += " [" + std::to_string(p.start) + "," + std::to_string(p.end) + "]";
            FAIL() << where(rng, c) << " " << desc << "\n got " << coverage_issue_text(got.issue) << " at " << got.at
                   << "\n want " << coverage_issue_text(want.issue) << " at " << want.at;
        }
        seen[static_cast<std::size_t>(want.issue)]++;
    }
    // Every outcome is exercised, and plenty of exact ones.
    for (std::size_t i = 0; i < seen.size(); i++)
        EXPECT_GT(seen[i], 30u) << coverage_issue_text(static_cast<CoverageIssue>(i));
    EXPECT_GT(seen[0], kCases / 10);
}
