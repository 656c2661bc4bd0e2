// The phase archive's chunk format: every entry comes back exactly as written
// (integer and uuid ids, NULL projects, projects met again later, absent,
// empty, long and binary texts and budgets, extreme and reversed dates), with
// the chunk's key kinds; damaged input (cut short, unknown version, kinds or
// flags, "same project" with none before, dates out of range, random bytes)
// is reported, never read past its end (the sanitizer build checks that); and
// an upgrade's entries stay small.
#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/phase_archive_codec.hpp"
#include "test_support.hpp"

using phasemig::core::Bytes;
using phasemig::core::Day;
using phasemig::core::Key;
using phasemig::core::PhaseArchiveEntry;
using phasemig::core::PhaseChunkDecoder;
using phasemig::core::PhaseChunkEncoder;
namespace phase_codec = phasemig::core::phase_codec;

namespace {

// Owns the bytes the entries' Bytes point at (a deque never moves them).
struct Store {
    std::deque<std::string> strings;
    Bytes keep(std::string s)
    {
        strings.push_back(std::move(s));
        const std::string& k = strings.back();
        return Bytes{reinterpret_cast<const unsigned char*>(k.data()), static_cast<std::uint32_t>(k.size())};
    }
};

// A copy of `len` bytes in an allocation of exactly that size, so that a read
// past the end is one ASan reports.
struct Exact {
    std::size_t len;
    std::unique_ptr<unsigned char[]> buf;
    Exact(const unsigned char* data, std::size_t n) : len(n), buf(new unsigned char[n])
    {
        if (n > 0)
            std::memcpy(buf.get(), data, n);
    }
    const unsigned char* data() const { return buf.get(); }
};

::testing::AssertionResult same_bytes(const char* what, const Bytes& a, const Bytes& b)
{
    if (a.present() != b.present())
        return ::testing::AssertionFailure() << what << ": present " << a.present() << " vs " << b.present();
    if (!a.present())
        return ::testing::AssertionSuccess();
    if (a.len != b.len)
        return ::testing::AssertionFailure() << what << ": length " << a.len << " vs " << b.len;
    if (std::memcmp(a.data, b.data, a.len) != 0)
        return ::testing::AssertionFailure() << what << ": bytes differ";
    return ::testing::AssertionSuccess();
}

// Fields that are absent are not compared (what an absent field holds is not
// part of the format).
::testing::AssertionResult same(const PhaseArchiveEntry& a, const PhaseArchiveEntry& b)
{
    using phasemig::test::key_str;
    if (a.phase != b.phase)
        return ::testing::AssertionFailure() << "phase " << key_str(a.phase) << " vs " << key_str(b.phase);
    if (a.has_project != b.has_project)
        return ::testing::AssertionFailure() << "has_project " << a.has_project << " vs " << b.has_project;
    if (a.has_project && a.project != b.project)
        return ::testing::AssertionFailure() << "project " << key_str(a.project) << " vs " << key_str(b.project);
    if (a.has_start != b.has_start || (a.has_start && a.start != b.start))
        return ::testing::AssertionFailure()
               << "start " << a.has_start << "/" << a.start << " vs " << b.has_start << "/" << b.start;
    if (a.has_end != b.has_end || (a.has_end && a.end != b.end))
        return ::testing::AssertionFailure()
               << "end " << a.has_end << "/" << a.end << " vs " << b.has_end << "/" << b.end;
    for (auto r : {same_bytes("phase_type", a.phase_type, b.phase_type), same_bytes("name", a.name, b.name),
                   same_bytes("description", a.description, b.description), same_bytes("capital", a.capital, b.capital),
                   same_bytes("expense", a.expense, b.expense), same_bytes("total", a.total, b.total)})
        if (!r)
            return r;
    return ::testing::AssertionSuccess();
}

// Whether every Bytes of `e` lies inside [data, data + len).
bool inside(const PhaseArchiveEntry& e, const unsigned char* data, std::size_t len)
{
    for (const Bytes* b : {&e.phase_type, &e.name, &e.description, &e.capital, &e.expense, &e.total})
        if (b->present() && (b->data < data || b->data + b->len > data + len))
            return false;
    return true;
}

// Random bytes, with 0x00 and 0xff frequent.
std::string random_bytes(phasemig::test::Rng& rng, std::size_t n)
{
    std::string s(n, '\0');
    for (auto& c : s) {
        const auto r = rng.range(0, 3);
        c = static_cast<char>(r == 0 ? 0x00 : r == 1 ? 0xff : static_cast<unsigned char>(rng.u64()));
    }
    return s;
}

// A text: absent, present and empty, long (several kB), or short.
Bytes random_text(phasemig::test::Rng& rng, Store& store, double p_present)
{
    if (!rng.chance(p_present))
        return Bytes{};
    if (rng.chance(0.15))
        return store.keep(std::string());
    if (rng.chance(0.03))
        return store.keep(random_bytes(rng, static_cast<std::size_t>(rng.range(2000, 9000))));
    return store.keep(random_bytes(rng, static_cast<std::size_t>(rng.range(1, 60))));
}

// A budget: absent, or a short byte string (a numeric's binary form), empty too.
Bytes random_budget(phasemig::test::Rng& rng, Store& store)
{
    if (!rng.chance(0.6))
        return Bytes{};
    return store.keep(random_bytes(rng, static_cast<std::size_t>(rng.range(0, 14))));
}

Day random_day(phasemig::test::Rng& rng, Day near)
{
    switch (rng.range(0, 9)) {
        case 0: {
            const Day extremes[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX - 1, INT32_MAX};
            return extremes[rng.range(0, 3)];
        }
        case 1: return static_cast<Day>(rng.range(INT32_MIN, INT32_MAX));
        case 2:
        case 3: return static_cast<Day>(rng.range(8000, 12000));
        default:
            return static_cast<Day>(std::min<std::int64_t>(
                INT32_MAX, std::max<std::int64_t>(INT32_MIN, static_cast<std::int64_t>(near) + rng.range(-60, 60))));
    }
}

// Entries shaped like a scan of the phase table: the 1 to 4 phases of a
// project together, a project sometimes met again later, some phases
// without a project; ids integers (mostly consecutive) or uuids (sometimes
// sharing the previous high word); every field sometimes absent.
std::vector<PhaseArchiveEntry> table_like(phasemig::test::Rng& rng, Store& store, std::size_t n, bool int_phases,
                                          bool int_projects)
{
    std::vector<PhaseArchiveEntry> out;
    std::vector<Key> projects;
    std::int64_t next_phase = rng.range(-5, 1000000);
    std::int64_t next_project = rng.range(-5, 100000);
    Key prev_phase;
    bool has_project = false;
    Key project;
    std::int64_t left = 0;
    Day near = static_cast<Day>(rng.range(8000, 12000));
    auto extreme_key = [&] {
        return Key{rng.chance(0.5) ? 0 : ~std::uint64_t{0}, rng.chance(0.5) ? 0 : ~std::uint64_t{0}};
    };
    for (std::size_t i = 0; i < n; i++) {
        if (left == 0) {
            left = rng.range(1, 4);
            has_project = !rng.chance(0.07);
            if (!has_project) {
                project = rng.key();  // ignored: the entry has no project
            } else if (!projects.empty() && rng.chance(0.1)) {
                project =
                    projects[static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(projects.size()) - 1))];
            } else {
                if (rng.chance(0.01))
                    project = extreme_key();
                else if (int_projects)
                    project = Key::from_int(rng.chance(0.03) ? static_cast<std::int64_t>(rng.u64()) : next_project++);
                else
                    project = Key{rng.u64(), rng.u64()};
                projects.push_back(project);
            }
        }
        left--;
        PhaseArchiveEntry e;
        if (rng.chance(0.01))
            e.phase = extreme_key();
        else if (int_phases)
            e.phase = Key::from_int(rng.chance(0.03) ? static_cast<std::int64_t>(rng.u64()) : next_phase++);
        else if (rng.chance(0.1))
            e.phase = Key{prev_phase.hi, rng.u64()};
        else
            e.phase = Key{rng.u64(), rng.u64()};
        prev_phase = e.phase;
        e.has_project = has_project;
        e.project = project;
        e.phase_type = random_text(rng, store, 0.7);
        e.name = random_text(rng, store, 0.5);
        e.description = random_text(rng, store, 0.4);
        e.has_start = rng.chance(0.7);
        e.has_end = rng.chance(0.7);
        e.start = random_day(rng, near);  // compared only when present
        if (e.has_start)
            near = e.start;
        e.end = rng.chance(0.2) ? random_day(rng, e.start)
                                : static_cast<Day>(std::min<std::int64_t>(
                                      INT32_MAX, static_cast<std::int64_t>(e.start) + rng.range(0, 400)));
        e.capital = random_budget(rng, store);
        e.expense = random_budget(rng, store);
        e.total = random_budget(rng, store);
        out.push_back(e);
    }
    return out;
}

