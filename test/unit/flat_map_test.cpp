// FlatKeyMap against std::unordered_map: random puts, finds and erases;
// OrderedKeyMap against std::map in any order of lookups.
#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/flat_map.hpp"
#include "core/ordered_map.hpp"
#include "test_support.hpp"

using phasemig::core::FlatKeyMap;
using phasemig::core::Key;
using phasemig::core::KeyHash;

TEST(FlatKeyMap, Basics)
{
    FlatKeyMap<int> m;
    EXPECT_TRUE(m.empty());
    EXPECT_EQ(m.find(Key::from_int(1)), nullptr);
    m.put(Key::from_int(1), 10);
    m.put(Key::from_int(2), 20);
    m.put(Key::from_int(1), 11);
    ASSERT_NE(m.find(Key::from_int(1)), nullptr);
    EXPECT_EQ(*m.find(Key::from_int(1)), 11);
    EXPECT_EQ(m.size(), 2u);
    EXPECT_TRUE(m.erase(Key::from_int(1)));
    EXPECT_FALSE(m.erase(Key::from_int(1)));
    EXPECT_EQ(m.find(Key::from_int(1)), nullptr);
    EXPECT_EQ(*m.find(Key::from_int(2)), 20);
    EXPECT_EQ(m.size(), 1u);
    m.clear();
    EXPECT_TRUE(m.empty());
}

// DelayedPuts ends with the same map as the same puts made directly, for
// any number of puts (fewer than its delay too) and repeated keys.
TEST(FlatKeyMap, DelayedPutsEqualDirectPuts)
{
    phasemig::test::Rng rng;
    for (int round = 0; round < 40; round++) {
        FlatKeyMap<std::uint64_t> direct, delayed;
        phasemig::core::DelayedPuts<std::uint64_t> puts(delayed);
        const int n = static_cast<int>(rng.range(0, round < 20 ? 12 : 5000));
        const std::int64_t universe = rng.range(1, 3000);
        for (int i = 0; i < n; i++) {
            const Key k = Key::from_int(rng.range(0, universe));
            const std::uint64_t v = rng.u64();
            direct.put(k, v);
            puts.put(k, v);
        }
        puts.finish();
        ASSERT_EQ(delayed.size(), direct.size()) << "seed=" << rng.seed << " round=" << round;
        direct.for_each([&](const Key& k, const std::uint64_t& v) {
            const std::uint64_t* got = delayed.find(k);
            ASSERT_NE(got, nullptr);
            EXPECT_EQ(*got, v);
        });
    }
}

TEST(FlatKeyMap, RandomAgainstUnorderedMap)
{
    phasemig::test::Rng rng;
    for (int round = 0; round < 20; round++) {
        FlatKeyMap<std::uint64_t> m;
        std::unordered_map<Key, std::uint64_t, KeyHash> model;
        // Few distinct keys per round, so probes collide and erases shift.
        const std::int64_t universe = rng.range(8, 4000);
        for (int op = 0; op < 20000; op++) {
            const Key k = rng.chance(0.5) ? Key::from_int(rng.range(0, universe))
                                          : Key{static_cast<std::uint64_t>(rng.range(0, 3)),
                                                static_cast<std::uint64_t>(rng.range(0, universe))};
            const int what = static_cast<int>(rng.range(0, 2));
            if (what == 0) {
                const std::uint64_t v = rng.u64();
                m.put(k, v);
                model[k] = v;
            } else if (what == 1) {
                const bool had = model.erase(k) > 0;
                ASSERT_EQ(m.erase(k), had) << "seed=" << rng.seed << " round=" << round << " op=" << op;
            } else {
                auto it = model.find(k);
                const std::uint64_t* got = m.find(k);
                ASSERT_EQ(got != nullptr, it != model.end()) << "seed=" << rng.seed << " round=" << round << " op=" << op;
                if (got)
                    ASSERT_EQ(*got, it->second);
            }
            ASSERT_EQ(m.size(), model.size());
        }
        std::size_t seen = 0;
        m.for_each([&](const Key& k, const std::uint64_t& v) {
            seen++;
            auto it = model.find(k);
            ASSERT_NE(it, model.end());
            EXPECT_EQ(it->second, v);
        });
        EXPECT_EQ(seen, model.size());
    }
}

TEST(OrderedKeyMap, AnyOrderGivesTheMapsAnswers)
{
    // In the order added, in part shuffled, with keys added twice and keys
    // never added: find_in_order answers as find, and as a std::map would.
    phasemig::test::Rng rng;
    for (int round = 0; round < 50; round++) {
        phasemig::core::OrderedKeyMap<std::uint32_t> m;
        std::map<Key, std::uint32_t> model;
        std::vector<Key> keys;
        const auto n = static_cast<std::size_t>(rng.range(0, 3000));
        for (std::size_t i = 0; i < n; i++) {
            const Key k = rng.chance(0.05) && !keys.empty() ? keys[static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(keys.size()) - 1))]
                                                           : Key::from_int(rng.range(0, 1 << 20));
            const auto v = static_cast<std::uint32_t>(rng.u64());
            m.put(k, v);
            model[k] = v;
            keys.push_back(k);
        }
        for (int i = 0; i < 20; i++)
            keys.insert(keys.begin() + static_cast<std::ptrdiff_t>(rng.range(0, static_cast<std::int64_t>(keys.size()))),
                        Key::from_int(-1 - rng.range(0, 1000)));  // never added
        if (rng.chance(0.5))
            std::shuffle(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 3), rng.gen);
        EXPECT_EQ(m.size(), model.size());
        std::size_t cursor = 0;
        for (const Key& k : keys) {
            auto it = model.find(k);
            const std::uint32_t* got = m.find_in_order(k, cursor);
            ASSERT_EQ(got != nullptr, it != model.end()) << "round " << round;
            if (got)
                ASSERT_EQ(*got, it->second) << "round " << round;
            ASSERT_EQ(m.find(k), got) << "round " << round;
        }
    }
}
