// The assignment archive's chunk format: a run of archived assignments packed
// into one byte string (one bytea per row of phasemig_assignment_archive).
//
// A row per assignment cost about 100 bytes of heap, a tuple header and WAL
// each; most of an upgrade's archive time went there.  Neighbouring entries
// share most of what they hold (positions climb by one, an integer id by one,
// ten assignments share a project and a few a phase), so an entry is stored
// as what differs from the previous one.  A uuid that differs is stored
// whole: nothing here is lossy.
//
// Each chunk is self-contained (the "previous" entry starts at zero), so a
// chunk decodes on its own: the SQL view decodes chunks independently.
//
// Entry layout: a tag byte, then
//   position          zigzag varint of the difference from the previous one
//   assignment id     see key below
//   project           absent when NULL or equal to the previous entry's
//   date              absent when NULL; else zigzag varint of the difference
//   phase             absent when equal to the previous entry's
// A key whose high word equals the previous one's (always so for integer
// ids, whose high word is zero) is the zigzag varint of the difference of
// its low word; else its 16 bytes, high word first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/key.hpp"

namespace phasemig::core {

// One archived assignment: its position (ctid) at the upgrade, its id, the
// project and date it had then, and its phase.
struct ArchiveEntry {
    std::uint64_t pos = 0;
    Key id;
    Key project;
    bool has_project = false;
    bool has_date = false;
    Day date = 0;
    Key phase;
};

namespace archive_codec {

// The first byte of every chunk: the format, so a later one can be told apart.
constexpr unsigned char kVersion = 1;

enum Tag : unsigned char {
    kProjectNull = 1 << 0,
    kDateNull = 1 << 1,
    kSameProject = 1 << 2,
    kSamePhase = 1 << 3,
    kIdDelta = 1 << 4,
    kProjectDelta = 1 << 5,
    kPhaseDelta = 1 << 6,
};

// The most bytes one entry can take: tag, position, three whole keys, date.
constexpr std::size_t kMaxEntryBytes = 1 + 10 + 16 * 3 + 5;

inline std::uint64_t zigzag(std::int64_t v) noexcept
{
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) noexcept
{
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
// Differences wrap modulo 2^64, so every pair of words has one.
inline std::int64_t diff(std::uint64_t now, std::uint64_t before) noexcept
{
    return static_cast<std::int64_t>(now - before);
}

// What the chunk formats read (here and in phase_archive_codec.hpp): bytes,
// varints and keys, never past the end; false when the input runs out.
class Reader {
public:
    Reader(const unsigned char* p, const unsigned char* end) noexcept : p_(p), end_(end) {}
    bool at_end() const noexcept { return p_ == end_; }
    void skip_to_end() noexcept { p_ = end_; }
    bool byte(unsigned char& b) noexcept
    {
        if (p_ == end_)
            return false;
        b = *p_++;
        return true;
    }
    bool varint(std::uint64_t& v) noexcept
    {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ == end_)
                return false;
            const unsigned char b = *p_++;
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80))
                return true;
        }
        return false;
    }
    // A key as the encoders put it: the zigzag difference of the low word
    // from `k` (delta), else its 16 bytes, high word first.
    bool key(Key& k, bool delta) noexcept
    {
        if (delta) {
            std::uint64_t v;
            if (!varint(v))
                return false;
            k.lo += static_cast<std::uint64_t>(unzigzag(v));
            return true;
        }
        if (end_ - p_ < 16)
            return false;
        std::uint64_t hi = 0, lo = 0;
        for (int i = 0; i < 8; i++)
            hi = (hi << 8) | *p_++;
        for (int i = 0; i < 8; i++)
            lo = (lo << 8) | *p_++;
        k = Key{hi, lo};
        return true;
    }
    // `len` bytes in place.
    bool bytes(std::uint64_t len, const unsigned char*& out) noexcept
    {
        if (len > static_cast<std::uint64_t>(end_ - p_))
            return false;
        out = p_;
        p_ += len;
        return true;
    }

private:
    const unsigned char* p_;
    const unsigned char* end_;
};

}  // namespace archive_codec

// Packs entries into a chunk of at most `capacity` bytes.
class ChunkEncoder {
public:
    explicit ChunkEncoder(unsigned char* buf, std::size_t capacity) noexcept : buf_(buf), cap_(capacity) { reset(); }

    void reset() noexcept
    {
        prev_ = ArchiveEntry{};
        buf_[0] = archive_codec::kVersion;
        len_ = 1;
        entries_ = 0;
    }
    // Whether one more entry surely fits.
    bool has_room() const noexcept { return len_ + archive_codec::kMaxEntryBytes <= cap_; }

