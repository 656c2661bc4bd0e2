// timeline: split_timeline (SPEC §2 formula), phase kinds and names, the
// legacy upgrade order, and UpgradePlanner (grouping, ordering, splitting,
// restoring archived timelines, problems).
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "core/timeline.hpp"
#include "test_support.hpp"

using namespace phasemig::core;
using phasemig::test::key_str;
using phasemig::test::Rng;
using phasemig::test::where;

namespace {

constexpr Day kDayMin = std::numeric_limits<Day>::min();
constexpr Day kDayMax = std::numeric_limits<Day>::max();
// PostgreSQL's date range as days since 2000-01-01: 4713-11-24 BC (Julian
// day 0) to 5874897-12-31.
constexpr Day kPgDateMin = -2451545;
constexpr Day kPgDateMax = 2145031948;

__extension__ typedef __int128 I128;

// The SPEC §2 split computed independently, by the definition of floor:
// b_i is the largest integer b with (b - s) * k <= i * d, found in 128-bit
// arithmetic and checked against its neighbour.  b_0 = s - 1, b_k = e.
std::vector<Range> model_split(Day s, Day e, std::uint32_t k)
{
    const I128 d = I128{e} - I128{s};
    std::vector<Range> out;
    I128 prev = I128{s} - 1;
    for (std::uint32_t i = 1; i <= k; i++) {
        I128 b;
        if (i == k) {
            b = e;
        } else {
            const I128 num = I128{i} * d;
            I128 q = num / k;  // num >= 0: truncation is floor
            while (q * k > num)
                q--;
            while ((q + 1) * k <= num)
                q++;
            b = I128{s} + q;
        }
        out.push_back(Range{static_cast<Day>(prev + 1), static_cast<Day>(b)});
        prev = b;
    }
    return out;
}

// The properties every successful split must have, independent of the formula.
::testing::AssertionResult well_formed_split(Day s, Day e, std::uint32_t k, const std::vector<Range>& r)
{
    if (r.size() != k)
        return ::testing::AssertionFailure() << "size " << r.size() << " != k " << k;
    if (r.front().start != s)
        return ::testing::AssertionFailure() << "first start " << r.front().start << " != s " << s;
    if (r.back().end != e)
        return ::testing::AssertionFailure() << "last end " << r.back().end << " != e " << e;
    const std::int64_t d = std::int64_t{e} - s;
    const std::int64_t small = d / k;  // every length is floor(d/k) or floor(d/k) + 1
    for (std::size_t i = 0; i < r.size(); i++) {
        if (r[i].start > r[i].end)
            return ::testing::AssertionFailure() << "range " << i << " empty: [" << r[i].start << ", " << r[i].end << "]";
        if (i > 0 && std::int64_t{r[i].start} != std::int64_t{r[i - 1].end} + 1)
            return ::testing::AssertionFailure() << "range " << i << " not consecutive";
        const std::int64_t len = std::int64_t{r[i].end} - r[i].start + 1;
        if (len != small && len != small + 1)
            return ::testing::AssertionFailure() << "range " << i << " length " << len << " not in {" << small << ", "
                                                 << small + 1 << "}";
    }
    return ::testing::AssertionSuccess();
}

std::string ranges_str(const std::vector<Range>& r)
{
    std::string s;
    for (const auto& x : r)
        s += "[" + std::to_string(x.start) + "," + std::to_string(x.end) + "]";
    return s;
}

}  // namespace

// ---------------------------------------------------------------- split_timeline

TEST(SplitTimeline, OnePhaseGetsWholeRange)
{
    std::vector<Range> r;
    ASSERT_TRUE(split_timeline(100, 200, 1, r));
    EXPECT_EQ(r, (std::vector<Range>{{100, 200}}));
    ASSERT_TRUE(split_timeline(-7, -7, 1, r));  // a one-day project
    EXPECT_EQ(r, (std::vector<Range>{{-7, -7}}));
}

TEST(SplitTimeline, TwoPhasesSpecRule)
{
    // Planning = [s, s + d/2], Execution = [s + d/2 + 1, e].
    std::vector<Range> r;
    ASSERT_TRUE(split_timeline(0, 10, 2, r));
    EXPECT_EQ(r, (std::vector<Range>{{0, 5}, {6, 10}}));
    ASSERT_TRUE(split_timeline(0, 9, 2, r));  // odd d: d/2 = 4
    EXPECT_EQ(r, (std::vector<Range>{{0, 4}, {5, 9}}));
    ASSERT_TRUE(split_timeline(8766, 9131, 2, r));  // 2024-01-01 .. 2024-12-31, d = 365
    EXPECT_EQ(r, (std::vector<Range>{{8766, 8766 + 182}, {8766 + 183, 9131}}));
    ASSERT_TRUE(split_timeline(5, 6, 2, r));  // d = 1
    EXPECT_EQ(r, (std::vector<Range>{{5, 5}, {6, 6}}));
    ASSERT_TRUE(split_timeline(-10, -1, 2, r));  // negative days
    EXPECT_EQ(r, (std::vector<Range>{{-10, -6}, {-5, -1}}));
    for (Day s = -20; s <= 20; s++)
        for (Day d = 1; d <= 40; d++) {
            ASSERT_TRUE(split_timeline(s, s + d, 2, r));
            EXPECT_EQ(r[0], (Range{s, s + d / 2})) << s << " " << d;
            EXPECT_EQ(r[1], (Range{s + d / 2 + 1, s + d})) << s << " " << d;
        }
}

TEST(SplitTimeline, ThreePhases)
{
    std::vector<Range> r;
    ASSERT_TRUE(split_timeline(0, 9, 3, r));  // b1 = 3, b2 = 6
    EXPECT_EQ(r, (std::vector<Range>{{0, 3}, {4, 6}, {7, 9}}));
    ASSERT_TRUE(split_timeline(0, 10, 3, r));  // b1 = 3, b2 = 6
    EXPECT_EQ(r, (std::vector<Range>{{0, 3}, {4, 6}, {7, 10}}));
    ASSERT_TRUE(split_timeline(0, 11, 3, r));  // b1 = 3, b2 = 7
    EXPECT_EQ(r, (std::vector<Range>{{0, 3}, {4, 7}, {8, 11}}));
    ASSERT_TRUE(split_timeline(0, 2, 3, r));
    EXPECT_EQ(r, (std::vector<Range>{{0, 0}, {1, 1}, {2, 2}}));
    ASSERT_TRUE(split_timeline(100, 104, 3, r));  // d = 4: b1 = 101, b2 = 102
    EXPECT_EQ(r, (std::vector<Range>{{100, 101}, {102, 102}, {103, 104}}));
}

TEST(SplitTimeline, OneDayPhasesWhenDPlusOneEqualsK)
{
    std::vector<Range> r;
    for (std::uint32_t k = 1; k <= 64; k++) {
        const Day s = 1000;
        const Day e = s + static_cast<Day>(k) - 1;
        ASSERT_TRUE(split_timeline(s, e, k, r)) << k;
        ASSERT_EQ(r.size(), k);
        for (std::uint32_t i = 0; i < k; i++)
            EXPECT_EQ(r[i], (Range{s + static_cast<Day>(i), s + static_cast<Day>(i)})) << "k=" << k << " i=" << i;
    }
}

