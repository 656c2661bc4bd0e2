// The phase archive's chunk format: what a step drops from each phase
// (phase_type at the upgrade; name, dates and description at the downgrade)
// with the phase's budgets, packed into one byte string per row of
// phasemig_phase_archive.
//
// A heap row per phase (ids as text, about 160 bytes with header) made the
// phase archive a tenth of an upgrade.  Packed, an entry is its phase id,
// its project unless it is the previous entry's, and its fields.  Ids are
// 16-byte keys (core/key.hpp), stored whole or, when the high word is the
// previous one's (every integer id), as the difference of the low word.
// Texts and budgets are stored as their bytes: a budget is the numeric's own
// binary form, which the SQL side rebuilds; nothing here is lossy.
//
// Chunk: a version byte, a byte of key kinds (which ids are integers: how
// the SQL view prints them), then entries.  Each chunk decodes on its own.
//
// Entry: a varint of flags, then
//   phase id          key (see above)
//   project           absent when NULL or equal to the previous entry's
//   phase_type, name, description
//                     each, when present, a varint length and the bytes
//   start, end        each, when present, a zigzag varint of the difference
//                     from the previous entry's start
//   capital, expense, total
//                     each, when present, a varint length and the bytes
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/archive_codec.hpp"
#include "core/key.hpp"

namespace phasemig::core {

// Bytes that are absent (NULL) when `data` is null.  Views into the caller's
// memory or into the chunk being read: valid as long as that is.
struct Bytes {
    const unsigned char* data = nullptr;
    std::uint32_t len = 0;
    bool present() const noexcept { return data != nullptr; }
};

struct PhaseArchiveEntry {
    Key phase;
    bool has_project = false;
    Key project;
    Bytes phase_type, name, description;
    bool has_start = false, has_end = false;
    Day start = 0, end = 0;
    Bytes capital, expense, total;
};

namespace phase_codec {

constexpr unsigned char kVersion = 1;
// Key kinds (second byte of a chunk).
constexpr unsigned char kPhaseIdInteger = 1 << 0;
constexpr unsigned char kProjectIdInteger = 1 << 1;

// Entry flags.
constexpr std::uint32_t kProject = 1u << 0;
constexpr std::uint32_t kSameProject = 1u << 1;
constexpr std::uint32_t kPhaseDelta = 1u << 2;
constexpr std::uint32_t kProjectDelta = 1u << 3;
constexpr std::uint32_t kType = 1u << 4;
constexpr std::uint32_t kName = 1u << 5;
constexpr std::uint32_t kDescription = 1u << 6;
constexpr std::uint32_t kStart = 1u << 7;
constexpr std::uint32_t kEnd = 1u << 8;
constexpr std::uint32_t kCapital = 1u << 9;
constexpr std::uint32_t kExpense = 1u << 10;
constexpr std::uint32_t kTotal = 1u << 11;
constexpr std::uint32_t kAllFlags = (1u << 12) - 1;

}  // namespace phase_codec

// Packs entries into a growing chunk; the caller ends the chunk (take the
// bytes, then reset()) when size() has reached what it wants per row.
class PhaseChunkEncoder {
public:
    explicit PhaseChunkEncoder(unsigned char kinds) : kinds_(kinds) { reset(); }

    void reset()
    {
        buf_.clear();
        buf_.push_back(phase_codec::kVersion);
        buf_.push_back(kinds_);
        entries_ = 0;
        prev_phase_ = Key{};
        prev_project_ = Key{};
        has_prev_project_ = false;
        prev_start_ = 0;
    }

    void add(const PhaseArchiveEntry& e)
    {
        using namespace phase_codec;
        std::uint32_t flags = 0;
        if (e.phase.hi == prev_phase_.hi)
            flags |= kPhaseDelta;
        if (e.has_project) {
            flags |= kProject;
            if (has_prev_project_ && e.project == prev_project_)
                flags |= kSameProject;
            else if (e.project.hi == prev_project_.hi)
                flags |= kProjectDelta;
        }
        flags |= (e.phase_type.present() ? kType : 0) | (e.name.present() ? kName : 0) |
                 (e.description.present() ? kDescription : 0) | (e.has_start ? kStart : 0) |
                 (e.has_end ? kEnd : 0) | (e.capital.present() ? kCapital : 0) |
                 (e.expense.present() ? kExpense : 0) | (e.total.present() ? kTotal : 0);
        put_varint(flags);
        put_key(e.phase, prev_phase_, flags & kPhaseDelta);
        prev_phase_ = e.phase;
        if (e.has_project && !(flags & kSameProject)) {
            put_key(e.project, prev_project_, flags & kProjectDelta);
            prev_project_ = e.project;
            has_prev_project_ = true;
        }
        for (const Bytes* b : {&e.phase_type, &e.name, &e.description})
            put_bytes(*b);
        if (e.has_start)
            put_varint(archive_codec::zigzag(static_cast<std::int64_t>(e.start) - prev_start_));
        if (e.has_end)
            put_varint(archive_codec::zigzag(static_cast<std::int64_t>(e.end) - prev_start_));
        if (e.has_start)
            prev_start_ = e.start;
        for (const Bytes* b : {&e.capital, &e.expense, &e.total})
            put_bytes(*b);
        entries_++;
    }

