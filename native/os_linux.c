/* os_linux.c: the operating-system helpers of os.h (Go's os_linux.go and the futex half of
 * lock_futex.go): the monotonic clock and the TSC calibration, futex sleep and wake on shared
 * 32-bit words, process liveness that does not call a zombie alive, and fallocate reservations
 * and releases (hole punching) of the shared segments. Nothing here knows the heap's layout. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* ---- clocks ---- */

uint64_t nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define CPUTICKS_CALIBRATE_NS 2000000 /* measure the TSC against the clock over 2 ms */

double cputicks_per_ns(void)
{
    static double ratio;
    if (ratio == 0) {
#if defined(__x86_64__) || defined(__i386__)
        uint64_t n0 = nanotime(), t0 = cputicks(), n1;
        do n1 = nanotime();
        while (n1 - n0 < CPUTICKS_CALIBRATE_NS);
        ratio = (double)(cputicks() - t0) / (double)(n1 - n0);
#else
        ratio = 1.0;
#endif
    }
    return ratio;
}

/* ---- futexes ---- */

void futex_wait_until(_Atomic uint32_t *w, uint32_t val, long timeout_ns)
{
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, &ts, NULL, 0);
}

void futex_wake(_Atomic uint32_t *w, int n) { syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0); }

void futex_wake_all(_Atomic uint32_t *w) { futex_wake(w, INT_MAX); }

/* ---- processes ---- */

static char gorun_proc_state(int32_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 'X' : '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *rp = strrchr(buf, ')'); /* the command name may contain anything, even ')' */
    return rp && rp[1] == ' ' && rp[2] ? rp[2] : '?';
}

int gorun_pid_dead(int32_t pid)
{
    if (pid <= 0) return 0;
    if (kill(pid, 0) == -1 && errno == ESRCH) return 1;
    char st = gorun_proc_state(pid);
    return st == 'Z' || st == 'X' || st == 'x';
}

void gorun_child_of(int32_t launcher)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != (pid_t)launcher) _exit(1);
}

/* ---- shared-memory reservations ---- */

int gorun_reserve(int fd, uint64_t off, uint64_t len)
{
    if (fd < 0 || len == 0) return 0;
    for (;;) {
        if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            return 0; /* not tmpfs (e.g. a file attached by hand): nothing to reserve with */
        return errno;
    }
}

int gorun_release(int fd, uint64_t off, uint64_t len)
{
    if (fd < 0) return EBADF;
    if (len == 0) return 0;
    for (;;) {
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

uint64_t gorun_shm_free(void)
{
    struct statvfs st;
    int fd = gorun_meta_fd >= 0 ? gorun_meta_fd : gorun_arena_fd;
    if (fd < 0 || fstatvfs(fd, &st) != 0) return 0;
    return (uint64_t)st.f_bavail * st.f_frsize;
}