TEST(SplitTimeline, FailsAndClearsOutput)
{
    std::vector<Range> r{{1, 2}, {3, 4}};
    EXPECT_FALSE(split_timeline(0, 0, 2, r));  // d + 1 = 1 < 2
    EXPECT_TRUE(r.empty());
    r = {{1, 2}};
    EXPECT_FALSE(split_timeline(0, 4, 6, r));  // d + 1 = 5 < 6
    EXPECT_TRUE(r.empty());
    r = {{1, 2}};
    EXPECT_FALSE(split_timeline(10, 9, 1, r));  // s > e
    EXPECT_TRUE(r.empty());
    EXPECT_FALSE(split_timeline(kDayMax, kDayMin, 1, r));
    EXPECT_TRUE(r.empty());
    r = {{1, 2}};
    EXPECT_FALSE(split_timeline(0, 10, 0, r));  // k = 0
    EXPECT_TRUE(r.empty());
    EXPECT_FALSE(split_timeline(5, 5, 0, r));
    EXPECT_FALSE(split_timeline(0, 10, std::numeric_limits<std::uint32_t>::max(), r));
    EXPECT_TRUE(r.empty());
    // The boundary itself succeeds.
    EXPECT_TRUE(split_timeline(0, 4, 5, r));
    EXPECT_EQ(r.size(), 5u);
}

TEST(SplitTimeline, HugeRangesDoNotOverflow)
{
    std::vector<Range> r;
    const std::pair<Day, Day> spans[] = {
        {kDayMin, kDayMax},          // d = 2^32 - 1: does not fit in int32
        {kDayMin, kDayMin + 1},      {kDayMax - 1, kDayMax}, {kDayMin, 0}, {0, kDayMax},
        {kPgDateMin, kPgDateMax},    {-1, kDayMax},          {kDayMin, -1},
    };
    for (auto [s, e] : spans) {
        for (std::uint32_t k : {1u, 2u, 3u, 7u, 10u, 1000u, 65537u}) {
            const bool ok = split_timeline(s, e, k, r);
            const bool expect_ok = std::int64_t{e} - s + 1 >= k;
            ASSERT_EQ(ok, expect_ok) << s << " " << e << " " << k;
            if (!ok)
                continue;
            ASSERT_TRUE(well_formed_split(s, e, k, r)) << s << " " << e << " k=" << k;
            ASSERT_EQ(r, model_split(s, e, k)) << s << " " << e << " k=" << k;
        }
    }
    ASSERT_TRUE(split_timeline(kDayMin, kDayMax, 2, r));
    // d = 4294967295, d/2 = 2147483647: Planning = [MIN, MIN + 2147483647] = [MIN, -1].
    EXPECT_EQ(r, (std::vector<Range>{{kDayMin, -1}, {0, kDayMax}}));
}

TEST(SplitTimeline, RandomAgainstModel)
{
    Rng rng;
    std::vector<Range> r;
    std::uint64_t ok_cases = 0, fail_cases = 0;
    for (std::uint64_t c = 0; c < 60000; c++) {
        Day s, e;
        std::uint32_t k;
        switch (rng.range(0, 6)) {
        case 0: {  // everyday projects
            s = static_cast<Day>(rng.range(-5000, 20000));
            e = static_cast<Day>(s + rng.range(0, 800));
            k = static_cast<std::uint32_t>(rng.range(1, 6));
            break;
        }
        case 1: {  // short projects, k up to and past d + 1
            s = static_cast<Day>(rng.range(-100, 100));
            const std::int64_t d = rng.range(0, 60);
            e = static_cast<Day>(s + d);
            k = static_cast<std::uint32_t>(rng.range(1, d + 3));
            break;
        }
        case 2: {  // exactly one day per phase, or one too many phases
            s = static_cast<Day>(rng.range(-1000000, 1000000));
            const std::int64_t d = rng.range(0, 200);
            e = static_cast<Day>(s + d);
            k = static_cast<std::uint32_t>(d + 1 + rng.range(0, 1));
            break;
        }
        case 3: {  // anywhere in the int32 range, large k
            const std::int64_t a = rng.range(kDayMin, kDayMax), b = rng.range(kDayMin, kDayMax);
            s = static_cast<Day>(std::min(a, b));
            e = static_cast<Day>(std::max(a, b));
            k = static_cast<std::uint32_t>(rng.range(1, 300));
            break;
        }
        case 4: {  // touching the int32 limits
            s = static_cast<Day>(kDayMin + rng.range(0, 50));
            e = static_cast<Day>(kDayMax - rng.range(0, 50));
            if (rng.chance(0.3))
                s = static_cast<Day>(e - rng.range(0, 100));
            else if (rng.chance(0.3))
                e = static_cast<Day>(s + rng.range(0, 100));
            k = static_cast<std::uint32_t>(rng.range(1, 120));
            break;
        }
        case 5: {  // PostgreSQL's date limits
            s = static_cast<Day>(kPgDateMin + rng.range(0, 1000));
            e = static_cast<Day>(kPgDateMax - rng.range(0, 1000));
            k = static_cast<std::uint32_t>(rng.range(1, 200));
            break;
        }
        default: {  // invalid: s > e or k = 0
            s = static_cast<Day>(rng.range(-1000, 1000));
            e = static_cast<Day>(rng.chance(0.7) ? s - rng.range(1, 1000) : s + rng.range(0, 1000));
            k = static_cast<std::uint32_t>(s > e ? rng.range(0, 5) : 0);
            break;
        }
        }
        r.assign(3, Range{42, 42});  // must be replaced or cleared
        const bool ok = split_timeline(s, e, k, r);
        const bool expect_ok = k >= 1 && s <= e && std::int64_t{e} - std::int64_t{s} + 1 >= std::int64_t{k};
        ASSERT_EQ(ok, expect_ok) << where(rng, c) << " s=" << s << " e=" << e << " k=" << k;
        if (!ok) {
            ASSERT_TRUE(r.empty()) << where(rng, c);
            fail_cases++;
            continue;
        }
        ok_cases++;
        ASSERT_TRUE(well_formed_split(s, e, k, r)) << where(rng, c) << " s=" << s << " e=" << e << " k=" << k;
        const auto expected = model_split(s, e, k);
        ASSERT_EQ(r, expected) << where(rng, c) << " s=" << s << " e=" << e << " k=" << k << "\n got "
                               << ranges_str(r) << "\n want " << ranges_str(expected);
    }
    EXPECT_GT(ok_cases, 40000u);
    EXPECT_GT(fail_cases, 5000u);
}

// ---------------------------------------------------------------- kinds and names

TEST(PhaseKind, ParseCaseInsensitive)
{
    for (const char* t : {"PLANNING", "planning", "Planning", "pLaNnInG", "PlAnNiNg"})
        EXPECT_EQ(parse_phase_kind(t), PhaseKind::Planning) << t;
    for (const char* t : {"EXECUTION", "execution", "Execution", "eXeCuTiOn"})
        EXPECT_EQ(parse_phase_kind(t), PhaseKind::Execution) << t;
}

TEST(PhaseKind, ParseRejectsEverythingElse)
{
    for (const char* t : {"Planning ", " Planning", "", "plan", "planning2", "PLANNINGS", "exec", "executio",
                          "EXECUTION\n", "NULL", "null", "PLANNING_PHASE", "Planning 2", "Execution 2", "p",
                          "PLANNİNG" /* Turkish dotted I */, "ＰＬＡＮＮＩＮＧ" /* full width */})
        EXPECT_EQ(parse_phase_kind(t), std::nullopt) << "'" << t << "'";
    EXPECT_EQ(parse_phase_kind(std::string_view{}), std::nullopt);                // NULL-like: no data
    EXPECT_EQ(parse_phase_kind(std::string_view("PLANNING\0", 9)), std::nullopt);  // embedded NUL
    EXPECT_EQ(parse_phase_kind(std::string_view("PLANNINGXX", 8)), PhaseKind::Planning);  // length counts
}

