// PhaseIndex: the SPEC §3 date rule — among the phases of a project whose
// [start, end] holds the day, earliest start, then smallest id; the first
// phase (earliest start, then id) as fallback; count_holding for verify.
#include <algorithm>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "core/phase_index.hpp"
#include "test_support.hpp"

using namespace phasemig::core;
using phasemig::test::key_str;
using phasemig::test::Rng;
using phasemig::test::where;

namespace {

constexpr Day kDayMin = std::numeric_limits<Day>::min();
constexpr Day kDayMax = std::numeric_limits<Day>::max();

Key K(std::int64_t v) { return Key::from_int(v); }

struct RawPhase {
    Key id;
    Range range;
};

// Brute force: scan every phase, keep those holding the day, min by (start, id).
const RawPhase* brute_match(const std::vector<RawPhase>& phases, Day day)
{
    const RawPhase* best = nullptr;
    for (const auto& p : phases) {
        if (p.range.start <= day && day <= p.range.end) {
            if (!best || std::tie(p.range.start, p.id) < std::tie(best->range.start, best->id))
                best = &p;
        }
    }
    return best;
}

std::uint32_t brute_count(const std::vector<RawPhase>& phases, Day day)
{
    std::uint32_t n = 0;
    for (const auto& p : phases)
        n += p.range.start <= day && day <= p.range.end;
    return n;
}

const RawPhase* brute_first(const std::vector<RawPhase>& phases)
{
    const RawPhase* best = nullptr;
    for (const auto& p : phases)
        if (!best || std::tie(p.range.start, p.id) < std::tie(best->range.start, best->id))
            best = &p;
    return best;
}

bool brute_overlapping(const std::vector<RawPhase>& phases)
{
    for (std::size_t i = 0; i < phases.size(); i++)
        for (std::size_t j = i + 1; j < phases.size(); j++) {
            const Range a = phases[i].range, b = phases[j].range;
            if (a.start <= a.end && b.start <= b.end && std::max(a.start, b.start) <= std::min(a.end, b.end))
                return true;
        }
    return false;
}

// The index answer for a day as a (found, id) pair, for readable asserts.
std::int64_t match_id(const PhaseIndex& idx, std::int64_t project, Day day)
{
    const PhaseIndex::Phase* p = idx.match(K(project), day);
    return p ? p->id.to_int() : -1;
}

}  // namespace

TEST(PhaseIndex, EmptyIndex)
{
    PhaseIndex idx;
    idx.finalize();
    EXPECT_EQ(idx.phase_count(), 0u);
    EXPECT_EQ(idx.project_count(), 0u);
    EXPECT_EQ(idx.find(K(1)), nullptr);
    EXPECT_EQ(idx.match(K(1), 0), nullptr);
}

TEST(PhaseIndex, TouchingRanges)
{
    PhaseIndex idx;
    idx.add(K(1), K(20), {5, 9});
    idx.add(K(1), K(10), {0, 4});
    idx.finalize();
    EXPECT_EQ(match_id(idx, 1, -1), -1);
    EXPECT_EQ(match_id(idx, 1, 0), 10);
    EXPECT_EQ(match_id(idx, 1, 4), 10);
    EXPECT_EQ(match_id(idx, 1, 5), 20);
    EXPECT_EQ(match_id(idx, 1, 9), 20);
    EXPECT_EQ(match_id(idx, 1, 10), -1);
    const auto* p = idx.find(K(1));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->count, 2u);
    EXPECT_FALSE(p->overlapping);
    EXPECT_FALSE(p->has_reversed);
    EXPECT_EQ(idx.first(*p)->id, K(10));
    EXPECT_EQ(idx.count_holding(*p, 4), 1u);
    EXPECT_EQ(idx.count_holding(*p, 10), 0u);
    EXPECT_EQ(match_id(idx, 2, 5), -1);  // unknown project
}

