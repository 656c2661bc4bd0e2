// An allocator for the core's large lookup tables: allocations of 2 MiB and
// more are 2 MiB-aligned and marked for transparent huge pages.  Lookups in
// random order then miss the TLB far less (a 4 KiB page per lookup otherwise
// costs a page walk that software prefetching does not hide).  Where the
// kernel gives no huge pages this is an ordinary aligned allocation.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include <sys/mman.h>

namespace phasemig::core {

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() noexcept = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept
    {
    }

    static constexpr std::size_t kHuge = std::size_t{2} << 20;

    T* allocate(std::size_t n)
    {
        const std::size_t bytes = n * sizeof(T);
        if (bytes < kHuge) {
            void* p = ::operator new(bytes, std::align_val_t(alignof(T) < 64 ? 64 : alignof(T)));
            return static_cast<T*>(p);
        }
        const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
        void* p = std::aligned_alloc(kHuge, rounded);
        if (!p)
            throw std::bad_alloc();
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
    bool operator==(const HugePageAllocator<U>&) const noexcept
    {
        return true;
    }
    template <typename U>
    bool operator!=(const HugePageAllocator<U>&) const noexcept
    {
        return false;
    }
};

// The big per-phase arrays, filled and read in order: plain allocations.
// They were marked for huge pages too, which saved a little in a warm
// backend, but where the kernel has to compact memory to find 2 MiB pages
// (transparent_hugepage/defrag = madvise: compaction in the faulting
// thread), a fresh backend waited for it: verify's phase stage at 10M took
// 1.2 s instead of 0.48 s after a pause.  The hash maps (flat_map.hpp),
// read in random order, keep huge pages for the TLB: the upgrade's map of
// project dates, 64 MB at 10M assignments, is faster with them.
template <typename T>
using BigVector = std::vector<T>;

}  // namespace phasemig::core
