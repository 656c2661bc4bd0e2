#include "pg/scan.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "core/prefetch.hpp"
#include "pg/context.hpp"
#include "pg/guard.hpp"

namespace phasemig::pg {

namespace {
// Large enough to amortize the guard, small enough to answer a cancel fast.
constexpr std::size_t kBatchRows = 8192;
template <typename T>
T load(const unsigned char* p) noexcept
{
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// How many tuples ahead a page's tuples are prefetched.
constexpr int kTupleAhead = 4;
}  // namespace

namespace {

// The requested attributes of a heap tuple, read straight from its page.
// Where the tuple has no NULLs and every attribute up to the last one asked
// for has a fixed width (ids, dates: the hot scans), each value sits at an
// offset known once per scan; otherwise the tuple is walked as
// heap_deform_tuple does, but only as far as needed.
class TupleReader {
public:
    TupleReader(TupleDesc desc, const std::vector<AttrNumber>& attrs) : desc_(desc), attrs_(attrs)
    {
        for (AttrNumber a : attrs)
            last_ = std::max(last_, static_cast<int>(a));
        scratch_.resize(last_);
        scratch_null_.resize(last_);
        std::uint32_t off = 0;
        std::vector<int> at(last_, -1);
        for (int a = 0; a < last_; a++) {
            const Form_pg_attribute att = TupleDescAttr(desc, a);
            if (att->attlen <= 0)
                break;
            off = att_align_nominal(off, att->attalign);
            at[a] = static_cast<int>(off);
            off += att->attlen;
        }
        for (AttrNumber a : attrs)
            fixed_.push_back(at[a - 1]);
        all_fixed_ = std::find(fixed_.begin(), fixed_.end(), -1) == fixed_.end();
    }

    // Every requested attribute is a user column of this descriptor.
    static bool fits(TupleDesc desc, const std::vector<AttrNumber>& attrs)
    {
        for (AttrNumber a : attrs)
            if (a <= 0 || a > desc->natts)
                return false;
        return !attrs.empty();
    }

    // Every requested attribute at a fixed offset when the tuple has no
    // NULLs and all its attributes (then offset(i) holds).
    bool all_fixed() const noexcept { return all_fixed_; }
    int offset(std::size_t i) const noexcept { return fixed_[i]; }
    bool fixed_layout(HeapTupleHeader tup) const noexcept
    {
        return !(tup->t_infomask & HEAP_HASNULL) && HeapTupleHeaderGetNatts(tup) >= last_;
    }
    Form_pg_attribute attr(std::size_t i) const noexcept { return TupleDescAttr(desc_, attrs_[i] - 1); }

