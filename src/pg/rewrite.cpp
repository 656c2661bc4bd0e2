#include "pg/rewrite.hpp"

#include <vector>

#include "pg/guard.hpp"

extern "C" {
#include "access/multixact.h"
#include "access/rewriteheap.h"
#include "commands/vacuum.h"
#include "catalog/catalog.h"
#include "catalog/pg_am_d.h"
#include "catalog/objectaccess.h"
#include "commands/cluster.h"
#include "commands/tablecmds.h"
}

namespace phasemig::pg {

namespace {
// Rows per guard (and interrupt check).
constexpr std::size_t kBatchRows = 8192;
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
        RewriteState rewrite;
        Datum* values;  // the new row, before it is formed
        bool* nulls;
        int natts;
        TransactionId freeze_xid;
        MultiXactId cutoff_multi;
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
        // The copy goes through the heap's own rewrite code (as CLUSTER).
        if (rel->rd_rel->relam != HEAP_TABLE_AM_OID)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("table \"%s\" does not use the heap access method", RelationGetRelationName(rel)),
                            errdetail("phasemig rewrites heap tables only.")));
        s.persistence = rel->rd_rel->relpersistence;
        s.new_heap = make_new_heap(relid, rel->rd_rel->reltablespace, rel->rd_rel->relam, s.persistence,
                                   AccessExclusiveLock);
        s.old_rel = rel;
        s.new_rel = table_open(s.new_heap, AccessExclusiveLock);
        TupleDesc desc = RelationGetDescr(rel);
        s.natts = desc->natts;
        s.values = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
        s.nulls = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
        for (int i = 0; i < desc->natts; i++)
            if (TupleDescAttr(desc, i)->attisdropped)
                dropped.push_back(i);
        // As CLUSTER does (copy_table_data): freeze what no transaction can
        // still see as running, never moving relfrozenxid/relminmxid back.
        TransactionId oldest_xmin;
        MultiXactId oldest_mxact;
        vacuum_set_xid_limits(rel, 0, 0, 0, 0, &oldest_xmin, &oldest_mxact, &s.freeze_xid, &s.cutoff_multi);
        if (TransactionIdIsValid(rel->rd_rel->relfrozenxid) &&
            TransactionIdPrecedes(s.freeze_xid, rel->rd_rel->relfrozenxid))
            s.freeze_xid = rel->rd_rel->relfrozenxid;
        if (MultiXactIdIsValid(rel->rd_rel->relminmxid) && MultiXactIdPrecedes(s.cutoff_multi, rel->rd_rel->relminmxid))
            s.cutoff_multi = rel->rd_rel->relminmxid;
        s.rewrite = begin_heap_rewrite(rel, s.new_rel, oldest_xmin, s.freeze_xid, s.cutoff_multi);
        s.snapshot = RegisterSnapshot(GetLatestSnapshot());
        // From the first block, never a synchronized scan: the archive is met
        // in physical order.
        s.scan = table_beginscan_strat(rel, s.snapshot, 0, nullptr, true, false);
        s.old_slot = table_slot_create(rel, nullptr);
        s.per_batch = AllocSetContextCreate(CurrentMemoryContext, "phasemig rewrite batch", ALLOCSET_DEFAULT_SIZES);
        return s;
    });
    std::uint64_t copied = 0;
    for (bool more = true; more;) {
        more = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            MemoryContext caller = MemoryContextSwitchTo(st.per_batch);
            std::size_t n = 0;
            bool got = true;
            while (n < kBatchRows && (got = table_scan_getnextslot(st.scan, ForwardScanDirection, st.old_slot))) {
                slot_getallattrs(st.old_slot);
                memcpy(st.values, st.old_slot->tts_values, sizeof(Datum) * st.natts);
                memcpy(st.nulls, st.old_slot->tts_isnull, sizeof(bool) * st.natts);
                for (int d : dropped)
                    st.nulls[d] = true;
                fill(st.values, st.nulls, &st.old_slot->tts_tid);
                // The new tuple takes the old one's visibility (xmin, xmax),
                // as CLUSTER and VACUUM FULL keep it.
                HeapTuple copy = heap_form_tuple(st.old_slot->tts_tupleDescriptor, st.values, st.nulls);
                HeapTuple old = ExecFetchSlotHeapTuple(st.old_slot, false, nullptr);
                rewrite_heap_tuple(st.rewrite, old, copy);
                heap_freetuple(copy);
                n++;
            }
            MemoryContextReset(st.per_batch);
            MemoryContextSwitchTo(caller);
            copied += n;
            return got;
        });
        if (on_progress)
            on_progress(copied);
    }

    guarded([&] {
        end_heap_rewrite(st.rewrite);
        table_endscan(st.scan);
        UnregisterSnapshot(st.snapshot);
        ExecDropSingleTupleTableSlot(st.old_slot);
        MemoryContextDelete(st.per_batch);
        table_close(st.new_rel, NoLock);
        table_close(st.old_rel, NoLock);
        // The files are swapped and the indexes rebuilt, as after ALTER
        // TABLE's rewrite.
        finish_heap_swap(relid, st.new_heap, false, false, true, true, st.freeze_xid, st.cutoff_multi,
                         st.persistence);
        InvokeObjectPostAlterHook(RelationRelationId, relid, 0);
    });
}

void mark_constraint_validated(Oid relid, Oid conoid)
{
    guarded([&] {
        Relation conrel = table_open(ConstraintRelationId, RowExclusiveLock);
        HeapTuple tup = SearchSysCacheCopy1(CONSTROID, ObjectIdGetDatum(conoid));
        if (!HeapTupleIsValid(tup))
            elog(ERROR, "cache lookup failed for constraint %u", conoid);
        reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tup))->convalidated = true;
        CatalogTupleUpdate(conrel, &tup->t_self, tup);
        InvokeObjectPostAlterHook(ConstraintRelationId, conoid, 0);
        heap_freetuple(tup);
        table_close(conrel, RowExclusiveLock);
        CacheInvalidateRelcacheByRelid(relid);
        CommandCounterIncrement();
    });
}

void mark_not_null(Oid relid, const std::vector<const char*>& columns)
{
    guarded([&] {
        Relation attrel = table_open(AttributeRelationId, RowExclusiveLock);
        for (const char* column : columns) {
            HeapTuple tup = SearchSysCacheCopyAttName(relid, column);
            if (!HeapTupleIsValid(tup))
                elog(ERROR, "cache lookup failed for column \"%s\" of relation %u", column, relid);
            auto* att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup));
            if (!att->attnotnull) {
                att->attnotnull = true;
                CatalogTupleUpdate(attrel, &tup->t_self, tup);
            }
            InvokeObjectPostAlterHook(RelationRelationId, relid, att->attnum);
            heap_freetuple(tup);
        }
        table_close(attrel, RowExclusiveLock);
        CacheInvalidateRelcacheByRelid(relid);
        CommandCounterIncrement();
    });
}

ColumnInput column_input(Oid relid, const char* column)
{
    ColumnInput c;
    guarded([&] {
        c.att = get_attnum(relid, column);
        Oid collation;
        get_atttypetypmodcoll(relid, c.att, &c.type, &c.typmod, &collation);
        getTypeInputInfo(c.type, &c.input, &c.ioparam);
    });
    return c;
}

}  // namespace phasemig::pg
