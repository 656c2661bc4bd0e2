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

// The big per-phase arrays, filled and read in order: huge pages up to
// 16 MiB.  Marked for huge pages whatever their size, a fresh backend waited
// for the kernel to compact memory to find them (transparent_hugepage/defrag
// = madvise compacts in the faulting thread): verify's phase stage at 10M
// took 1.2 s after a pause instead of 0.48 s with plain allocations.  A few
// 2 MiB pages come without compaction, and save a fault per 4 KiB (verify's
// phase stage at 1M: 41 -> 30 ms).  The hash maps (flat_map.hpp), read in
// random order, keep huge pages at any size, for the TLB: the upgrade's map
// of project dates, 64 MB at 10M assignments, is faster with them.
template <typename T>
using BigVector = std::vector<T, HugePageAllocator<T, std::size_t{16} << 20>>;

}  // namespace phasemig::core
