// Microbenchmarks of the pure C++ core.
//
//   phasemig_core_bench                               (real numbers)
//   phasemig_core_bench --benchmark_min_time=0.01     (ctest smoke run)
//
// Data: 100k projects x 2 phases (the upgraded norm: Planning/Execution split
// by the SPEC §2 rule), random uuid ids, and 1M (project, day) assignment
// queries of which about 97% fall inside a phase.  Every benchmark reports
// items/s; ns per item is 1e9 / that figure.
//
// PhaseIndex::match is compared with naive structures answering the same
// queries by the same rule (earliest start, then smallest id):
//   - std::multimap<Key, Phase>: equal_range, scan all, keep the best;
//   - a vector sorted by (project, start, id): equal_range on the project,
//     then the first phase holding the day;
//   - std::unordered_map<Key, std::vector<Phase>>: the obvious hash map.
#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/archive_codec.hpp"
#include "core/coverage.hpp"
#include "core/phase_index.hpp"
#include "core/timeline.hpp"

using namespace phasemig::core;

namespace {

constexpr std::size_t kProjects = 100000;
constexpr std::size_t kQueries = 1000000;

struct Query {
    Key project;
    Day day;
};

struct NaivePhase {
    Key id;
    Range range;
};

struct Dataset {
    std::vector<Key> projects;
    std::vector<Range> project_ranges;
    std::vector<std::tuple<Key, Key, Range>> phases;  // (project, id, range), in random order
    std::vector<LegacyPhase> legacy;
    std::vector<Query> random_order;
    std::vector<Query> grouped;  // the same queries, in runs of one project

    PhaseIndex index;
    std::multimap<Key, NaivePhase> multimap;
    std::vector<PhaseIndex::Phase> sorted;  // by (project, start, id)
    std::unordered_map<Key, std::vector<NaivePhase>, KeyHash> hashmap;

    // Coverage input: per project its phases sorted by start, contiguous.
    std::vector<Range> cov_phases;
    std::vector<std::uint32_t> cov_begin;

    Dataset()
    {
        std::mt19937_64 rng(20240601);
        std::uniform_int_distribution<std::int64_t> start(8000, 9500), len(30, 700);
        std::vector<Range> split;
        for (std::size_t i = 0; i < kProjects; i++) {
            const Key p{rng(), rng()};
            const Day s = static_cast<Day>(start(rng));
            const Day e = static_cast<Day>(s + len(rng));
            projects.push_back(p);
            project_ranges.push_back({s, e});
            split_timeline(s, e, 2, split);
            cov_begin.push_back(static_cast<std::uint32_t>(cov_phases.size()));
            for (std::uint32_t k = 0; k < 2; k++) {
                const Key id{rng(), rng()};
                phases.emplace_back(p, id, split[k]);
                cov_phases.push_back(split[k]);
                LegacyPhase lp;
                lp.id = id;
                lp.project = p;
                lp.kind = k == 0 ? PhaseKind::Planning : PhaseKind::Execution;
                lp.has_created = true;
                lp.created = static_cast<std::int64_t>(rng() % 1000000);
                legacy.push_back(lp);
            }
        }
        cov_begin.push_back(static_cast<std::uint32_t>(cov_phases.size()));
        std::shuffle(phases.begin(), phases.end(), rng);
        std::shuffle(legacy.begin(), legacy.end(), rng);

        std::uniform_int_distribution<std::size_t> pick(0, kProjects - 1);
        for (std::size_t q = 0; q < kQueries; q++) {
            const std::size_t i = pick(rng);
            const Range r = project_ranges[i];
            std::uniform_int_distribution<std::int64_t> day(std::int64_t{r.start} - 10, std::int64_t{r.end} + 10);
            random_order.push_back({projects[i], static_cast<Day>(day(rng))});
        }
        grouped = random_order;
        std::stable_sort(grouped.begin(), grouped.end(), [](const Query& a, const Query& b) { return a.project < b.project; });

        for (const auto& [p, id, r] : phases) {
            index.add(p, id, r);
            multimap.emplace(p, NaivePhase{id, r});
            sorted.push_back({p, id, r});
            hashmap[p].push_back({id, r});
        }
        index.finalize();
        std::sort(sorted.begin(), sorted.end(), [](const PhaseIndex::Phase& a, const PhaseIndex::Phase& b) {
            return std::tie(a.project, a.range.start, a.id) < std::tie(b.project, b.range.start, b.id);
        });
    }
};

const Dataset& data()
{
    static const Dataset d;
    return d;
}

// Sum of matched ids: keeps the work observable and lets runs be compared.
std::uint64_t fold(const Key* id) { return id ? id->lo : 1; }

const Key* index_match(const Query& q)
{
    const PhaseIndex::Phase* p = data().index.match(q.project, q.day);
    return p ? &p->id : nullptr;
}

// Every alternative must give the index's answers: checked on a sample
// before anything is timed, and each run reports a checksum of one pass
// (equal across alternatives and orders when they agree).
template <class Match>
void run_queries(benchmark::State& state, const std::vector<Query>& queries, Match match)
{
    for (std::size_t i = 0; i < queries.size(); i += 97) {
        if (fold(match(queries[i])) != fold(index_match(queries[i]))) {
            state.SkipWithError("answers differ from PhaseIndex::match");
            return;
        }
    }
    std::uint64_t sum = 0;
    for (auto _ : state) {
        sum = 0;
        for (const Query& q : queries)
            sum += fold(match(q));
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * queries.size()));
    state.counters["checksum"] = static_cast<double>(sum % 1000003);
}

