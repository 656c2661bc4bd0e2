#include "pg/archive_io.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "pg/context.hpp"
#include "pg/guard.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

namespace {

const char* const kAssignmentHint =
    "phasemig_purge_archive() removes the archive; the downgrade then matches every assignment by date.";
const char* const kPhaseHint =
    "phasemig_purge_archive() removes the archive; the next step then recomputes what it held.";

// Column order of the chunk tables (checked when opened); the phase archive
// has no positions.
enum Col { kRun, kChunk, kEntries, kFirst, kLast, kData, kCols };
const char* const kColNames[kCols] = {"run_id", "chunk_no", "entries", "first_position", "last_position", "data"};

// Opens one of phasemig's chunk tables; `positions` tells whether it has
// first_position and last_position.
Relation open_chunk_table(const char* table, LOCKMODE mode, bool& positions)
{
    const std::string schema = extension().schema;
    return guarded([&] {
        Oid nsp = get_namespace_oid(schema.c_str(), false);
        Oid relid = get_relname_relid(table, nsp);
        if (!OidIsValid(relid))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("phasemig's table %s is missing", table),
                            errhint("Reinstall the extension.")));
        Relation rel = table_open(relid, mode);
        TupleDesc desc = RelationGetDescr(rel);
        positions = desc->natts == kCols;
        bool ok = desc->natts == kCols || desc->natts == kCols - 2;
        for (int i = 0, c = 0; ok && i < desc->natts; i++, c++) {
            if (!positions && c == kFirst)
                c = kData;
            ok = strcmp(NameStr(TupleDescAttr(desc, i)->attname), kColNames[c]) == 0;
        }
        if (!ok)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("%s does not have the columns this version expects", table),
                            errhint("ALTER EXTENSION phasemig UPDATE; brings the table up to date.")));
        return rel;
    });
}

// Whether pages may be written straight to the table's storage: it is new in
// this transaction (so no other transaction can see it, and it goes away on
// rollback), this backend holds it exclusively, nothing is in it yet, and
// logical decoding, which needs row-level WAL, is off.
bool direct_writes_allowed(Relation rel)
{
    const bool new_storage =
        rel->rd_createSubid != InvalidSubTransactionId || rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId;
    return new_storage && RelationIsPermanent(rel) && !XLogLogicalInfoActive() &&
           CheckRelationLockedByMe(rel, AccessExclusiveLock, false) && RelationGetNumberOfBlocks(rel) == 0;
}

}  // namespace

ChunkTableWriter::ChunkTableWriter(const char* table, std::int64_t run_id) : run_id_(run_id)
{
    rel_ = open_chunk_table(table, RowExclusiveLock, positions_);
    guarded([&] {
        // add() may run in a scan's per-row context: what lives as long as
        // the writer is allocated here.
        cxt_ = CurrentMemoryContext;
        batch_cxt_ = AllocSetContextCreate(cxt_, "phasemig archive batch", ALLOCSET_DEFAULT_SIZES);
        direct_ = direct_writes_allowed(rel_);
        if (direct_) {
            page_ = static_cast<char*>(palloc(BLCKSZ));
            PageInit(page_, BLCKSZ, 0);
            xid_ = GetCurrentTransactionId();
        } else {
            bistate_ = GetBulkInsertState();
        }
        for (int i = 0; i < kBatch; i++)
            slots_[i] = MakeSingleTupleTableSlot(RelationGetDescr(rel_), &TTSOpsVirtual);
    });
}

ChunkTableWriter::~ChunkTableWriter() = default;  // PostgreSQL resources end with the transaction