TEST(PhaseIndex, OverlapEarliestStartWinsOverSmallerId)
{
    PhaseIndex idx;
    idx.add(K(1), K(5), {0, 10});
    idx.add(K(1), K(1), {3, 6});
    idx.add(K(1), K(0), {8, 20});
    idx.finalize();
    EXPECT_EQ(match_id(idx, 1, 4), 5);
    EXPECT_EQ(match_id(idx, 1, 9), 5);
    EXPECT_EQ(match_id(idx, 1, 11), 0);
    const auto* p = idx.find(K(1));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->overlapping);
    EXPECT_EQ(idx.count_holding(*p, 4), 2u);
    EXPECT_EQ(idx.count_holding(*p, 4, 1), 1u);
    EXPECT_EQ(idx.count_holding(*p, 4, 10), 2u);
    EXPECT_EQ(idx.count_holding(*p, 9, 10), 2u);
    EXPECT_EQ(idx.count_holding(*p, 7), 1u);
    EXPECT_EQ(idx.count_holding(*p, 21), 0u);
}

TEST(PhaseIndex, EqualStartsSmallestIdWins)
{
    PhaseIndex idx;
    idx.add(K(1), K(7), {2, 8});
    idx.add(K(1), K(3), {2, 4});
    idx.add(K(1), K(-9), {2, 3});  // negative ids order below positive ones
    idx.finalize();
    EXPECT_EQ(match_id(idx, 1, 2), -9);
    EXPECT_EQ(match_id(idx, 1, 3), -9);
    EXPECT_EQ(match_id(idx, 1, 4), 3);
    EXPECT_EQ(match_id(idx, 1, 6), 7);
    EXPECT_EQ(idx.first(*idx.find(K(1)))->id, K(-9));
    EXPECT_EQ(idx.count_holding(*idx.find(K(1)), 3, 5), 3u);
}

TEST(PhaseIndex, UuidIdsOrderLikeMemcmp)
{
    PhaseIndex idx;
    const Key project{0xffffffffffffffffULL, 0};
    const Key low{0x7fffffffffffffffULL, ~0ULL};  // 7fff...: smaller than 8000... as uuid
    const Key high{0x8000000000000000ULL, 0};
    idx.add(project, high, {0, 10});
    idx.add(project, low, {0, 10});
    idx.finalize();
    ASSERT_NE(idx.match(project, 5), nullptr);
    EXPECT_EQ(idx.match(project, 5)->id, low);
}

TEST(PhaseIndex, ReversedPhasesNeverMatch)
{
    PhaseIndex idx;
    idx.add(K(1), K(1), {5, 1});
    idx.add(K(2), K(2), {5, 1});
    idx.add(K(2), K(3), {3, 3});
    idx.add(K(2), K(4), {-10, -20});
    idx.finalize();
    for (Day d = -25; d <= 10; d++) {
        EXPECT_EQ(match_id(idx, 1, d), -1) << d;
        EXPECT_EQ(match_id(idx, 2, d), d == 3 ? 3 : -1) << d;
    }
    const auto* p1 = idx.find(K(1));
    const auto* p2 = idx.find(K(2));
    ASSERT_TRUE(p1 && p2);
    EXPECT_TRUE(p1->has_reversed);
    EXPECT_TRUE(p2->has_reversed);
    EXPECT_FALSE(p2->overlapping);  // reversed phases hold no day, so overlap nothing
    EXPECT_EQ(idx.count_holding(*p2, 3), 1u);
    EXPECT_EQ(idx.count_holding(*p2, 2), 0u);
    // first() is by (start, id) over all phases, reversed ones included,
    // exactly as ORDER BY start_date, id would pick.
    EXPECT_EQ(idx.first(*p2)->id, K(4));
}

TEST(PhaseIndex, ReversedPhasesNeverMatchOnBinarySearchPath)
{
    PhaseIndex idx;
    // 12 phases (> 8): binary search.  Reversed phases interleave with valid ones.
    std::vector<RawPhase> raw;
    for (int i = 0; i < 12; i++) {
        const Range r = i % 3 == 0 ? Range{i * 10 + 9, i * 10} : Range{i * 10, i * 10 + 4};
        raw.push_back({K(i), r});
        idx.add(K(1), K(i), r);
    }
    idx.finalize();
    for (Day d = -5; d <= 130; d++) {
        const RawPhase* want = brute_match(raw, d);
        EXPECT_EQ(match_id(idx, 1, d), want ? want->id.to_int() : -1) << d;
    }
}

