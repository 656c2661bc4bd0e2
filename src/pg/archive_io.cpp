#include "pg/archive_io.hpp"

#include <cstring>
#include <utility>

#include "pg/context.hpp"
#include "pg/guard.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

namespace {

// Column order of phasemig_assignment_archive (checked when opened).
enum Col { kRun, kChunk, kEntries, kFirst, kLast, kData, kCols };
const char* const kColNames[kCols] = {"run_id", "chunk_no", "entries", "first_position", "last_position", "data"};

Relation open_archive(LOCKMODE mode)
{
    const std::string schema = extension().schema;
    return guarded([&] {
        Oid nsp = get_namespace_oid(schema.c_str(), false);
        Oid relid = get_relname_relid("phasemig_assignment_archive", nsp);
        if (!OidIsValid(relid))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("phasemig's table phasemig_assignment_archive is missing"),
                            errhint("Reinstall the extension.")));
        Relation rel = table_open(relid, mode);
        TupleDesc desc = RelationGetDescr(rel);
        bool ok = desc->natts == kCols;
        for (int i = 0; ok && i < kCols; i++)
            ok = strcmp(NameStr(TupleDescAttr(desc, i)->attname), kColNames[i]) == 0;
        if (!ok)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("phasemig_assignment_archive does not have the columns this version expects"),
                            errhint("ALTER EXTENSION phasemig UPDATE; brings the table up to date.")));
        return rel;
    });
}

Error corrupt_chunk(std::int64_t run_id, std::int32_t chunk_no, const std::string& what)
{
    return Error(ERRCODE_DATA_CORRUPTED, "phasemig's assignment archive is damaged",
                 strfmt("Chunk %d of upgrade run %lld %s.", chunk_no, static_cast<long long>(run_id), what.c_str()),
                 "phasemig_purge_archive() removes the archive; the downgrade then matches every assignment by date.");
}

}  // namespace

void decode_archive_chunk(const unsigned char* data, std::size_t len, std::int64_t entries, std::int64_t run_id,
                          std::int32_t chunk_no, std::vector<ArchivedAssignment>& out)
{
    const std::size_t before = out.size();
    const bool ok = core::decode_chunk(data, len, out);
    const std::size_t got = out.size() - before;
    if (!ok)
        throw corrupt_chunk(run_id, chunk_no, strfmt("does not decode (entry %zu)", got + 1));
    if (static_cast<std::int64_t>(got) != entries)
        throw corrupt_chunk(run_id, chunk_no,
                            strfmt("holds %zu entries, not the %lld recorded", got, static_cast<long long>(entries)));
}

AssignmentArchiveWriter::AssignmentArchiveWriter(std::int64_t run_id) : run_id_(run_id)
{
    rel_ = open_archive(RowExclusiveLock);
    guarded([&] {
        bistate_ = GetBulkInsertState();
        batch_cxt_ = AllocSetContextCreate(CurrentMemoryContext, "phasemig archive batch", ALLOCSET_DEFAULT_SIZES);
        for (int i = 0; i < kBatch; i++)
            slots_[i] = MakeSingleTupleTableSlot(RelationGetDescr(rel_), &TTSOpsVirtual);
    });
}

AssignmentArchiveWriter::~AssignmentArchiveWriter() = default;  // PostgreSQL resources end with the transaction

void AssignmentArchiveWriter::end_chunk()
{
    if (enc_.entries() == 0)
        return;
    TupleTableSlot* slot = slots_[n_];
    ExecClearTuple(slot);
    bytea* data = static_cast<bytea*>(MemoryContextAlloc(batch_cxt_, VARHDRSZ + enc_.size()));
    SET_VARSIZE(data, VARHDRSZ + enc_.size());
    memcpy(VARDATA(data), enc_.data(), enc_.size());
    Datum* v = slot->tts_values;
    bool* nl = slot->tts_isnull;
    v[kRun] = Int64GetDatum(run_id_);
    v[kChunk] = Int32GetDatum(chunk_no_);
    v[kEntries] = Int32GetDatum(static_cast<std::int32_t>(enc_.entries()));
    v[kFirst] = Int64GetDatum(static_cast<std::int64_t>(enc_.first_pos()));
    v[kLast] = Int64GetDatum(static_cast<std::int64_t>(enc_.last_pos()));
    v[kData] = PointerGetDatum(data);
    for (int i = 0; i < kCols; i++)
        nl[i] = false;
    ExecStoreVirtualTuple(slot);
    written_ += enc_.entries();
    chunk_no_++;
    enc_.reset();
    if (++n_ == kBatch)
        flush();
}

