/* preempt.c: asynchronous preemption of a worker (Go's preemptM and doSigPreempt in
 * signal_unix.go).
 *
 * The GC process sends SIGURG to a worker that has a request pending (stop the world, scan your
 * roots, flush your barrier log) and has not reached a safepoint. A worker inside a runtime call
 * polls by itself; one running pure Python must be made to poll. Go injects a call to
 * asyncPreempt at an async-safe PC; gorun's async-safe points are CPython's bytecode boundaries,
 * where the interpreter runs "pending calls" (Py_AddPendingCall): plain C functions, called
 * without a Python frame and without touching the recursion depth, so a program that is legal
 * at the recursion limit stays legal when it is preempted (a Python-level signal handler added
 * frames and could inject a RecursionError).
 *
 * Py_AddPendingCall takes a lock, so it must not be called from a signal handler. The handler
 * only posts a process-local semaphore (async-signal-safe); a native thread of the worker, which
 * never runs Python and blocks every signal, waits on it and queues one pending call at a time
 * (`scheduled`); the call clears the flag and polls the safepoint. Overview: docs/design.md
 * "Safepoints".
 */
#define _GNU_SOURCE
#include "gorun_py.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static sem_t preempt_sem;
static _Atomic int scheduled; /* a pending call is queued and has not run yet */
static int32_t preempt_owner; /* pid that set this up (a forked child must set up its own) */

static void sigurg_handler(int sig)
{
    (void)sig;
    int saved = errno;
    sem_post(&preempt_sem);
    errno = saved;
}

/* Runs in the worker's main thread at a bytecode boundary, with the GIL. */
static int preempt_pending(void *arg)
{
    (void)arg;
    atomic_store(&scheduled, 0);
    safepoint_poll_c();   /* serves requests only if this P is RUNNING */
    return finq_run_py(); /* due finalizers and cleanups (mfinal_py.c), outside any runtime call */
}

static void *preempt_main(void *arg)
{
    (void)arg;
    for (;;) {
        if (sem_wait(&preempt_sem) != 0) continue; /* EINTR cannot happen (signals blocked) */
        int z = 0;
        if (!atomic_compare_exchange_strong(&scheduled, &z, 1)) continue; /* one is queued already */
        if (Py_AddPendingCall(preempt_pending, NULL) != 0)
            atomic_store(&scheduled, 0); /* queue full: the GC process re-sends in 100 us */
    }
    return NULL;
}

/* Called once by each worker process after fork, before the workload runs. */
int preempt_init(void)
{
    int32_t me = (int32_t)getpid();
    if (preempt_owner == me) return 0;
    if (sem_init(&preempt_sem, 0, 0) != 0) return -1;
    atomic_store(&scheduled, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread inherits a full mask */
    pthread_t t;
    int rc = pthread_create(&t, NULL, preempt_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    pthread_detach(t);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sigurg_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGURG, &sa, NULL) != 0) return -1;
    preempt_owner = me;
    return 0;
}