TEST(PhaseIndex, ProjectsWithOneToFiftyPhasesBothPaths)
{
    // Project n has n contiguous phases of varying lengths plus (for odd n)
    // an extra phase covering everything with the largest id: earliest start
    // then smallest id must still pick the contiguous one on its first day.
    PhaseIndex idx;
    std::map<int, std::vector<RawPhase>> raw;
    std::int64_t next_id = 1;
    for (int n = 1; n <= 50; n++) {
        Day day = static_cast<Day>(n * 1000);
        for (int i = 0; i < n; i++) {
            const Day len = 1 + (i * 7 + n) % 5;
            const RawPhase p{K(next_id++), Range{day, day + len - 1}};
            raw[n].push_back(p);
            day += len;
        }
        if (n % 2 == 1)
            raw[n].push_back({K(1000000 + n), Range{n * 1000, day - 1}});
        // Add in reverse so finalize() has to sort.
        for (auto it = raw[n].rbegin(); it != raw[n].rend(); ++it)
            idx.add(K(n), it->id, it->range);
    }
    idx.finalize();
    ASSERT_EQ(idx.project_count(), 50u);
    for (int n = 1; n <= 50; n++) {
        const auto* p = idx.find(K(n));
        ASSERT_NE(p, nullptr) << n;
        EXPECT_EQ(p->count, raw[n].size());
        EXPECT_EQ(p->overlapping, n % 2 == 1 && n > 0) << n;
        const Day lo = raw[n].front().range.start, hi = raw[n].back().range.end;
        for (Day d = lo - 3; d <= std::max(hi, raw[n][raw[n].size() - 1].range.end) + 3; d++) {
            const RawPhase* want = brute_match(raw[n], d);
            ASSERT_EQ(match_id(idx, n, d), want ? want->id.to_int() : -1) << "n=" << n << " day=" << d;
            ASSERT_EQ(idx.count_holding(*p, d, 100), brute_count(raw[n], d)) << "n=" << n << " day=" << d;
        }
        EXPECT_EQ(idx.first(*p)->id, brute_first(raw[n])->id) << n;
    }
}

TEST(PhaseIndex, NestedRangesManyPhases)
{
    // Russian dolls: [0,100], [1,99], [2,98], ... with decreasing ids.  The
    // outermost (earliest start) always wins, on either path.
    for (int n : {3, 8, 9, 30}) {
        PhaseIndex idx;
        for (int i = 0; i < n; i++)
            idx.add(K(1), K(100 - i), {i, 100 - i});
        idx.finalize();
        for (Day d = -1; d <= 101; d++)
            EXPECT_EQ(match_id(idx, 1, d), (d >= 0 && d <= 100) ? 100 : -1) << n << " " << d;
        const auto* p = idx.find(K(1));
        EXPECT_EQ(idx.count_holding(*p, 50, 1000), static_cast<std::uint32_t>(n));
        EXPECT_EQ(idx.count_holding(*p, 50), 2u);  // default cap
    }
    // Staircase where a long early phase is the only one reaching far: the
    // prefix maximum must come from an earlier phase than the last candidate.
    PhaseIndex idx;
    idx.add(K(1), K(1), {0, 1000});
    for (int i = 1; i <= 20; i++)
        idx.add(K(1), K(1 + i), {i * 10, i * 10 + 2});
    idx.finalize();
    EXPECT_EQ(match_id(idx, 1, 500), 1);
    EXPECT_EQ(match_id(idx, 1, 1000), 1);
    EXPECT_EQ(match_id(idx, 1, 1001), -1);
}

