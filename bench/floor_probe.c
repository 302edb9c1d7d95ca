/* floor_probe.c: the bare primitives under gorun's locks, timed in a C loop in this run, so
 * bench_locks.py can put the runtime's lock+unlock next to the machine's floor measured side by
 * side (shared/reference/floors.md gives the same figures for the machine class).
 *
 * Built and run by bench_locks.py (cc -O2 floor_probe.c -lpthread); prints one line per probe:
 *   <name> <ns per operation>
 * Probes: clock_gettime(CLOCK_MONOTONIC); an xchg futex lock+unlock (the uncontended path of
 * Go's lock_futex); a process-shared robust pthread mutex lock+unlock; a process-shared sem_t
 * wait+post. Each is the median of 7 runs of n iterations. Then the same three primitives
 * hammered by 2 forked processes (n/2 iterations each, in shared memory, from one start
 * instant): two_<kind> <M ops/s aggregate>. The 2-process futex is Drepper's three-state mutex
 * (cmpxchg, then FUTEX_WAIT / FUTEX_WAKE, no spinning): the bare primitive, not Go's lock.
 * Not part of gorun.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile uint64_t sink;
static _Atomic uint32_t key;
static pthread_mutex_t mu;
static sem_t sem;

static void p_clock(long n)
{
    uint64_t s = 0;
    for (long i = 0; i < n; i++) s += now();
    sink = s;
}

static void p_futex(long n)
{
    for (long i = 0; i < n; i++) {
        if (atomic_exchange_explicit(&key, 1, memory_order_acquire) != 0) abort();
        sink++;
        atomic_exchange_explicit(&key, 0, memory_order_release);
    }
}

static void p_pthread(long n)
{
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&mu);
        sink++;
        pthread_mutex_unlock(&mu);
    }
}

static void p_sem(long n)
{
    for (long i = 0; i < n; i++) {
        sem_wait(&sem);
        sink++;
        sem_post(&sem);
    }
}

static double run(void (*fn)(long), long n)
{
    double r[7];
    fn(n / 10);
    for (int k = 0; k < 7; k++) {
        uint64_t t0 = now();
        fn(n);
        r[k] = (double)(now() - t0) / (double)n;
    }
    qsort(r, 7, sizeof r[0], cmp);
    return r[3];
}

/* ---- 2 processes on one lock in shared memory ---- */
struct shared {
    _Atomic uint32_t go;
    _Atomic uint32_t fkey; /* Drepper mutex: 0 free, 1 locked, 2 locked + waiters */
    uint64_t counter;
    pthread_mutex_t mu;
    sem_t sem;
};

static void futex_lock(_Atomic uint32_t *k)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong(k, &c, 1)) return;
    if (c != 2) c = atomic_exchange(k, 2);
    while (c != 0) {
        syscall(SYS_futex, (uint32_t *)k, FUTEX_WAIT, 2, NULL, NULL, 0);
        c = atomic_exchange(k, 2);
    }
}

static void futex_unlock(_Atomic uint32_t *k)
{
    if (atomic_fetch_sub(k, 1) != 1) {
        atomic_store(k, 0);
        syscall(SYS_futex, (uint32_t *)k, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
}

static double two_procs(struct shared *sh, int kind, long n)
{
    atomic_store(&sh->go, 0);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            while (!atomic_load(&sh->go)) ;
            for (long j = 0; j < n; j++) {
                if (kind == 0) { futex_lock(&sh->fkey); sh->counter++; futex_unlock(&sh->fkey); }
                else if (kind == 1) { pthread_mutex_lock(&sh->mu); sh->counter++; pthread_mutex_unlock(&sh->mu); }
                else { sem_wait(&sh->sem); sh->counter++; sem_post(&sh->sem); }
            }
            _exit(0);
        }
    }
    usleep(20000);
    uint64_t t0 = now();
    atomic_store(&sh->go, 1);
    for (int i = 0; i < 2; i++) waitpid(kids[i], NULL, 0);
    return 2.0 * (double)n / ((double)(now() - t0) / 1e3); /* M ops/s */
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mu, &a);
    sem_init(&sem, 1, 1);
    printf("clock_gettime %.2f\n", run(p_clock, n));
    printf("futex %.2f\n", run(p_futex, n));
    printf("pthread %.2f\n", run(p_pthread, n));
    printf("sem %.2f\n", run(p_sem, n));

    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return 1;
    pthread_mutex_init(&sh->mu, &a);
    sem_init(&sh->sem, 1, 1);
    static const char *names[3] = {"futex", "pthread", "sem"};
    for (int k = 0; k < 3; k++) {
        double r[3];
        for (int i = 0; i < 3; i++) r[i] = two_procs(sh, k, n / 2);
        qsort(r, 3, sizeof r[0], cmp);
        printf("two_%s %.2f\n", names[k], r[1]);
    }
    return 0;
}
