/* os.h: the operating-system helpers every concept shares (Go's os_linux.go, lock_futex.go's
 * futexsleep/futexwakeup, procyield, nanotime, cputicks): clocks, futexes on shared words,
 * spin hints, process liveness and shared-memory reservations. Linux only. See os_linux.c. */
#ifndef GORUN_OS_H
#define GORUN_OS_H

#include <stdatomic.h>
#include <stdint.h>

/* ---- clocks ---- */
uint64_t nanotime(void); /* CLOCK_MONOTONIC, ns */

/* Go's cputicks: the TSC on x86-64 (about 12 ns to read here, against 30 ns for
 * clock_gettime), CLOCK_MONOTONIC elsewhere. Used for lock hold times, which are taken on
 * every acquisition; convert with cputicks_per_ns (calibrated once per process, lazily). */
static inline uint64_t cputicks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return nanotime();
#endif
}
double cputicks_per_ns(void);

/* ---- spinning ---- */
/* One spin-wait hint (Go's procyield step): x86 `pause`, arm64 `yield`, else a compiler barrier. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static inline void procyield(int n)
{
    for (int i = 0; i < n; i++) cpu_relax();
}

/* ---- futexes on 32-bit words in shared memory (not FUTEX_PRIVATE: they work across
 * processes) ---- */
void futex_wait_until(_Atomic uint32_t *w, uint32_t val, long timeout_ns); /* sleep while *w == val, at most timeout */
void futex_wake(_Atomic uint32_t *w, int n);
void futex_wake_all(_Atomic uint32_t *w);

/* ---- processes ---- */
/* 1 if pid is gone or a zombie (an exited child its parent has not reaped yet, which
 * kill(pid, 0) still reports alive); 0 if it runs, or pid <= 0. */
int gorun_pid_dead(int32_t pid);
/* The OS state letter of pid from /proc/<pid>/stat (R, S, D, T, t, Z, ...), 'X' if gone, '?' if unknown. */

/* First thing in a forked child of the launcher: die with it (PR_SET_PDEATHSIG, SIGKILL), then
 * exit at once if it died before that was set (the child was re-parented and would never get
 * the signal): the parent must still be `launcher`. */
void gorun_child_of(int32_t launcher);

/* ---- shared-memory reservations ---- */
/* fallocate [off, off+len) of fd before first touch, so a full /dev/shm is an error, not a
 * SIGBUS. 0 on success (or nothing to do), else the errno. */
int gorun_reserve(int fd, uint64_t off, uint64_t len);
/* Give [off, off+len) of fd back to the file system (fallocate PUNCH_HOLE | KEEP_SIZE: on tmpfs
 * the pages are freed and read as zero afterwards, in every process mapping them; madvise
 * MADV_DONTNEED would only drop this process's mapping of shared pages). 0, or the errno
 * (EOPNOTSUPP: the file system cannot punch holes; EBADF: no fd). */
int gorun_release(int fd, uint64_t off, uint64_t len);
uint64_t gorun_shm_free(void); /* free bytes of the filesystem holding the run's segments */

#endif