    void read(HeapTupleHeader tup, Datum* values, bool* nulls)
    {
        const char* tp = reinterpret_cast<const char*>(tup) + tup->t_hoff;
        const bool hasnulls = (tup->t_infomask & HEAP_HASNULL) != 0;
        const int natts = HeapTupleHeaderGetNatts(tup);
        if (all_fixed_ && fixed_layout(tup)) {
            for (std::size_t i = 0; i < attrs_.size(); i++) {
                values[i] = fetchatt(TupleDescAttr(desc_, attrs_[i] - 1), tp + fixed_[i]);
                nulls[i] = false;
            }
            return;
        }
        const bits8* bp = tup->t_bits;
        const int limit = std::min(natts, last_);
        std::uint32_t off = 0;
        for (int a = 0; a < limit; a++) {
            const Form_pg_attribute att = TupleDescAttr(desc_, a);
            if (hasnulls && att_isnull(a, bp)) {
                scratch_[a] = (Datum) 0;
                scratch_null_[a] = true;
                continue;
            }
            off = att->attlen == -1 ? att_align_pointer(off, att->attalign, -1, tp + off)
                                    : att_align_nominal(off, att->attalign);
            scratch_[a] = fetchatt(att, tp + off);
            scratch_null_[a] = false;
            off = att_addlength_pointer(off, att->attlen, tp + off);
        }
        // Attributes added after the tuple was written: their stored default.
        for (int a = limit; a < last_; a++) {
            bool isnull;
            scratch_[a] = getmissingattr(desc_, a + 1, &isnull);
            scratch_null_[a] = isnull;
        }
        for (std::size_t i = 0; i < attrs_.size(); i++) {
            values[i] = scratch_[attrs_[i] - 1];
            nulls[i] = scratch_null_[attrs_[i] - 1];
        }
    }

private:
    TupleDesc desc_;
    std::vector<AttrNumber> attrs_;
    int last_ = 0;
    std::vector<int> fixed_;  // per requested attribute, its offset in a tuple without NULLs, or -1
    bool all_fixed_ = false;
    std::vector<Datum> scratch_;
    std::vector<char> scratch_null_;
};

// A heap relation's main fork read straight from its files, a run of blocks
// per read(), into memory of our own.  Only for a relation this backend
// holds in ACCESS EXCLUSIVE mode (the steps hold their target tables so),
// after its dirty buffers are written out: nobody can change it meanwhile,
// so the files hold what shared buffers would.  A sequential scan reads
// through a small ring of shared buffers a block per read(); this reads
// 256 kB at a time into one reused buffer, and skips the buffer mapping,
// pins and locks.  A page that does not verify, or whose tuples are not all
// visible, is read through shared buffers instead (ScanState::next_raw).
class DirectPages {
public:
    // phasemig.direct_reads = auto: only for a relation a sequential scan
    // would read through a ring of buffers (larger than a quarter of shared
    // buffers, initscan's rule); a smaller one stays in shared buffers for
    // what comes after the step (a verify reads the assignments again).
    static bool usable(Relation rel, BlockNumber nblocks)
    {
        if (setting_direct_reads == kDirectReadsOff ||
            (setting_direct_reads == kDirectReadsAuto &&
             static_cast<std::uint64_t>(nblocks) <= static_cast<std::uint64_t>(NBuffers / 4)))
            return false;
        return RelationIsPermanent(rel) && !RelationUsesLocalBuffers(rel) &&
               CheckRelationLockedByMe(rel, AccessExclusiveLock, false);
    }

    // The path of the relation's first segment, once its dirty buffers are
    // written out.  Inside a guard.
    static char* prepare(Relation rel)
    {
        FlushRelationBuffers(rel);
        return relpathbackend(rel->rd_node, rel->rd_backend, MAIN_FORKNUM);
    }

    DirectPages(const char* path, BlockNumber nblocks)
        : nblocks_(nblocks), path_(path), buf_(static_cast<char*>(::operator new(kRun * BLCKSZ, std::align_val_t(4096))))
    {
    }
    DirectPages(const DirectPages&) = delete;
    DirectPages& operator=(const DirectPages&) = delete;
    ~DirectPages() = default;  // the file: close(), or the end of the transaction

    // The page of `block` as the files hold it, nullptr when it does not
    // verify.  Inside a guard.
    const char* page(BlockNumber block)
    {
        if (block < first_ || block >= first_ + count_)
            read_run(block);
        char* page = buf_.get() + static_cast<std::size_t>(block - first_) * BLCKSZ;
        // Quietly: the read through shared buffers reports what is wrong.
        return PageIsVerifiedExtended(page, block, 0) ? page : nullptr;
    }

    // Inside a guard.
    void close()
    {
        if (fd_ >= 0)
            CloseTransientFile(fd_);
        fd_ = -1;
    }

private:
    static constexpr BlockNumber kRun = 32;

    void read_run(BlockNumber block)
    {
        const BlockNumber segment = block / RELSEG_SIZE;
        if (segment != segment_) {
            close();
            // No C++ local lives across the calls below, which may raise.
            file_ = segment == 0 ? path_ : path_ + "." + std::to_string(segment);
            fd_ = OpenTransientFile(file_.c_str(), O_RDONLY | PG_BINARY);
            if (fd_ < 0)
                ereport(ERROR, (errcode_for_file_access(), errmsg("could not open file \"%s\": %m", file_.c_str())));
            segment_ = segment;
        }
        const BlockNumber in_segment = RELSEG_SIZE - block % RELSEG_SIZE;
        const BlockNumber n = std::min({kRun, nblocks_ - block, in_segment});
        const std::size_t want = static_cast<std::size_t>(n) * BLCKSZ;
        const off_t at = static_cast<off_t>(block % RELSEG_SIZE) * BLCKSZ;
        std::size_t got = 0;
        while (got < want) {
            const ssize_t r = pg_pread(fd_, buf_.get() + got, want - got, at + static_cast<off_t>(got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                ereport(ERROR, (errcode_for_file_access(), errmsg("could not read file \"%s\": %m", file_.c_str())));
            if (r == 0)
                ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                                errmsg("could not read blocks %u to %u of file \"%s\"", block, block + n - 1,
                                       file_.c_str()),
                                errdetail("The file ends %zu bytes into them.", got)));
            got += static_cast<std::size_t>(r);
        }
        first_ = block;
        count_ = n;
    }

