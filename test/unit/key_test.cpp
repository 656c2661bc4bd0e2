// Key: uuid and integer ids mapped to a 128-bit key whose order equals the
// order PostgreSQL's default btree opclass gives the source type.
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "core/key.hpp"
#include "test_support.hpp"

using phasemig::core::Key;
using phasemig::core::KeyHash;
using phasemig::test::Rng;
using phasemig::test::where;

namespace {

using Uuid = std::array<unsigned char, 16>;

int sign(int v) { return (v > 0) - (v < 0); }

// -1, 0, 1 from every comparison operator at once; fails if they disagree.
int key_cmp(const Key& a, const Key& b)
{
    const bool lt = a < b, gt = a > b, eq = a == b;
    EXPECT_EQ(lt + gt + eq, 1) << "exactly one of <, >, == must hold";
    EXPECT_EQ(a != b, !eq);
    EXPECT_EQ(a <= b, lt || eq);
    EXPECT_EQ(a >= b, gt || eq);
    EXPECT_EQ(b < a, gt);
    return lt ? -1 : (gt ? 1 : 0);
}

Uuid random_uuid(Rng& rng)
{
    Uuid u;
    for (auto& b : u)
        b = static_cast<unsigned char>(rng.range(0, 255));
    return u;
}

// Pairs that share a random-length prefix, so every byte position (and the
// hi/lo word boundary) decides some comparison; bytes >= 0x80 are frequent.
std::pair<Uuid, Uuid> related_uuids(Rng& rng)
{
    Uuid a = random_uuid(rng), b = a;
    const auto prefix = static_cast<std::size_t>(rng.range(0, 16));
    for (std::size_t i = prefix; i < 16; i++)
        b[i] = static_cast<unsigned char>(rng.range(0, 255));
    if (prefix < 16 && rng.chance(0.3))  // differ only by high bit
        b[prefix] = static_cast<unsigned char>(a[prefix] ^ 0x80);
    return {a, b};
}

}  // namespace

TEST(Key, DefaultIsZero)
{
    Key k;
    EXPECT_EQ(k.hi, 0u);
    EXPECT_EQ(k.lo, 0u);
    EXPECT_EQ(k, (Key{0, 0}));
}

