#include "pg/scan.hpp"

#include "pg/guard.hpp"

namespace phasemig::pg {

namespace {
// Large enough to amortize the guard, small enough to answer a cancel fast.
constexpr std::size_t kBatchRows = 8192;
}  // namespace

namespace {

// Opens the relation and calls `batch` until it returns false, each call
// under one guard (interrupts checked), in a memory context reset after it.
// `batch` reads at most kBatchRows tuples and adds them to `seen`.
void drive_scan(Oid relid, const std::function<bool(TableScanDesc, TupleTableSlot*, std::uint64_t&)>& batch,
                const std::function<void(std::uint64_t)>& on_progress)
{
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
        const bool more = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            // Whatever PostgreSQL allocates for this batch (detoasting, the
            // archives' inserts) is freed with it: memory stays flat.
            MemoryContext old = MemoryContextSwitchTo(st.per_batch);
            const bool got = batch(st.scan, st.slot, seen);
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

}  // namespace

void scan_table(Oid relid, const std::vector<AttrNumber>& attrs, const RowFn& row,
                const std::function<void(std::uint64_t)>& on_progress)
{
    std::vector<Datum> values(attrs.size() + 1);
    std::vector<char> nulls(attrs.size() + 1);
    drive_scan(
        relid,
        [&](TableScanDesc scan, TupleTableSlot* slot, std::uint64_t& seen) {
            for (std::size_t n = 0; n < kBatchRows; n++) {
                if (!table_scan_getnextslot(scan, ForwardScanDirection, slot))
                    return false;
                for (std::size_t i = 0; i < attrs.size(); i++) {
                    bool isnull;
                    values[i] = slot_getattr(slot, attrs[i], &isnull);
                    nulls[i] = isnull;
                }
                row(values.data(), reinterpret_cast<const bool*>(nulls.data()));
                seen++;
            }
            return true;
        },
        on_progress);
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
    drive_scan(
        relid,
        [&](TableScanDesc scan, TupleTableSlot* slot, std::uint64_t& seen) {
            std::size_t n = 0;
            bool got = true;
            // Values are decoded while their tuple is pinned: by-reference
            // Datums (uuid) do not outlive the slot.
            while (n < kBatchRows) {
                got = table_scan_getnextslot(scan, ForwardScanDirection, slot);
                if (!got)
                    break;
                for (std::size_t c = 0; c < ncols; c++) {
                    bool isnull;
                    const Datum d = slot_getattr(slot, cols[c].attnum, &isnull);
                    batch.nulls[c][n] = isnull;
                    if (isnull)
                        continue;
                    if (cols[c].is_date)
                        batch.days[c][n] = DatumGetDateADT(d);
                    else
                        batch.keys[c][n] = datum_to_key(d, cols[c].key_type);
                }
                batch.pos[n] = tid_position(&slot->tts_tid);
                n++;
            }
            batch.n = n;
            if (n)
                on_batch(batch);
            seen += n;
            return got;
        },
        on_progress);
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
