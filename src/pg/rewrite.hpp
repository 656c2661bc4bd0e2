// A table rewritten with columns filled from C++: what
// ALTER TABLE ... ALTER COLUMN c TYPE t USING f(...) does, without a function
// call per row and column through the executor, and with multi-row inserts
// (a WAL record per page instead of per row).
//
// It follows ALTER TABLE's rewrite (tablecmds.c, ATRewriteTables and
// ATRewriteTable): a new heap beside the old one (make_new_heap), every row
// visible to a fresh snapshot copied with the column set and dropped columns
// set to NULL, then the files swapped and the indexes rebuilt
// (finish_heap_swap).  The relation keeps its OID, owner, grants, triggers,
// constraints and indexes.  Unlike ALTER TABLE it fires no table_rewrite
// event trigger.
#pragma once

#include <cstdint>
#include <functional>

#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// Fills one row: `values`/`nulls` hold the old row's columns (after
// slot_getallattrs, dropped ones already NULL) and become the new row; the
// callback sets the columns it fills.  `tid` is the old row's position.
// Runs inside a guarded batch: it may throw, and must hold no C++ object
// with a destructor across a PostgreSQL call.
using FillRowFn = std::function<void(Datum* values, bool* nulls, const ItemPointerData* tid)>;

// Rewrites `relid` (locked ACCESS EXCLUSIVE by the caller), every row
// passed through fill().  The columns it fills must exist already (ADD
// COLUMN, whose default is what the rows read until now).  `on_progress` is
// called between batches with the rows copied.
void rewrite_table(Oid relid, const FillRowFn& fill, const std::function<void(std::uint64_t)>& on_progress = {});

}  // namespace phasemig::pg