void ChunkTableWriter::add(const unsigned char* bytes, std::size_t len, std::uint32_t entries, std::uint64_t first_pos,
                           std::uint64_t last_pos)
{
    TupleTableSlot* slot = slots_[n_];
    ExecClearTuple(slot);
    bytea* data = static_cast<bytea*>(MemoryContextAlloc(batch_cxt_, VARHDRSZ + len));
    SET_VARSIZE(data, VARHDRSZ + len);
    memcpy(VARDATA(data), bytes, len);
    Datum* v = slot->tts_values;
    bool* nl = slot->tts_isnull;
    int c = 0;
    v[c++] = Int64GetDatum(run_id_);
    v[c++] = Int32GetDatum(chunk_no_);
    v[c++] = Int32GetDatum(static_cast<std::int32_t>(entries));
    if (positions_) {
        v[c++] = Int64GetDatum(static_cast<std::int64_t>(first_pos));
        v[c++] = Int64GetDatum(static_cast<std::int64_t>(last_pos));
    }
    v[c++] = PointerGetDatum(data);
    for (int i = 0; i < c; i++)
        nl[i] = false;
    ExecStoreVirtualTuple(slot);
    chunk_no_++;
    if (direct_) {
        HeapTuple tuple = heap_form_tuple(RelationGetDescr(rel_), v, nl);
        // A row TOAST would have to move out of line goes the usual way, and
        // so does every row after it.
        if (HeapTupleHasExternal(tuple) || tuple->t_len > TOAST_TUPLE_THRESHOLD) {
            heap_freetuple(tuple);
            end_direct();
            MemoryContext old = MemoryContextSwitchTo(cxt_);
            bistate_ = GetBulkInsertState();
            MemoryContextSwitchTo(old);
        } else {
            put_direct(tuple);
            ExecClearTuple(slot);
            return;
        }
    }
    if (++n_ == kBatch)
        flush();
}

void ChunkTableWriter::put_direct(HeapTuple tuple)
{
    // The header heap_insert would give it: inserted by this transaction and
    // command, never deleted.
    HeapTupleHeader h = tuple->t_data;
    h->t_infomask &= ~HEAP_XACT_MASK;
    h->t_infomask2 &= ~HEAP2_XACT_MASK;
    h->t_infomask |= HEAP_XMAX_INVALID;
    HeapTupleHeaderSetXmin(h, xid_);
    HeapTupleHeaderSetCmin(h, GetCurrentCommandId(true));
    HeapTupleHeaderSetXmax(h, 0);
    if (PageGetHeapFreeSpace(page_) < MAXALIGN(tuple->t_len)) {
        write_page();
        MemoryContextReset(batch_cxt_);  // the rows' bytes are in the tuples by now
    }
    const OffsetNumber off =
        PageAddItem(page_, reinterpret_cast<Item>(h), tuple->t_len, InvalidOffsetNumber, false, true);
    if (off == InvalidOffsetNumber)
        elog(ERROR, "phasemig could not add a row of %u bytes to an archive page", tuple->t_len);
    auto* on_page = reinterpret_cast<HeapTupleHeader>(PageGetItem(page_, PageGetItemId(page_, off)));
    ItemPointerSet(&on_page->t_ctid, block_, off);
    heap_freetuple(tuple);
}

void ChunkTableWriter::write_page()
{
    if (PageIsEmpty(page_))
        return;
    // WAL first (a full image of the page, as CREATE INDEX logs its pages),
    // unless wal_level = minimal lets the new storage be synced at commit.
    if (RelationNeedsWAL(rel_))
        log_newpage(&rel_->rd_node, MAIN_FORKNUM, block_, page_, true);
    PageSetChecksumInplace(page_, block_);
    smgrextend(RelationGetSmgr(rel_), MAIN_FORKNUM, block_, page_, true);
    block_++;
    PageInit(page_, BLCKSZ, 0);
}

// Writes the last page and syncs what was written, for a checkpoint may have
// passed since its WAL; later rows, if any, go through shared buffers.
void ChunkTableWriter::end_direct()
{
    if (!direct_)
        return;
    write_page();
    if (RelationNeedsWAL(rel_))
        smgrimmedsync(RelationGetSmgr(rel_), MAIN_FORKNUM);
    pfree(page_);
    page_ = nullptr;
    direct_ = false;
}

void ChunkTableWriter::flush()
{
    if (n_ == 0)
        return;
    // Always at the end of the table: the archive keeps the order written.
    // The insert's own allocations go with the batch.
    MemoryContext old = MemoryContextSwitchTo(batch_cxt_);
    table_multi_insert(rel_, slots_, n_, GetCurrentCommandId(true), TABLE_INSERT_SKIP_FSM, bistate_);
    MemoryContextSwitchTo(old);
    for (int i = 0; i < n_; i++)
        ExecClearTuple(slots_[i]);
    MemoryContextReset(batch_cxt_);
    n_ = 0;
}

