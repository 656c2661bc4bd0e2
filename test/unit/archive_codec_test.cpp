// The archive's chunk format: every entry comes back exactly as written
// (random ids of both kinds, NULL projects and dates, extreme values), a
// chunk never outgrows its buffer, and damaged input is reported, never
// read past its end (the sanitizer build checks that).
#include <algorithm>
#include <vector>

#include "core/archive_codec.hpp"
#include "test_support.hpp"

using phasemig::core::ArchiveEntry;
using phasemig::core::ChunkDecoder;
using phasemig::core::ChunkEncoder;
using phasemig::core::Key;

namespace {

bool same(const ArchiveEntry& a, const ArchiveEntry& b)
{
    return a.pos == b.pos && a.id == b.id && a.has_project == b.has_project &&
           (!a.has_project || a.project == b.project) && a.has_date == b.has_date && (!a.has_date || a.date == b.date) &&
           a.phase == b.phase;
}

// Entries shaped like a table scan: positions climbing, assignments of one
// project together, a few phases per project; with random jumps, NULLs and
// extreme values mixed in.
std::vector<ArchiveEntry> table_like(phasemig::test::Rng& rng, std::size_t n, bool uuids)
{
    std::vector<ArchiveEntry> out;
    std::uint64_t pos = (rng.u64() % 1000) << 16 | 1;
    std::int64_t next_id = rng.range(-5, 1000000);
    ArchiveEntry cur;
    auto key = [&](std::int64_t v) { return uuids ? Key{rng.u64(), rng.u64()} : Key::from_int(v); };
    for (std::size_t i = 0; i < n; i++) {
        if (i == 0 || rng.chance(0.1)) {
            cur.has_project = !rng.chance(0.05);
            cur.project = cur.has_project ? key(rng.range(1, 1000000)) : Key{};
        }
        if (i == 0 || rng.chance(0.3))
            cur.phase = key(rng.range(1, 3000000));
        pos = rng.chance(0.05) ? pos + (rng.u64() % 5000) : pos + 1;
        cur.pos = rng.chance(0.01) ? rng.u64() : pos;  // out of order too
        cur.id = rng.chance(0.02) ? rng.key() : key(next_id++);
        if (rng.chance(0.01))
            cur.id = Key{rng.chance(0.5) ? 0 : ~std::uint64_t{0}, rng.chance(0.5) ? 0 : ~std::uint64_t{0}};
        cur.has_date = !rng.chance(0.05);
        cur.date = cur.has_date ? static_cast<phasemig::core::Day>(
                                      rng.chance(0.01) ? rng.range(INT32_MIN, INT32_MAX) : rng.range(8000, 12000))
                                : 0;
        out.push_back(cur);
    }
    return out;
}

// Packs entries into as many chunks of `cap` bytes as it takes.
std::vector<std::vector<unsigned char>> pack(const std::vector<ArchiveEntry>& in, std::size_t cap)
{
    std::vector<std::vector<unsigned char>> chunks;
    std::vector<unsigned char> buf(cap);
    ChunkEncoder enc(buf.data(), cap);
    auto flush = [&] {
        if (enc.entries() > 0)
            chunks.emplace_back(enc.data(), enc.data() + enc.size());
        enc.reset();
    };
    for (const auto& e : in) {
        if (!enc.has_room())
            flush();
        enc.add(e);
        EXPECT_LE(enc.size(), cap);
    }
    flush();
    return chunks;
}

}  // namespace

TEST(ArchiveCodec, RoundTripsTableShapedEntries)
{
    phasemig::test::Rng rng;
    for (int c = 0; c < 200; c++) {
        const bool uuids = c % 2 == 0;
        const auto in = table_like(rng, static_cast<std::size_t>(rng.range(1, 3000)), uuids);
        const std::size_t cap = static_cast<std::size_t>(rng.range(80, 4000));
        std::vector<ArchiveEntry> out;
        for (const auto& chunk : pack(in, cap)) {
            ASSERT_LE(chunk.size(), cap);
            std::vector<unsigned char> exact(chunk);  // no slack after the end
            ChunkDecoder dec(exact.data(), exact.size());
            ArchiveEntry e;
            while (dec.next(e))
                out.push_back(e);
            ASSERT_TRUE(dec.ok()) << phasemig::test::where(rng, c);
        }
        ASSERT_EQ(out.size(), in.size()) << phasemig::test::where(rng, c);
        for (std::size_t i = 0; i < in.size(); i++)
            ASSERT_TRUE(same(in[i], out[i])) << phasemig::test::where(rng, c) << " entry " << i;
    }
}

