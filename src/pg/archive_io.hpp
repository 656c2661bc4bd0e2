// The assignment archive, written and read directly through the table access
// method: one pass of the upgrade writes it while it reads the assignments
// (no INSERT ... SELECT, no text casts in SQL), and the downgrade streams it
// back in the order it was written.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/key.hpp"
#include "pg/keys.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// One archived assignment as the downgrade needs it.
struct ArchivedAssignment {
    std::uint64_t pos = 0;  // its ctid at the upgrade (block << 16 | offset)
    core::Key id;
    core::Key project;
    bool has_project = false;
    bool has_date = false;
    DateADT date = 0;
    core::Key phase;
};

// Appends rows to phasemig_assignment_archive in batches, always at the end
// of the table (no free-space reuse), so they stay in the order written.
// add() runs inside a scan's guarded batch: it holds no C++ object with a
// destructor across its PostgreSQL calls.
class AssignmentArchiveWriter {
public:
    AssignmentArchiveWriter(std::int64_t run_id, KeyType assignment, KeyType project, KeyType phase);
    ~AssignmentArchiveWriter();
    void add(std::uint64_t pos, const core::Key& id, bool project_null, const core::Key& project, bool date_null,
             core::Day date, const core::Key& phase);
    void finish();
    std::uint64_t written() const noexcept { return written_; }

private:
    void flush();
    static constexpr int kBatch = 1000;
    std::int64_t run_id_;
    KeyType assignment_;
    KeyType project_;
    KeyType phase_;
    Relation rel_ = nullptr;
    BulkInsertState bistate_ = nullptr;
    MemoryContext batch_cxt_ = nullptr;
    TupleTableSlot* slots_[kBatch] = {};
    pg_uuid_t* keys_ = nullptr;  // three per slot: the uuid Datums point here
    int n_ = 0;
    std::uint64_t written_ = 0;
};

// Streams the archive of one run in physical order (the order written),
// reading a little ahead: on_read (if set) sees each entry as it is read,
// so the lookups it will need can be prefetched before it is consumed.
class AssignmentArchiveReader {
public:
    AssignmentArchiveReader(std::int64_t run_id, KeyType assignment, KeyType project, KeyType phase);
    ~AssignmentArchiveReader();
    bool next(ArchivedAssignment& out);
    void set_on_read(std::function<void(const ArchivedAssignment&)> f) { on_read_ = std::move(f); }
    void close();
    std::uint64_t read() const noexcept { return read_; }

private:
    std::int64_t run_id_;
    KeyType assignment_;
    KeyType project_;
    KeyType phase_;
    Relation rel_ = nullptr;
    TableScanDesc scan_ = nullptr;
    TupleTableSlot* slot_ = nullptr;
    std::uint64_t read_ = 0;
    void refill();
    static constexpr std::size_t kAhead = 32;
    ArchivedAssignment ring_[kAhead];
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    bool exhausted_ = false;
    std::function<void(const ArchivedAssignment&)> on_read_;
};

// One of phasemig's own tables: its OID and the attribute numbers of the
// columns asked for (raises when the table or a column is missing).
struct ExtensionTable {
    Oid oid = InvalidOid;
    std::vector<AttrNumber> attnums;
};
ExtensionTable extension_table(const char* table, const std::vector<const char*>& columns);

// Rows appended to one of phasemig's archive tables through the table access
// method, a batch at a time (no INSERT ... SELECT, no index to maintain).
// Values are set by column name; by-reference values are copied into the
// batch, so a scan may move on before the batch is written.
class ArchiveTableWriter {
public:
    ArchiveTableWriter(const char* table, const std::vector<const char*>& columns);
    ~ArchiveTableWriter();
    // Inside a guarded region (it calls PostgreSQL).
    void set(int column, Datum value, bool isnull);
    void set_text(int column, const char* text, int len);
    // A key column (text): the key of a column of the given type, or NULL.
    void set_key(int column, Datum value, bool isnull, KeyType type);
    void end_row();
    void finish();
    std::uint64_t written() const noexcept { return written_; }

private:
    void flush();
    static constexpr int kBatch = 1000;
    Relation rel_ = nullptr;
    BulkInsertState bistate_ = nullptr;
    MemoryContext batch_cxt_ = nullptr;
    TupleTableSlot* slots_[kBatch] = {};
    std::vector<int> attno_;  // column -> index in the tuple
    int n_ = 0;
    std::uint64_t written_ = 0;
};

}  // namespace phasemig::pg