TEST(PhaseKind, ParseRandomAgainstModel)
{
    Rng rng;
    static constexpr char alphabet[] = "planingexcutoPLANINGEXCUTO _2\0\xc4\xb0";
    for (std::uint64_t c = 0; c < 20000; c++) {
        std::string t;
        if (rng.chance(0.5)) {  // a mutation of a valid spelling
            t = rng.chance(0.5) ? "planning" : "execution";
            for (auto& ch : t)
                if (rng.chance(0.5))
                    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            if (rng.chance(0.4))
                t[static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(t.size()) - 1))] =
                    alphabet[rng.range(0, sizeof alphabet - 2)];
        } else {
            const auto n = rng.range(0, 10);
            for (int i = 0; i < n; i++)
                t += alphabet[rng.range(0, sizeof alphabet - 2)];
        }
        std::string lower = t;
        for (auto& ch : lower)
            if (ch >= 'A' && ch <= 'Z')
                ch = static_cast<char>(ch - 'A' + 'a');
        const std::optional<PhaseKind> want = lower == "planning"    ? std::optional<PhaseKind>(PhaseKind::Planning)
                                              : lower == "execution" ? std::optional<PhaseKind>(PhaseKind::Execution)
                                                                     : std::nullopt;
        ASSERT_EQ(parse_phase_kind(t), want) << where(rng, c) << " '" << t << "'";
    }
}

TEST(PhaseKind, Names)
{
    EXPECT_EQ(phase_name(PhaseKind::Planning, 1), "Planning");
    EXPECT_EQ(phase_name(PhaseKind::Planning, 2), "Planning 2");
    EXPECT_EQ(phase_name(PhaseKind::Planning, 3), "Planning 3");
    EXPECT_EQ(phase_name(PhaseKind::Execution, 1), "Execution");
    EXPECT_EQ(phase_name(PhaseKind::Execution, 2), "Execution 2");
    EXPECT_EQ(phase_name(PhaseKind::Execution, 3), "Execution 3");
    EXPECT_EQ(phase_name(PhaseKind::Execution, 10), "Execution 10");
    EXPECT_EQ(phase_name(PhaseKind::Planning, 4294967295u), "Planning 4294967295");
    // nth is 1-based; 0 is not meaningful and names like the first.
    EXPECT_EQ(phase_name(PhaseKind::Planning, 0), "Planning");
    // Every generated name fits varchar(100) and maps back to its kind.
    for (std::uint32_t n = 1; n < 200; n++) {
        EXPECT_EQ(kind_from_name(phase_name(PhaseKind::Planning, n)), PhaseKind::Planning);
        EXPECT_EQ(kind_from_name(phase_name(PhaseKind::Execution, n)), PhaseKind::Execution);
    }
    EXPECT_STREQ(kind_label_upper(PhaseKind::Planning), "PLANNING");
    EXPECT_STREQ(kind_label_upper(PhaseKind::Execution), "EXECUTION");
    EXPECT_EQ(parse_phase_kind(kind_label_upper(PhaseKind::Planning)), PhaseKind::Planning);
    EXPECT_EQ(parse_phase_kind(kind_label_upper(PhaseKind::Execution)), PhaseKind::Execution);
}

TEST(PhaseKind, KindFromNameIsLowerLikePercentPlanningPercent)
{
    const std::pair<const char*, PhaseKind> cases[] = {
        {"Planning", PhaseKind::Planning},
        {"planning", PhaseKind::Planning},
        {"Replanning", PhaseKind::Planning},
        {"PLANNING phase", PhaseKind::Planning},
        {"Pre-Planning 2", PhaseKind::Planning},
        {"xxplanninG", PhaseKind::Planning},
        {"plannin planning", PhaseKind::Planning},
        {"pplanning", PhaseKind::Planning},
        {"Plan", PhaseKind::Execution},
        {"", PhaseKind::Execution},
        {"plannin", PhaseKind::Execution},
        {"Planing", PhaseKind::Execution},
        {"P l a n n i n g", PhaseKind::Execution},
        {"Execution", PhaseKind::Execution},
        {"Design", PhaseKind::Execution},
        {"plan_ning", PhaseKind::Execution},
        {"%planning%", PhaseKind::Planning},
        {"PLANNİNG", PhaseKind::Execution},  // non-ASCII: see note in the report
    };
    for (auto [name, want] : cases)
        EXPECT_EQ(kind_from_name(name), want) << "'" << name << "'";
    EXPECT_EQ(kind_from_name(std::string_view{}), PhaseKind::Execution);
    EXPECT_EQ(kind_from_name(std::string_view("PLANNINGzz", 8)), PhaseKind::Planning);
    EXPECT_EQ(kind_from_name(std::string_view("PLANNINGzz", 7)), PhaseKind::Execution);
}

TEST(PhaseKind, KindFromNameRandomAgainstModel)
{
    Rng rng;
    static constexpr char alphabet[] = "planigPLANIG x-2";
    for (std::uint64_t c = 0; c < 30000; c++) {
        std::string name;
        const auto n = rng.range(0, 24);
        for (int i = 0; i < n; i++)
            name += alphabet[rng.range(0, sizeof alphabet - 2)];
        if (rng.chance(0.2)) {  // plant the needle in some spelling
            std::string needle = "planning";
            for (auto& ch : needle)
                if (rng.chance(0.5))
                    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            name.insert(static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(name.size()))), needle);
        }
        std::string lower = name;
        for (auto& ch : lower)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const PhaseKind want = lower.find("planning") != std::string::npos ? PhaseKind::Planning : PhaseKind::Execution;
        ASSERT_EQ(kind_from_name(name), want) << where(rng, c) << " '" << name << "'";
    }
}

// ---------------------------------------------------------------- legacy order

namespace {

LegacyPhase lp(std::int64_t id, PhaseKind kind, std::optional<std::int64_t> created, std::int64_t project = 1)
{
    LegacyPhase p;
    p.id = Key::from_int(id);
    p.project = Key::from_int(project);
    p.kind = kind;
    p.has_created = created.has_value();
    p.created = created.value_or(0);
    return p;
}

// ORDER BY phase_type (PLANNING first), created_at ASC (NULLs last), id.
auto model_order_key(const LegacyPhase& p)
{
    return std::make_tuple(static_cast<int>(p.kind), p.has_created ? 0 : 1, p.has_created ? p.created : 0, p.id.hi,
                           p.id.lo);
}

}  // namespace

