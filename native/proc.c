/* proc.c: the P side of safepoints (Go's proc.go preemption checks).
 *
 * Every runtime call polls its P's `poll` word; a nonzero word means the GC process wants
 * something from this P at a safe point (docs/design.md "Safepoints"). */
#include "gorun_py.h"

void safepoint_slow(void);

void safepoint_poll(void)
{
    if (thisP && atomic_load_explicit(&thisP->poll, memory_order_acquire))
        safepoint_slow();
}

void safepoint_slow(void)
{
    /* No request kinds are defined without the GC; clear the word so the poll stays cheap. */
    atomic_store_explicit(&thisP->poll, 0, memory_order_release);
}
