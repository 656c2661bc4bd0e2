#include "pg/rewrite.hpp"

#include <vector>

#include "pg/guard.hpp"

extern "C" {
#include "access/multixact.h"
#include "catalog/catalog.h"
#include "catalog/objectaccess.h"
#include "commands/cluster.h"
#include "commands/tablecmds.h"
}

namespace phasemig::pg {

namespace {
// Rows per guard (and interrupt check), and rows per multi-row insert (the
// batch COPY uses).
constexpr std::size_t kBatchRows = 8192;
constexpr int kInsertRows = 1000;
}  // namespace

void rewrite_table(Oid relid, const FillRowFn& fill, const std::function<void(std::uint64_t)>& on_progress)
{
    struct State {
        Relation old_rel;
        Relation new_rel;
        Oid new_heap;
        char persistence;
        Snapshot snapshot;
        TableScanDesc scan;
        TupleTableSlot* old_slot;
        TupleTableSlot* slots[kInsertRows];
        int pending;
        int natts;
        BulkInsertState bistate;
        CommandId cid;
        MemoryContext per_batch;
    };
    std::vector<int> dropped;
    State st = guarded([&] {
        State s{};
        // The ADD COLUMN before must be visible to the scan's snapshot.
        CommandCounterIncrement();
        Relation rel = table_open(relid, NoLock);
        // ALTER TABLE's own refusals for a rewrite.
        if (IsSystemRelation(rel) || RelationIsUsedAsCatalogTable(rel))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("cannot rewrite table \"%s\"", RelationGetRelationName(rel))));
        if (RELATION_IS_OTHER_TEMP(rel))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("cannot rewrite temporary tables of other sessions")));
        CheckTableNotInUse(rel, "phasemig");
        s.persistence = rel->rd_rel->relpersistence;
        s.new_heap = make_new_heap(relid, rel->rd_rel->reltablespace, rel->rd_rel->relam, s.persistence,
                                   AccessExclusiveLock);
        s.old_rel = rel;
        s.new_rel = table_open(s.new_heap, AccessExclusiveLock);
        TupleDesc desc = RelationGetDescr(rel);
        s.natts = desc->natts;
        for (int i = 0; i < desc->natts; i++)
            if (TupleDescAttr(desc, i)->attisdropped)
                dropped.push_back(i);
        s.snapshot = RegisterSnapshot(GetLatestSnapshot());
        // From the first block, never a synchronized scan: the archive is met in
        // physical order.
        s.scan = table_beginscan_strat(rel, s.snapshot, 0, nullptr, true, false);
        s.old_slot = table_slot_create(rel, nullptr);
        for (int i = 0; i < kInsertRows; i++)
            s.slots[i] = table_slot_create(s.new_rel, nullptr);
        s.bistate = GetBulkInsertState();
        s.cid = GetCurrentCommandId(true);
        s.per_batch = AllocSetContextCreate(CurrentMemoryContext, "phasemig rewrite batch", ALLOCSET_DEFAULT_SIZES);
        return s;
    });
    // Inside the guard: the pending rows go in with one multi-row insert.
    auto flush = [&st] {
        if (st.pending == 0)
            return;
        table_multi_insert(st.new_rel, st.slots, st.pending, st.cid, TABLE_INSERT_SKIP_FSM, st.bistate);
        for (int i = 0; i < st.pending; i++)
            ExecClearTuple(st.slots[i]);
        st.pending = 0;
        MemoryContextReset(st.per_batch);
    };

    std::uint64_t copied = 0;
    for (bool more = true; more;) {
        more = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            MemoryContext caller = MemoryContextSwitchTo(st.per_batch);
            std::size_t n = 0;
            bool got = true;
            while (n < kBatchRows && (got = table_scan_getnextslot(st.scan, ForwardScanDirection, st.old_slot))) {
                slot_getallattrs(st.old_slot);
                TupleTableSlot* out = st.slots[st.pending];
                ExecClearTuple(out);
                memcpy(out->tts_values, st.old_slot->tts_values, sizeof(Datum) * st.natts);
                memcpy(out->tts_isnull, st.old_slot->tts_isnull, sizeof(bool) * st.natts);
                for (int d : dropped)
                    out->tts_isnull[d] = true;
                fill(out->tts_values, out->tts_isnull, &st.old_slot->tts_tid);
                ExecStoreVirtualTuple(out);
                // Off the old page, which the scan may leave before the insert.
                ExecMaterializeSlot(out);
                n++;
                if (++st.pending == kInsertRows)
                    flush();
            }
            MemoryContextSwitchTo(caller);
            copied += n;
            return got;
        });
        if (on_progress)
            on_progress(copied);
    }

    guarded([&] {
        MemoryContext caller = MemoryContextSwitchTo(st.per_batch);
        flush();
        MemoryContextSwitchTo(caller);
        table_endscan(st.scan);
        UnregisterSnapshot(st.snapshot);
        ExecDropSingleTupleTableSlot(st.old_slot);
        for (int i = 0; i < kInsertRows; i++)
            ExecDropSingleTupleTableSlot(st.slots[i]);
        FreeBulkInsertState(st.bistate);
        table_finish_bulk_insert(st.new_rel, TABLE_INSERT_SKIP_FSM);
        MemoryContextDelete(st.per_batch);
        table_close(st.new_rel, NoLock);
        table_close(st.old_rel, NoLock);
        // As ALTER TABLE: every tuple was written by this transaction, so
        // RecentXmin is a safe relfrozenxid; the indexes are rebuilt.
        finish_heap_swap(relid, st.new_heap, false, false, true, true, RecentXmin, ReadNextMultiXactId(),
                         st.persistence);
        InvokeObjectPostAlterHook(RelationRelationId, relid, 0);
    });
}

}  // namespace phasemig::pg