    void add(const ArchiveEntry& e) noexcept
    {
        using namespace archive_codec;
        if (entries_ == 0)
            first_pos_ = e.pos;
        last_pos_ = e.pos;
        // Written through a local pointer: stores through unsigned char may
        // alias any member, which would be reloaded after every byte.
        unsigned char* p = buf_ + len_;
        unsigned char* tag = p++;
        unsigned char t = 0;
        p = put_varint(p, zigzag(diff(e.pos, prev_.pos)));
        p = put_key(p, e.id, prev_.id, t, kIdDelta);
        if (!e.has_project)
            t |= kProjectNull;
        else if (prev_.has_project && e.project == prev_.project)
            t |= kSameProject;
        else
            p = put_key(p, e.project, prev_.project, t, kProjectDelta);
        if (!e.has_date)
            t |= kDateNull;
        else
            p = put_varint(p, zigzag(static_cast<std::int64_t>(e.date) - prev_.date));
        if (entries_ > 0 && e.phase == prev_.phase)
            t |= kSamePhase;
        else
            p = put_key(p, e.phase, prev_.phase, t, kPhaseDelta);
        *tag = t;
        len_ = static_cast<std::size_t>(p - buf_);
        // What the next entry is compared with: a NULL project or date keeps
        // the last value seen, as the decoder does.
        prev_.pos = e.pos;
        prev_.id = e.id;
        if (e.has_project) {
            prev_.project = e.project;
            prev_.has_project = true;
        }
        if (e.has_date)
            prev_.date = e.date;
        prev_.phase = e.phase;
        entries_++;
    }

    const unsigned char* data() const noexcept { return buf_; }
    std::size_t size() const noexcept { return len_; }
    std::uint32_t entries() const noexcept { return entries_; }
    std::uint64_t first_pos() const noexcept { return first_pos_; }
    std::uint64_t last_pos() const noexcept { return last_pos_; }

private:
    static unsigned char* put_varint(unsigned char* p, std::uint64_t v) noexcept
    {
        while (v >= 0x80) {
            *p++ = static_cast<unsigned char>(v | 0x80);
            v >>= 7;
        }
        *p++ = static_cast<unsigned char>(v);
        return p;
    }
    static unsigned char* put_key(unsigned char* p, const Key& k, const Key& prev, unsigned char& tag,
                                  unsigned char delta_bit) noexcept
    {
        if (k.hi == prev.hi) {
            tag |= delta_bit;
            return put_varint(p, archive_codec::zigzag(archive_codec::diff(k.lo, prev.lo)));
        }
        Key::store_be64(p, k.hi);
        Key::store_be64(p + 8, k.lo);
        return p + 16;
    }

    unsigned char* buf_;
    std::size_t cap_;
    std::size_t len_ = 0;
    std::uint32_t entries_ = 0;
    std::uint64_t first_pos_ = 0;
    std::uint64_t last_pos_ = 0;
    ArchiveEntry prev_;
};

// Reads a chunk back.  next() returns false at the end; ok() tells a clean
// end from a chunk that is cut short or of an unknown format.
class ChunkDecoder {
public:
    ChunkDecoder(const unsigned char* data, std::size_t len) noexcept : in_(data, data + len)
    {
        unsigned char version = 0;
        ok_ = in_.byte(version) && version == archive_codec::kVersion;
        if (!ok_)
            in_.skip_to_end();
    }

    bool next(ArchiveEntry& out) noexcept
    {
        using namespace archive_codec;
        unsigned char tag;
        if (!ok_ || !in_.byte(tag))
            return false;
        std::uint64_t v;
        if (tag & 0x80 || !in_.varint(v))
            return fail();
        prev_.pos += static_cast<std::uint64_t>(unzigzag(v));
        if (!in_.key(prev_.id, tag & kIdDelta))
            return fail();
        if (!(tag & kProjectNull) && !(tag & kSameProject)) {
            if (!in_.key(prev_.project, tag & kProjectDelta))
                return fail();
            prev_.has_project = true;
        } else if (!(tag & kProjectNull) && !prev_.has_project) {
            return fail();  // "same project" with none before
        }
        if (!(tag & kDateNull)) {
            if (!in_.varint(v))
                return fail();
            // A valid difference of two days is within 2^32; checked first,
            // the sum cannot overflow on a damaged chunk.
            const std::int64_t delta = unzigzag(v);
            if (delta < -(std::int64_t{1} << 32) || delta > (std::int64_t{1} << 32))
                return fail();
            const std::int64_t d = static_cast<std::int64_t>(prev_.date) + delta;
            if (d < INT32_MIN || d > INT32_MAX)
                return fail();
            prev_.date = static_cast<Day>(d);
        }
        if (tag & kSamePhase) {
            if (count_ == 0)
                return fail();
        } else if (!in_.key(prev_.phase, tag & kPhaseDelta)) {
            return fail();
        }
        out.pos = prev_.pos;
        out.id = prev_.id;
        out.has_project = !(tag & kProjectNull);
        out.project = out.has_project ? prev_.project : Key{};
        out.has_date = !(tag & kDateNull);
        out.date = out.has_date ? prev_.date : 0;
        out.phase = prev_.phase;
        count_++;
        return true;
    }

    bool ok() const noexcept { return ok_; }
    std::uint32_t count() const noexcept { return count_; }

private:
    bool fail() noexcept
    {
        ok_ = false;
        in_.skip_to_end();
        return false;
    }

    archive_codec::Reader in_;
    bool ok_ = false;
    std::uint32_t count_ = 0;
    ArchiveEntry prev_;
};

// Appends every entry of a chunk to `out`; false when the chunk is damaged
// (the entries before the damage are appended).
inline bool decode_chunk(const unsigned char* data, std::size_t len, std::vector<ArchiveEntry>& out)
{
    ChunkDecoder dec(data, len);
    ArchiveEntry e;
    while (dec.next(e))
        out.push_back(e);
    return dec.ok();
}

}  // namespace phasemig::core
