/* trace.c: the event rings (Go's runtime/trace.go traceEvent; docs/design.md "Events and traces").
 *
 * With DBG_TRACE (gorun run --trace) the metadata segment holds nprocs + 1 rings of fixed-size
 * records (trace.h): ring p is written by P p's worker only, ring nprocs by the GC process's
 * threads (main and mark threads), which reserve slots by CAS on the ring's head. Nothing takes
 * a lock: a writer reserves a slot, fills it, and publishes it by storing seq = index + 1
 * (release). The single reader is the launcher (trace_drain, from its watch loop every 50 ms and
 * once more after the run): it copies complete records out in order and advances tail (release),
 * which frees the slots. A full ring drops the new event and counts it in `lost`: a writer never
 * waits for the launcher. Without DBG_TRACE every hook is one predictable branch on the
 * process-local gorun_trace_on and the rings do not exist (trace_nrings = 0).
 */
#include <string.h>
#include <time.h>

#include "runtime.h"

int gorun_trace_on;
static int trace_ring = -1;              /* this process's ring; -1: none (the launcher) */
static _Thread_local uint16_t trace_tid; /* GC process: 0 main thread, 1 + i mark thread i */

void trace_set_ring(int ring) { trace_ring = ring; }
void trace_set_thread(uint16_t tid) { trace_tid = tid; }

void trace_emit(uint32_t kind, uint32_t a, uint64_t b, uint64_t ts)
{
    if (!gorun_trace_on || trace_ring < 0 || (uint32_t)trace_ring >= G->trace_nrings) return;
    tracering_t *r = tracering_at((uint32_t)trace_ring);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    do {
        /* acquire: the launcher has finished copying the slot we are about to reuse */
        if (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= TRACE_RING_EVENTS) {
            atomic_fetch_add_explicit(&r->lost, 1, memory_order_relaxed);
            return;
        }
    } while (!atomic_compare_exchange_weak_explicit(&r->head, &h, h + 1, memory_order_relaxed, memory_order_relaxed));
    traceev_t *e = traceev_at(r, h);
    e->ts = ts;
    e->kind = (uint16_t)kind;
    e->tid = trace_tid;
    e->a = a;
    e->b = b;
    atomic_store_explicit(&e->seq, h + 1, memory_order_release);
}

void trace_emit_dur(uint32_t kind, uint64_t t0, uint64_t t1, uint64_t b)
{ trace_emit(kind, trace_sat32(t1 > t0 ? t1 - t0 : 0), b, t0); }

void trace_rcall_end(void)
{
    gp_t *p = thisP;
    uint64_t since = atomic_load_explicit(&p->rcall_since_ns, memory_order_relaxed), now = nanotime();
    if (now - since >= G->trace_rcall_ns)
        trace_emit_dur(EV_RCALL, since, now, atomic_load_explicit(&p->rcall, memory_order_relaxed));
}

uint32_t trace_lock_id(const void *l)
{
    if (l == &G->mheap.lock) return TRACE_LOCK_MHEAP;
    if (l == &G->typetab.lock) return TRACE_LOCK_TYPETAB;
    if (l == &G->gc.work.lock) return TRACE_LOCK_WORKBUF;
    const char *c = (const char *)G->central;
    if ((const char *)l >= c && (const char *)l < c + sizeof G->central)
        return TRACE_LOCK_MCENTRAL + (uint32_t)(((const char *)l - c) / sizeof(mcentral_t));
    return UINT32_MAX;
}

void trace_counters(void)
{
    if (!gorun_trace_on) return;
    gcctl_t *gc = &G->gc;
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu); /* called in the GC process: its CPU */
    uint64_t now = nanotime();
    uint64_t gc_cpu = (uint64_t)cpu.tv_sec * 1000000000ull + (uint64_t)cpu.tv_nsec +
                      atomic_load_explicit(&gc->assist_cpu_total_ns, memory_order_relaxed);
    uint64_t trig = atomic_load_explicit(&gc->trigger, memory_order_relaxed);
    uint64_t v[TC_N] = {
        [TC_HEAP_LIVE] = atomic_load_explicit(&G->mheap.heap_live, memory_order_relaxed),
        [TC_GOAL] = atomic_load_explicit(&gc->goal, memory_order_relaxed),
        [TC_TRIGGER] = trig,
        [TC_MEMORY_LIMIT] = (uint64_t)atomic_load_explicit(&gc->memory_limit, memory_order_relaxed),
        [TC_TOTAL_MEMORY] = mapped_ready_bytes(),
        [TC_GC_CPU] = gc_cpu,
    };
    for (uint32_t i = 0; i < TC_N; i++) trace_emit(EV_COUNTER, i, v[i], now);
}

/* The drained record: ts u64, a u32, kind u16, tid u8, ring u8, b u64 (24 bytes, little-endian
 * on the only platform built); gorun/trace.py reads it with struct "<QIHBBQ". */
#define DRAIN_RECORD 24

uint64_t trace_drain(uint8_t *out, uint64_t cap, int final)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < G->trace_nrings && n < cap; i++) {
        tracering_t *r = tracering_at(i);
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
        for (; t < h && n < cap; t++) {
            traceev_t *e = traceev_at(r, t);
            if (atomic_load_explicit(&e->seq, memory_order_acquire) != t + 1) {
                if (!final) break;                                            /* being written: next time */
                atomic_fetch_add_explicit(&r->lost, 1, memory_order_relaxed); /* its writer died */
                continue;
            }
            uint8_t *o = out + n * DRAIN_RECORD;
            uint16_t kind = e->kind;
            uint8_t tid = (uint8_t)e->tid, ring = (uint8_t)i;
            memcpy(o, &e->ts, 8);
            memcpy(o + 8, &e->a, 4);
            memcpy(o + 12, &kind, 2);
            memcpy(o + 14, &tid, 1);
            memcpy(o + 15, &ring, 1);
            memcpy(o + 16, &e->b, 8);
            n++;
        }
        atomic_store_explicit(&r->tail, t, memory_order_release);
    }
    return n;
}