TEST(ArchiveCodec, SequentialIntegerIdsTakeAFewBytes)
{
    // 10 assignments per project, 2 phases each, consecutive ids and ctids.
    std::vector<ArchiveEntry> in;
    for (std::int64_t i = 0; i < 100000; i++) {
        ArchiveEntry e;
        e.pos = (static_cast<std::uint64_t>(i / 60) << 16) | static_cast<std::uint64_t>(i % 60 + 1);
        e.id = Key::from_int(i + 1);
        e.has_project = true;
        e.project = Key::from_int(i / 10 + 1);
        e.has_date = true;
        e.date = static_cast<phasemig::core::Day>(9000 + i % 37);
        e.phase = Key::from_int(2 * (i / 10) + (i % 10 >= 5) + 1);
        in.push_back(e);
    }
    std::size_t bytes = 0;
    for (const auto& c : pack(in, 1960))
        bytes += c.size();
    EXPECT_LT(static_cast<double>(bytes) / static_cast<double>(in.size()), 6.0);
}

TEST(ArchiveCodec, DamagedChunksAreReported)
{
    phasemig::test::Rng rng;
    const auto in = table_like(rng, 400, false);
    const auto chunks = pack(in, 1960);
    ASSERT_FALSE(chunks.empty());
    const std::vector<unsigned char>& full = chunks[0];
    std::size_t whole = 0;
    {
        ChunkDecoder dec(full.data(), full.size());
        ArchiveEntry e;
        while (dec.next(e))
            whole++;
    }
    // Every prefix: decodes fewer entries, or says it is damaged.
    for (std::size_t len = 0; len < full.size(); len++) {
        std::vector<unsigned char> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
        ChunkDecoder dec(cut.data(), cut.size());
        ArchiveEntry e;
        std::size_t n = 0;
        while (dec.next(e))
            n++;
        EXPECT_TRUE(!dec.ok() || n < whole) << "prefix " << len;
    }
    // An unknown format.
    std::vector<unsigned char> other(full);
    other[0] = 2;
    ChunkDecoder dec(other.data(), other.size());
    ArchiveEntry e;
    EXPECT_FALSE(dec.next(e));
    EXPECT_FALSE(dec.ok());
    // Random bytes: reported or decoded, never read past the end.
    for (int c = 0; c < 2000; c++) {
        std::vector<unsigned char> junk(static_cast<std::size_t>(rng.range(0, 300)));
        for (auto& b : junk)
            b = static_cast<unsigned char>(rng.u64());
        if (!junk.empty() && rng.chance(0.8))
            junk[0] = 1;
        ChunkDecoder d(junk.data(), junk.size());
        while (d.next(e)) {
        }
    }
}

// A damaged date difference at the edge of int64 is refused without
// overflowing (the sanitizer build would report the overflow).
TEST(ArchiveCodec, HugeDateDifferenceIsReported)
{
    using namespace phasemig::core::archive_codec;
    ArchiveEntry first;
    first.pos = 1;
    first.id = Key::from_int(1);
    first.has_date = true;
    first.date = -5;
    first.phase = Key::from_int(7);
    std::vector<unsigned char> buf(64);
    ChunkEncoder enc(buf.data(), buf.size());
    enc.add(first);
    std::vector<unsigned char> chunk(enc.data(), enc.data() + enc.size());
    // A second entry: no project, same phase, id and position deltas of
    // zero, and the date difference INT64_MIN (zigzag: all ones).
    chunk.push_back(static_cast<unsigned char>(kProjectNull | kSamePhase | kIdDelta));
    chunk.push_back(0);
    chunk.push_back(0);
    for (int i = 0; i < 9; i++)
        chunk.push_back(0xff);
    chunk.push_back(0x01);
    ChunkDecoder dec(chunk.data(), chunk.size());
    ArchiveEntry e;
    ASSERT_TRUE(dec.next(e));
    EXPECT_EQ(e.date, -5);
    EXPECT_FALSE(dec.next(e));
    EXPECT_FALSE(dec.ok());
}
