// Software prefetch that the compiler keeps.
//
// GCC 12 at -O2 drops __builtin_prefetch when its address comes out of a
// hash computation or sits under a condition: phasemig.so had not one
// prefetch instruction although the scans asked for them.  A volatile asm
// statement cannot be removed; it loads nothing and cannot fault.
#pragma once

namespace phasemig::core {

inline void prefetch_read(const void* p) noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(__aarch64__)
    asm volatile("prfm pldl1keep, %0" : : "Q"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p);
#endif
}

}  // namespace phasemig::core
