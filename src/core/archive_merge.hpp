// Matching assignments with their archive entries without holding either.
//
// The upgrade archives each assignment with its physical position (ctid)
// in resource_assignments, in scan order.  The downgrade reads the table in
// the same order, so rows the application did not touch meet their entry at
// the same position, and both streams are consumed in step.  Only what moved
// waits in a hash map: entries of deleted or moved rows, and rows inserted or
// moved to an earlier position.  Memory therefore grows with the rows changed
// since the upgrade, never with the table.  Results never depend on the
// order: an entry out of order just waits longer.
//
// Two passes, because the ALTER TABLE rewrite of the downgrade needs each
// row's answer at once: Pass1 (before anything changes) learns which rows
// have no entry and which rows come before their entry; Pass2 (inside the
// rewrite, same rows in the same order) answers every row immediately.
//
// OnePass tries without Pass1: it answers every row that meets its entry in
// step or after it, and rows without an entry once the archive is read to
// the end.  A row that may come before its entry gets Unknown; the caller
// then rolls back and takes the two passes.  Tables the application left
// alone, or only appended to, updated and deleted from, need one pass.
#pragma once

#include <cstdint>

#include "core/flat_map.hpp"
#include "core/key.hpp"

namespace phasemig::core {

// Entry: has `std::uint64_t pos` and `Key id`.  Source: `bool next(Entry&)`,
// giving entries (ideally) by ascending pos.
template <typename Entry, typename Source>
class EntryCursor {
public:
    explicit EntryCursor(Source& src) : src_(src) {}
    // The next entry, or nullptr at the end.
    const Entry* peek()
    {
        if (!has_ && !done_) {
            has_ = src_.next(next_);
            done_ = !has_;
        }
        return has_ ? &next_ : nullptr;
    }
    Entry pop()
    {
        has_ = false;
        return next_;
    }
    // Consumes the entries up to the row's position: true with the row's own
    // entry in `out` if it stands there; passed(entry) for every other one.
    template <typename Passed>
    bool meet(std::uint64_t pos, const Key& id, Entry& out, Passed&& passed)
    {
        while (const Entry* e = peek()) {
            if (e->pos > pos)
                break;
            Entry entry = pop();
            if (entry.pos == pos && entry.id == id) {
                out = entry;
                return true;
            }
            passed(entry);
        }
        return false;
    }

private:
    Source& src_;
    Entry next_{};
    bool has_ = false;
    bool done_ = false;
};

// First pass.  row() for every row in table order, then finish().  Calls
// on_pair(row, entry) once per row with an entry, on_row(row) once per row
// without, on_entry(entry) once per entry without a row.
template <typename Row, typename Entry, typename Source>
class ArchiveMatchPass1 {
public:
    explicit ArchiveMatchPass1(Source& src) : cursor_(src) {}

    template <typename OnPair, typename OnEntry>
    void row(std::uint64_t pos, const Row& r, OnPair&& on_pair, OnEntry&& on_entry)
    {
        // Entries before this position belong to rows that are gone from it.
        Entry entry;
        if (cursor_.meet(pos, r.id, entry, [&](const Entry& e) { passed(e, on_pair, on_entry); })) {
            on_pair(r, entry);
            return;
        }
        if (Entry* e = waiting_entries_.find(r.id)) {
            on_pair(r, *e);  // the row moved to a later position
            waiting_entries_.erase(r.id);
            return;
        }
        waiting_rows_.put(r.id, r);  // new, or moved before its entry
        track();
    }

    template <typename OnPair, typename OnRow, typename OnEntry>
    void finish(OnPair&& on_pair, OnRow&& on_row, OnEntry&& on_entry)
    {
        while (cursor_.peek())
            passed(cursor_.pop(), on_pair, on_entry);
        waiting_rows_.for_each([&](const Key& id, const Row& r) {
            unarchived_.put(id, 1);
            on_row(r);
        });
        waiting_entries_.for_each([&](const Key&, const Entry& e) { on_entry(e); });
        waiting_rows_.clear();
        waiting_entries_.clear();
    }

