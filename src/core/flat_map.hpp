// An open-addressing hash map from Key to a small value.
//
// Why not std::unordered_map: profiling the per-assignment lookups showed a
// node-based map costing two to three dependent cache misses per lookup
// (bucket, node, value) and most of the CPU time of verify and downgrade.
// Boost 1.74 (Debian 12) has no flat hash map, and PostgreSQL's simplehash
// cannot be used in the core, which includes no PostgreSQL header.  Linear
// probing over one array of {key, value} makes a lookup one cache miss.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/huge_alloc.hpp"
#include "core/prefetch.hpp"
#include "core/key.hpp"

namespace phasemig::core {

template <typename V>
class FlatKeyMap {
public:
    FlatKeyMap() { rehash(16); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    void reserve(std::size_t n)
    {
        std::size_t want = 16;
        while (!fits(n, want))
            want <<= 1;
        if (want > slots_.size())
            rehash(want);
    }

    // Inserts or overwrites; returns the stored value.
    V& put(const Key& key, const V& value)
    {
        if (!fits(size_ + 1, slots_.size()))
            rehash(slots_.size() * 2);
        std::size_t i = home(key);
        while (slots_[i].used) {
            if (slots_[i].key == key) {
                slots_[i].value = value;
                return slots_[i].value;
            }
            i = (i + 1) & mask_;
        }
        slots_[i].used = true;
        slots_[i].key = key;
        slots_[i].value = value;
        size_++;
        return slots_[i].value;
    }

    V* find(const Key& key) noexcept
    {
        std::size_t i = home(key);
        while (slots_[i].used) {
            if (slots_[i].key == key)
                return &slots_[i].value;
            i = (i + 1) & mask_;
        }
        return nullptr;
    }
    const V* find(const Key& key) const noexcept { return const_cast<FlatKeyMap*>(this)->find(key); }

    // Starts loading the slot the key hashes to and the one after (see
    // PhaseIndex::prefetch): every cache line they touch, as a slot of 24 or
    // 40 bytes may straddle two lines and a probe often goes one slot on.
    void prefetch(const Key& key) const noexcept
    {
        const char* p = reinterpret_cast<const char*>(&slots_[home(key)]);
        const auto first = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{63};
        const auto last = reinterpret_cast<std::uintptr_t>(p + 2 * sizeof(Slot) - 1) & ~std::uintptr_t{63};
        for (std::uintptr_t line = first; line <= last; line += 64)
            prefetch_read(reinterpret_cast<const void*>(line));
    }

    // Removes the key if present (backward-shift deletion keeps probes short).
    bool erase(const Key& key) noexcept
    {
        std::size_t i = home(key);
        while (slots_[i].used && !(slots_[i].key == key))
            i = (i + 1) & mask_;
        if (!slots_[i].used)
            return false;
        std::size_t hole = i;
        std::size_t j = i;
        for (;;) {
            j = (j + 1) & mask_;
            if (!slots_[j].used)
                break;
            const std::size_t h = home(slots_[j].key);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
            if (!stays) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole].used = false;
        size_--;
        return true;
    }

    template <typename F>
    void for_each(F&& f) const
    {
        for (const auto& s : slots_)
            if (s.used)
                f(s.key, s.value);
    }

    void clear()
    {
        for (auto& s : slots_)
            s.used = false;
        size_ = 0;
    }

private:
    struct Slot {
        Key key;
        V value;
        bool used = false;
    };

    std::size_t home(const Key& key) const noexcept { return KeyHash{}(key) & mask_; }
    // Load up to 3/4: probes stay short (adjacent slots, one or two cache
    // lines), and the table stays small.  Fresh memory is not free: the
    // kernel zeroes every page a backend touches for the first time, which
    // cost more than the probing in the benchmarks.
    static bool fits(std::size_t n, std::size_t capacity) noexcept { return n * 4 <= capacity * 3; }

    void rehash(std::size_t capacity)
    {
        std::vector<Slot, HugePageAllocator<Slot>> old;
        old.swap(slots_);
        slots_.assign(capacity, Slot{});
        mask_ = capacity - 1;
        size_ = 0;
        for (const auto& s : old)
            if (s.used)
                put(s.key, s.value);
    }

    std::vector<Slot, HugePageAllocator<Slot>> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

// Puts into a FlatKeyMap a few keys behind the one given, in the order given,
// each one's slot prefetched when it is queued: a scan that fills a map in
// random key order otherwise stalls on memory at every insert.  Call finish()
// before the map is read.
template <typename V>
class DelayedPuts {
public:
    explicit DelayedPuts(FlatKeyMap<V>& map) : map_(map) {}
    void put(const Key& key, const V& value)
    {
        map_.prefetch(key);
        if (queued_ == kDelay)
            map_.put(ring_[at_].first, ring_[at_].second);
        else
            queued_++;
        ring_[at_] = {key, value};
        at_ = (at_ + 1) % kDelay;
    }
    void finish()
    {
        const std::size_t first = (at_ + kDelay - queued_) % kDelay;
        for (std::size_t i = 0; i < queued_; i++) {
            const auto& e = ring_[(first + i) % kDelay];
            map_.put(e.first, e.second);
        }
        queued_ = 0;
    }

private:
    static constexpr std::size_t kDelay = 8;
    FlatKeyMap<V>& map_;
    std::pair<Key, V> ring_[kDelay];
    std::size_t at_ = 0;
    std::size_t queued_ = 0;
};

}  // namespace phasemig::core
