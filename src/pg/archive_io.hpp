// The assignment and phase archives, written and read directly through the
// table access method: a step writes them while it scans the tables (no
// INSERT ... SELECT, no text casts in SQL), and the next step streams them
// back in the order written.  Entries are packed into chunks of about 2 kB
// (core/archive_codec.hpp, core/phase_archive_codec.hpp), a row each.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/archive_codec.hpp"
#include "core/phase_archive_codec.hpp"
#include "core/key.hpp"
#include "pg/guard.hpp"
#include "pg/keys.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// One archived assignment as the downgrade needs it.
using ArchivedAssignment = core::ArchiveEntry;

// Rows of one of phasemig's chunk tables (run_id, chunk_no, entries, [first_position,
// last_position,] data), appended for one run in batches, always at the end of
// the table (no free-space reuse), so the chunks are read back in about the
// order written.
class ChunkTableWriter {
public:
    ChunkTableWriter(const char* table, std::int64_t run_id);
    ~ChunkTableWriter();
    // Inside a guarded region (it calls PostgreSQL).
    void add(const unsigned char* data, std::size_t len, std::uint32_t entries, std::uint64_t first_pos,
             std::uint64_t last_pos);
    void finish();
    std::int32_t chunks() const noexcept { return chunk_no_; }

private:
    void flush();
    void put_direct(HeapTuple tuple);
    void write_page();
    void end_direct();
    static constexpr int kBatch = 64;
    std::int64_t run_id_;
    bool positions_ = false;  // the table has first_position and last_position
    Relation rel_ = nullptr;
    BulkInsertState bistate_ = nullptr;
    MemoryContext cxt_ = nullptr;
    MemoryContext batch_cxt_ = nullptr;
    TupleTableSlot* slots_[kBatch] = {};
    int n_ = 0;
    std::int32_t chunk_no_ = 0;
    // Direct mode: the table's storage is new in this transaction (the
    // upgrade TRUNCATEs the assignment archive) and still empty, so pages are
    // filled here and written straight to it, WAL-logged whole, as CREATE
    // INDEX and VACUUM FULL write theirs, instead of one buffer at a time
    // through shared buffers.
    bool direct_ = false;
    char* page_ = nullptr;   // BLCKSZ bytes, the page being filled
    BlockNumber block_ = 0;  // the block it will be
    TransactionId xid_ = InvalidTransactionId;
};

// The chunks of one run of a chunk table, in the table's physical order:
// the order written, unless a restore (COPY reuses free space) or an update
// moved some.  Readers do not depend on it (core/archive_merge.hpp: an
// entry out of order waits).  At the end the chunk numbers must be 0 to
// n - 1, each once; a gap, a repeat, or a chunk with NULLs raises
// data_corrupted.
class ChunkTableReader {
public:
    // `what` names the archive in errors ("assignment archive"), `run` the
    // run ("upgrade run"), `hint` what to do about damage.
    ChunkTableReader(const char* table, const char* what, const char* run, const char* hint, std::int64_t run_id);
    ~ChunkTableReader();
    // The next chunk's bytes (valid until the next call) and entry count;
    // false at the end (the scan is then closed).
    bool next(const unsigned char*& data, std::size_t& len, std::int64_t& entries, std::int32_t& chunk_no);
    void close();
    std::int64_t run_id() const noexcept { return run_id_; }

private:
    const char* what_;
    const char* run_label_;
    const char* hint_;
    std::int64_t run_id_;
    Relation rel_ = nullptr;
    TableScanDesc scan_ = nullptr;
    TupleTableSlot* slot_ = nullptr;
    MemoryContext chunk_cxt_ = nullptr;
    AttrNumber data_col_ = 0;
    std::vector<std::int32_t> seen_;  // chunk numbers read
};

// Appends the archive of one run to phasemig_assignment_archive: entries are
// packed into chunks (core/archive_codec.hpp), one row per chunk.  add() runs
// inside a scan's guarded batch: it holds no C++ object with a destructor
// across its PostgreSQL calls.
class AssignmentArchiveWriter {
public:
    explicit AssignmentArchiveWriter(std::int64_t run_id) : rows_("phasemig_assignment_archive", run_id) {}
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
    std::uint64_t chunks() const noexcept { return static_cast<std::uint64_t>(rows_.chunks()); }

