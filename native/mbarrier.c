/* mbarrier.c: the single entry point for every pointer store into the heap or the globals
 * (Go's mbarrier.go). Field sets, array element sets and global sets all come here, so the
 * write barrier hooks one place. Overview: docs/design.md "Write barrier". */
#include "runtime.h"

void writebarrier_store(_Atomic uint64_t *slot, goaddr val)
{
    atomic_store_explicit(slot, val, memory_order_release);
}
