// Budget sums computed in C++ during the scans a step or verify makes anyway,
// exact (fixed point, 6 decimals), per project and overall, with an
// order-independent digest of the per-project sums: the baseline a step
// records and verify compares with, without another pass in SQL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/flat_map.hpp"
#include "core/huge_alloc.hpp"
#include "core/key.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// A numeric Datum as value * 10^6; false for NaN/infinity or a value with
// non-zero digits beyond the sixth decimal.  `dscale` gets its display scale.
bool numeric_to_fixed(Datum value, __int128& out, int& dscale) noexcept;
// Fixed point back to text with `dscale` decimals, as numeric_out prints it.
std::string fixed_to_text(__int128 value, int dscale);

struct BudgetSums {
    __int128 sum[3] = {0, 0, 0};  // capital, expense, total
    bool any[3] = {false, false, false};  // SQL sum() of no value is NULL
};

// Phases are added as a scan meets them, consecutive phases of one project
// into one record; finish() groups the records by project with one sort (no
// hash map touched per row), or of the few projects not met as one run when
// the caller knows them, and keeps the overall sums and the digest.
class Budgets {
public:
    // The three budget Datums of one phase (null flags as in a slot).
    void add(const core::Key& project, const Datum* values, const bool* nulls);
    void reserve(std::size_t phases) { phases_.reserve(phases); }  // an upper bound (narrow records)
    // split: as PhaseIndex::split_projects() when the phases were added in
    // the index's order and it found runs; nullptr: found here (the projects
    // met in more than one record), or one sort of all.
    void finish(const std::vector<core::Key>* split = nullptr);
    bool exact() const noexcept { return exact_; }
    const BudgetSums& overall() const noexcept { return overall_; }
    std::optional<std::string> text(int column) const;  // overall sum, NULL when no value
    // Sum over projects of a hash of (project, its three sums): equal
    // digests mean equal per-project sums (up to a 2^-64 chance).
    std::string digest() const;
    std::size_t projects() const noexcept { return projects_; }

private:
    // A run's sums in cents while every value has at most two decimals and
    // they fit 64 bits (numeric(15,2), the usual budget column): 48 bytes a
    // record instead of 80, and at 10M assignments 32 MB less to fault in.
    // The first value that does not fit moves every record to WideBudget.
    struct PhaseBudget {
        core::Key project;
        std::int64_t cents[3] = {0, 0, 0};
        bool any[3] = {false, false, false};
    };
    struct WideBudget {
        core::Key project;
        BudgetSums sums;
    };
    // A record's sums in the fixed point of BudgetSums, whichever its form.
    static BudgetSums sums_of(const PhaseBudget& r) noexcept;
    static const BudgetSums& sums_of(const WideBudget& r) noexcept { return r.sums; }
    template <typename Record>
    void finish_records(core::BigVector<Record>& records, const std::vector<core::Key>* split);
    void widen();
    core::BigVector<PhaseBudget> phases_;
    core::BigVector<WideBudget> wide_;  // once widened, every record
    bool widened_ = false;
    BudgetSums overall_;
    std::uint64_t digest_ = 0;
    std::size_t projects_ = 0;
    int dscale_[3] = {0, 0, 0};  // per column, as SQL's sum() has it
    bool exact_ = true;
};

}  // namespace phasemig::pg
