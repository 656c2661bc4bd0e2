/*
 * What touching fresh memory costs on this machine, with and without
 * transparent huge pages: the figures behind src/core/huge_alloc.hpp.
 *
 *   cc -O2 -o /tmp/fault_cost bench/fault_cost.c
 *   /tmp/fault_cost 32 1; /tmp/fault_cost 32 0          # memory the guest holds
 *   for h in 1 0; do /tmp/fault_cost 2048 1 >/dev/null; sleep 5; /tmp/fault_cost 32 $h; done
 *
 * On a VM with free page reporting the guest hands free blocks of 8 MB and
 * more back to the host; a page taken from one is paid for again (the
 * second line, after a large free and a pause, sometimes shows it for one
 * page size, sometimes for the other).  "touched again" is what the same
 * memory costs once it is there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MB HUGE(0|1)\n", argv[0]);
        return 2;
    }
    const size_t mb = strtoul(argv[1], NULL, 10);
    const int huge = atoi(argv[2]);
    const size_t n = mb << 20;
    char* p = aligned_alloc(2 << 20, n);
    if (!p)
        return 1;
    madvise(p, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    const double t0 = now_ms();
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    const double t1 = now_ms();
    memset(p, 2, n);
    const double t2 = now_ms();
    printf("%zu MB, huge pages %s: first touch %.1f ms (%.2f ms per MB), touched again %.1f ms\n", mb,
           huge ? "on" : "off", t1 - t0, (t1 - t0) / (double) mb, t2 - t1);
    free(p);
    return 0;
}
