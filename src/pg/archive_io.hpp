// The assignment archive, written and read directly through the table access
// method: one pass of the upgrade writes it while it reads the assignments
// (no INSERT ... SELECT, no text casts in SQL), and the downgrade streams it
// back in the order it was written.
#pragma once

#include <cstdint>

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
    void add(std::uint64_t pos, Datum id, bool project_null, Datum project, bool date_null, Datum date,
             Datum phase);
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
    int n_ = 0;
    std::uint64_t written_ = 0;
};

// Streams the archive of one run in physical order (the order written).
class AssignmentArchiveReader {
public:
    AssignmentArchiveReader(std::int64_t run_id, KeyType assignment, KeyType project, KeyType phase);
    ~AssignmentArchiveReader();
    bool next(ArchivedAssignment& out);
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
};

}  // namespace phasemig::pg