TEST(LegacyOrder, KindThenCreatedNullsLastThenId)
{
    const auto P = PhaseKind::Planning, E = PhaseKind::Execution;
    // Kind dominates everything.
    EXPECT_TRUE(legacy_order_less(lp(9, P, 500), lp(1, E, 1)));
    EXPECT_FALSE(legacy_order_less(lp(1, E, 1), lp(9, P, 500)));
    EXPECT_TRUE(legacy_order_less(lp(9, P, std::nullopt), lp(1, E, 1)));
    // Then created_at ascending.
    EXPECT_TRUE(legacy_order_less(lp(9, E, 1), lp(1, E, 2)));
    EXPECT_FALSE(legacy_order_less(lp(1, E, 2), lp(9, E, 1)));
    EXPECT_TRUE(legacy_order_less(lp(9, E, -5), lp(1, E, 0)));
    // NULL created_at sorts last.
    EXPECT_TRUE(legacy_order_less(lp(9, E, std::numeric_limits<std::int64_t>::max()), lp(1, E, std::nullopt)));
    EXPECT_FALSE(legacy_order_less(lp(1, E, std::nullopt), lp(9, E, 5)));
    // Then id.
    EXPECT_TRUE(legacy_order_less(lp(1, E, 7), lp(2, E, 7)));
    EXPECT_FALSE(legacy_order_less(lp(2, E, 7), lp(1, E, 7)));
    EXPECT_TRUE(legacy_order_less(lp(-3, P, std::nullopt), lp(2, P, std::nullopt)));
    // created is ignored when NULL, even if garbage.
    LegacyPhase a = lp(1, E, std::nullopt), b = lp(2, E, std::nullopt);
    a.created = 99;
    b.created = -99;
    EXPECT_TRUE(legacy_order_less(a, b));
    // Irreflexive.
    EXPECT_FALSE(legacy_order_less(a, a));
}

TEST(LegacyOrder, RandomAgainstModel)
{
    Rng rng;
    auto draw = [&] {
        LegacyPhase p = lp(rng.range(-3, 3), rng.chance(0.5) ? PhaseKind::Planning : PhaseKind::Execution,
                           rng.chance(0.3) ? std::nullopt : std::optional<std::int64_t>(rng.range(-2, 2)));
        if (!p.has_created)
            p.created = rng.range(-100, 100);  // must not matter
        if (rng.chance(0.3))
            p.id = Key{rng.u64() & 3, rng.u64() & 3};
        return p;
    };
    for (std::uint64_t c = 0; c < 50000; c++) {
        const LegacyPhase a = draw(), b = draw();
        ASSERT_EQ(legacy_order_less(a, b), model_order_key(a) < model_order_key(b)) << where(rng, c);
    }
}

// ---------------------------------------------------------------- UpgradePlanner

namespace {

const Key kProjA = Key::from_int(1000);
const Key kProjB = Key::from_int(2000);
const Key kProjC = Key::from_int(3000);

LegacyPhase phase(std::int64_t id, Key project, PhaseKind kind, std::optional<std::int64_t> created = std::nullopt)
{
    LegacyPhase p;
    p.id = Key::from_int(id);
    p.project = project;
    p.kind = kind;
    p.has_created = created.has_value();
    p.created = created.value_or(0);
    return p;
}

struct Expect {
    std::int64_t id;
    std::string name;
    Range range;
};

void expect_planned(const UpgradePlanner& planner, const Key& project, const std::vector<Expect>& want,
                    bool restored = false)
{
    for (const auto& w : want) {
        const PlannedPhase* p = planner.find(Key::from_int(w.id));
        ASSERT_NE(p, nullptr) << "phase " << w.id;
        EXPECT_EQ(p->id, Key::from_int(w.id));
        EXPECT_EQ(p->project, project) << "phase " << w.id;
        EXPECT_EQ(planner.string_at(p->name), w.name) << "phase " << w.id;
        EXPECT_EQ(p->range, w.range) << "phase " << w.id;
        EXPECT_EQ(p->restored, restored) << "phase " << w.id;
        if (!restored) {
            EXPECT_EQ(p->description, 0u) << "split phases have a NULL description";
        }
    }
}

std::size_t planned_for(const UpgradePlanner& planner, const Key& project)
{
    return static_cast<std::size_t>(std::count_if(planner.planned().begin(), planner.planned().end(),
                                                  [&](const PlannedPhase& p) { return p.project == project; }));
}

}  // namespace

TEST(UpgradePlanner, Empty)
{
    UpgradePlanner planner;
    planner.plan(true);
    EXPECT_TRUE(planner.planned().empty());
    EXPECT_TRUE(planner.problems().empty());
    EXPECT_EQ(planner.phase_count(), 0u);
    EXPECT_EQ(planner.project_count(), 0u);
    EXPECT_EQ(planner.find(Key::from_int(1)), nullptr);
    EXPECT_EQ(planner.string_at(0), "");  // index 0 stands for NULL
}

TEST(UpgradePlanner, NormalTwoPhaseProjects)
{
    UpgradePlanner planner;
    // Execution added first: order must come from the kind, not the input.
    planner.add_phase(phase(2, kProjA, PhaseKind::Execution, 10));
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning, 20));
    planner.add_phase(phase(3, kProjB, PhaseKind::Planning));
    planner.add_phase(phase(4, kProjB, PhaseKind::Execution));
    EXPECT_TRUE(planner.wants_project(kProjA));
    EXPECT_TRUE(planner.wants_project(kProjB));
    EXPECT_FALSE(planner.wants_project(kProjC));
    planner.set_project_dates(kProjA, 0, 10);
    planner.set_project_dates(kProjB, 8766, 9131);
    EXPECT_FALSE(planner.set_project_dates(kProjC, 0, 1));  // no phases: ignored
    planner.plan(true);

    EXPECT_TRUE(planner.problems().empty());
    EXPECT_TRUE(planner.duplicate_kind_projects().empty());
    EXPECT_EQ(planner.planned().size(), 4u);
    EXPECT_EQ(planner.phase_count(), 4u);
    EXPECT_EQ(planner.project_count(), 2u);
    EXPECT_EQ(planner.projects_split(), 2u);
    EXPECT_EQ(planner.projects_restored(), 0u);
    expect_planned(planner, kProjA, {{1, "Planning", {0, 5}}, {2, "Execution", {6, 10}}});
    expect_planned(planner, kProjB, {{3, "Planning", {8766, 8948}}, {4, "Execution", {8949, 9131}}});
    EXPECT_EQ(planned_for(planner, kProjC), 0u);
}

TEST(UpgradePlanner, ExecutionOnlyAndPlanningOnly)
{
    UpgradePlanner planner;
    planner.add_phase(phase(1, kProjA, PhaseKind::Execution));
    planner.add_phase(phase(2, kProjB, PhaseKind::Planning, 5));
    planner.set_project_dates(kProjA, 100, 200);
    planner.set_project_dates(kProjB, -3, -3);
    planner.plan(true);
    EXPECT_TRUE(planner.problems().empty());
    expect_planned(planner, kProjA, {{1, "Execution", {100, 200}}});
    expect_planned(planner, kProjB, {{2, "Planning", {-3, -3}}});
}

TEST(UpgradePlanner, ThreePhasesOrderedByCreatedThenId)
{
    UpgradePlanner planner;
    // Executions: id 5 created later than id 9; Planning created last of all.
    planner.add_phase(phase(5, kProjA, PhaseKind::Execution, 200));
    planner.add_phase(phase(9, kProjA, PhaseKind::Execution, 100));
    planner.add_phase(phase(7, kProjA, PhaseKind::Planning, 300));
    planner.set_project_dates(kProjA, 0, 9);  // b1 = 3, b2 = 6
    // Same created_at: id decides.  NULL created_at: last.
    planner.add_phase(phase(30, kProjB, PhaseKind::Execution, std::nullopt));
    planner.add_phase(phase(22, kProjB, PhaseKind::Execution, 50));
    planner.add_phase(phase(21, kProjB, PhaseKind::Execution, 50));
    planner.add_phase(phase(40, kProjB, PhaseKind::Planning, std::nullopt));
    planner.set_project_dates(kProjB, 0, 11);  // k = 4, d = 11: b = 2, 5, 8
    planner.plan(true);
    ASSERT_TRUE(planner.problems().empty());
    expect_planned(planner, kProjA, {{7, "Planning", {0, 3}}, {9, "Execution", {4, 6}}, {5, "Execution 2", {7, 9}}});
    expect_planned(planner, kProjB,
                   {{40, "Planning", {0, 2}},
                    {21, "Execution", {3, 5}},
                    {22, "Execution 2", {6, 8}},
                    {30, "Execution 3", {9, 11}}});
}