TEST(PhaseIndex, ExtremeDays)
{
    PhaseIndex idx;
    idx.add(K(1), K(1), {kDayMin, kDayMin});
    idx.add(K(1), K(2), {kDayMax, kDayMax});
    idx.add(K(1), K(3), {kDayMin, kDayMax});
    for (int i = 0; i < 10; i++)  // more than 8: binary search
        idx.add(K(2), K(10 + i), {kDayMin + i, kDayMax - i});
    idx.finalize();
    EXPECT_EQ(match_id(idx, 1, kDayMin), 1);
    EXPECT_EQ(match_id(idx, 1, kDayMax), 3);
    EXPECT_EQ(match_id(idx, 1, 0), 3);
    EXPECT_EQ(match_id(idx, 2, kDayMin), 10);
    EXPECT_EQ(match_id(idx, 2, kDayMax), 10);
    EXPECT_EQ(match_id(idx, 2, kDayMax - 5), 10);
    EXPECT_EQ(idx.count_holding(*idx.find(K(2)), kDayMax - 5, 100), 6u);
}

TEST(PhaseIndex, LastProjectCacheIsNotStale)
{
    PhaseIndex idx;
    idx.add(K(1), K(11), {0, 9});
    idx.add(K(2), K(21), {0, 9});
    idx.finalize();
    for (int round = 0; round < 3; round++) {
        EXPECT_EQ(match_id(idx, 1, 5), 11);
        EXPECT_EQ(match_id(idx, 1, 5), 11);
        EXPECT_EQ(match_id(idx, 2, 5), 21);
        EXPECT_EQ(match_id(idx, 3, 5), -1);  // a miss must not poison the cache
        EXPECT_EQ(match_id(idx, 2, 5), 21);
    }
    // Adding and finalizing again rebuilds everything.
    idx.add(K(1), K(12), {10, 19});
    idx.add(K(3), K(31), {0, 9});
    idx.finalize();
    EXPECT_EQ(idx.project_count(), 3u);
    EXPECT_EQ(match_id(idx, 1, 15), 12);
    EXPECT_EQ(match_id(idx, 2, 5), 21);
    EXPECT_EQ(match_id(idx, 3, 5), 31);
    EXPECT_EQ(match_id(idx, 1, 5), 11);
}

TEST(PhaseIndex, ProjectsAreContiguousAndSorted)
{
    PhaseIndex idx;
    idx.add(K(2), K(5), {3, 4});
    idx.add(K(1), K(9), {0, 1});
    idx.add(K(2), K(4), {0, 2});
    idx.add(K(1), K(8), {2, 3});
    idx.finalize();
    ASSERT_EQ(idx.project_count(), 2u);
    std::size_t seen = 0;
    idx.for_each_project([&](const PhaseIndex::Project& p) {
        seen++;
        for (std::uint32_t i = 0; i < p.count; i++) {
            const auto& ph = idx.phases()[p.begin + i];
            EXPECT_EQ(ph.project, p.id);
            if (i > 0) {
                EXPECT_LE(idx.phases()[p.begin + i - 1].range.start, ph.range.start);
            }
        }
    });
    EXPECT_EQ(seen, 2u);
}

// Grouped runs but for projects interleaved at the start: the quick look
// lets it through, the runs give up early, and one sort gives the same index.
TEST(PhaseIndex, EarlyInterleavingFallsBackToOneSort)
{
    PhaseIndex idx;
    std::vector<std::tuple<Key, Key, Range>> adds;
    for (std::uint64_t p = 1; p <= 3000; p++)
        for (std::uint64_t k = 0; k < 2; k++)
            adds.emplace_back(K(p), K(100000 + p * 2 + k), Range{static_cast<Day>(k * 10), static_cast<Day>(k * 10 + 9)});
    // The first 100 projects: a, b, a, b ... instead of a, a, b, b.
    std::vector<std::tuple<Key, Key, Range>> order;
    for (std::size_t k = 0; k < 2; k++)
        for (std::size_t p = 0; p < 100; p++)
            order.push_back(adds[p * 2 + k]);
    order.insert(order.end(), adds.begin() + 200, adds.end());
    for (const auto& [pid, id, r] : order)
        idx.add(pid, id, r);
    idx.finalize();
    EXPECT_FALSE(idx.by_runs());
    ASSERT_EQ(idx.project_count(), 3000u);
    ASSERT_EQ(idx.phase_count(), 6000u);
    for (std::uint64_t p = 1; p <= 3000; p++) {
        const auto* slot = idx.find(K(p));
        ASSERT_NE(slot, nullptr);
        ASSERT_EQ(slot->count, 2u);
        EXPECT_EQ(idx.first(*slot)->id, K(100000 + p * 2));
        EXPECT_EQ(idx.match(K(p), 15)->id, K(100000 + p * 2 + 1));
    }
}