struct Chunk {
    std::vector<unsigned char> bytes;
    std::uint32_t entries = 0;
    std::size_t first = 0;  // index of its first entry in the input
};

// Packs entries into chunks, ending one as soon as it has reached `cap` bytes.
std::vector<Chunk> pack(const std::vector<PhaseArchiveEntry>& in, unsigned char kinds, std::size_t cap)
{
    std::vector<Chunk> chunks;
    PhaseChunkEncoder enc(kinds);
    std::size_t first = 0;
    auto flush = [&](std::size_t next) {
        if (enc.entries() > 0)
            chunks.push_back(
                Chunk{std::vector<unsigned char>(enc.data(), enc.data() + enc.size()), enc.entries(), first});
        enc.reset();
        EXPECT_EQ(enc.entries(), 0u);
        first = next;
    };
    for (std::size_t i = 0; i < in.size(); i++) {
        enc.add(in[i]);
        if (enc.size() >= cap)
            flush(i + 1);
    }
    flush(in.size());
    return chunks;
}

// Decodes `len` bytes (copied to an exact allocation) and checks each entry
// against in[first...] as it comes; returns how many came.
std::size_t decode_against(const unsigned char* data, std::size_t len, const std::vector<PhaseArchiveEntry>& in,
                           std::size_t first, bool* ok, const std::string& where)
{
    const Exact exact(data, len);
    PhaseChunkDecoder dec(exact.data(), exact.len);
    PhaseArchiveEntry e;
    std::size_t n = 0;
    while (dec.next(e)) {
        EXPECT_TRUE(inside(e, exact.data(), exact.len)) << where << " entry " << n;
        if (first + n >= in.size()) {
            ADD_FAILURE() << where << ": more entries than encoded";
            break;
        }
        EXPECT_TRUE(same(in[first + n], e)) << where << " entry " << n;
        n++;
    }
    EXPECT_EQ(dec.count(), n) << where;
    *ok = dec.ok();
    return n;
}