TEST(UpgradePlanner, DuplicateTypesGetNumberedNames)
{
    UpgradePlanner planner;
    planner.add_phase(phase(3, kProjA, PhaseKind::Execution, 1));
    planner.add_phase(phase(2, kProjA, PhaseKind::Planning, 2));
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning, 3));
    planner.set_project_dates(kProjA, 0, 20);  // d = 20, k = 3: b = 6, 13
    planner.add_phase(phase(11, kProjB, PhaseKind::Planning, 1));
    planner.add_phase(phase(12, kProjB, PhaseKind::Planning, 1));
    planner.set_project_dates(kProjB, 0, 1);
    planner.plan(true);
    ASSERT_TRUE(planner.problems().empty());
    expect_planned(planner, kProjA,
                   {{2, "Planning", {0, 6}}, {1, "Planning 2", {7, 13}}, {3, "Execution", {14, 20}}});
    expect_planned(planner, kProjB, {{11, "Planning", {0, 0}}, {12, "Planning 2", {1, 1}}});
    // Both projects have a duplicated kind, reported in key order.
    EXPECT_EQ(planner.duplicate_kind_projects(), (std::vector<Key>{kProjA, kProjB}));
}

TEST(UpgradePlanner, ProblemsAreReportedAndPlanNothingForTheProject)
{
    const Key missing = Key::from_int(1), null_start = Key::from_int(2), null_end = Key::from_int(3),
              null_both = Key::from_int(4), reversed = Key::from_int(5), too_many = Key::from_int(6),
              good = Key::from_int(7), too_many_one_day = Key::from_int(8);
    UpgradePlanner planner;
    std::int64_t id = 100;
    auto add = [&](Key project, int n) {
        for (int i = 0; i < n; i++)
            planner.add_phase(phase(id++, project, i % 2 ? PhaseKind::Execution : PhaseKind::Planning, i));
    };
    add(missing, 2);
    add(null_start, 1);
    add(null_end, 2);
    add(null_both, 3);
    add(reversed, 2);
    add(too_many, 5);
    add(good, 2);
    add(too_many_one_day, 2);
    planner.set_project_dates(null_start, std::nullopt, 10);
    planner.set_project_dates(null_end, 10, std::nullopt);
    planner.set_project_dates(null_both, std::nullopt, std::nullopt);
    planner.set_project_dates(reversed, 10, 9);
    planner.set_project_dates(too_many, 0, 3);  // 4 days, 5 phases
    planner.set_project_dates(good, 0, 1);
    planner.set_project_dates(too_many_one_day, 7, 7);
    planner.plan(true);

    const std::vector<std::tuple<PlanProblem, Key, std::uint32_t>> want = {
        {PlanProblem::MissingProject, missing, 2}, {PlanProblem::NullDates, null_start, 1},
        {PlanProblem::NullDates, null_end, 2},     {PlanProblem::NullDates, null_both, 3},
        {PlanProblem::ReversedDates, reversed, 2}, {PlanProblem::TooManyPhases, too_many, 5},
        {PlanProblem::TooManyPhases, too_many_one_day, 2},
    };
    ASSERT_EQ(planner.problems().size(), want.size());
    for (std::size_t i = 0; i < want.size(); i++) {
        const auto& p = planner.problems()[i];
        EXPECT_EQ(p.kind, std::get<0>(want[i])) << i;
        EXPECT_EQ(p.project, std::get<1>(want[i])) << i;
        EXPECT_EQ(p.phases, std::get<2>(want[i])) << i;
        EXPECT_EQ(planned_for(planner, p.project), 0u) << i;
    }
    EXPECT_EQ(planner.planned().size(), 2u);
    EXPECT_EQ(planned_for(planner, good), 2u);
    EXPECT_EQ(planner.projects_split(), 1u);
    for (std::int64_t i = 100; i < id; i++) {
        const PlannedPhase* p = planner.find(Key::from_int(i));
        if (p) {
            EXPECT_EQ(p->project, good);
        }
    }
}

TEST(UpgradePlanner, DatesSetLaterWinAndNullResets)
{
    UpgradePlanner planner;
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning));
    planner.set_project_dates(kProjA, std::nullopt, 5);
    planner.set_project_dates(kProjA, 0, 5);
    planner.plan(false);
    EXPECT_TRUE(planner.problems().empty());
    expect_planned(planner, kProjA, {{1, "Planning", {0, 5}}});
}

namespace {

ArchivedPhase archived(std::int64_t id, Key project, std::string name, Range range,
                       std::optional<std::string> description = std::nullopt)
{
    return ArchivedPhase{Key::from_int(id), project, std::move(name), range, std::move(description)};
}

}  // namespace

TEST(UpgradePlanner, RestoresFullyArchivedProject)
{
    UpgradePlanner planner;
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning));
    planner.add_phase(phase(2, kProjA, PhaseKind::Execution));
    planner.add_phase(phase(3, kProjA, PhaseKind::Execution));
    planner.set_project_dates(kProjA, 0, 100);
    planner.add_archived(archived(1, kProjA, "Discovery", {0, 9}, "first look"));
    planner.add_archived(archived(2, kProjA, "Build", {10, 80}));
    planner.add_archived(archived(3, kProjA, "Planning", {81, 100}, std::string{}));  // empty, not NULL
    planner.add_archived(archived(99, kProjA, "Deleted since", {0, 1}));  // no longer a phase: ignored
    planner.plan(true);

    EXPECT_TRUE(planner.problems().empty());
    EXPECT_EQ(planner.projects_restored(), 1u);
    EXPECT_EQ(planner.projects_split(), 0u);
    EXPECT_EQ(planner.planned().size(), 3u);
    expect_planned(planner, kProjA,
                   {{1, "Discovery", {0, 9}}, {2, "Build", {10, 80}}, {3, "Planning", {81, 100}}},
                   /*restored=*/true);
    const PlannedPhase* p1 = planner.find(Key::from_int(1));
    const PlannedPhase* p2 = planner.find(Key::from_int(2));
    const PlannedPhase* p3 = planner.find(Key::from_int(3));
    ASSERT_NE(p1, nullptr);
    ASSERT_NE(p2, nullptr);
    ASSERT_NE(p3, nullptr);
    EXPECT_NE(p1->description, 0u);
    EXPECT_EQ(planner.string_at(p1->description), "first look");
    EXPECT_EQ(p2->description, 0u);  // NULL stays NULL
    EXPECT_NE(p3->description, 0u);  // '' stays '' (not NULL)
    EXPECT_EQ(planner.string_at(p3->description), "");
    EXPECT_EQ(planner.find(Key::from_int(99)), nullptr);

    // restore = false ignores the archive: the same planner splits.
    planner.plan(false);
    EXPECT_EQ(planner.projects_restored(), 0u);
    EXPECT_EQ(planner.projects_split(), 1u);
    expect_planned(planner, kProjA,
                   {{1, "Planning", {0, 33}}, {2, "Execution", {34, 66}}, {3, "Execution 2", {67, 100}}});
    // And planning again with restore brings the archived timeline back.
    planner.plan(true);
    EXPECT_EQ(planner.projects_restored(), 1u);
    expect_planned(planner, kProjA,
                   {{1, "Discovery", {0, 9}}, {2, "Build", {10, 80}}, {3, "Planning", {81, 100}}}, true);
}

