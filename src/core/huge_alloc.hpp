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

// The big per-phase arrays, filled and read in order: 4 KiB pages.  Huge
// pages fault in faster when the guest has them at hand (0.04 ms per MB on
// this VM) but much slower when they come from memory the VM returned to the
// host (2.2 ms per MB: free page reporting hands back free blocks of 8 MB
// and more, where 2 MiB pages come from); 4 KiB pages come from smaller free
// blocks, 0.4 ms per MB either way.  A step runs in a fresh backend seconds
// after another freed its memory: verify's phase stage at 1M took 25-62 ms
// with huge pages, 32-36 ms without.  In-order reads need no huge pages for
// the TLB.
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
