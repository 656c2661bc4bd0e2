#include "pg/archive_io.hpp"

#include <cstring>
#include <utility>

#include "pg/context.hpp"
#include "pg/guard.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

namespace {

// Column order of phasemig_assignment_archive (checked when opened).
enum Col { kRun, kPosition, kAssignment, kProject, kDate, kPhase, kCols };
const char* const kColNames[kCols] = {"run_id",      "row_position",    "assignment_key",
                                      "project_key", "assignment_date", "phase_key"};

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

// The core's 16-byte key as a uuid Datum, in the writer's per-batch array.
Datum uuid_of_key(const core::Key& key, pg_uuid_t* u)
{
    key.to_uuid(u->data);
    return UUIDPGetDatum(u);
}

}  // namespace

AssignmentArchiveWriter::AssignmentArchiveWriter(std::int64_t run_id, KeyType assignment, KeyType project,
                                                 KeyType phase)
    : run_id_(run_id), assignment_(assignment), project_(project), phase_(phase)
{
    rel_ = open_archive(RowExclusiveLock);
    guarded([&] {
        bistate_ = GetBulkInsertState();
        batch_cxt_ = AllocSetContextCreate(CurrentMemoryContext, "phasemig archive batch", ALLOCSET_DEFAULT_SIZES);
        keys_ = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t) * kBatch * 3));
        for (int i = 0; i < kBatch; i++)
            slots_[i] = MakeSingleTupleTableSlot(RelationGetDescr(rel_), &TTSOpsVirtual);
    });
}

AssignmentArchiveWriter::~AssignmentArchiveWriter() = default;  // PostgreSQL resources end with the transaction

void AssignmentArchiveWriter::add(std::uint64_t pos, const core::Key& id, bool project_null,
                                  const core::Key& project, bool date_null, core::Day date, const core::Key& phase)
{
    MemoryContext old = MemoryContextSwitchTo(batch_cxt_);
    TupleTableSlot* slot = slots_[n_];
    ExecClearTuple(slot);
    slot->tts_values[kRun] = Int64GetDatum(run_id_);
    slot->tts_isnull[kRun] = false;
    slot->tts_values[kPosition] = Int64GetDatum(static_cast<std::int64_t>(pos));
    slot->tts_isnull[kPosition] = false;
    pg_uuid_t* keys = &keys_[n_ * 3];
    slot->tts_values[kAssignment] = uuid_of_key(id, &keys[0]);
    slot->tts_isnull[kAssignment] = false;
    slot->tts_isnull[kProject] = project_null;
    slot->tts_values[kProject] = project_null ? (Datum) 0 : uuid_of_key(project, &keys[1]);
    slot->tts_isnull[kDate] = date_null;
    slot->tts_values[kDate] = date_null ? (Datum) 0 : DateADTGetDatum(date);
    slot->tts_values[kPhase] = uuid_of_key(phase, &keys[2]);
    slot->tts_isnull[kPhase] = false;
    ExecStoreVirtualTuple(slot);
    MemoryContextSwitchTo(old);
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
    written_ += static_cast<std::uint64_t>(n_);
    n_ = 0;
}

void AssignmentArchiveWriter::finish()
{
    guarded([&] {
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

AssignmentArchiveReader::AssignmentArchiveReader(std::int64_t run_id, KeyType assignment, KeyType project,
                                                 KeyType phase)
    : run_id_(run_id), assignment_(assignment), project_(project), phase_(phase)
{
    rel_ = open_archive(AccessShareLock);
    guarded([&] {
        scan_ = table_beginscan_strat(rel_, GetActiveSnapshot(), 0, nullptr, true, false);
        slot_ = table_slot_create(rel_, nullptr);
    });
}

AssignmentArchiveReader::~AssignmentArchiveReader() = default;  // close() or the end of the transaction

void AssignmentArchiveReader::refill()
{
    if (exhausted_ || !scan_)
        return;
    // One guard for a run of entries, up to the look-ahead.
    const std::size_t want = kAhead - count_;
    const std::size_t got = guarded([&] {
        std::size_t n = 0;
        while (n < want && table_scan_getnextslot(scan_, ForwardScanDirection, slot_)) {
            slot_getallattrs(slot_);
            const Datum* v = slot_->tts_values;
            const bool* nl = slot_->tts_isnull;
            if (nl[kRun] || DatumGetInt64(v[kRun]) != run_id_ || nl[kAssignment] || nl[kPhase] || nl[kPosition])
                continue;
            if ((++read_ & 0x3fff) == 0)
                CHECK_FOR_INTERRUPTS();
            ArchivedAssignment& out = ring_[(head_ + count_ + n) % kAhead];
            out.pos = static_cast<std::uint64_t>(DatumGetInt64(v[kPosition]));
            out.id = core::Key::from_uuid(DatumGetUUIDP(v[kAssignment])->data);
            out.phase = core::Key::from_uuid(DatumGetUUIDP(v[kPhase])->data);
            out.has_project = !nl[kProject];
            if (!nl[kProject])
                out.project = core::Key::from_uuid(DatumGetUUIDP(v[kProject])->data);
            out.has_date = !nl[kDate];
            out.date = nl[kDate] ? 0 : DatumGetDateADT(v[kDate]);
            n++;
        }
        return n;
    });
    if (got < want)
        exhausted_ = true;
    for (std::size_t i = 0; i < got; i++) {
        if (on_read_)
            on_read_(ring_[(head_ + count_ + i) % kAhead]);
    }
    count_ += got;
}

bool AssignmentArchiveReader::next(ArchivedAssignment& out)
{
    if (count_ <= kAhead / 2)
        refill();
    if (count_ == 0)
        return false;
    out = ring_[head_];
    head_ = (head_ + 1) % kAhead;
    count_--;
    return true;
}

void AssignmentArchiveReader::close()
{
    if (!scan_)
        return;
    guarded([&] {
        ExecDropSingleTupleTableSlot(slot_);
        table_endscan(scan_);
        table_close(rel_, AccessShareLock);
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