TEST(Key, UuidBigEndianLayout)
{
    const Uuid u{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    const Key k = Key::from_uuid(u.data());
    EXPECT_EQ(k.hi, 0x0123456789abcdefULL);
    EXPECT_EQ(k.lo, 0xfedcba9876543210ULL);
    Uuid back{};
    k.to_uuid(back.data());
    EXPECT_EQ(back, u);
}

TEST(Key, UuidExtremes)
{
    Uuid zero{}, ones;
    ones.fill(0xff);
    const Key kz = Key::from_uuid(zero.data()), ko = Key::from_uuid(ones.data());
    EXPECT_EQ(kz, (Key{0, 0}));
    EXPECT_EQ(ko, (Key{~0ULL, ~0ULL}));
    EXPECT_LT(kz, ko);
    // 80000000-... sorts after 7fffffff-... (memcmp is unsigned).
    Uuid hi_bit{}, below{};
    hi_bit[0] = 0x80;
    below.fill(0xff);
    below[0] = 0x7f;
    EXPECT_LT(Key::from_uuid(below.data()), Key::from_uuid(hi_bit.data()));
    // Byte 8 (first of the low word) only matters when bytes 0..7 tie.
    Uuid a{}, b{};
    a[7] = 1;
    b[8] = 0xff;
    EXPECT_LT(Key::from_uuid(b.data()), Key::from_uuid(a.data()));
}

TEST(Key, UuidRoundTripRandom)
{
    Rng rng;
    for (std::uint64_t c = 0; c < 20000; c++) {
        const Uuid u = random_uuid(rng);
        const Key k = Key::from_uuid(u.data());
        Uuid back{};
        k.to_uuid(back.data());
        ASSERT_EQ(back, u) << where(rng, c);
        ASSERT_EQ(Key::from_uuid(back.data()), k) << where(rng, c);
        // And from the Key side.
        const Key r{rng.u64(), rng.u64()};
        r.to_uuid(back.data());
        ASSERT_EQ(Key::from_uuid(back.data()), r) << where(rng, c);
    }
}

TEST(Key, UuidOrderEqualsMemcmpRandom)
{
    Rng rng;
    for (std::uint64_t c = 0; c < 50000; c++) {
        auto [a, b] = related_uuids(rng);
        const int expected = sign(std::memcmp(a.data(), b.data(), 16));
        const int got = key_cmp(Key::from_uuid(a.data()), Key::from_uuid(b.data()));
        ASSERT_EQ(got, expected) << where(rng, c);
    }
}

TEST(Key, UuidSortEqualsMemcmpSort)
{
    Rng rng;
    std::vector<Uuid> uuids;
    for (int i = 0; i < 5000; i++) {
        auto [a, b] = related_uuids(rng);
        uuids.push_back(a);
        uuids.push_back(b);
    }
    std::vector<Key> keys;
    for (const auto& u : uuids)
        keys.push_back(Key::from_uuid(u.data()));
    std::sort(uuids.begin(), uuids.end(),
              [](const Uuid& x, const Uuid& y) { return std::memcmp(x.data(), y.data(), 16) < 0; });
    std::sort(keys.begin(), keys.end());
    ASSERT_EQ(keys.size(), uuids.size());
    for (std::size_t i = 0; i < keys.size(); i++)
        ASSERT_EQ(keys[i], Key::from_uuid(uuids[i].data())) << "seed=" << rng.seed << " index " << i;
}

TEST(Key, IntRoundTripEdges)
{
    const std::int64_t values[] = {std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::min() + 1,
                                   std::numeric_limits<std::int32_t>::min(),
                                   std::numeric_limits<std::int16_t>::min(),
                                   -2,
                                   -1,
                                   0,
                                   1,
                                   2,
                                   std::numeric_limits<std::int16_t>::max(),
                                   std::numeric_limits<std::int32_t>::max(),
                                   std::numeric_limits<std::int64_t>::max() - 1,
                                   std::numeric_limits<std::int64_t>::max()};
    for (std::int64_t v : values) {
        const Key k = Key::from_int(v);
        EXPECT_EQ(k.to_int(), v);
        EXPECT_EQ(k.hi, 0u) << v;
    }
    // Every pair of edge values orders as signed integers.
    for (std::int64_t a : values)
        for (std::int64_t b : values)
            EXPECT_EQ(key_cmp(Key::from_int(a), Key::from_int(b)), (a > b) - (a < b)) << a << " vs " << b;
    EXPECT_LT(Key::from_int(-1), Key::from_int(0));
    EXPECT_LT(Key::from_int(std::numeric_limits<std::int64_t>::min()), Key::from_int(-1));
    EXPECT_LT(Key::from_int(0), Key::from_int(std::numeric_limits<std::int64_t>::max()));
}

TEST(Key, IntOrderEqualsSignedOrderRandom)
{
    Rng rng;
    auto draw = [&]() -> std::int64_t {
        switch (rng.range(0, 3)) {
        case 0: return static_cast<std::int64_t>(rng.u64());  // full range, any sign
        case 1: return rng.range(-5, 5);                      // around zero
        case 2: return rng.chance(0.5) ? std::numeric_limits<std::int64_t>::min() + rng.range(0, 3)
                                       : std::numeric_limits<std::int64_t>::max() - rng.range(0, 3);
        default: return rng.range(std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max());
        }
    };
    for (std::uint64_t c = 0; c < 50000; c++) {
        const std::int64_t a = draw(), b = draw();
        const Key ka = Key::from_int(a), kb = Key::from_int(b);
        ASSERT_EQ(ka.to_int(), a) << where(rng, c);
        ASSERT_EQ(kb.to_int(), b) << where(rng, c);
        ASSERT_EQ(key_cmp(ka, kb), (a > b) - (a < b)) << where(rng, c) << " a=" << a << " b=" << b;
    }
}

TEST(Key, IntSortEqualsSignedSort)
{
    Rng rng;
    std::vector<std::int64_t> values;
    for (int i = 0; i < 10000; i++)
        values.push_back(rng.chance(0.5) ? static_cast<std::int64_t>(rng.u64()) : rng.range(-100, 100));
    std::vector<Key> keys;
    for (auto v : values)
        keys.push_back(Key::from_int(v));
    std::sort(values.begin(), values.end());
    std::sort(keys.begin(), keys.end());
    for (std::size_t i = 0; i < keys.size(); i++)
        ASSERT_EQ(keys[i].to_int(), values[i]) << "seed=" << rng.seed << " index " << i;
}

TEST(Key, HashEqualKeysEqualHashes)
{
    KeyHash h;
    Rng rng;
    for (int i = 0; i < 1000; i++) {
        const Key a{rng.u64(), rng.u64()};
        const Key b = a;
        EXPECT_EQ(h(a), h(b));
    }
    // Both words take part.
    EXPECT_NE(h(Key{0, 1}), h(Key{1, 1}));
    EXPECT_NE(h(Key{0, 1}), h(Key{0, 2}));
    EXPECT_NE(h(Key{1, 0}), h(Key{0, 1}));
}

TEST(Key, HashSpreadsSequentialIntegers)
{
    // Sequential integer ids (the common bigint case) must not collide and
    // must spread over the low bits that unordered_map buckets use.
    KeyHash h;
    constexpr int kN = 1 << 18;
    constexpr int kBuckets = 1024;
    std::unordered_set<std::size_t> seen;
    seen.reserve(kN);
    std::vector<int> bucket(kBuckets, 0);
    for (int i = 0; i < kN; i++) {
        const std::size_t v = h(Key::from_int(i));
        seen.insert(v);
        bucket[v % kBuckets]++;
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kN)) << "collisions among sequential ids";
    const int mean = kN / kBuckets;  // 256
    const auto [mn, mx] = std::minmax_element(bucket.begin(), bucket.end());
    EXPECT_GT(*mn, mean / 2);
    EXPECT_LT(*mx, mean * 2);

    // Sequential uuids differing in the hi word only (time-ordered uuids).
    std::fill(bucket.begin(), bucket.end(), 0);
    for (int i = 0; i < kN; i++)
        bucket[h(Key{static_cast<std::uint64_t>(i) << 16, 0x1234}) % kBuckets]++;
    const auto [mn2, mx2] = std::minmax_element(bucket.begin(), bucket.end());
    EXPECT_GT(*mn2, mean / 2);
    EXPECT_LT(*mx2, mean * 2);
}