    // What the second pass needs: rows without an entry, and the entries of
    // rows that came before them.
    const FlatKeyMap<char>& unarchived() const noexcept { return unarchived_; }
    const FlatKeyMap<Entry>& early_rows() const noexcept { return early_; }
    std::size_t peak_waiting() const noexcept { return peak_; }

private:
    template <typename OnPair, typename OnEntry>
    void passed(const Entry& entry, OnPair& on_pair, OnEntry&)
    {
        if (Row* r = waiting_rows_.find(entry.id)) {
            on_pair(*r, entry);
            early_.put(entry.id, entry);
            waiting_rows_.erase(entry.id);
        } else {
            waiting_entries_.put(entry.id, entry);
            track();
        }
    }
    void track()
    {
        const std::size_t n = waiting_rows_.size() + waiting_entries_.size();
        if (n > peak_)
            peak_ = n;
    }

    EntryCursor<Entry, Source> cursor_;
    FlatKeyMap<Row> waiting_rows_;
    FlatKeyMap<Entry> waiting_entries_;
    FlatKeyMap<char> unarchived_;
    FlatKeyMap<Entry> early_;
    std::size_t peak_ = 0;
};

// Second pass: the same rows in the same order, each answered at once.
template <typename Entry, typename Source>
class ArchiveMatchPass2 {
public:
    ArchiveMatchPass2(Source& src, const FlatKeyMap<char>& unarchived, const FlatKeyMap<Entry>& early)
        : cursor_(src), unarchived_(unarchived), early_(early)
    {
    }

    // The row's entry in `out`; false for a row without one.
    bool find(std::uint64_t pos, const Key& id, Entry& out)
    {
        const bool in_step = cursor_.meet(pos, id, out, [&](const Entry& entry) {
            // Rows that came before their entry were answered already.
            if (!early_.find(entry.id)) {
                waiting_.put(entry.id, entry);
                if (waiting_.size() > peak_)
                    peak_ = waiting_.size();
            }
        });
        if (in_step)
            return true;
        if (Entry* e = waiting_.find(id)) {
            out = *e;
            waiting_.erase(id);
            return true;
        }
        if (const Entry* e = early_.find(id)) {
            out = *e;
            return true;
        }
        return false;  // in unarchived_ (the table is locked between the passes)
    }
    std::size_t peak_waiting() const noexcept { return peak_; }
    bool knows_unarchived(const Key& id) const noexcept { return unarchived_.find(id) != nullptr; }

private:
    EntryCursor<Entry, Source> cursor_;
    const FlatKeyMap<char>& unarchived_;
    const FlatKeyMap<Entry>& early_;
    FlatKeyMap<Entry> waiting_;
    std::size_t peak_ = 0;
};

enum class OnePassAnswer { Found, Absent, Unknown };

// Single pass (see the top of this file): the same rows in the same order.
template <typename Entry, typename Source>
class ArchiveMatchOnePass {
public:
    explicit ArchiveMatchOnePass(Source& src) : cursor_(src) {}

    OnePassAnswer find(std::uint64_t pos, const Key& id, Entry& out)
    {
        const bool in_step = cursor_.meet(pos, id, out, [&](const Entry& entry) {
            waiting_.put(entry.id, entry);  // deleted, or moved later
            if (waiting_.size() > peak_)
                peak_ = waiting_.size();
        });
        if (in_step)
            return OnePassAnswer::Found;
        if (Entry* e = waiting_.find(id)) {
            out = *e;
            waiting_.erase(id);
            return OnePassAnswer::Found;
        }
        // What is left of the archive lies after this row: the row has no
        // entry, or it moved before its entry.  Only the end tells.
        return cursor_.peek() ? OnePassAnswer::Unknown : OnePassAnswer::Absent;
    }
    std::size_t peak_waiting() const noexcept { return peak_; }

private:
    EntryCursor<Entry, Source> cursor_;
    FlatKeyMap<Entry> waiting_;
    std::size_t peak_ = 0;
};

}  // namespace phasemig::core
