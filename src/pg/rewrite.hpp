// A table rewritten with columns filled from C++: what
// ALTER TABLE ... ALTER COLUMN c TYPE t USING f(...) does, without a function
// call per row and column through the executor, and written the way VACUUM
// FULL writes (whole pages straight to the new file, a WAL image per page)
// instead of a buffered insert and a WAL record per row.
//
// It follows ALTER TABLE's rewrite (tablecmds.c, ATRewriteTables and
// ATRewriteTable) for what is copied: a new heap beside the old one
// (make_new_heap), every row visible to a fresh snapshot, with the filled
// columns set and dropped columns set to NULL; then the files are swapped and
// the indexes rebuilt (finish_heap_swap).  It follows CLUSTER
// (copy_table_data) for how: the heap's rewrite code (rewriteheap.c), rows
// keeping their xmin/xmax, frozen where no transaction can still see them.
// The relation keeps its OID, owner, grants, triggers, constraints and
// indexes.  Unlike ALTER TABLE it fires no table_rewrite event trigger.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

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

// What VALIDATE CONSTRAINT and SET NOT NULL record after their scans, for a
// caller whose own rewrite wrote every row and checked what the scan would:
// the constraint marked validated, the columns marked NOT NULL (catalog
// updates, relcache invalidated, visible to the next command).
void mark_constraint_validated(Oid relid, Oid conoid);
void mark_not_null(Oid relid, const std::vector<const char*>& columns);

// A column the rewrite fills from text, with its type's input function
// (which applies a varchar's or char's length, or checks an enum's label).
struct ColumnInput {
    AttrNumber att = InvalidAttrNumber;
    Oid type = InvalidOid;
    std::int32_t typmod = -1;
    Oid input = InvalidOid;
    Oid ioparam = InvalidOid;
    // Raises as the input function does: call inside guarded() or a fill.
    Datum value(const char* text) const
    {
        return OidInputFunctionCall(input, const_cast<char*>(text), ioparam, typmod);
    }
};
ColumnInput column_input(Oid relid, const char* column);

}  // namespace phasemig::pg