const Key* multimap_match(const Query& q)
{
    const NaivePhase* best = nullptr;
    auto [lo, hi] = data().multimap.equal_range(q.project);
    for (auto it = lo; it != hi; ++it) {
        const NaivePhase& p = it->second;
        if (p.range.start <= q.day && q.day <= p.range.end &&
            (!best || std::tie(p.range.start, p.id) < std::tie(best->range.start, best->id)))
            best = &p;
    }
    return best ? &best->id : nullptr;
}

const Key* sorted_vector_match(const Query& q)
{
    const auto& v = data().sorted;
    auto lo = std::lower_bound(v.begin(), v.end(), q.project,
                               [](const PhaseIndex::Phase& p, const Key& k) { return p.project < k; });
    for (auto it = lo; it != v.end() && it->project == q.project && it->range.start <= q.day; ++it)
        if (q.day <= it->range.end)
            return &it->id;
    return nullptr;
}

const Key* hashmap_match(const Query& q)
{
    const auto& m = data().hashmap;
    auto it = m.find(q.project);
    if (it == m.end())
        return nullptr;
    const NaivePhase* best = nullptr;
    for (const NaivePhase& p : it->second)
        if (p.range.start <= q.day && q.day <= p.range.end &&
            (!best || std::tie(p.range.start, p.id) < std::tie(best->range.start, best->id)))
            best = &p;
    return best ? &best->id : nullptr;
}

void BM_Match_Index_Random(benchmark::State& s) { run_queries(s, data().random_order, index_match); }
void BM_Match_Index_Grouped(benchmark::State& s) { run_queries(s, data().grouped, index_match); }
void BM_Match_Multimap_Random(benchmark::State& s) { run_queries(s, data().random_order, multimap_match); }
void BM_Match_Multimap_Grouped(benchmark::State& s) { run_queries(s, data().grouped, multimap_match); }
void BM_Match_SortedVector_Random(benchmark::State& s) { run_queries(s, data().random_order, sorted_vector_match); }
void BM_Match_SortedVector_Grouped(benchmark::State& s) { run_queries(s, data().grouped, sorted_vector_match); }
void BM_Match_HashMapOfVectors_Random(benchmark::State& s) { run_queries(s, data().random_order, hashmap_match); }
void BM_Match_HashMapOfVectors_Grouped(benchmark::State& s) { run_queries(s, data().grouped, hashmap_match); }

// PhaseIndex build for 200k phases: add + finalize, and finalize alone.
void BM_Index_Build_200k(benchmark::State& state)
{
    const auto& d = data();
    for (auto _ : state) {
        PhaseIndex idx;
        idx.reserve(d.phases.size());
        for (const auto& [p, id, r] : d.phases)
            idx.add(p, id, r);
        idx.finalize();
        benchmark::DoNotOptimize(idx.project_count());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.phases.size()));
}

// Arg 0: phases in random order (one sort of all); Arg 1: grouped by
// project, as a table usually holds them (runs, no sort).
void BM_Index_FinalizeOnly_200k(benchmark::State& state)
{
    const auto& d = data();
    auto phases = d.phases;
    if (state.range(0) == 1)  // projects in no key order, each one's phases together
        std::stable_sort(phases.begin(), phases.end(), [](const auto& a, const auto& b) {
            const std::size_t ha = KeyHash{}(std::get<0>(a)), hb = KeyHash{}(std::get<0>(b));
            return ha != hb ? ha < hb : std::get<0>(a) < std::get<0>(b);
        });
    for (auto _ : state) {
        state.PauseTiming();
        PhaseIndex idx;
        idx.reserve(phases.size());
        for (const auto& [p, id, r] : phases)
            idx.add(p, id, r);
        state.ResumeTiming();
        idx.finalize();
        benchmark::DoNotOptimize(idx.project_count());
        state.PauseTiming();
        { PhaseIndex gone = std::move(idx); }  // destruction is not part of finalize
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.phases.size()));
}

// UpgradePlanner for 100k projects (200k phases).  Arg 0: plan() alone on a
// loaded planner; Arg 1: load (add_phase + set_project_dates) and plan.
// A tenth of the projects is fully archived, so the restore path runs too.
void load_planner(UpgradePlanner& planner, const Dataset& d)
{
    for (const auto& lp : d.legacy)
        planner.add_phase(lp);
    for (std::size_t i = 0; i < d.projects.size(); i++)
        planner.set_project_dates(d.projects[i], d.project_ranges[i].start, d.project_ranges[i].end);
}

