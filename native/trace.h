/* trace.h: the event rings (trace.c; Go's runtime/trace.go traceEvent). docs/design.md "Events
 * and traces". Included by runtime.h; needs only the C library. */
#ifndef GORUN_TRACE_H
#define GORUN_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#define TRACE_RING_EVENTS      8192   /* records per ring (256 KiB); the launcher drains every 50 ms */
#define TRACE_LOCK_NS_DEFAULT  10000  /* GODEBUG tracelockns: lock waits recorded from 10 us */
#define TRACE_RCALL_NS_DEFAULT 100000 /* GODEBUG tracercallns: runtime calls recorded from 100 us */

/* Event kinds. Duration events are written once, at their end: ts = start, a = duration in ns
 * (saturated at UINT32_MAX), b = the argument named. Other events: ts = when, a and b named. */
#define TRACE_EVENTS(X)                                                                        \
    X(EV_STW_ACK, 1, "P: acknowledged a stop and parked; a = world_gen")                       \
    X(EV_STW_RESUME, 2, "P: the world restarted, the P runs again; a = world_gen")             \
    X(EV_STW_REQUEST, 3, "GC: stop requested; a = pause kind, b = pause record index")         \
    X(EV_STW_STOPPED, 4, "GC: saw the world stopped; a = pause kind, b = pause record index")  \
    X(EV_STW_RESTART, 5, "GC: world released; a = pause kind, b = pause record index")         \
    X(EV_ACTIVITY, 6, "GC main: activity change (phase); a = GCA_*, b = arg << 32 | cycle")    \
    X(EV_MARK_WORK, 7, "GC mark thread: one drain session (duration); b = scan bytes")         \
    X(EV_HANDSHAKE, 8, "GC main: a flush handshake round (duration); b = 1 if it found work")  \
    X(EV_ASSIST, 9, "P: a mark assist (duration); b = scan bytes done")                        \
    X(EV_REFILL, 10, "P: an mcache refill (duration); b = spanclass | spans swept << 8")       \
    X(EV_LOCK_WAIT, 11, "any: a contended lock wait over tracelockns (duration); b = lock id") \
    X(EV_RCALL, 12, "P: a runtime call over tracercallns (duration); b = RC_* kind")           \
    X(EV_SCAVENGE, 13, "any: a scavenge (duration); b = bytes released")                       \
    X(EV_COUNTER, 14, "GC: a counter sample; a = TC_* counter, b = value")

enum {
#define TRACE_EV_ENUM(name, v, doc) name = v,
    TRACE_EVENTS(TRACE_EV_ENUM)
#undef TRACE_EV_ENUM
};

/* EV_COUNTER's counters */
enum { TC_HEAP_LIVE = 0, TC_GOAL = 1, TC_TRIGGER = 2, TC_MEMORY_LIMIT = 3, TC_TOTAL_MEMORY = 4, TC_GC_CPU = 5, TC_N };

/* EV_LOCK_WAIT's lock ids: 0 mheap, 1 typetab, 2 workbuf, TRACE_LOCK_MCENTRAL + i mcentral[i] */
enum { TRACE_LOCK_MHEAP = 0, TRACE_LOCK_TYPETAB = 1, TRACE_LOCK_WORKBUF = 2, TRACE_LOCK_MCENTRAL = 3 };

/* One record, in shared memory. `seq` is index + 1 once the record is complete: the writer stores
 * the other fields, then seq (release); the launcher reads seq (acquire), then the fields. */
typedef struct traceev {
    _Atomic uint64_t seq;
    uint64_t ts; /* nanotime() */
    uint16_t kind;
    uint16_t tid; /* GC process: 0 main thread, 1 + i mark thread i; P's: 0 */
    uint32_t a;
    uint64_t b;
} traceev_t;

/* A ring's header. Writers reserve a slot by CAS on head (several GC-process threads share
 * one ring); the single reader (the launcher) advances tail (release) after copying a record
 * out. A writer that finds the ring full (head - tail == TRACE_RING_EVENTS) drops its event and
 * counts it in lost (relaxed fetch_add). */
typedef struct tracering {
    _Atomic uint64_t head; /* writers: CAS */
    _Atomic uint64_t tail; /* the launcher */
    _Atomic uint64_t lost; /* writers: relaxed fetch_add */
    uint64_t _pad[5];
} tracering_t;

_Static_assert(sizeof(traceev_t) == 32 && sizeof(tracering_t) == 64, "trace records changed: bump GORUN_ABI_VERSION");

/* Process-local: 1 if this run records events (DBG_TRACE), set at attach; the hooks' one branch. */
extern int gorun_trace_on;

/* The region's size for nrings rings (headers, then records), page-aligned by the layout. */
static inline uint64_t trace_region_bytes(uint32_t nrings)
{ return (uint64_t)nrings * (sizeof(tracering_t) + TRACE_RING_EVENTS * sizeof(traceev_t)); }

void trace_emit(uint32_t kind, uint32_t a, uint64_t b, uint64_t ts); /* this process's ring; lock-free */
void trace_emit_dur(uint32_t kind, uint64_t t0, uint64_t t1, uint64_t b);
static inline uint32_t trace_sat32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }
void trace_set_thread(uint16_t tid);      /* GC process: this thread's tid in its events */
void trace_set_ring(int ring);            /* this process writes ring `ring` (P id, or nprocs for the GC) */
void trace_counters(void);                /* GC process: one EV_COUNTER per TC_* */
uint32_t trace_lock_id(const void *lock); /* EV_LOCK_WAIT's b */
/* Launcher: copy complete records out of every ring into out (24-byte records, see trace.c),
 * at most cap of them; final = 1 also skips slots a dead writer reserved and never completed. */
uint64_t trace_drain(uint8_t *out, uint64_t cap, int final);

#endif