    const unsigned char* data() const noexcept { return buf_.data(); }
    std::size_t size() const noexcept { return buf_.size(); }
    std::uint32_t entries() const noexcept { return entries_; }

private:
    void put_varint(std::uint64_t v)
    {
        while (v >= 0x80) {
            buf_.push_back(static_cast<unsigned char>(v | 0x80));
            v >>= 7;
        }
        buf_.push_back(static_cast<unsigned char>(v));
    }
    void put_key(const Key& k, const Key& prev, bool delta)
    {
        if (delta) {
            put_varint(archive_codec::zigzag(archive_codec::diff(k.lo, prev.lo)));
            return;
        }
        for (int i = 0; i < 8; i++)
            buf_.push_back(static_cast<unsigned char>(k.hi >> (56 - 8 * i)));
        for (int i = 0; i < 8; i++)
            buf_.push_back(static_cast<unsigned char>(k.lo >> (56 - 8 * i)));
    }
    void put_bytes(const Bytes& b)
    {
        if (!b.present())
            return;
        put_varint(b.len);
        buf_.insert(buf_.end(), b.data, b.data + b.len);
    }

    unsigned char kinds_;
    std::vector<unsigned char> buf_;
    std::uint32_t entries_ = 0;
    Key prev_phase_;
    Key prev_project_;
    bool has_prev_project_ = false;
    Day prev_start_ = 0;
};

// Reads a chunk back; the entries' bytes point into `data`.  next() returns
// false at the end; ok() tells a clean end from a damaged chunk.
class PhaseChunkDecoder {
public:
    PhaseChunkDecoder(const unsigned char* data, std::size_t len) noexcept : in_(data, data + len)
    {
        unsigned char version = 0, kinds = 0;
        ok_ = in_.byte(version) && version == phase_codec::kVersion && in_.byte(kinds) &&
              (kinds & ~(phase_codec::kPhaseIdInteger | phase_codec::kProjectIdInteger)) == 0;
        kinds_ = ok_ ? kinds : 0;
        if (!ok_)
            in_.skip_to_end();
    }

    unsigned char kinds() const noexcept { return kinds_; }

    bool next(PhaseArchiveEntry& out) noexcept
    {
        using namespace phase_codec;
        if (!ok_ || in_.at_end())
            return false;
        std::uint64_t flags;
        if (!in_.varint(flags) || (flags & ~static_cast<std::uint64_t>(kAllFlags)))
            return fail();
        if (!in_.key(prev_phase_, flags & kPhaseDelta))
            return fail();
        out.phase = prev_phase_;
        out.has_project = flags & kProject;
        if (out.has_project) {
            if (flags & kSameProject) {
                if (!has_prev_project_)
                    return fail();
            } else if (!in_.key(prev_project_, flags & kProjectDelta)) {
                return fail();
            }
            has_prev_project_ = true;
            out.project = prev_project_;
        } else {
            out.project = Key{};
        }
        if (!get_bytes(flags & kType, out.phase_type) || !get_bytes(flags & kName, out.name) ||
            !get_bytes(flags & kDescription, out.description))
            return fail();
        out.has_start = flags & kStart;
        out.has_end = flags & kEnd;
        out.start = out.end = 0;
        if ((out.has_start && !get_day(out.start)) || (out.has_end && !get_day(out.end)))
            return fail();
        if (out.has_start)
            prev_start_ = out.start;
        if (!get_bytes(flags & kCapital, out.capital) || !get_bytes(flags & kExpense, out.expense) ||
            !get_bytes(flags & kTotal, out.total))
            return fail();
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
    bool get_bytes(bool present, Bytes& b) noexcept
    {
        b = Bytes{};
        if (!present)
            return true;
        std::uint64_t len;
        if (!in_.varint(len) || len > UINT32_MAX || !in_.bytes(len, b.data))
            return false;
        b.len = static_cast<std::uint32_t>(len);
        return true;
    }
    bool get_day(Day& d) noexcept
    {
        std::uint64_t v;
        if (!in_.varint(v))
            return false;
        // A valid difference of two days is within 2^32; checked first, the
        // sum cannot overflow on a damaged chunk.
        const std::int64_t delta = archive_codec::unzigzag(v);
        if (delta < -(std::int64_t{1} << 32) || delta > (std::int64_t{1} << 32))
            return false;
        const std::int64_t x = static_cast<std::int64_t>(prev_start_) + delta;
        if (x < INT32_MIN || x > INT32_MAX)
            return false;
        d = static_cast<Day>(x);
        return true;
    }

    archive_codec::Reader in_;
    bool ok_ = false;
    unsigned char kinds_ = 0;
    std::uint32_t count_ = 0;
    Key prev_phase_;
    Key prev_project_;
    bool has_prev_project_ = false;
    Day prev_start_ = 0;
};

}  // namespace phasemig::core