TEST(UpgradePlanner, PartiallyArchivedOrMovedProjectsAreSplit)
{
    UpgradePlanner planner;
    // A: phase 2 missing from the archive (created after the downgrade).
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning));
    planner.add_phase(phase(2, kProjA, PhaseKind::Execution));
    planner.set_project_dates(kProjA, 0, 10);
    planner.add_archived(archived(1, kProjA, "Custom", {0, 10}));
    // B: phase 4 archived under another project (moved since).
    planner.add_phase(phase(3, kProjB, PhaseKind::Planning));
    planner.add_phase(phase(4, kProjB, PhaseKind::Execution));
    planner.set_project_dates(kProjB, 20, 30);
    planner.add_archived(archived(3, kProjB, "Custom B", {20, 25}));
    planner.add_archived(archived(4, kProjC, "Custom C", {26, 30}));
    // C: fully archived, restored.
    planner.add_phase(phase(5, kProjC, PhaseKind::Execution));
    planner.set_project_dates(kProjC, 50, 60);
    planner.add_archived(archived(5, kProjC, "Only", {50, 60}, "d"));
    planner.plan(true);

    EXPECT_TRUE(planner.problems().empty());
    EXPECT_EQ(planner.projects_restored(), 1u);
    EXPECT_EQ(planner.projects_split(), 2u);
    expect_planned(planner, kProjA, {{1, "Planning", {0, 5}}, {2, "Execution", {6, 10}}});
    expect_planned(planner, kProjB, {{3, "Planning", {20, 25}}, {4, "Execution", {26, 30}}});
    expect_planned(planner, kProjC, {{5, "Only", {50, 60}}}, true);
}

TEST(UpgradePlanner, RestoreTakesPrecedenceOverDateProblems)
{
    // Current behaviour, documented: a fully archived project is restored
    // even when its project row is missing or its dates are NULL/reversed or
    // too short for its phases; the archived ranges are not re-checked against
    // the project's current dates (verify's coverage check catches a mismatch).
    UpgradePlanner planner;
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning));  // project row never seen
    planner.add_archived(archived(1, kProjA, "A", {0, 1}));
    planner.add_phase(phase(2, kProjB, PhaseKind::Planning));
    planner.add_phase(phase(3, kProjB, PhaseKind::Planning));
    planner.set_project_dates(kProjB, 5, 5);  // one day, two phases
    planner.add_archived(archived(2, kProjB, "B1", {5, 5}));
    planner.add_archived(archived(3, kProjB, "B2", {5, 5}));
    planner.plan(true);
    EXPECT_TRUE(planner.problems().empty());
    EXPECT_EQ(planner.projects_restored(), 2u);
    planner.plan(false);
    ASSERT_EQ(planner.problems().size(), 2u);
    EXPECT_EQ(planner.problems()[0].kind, PlanProblem::MissingProject);
    EXPECT_EQ(planner.problems()[1].kind, PlanProblem::TooManyPhases);
    EXPECT_TRUE(planner.planned().empty());
}

TEST(UpgradePlanner, ReversedArchivedRangeIsSplitInstead)
{
    // check_phase_dates would reject a range that starts after it ends, so a
    // project with one in its archive is split from its dates instead.
    UpgradePlanner planner;
    planner.add_phase(phase(1, kProjA, PhaseKind::Planning));
    planner.add_phase(phase(2, kProjA, PhaseKind::Execution));
    planner.set_project_dates(kProjA, 0, 9);
    planner.add_archived(archived(1, kProjA, "A1", {0, 4}));
    planner.add_archived(archived(2, kProjA, "A2", {9, 5}));
    planner.plan(true);
    EXPECT_TRUE(planner.problems().empty());
    EXPECT_EQ(planner.projects_restored(), 0u);
    EXPECT_EQ(planner.projects_split(), 1u);
    ASSERT_NE(planner.find(Key::from_int(2)), nullptr);
    EXPECT_EQ(planner.find(Key::from_int(2))->range, (Range{5, 9}));
}

// ---------------------------------------------------------------- UpgradePlanner, randomized

namespace {

enum class DatesMode { Given, Missing, NullStart, NullEnd, NullBoth };
enum class ArchiveMode { None, Full, FullPlusExtra, Partial, OtherProject };

struct ModelProject {
    Key id;
    std::vector<LegacyPhase> phases;
    DatesMode dates = DatesMode::Given;
    Day s = 0, e = 0;
    ArchiveMode archive = ArchiveMode::None;
    std::vector<ArchivedPhase> archived;  // those of its current phases that are archived under it
};

struct ModelPlanned {
    Key project;
    std::string name;
    Range range;
    std::optional<std::string> description;
    bool restored;
};

// SPEC §2 for one project, computed from scratch.
void model_project(const ModelProject& mp, bool restore, std::map<std::tuple<std::uint64_t, std::uint64_t>, ModelPlanned>& out,
                   std::vector<ProjectProblem>& problems, std::size_t& restored, std::size_t& split,
                   std::vector<Key>& duplicate_kinds)
{
    const auto k = static_cast<std::uint32_t>(mp.phases.size());
    if (restore && (mp.archive == ArchiveMode::Full || mp.archive == ArchiveMode::FullPlusExtra)) {
        for (const auto& a : mp.archived)
            out[{a.id.hi, a.id.lo}] = ModelPlanned{mp.id, a.name, a.range, a.description, true};
        restored++;
        return;
    }
    if (mp.dates == DatesMode::Missing) {
        problems.push_back({PlanProblem::MissingProject, mp.id, k});
        return;
    }
    if (mp.dates != DatesMode::Given) {
        problems.push_back({PlanProblem::NullDates, mp.id, k});
        return;
    }
    if (mp.s > mp.e) {
        problems.push_back({PlanProblem::ReversedDates, mp.id, k});
        return;
    }
    const I128 d = I128{mp.e} - I128{mp.s};
    if (d + 1 < I128{k}) {
        problems.push_back({PlanProblem::TooManyPhases, mp.id, k});
        return;
    }
    std::vector<LegacyPhase> ordered = mp.phases;
    std::sort(ordered.begin(), ordered.end(),
              [](const LegacyPhase& a, const LegacyPhase& b) { return model_order_key(a) < model_order_key(b); });
    int seen[2] = {0, 0};
    I128 prev_end = I128{mp.s} - 1;
    for (std::uint32_t i = 0; i < k; i++) {
        const LegacyPhase& p = ordered[i];
        const int nth = ++seen[p.kind == PhaseKind::Planning ? 0 : 1];
        std::string name = p.kind == PhaseKind::Planning ? "Planning" : "Execution";
        if (nth > 1)
            name += " " + std::to_string(nth);
        // b_i = s + floor(i*d/k), the last phase ends at e.
        const I128 b = (i + 1 == k) ? I128{mp.e} : I128{mp.s} + (I128{i + 1} * d) / k;
        out[{p.id.hi, p.id.lo}] =
            ModelPlanned{mp.id, name, Range{static_cast<Day>(prev_end + 1), static_cast<Day>(b)}, std::nullopt, false};
        prev_end = b;
    }
    if (seen[0] > 1 || seen[1] > 1)  // only split projects: restored ones keep their own names
        duplicate_kinds.push_back(mp.id);
    split++;
}

}  // namespace

