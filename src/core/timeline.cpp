#include "core/timeline.hpp"

#include <algorithm>
#include <tuple>

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

void UpgradePlanner::add_phase(const LegacyPhase& phase)
{
    by_project_[phase.project].phases.push_back(static_cast<std::uint32_t>(phases_.size()));
    phases_.push_back(phase);
}

bool UpgradePlanner::wants_project(const Key& project) const
{
    return by_project_.find(project) != by_project_.end();
}

void UpgradePlanner::set_project_dates(const Key& project, std::optional<Day> start, std::optional<Day> end)
{
    auto it = by_project_.find(project);
    if (it == by_project_.end())
        return;
    it->second.dates_known = true;
    it->second.has_dates = start.has_value() && end.has_value();
    it->second.start = start.value_or(0);
    it->second.end = end.value_or(0);
}

void UpgradePlanner::add_archived(ArchivedPhase phase)
{
    archived_.push_back(std::move(phase));
}

void UpgradePlanner::plan(bool restore)
{
    problems_.clear();
    duplicate_kinds_.clear();
    planned_.clear();
    planned_by_id_.clear();
    projects_restored_ = projects_split_ = 0;
    planned_.reserve(phases_.size());
    planned_by_id_.reserve(phases_.size());

    std::unordered_map<Key, std::uint32_t, KeyHash> archived_by_id;
    if (restore) {
        archived_by_id.reserve(archived_.size());
        for (std::uint32_t i = 0; i < archived_.size(); i++)
            archived_by_id[archived_[i].id] = i;
    }

    std::vector<LegacyPhase> ordered;
    std::vector<Range> ranges;
    for (auto& [project, entry] : by_project_) {
        const auto k = static_cast<std::uint32_t>(entry.phases.size());

        // All-or-nothing per project: every current phase must be archived
        // under the same id and the same project.
        bool restorable = restore && !archived_by_id.empty();
        for (std::uint32_t idx : entry.phases) {
            if (!restorable)
                break;
            auto it = archived_by_id.find(phases_[idx].id);
            // An archived range that starts after it ends cannot be written
            // back under check_phase_dates: such a project is split instead.
            restorable = it != archived_by_id.end() && archived_[it->second].project == project &&
                         archived_[it->second].range.start <= archived_[it->second].range.end;
        }
        if (restorable) {
            for (std::uint32_t idx : entry.phases) {
                const ArchivedPhase& a = archived_[archived_by_id[phases_[idx].id]];
                const std::uint32_t desc = a.description ? intern(*a.description) : 0;
                planned_by_id_[a.id] = static_cast<std::uint32_t>(planned_.size());
                planned_.push_back(PlannedPhase{a.id, project, a.range, intern(a.name), desc, true});
            }
            projects_restored_++;
            continue;
        }

        if (!entry.dates_known) {
            problems_.push_back(ProjectProblem{PlanProblem::MissingProject, project, k});
            continue;
        }
        if (!entry.has_dates) {
            problems_.push_back(ProjectProblem{PlanProblem::NullDates, project, k});
            continue;
        }
        if (entry.start > entry.end) {
            problems_.push_back(ProjectProblem{PlanProblem::ReversedDates, project, k});
            continue;
        }
        if (!split_timeline(entry.start, entry.end, k, ranges)) {
            problems_.push_back(ProjectProblem{PlanProblem::TooManyPhases, project, k});
            continue;
        }
        ordered.clear();
        for (std::uint32_t idx : entry.phases)
            ordered.push_back(phases_[idx]);
        std::sort(ordered.begin(), ordered.end(), legacy_order_less);
        std::uint32_t nth[2] = {0, 0};
        for (std::uint32_t i = 0; i < k; i++) {
            const LegacyPhase& p = ordered[i];
            const std::uint32_t n = ++nth[static_cast<int>(p.kind)];
            planned_by_id_[p.id] = static_cast<std::uint32_t>(planned_.size());
            planned_.push_back(PlannedPhase{p.id, project, ranges[i], intern(phase_name(p.kind, n)), 0, false});
        }
        if (nth[0] > 1 || nth[1] > 1)
            duplicate_kinds_.push_back(project);
        projects_split_++;
    }
    std::sort(duplicate_kinds_.begin(), duplicate_kinds_.end());
    std::sort(problems_.begin(), problems_.end(), [](const ProjectProblem& a, const ProjectProblem& b) {
        return std::tie(a.kind, a.project) < std::tie(b.kind, b.project);
    });
}

const PlannedPhase* UpgradePlanner::find(const Key& phase) const
{
    auto it = planned_by_id_.find(phase);
    return it == planned_by_id_.end() ? nullptr : &planned_[it->second];
}

}  // namespace phasemig::core
