// Shared helpers for the core unit tests: reproducible random generators.
//
// Every randomized test draws from its own std::mt19937_64 with a fixed seed
// (derived from the test name, or PHASEMIG_TEST_SEED when set), and its
// failure messages carry that seed and the case number, so a failure is
// replayed by running the same test again (with the same PHASEMIG_TEST_SEED).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "core/key.hpp"

namespace phasemig::test {

// FNV-1a of the test name: a stable, distinct default seed for every test.
inline std::uint64_t default_seed()
{
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "phasemig";
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : name) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

inline std::uint64_t test_seed()
{
    if (const char* env = std::getenv("PHASEMIG_TEST_SEED"); env && *env)
        return std::strtoull(env, nullptr, 0);
    return default_seed();
}

struct Rng {
    std::uint64_t seed;
    std::mt19937_64 gen;

    Rng() : seed(test_seed()), gen(seed) {}
    explicit Rng(std::uint64_t s) : seed(s), gen(s) {}

    // Uniform in [lo, hi], both inclusive.
    std::int64_t range(std::int64_t lo, std::int64_t hi)
    {
        return std::uniform_int_distribution<std::int64_t>(lo, hi)(gen);
    }
    std::uint64_t u64() { return gen(); }
    bool chance(double p) { return std::bernoulli_distribution(p)(gen); }

    // A random id: mostly uuid-like, sometimes a small integer id.
    core::Key key()
    {
        if (chance(0.2))
            return core::Key::from_int(range(-1000000, 1000000000));
        return core::Key{u64(), u64()};
    }
};

// Prefix for failure messages: "seed=... case=...".
inline std::string where(const Rng& rng, std::uint64_t case_no)
{
    return "seed=" + std::to_string(rng.seed) + " (rerun with PHASEMIG_TEST_SEED=" + std::to_string(rng.seed) +
           ") case=" + std::to_string(case_no);
}

inline std::string key_str(const core::Key& k)
{
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(k.hi),
                  static_cast<unsigned long long>(k.lo));
    return buf;
}

}  // namespace phasemig::test

namespace phasemig::core {
// Readable Keys and Ranges in gtest failure output.
inline void PrintTo(const Key& k, std::ostream* os) { *os << phasemig::test::key_str(k); }
inline void PrintTo(const Range& r, std::ostream* os) { *os << "[" << r.start << ", " << r.end << "]"; }
}  // namespace phasemig::core