unsigned char kinds_of(bool int_phases, bool int_projects)
{
    return static_cast<unsigned char>((int_phases ? phase_codec::kPhaseIdInteger : 0) |
                                      (int_projects ? phase_codec::kProjectIdInteger : 0));
}

void put_varint(std::vector<unsigned char>& out, std::uint64_t v)
{
    while (v >= 0x80) {
        out.push_back(static_cast<unsigned char>(v | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<unsigned char>(v));
}

// Decodes a chunk; returns the entries decoded and sets *ok.
std::size_t decode_count(const std::vector<unsigned char>& chunk, bool* ok)
{
    const Exact exact(chunk.data(), chunk.size());
    PhaseChunkDecoder dec(exact.data(), exact.len);
    PhaseArchiveEntry e;
    std::size_t n = 0;
    while (dec.next(e))
        n++;
    *ok = dec.ok();
    return n;
}

}  // namespace

TEST(PhaseArchiveCodec, RoundTripsTableShapedEntries)
{
    phasemig::test::Rng rng;
    std::size_t total = 0, long_texts = 0, empty_texts = 0, extreme_days = 0, reversed = 0;
    for (int c = 0; c < 32; c++) {
        const bool int_phases = c % 4 < 2, int_projects = c % 2 == 0;
        const unsigned char kinds = kinds_of(int_phases, int_projects);
        Store store;
        const auto in = table_like(rng, store, static_cast<std::size_t>(rng.range(1, 600)), int_phases, int_projects);
        const std::size_t cap = c % 3 == 0 ? 2000 : static_cast<std::size_t>(rng.range(40, 4000));
        const auto chunks = pack(in, kinds, cap);
        std::size_t next = 0;
        for (std::size_t k = 0; k < chunks.size(); k++) {
            const Chunk& chunk = chunks[k];
            const std::string where =
                phasemig::test::where(rng, static_cast<std::uint64_t>(c)) + " chunk " + std::to_string(k);
            ASSERT_EQ(chunk.first, next) << where;
            ASSERT_GT(chunk.entries, 0u) << where;
            const Exact exact(chunk.bytes.data(), chunk.bytes.size());
            PhaseChunkDecoder dec(exact.data(), exact.len);
            EXPECT_EQ(dec.kinds(), kinds) << where;
            PhaseArchiveEntry e;
            std::size_t n = 0;
            while (dec.next(e)) {
                ASSERT_LT(n, chunk.entries) << where << ": more entries than encoded";
                ASSERT_TRUE(same(in[chunk.first + n], e)) << where << " entry " << n;
                ASSERT_TRUE(inside(e, exact.data(), exact.len)) << where << " entry " << n;
                n++;
            }
            ASSERT_TRUE(dec.ok()) << where;
            ASSERT_EQ(dec.count(), chunk.entries) << where;
            ASSERT_EQ(n, chunk.entries) << where;
            next += n;
        }
        ASSERT_EQ(next, in.size()) << phasemig::test::where(rng, static_cast<std::uint64_t>(c));
        total += in.size();
        for (const auto& e : in) {
            for (const Bytes* b : {&e.phase_type, &e.name, &e.description}) {
                long_texts += b->present() && b->len >= 2000;
                empty_texts += b->present() && b->len == 0;
            }
            extreme_days += (e.has_start && (e.start == INT32_MIN || e.start == INT32_MAX)) ||
                            (e.has_end && (e.end == INT32_MIN || e.end == INT32_MAX));
            reversed += e.has_start && e.has_end && e.end < e.start;
        }
    }
    // The generator did make what the test is about.
    EXPECT_GT(total, 3000u);
    EXPECT_GT(long_texts, 10u);
    EXPECT_GT(empty_texts, 100u);
    EXPECT_GT(extreme_days, 50u);
    EXPECT_GT(reversed, 50u);
}

TEST(PhaseArchiveCodec, EmptyChunkDecodesToNothing)
{
    for (unsigned char kinds = 0; kinds < 4; kinds++) {
        PhaseChunkEncoder enc(kinds);
        ASSERT_EQ(enc.size(), 2u);
        const Exact exact(enc.data(), enc.size());
        PhaseChunkDecoder dec(exact.data(), exact.len);
        PhaseArchiveEntry e;
        EXPECT_FALSE(dec.next(e));
        EXPECT_TRUE(dec.ok());
        EXPECT_EQ(dec.count(), 0u);
        EXPECT_EQ(dec.kinds(), kinds);
    }
}

TEST(PhaseArchiveCodec, PrefixesDecodeFewerEntriesOrAreReported)
{
    phasemig::test::Rng rng;
    for (int c = 0; c < 4; c++) {
        const bool int_phases = c < 2, int_projects = c % 2 == 0;
        Store store;
        const auto in = table_like(rng, store, 300, int_phases, int_projects);
        const auto chunks = pack(in, kinds_of(int_phases, int_projects), 2000);
        ASSERT_GE(chunks.size(), 2u);
        for (std::size_t k = 0; k < 3 && k < chunks.size(); k++) {
            const Chunk& chunk = chunks[k];
            const std::string where =
                phasemig::test::where(rng, static_cast<std::uint64_t>(c)) + " chunk " + std::to_string(k);
            bool ok = false;
            ASSERT_EQ(decode_against(chunk.bytes.data(), chunk.bytes.size(), in, chunk.first, &ok, where),
                      chunk.entries);
            ASSERT_TRUE(ok) << where;
            std::size_t clean = 0;
            for (std::size_t len = 0; len < chunk.bytes.size(); len++) {
                const std::size_t n = decode_against(chunk.bytes.data(), len, in, chunk.first, &ok,
                                                     where + " prefix " + std::to_string(len));
                EXPECT_TRUE(!ok || n < chunk.entries) << where << " prefix " << len << ": " << n << " entries";
                EXPECT_LE(n, chunk.entries) << where << " prefix " << len;
                clean += ok;
            }
            // Only a cut on an entry boundary is a clean shorter chunk: the
            // header alone, and after each entry but the last.
            EXPECT_EQ(clean, chunk.entries) << where;
        }
    }
}

TEST(PhaseArchiveCodec, UnknownVersionKindsOrFlagsAreReported)
{
    phasemig::test::Rng rng;
    Store store;
    const auto in = table_like(rng, store, 50, true, true);
    const auto chunks = pack(in, kinds_of(true, true), 100000);
    ASSERT_EQ(chunks.size(), 1u);
    const std::vector<unsigned char>& good = chunks[0].bytes;
    bool ok = false;
    ASSERT_EQ(decode_count(good, &ok), 50u);
    ASSERT_TRUE(ok);

    for (unsigned version : {0u, 2u, 3u, 0x81u, 0xffu}) {
        std::vector<unsigned char> bad(good);
        bad[0] = static_cast<unsigned char>(version);
        EXPECT_EQ(decode_count(bad, &ok), 0u) << "version " << version;
        EXPECT_FALSE(ok) << "version " << version;
    }
    for (int bit = 2; bit < 8; bit++) {
        std::vector<unsigned char> bad(good);
        bad[1] |= static_cast<unsigned char>(1u << bit);
        EXPECT_EQ(decode_count(bad, &ok), 0u) << "kinds bit " << bit;
        EXPECT_FALSE(ok) << "kinds bit " << bit;
    }
    {
        std::vector<unsigned char> one{phase_codec::kVersion};
        EXPECT_EQ(decode_count(one, &ok), 0u);
        EXPECT_FALSE(ok) << "no kinds byte";
        EXPECT_EQ(decode_count({}, &ok), 0u);
        EXPECT_FALSE(ok) << "empty";
    }

    // One entry: an integer phase id one above zero, nothing else.
    auto chunk = [](std::uint64_t flags) {
        std::vector<unsigned char> c{phase_codec::kVersion, 0};
        put_varint(c, flags);
        put_varint(c, 2);  // zigzag(+1)
        return c;
    };
    ASSERT_EQ(decode_count(chunk(phase_codec::kPhaseDelta), &ok), 1u);
    ASSERT_TRUE(ok);
    for (int bit = 12; bit < 64; bit++) {
        EXPECT_EQ(decode_count(chunk(phase_codec::kPhaseDelta | std::uint64_t{1} << bit), &ok), 0u) << "flag " << bit;
        EXPECT_FALSE(ok) << "flag bit " << bit;
    }
    // A flags varint longer than 64 bits.
    std::vector<unsigned char> endless{phase_codec::kVersion, 0};
    endless.insert(endless.end(), 10, 0x84);
    endless.push_back(0x00);
    endless.push_back(0x02);
    EXPECT_EQ(decode_count(endless, &ok), 0u);
    EXPECT_FALSE(ok);
}

TEST(PhaseArchiveCodec, SameProjectWithNoneBeforeIsReported)
{
    using namespace phase_codec;
    bool ok = false;
    // The first entry: its own project, then "same project": fine.
    std::vector<unsigned char> good{kVersion, kPhaseIdInteger | kProjectIdInteger};
    put_varint(good, kPhaseDelta | kProject | kProjectDelta);
    put_varint(good, 2);
    put_varint(good, 2);
    put_varint(good, kPhaseDelta | kProject | kSameProject);
    put_varint(good, 2);
    ASSERT_EQ(decode_count(good, &ok), 2u);
    ASSERT_TRUE(ok);
    {
        const Exact exact(good.data(), good.size());
        PhaseChunkDecoder dec(exact.data(), exact.len);
        PhaseArchiveEntry a, b;
        ASSERT_TRUE(dec.next(a));
        ASSERT_TRUE(dec.next(b));
        EXPECT_EQ(a.phase, Key::from_int(std::numeric_limits<std::int64_t>::min() + 1));
        EXPECT_EQ(b.phase, Key::from_int(std::numeric_limits<std::int64_t>::min() + 2));
        EXPECT_TRUE(b.has_project);
        EXPECT_EQ(b.project, a.project);
    }

    // "Same project" on the first entry of a chunk.
    std::vector<unsigned char> first{kVersion, 0};
    put_varint(first, kPhaseDelta | kProject | kSameProject);
    put_varint(first, 2);
    EXPECT_EQ(decode_count(first, &ok), 0u);
    EXPECT_FALSE(ok);

    // ... or after entries that had none.
    std::vector<unsigned char> after_null{kVersion, 0};
    put_varint(after_null, kPhaseDelta);
    put_varint(after_null, 2);
    put_varint(after_null, kPhaseDelta);
    put_varint(after_null, 2);
    put_varint(after_null, kPhaseDelta | kProject | kSameProject);
    put_varint(after_null, 2);
    EXPECT_EQ(decode_count(after_null, &ok), 2u);
    EXPECT_FALSE(ok);

    // Encoded across a chunk boundary, the project is written again.
    PhaseChunkEncoder enc(0);
    PhaseArchiveEntry e;
    e.phase = Key{1, 2};
    e.has_project = true;
    e.project = Key{3, 4};
    enc.add(e);
    enc.reset();
    e.phase = Key{1, 3};
    enc.add(e);
    const Exact exact(enc.data(), enc.size());
    PhaseChunkDecoder dec(exact.data(), exact.len);
    PhaseArchiveEntry out;
    ASSERT_TRUE(dec.next(out));
    EXPECT_TRUE(same(e, out));
    EXPECT_FALSE(dec.next(out));
    EXPECT_TRUE(dec.ok());
}

TEST(PhaseArchiveCodec, DatesAndLengthsOutOfRangeAreReported)
{
    using namespace phase_codec;
    bool ok = false;
    // start = prev (0) + delta; end likewise, from the previous start.
    auto dated = [](Day first_start, std::uint64_t second_start_zigzag) {
        std::vector<unsigned char> c{kVersion, kPhaseIdInteger};
        put_varint(c, kPhaseDelta | kStart);
        put_varint(c, 2);
        put_varint(c, phasemig::core::archive_codec::zigzag(first_start));
        put_varint(c, kPhaseDelta | kStart);
        put_varint(c, 2);
        put_varint(c, second_start_zigzag);
        return c;
    };
    using phasemig::core::archive_codec::zigzag;
    EXPECT_EQ(decode_count(dated(INT32_MAX, zigzag(0)), &ok), 2u);
    EXPECT_TRUE(ok);
    EXPECT_EQ(decode_count(dated(INT32_MIN, zigzag(std::int64_t{INT32_MAX} - INT32_MIN)), &ok), 2u);
    EXPECT_TRUE(ok);
    EXPECT_EQ(decode_count(dated(INT32_MAX, zigzag(1)), &ok), 1u);
    EXPECT_FALSE(ok);
    EXPECT_EQ(decode_count(dated(INT32_MIN, zigzag(-1)), &ok), 1u);
    EXPECT_FALSE(ok);
    // Differences near the ends of int64 (no overflow: UBSan would say so).
    for (Day start : {Day{-5}, Day{0}, Day{5}, Day{INT32_MIN}, Day{INT32_MAX}})
        for (std::int64_t d : {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min(),
                               std::numeric_limits<std::int64_t>::max() - INT32_MAX,
                               std::numeric_limits<std::int64_t>::min() - INT32_MIN}) {
            EXPECT_EQ(decode_count(dated(start, zigzag(d)), &ok), 1u) << start << " + " << d;
            EXPECT_FALSE(ok) << start << " + " << d;
        }

    // A text longer than what is left.
    for (std::uint64_t len : {std::uint64_t{4}, std::uint64_t{5}, std::uint64_t{UINT32_MAX} + 1, ~std::uint64_t{0}}) {
        std::vector<unsigned char> c{kVersion, kPhaseIdInteger};
        put_varint(c, kPhaseDelta | kType);
        put_varint(c, 2);
        put_varint(c, len);
        c.insert(c.end(), {'a', 'b', 'c', 'd'});
        EXPECT_EQ(decode_count(c, &ok), len == 4 ? 1u : 0u) << len;
        EXPECT_EQ(ok, len == 4) << len;
    }
}

TEST(PhaseArchiveCodec, RandomAndMutatedBytesAreReadSafely)
{
    phasemig::test::Rng rng;
    PhaseArchiveEntry e;
    std::size_t decoded = 0;
    for (int c = 0; c < 5000; c++) {
        std::vector<unsigned char> junk(static_cast<std::size_t>(rng.range(0, 300)));
        for (auto& b : junk)
            b = static_cast<unsigned char>(rng.u64());
        if (junk.size() >= 1 && rng.chance(0.9))
            junk[0] = phase_codec::kVersion;
        if (junk.size() >= 2 && rng.chance(0.9))
            junk[1] = static_cast<unsigned char>(rng.range(0, 3));
        if (junk.size() >= 3 && rng.chance(0.5))
            junk[2] &= 0x7f;  // flags of one byte, mostly known
        const Exact exact(junk.data(), junk.size());
        PhaseChunkDecoder dec(exact.data(), exact.len);
        while (dec.next(e)) {
            ASSERT_TRUE(inside(e, exact.data(), exact.len))
                << phasemig::test::where(rng, static_cast<std::uint64_t>(c));
            decoded++;
        }
        EXPECT_FALSE(dec.next(e));
    }
    EXPECT_GT(decoded, 0u);  // some junk did get past the header

    // Valid chunks with a few bytes changed.
    Store store;
    const auto in = table_like(rng, store, 400, true, false);
    const auto chunks = pack(in, kinds_of(true, false), 600);
    for (int c = 0; c < 3000; c++) {
        std::vector<unsigned char> bad(
            chunks[static_cast<std::size_t>(rng.range(0, static_cast<std::int64_t>(chunks.size()) - 1))].bytes);
        for (int k = static_cast<int>(rng.range(1, 3)); k > 0; k--)
            bad[static_cast<std::size_t>(rng.range(2, static_cast<std::int64_t>(bad.size()) - 1))] =
                static_cast<unsigned char>(rng.u64());
        const Exact exact(bad.data(), bad.size());
        PhaseChunkDecoder dec(exact.data(), exact.len);
        while (dec.next(e))
            ASSERT_TRUE(inside(e, exact.data(), exact.len))
                << phasemig::test::where(rng, static_cast<std::uint64_t>(c));
    }
}

TEST(PhaseArchiveCodec, UpgradeEntriesAreSmall)
{
    // What an upgrade drops: phase_type and the three budgets (each a
    // numeric's binary form, about 8 bytes), of consecutive integer phase
    // ids, two phases per project, in chunks of 1900 bytes as
    // pg::PhaseArchiveWriter cuts them.  Measured: 40.45 bytes per entry
    // (the same for every seed), of which 32.5 are the texts' and budgets'
    // own bytes, 4 their lengths, 2 the flags, 1.5 the ids, and 0.45 the
    // chunk header and each chunk's first ids (deltas from zero, 10 bytes
    // each).  One more byte per entry, or an id stored whole, fails.
    phasemig::test::Rng rng;
    Store store;
    const Bytes planning = store.keep("PLANNING"), execution = store.keep("EXECUTION");
    std::vector<PhaseArchiveEntry> in;
    for (std::int64_t i = 0; i < 1000; i++) {
        PhaseArchiveEntry e;
        e.phase = Key::from_int(i + 1);
        e.has_project = true;
        e.project = Key::from_int(i / 2 + 1);
        e.phase_type = i % 2 == 0 ? planning : execution;
        e.capital = store.keep(random_bytes(rng, 8));
        e.expense = store.keep(random_bytes(rng, 8));
        e.total = store.keep(random_bytes(rng, 8));
        in.push_back(e);
    }
    const auto chunks = pack(in, kinds_of(true, true), 1900);
    std::size_t bytes = 0, n = 0;
    for (const auto& c : chunks) {
        bytes += c.bytes.size();
        bool ok = false;
        n += decode_against(c.bytes.data(), c.bytes.size(), in, c.first, &ok, "upgrade");
        EXPECT_TRUE(ok);
    }
    ASSERT_EQ(n, in.size());
    const double per_entry = static_cast<double>(bytes) / static_cast<double>(in.size());
    EXPECT_LT(per_entry, 41.0);
}