TEST(Key, UsableInUnorderedSet)
{
    Rng rng;
    std::unordered_set<Key, KeyHash> set;
    std::vector<Key> keys;
    for (int i = 0; i < 5000; i++) {
        keys.push_back(rng.key());
        set.insert(keys.back());
    }
    for (const Key& k : keys)
        EXPECT_EQ(set.count(k), 1u);
    EXPECT_EQ(set.count(Key{0xdeadbeef, 0xfeedface}), 0u);
}

TEST(KeyBits, EverySetKeyTestsTrueAndFewOthersDo)
{
    Rng rng;
    const std::size_t n = 20000;
    phasemig::core::KeyBits bits(n, 16);
    std::unordered_set<Key, KeyHash> held;
    std::size_t was_set = 0;
    for (std::size_t i = 0; i < n; i++) {
        const Key k = rng.key();
        held.insert(k);
        was_set += bits.test_and_set(k);
        EXPECT_TRUE(bits.test(k));
        EXPECT_TRUE(bits.test_and_set(k));  // set now
    }
    // Earlier keys' bits collide with about one new key in 16 at most.
    EXPECT_LT(was_set, n / 16);
    std::size_t others = 0, tried = 0;
    for (int i = 0; i < 100000; i++) {
        const Key k = rng.key();
        if (held.count(k))
            continue;
        tried++;
        others += bits.test(k);
    }
    EXPECT_GT(others, 0u);
    EXPECT_LT(others, tried / 8);
}