    struct FreeAligned {
        void operator()(char* p) const noexcept { ::operator delete(p, std::align_val_t(4096)); }
    };
    BlockNumber nblocks_;
    std::string path_;
    std::string file_;
    std::unique_ptr<char, FreeAligned> buf_;
    int fd_ = -1;
    BlockNumber segment_ = InvalidBlockNumber;
    BlockNumber first_ = 0;
    BlockNumber count_ = 0;
};

// The rows of one scan, with the requested attributes.  A heap table is read
// a page at a time as a sequential scan reads it (heapgetpage: the page
// pruned, its visible tuples listed under the snapshot, the buffer pinned
// while they are read) and its tuples are read in place by a TupleReader:
// no slot store, pin and per-attribute call per row, so the scan costs what
// count(*) costs.  Other table access methods go through a slot.
struct ScanState {
    Relation rel = nullptr;
    TableScanDesc scan = nullptr;
    TupleTableSlot* slot = nullptr;
    TupleReader* reader = nullptr;  // heap page mode; allocated outside PostgreSQL memory
    DirectPages* direct = nullptr;  // heap page mode, the relation held exclusively
    BlockNumber next_block = 0;
    int next_tuple = 0;
    int page_tuples = 0;  // visible tuples on the current page (rs_ntuples is unset before the first)
    const char* page = nullptr;  // the current page
    BlockNumber block = 0;       // its number
    const OffsetNumber* visible = nullptr;  // its visible tuples
    OffsetNumber direct_visible[MaxHeapTuplesPerPage];
    MemoryContext per_batch = nullptr;

    // Inside a guard.
    bool next(const std::vector<AttrNumber>& attrs, Datum* values, bool* nulls, ItemPointerData* tid)
    {
        if (!reader) {
            if (!table_scan_getnextslot(scan, ForwardScanDirection, slot))
                return false;
            for (std::size_t i = 0; i < attrs.size(); i++)
                values[i] = slot_getattr(slot, attrs[i], &nulls[i]);
            *tid = slot->tts_tid;
            return true;
        }
        HeapTupleHeader tup;
        if (!next_raw(tup, tid))
            return false;
        reader->read(tup, values, nulls);
        return true;
    }

    // Heap page mode: the next visible tuple, in place on its pinned page.
    bool next_raw(HeapTupleHeader& tup, ItemPointerData* tid)
    {
        auto* hs = reinterpret_cast<HeapScanDesc>(scan);
        while (next_tuple >= page_tuples) {
            if (next_block >= hs->rs_nblocks)
                return false;
            block = next_block++;
            next_tuple = 0;
            if (direct && direct_page(block))
                continue;
            heapgetpage(scan, block);
            page = BufferGetPage(hs->rs_cbuf);
            visible = hs->rs_vistuples;
            page_tuples = hs->rs_ntuples;
        }
        // A page whose tuples are all visible was not read by heapgetpage:
        // each tuple's first touch is here, a few tuples ahead (they lie at
        // falling addresses, which the hardware follows poorly).
        const Page p = const_cast<Page>(page);
        if (next_tuple + kTupleAhead < page_tuples) {
            const char* ahead =
                reinterpret_cast<const char*>(PageGetItem(p, PageGetItemId(p, visible[next_tuple + kTupleAhead])));
            core::prefetch_read(ahead);
            core::prefetch_read(ahead + 64);
        }
        const OffsetNumber off = visible[next_tuple++];
        tup = reinterpret_cast<HeapTupleHeader>(PageGetItem(p, PageGetItemId(p, off)));
        ItemPointerSet(tid, block, off);
        pgstat_count_heap_getnext(scan->rs_rd);
        return true;
    }