TEST(UpgradePlanner, RandomAgainstModel)
{
    Rng rng;
    std::uint64_t total_projects = 0, total_restored = 0, total_split = 0, total_problems = 0;
    for (int round = 0; round < 8; round++) {
        const int n_projects = round == 0 ? 50 : 3000;
        std::unordered_set<Key, phasemig::core::KeyHash> used;
        auto fresh = [&] {
            for (;;) {
                Key k = rng.key();
                if (used.insert(k).second)
                    return k;
            }
        };
        std::vector<ModelProject> projects(static_cast<std::size_t>(n_projects));
        std::vector<LegacyPhase> all_phases;
        std::vector<ArchivedPhase> all_archived;
        for (auto& mp : projects) {
            mp.id = fresh();
            const double r = rng.range(0, 999) / 1000.0;
            const std::uint32_t k = static_cast<std::uint32_t>(r < 0.85 ? rng.range(1, 4)
                                                               : r < 0.98 ? rng.range(5, 12)
                                                                          : rng.range(13, 40));
            for (std::uint32_t i = 0; i < k; i++) {
                LegacyPhase p;
                p.id = fresh();
                p.project = mp.id;
                p.kind = rng.chance(0.5) ? PhaseKind::Planning : PhaseKind::Execution;
                p.has_created = !rng.chance(0.2);
                // Few distinct values so ties on created_at are common.
                p.created = rng.chance(0.5) ? rng.range(0, 3) : static_cast<std::int64_t>(rng.u64());
                mp.phases.push_back(p);
            }
            const double dm = rng.range(0, 999) / 1000.0;
            mp.dates = dm < 0.03   ? DatesMode::Missing
                       : dm < 0.04 ? DatesMode::NullStart
                       : dm < 0.05 ? DatesMode::NullEnd
                       : dm < 0.06 ? DatesMode::NullBoth
                                   : DatesMode::Given;
            const double sm = rng.range(0, 999) / 1000.0;
            if (sm < 0.03) {  // reversed
                mp.s = static_cast<Day>(rng.range(-10000, 10000));
                mp.e = static_cast<Day>(mp.s - rng.range(1, 500));
            } else if (sm < 0.10) {  // too short or exactly one day per phase
                mp.s = static_cast<Day>(rng.range(-10000, 10000));
                mp.e = static_cast<Day>(mp.s + std::max<std::int64_t>(0, k - 1 - rng.range(0, 2)));
            } else if (sm < 0.13) {  // extremes
                mp.s = static_cast<Day>(kDayMin + rng.range(0, 10));
                mp.e = static_cast<Day>(kDayMax - rng.range(0, 10));
            } else {
                mp.s = static_cast<Day>(rng.range(-10000, 20000));
                mp.e = static_cast<Day>(mp.s + rng.range(k - 1, 2000));
            }
            const double am = rng.range(0, 999) / 1000.0;
            mp.archive = am < 0.15   ? ArchiveMode::Full
                         : am < 0.20 ? ArchiveMode::FullPlusExtra
                         : am < 0.25 ? ArchiveMode::Partial
                         : am < 0.30 ? ArchiveMode::OtherProject
                                     : ArchiveMode::None;
            if (mp.archive != ArchiveMode::None) {
                const std::size_t skip = mp.archive == ArchiveMode::Partial
                                             ? static_cast<std::size_t>(rng.range(0, k - 1))
                                             : mp.phases.size();
                const std::size_t moved = mp.archive == ArchiveMode::OtherProject
                                              ? static_cast<std::size_t>(rng.range(0, k - 1))
                                              : mp.phases.size();
                for (std::size_t i = 0; i < mp.phases.size(); i++) {
                    if (i == skip)
                        continue;
                    ArchivedPhase a;
                    a.id = mp.phases[i].id;
                    a.project = i == moved ? (rng.chance(0.5) ? fresh() : projects[0].id) : mp.id;
                    if (a.project == mp.id && i == moved)
                        a.project = fresh();
                    a.name = "User " + std::to_string(rng.range(0, 5));  // shared strings exercise interning
                    const Day st = static_cast<Day>(rng.range(-5000, 5000));
                    a.range = Range{st, static_cast<Day>(st + rng.range(0, 300))};
                    if (rng.chance(0.6))
                        a.description = rng.chance(0.1) ? std::string{} : "note " + std::to_string(rng.range(0, 50));
                    if (a.project == mp.id)
                        mp.archived.push_back(a);
                    all_archived.push_back(a);
                }
                if (mp.archive == ArchiveMode::FullPlusExtra) {
                    ArchivedPhase extra;
                    extra.id = fresh();  // a phase deleted since the downgrade
                    extra.project = mp.id;
                    extra.name = "Gone";
                    extra.range = Range{0, 0};
                    all_archived.push_back(extra);
                }
            }
            all_phases.insert(all_phases.end(), mp.phases.begin(), mp.phases.end());
        }
        // Archive rows of phases that no longer exist at all.
        for (int i = 0; i < 100; i++)
            all_archived.push_back(ArchivedPhase{fresh(), fresh(), "Orphan", {1, 2}, std::nullopt});

        // Three orders: shuffled (one sort of all); grouped by project as a
        // table usually holds them (each run sorted on its own); grouped but
        // for a few phases moved to the end (their projects in two runs:
        // gathered and sorted apart).
        const int order_kind = round % 3;
        if (order_kind == 0) {
            std::shuffle(all_phases.begin(), all_phases.end(), rng.gen);
        } else {
            for (auto begin = all_phases.begin(); begin != all_phases.end();) {
                auto end = begin + 1;
                while (end != all_phases.end() && end->project == begin->project)
                    ++end;
                std::shuffle(begin, end, rng.gen);
                begin = end;
            }
            if (order_kind == 2) {
                for (int i = 0; i < 20; i++) {
                    const auto at = static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(all_phases.size()) - 1));
                    const LegacyPhase p = all_phases[at];
                    all_phases.erase(all_phases.begin() + static_cast<std::ptrdiff_t>(at));
                    all_phases.push_back(p);
                }
                // And a few moved only a few places on: a project met again
                // within the next runs.
                for (int i = 0; i < 20; i++) {
                    const auto at = static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(all_phases.size()) - 60));
                    std::rotate(all_phases.begin() + static_cast<std::ptrdiff_t>(at),
                                all_phases.begin() + static_cast<std::ptrdiff_t>(at) + 1,
                                all_phases.begin() + static_cast<std::ptrdiff_t>(at + 2 + static_cast<std::size_t>(rng.range(0, 30))));
                }
                // Some moved phase left others of its project behind: a stray.
                bool stray = false;
                for (std::size_t i = all_phases.size() - 20; i < all_phases.size() && !stray; i++)
                    for (std::size_t j = 0; j + 20 < all_phases.size() && !stray; j++)
                        stray = all_phases[j].project == all_phases[i].project;
                EXPECT_TRUE(stray || round == 0) << "round " << round;
            }
        }
        std::shuffle(all_archived.begin(), all_archived.end(), rng.gen);
        UpgradePlanner planner;
        for (const auto& p : all_phases)
            planner.add_phase(p);
        if (round > 0)  // round 0's few projects may all keep one run
            EXPECT_EQ(planner.phases_in_runs(), order_kind != 0) << "round " << round;
        std::vector<std::size_t> order(projects.size());
        for (std::size_t i = 0; i < order.size(); i++)
            order[i] = i;
        std::shuffle(order.begin(), order.end(), rng.gen);
        for (std::size_t i : order) {
            const auto& mp = projects[i];
            ASSERT_TRUE(planner.wants_project(mp.id));
            switch (mp.dates) {
            case DatesMode::Missing: break;
            case DatesMode::NullStart: planner.set_project_dates(mp.id, std::nullopt, mp.e); break;
            case DatesMode::NullEnd: planner.set_project_dates(mp.id, mp.s, std::nullopt); break;
            case DatesMode::NullBoth: planner.set_project_dates(mp.id, std::nullopt, std::nullopt); break;
            case DatesMode::Given: planner.set_project_dates(mp.id, mp.s, mp.e); break;
            }
        }
        for (int i = 0; i < 50; i++) {  // projects without phases: ignored
            const Key stray = fresh();
            ASSERT_FALSE(planner.wants_project(stray));
            planner.set_project_dates(stray, 0, 10);
        }
        for (const auto& a : all_archived)
            planner.add_archived(a);
        ASSERT_EQ(planner.phase_count(), all_phases.size());
        ASSERT_EQ(planner.project_count(), projects.size());

        for (bool restore : {true, false, true}) {
            std::map<std::tuple<std::uint64_t, std::uint64_t>, ModelPlanned> want;
            std::vector<ProjectProblem> want_problems;
            std::size_t want_restored = 0, want_split = 0;
            std::vector<Key> want_duplicates;
            for (const auto& mp : projects)
                model_project(mp, restore, want, want_problems, want_restored, want_split, want_duplicates);
            std::sort(want_duplicates.begin(), want_duplicates.end());
            std::sort(want_problems.begin(), want_problems.end(), [](const ProjectProblem& a, const ProjectProblem& b) {
                return std::tie(a.kind, a.project) < std::tie(b.kind, b.project);
            });

            planner.plan(restore);
            const std::string ctx = where(rng, static_cast<std::uint64_t>(round)) + " restore=" + (restore ? "1" : "0");
            ASSERT_EQ(planner.projects_restored(), want_restored) << ctx;
            ASSERT_EQ(planner.projects_split(), want_split) << ctx;
            ASSERT_EQ(planner.planned().size(), want.size()) << ctx;
            ASSERT_EQ(planner.problems().size(), want_problems.size()) << ctx;
            ASSERT_EQ(planner.duplicate_kind_projects(), want_duplicates) << ctx;
            for (std::size_t i = 0; i < want_problems.size(); i++) {
                const auto& g = planner.problems()[i];
                const auto& w = want_problems[i];
                ASSERT_TRUE(g.kind == w.kind && g.project == w.project && g.phases == w.phases)
                    << ctx << " problem " << i << " project " << key_str(w.project);
            }
            for (const auto& [id, w] : want) {
                const Key key{std::get<0>(id), std::get<1>(id)};
                const PlannedPhase* g = planner.find(key);
                ASSERT_NE(g, nullptr) << ctx << " phase " << key_str(key);
                const std::string pctx = ctx + " phase " + key_str(key) + " project " + key_str(w.project);
                ASSERT_EQ(g->id, key) << pctx;
                ASSERT_EQ(g->project, w.project) << pctx;
                ASSERT_EQ(planner.string_at(g->name), w.name) << pctx;
                ASSERT_EQ(g->range, w.range) << pctx;
                ASSERT_EQ(g->restored, w.restored) << pctx;
                if (w.description) {
                    ASSERT_NE(g->description, 0u) << pctx;
                    ASSERT_EQ(planner.string_at(g->description), *w.description) << pctx;
                } else {
                    ASSERT_EQ(g->description, 0u) << pctx;
                }
            }
            // Every planned phase is one of the model's (no duplicates, no extras).
            std::set<std::tuple<std::uint64_t, std::uint64_t>> ids;
            for (const auto& g : planner.planned()) {
                ASSERT_TRUE(ids.insert({g.id.hi, g.id.lo}).second) << ctx;
                ASSERT_EQ(want.count({g.id.hi, g.id.lo}), 1u) << ctx;
            }
            // holds(): a day is held when one of the project's planned
            // phases (the model's) holds it; days around every range's
            // edges, the project's dates and anywhere.
            std::map<std::tuple<std::uint64_t, std::uint64_t>, std::vector<Range>> ranges_of;
            for (const auto& [id, w] : want)
                ranges_of[{w.project.hi, w.project.lo}].push_back(w.range);
            for (const auto& mp : projects) {
                const auto& rs = ranges_of[{mp.id.hi, mp.id.lo}];
                std::vector<Day> days = {mp.s, mp.e, kDayMin, kDayMax, static_cast<Day>(rng.range(-20000, 30000))};
                for (const Range& r : rs)
                    for (std::int64_t d : {std::int64_t{r.start} - 1, std::int64_t{r.start}, std::int64_t{r.end},
                                           std::int64_t{r.end} + 1})
                        if (d >= kDayMin && d <= kDayMax)
                            days.push_back(static_cast<Day>(d));
                for (Day day : days) {
                    bool held = false;
                    for (const Range& r : rs)
                        held = held || (r.start <= day && day <= r.end);
                    ASSERT_EQ(planner.holds(mp.id, day), held)
                        << ctx << " project " << key_str(mp.id) << " day " << day;
                }
            }
            ASSERT_FALSE(planner.holds(fresh(), 0)) << ctx;
            if (restore) {
                total_restored += want_restored;
                total_split += want_split;
                total_problems += want_problems.size();
            }
        }
        total_projects += static_cast<std::uint64_t>(n_projects);
    }
    EXPECT_GE(total_projects, 10000u);
    EXPECT_GT(total_restored, 1000u);
    EXPECT_GT(total_split, 10000u);
    EXPECT_GT(total_problems, 1000u);
}

