/* runtime1.c: the process-local runtime state and the fatal-error path.
 *
 * Every gorun process (launcher, GC process, workers) maps the two segments at its own address;
 * these globals say where (G: the metadata segment, A: the arena), which P this process is
 * (thisP, NULL outside a worker), its pid (cached at attach and after fork) and the segments'
 * file descriptors (kept for reservations at growth). They are inherited across fork.
 *
 * gorun_throw is Go's throw (panic.go): a broken invariant or an unrecoverable runtime error
 * prints one line naming the process and exits with status 3; the launcher reports the death.
 * It never unwinds, never runs Python and takes no lock, so it is safe anywhere, including with
 * runtime locks held (the waiters see the holder die).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime.h"

gorun_shared_t *G;
uint8_t *A;
gp_t *thisP;
int32_t gorun_ospid;
int gorun_meta_fd = -1, gorun_arena_fd = -1;

#define GORUN_EXIT_FATAL 3 /* the exit status of a fatal runtime error */

void gorun_throw(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (thisP)
        fprintf(stderr, "gorun: fatal error (pid %d, P%u): %s\n", (int)getpid(), thisP->id, buf);
    else
        fprintf(stderr, "gorun: fatal error (pid %d%s): %s\n", (int)getpid(),
                G && G->gc.gc_ospid == (int32_t)getpid() ? ", GC process" : "", buf);
    fflush(stderr);
    _exit(GORUN_EXIT_FATAL);
}