void AssignmentArchiveWriter::flush()
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

void AssignmentArchiveWriter::finish()
{
    guarded([&] {
        end_chunk();
        flush();
        FreeBulkInsertState(bistate_);
        table_finish_bulk_insert(rel_, TABLE_INSERT_SKIP_FSM);
        for (int i = 0; i < kBatch; i++)
            ExecDropSingleTupleTableSlot(slots_[i]);
        MemoryContextDelete(batch_cxt_);
        table_close(rel_, NoLock);
    });
    rel_ = nullptr;
}

AssignmentArchiveReader::AssignmentArchiveReader(std::int64_t run_id) : run_id_(run_id)
{
    entries_.reserve(AssignmentArchiveWriter::kChunkBytes + kAhead + 1);
    rel_ = open_archive(AccessShareLock);
    guarded([&] {
        // Never a synchronized scan: the chunks are read in the order written.
        scan_ = table_beginscan_strat(rel_, GetActiveSnapshot(), 0, nullptr, true, false);
        slot_ = table_slot_create(rel_, nullptr);
        chunk_cxt_ = AllocSetContextCreate(CurrentMemoryContext, "phasemig archive chunk", ALLOCSET_SMALL_SIZES);
    });
}

AssignmentArchiveReader::~AssignmentArchiveReader() = default;  // close() or the end of the transaction

bool AssignmentArchiveReader::load_chunk()
{
    if (!scan_)
        return false;
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    std::int32_t chunk_no = 0;
    std::int64_t entries = 0;
    const bool found = guarded([&] {
        MemoryContextReset(chunk_cxt_);
        while (table_scan_getnextslot(scan_, ForwardScanDirection, slot_)) {
            slot_getallattrs(slot_);
            const Datum* v = slot_->tts_values;
            const bool* nl = slot_->tts_isnull;
            if (nl[kRun] || DatumGetInt64(v[kRun]) != run_id_)
                continue;
            CHECK_FOR_INTERRUPTS();
            if (nl[kChunk] || nl[kEntries] || nl[kData])
                ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("phasemig's assignment archive is damaged"),
                                errdetail("A chunk of upgrade run %lld has a NULL chunk_no, entries or data.",
                                          static_cast<long long>(run_id_))));
            chunk_no = DatumGetInt32(v[kChunk]);
            entries = DatumGetInt32(v[kEntries]);
            // Stored inline as written; a restored copy may have been
            // compressed or moved out of line.
            MemoryContext old = MemoryContextSwitchTo(chunk_cxt_);
            struct varlena* b = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(v[kData])));
            MemoryContextSwitchTo(old);
            data = reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
            len = VARSIZE_ANY_EXHDR(b);
            return true;
        }
        return false;
    });
    if (!found) {
        close();
        return false;
    }
    if (chunk_no != next_chunk_)
        throw corrupt_chunk(run_id_, chunk_no,
                            strfmt("comes where chunk %d should: the table is not in the order it was written",
                                   next_chunk_));
    next_chunk_++;
    decode_archive_chunk(data, len, entries, run_id_, chunk_no, entries_);
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

ExtensionTable extension_table(const char* table, const std::vector<const char*>& columns)
{
    const std::string schema = extension().schema;
    ExtensionTable t;
    t.oid = guarded([&] { return get_relname_relid(table, get_namespace_oid(schema.c_str(), false)); });
    if (!OidIsValid(t.oid))
        throw Error(ERRCODE_UNDEFINED_TABLE, strfmt("phasemig's table %s is missing", table), "",
                    "Reinstall the extension.");
    for (const char* c : columns) {
        const AttrNumber a = guarded([&] { return get_attnum(t.oid, c); });
        if (a == InvalidAttrNumber)
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        strfmt("phasemig's table %s has no column %s", table, c), "",
                        "ALTER EXTENSION phasemig UPDATE; brings the table up to date.");
        t.attnums.push_back(a);
    }
    return t;
}

