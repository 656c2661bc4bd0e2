#include "pg/scan.hpp"

#include "pg/guard.hpp"

namespace phasemig::pg {

namespace {
// Large enough to amortize the guard, small enough to answer a cancel fast.
constexpr std::size_t kBatchRows = 8192;
}  // namespace

void scan_table(Oid relid, const std::vector<AttrNumber>& attrs, const RowFn& row,
                const std::function<void(std::uint64_t)>& on_progress)
{
    scan_table_pos(
        relid, attrs, [&](const Datum* v, const bool* n, std::uint64_t) { row(v, n); }, on_progress);
}

void scan_table_pos(Oid relid, const std::vector<AttrNumber>& attrs, const RowPosFn& row,
                    const std::function<void(std::uint64_t)>& on_progress)
{
    struct ScanState {
        Relation rel;
        TableScanDesc scan;
        TupleTableSlot* slot;
        MemoryContext per_batch;
        Datum* values;
        bool* nulls;
    };
    const int natts = static_cast<int>(attrs.size());
    ScanState st = guarded([&] {
        ScanState s{};
        s.rel = table_open(relid, AccessShareLock);
        s.scan = table_beginscan_strat(s.rel, GetActiveSnapshot(), 0, nullptr, true, false);
        s.slot = table_slot_create(s.rel, nullptr);
        s.per_batch = AllocSetContextCreate(CurrentMemoryContext, "phasemig scan batch", ALLOCSET_DEFAULT_SIZES);
        s.values = static_cast<Datum*>(palloc0(sizeof(Datum) * (natts + 1)));
        s.nulls = static_cast<bool*>(palloc0(sizeof(bool) * (natts + 1)));
        return s;
    });
    std::uint64_t seen = 0;
    for (;;) {
        bool more = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            MemoryContext old = MemoryContextSwitchTo(st.per_batch);
            bool got = false;
            for (std::uint64_t n = 0; n < kBatchRows; n++) {
                got = table_scan_getnextslot(st.scan, ForwardScanDirection, st.slot);
                if (!got)
                    break;
                for (int i = 0; i < natts; i++)
                    st.values[i] = slot_getattr(st.slot, attrs[i], &st.nulls[i]);
                row(st.values, st.nulls, tid_position(&st.slot->tts_tid));
                seen++;
            }
            MemoryContextSwitchTo(old);
            MemoryContextReset(st.per_batch);
            return got;
        });
        if (on_progress)
            on_progress(seen);
        if (!more)
            break;
    }
    guarded([&] {
        ExecDropSingleTupleTableSlot(st.slot);
        table_endscan(st.scan);
        table_close(st.rel, AccessShareLock);
        MemoryContextDelete(st.per_batch);
    });
}

void scan_batches(Oid relid, const std::vector<ScanColumn>& cols, const BatchFn& on_batch,
                  const std::function<void(std::uint64_t)>& on_progress)
{
    const std::size_t ncols = cols.size();
    RowBatch batch;
    batch.keys.assign(ncols, std::vector<core::Key>(kBatchRows));
    batch.days.assign(ncols, std::vector<core::Day>(kBatchRows));
    batch.nulls.assign(ncols, std::vector<char>(kBatchRows));
    batch.pos.assign(kBatchRows, 0);
    struct ScanState {
        Relation rel;
        TableScanDesc scan;
        TupleTableSlot* slot;
        MemoryContext per_batch;
    };
    ScanState st = guarded([&] {
        ScanState s{};
        s.rel = table_open(relid, AccessShareLock);
        s.scan = table_beginscan_strat(s.rel, GetActiveSnapshot(), 0, nullptr, true, false);
        s.slot = table_slot_create(s.rel, nullptr);
        s.per_batch = AllocSetContextCreate(CurrentMemoryContext, "phasemig scan batch", ALLOCSET_DEFAULT_SIZES);
        return s;
    });
    std::uint64_t seen = 0;
    for (;;) {
        bool more = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            // Whatever PostgreSQL allocates for this batch (detoasting, the
            // archive's inserts) is freed with it: memory stays flat.
            MemoryContext old = MemoryContextSwitchTo(st.per_batch);
            std::size_t n = 0;
            bool got = true;
            // Values are decoded while their tuple is pinned: by-reference
            // Datums (uuid) do not outlive the slot.
            while (n < kBatchRows) {
                got = table_scan_getnextslot(st.scan, ForwardScanDirection, st.slot);
                if (!got)
                    break;
                for (std::size_t c = 0; c < ncols; c++) {
                    bool isnull;
                    const Datum d = slot_getattr(st.slot, cols[c].attnum, &isnull);
                    batch.nulls[c][n] = isnull;
                    if (isnull)
                        continue;
                    if (cols[c].is_date)
                        batch.days[c][n] = DatumGetDateADT(d);
                    else
                        batch.keys[c][n] = datum_to_key(d, cols[c].key_type);
                }
                batch.pos[n] = tid_position(&st.slot->tts_tid);
                n++;
            }
            batch.n = n;
            if (n)
                on_batch(batch);
            seen += n;
            MemoryContextSwitchTo(old);
            MemoryContextReset(st.per_batch);
            return got;
        });
        if (on_progress)
            on_progress(seen);
        if (!more)
            break;
    }
    guarded([&] {
        ExecDropSingleTupleTableSlot(st.slot);
        table_endscan(st.scan);
        table_close(st.rel, AccessShareLock);
        MemoryContextDelete(st.per_batch);
    });
}

std::uint64_t estimated_rows(Oid relid)
{
    return guarded([&] {
        HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
        double n = 0;
        if (HeapTupleIsValid(tup)) {
            n = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->reltuples;
            ReleaseSysCache(tup);
        }
        return n > 0 ? static_cast<std::uint64_t>(n) : std::uint64_t{0};
    });
}

}  // namespace phasemig::pg