TEST(PhaseIndex, CountHoldingCapZero)
{
    // "counting at most up to cap": a cap of 0 counts nothing, whether or not
    // the project has overlapping phases.
    PhaseIndex idx;
    idx.add(K(1), K(1), {0, 9});                  // not overlapping
    idx.add(K(2), K(2), {0, 9});
    idx.add(K(2), K(3), {5, 9});                  // overlapping
    idx.finalize();
    EXPECT_EQ(idx.count_holding(*idx.find(K(1)), 5, 0), 0u);
    EXPECT_EQ(idx.count_holding(*idx.find(K(2)), 5, 0), 0u);
    EXPECT_EQ(idx.count_holding(*idx.find(K(1)), 5, 1), 1u);
}

// ---------------------------------------------------------------- randomized

namespace {

// One random project: its shape decides how much its phases overlap.
std::vector<RawPhase> random_project(Rng& rng, std::unordered_set<Key, KeyHash>& used_ids, Day base)
{
    auto fresh = [&] {
        for (;;) {
            Key k = rng.key();
            if (used_ids.insert(k).second)
                return k;
        }
    };
    std::vector<RawPhase> out;
    const int shape = static_cast<int>(rng.range(0, 5));
    const int n = shape == 0 ? static_cast<int>(rng.range(1, 3))     // the upgraded norm
                  : shape <= 2 ? static_cast<int>(rng.range(1, 8))   // linear path
                               : static_cast<int>(rng.range(9, 60));  // binary-search path
    const Day span = static_cast<Day>(rng.range(1, shape == 5 ? 20 : 400));
    if (shape == 1) {
        // A contiguous timeline, perhaps with a gap or a one-day overlap.
        Day d = base;
        for (int i = 0; i < n; i++) {
            const Day len = static_cast<Day>(rng.range(1, 30));
            out.push_back({fresh(), {d, d + len - 1}});
            d += len + static_cast<Day>(rng.range(-1, 1));
        }
    } else {
        for (int i = 0; i < n; i++) {
            // Heavy overlap: starts from a small window, random lengths;
            // some equal starts, some reversed, some one-day phases.
            Day s = base + static_cast<Day>(rng.range(0, span));
            if (!out.empty() && rng.chance(0.15))
                s = out[static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(out.size()) - 1))].range.start;
            Day e;
            const double r = rng.range(0, 99) / 100.0;
            if (r < 0.05)
                e = s - static_cast<Day>(rng.range(1, 10));  // reversed
            else if (r < 0.15)
                e = s;
            else if (r < 0.25)
                e = s + static_cast<Day>(rng.range(span / 2, span * 2));  // long: dominates prefix max
            else
                e = s + static_cast<Day>(rng.range(0, std::max<Day>(1, span / 8)));
            out.push_back({fresh(), {s, e}});
        }
    }
    return out;
}

}  // namespace

