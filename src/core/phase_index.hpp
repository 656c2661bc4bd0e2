// Interval matching (SPEC §3): the phase of a project whose [start, end]
// holds a date — earliest start, then smallest id — and the project's first
// phase as the fallback.  Built once per statement from the phases; every
// assignment is then answered without touching the database.
#pragma once

#include <cstdint>
#include <vector>

#include "core/huge_alloc.hpp"
#include "core/key.hpp"
#include "core/prefetch.hpp"

namespace phasemig::core {

class PhaseIndex {
public:
    struct Phase {
        Key project;
        Key id;
        Range range;
    };
    // The ranges of up to kInline phases are copied into the project, so
    // that a lookup in random order costs one cache line, not three.
    static constexpr std::uint32_t kInline = 4;
    struct alignas(64) Project {
        Key id;
        std::uint32_t begin = 0;  // first phase in phases()
        std::uint32_t count = 0;  // number of phases; 0 marks an empty hash slot
        bool overlapping = false; // some day is held by two of its phases
        bool has_reversed = false; // some phase has start > end
        Range inline_ranges[kInline] = {};
    };

    // A table larger than far_table_bytes is read through its tags (see
    // prefetch_hashed); a smaller one mostly stays in the last-level cache,
    // where the tags cost more than the second line they save.
    static constexpr std::size_t kFarTableBytes = std::size_t{32} << 20;
    explicit PhaseIndex(std::size_t far_table_bytes = kFarTableBytes) noexcept : far_table_bytes_(far_table_bytes) {}

    // With room for the phases of projects met in more than one run, which
    // build_from_runs() copies to the end: without it one such project
    // moves every phase to a new array (8 MB more to fault in at 1M).
    void reserve(std::size_t phases) { phases_.reserve(phases + phases / 64 + 64); }
    void add(const Key& project, const Key& phase, Range range);
    // Orders each project's phases by (start, id) and builds the lookup; call
    // once after add().
    void finalize();
    // After finalize(): true when the phases came grouped by project in the
    // order added, but for the projects in split_projects() (sorted), whose
    // phases came in more than one run.  Per-project tallies kept in the
    // order added then need no sort but of those.  False: no such knowledge.
    bool by_runs() const noexcept { return by_runs_; }
    const std::vector<Key>& split_projects() const noexcept { return split_; }

    std::size_t phase_count() const noexcept { return live_phases_; }
    std::size_t project_count() const noexcept { return project_count_; }
    const BigVector<Phase>& phases() const noexcept { return phases_; }
    // Every project, in no particular order.
    template <typename F>
    void for_each_project(F&& f) const
    {
        for (const Project& p : table_)
            if (p.count != 0)
                f(p);
    }

    // nullptr when the project has no phases.  Inline: called per row.
    const Project* find(const Key& project) const noexcept { return find_hashed(project, KeyHash{}(project)); }
    const Project* find_hashed(const Key& project, std::size_t hash) const noexcept
    {
        if (last_ && last_->id == project)
            return last_;
        if (tags_.empty())
            return nullptr;
        std::size_t h = hash & mask_;
        if (far_) {
            // The tags, where prefetch_hashed loaded only the slot they name.
            const std::uint8_t tag = tag_of(hash);
            for (std::uint8_t g; (g = tags_[h]) != 0; h = (h + 1) & mask_)
                if (g == tag && table_[h].id == project)
                    return last_ = &table_[h];
            return nullptr;
        }
        for (; table_[h].count != 0; h = (h + 1) & mask_)
            if (table_[h].id == project)
                return last_ = &table_[h];
        return nullptr;
    }
    // Starts loading the hash slot of a project that will be looked up soon:
    // lookups in random order are memory-bound, and a scan knows its next
    // rows (about one cache miss hidden per row).
    void prefetch(const Key& project) const noexcept { prefetch_hashed(KeyHash{}(project)); }
    // The same with the key's hash (KeyHash) computed once by the caller,
    // who then looks it up with find_hashed().
    void prefetch_hashed(std::size_t hash) const noexcept
    {
        if (tags_.empty())
            return;
        const std::size_t home = hash & mask_;
        if (!far_) {
            // The next slot too: at the table's load, about two lookups in
            // five probe past the first slot.
            prefetch_read(&table_[home]);
            prefetch_read(&table_[(home + 1) & mask_]);
            return;
        }
        // A table beyond the caches: its tags (a byte per slot, in cache)
        // tell which slot holds the project, or that none does, so one line
        // is loaded per lookup, not the next slot's as well.
        const std::uint8_t tag = tag_of(hash);
        for (std::size_t h = home;; h = (h + 1) & mask_) {
            const std::uint8_t g = tags_[h];
            if (g == 0)
                return;
            if (g == tag) {
                prefetch_read(&table_[h]);
                return;
            }
        }
    }
    // Further ahead than prefetch_hashed(): the tags it reads (far tables only).
    void prefetch_tag(std::size_t hash) const noexcept
    {
        if (far_)
            prefetch_read(&tags_[hash & mask_]);
    }

    // The date rule: nullptr when no phase of the project holds the day.
    const Phase* match(const Project& project, Day day) const noexcept;
    // The same as an offset into the project's phases, -1 for none: no
    // access to phases() for small projects.
    int match_offset(const Project& project, Day day) const noexcept
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
    const Phase* match(const Key& project, Day day) const noexcept
    {
        const Project* p = find(project);
        return p ? match(*p, day) : nullptr;
    }
    // phases() holds each project's phases at [begin, begin + count); it may
    // hold other entries no project refers to.
    // Earliest start, then smallest id.
    const Phase* first(const Project& project) const noexcept { return &phases_[project.begin]; }

    // How many phases of the project hold the day, counting at most up to cap.
    std::uint32_t count_holding(const Project& project, Day day, std::uint32_t cap = 2) const noexcept;

private:
    Project close_project(std::size_t begin, std::size_t end);
    void size_table(std::size_t projects);
    bool insert(const Project& p) noexcept;  // false when the project is there
    Project* slot_of(const Key& project) noexcept;
    // Where each run of one project starts in phases_, then phases_.size().
    std::vector<std::uint32_t> run_starts() const;
    bool build_from_runs();

    BigVector<Phase> phases_;
    BigVector<Day> prefix_max_end_;  // per phase, max end over its project's earlier phases
    std::size_t project_count_ = 0;
    // Open addressing over Projects themselves (count 0 = empty), linear
    // probing.  Huge pages only up to 16 MiB (TableVector's): at 10M
    // assignments the kernel's compaction for its 128 MB cost verify more
    // (150-250 ms after a pause) than the TLB misses they save (about 30 ms).
    TableVector<Project> table_;
    // Per slot: 0 empty, else 7 high bits of the project's hash (odd).
    TableVector<std::uint8_t> tags_;
    std::size_t far_table_bytes_;
    bool far_ = false;  // table larger than far_table_bytes_
    static std::uint8_t tag_of(std::size_t hash) noexcept { return static_cast<std::uint8_t>((hash >> 56) | 1); }
    std::size_t mask_ = 0;
    // Assignments usually come in runs of the same project; remember the last.
    mutable const Project* last_ = nullptr;
    bool by_runs_ = false;
    std::vector<Key> split_;
    std::size_t live_phases_ = 0;
};

}  // namespace phasemig::core