void ChunkTableWriter::finish()
{
    guarded([&] {
        end_direct();
        flush();
        if (bistate_)
            FreeBulkInsertState(bistate_);
        table_finish_bulk_insert(rel_, TABLE_INSERT_SKIP_FSM);
        for (int i = 0; i < kBatch; i++)
            ExecDropSingleTupleTableSlot(slots_[i]);
        MemoryContextDelete(batch_cxt_);
        table_close(rel_, NoLock);
    });
    rel_ = nullptr;
}

ChunkTableReader::ChunkTableReader(const char* table, const char* what, const char* run, const char* hint,
                                   std::int64_t run_id)
    : what_(what), run_label_(run), hint_(hint), run_id_(run_id)
{
    bool positions = false;
    rel_ = open_chunk_table(table, AccessShareLock, positions);
    data_col_ = positions ? kData : kData - 2;
    guarded([&] {
        // Never a synchronized scan: the chunks are read in the order written.
        scan_ = table_beginscan_strat(rel_, GetActiveSnapshot(), 0, nullptr, true, false);
        slot_ = table_slot_create(rel_, nullptr);
        chunk_cxt_ = AllocSetContextCreate(CurrentMemoryContext, "phasemig archive chunk", ALLOCSET_SMALL_SIZES);
    });
}

ChunkTableReader::~ChunkTableReader() = default;  // close() or the end of the transaction

bool ChunkTableReader::next(const unsigned char*& data, std::size_t& len, std::int64_t& entries,
                            std::int32_t& chunk_no)
{
    if (!scan_)
        return false;
    const AttrNumber data_col = data_col_;
    const bool found = guarded([&] {
        MemoryContextReset(chunk_cxt_);
        while (table_scan_getnextslot(scan_, ForwardScanDirection, slot_)) {
            slot_getallattrs(slot_);
            const Datum* v = slot_->tts_values;
            const bool* nl = slot_->tts_isnull;
            if (nl[kRun] || DatumGetInt64(v[kRun]) != run_id_)
                continue;
            CHECK_FOR_INTERRUPTS();
            if (nl[kChunk] || nl[kEntries] || nl[data_col])
                ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("phasemig's %s is damaged", what_),
                                errdetail("A chunk of %s %lld has a NULL chunk_no, entries or data.", run_label_,
                                          static_cast<long long>(run_id_))));
            chunk_no = DatumGetInt32(v[kChunk]);
            entries = DatumGetInt32(v[kEntries]);
            // Stored inline as written; a restored copy may have been
            // compressed or moved out of line.
            MemoryContext old = MemoryContextSwitchTo(chunk_cxt_);
            struct varlena* b = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(v[data_col])));
            MemoryContextSwitchTo(old);
            data = reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
            len = VARSIZE_ANY_EXHDR(b);
            return true;
        }
        return false;
    });
    if (!found) {
        close();
        // Every chunk number from 0 on, once.
        std::sort(seen_.begin(), seen_.end());
        for (std::size_t i = 0; i < seen_.size(); i++) {
            const auto want = static_cast<std::int32_t>(i);
            if (seen_[i] == want)
                continue;
            const std::string what = i > 0 && seen_[i] == seen_[i - 1]
                                         ? strfmt("Chunk %d of %s %lld appears twice.", seen_[i], run_label_,
                                                  static_cast<long long>(run_id_))
                                         : strfmt("Chunk %d of %s %lld is missing.", want, run_label_,
                                                  static_cast<long long>(run_id_));
            throw Error(ERRCODE_DATA_CORRUPTED, strfmt("phasemig's %s is damaged", what_), what, hint_);
        }
        return false;
    }
    seen_.push_back(chunk_no);
    return true;
}

void ChunkTableReader::close()
{
    if (!scan_)
        return;
    guarded([&] {
        ExecDropSingleTupleTableSlot(slot_);
        table_endscan(scan_);
        table_close(rel_, AccessShareLock);
        MemoryContextDelete(chunk_cxt_);
    });
    scan_ = nullptr;
}

void decode_archive_chunk(const unsigned char* data, std::size_t len, std::int64_t entries, std::int64_t run_id,
                          std::int32_t chunk_no, std::vector<ArchivedAssignment>& out)
{
    const std::size_t before = out.size();
    const bool ok = core::decode_chunk(data, len, out);
    const std::size_t got = out.size() - before;
    auto corrupt = [&](const std::string& what) {
        return Error(ERRCODE_DATA_CORRUPTED, "phasemig's assignment archive is damaged",
                     strfmt("Chunk %d of upgrade run %lld %s.", chunk_no, static_cast<long long>(run_id), what.c_str()),
                     kAssignmentHint);
    };
    if (!ok)
        throw corrupt(strfmt("does not decode (entry %zu)", got + 1));
    if (static_cast<std::int64_t>(got) != entries)
        throw corrupt(strfmt("holds %zu entries, not the %lld recorded", got, static_cast<long long>(entries)));
}

