// How each rewritten row gets its new columns.  The upgrade puts per-row
// functions in the USING clauses of its ALTER TABLE on project_phases; they
// answer from an in-memory context the running step publishes here.  The
// downgrade's own rewrites (pg/rewrite.hpp) call fill_assignment directly.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/archive_merge.hpp"
#include "core/flat_map.hpp"
#include "core/ordered_map.hpp"
#include "core/phase_index.hpp"
#include "core/timeline.hpp"
#include "pg/archive_io.hpp"
#include "pg/guard.hpp"
#include "pg/keys.hpp"

namespace phasemig::pg {

struct UpgradedData;

// phase_type of every phase for the downgrade's rewrite of project_phases: a
// label per phase.
struct PhaseTypes {
    core::OrderedKeyMap<std::uint32_t> by_phase;  // in the order the phases were read
    std::vector<std::string> labels;
};
using ArchivePass2 = core::ArchiveMatchPass2<ArchivedAssignment, AssignmentArchiveReader>;
using ArchiveOnePass = core::ArchiveMatchOnePass<ArchivedAssignment, AssignmentArchiveReader>;

struct FillContext {
    std::int64_t token = 0;
    // Upgrade: new name/dates/description of every phase.
    const core::UpgradePlanner* planner = nullptr;
    // Downgrade: the phases (date rule), and the archive met row by row.
    const UpgradedData* data = nullptr;
    ArchivePass2* archive = nullptr;
    // Downgrade in one pass: the archive without a first pass.  A row the
    // pass cannot answer (or that cannot get a phase) sets needs_second_pass
    // and raises; the step rolls back and reads the assignments first.
    bool one_pass = false;
    ArchiveOnePass* archive_one_pass = nullptr;
    bool needs_second_pass = false;
    std::uint64_t restored = 0;
    std::uint64_t matched = 0;
    std::uint64_t outside = 0;
    // Upgrade: the four USING clauses of a row ask for the same phase in a row.
    core::Key last_id;
    const core::PlannedPhase* last_planned = nullptr;
    std::size_t plan_cursor = 0;  // the rewrite meets the phases in the order they were read
    KeyType phase_key = KeyType::Unsupported;
    KeyType project_key = KeyType::Unsupported;
    KeyType assignment_key = KeyType::Unsupported;
    std::uint64_t rows = 0;
    std::uint64_t expected_rows = 0;
};

// Publishes a context for the lifetime of the object (one ALTER TABLE).
class ActiveFill {
public:
    explicit ActiveFill(FillContext& ctx);
    ~ActiveFill();
    ActiveFill(const ActiveFill&) = delete;
    ActiveFill& operator=(const ActiveFill&) = delete;

private:
    FillContext* previous_;
};

std::int64_t new_fill_token();

// The error for a phase the step's rewrite meets but its scan did not see.
Error phase_appeared(const core::Key& id, KeyType type);

struct AssignmentRow;
// The downgrade's rule for one assignment (SPEC §3): its archived phase when
// restorable, else the date match, else the project's first phase.  Raises
// when its project has no phases; in one-pass mode gives up instead (and
// when the archive cannot answer).  `pos`: the row's ctid position.  Counts
// the row in ctx.
Datum fill_assignment(FillContext& ctx, const AssignmentRow& row, std::uint64_t pos);

}  // namespace phasemig::pg