    // Bytes of entries per chunk: the row stays under the TOAST threshold
    // (about 2 kB), so it is stored inline and never compressed.
    static constexpr std::size_t kChunkBytes = 1960;

private:
    void end_chunk();
    ChunkTableWriter rows_;
    unsigned char buf_[kChunkBytes];
    core::ChunkEncoder enc_{buf_, kChunkBytes};
    std::uint64_t written_ = 0;
};

// Streams the archive of one run a chunk at a time, in about the order
// written (see ChunkTableReader): on_read (if set) sees each entry a little
// before it is consumed, so the lookups it will need can be prefetched.  A
// chunk that does not decode, or a chunk missing, raise data_corrupted.
class AssignmentArchiveReader {
public:
    explicit AssignmentArchiveReader(std::int64_t run_id);
    bool next(ArchivedAssignment& out)
    {
        // The next chunk is decoded while kAhead entries of this one remain,
        // so every entry is seen by on_read kAhead entries before its turn.
        if (entries_.size() - at_ <= kAhead && !done_)
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
    ChunkTableReader chunks_;
    bool done_ = false;
    std::vector<ArchivedAssignment> entries_;
    std::size_t at_ = 0;
    std::uint64_t read_ = 0;
    std::function<void(const ArchivedAssignment&)> on_read_;
};

// Decodes one chunk, appending to `out`; raises data_corrupted when it does
// not decode to `entries` entries.
void decode_archive_chunk(const unsigned char* data, std::size_t len, std::int64_t entries, std::int64_t run_id,
                          std::int32_t chunk_no, std::vector<ArchivedAssignment>& out);

// A varlena value's bytes (text, varchar, numeric), detoasted when it must
// be, into the current memory context: inside a guard.
inline core::Bytes varlena_bytes(Datum d)
{
    struct varlena* v = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(d)));
    return core::Bytes{reinterpret_cast<const unsigned char*>(VARDATA_ANY(v)),
                       static_cast<std::uint32_t>(VARSIZE_ANY_EXHDR(v))};
}

// The three budgets (capital, expense, total) of a phase from three Datums
// in that order; a NULL stays absent.
inline void set_budgets(core::PhaseArchiveEntry& e, const Datum* v, const bool* n)
{
    core::Bytes* out[] = {&e.capital, &e.expense, &e.total};
    for (int c = 0; c < 3; c++)
        *out[c] = n[c] ? core::Bytes{} : varlena_bytes(v[c]);
}

// Appends what a step drops from each phase to phasemig_phase_archive, packed
// into chunks (core/phase_archive_codec.hpp), one row per chunk.  add() runs
// inside a scan's guarded row: the entry's bytes are copied before it returns.
class PhaseArchiveWriter {
public:
    PhaseArchiveWriter(std::int64_t run_id, KeyType phase, KeyType project);
    void add(const core::PhaseArchiveEntry& e)
    {
        enc_.add(e);
        if (enc_.size() >= kChunkBytes)
            end_chunk();
    }
    void finish();
    std::uint64_t written() const noexcept { return written_; }

    // About the assignment archive's chunk: most chunks stay inline; one
    // that a long description makes bigger is simply TOASTed.
    static constexpr std::size_t kChunkBytes = 1900;

private:
    void end_chunk();
    ChunkTableWriter rows_;
    core::PhaseChunkEncoder enc_;
    std::uint64_t written_ = 0;
};

// Calls `fn` for every entry of the phase archive of `run_id`, in about the
// order written (see ChunkTableReader; outside any guard: `fn` must not call
// PostgreSQL).  A chunk that does not decode, or a chunk missing, raise
// data_corrupted.
void read_phase_archive(std::int64_t run_id, const std::function<void(const core::PhaseArchiveEntry&)>& fn);

// Decodes one phase archive chunk, calling `fn` per entry; raises
// data_corrupted when it does not decode to `entries` entries.
void decode_phase_chunk(const unsigned char* data, std::size_t len, std::int64_t entries, std::int64_t run_id,
                        std::int32_t chunk_no, const std::function<void(const core::PhaseArchiveEntry&)>& fn);

}  // namespace phasemig::pg