TEST(PhaseIndex, RandomAgainstBruteForce)
{
    Rng rng;
    std::uint64_t queries = 0, projects_total = 0, many_phase_projects = 0, matched = 0, unmatched = 0;
    // Rounds 6 to 11 repeat 0 to 5 with the table read through its tags, as
    // a table beyond the caches is.
    for (int round = 0; round < 12; round++) {
        std::unordered_set<Key, KeyHash> used_ids;
        std::vector<std::pair<Key, std::vector<RawPhase>>> projects;
        const int n_projects = 2500;
        for (int i = 0; i < n_projects; i++) {
            Key pid;
            do
                pid = rng.key();
            while (!used_ids.insert(pid).second);
            // Some rounds sit at the ends of the int32 day range.
            const Day base = round % 6 == 4   ? static_cast<Day>(std::numeric_limits<Day>::min() + 20)
                             : round % 6 == 5 ? static_cast<Day>(std::numeric_limits<Day>::max() - 3000)
                                          : static_cast<Day>(rng.range(-100000, 100000));
            projects.emplace_back(pid, random_project(rng, used_ids, base));
            many_phase_projects += projects.back().second.size() > 8;
        }
        PhaseIndex idx(round < 6 ? PhaseIndex::kFarTableBytes : 0);
        std::vector<std::tuple<Key, Key, Range>> adds;
        for (const auto& [pid, phases] : projects)
            for (const auto& p : phases)
                adds.emplace_back(pid, p.id, p.range);
        // The order added: shuffled (one sort of all), grouped by project
        // with each project's phases shuffled (runs), or grouped but for a
        // few projects that give a phase away to the end, as an updated row
        // does (runs, those projects gathered after).
        const int order = round % 3;
        std::vector<Key> split;
        if (order == 0) {
            std::shuffle(adds.begin(), adds.end(), rng.gen);
        } else {
            for (std::size_t b = 0; b < adds.size();) {
                std::size_t e = b + 1;
                while (e < adds.size() && std::get<0>(adds[e]) == std::get<0>(adds[b]))
                    e++;
                std::shuffle(adds.begin() + static_cast<std::ptrdiff_t>(b), adds.begin() + static_cast<std::ptrdiff_t>(e),
                             rng.gen);
                b = e;
            }
            if (order == 2) {
                const std::size_t n = adds.size();
                for (std::size_t i = 0; i + 1 < n - split.size() && split.size() < 40; i += 37)
                    if (std::get<0>(adds[i]) == std::get<0>(adds[i + 1])) {
                        auto moved = adds[i];
                        adds.erase(adds.begin() + static_cast<std::ptrdiff_t>(i));
                        adds.push_back(moved);
                        split.push_back(std::get<0>(moved));
                    }
                std::sort(split.begin(), split.end());
                split.erase(std::unique(split.begin(), split.end()), split.end());
                ASSERT_FALSE(split.empty());
            }
        }
        idx.reserve(adds.size());
        for (const auto& [pid, id, r] : adds)
            idx.add(pid, id, r);
        idx.finalize();
        ASSERT_EQ(idx.by_runs(), order != 0) << "round " << round;
        if (idx.by_runs())
            ASSERT_EQ(idx.split_projects(), split) << "round " << round;
        ASSERT_EQ(idx.phase_count(), adds.size());
        ASSERT_EQ(idx.project_count(), projects.size());

        // Structure: flags and first().
        for (std::size_t pi = 0; pi < projects.size(); pi++) {
            const auto& [pid, phases] = projects[pi];
            const auto* p = idx.find(pid);
            ASSERT_NE(p, nullptr) << where(rng, pi);
            ASSERT_EQ(p->id, pid);
            ASSERT_EQ(p->count, phases.size()) << where(rng, pi);
            bool rev = false;
            for (const auto& ph : phases)
                rev |= ph.range.start > ph.range.end;
            ASSERT_EQ(p->has_reversed, rev) << where(rng, pi);
            ASSERT_EQ(p->overlapping, brute_overlapping(phases)) << where(rng, pi) << " project " << key_str(pid);
            ASSERT_EQ(idx.first(*p)->id, brute_first(phases)->id) << where(rng, pi);
        }

        // Queries: per project the interesting days, then random (project, day)
        // pairs in random order so the last-project cache is both hit and missed.
        auto check = [&](std::size_t pi, Day day, std::uint64_t case_no) {
            const auto& [pid, phases] = projects[pi];
            const RawPhase* want = brute_match(phases, day);
            idx.prefetch_tag(KeyHash{}(pid));
            idx.prefetch(pid);
            const PhaseIndex::Phase* got = idx.match(pid, day);
            if (want) {
                ASSERT_NE(got, nullptr) << where(rng, case_no) << " project " << key_str(pid) << " day " << day;
                ASSERT_EQ(got->id, want->id) << where(rng, case_no) << " project " << key_str(pid) << " day " << day;
                ASSERT_EQ(got->range, want->range) << where(rng, case_no);
                ASSERT_EQ(got->project, pid) << where(rng, case_no);
                matched++;
            } else {
                ASSERT_EQ(got, nullptr) << where(rng, case_no) << " project " << key_str(pid) << " day " << day
                                        << " got " << key_str(got->id);
                unmatched++;
            }
            const auto* p = idx.find(pid);
            const std::uint32_t brute = brute_count(phases, day);
            for (std::uint32_t cap : {1u, 2u, 3u, 7u, std::numeric_limits<std::uint32_t>::max()})
                ASSERT_EQ(idx.count_holding(*p, day, cap), std::min(brute, cap))
                    << where(rng, case_no) << " project " << key_str(pid) << " day " << day << " cap " << cap;
            ASSERT_EQ(idx.count_holding(*p, day), std::min(brute, 2u)) << where(rng, case_no);
            queries++;
        };
        for (std::size_t pi = 0; pi < projects.size(); pi++) {
            for (const auto& ph : projects[pi].second) {
                for (std::int64_t d : {std::int64_t{ph.range.start} - 1, std::int64_t{ph.range.start},
                                       std::int64_t{ph.range.end}, std::int64_t{ph.range.end} + 1}) {
                    if (d < kDayMin || d > kDayMax)
                        continue;
                    check(pi, static_cast<Day>(d), pi);
                    if (::testing::Test::HasFatalFailure())
                        return;
                }
            }
        }
        for (int q = 0; q < 20000; q++) {
            const auto pi = static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(projects.size()) - 1));
            const auto& phases = projects[pi].second;
            std::int64_t lo = phases[0].range.start, hi = phases[0].range.end;
            for (const auto& ph : phases) {
                lo = std::min<std::int64_t>({lo, ph.range.start, ph.range.end});
                hi = std::max<std::int64_t>({hi, ph.range.start, ph.range.end});
            }
            lo = std::max<std::int64_t>(kDayMin, lo - 3);
            hi = std::min<std::int64_t>(kDayMax, hi + 3);
            check(pi, static_cast<Day>(rng.range(lo, hi)), static_cast<std::uint64_t>(q));
            if (::testing::Test::HasFatalFailure())
                return;
        }
        // Projects the index does not know (the last-project cache holds
        // another): many, so that some probe past slots with their tag.
        for (int k = 0; k < 5000; k++) {
            Key stranger;
            do
                stranger = rng.key();
            while (used_ids.count(stranger));
            idx.prefetch_tag(KeyHash{}(stranger));
            idx.prefetch(stranger);
            ASSERT_EQ(idx.find(stranger), nullptr);
            ASSERT_EQ(idx.match(stranger, 0), nullptr);
        }
        projects_total += projects.size();
    }
    EXPECT_GE(projects_total, 10000u);
    EXPECT_GE(queries, 100000u);
    EXPECT_GT(many_phase_projects, 3000u);
    EXPECT_GT(matched, 10000u);
    EXPECT_GT(unmatched, 10000u);
}