    // The block read straight from the files when it verifies and all its
    // tuples are visible (to every snapshot, so to ours: what heapgetpage
    // decides from the same flag); false to read it through shared buffers.
    bool direct_page(BlockNumber b)
    {
        const char* dp = direct->page(b);
        if (!dp)
            return false;
        const Page p = const_cast<Page>(dp);
        if (PageIsNew(p)) {
            page_tuples = 0;
            return true;
        }
        if (!PageIsAllVisible(p) || scan->rs_snapshot->takenDuringRecovery)
            return false;
        int n = 0;
        const OffsetNumber last = PageGetMaxOffsetNumber(p);
        for (OffsetNumber off = FirstOffsetNumber; off <= last; off++)
            if (ItemIdIsNormal(PageGetItemId(p, off)))
                direct_visible[n++] = off;
        page = dp;
        visible = direct_visible;
        page_tuples = n;
        return true;
    }
};

// Opens the relation and calls `batch` until it returns false, each call
// under one guard (interrupts checked), in a memory context reset after it.
// `batch` reads at most kBatchRows rows and adds them to `seen`.
void drive_scan(Oid relid, const std::vector<AttrNumber>& attrs,
                const std::function<bool(ScanState&, std::uint64_t&)>& batch,
                const std::function<void(std::uint64_t)>& on_progress, Read read = Read::Buffered)
{
    ScanState st = guarded([&] {
        ScanState s{};
        s.rel = table_open(relid, AccessShareLock);
        // From the first block, never a synchronized scan joining midway.
        s.scan = table_beginscan_strat(s.rel, GetActiveSnapshot(), 0, nullptr, true, false);
        s.slot = table_slot_create(s.rel, nullptr);
        s.per_batch = AllocSetContextCreate(CurrentMemoryContext, "phasemig scan batch", ALLOCSET_DEFAULT_SIZES);
        return s;
    });
    std::unique_ptr<TupleReader> reader;
    std::unique_ptr<DirectPages> direct;
    if (st.rel->rd_tableam == GetHeapamTableAmRoutine() && (st.scan->rs_flags & SO_ALLOW_PAGEMODE) &&
        TupleReader::fits(RelationGetDescr(st.rel), attrs)) {
        reader = std::make_unique<TupleReader>(RelationGetDescr(st.rel), attrs);
        st.reader = reader.get();
        const BlockNumber nblocks = reinterpret_cast<HeapScanDesc>(st.scan)->rs_nblocks;
        if (read == Read::Once && DirectPages::usable(st.rel, nblocks)) {
            char* path = guarded([&] { return DirectPages::prepare(st.rel); });
            direct = std::make_unique<DirectPages>(path, nblocks);
            guarded([&] { pfree(path); });
            st.direct = direct.get();
        }
    }
    std::uint64_t seen = 0;
    for (;;) {
        const bool more = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            // Whatever PostgreSQL allocates for this batch (detoasting, the
            // archives' inserts) is freed with it: memory stays flat.
            MemoryContext old = MemoryContextSwitchTo(st.per_batch);
            const bool got = batch(st, seen);
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
        if (st.direct)
            st.direct->close();
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
    std::unique_ptr<bool[]> nulls(new bool[attrs.size() + 1]());
    drive_scan(
        relid, attrs,
        [&](ScanState& st, std::uint64_t& seen) {
            ItemPointerData tid;
            for (std::size_t n = 0; n < kBatchRows; n++) {
                if (!st.next(attrs, values.data(), nulls.get(), &tid))
                    return false;
                row(values.data(), nulls.get());
                seen++;
            }
            return true;
        },
        on_progress);
}

void scan_batches(Oid relid, const std::vector<ScanColumn>& cols, const BatchFn& on_batch,
                  const std::function<void(std::uint64_t)>& on_progress, Read read)
{
    const std::size_t ncols = cols.size();
    RowBatch batch;
    batch.keys.assign(ncols, std::vector<core::Key>(kBatchRows));
    batch.days.assign(ncols, std::vector<core::Day>(kBatchRows));
    batch.nulls.assign(ncols, std::vector<char>(kBatchRows));
    batch.pos.assign(kBatchRows, 0);
    std::vector<AttrNumber> attrs;
    for (const auto& c : cols)
        attrs.push_back(c.attnum);
    std::vector<Datum> values(ncols);
    std::unique_ptr<bool[]> nulls(new bool[ncols]());
    // Where every column sits at a fixed offset (ids, dates: the hot scans),
    // a tuple without NULLs is decoded from its bytes straight into the
    // batch, with no Datum in between.
    enum class Raw { Uuid, Int2, Int4, Int8, Date };
    std::vector<Raw> raw;
    std::vector<int> raw_offset;
    bool raw_planned = false;
    auto plan_raw = [&](const TupleReader& r) {
        for (std::size_t c = 0; c < ncols; c++) {
            const Form_pg_attribute att = r.attr(c);
            Raw k;
            if (cols[c].is_date)
                k = Raw::Date;
            else if (cols[c].key_type == KeyType::Uuid)
                k = Raw::Uuid;
            else if (cols[c].key_type == KeyType::Int2)
                k = Raw::Int2;
            else if (cols[c].key_type == KeyType::Int4)
                k = Raw::Int4;
            else if (cols[c].key_type == KeyType::Int8)
                k = Raw::Int8;
            else
                return false;
            const int len = k == Raw::Uuid ? 16 : k == Raw::Int2 ? 2 : k == Raw::Int8 ? 8 : 4;
            if (att->attlen != len || att->attbyval != (k != Raw::Uuid))
                return false;
            raw.push_back(k);
            raw_offset.push_back(r.offset(c));
        }
        return true;
    };
    drive_scan(
        relid, attrs,
        [&](ScanState& st, std::uint64_t& seen) {
            std::size_t n = 0;
            bool got = true;
            ItemPointerData tid;
            if (!raw_planned) {
                raw_planned = true;
                if (!(st.reader && st.reader->all_fixed() && plan_raw(*st.reader)))
                    raw.clear();
            }
            const bool raw_ok = !raw.empty();
            // Values are decoded while their tuple is pinned: by-reference
            // Datums (uuid) do not outlive the page or the slot.
            while (n < kBatchRows) {
                if (raw_ok) {
                    HeapTupleHeader tup;
                    got = st.next_raw(tup, &tid);
                    if (!got)
                        break;
                    if (st.reader->fixed_layout(tup)) {
                        const unsigned char* tp = reinterpret_cast<const unsigned char*>(tup) + tup->t_hoff;
                        for (std::size_t c = 0; c < ncols; c++) {
                            const unsigned char* at = tp + raw_offset[c];
                            batch.nulls[c][n] = 0;
                            switch (raw[c]) {
                            case Raw::Uuid: batch.keys[c][n] = core::Key::from_uuid(at); break;
                            case Raw::Int2: batch.keys[c][n] = core::Key::from_int(load<std::int16_t>(at)); break;
                            case Raw::Int4: batch.keys[c][n] = core::Key::from_int(load<std::int32_t>(at)); break;
                            case Raw::Int8: batch.keys[c][n] = core::Key::from_int(load<std::int64_t>(at)); break;
                            case Raw::Date: batch.days[c][n] = load<DateADT>(at); break;
                            }
                        }
                        batch.pos[n] = tid_position(&tid);
                        n++;
                        continue;
                    }
                    st.reader->read(tup, values.data(), nulls.get());
                } else {
                    got = st.next(attrs, values.data(), nulls.get(), &tid);
                    if (!got)
                        break;
                }
                for (std::size_t c = 0; c < ncols; c++) {
                    batch.nulls[c][n] = nulls[c];
                    if (nulls[c])
                        continue;
                    if (cols[c].is_date)
                        batch.days[c][n] = DatumGetDateADT(values[c]);
                    else
                        batch.keys[c][n] = datum_to_key(values[c], cols[c].key_type);
                }
                batch.pos[n] = tid_position(&tid);
                n++;
            }
            batch.n = n;
            if (n)
                on_batch(batch);
            seen += n;
            return got;
        },
        on_progress, read);
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
