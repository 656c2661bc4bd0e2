#include "core/timeline.hpp"

#include <algorithm>
#include <tuple>

#include <boost/sort/pdqsort/pdqsort.hpp>

namespace phasemig::core {

bool split_timeline(Day s, Day e, std::uint32_t k, std::vector<Range>& out)
{
    out.clear();
    if (k == 0 || s > e)
        return false;
    // 64-bit: d can span the whole date range and i*d must not overflow.
    const std::int64_t d = std::int64_t{e} - std::int64_t{s};
    if (d + 1 < std::int64_t{k})
        return false;
    out.reserve(k);
    std::int64_t prev_end = std::int64_t{s} - 1;
    for (std::uint32_t i = 1; i <= k; i++) {
        const std::int64_t b = (i == k) ? std::int64_t{e} : std::int64_t{s} + (std::int64_t{i} * d) / k;
        out.push_back(Range{static_cast<Day>(prev_end + 1), static_cast<Day>(b)});
        prev_end = b;
    }
    return true;
}

namespace {

bool iequals_ascii(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); i++) {
        unsigned char x = static_cast<unsigned char>(a[i]);
        unsigned char y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z')
            x = static_cast<unsigned char>(x - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

}  // namespace

std::optional<PhaseKind> parse_phase_kind(std::string_view text) noexcept
{
    if (iequals_ascii(text, "planning"))
        return PhaseKind::Planning;
    if (iequals_ascii(text, "execution"))
        return PhaseKind::Execution;
    return std::nullopt;
}

std::string phase_name(PhaseKind kind, std::uint32_t nth)
{
    std::string name = kind == PhaseKind::Planning ? "Planning" : "Execution";
    if (nth > 1)
        name += " " + std::to_string(nth);
    return name;
}

PhaseKind kind_from_name(std::string_view name) noexcept
{
    static constexpr std::string_view needle = "planning";
    if (name.size() < needle.size())
        return PhaseKind::Execution;
    for (std::size_t i = 0; i + needle.size() <= name.size(); i++) {
        if (iequals_ascii(name.substr(i, needle.size()), needle))
            return PhaseKind::Planning;
    }
    return PhaseKind::Execution;
}

const char* kind_label_upper(PhaseKind kind) noexcept
{
    return kind == PhaseKind::Planning ? "PLANNING" : "EXECUTION";
}

bool legacy_order_less(const LegacyPhase& a, const LegacyPhase& b) noexcept
{
    if (a.kind != b.kind)
        return a.kind < b.kind;
    if (a.has_created != b.has_created)
        return a.has_created;  // NULLs last, as ORDER BY created_at does
    if (a.has_created && a.created != b.created)
        return a.created < b.created;
    return a.id < b.id;
}

UpgradePlanner::UpgradePlanner()
{
    strings_.emplace_back();  // index 0 stands for NULL
}

std::uint32_t UpgradePlanner::intern(const std::string& s)
{
    auto it = string_ids_.find(s);
    if (it != string_ids_.end())
        return it->second;
    auto id = static_cast<std::uint32_t>(strings_.size());
    strings_.push_back(s);
    string_ids_.emplace(s, id);
    return id;
}

void UpgradePlanner::reserve(std::size_t phases, std::size_t projects)
{
    phases_.reserve(phases);
    dates_.reserve(projects);
}

void UpgradePlanner::add_phase(const LegacyPhase& phase)
{
    // A table's phases of one project usually lie together: one lookup per
    // run, which also tells whether the project had a run before.
    if (phases_.empty() || !(phases_.back().project == phase.project)) {
        runs_++;
        if (pending_count_ == kPending)
            resolve_oldest();
        dates_.prefetch(phase.project);
        pending_[(pending_head_ + pending_count_++) % kPending] = phase.project;
    }
    phases_.push_back(phase);
    phases_.back().seq = static_cast<std::uint32_t>(phases_.size() - 1);
}

void UpgradePlanner::resolve_oldest()
{
    const Key& project = pending_[pending_head_];
    if (dates_.find(project))
        split_.push_back(project);
    else
        dates_.put(project, ProjectDates{});
    pending_head_ = (pending_head_ + 1) % kPending;
    pending_count_--;
}

void UpgradePlanner::flush_pending()
{
    while (pending_count_ > 0)
        resolve_oldest();
}

void UpgradePlanner::note_project(const Key& project)
{
    flush_pending();
    if (!dates_.find(project))
        dates_.put(project, ProjectDates{});
}

bool UpgradePlanner::wants_project(const Key& project) const
{
    for (std::size_t i = 0; i < pending_count_; i++)
        if (pending_[(pending_head_ + i) % kPending] == project)
            return true;
    return dates_.find(project) != nullptr;
}

bool UpgradePlanner::set_project_dates(const Key& project, std::optional<Day> start, std::optional<Day> end)
{
    flush_pending();
    ProjectDates* d = dates_.find(project);
    if (!d)
        return false;
    d->known = true;
    d->has_dates = start.has_value() && end.has_value();
    d->start = start.value_or(0);
    d->end = end.value_or(0);
    return true;
}

void UpgradePlanner::add_archived(ArchivedPhase phase)
{
    archived_.push_back(std::move(phase));
}

void UpgradePlanner::plan(bool restore)
{
    flush_pending();
    problems_.clear();
    duplicate_kinds_.clear();
    planned_.clear();
    planned_by_id_.clear();
    by_id_built_ = false;
    projects_restored_ = projects_split_ = 0;
    planned_.reserve(phases_.size());
    by_seq_.assign(phases_.size(), kNotPlanned);

    FlatKeyMap<std::uint32_t> archived_by_id;
    if (restore) {
        archived_by_id.reserve(archived_.size());
        for (std::uint32_t i = 0; i < archived_.size(); i++)
            archived_by_id.put(archived_[i].id, i);
    }

    // Each project's phases together, in the upgrade's order: by sorting
    // each run of one project when every project came in one run, else by
    // one sort of all (Boost's pdqsort: about 15% faster than std::sort
    // here, BM_Planner_Plan).
    auto by_project = [](const LegacyPhase& a, const LegacyPhase& b) {
        return a.project != b.project ? a.project < b.project : legacy_order_less(a, b);
    };
    if (phases_in_runs()) {
        std::sort(split_.begin(), split_.end());
        split_.erase(std::unique(split_.begin(), split_.end()), split_.end());
        std::vector<LegacyPhase> strays;
        auto out = phases_.begin();
        for (auto begin = phases_.begin(); begin != phases_.end();) {
            auto end = begin + 1;
            while (end != phases_.end() && end->project == begin->project)
                ++end;
            if (!split_.empty() && std::binary_search(split_.begin(), split_.end(), begin->project)) {
                strays.insert(strays.end(), begin, end);
            } else {
                const auto n = end - begin;
                if (out != begin)
                    std::move(begin, end, out);
                if (n > 1)
                    std::sort(out, out + n, legacy_order_less);
                out += n;
            }
            begin = end;
        }
        boost::sort::pdqsort(strays.begin(), strays.end(), by_project);
        std::move(strays.begin(), strays.end(), out);
    } else {
        boost::sort::pdqsort(phases_.begin(), phases_.end(), by_project);
    }

    std::vector<Range> ranges;
    // Each project's dates are a random lookup (at 10M assignments a 64 MB
    // map): loaded a few projects ahead.
    constexpr std::size_t kDatesAhead = 16;  // phases, about 8 projects
    for (std::size_t begin = 0; begin < phases_.size();) {
        if (begin + kDatesAhead < phases_.size())
            dates_.prefetch(phases_[begin + kDatesAhead].project);
        const Key project = phases_[begin].project;
        std::size_t end = begin;
        while (end < phases_.size() && phases_[end].project == project)
            end++;
        const auto k = static_cast<std::uint32_t>(end - begin);

        // All-or-nothing per project: every current phase must be archived
        // under the same id and the same project.
        bool restorable = restore && !archived_by_id.empty();
        for (std::size_t i = begin; i < end && restorable; i++) {
            const std::uint32_t* a = archived_by_id.find(phases_[i].id);
            // An archived range that starts after it ends cannot be written
            // back under check_phase_dates: such a project is split instead.
            restorable = a && archived_[*a].project == project && archived_[*a].range.start <= archived_[*a].range.end;
        }
        if (restorable) {
            dates_.find(project)->plan = kPlanRestored;
            for (std::size_t i = begin; i < end; i++) {
                const ArchivedPhase& a = archived_[*archived_by_id.find(phases_[i].id)];
                const std::uint32_t desc = a.description ? intern(*a.description) : 0;
                by_seq_[phases_[i].seq] = static_cast<std::uint32_t>(planned_.size());
                planned_.push_back(PlannedPhase{a.id, project, a.range, intern(a.name), desc, true, phases_[i].seq});
            }
            projects_restored_++;
            begin = end;
            continue;
        }

        ProjectDates& d = *dates_.find(project);
        d.plan = kPlanNone;
        std::optional<PlanProblem> problem;
        if (!d.known)
            problem = PlanProblem::MissingProject;
        else if (!d.has_dates)
            problem = PlanProblem::NullDates;
        else if (d.start > d.end)
            problem = PlanProblem::ReversedDates;
        else if (!split_timeline(d.start, d.end, k, ranges))
            problem = PlanProblem::TooManyPhases;
        if (problem) {
            problems_.push_back(ProjectProblem{*problem, project, k});
            begin = end;
            continue;
        }
        std::uint32_t nth[2] = {0, 0};
        for (std::uint32_t i = 0; i < k; i++) {
            const LegacyPhase& p = phases_[begin + i];
            const std::uint32_t n = ++nth[static_cast<int>(p.kind)];
            by_seq_[p.seq] = static_cast<std::uint32_t>(planned_.size());
            planned_.push_back(PlannedPhase{p.id, project, ranges[i], name_id(p.kind, n), 0, false, p.seq});
        }
        if (nth[0] > 1 || nth[1] > 1)
            duplicate_kinds_.push_back(project);
        d.plan = kPlanSplit;
        projects_split_++;
        begin = end;
    }
    restored_ = PhaseIndex{};
    if (projects_restored_ > 0) {
        for (const PlannedPhase& p : planned_)
            if (p.restored)
                restored_.add(p.project, p.id, p.range);
        restored_.finalize();
    }
    std::sort(problems_.begin(), problems_.end(), [](const ProjectProblem& a, const ProjectProblem& b) {
        return std::tie(a.kind, a.project) < std::tie(b.kind, b.project);
    });
    std::sort(duplicate_kinds_.begin(), duplicate_kinds_.end());
}

std::uint32_t UpgradePlanner::name_id(PhaseKind kind, std::uint32_t nth)
{
    // "Planning", "Execution", then numbered: the first few are cached.
    auto& cache = name_ids_[static_cast<int>(kind)];
    if (nth < cache.size() && cache[nth] != 0)
        return cache[nth];
    const std::uint32_t id = intern(phase_name(kind, nth));
    if (nth < 16) {
        if (cache.size() <= nth)
            cache.resize(nth + 1, 0);
        cache[nth] = id;
    }
    return id;
}

const PlannedPhase* UpgradePlanner::find(const Key& phase) const
{
    // Built at the first lookup: a rewrite asks find_in_order(), which needs
    // it only for a phase out of the order added.
    if (!by_id_built_) {
        planned_by_id_.reserve(planned_.size());
        for (std::uint32_t i = 0; i < planned_.size(); i++)
            planned_by_id_.put(planned_[i].id, i);
        by_id_built_ = true;
    }
    const std::uint32_t* i = planned_by_id_.find(phase);
    return i ? &planned_[*i] : nullptr;
}

const PlannedPhase* UpgradePlanner::find_in_order(const Key& phase, std::size_t& cursor) const
{
    if (cursor < by_seq_.size() && by_seq_[cursor] != kNotPlanned && planned_[by_seq_[cursor]].id == phase)
        return &planned_[by_seq_[cursor++]];
    const PlannedPhase* p = find(phase);
    if (p)
        cursor = std::size_t{p->seq} + 1;  // back in step after it
    return p;
}

}  // namespace phasemig::core
