// Row identifiers and dates as the core sees them.
//
// The core never includes a PostgreSQL header.  The glue converts a uuid,
// bigint, integer or smallint id into a Key whose ordering equals the order
// PostgreSQL's default btree opclass gives the source type, so "then smallest
// id" means the same thing here as in SQL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

namespace phasemig::core {

// Days since 2000-01-01, the same representation as PostgreSQL's DateADT.
using Day = std::int32_t;

// An inclusive range of days.
struct Range {
    Day start;
    Day end;
    friend bool operator==(const Range& a, const Range& b) noexcept
    {
        return a.start == b.start && a.end == b.end;
    }
    friend bool operator!=(const Range& a, const Range& b) noexcept { return !(a == b); }
};

struct Key {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;

    // uuid: 16 bytes compared with memcmp by PostgreSQL, so big-endian words.
    // One load and a byte swap per word: every scanned uuid passes here.
    static Key from_uuid(const unsigned char* bytes) noexcept { return Key{load_be64(bytes), load_be64(bytes + 8)}; }
    void to_uuid(unsigned char* out) const noexcept
    {
        store_be64(out, hi);
        store_be64(out + 8, lo);
    }
    static std::uint64_t load_be64(const unsigned char* p) noexcept
    {
        std::uint64_t v;
        std::memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
    }
    static void store_be64(unsigned char* p, std::uint64_t v) noexcept
    {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        std::memcpy(p, &v, sizeof v);
    }
    // Signed integers: flipping the sign bit makes unsigned order equal signed order.
    static Key from_int(std::int64_t v) noexcept
    {
        return Key{0, static_cast<std::uint64_t>(v) ^ (std::uint64_t{1} << 63)};
    }
    std::int64_t to_int() const noexcept
    {
        return static_cast<std::int64_t>(lo ^ (std::uint64_t{1} << 63));
    }

    friend bool operator==(const Key& a, const Key& b) noexcept { return a.hi == b.hi && a.lo == b.lo; }
    friend bool operator!=(const Key& a, const Key& b) noexcept { return !(a == b); }
    friend bool operator<(const Key& a, const Key& b) noexcept
    {
        return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
    }
    friend bool operator>(const Key& a, const Key& b) noexcept { return b < a; }
    friend bool operator<=(const Key& a, const Key& b) noexcept { return !(b < a); }
    friend bool operator>=(const Key& a, const Key& b) noexcept { return !(a < b); }
};

// Integer ids are often sequential, so mix both words (splitmix64 finaliser).
struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept
    {
        std::uint64_t x = k.lo ^ (k.hi * 0x9e3779b97f4a7c15ULL);
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 31;
        return static_cast<std::size_t>(x);
    }
};

// A set of keys as one bit per hash (a Bloom filter with one hash
// function): test() is true for every key set, and for about one other
// key in `bits_per_key`.  For the quick looks that tell which projects may
// have been met twice without a hash table of them.
// The quick looks' verdict: more keys met again than this, among n, and the
// keys came in no order by project (a shuffled order shows that in most
// records), where one sort of all is cheaper than gathering the repeats.
constexpr std::size_t repeats_limit(std::size_t n) noexcept { return n / 8 + 16; }

class KeyBits {
public:
    KeyBits(std::size_t keys, std::size_t bits_per_key)
    {
        std::size_t bits = 64;
        while (bits < keys * bits_per_key)
            bits <<= 1;
        words_.assign(bits / 64, 0);
        mask_ = bits - 1;
    }
    bool test(const Key& k) const noexcept
    {
        const std::size_t h = KeyHash{}(k) & mask_;
        return (words_[h >> 6] >> (h & 63)) & 1;
    }
    // Sets the key's bit; returns whether it was set already.
    bool test_and_set(const Key& k) noexcept
    {
        const std::size_t h = KeyHash{}(k) & mask_;
        const std::uint64_t bit = std::uint64_t{1} << (h & 63);
        const bool was = (words_[h >> 6] & bit) != 0;
        words_[h >> 6] |= bit;
        return was;
    }

private:
    std::vector<std::uint64_t> words_;
    std::size_t mask_ = 0;
};

}  // namespace phasemig::core