TEST(UpgradePlanner, FindInOrderAgreesWithFind)
{
    // A rewrite asks for the phases in the order they were read, except where
    // rows were skipped (problems) or come in another order: every answer must
    // be find()'s, whatever the order.
    Rng rng;
    for (int round = 0; round < 20; round++) {
        UpgradePlanner planner;
        std::vector<Key> ids;
        const int n_projects = static_cast<int>(rng.range(1, 300));
        for (int pr = 0; pr < n_projects; pr++) {
            const Key project = Key::from_int(1000000 + pr);
            const auto k = static_cast<int>(rng.range(1, 4));
            for (int i = 0; i < k; i++) {
                LegacyPhase p;
                p.id = Key::from_int(static_cast<std::int64_t>(ids.size()) + 1);
                p.project = project;
                p.kind = rng.chance(0.5) ? PhaseKind::Planning : PhaseKind::Execution;
                ids.push_back(p.id);
                planner.add_phase(p);
            }
            if (!rng.chance(0.1))  // the others have no dates: not planned
                planner.set_project_dates(project, 0, static_cast<Day>(rng.range(10, 400)));
        }
        std::shuffle(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(ids.size() / 2), rng.gen);
        for (bool restore : {true, false}) {
            planner.plan(restore);
            std::size_t cursor = 0;
            for (const Key& id : ids) {
                const PlannedPhase* want = planner.find(id);
                ASSERT_EQ(planner.find_in_order(id, cursor), want) << "round " << round;
                planner.prefetch_in_order(cursor + 8);
            }
            ASSERT_EQ(planner.find_in_order(Key::from_int(-5), cursor), nullptr);
        }
    }
}
