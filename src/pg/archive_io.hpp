// The assignment archive, written and read directly through the table access
// method: one pass of the upgrade writes it while it reads the assignments
// (no INSERT ... SELECT, no text casts in SQL), and the downgrade streams it
// back in the order it was written.  Entries are packed into chunks of about
// 2 kB (core/archive_codec.hpp), a row each.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/archive_codec.hpp"
#include "core/key.hpp"
#include "pg/keys.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// One archived assignment as the downgrade needs it.
using ArchivedAssignment = core::ArchiveEntry;

// Appends the archive of one run to phasemig_assignment_archive: entries are
// packed into chunks (core/archive_codec.hpp), one row per chunk, written in
// batches always at the end of the table (no free-space reuse), so the
// chunks stay in the order written.  add() runs inside a scan's guarded
// batch: it holds no C++ object with a destructor across its PostgreSQL calls.
class AssignmentArchiveWriter {
public:
    explicit AssignmentArchiveWriter(std::int64_t run_id);
    ~AssignmentArchiveWriter();
    void add(std::uint64_t pos, const core::Key& id, bool project_null, const core::Key& project, bool date_null,
             core::Day date, const core::Key& phase)
    {
        if (!enc_.has_room())
            end_chunk();
        core::ArchiveEntry e;
        e.pos = pos;
        e.id = id;
        e.has_project = !project_null;
        e.project = project;
        e.has_date = !date_null;
        e.date = date;
        e.phase = phase;
        enc_.add(e);
    }
    void finish();
    std::uint64_t written() const noexcept { return written_; }
    std::uint64_t chunks() const noexcept { return static_cast<std::uint64_t>(chunk_no_); }

    // Bytes of entries per chunk: the row stays under the TOAST threshold
    // (about 2 kB), so it is stored inline and never compressed.
    static constexpr std::size_t kChunkBytes = 1960;

private:
    void end_chunk();
    void flush();
    static constexpr int kBatch = 64;
    std::int64_t run_id_;
    Relation rel_ = nullptr;
    BulkInsertState bistate_ = nullptr;
    MemoryContext batch_cxt_ = nullptr;
    TupleTableSlot* slots_[kBatch] = {};
    unsigned char buf_[kChunkBytes];
    core::ChunkEncoder enc_{buf_, kChunkBytes};
    int n_ = 0;
    std::int32_t chunk_no_ = 0;
    std::uint64_t written_ = 0;
};

// Streams the archive of one run in the order written, a chunk at a time:
// on_read (if set) sees each entry a little before it is consumed, so the
// lookups it will need can be prefetched.  A chunk that does not decode, or
// chunks out of order, raise data_corrupted.
class AssignmentArchiveReader {
public:
    explicit AssignmentArchiveReader(std::int64_t run_id);
    ~AssignmentArchiveReader();
    bool next(ArchivedAssignment& out)
    {
        // The next chunk is decoded while kAhead entries of this one remain,
        // so every entry is seen by on_read kAhead entries before its turn.
        if (entries_.size() - at_ <= kAhead && scan_)
            refill();
        if (at_ == entries_.size())
            return false;
        if (on_read_ && at_ + kAhead < entries_.size())
            on_read_(entries_[at_ + kAhead]);
        out = entries_[at_++];
        read_++;
        return true;
    }
    void set_on_read(std::function<void(const ArchivedAssignment&)> f) { on_read_ = std::move(f); }
    void close();
    std::uint64_t read() const noexcept { return read_; }

private:
    void refill();
    bool load_chunk();
    static constexpr std::size_t kAhead = 16;
    std::int64_t run_id_;
    Relation rel_ = nullptr;
    TableScanDesc scan_ = nullptr;
    TupleTableSlot* slot_ = nullptr;
    MemoryContext chunk_cxt_ = nullptr;
    std::vector<ArchivedAssignment> entries_;
    std::size_t at_ = 0;
    std::int32_t next_chunk_ = 0;
    std::uint64_t read_ = 0;
    std::function<void(const ArchivedAssignment&)> on_read_;
};

// Decodes one chunk, appending to `out`; raises data_corrupted when it does
// not decode to `entries` entries.
void decode_archive_chunk(const unsigned char* data, std::size_t len, std::int64_t entries, std::int64_t run_id,
                          std::int32_t chunk_no, std::vector<ArchivedAssignment>& out);

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
