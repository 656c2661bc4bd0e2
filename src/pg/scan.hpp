// Streaming reads of the target tables with the statement's snapshot:
// a plain sequential scan, a batch of rows per guard, interrupts checked per
// batch.  Nothing is materialized; callers keep what they need.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/key.hpp"
#include "pg/keys.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// Called per row with the requested attributes.  Runs under a guard: it must
// hold no C++ object with a destructor across a PostgreSQL call.
using RowFn = std::function<void(const Datum* values, const bool* nulls)>;

// Scans every visible row of the relation, from its first block (never a
// synchronized scan joining midway: order matters to the archive).
// `on_progress`, if given, is called between batches with the rows seen.
void scan_table(Oid relid, const std::vector<AttrNumber>& attrs, const RowFn& row,
                const std::function<void(std::uint64_t)>& on_progress = {});

// A row's physical position: its ctid as block << 16 | offset, ascending
// in a scan.
inline std::uint64_t tid_position(const ItemPointerData* tid)
{
    return (static_cast<std::uint64_t>(ItemPointerGetBlockNumberNoCheck(tid)) << 16) |
           ItemPointerGetOffsetNumberNoCheck(tid);
}

// A scan decoded into the core's values a batch at a time, so consumers can
// look ahead (prefetch) within the batch.  Each column is a key (of the given
// id type) or a date.
struct ScanColumn {
    AttrNumber attnum;
    bool is_date;  // else a key
    KeyType key_type;
};
struct RowBatch {
    std::size_t n = 0;
    std::vector<std::vector<core::Key>> keys;  // per column (key columns)
    std::vector<std::vector<core::Day>> days;  // per column (date columns)
    std::vector<std::vector<char>> nulls;      // per column
    std::vector<std::uint64_t> pos;            // physical positions
};
using BatchFn = std::function<void(const RowBatch&)>;
// Read::Once: the caller holds the relation in ACCESS EXCLUSIVE mode and
// reads it this once in the step, so pages come straight from its files
// rather than through shared buffers (see DirectPages in scan.cpp); without
// that lock, as Read::Buffered.
enum class Read { Buffered, Once };
void scan_batches(Oid relid, const std::vector<ScanColumn>& cols, const BatchFn& on_batch,
                  const std::function<void(std::uint64_t)>& on_progress = {}, Read read = Read::Buffered);

// The planner's estimate of the number of rows (for progress), at least 0.
std::uint64_t estimated_rows(Oid relid);

}  // namespace phasemig::pg