void AssignmentArchiveWriter::end_chunk()
{
    if (enc_.entries() == 0)
        return;
    rows_.add(enc_.data(), enc_.size(), enc_.entries(), enc_.first_pos(), enc_.last_pos());
    written_ += enc_.entries();
    enc_.reset();
}

void AssignmentArchiveWriter::finish()
{
    guarded([&] { end_chunk(); });
    rows_.finish();
}

AssignmentArchiveReader::AssignmentArchiveReader(std::int64_t run_id)
    : chunks_("phasemig_assignment_archive", "assignment archive", "upgrade run", kAssignmentHint, run_id)
{
    entries_.reserve(AssignmentArchiveWriter::kChunkBytes + kAhead + 1);
}

bool AssignmentArchiveReader::load_chunk()
{
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    std::int64_t entries = 0;
    std::int32_t chunk_no = 0;
    if (!chunks_.next(data, len, entries, chunk_no)) {
        done_ = true;
        return false;
    }
    decode_archive_chunk(data, len, entries, chunks_.run_id(), chunk_no, entries_);
    return true;
}

void AssignmentArchiveReader::refill()
{
    // Keep the entries not yet consumed, then append chunks until more than
    // kAhead wait (or the archive ends).
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(at_));
    at_ = 0;
    while (entries_.size() <= kAhead && load_chunk()) {
    }
}

void AssignmentArchiveReader::close()
{
    chunks_.close();
    done_ = true;
}

namespace {
unsigned char key_kinds(KeyType phase, KeyType project)
{
    return static_cast<unsigned char>((phase != KeyType::Uuid ? core::phase_codec::kPhaseIdInteger : 0) |
                                      (project != KeyType::Uuid ? core::phase_codec::kProjectIdInteger : 0));
}
}  // namespace

PhaseArchiveWriter::PhaseArchiveWriter(std::int64_t run_id, KeyType phase, KeyType project)
    : rows_("phasemig_phase_archive", run_id), enc_(key_kinds(phase, project))
{
}

void PhaseArchiveWriter::end_chunk()
{
    if (enc_.entries() == 0)
        return;
    rows_.add(enc_.data(), enc_.size(), enc_.entries(), 0, 0);
    written_ += enc_.entries();
    enc_.reset();
}

void PhaseArchiveWriter::finish()
{
    guarded([&] { end_chunk(); });
    rows_.finish();
}

void decode_phase_chunk(const unsigned char* data, std::size_t len, std::int64_t entries, std::int64_t run_id,
                        std::int32_t chunk_no, const std::function<void(const core::PhaseArchiveEntry&)>& fn)
{
    core::PhaseChunkDecoder dec(data, len);
    core::PhaseArchiveEntry e;
    while (dec.next(e))
        fn(e);
    auto corrupt = [&](const std::string& what) {
        return Error(ERRCODE_DATA_CORRUPTED, "phasemig's phase archive is damaged",
                     strfmt("Chunk %d of run %lld %s.", chunk_no, static_cast<long long>(run_id), what.c_str()),
                     kPhaseHint);
    };
    if (!dec.ok())
        throw corrupt(strfmt("does not decode (entry %u)", dec.count() + 1));
    if (static_cast<std::int64_t>(dec.count()) != entries)
        throw corrupt(strfmt("holds %u entries, not the %lld recorded", dec.count(), static_cast<long long>(entries)));
}

void read_phase_archive(std::int64_t run_id, const std::function<void(const core::PhaseArchiveEntry&)>& fn)
{
    ChunkTableReader chunks("phasemig_phase_archive", "phase archive", "run", kPhaseHint, run_id);
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    std::int64_t entries = 0;
    std::int32_t chunk_no = 0;
    while (chunks.next(data, len, entries, chunk_no))
        decode_phase_chunk(data, len, entries, run_id, chunk_no, fn);
}

}  // namespace phasemig::pg