void add_archive(UpgradePlanner& planner, const Dataset& d)
{
    for (std::size_t i = 0; i < d.legacy.size(); i++) {
        const LegacyPhase& lp = d.legacy[i];
        if (lp.project.lo % 10 != 0)
            continue;
        planner.add_archived(ArchivedPhase{lp.id, lp.project, lp.kind == PhaseKind::Planning ? "Design" : "Build",
                                           Range{8000, 9000}, std::nullopt});
    }
}

void BM_Planner_Plan_100k(benchmark::State& state)
{
    const auto& d = data();
    const bool with_load = state.range(0) == 1;
    UpgradePlanner loaded;
    if (!with_load) {
        load_planner(loaded, d);
        add_archive(loaded, d);
    }
    for (auto _ : state) {
        if (with_load) {
            UpgradePlanner planner;
            load_planner(planner, d);
            add_archive(planner, d);
            planner.plan(true);
            benchmark::DoNotOptimize(planner.planned().size());
        } else {
            loaded.plan(true);
            benchmark::DoNotOptimize(loaded.planned().size());
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.projects.size()));
    state.SetLabel(with_load ? "items = projects; load + plan" : "items = projects; plan only");
}

// check_coverage over 100k projects (2 phases each, all exact).
void BM_Coverage_100k(benchmark::State& state)
{
    const auto& d = data();
    std::uint64_t exact = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < d.projects.size(); i++) {
            const CoverageResult r = check_coverage(d.project_ranges[i], &d.cov_phases[d.cov_begin[i]],
                                                    d.cov_begin[i + 1] - d.cov_begin[i]);
            exact += r.issue == CoverageIssue::Exact;
        }
        benchmark::DoNotOptimize(exact);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.projects.size()));
}

}  // namespace

// The assignment archive's chunk codec (core/archive_codec.hpp), 1M entries
// shaped like a table scan of the generated data: positions climbing, random
// projects (arg 0: uuid ids; arg 1: sequential integer ids).  Items are
// entries; the counter gives the bytes per entry.
std::vector<ArchiveEntry> archive_entries(bool integers)
{
    std::mt19937_64 rng(7);
    std::vector<ArchiveEntry> out(kQueries);
    for (std::size_t i = 0; i < out.size(); i++) {
        ArchiveEntry& e = out[i];
        e.pos = (static_cast<std::uint64_t>(i / 60) << 16) | (i % 60 + 1);
        const std::uint64_t project = rng() % kProjects;
        e.id = integers ? Key::from_int(static_cast<std::int64_t>(i + 1)) : Key{rng(), rng()};
        e.has_project = true;
        e.project = integers ? Key::from_int(static_cast<std::int64_t>(project + 1)) : Key{project * 0x9e3779b97f4a7c15ULL, project};
        e.has_date = true;
        e.date = static_cast<Day>(9000 + rng() % 700);
        e.phase = integers ? Key::from_int(static_cast<std::int64_t>(2 * project + (rng() & 1) + 1))
                           : Key{project * 0xbf58476d1ce4e5b9ULL, rng() & 1};
    }
    return out;
}

void BM_Archive_Encode(benchmark::State& state)
{
    const auto in = archive_entries(state.range(0) == 1);
    unsigned char buf[1960];
    std::size_t bytes = 0;
    for (auto _ : state) {
        ChunkEncoder enc(buf, sizeof buf);
        bytes = 0;
        for (const auto& e : in) {
            if (!enc.has_room()) {
                bytes += enc.size();
                enc.reset();
            }
            enc.add(e);
        }
        bytes += enc.size();
        benchmark::DoNotOptimize(buf);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
    state.counters["bytes_per_entry"] = static_cast<double>(bytes) / static_cast<double>(in.size());
}

void BM_Archive_Decode(benchmark::State& state)
{
    const auto in = archive_entries(state.range(0) == 1);
    std::vector<std::vector<unsigned char>> chunks;
    unsigned char buf[1960];
    ChunkEncoder enc(buf, sizeof buf);
    for (const auto& e : in) {
        if (!enc.has_room()) {
            chunks.emplace_back(enc.data(), enc.data() + enc.size());
            enc.reset();
        }
        enc.add(e);
    }
    chunks.emplace_back(enc.data(), enc.data() + enc.size());
    for (auto _ : state) {
        std::uint64_t sum = 0;
        for (const auto& c : chunks) {
            ChunkDecoder dec(c.data(), c.size());
            ArchiveEntry e;
            while (dec.next(e))
                sum += e.pos;
        }
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}

BENCHMARK(BM_Match_Index_Random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_Index_Grouped)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_SortedVector_Random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_SortedVector_Grouped)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_Multimap_Random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_Multimap_Grouped)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_HashMapOfVectors_Random)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Match_HashMapOfVectors_Grouped)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Index_Build_200k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Index_FinalizeOnly_200k)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Planner_Plan_100k)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Coverage_100k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Archive_Encode)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Archive_Decode)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