ArchiveTableWriter::ArchiveTableWriter(const char* table, const std::vector<const char*>& columns)
{
    const std::string schema = extension().schema;
    guarded([&] {
        Oid nsp = get_namespace_oid(schema.c_str(), false);
        Oid relid = get_relname_relid(table, nsp);
        if (!OidIsValid(relid))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("phasemig's table %s is missing", table),
                            errhint("Reinstall the extension.")));
        rel_ = table_open(relid, RowExclusiveLock);
        TupleDesc desc = RelationGetDescr(rel_);
        for (const char* c : columns) {
            int found = -1;
            for (int i = 0; i < desc->natts; i++)
                if (!TupleDescAttr(desc, i)->attisdropped && strcmp(NameStr(TupleDescAttr(desc, i)->attname), c) == 0)
                    found = i;
            if (found < 0)
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("phasemig's table %s has no column %s", table, c),
                                errhint("ALTER EXTENSION phasemig UPDATE; brings the table up to date.")));
            attno_.push_back(found);
        }
        bistate_ = GetBulkInsertState();
        batch_cxt_ = AllocSetContextCreate(CurrentMemoryContext, "phasemig archive batch", ALLOCSET_DEFAULT_SIZES);
        for (int i = 0; i < kBatch; i++) {
            slots_[i] = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
            ExecClearTuple(slots_[i]);
            for (int a = 0; a < desc->natts; a++) {
                slots_[i]->tts_values[a] = (Datum) 0;
                slots_[i]->tts_isnull[a] = true;
            }
        }
    });
}

ArchiveTableWriter::~ArchiveTableWriter() = default;  // PostgreSQL resources end with the transaction

void ArchiveTableWriter::set(int column, Datum value, bool isnull)
{
    const int a = attno_[column];
    TupleTableSlot* slot = slots_[n_];
    slot->tts_isnull[a] = isnull;
    if (isnull) {
        slot->tts_values[a] = (Datum) 0;
        return;
    }
    Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, a);
    MemoryContext old = MemoryContextSwitchTo(batch_cxt_);
    slot->tts_values[a] = att->attbyval ? value : datumCopy(value, false, att->attlen);
    MemoryContextSwitchTo(old);
}

void ArchiveTableWriter::set_text(int column, const char* text, int len)
{
    MemoryContext old = MemoryContextSwitchTo(batch_cxt_);
    const Datum d = PointerGetDatum(cstring_to_text_with_len(text, len));
    MemoryContextSwitchTo(old);
    const int a = attno_[column];
    slots_[n_]->tts_values[a] = d;
    slots_[n_]->tts_isnull[a] = false;
}

void ArchiveTableWriter::set_key(int column, Datum value, bool isnull, KeyType type)
{
    if (isnull) {
        set(column, (Datum) 0, true);
        return;
    }
    char buf[48];
    set_text(column, buf, key_to_cstr(datum_to_key(value, type), type, buf));
}

void ArchiveTableWriter::end_row()
{
    ExecStoreVirtualTuple(slots_[n_]);
    if (++n_ == kBatch)
        flush();
}

void ArchiveTableWriter::flush()
{
    if (n_ == 0)
        return;
    MemoryContext old = MemoryContextSwitchTo(batch_cxt_);
    table_multi_insert(rel_, slots_, n_, GetCurrentCommandId(true), 0, bistate_);
    MemoryContextSwitchTo(old);
    for (int i = 0; i < n_; i++) {
        ExecClearTuple(slots_[i]);
        const int natts = slots_[i]->tts_tupleDescriptor->natts;
        for (int a = 0; a < natts; a++) {
            slots_[i]->tts_values[a] = (Datum) 0;
            slots_[i]->tts_isnull[a] = true;
        }
    }
    MemoryContextReset(batch_cxt_);
    written_ += static_cast<std::uint64_t>(n_);
    n_ = 0;
}

void ArchiveTableWriter::finish()
{
    guarded([&] {
        flush();
        FreeBulkInsertState(bistate_);
        table_finish_bulk_insert(rel_, 0);
        for (int i = 0; i < kBatch; i++)
            ExecDropSingleTupleTableSlot(slots_[i]);
        MemoryContextDelete(batch_cxt_);
        table_close(rel_, NoLock);
    });
    rel_ = nullptr;
}

}  // namespace phasemig::pg
