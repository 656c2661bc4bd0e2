// An allocator for the core's large lookup tables: allocations of 2 MiB and
// more are 2 MiB-aligned and marked for transparent huge pages.  Lookups in
// random order then miss the TLB far less (a 4 KiB page per lookup otherwise
// costs a page walk that software prefetching does not hide).  Where the
// kernel gives no huge pages this is an ordinary aligned allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include <sys/mman.h>

namespace phasemig::core {

// Allocations of 2 MiB and more, up to `MaxAdvised` bytes, are marked.
template <typename T, std::size_t MaxAdvised = ~std::size_t{0}>
struct HugePageAllocator {
    using value_type = T;
    template <typename U>
    struct rebind {
        using other = HugePageAllocator<U, MaxAdvised>;
    };
    HugePageAllocator() noexcept = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U, MaxAdvised>&) noexcept
    {
    }

    static constexpr std::size_t kHuge = std::size_t{2} << 20;

    T* allocate(std::size_t n)
    {
        if (n > static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(T) - kHuge)
            throw std::bad_alloc();
        const std::size_t bytes = n * sizeof(T);
        if (bytes < kHuge) {
            void* p = ::operator new(bytes, std::align_val_t(alignof(T) < 64 ? 64 : alignof(T)));
            return static_cast<T*>(p);
        }
        const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
        void* p = std::aligned_alloc(kHuge, rounded);
        if (!p)
            throw std::bad_alloc();
        if (rounded <= MaxAdvised)
            (void) madvise(p, rounded, MADV_HUGEPAGE);
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t n) noexcept
    {
        if (n * sizeof(T) < kHuge)
            ::operator delete(p, std::align_val_t(alignof(T) < 64 ? 64 : alignof(T)));
        else
            std::free(p);
    }
    template <typename U>
    bool operator==(const HugePageAllocator<U, MaxAdvised>&) const noexcept
    {
        return true;
    }
    template <typename U>
    bool operator!=(const HugePageAllocator<U, MaxAdvised>&) const noexcept
    {
        return false;
    }
};

// The big per-phase arrays, filled and read in order: 4 KiB pages, which
// they need no fewer of for the TLB.  What a fresh page costs depends on
// where the kernel finds it.  On this project's VM (free page reporting)
// free blocks of 8 MB and more go back to the host, and a page taken from one
// costs 1.3-4.4 ms per MB to touch, against 0.04 (2 MiB pages) or 0.4 (4 KiB)
// for memory the guest still holds (bench/fault_cost.c).  Measured on 1M
// verify's phase stage, in a fresh backend 3 s after another process freed
// memory: after a small free (64 MB or none) 28-64 ms with huge pages, 34-39
// without; after a large one (1 GB) the reverse, 28-39 against 35-70 ms.
// Medians are alike; in full benchmark runs the stage took 30-40 ms on 4 KiB
// pages, 26-90 ms on huge pages.
// (The allocator with MaxAdvised 0: its alignment, never marked.)
template <typename T>
using BigVector = std::vector<T, HugePageAllocator<T, 0>>;

// Tables read in random order: huge pages up to 16 MiB, for the TLB.  Marked
// whatever their size, a fresh backend waited for the kernel to compact
// memory to find them (transparent_hugepage/defrag = madvise compacts in the
// faulting thread).  The hash maps (flat_map.hpp) keep huge pages at any
// size: the upgrade's map of project dates, 64 MB at 10M assignments, is
// faster with them.
template <typename T>
using TableVector = std::vector<T, HugePageAllocator<T, std::size_t{16} << 20>>;

}  // namespace phasemig::core