// A few projects met in two runs (a phase updated since the table was
// written) are copied to the end of the phases reserved for: the array of
// all phases is not moved (a new array of every phase to fault in).
TEST(PhaseIndex, SplitProjectsStayInTheReservedArray)
{
    constexpr std::uint64_t kProjects = 50000;
    PhaseIndex idx;
    idx.reserve(kProjects * 2);
    for (std::uint64_t p = 1; p <= kProjects; p++) {
        idx.add(K(p), K(p * 2), Range{0, 9});
        if (p > 2)
            idx.add(K(p), K(p * 2 + 1), Range{10, 19});
    }
    // The second phase of two projects comes at the end, as an update leaves it.
    idx.add(K(1), K(3), Range{10, 19});
    idx.add(K(2), K(5), Range{10, 19});
    const PhaseIndex::Phase* before = idx.phases().data();
    idx.finalize();
    ASSERT_TRUE(idx.by_runs());
    EXPECT_EQ(idx.split_projects(), (std::vector<Key>{K(1), K(2)}));
    EXPECT_EQ(idx.phases().data(), before);
    EXPECT_EQ(idx.match(K(1), 15)->id, K(3));
    EXPECT_EQ(idx.match(K(2), 5)->id, K(4));
    EXPECT_EQ(idx.match(K(kProjects), 15)->id, K(kProjects * 2 + 1));
}
