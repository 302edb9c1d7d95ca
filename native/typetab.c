/* typetab.c: the shared type table (what Go's compiler emits as type metadata: _type, its
 * ptrdata and GC mask). Types are declared in Python (gorun/types.py) and registered by name;
 * the table is append-only under its lock (RANK_TYPETAB) and read lock-free: entry i is valid
 * once i < ntypes (published with a release store, read with acquire) and never changes after.
 * Registering a name again with the same layout returns the same id, so every process of a run
 * agrees on the ids; the same name with another layout is refused. */
#include <string.h>

#include "runtime.h"

int typetab_register(const gotype_t *t, uint32_t *tid)
{
    typetab_t *tt = &G->typetab;
    int rc = TYPETAB_OK;
    lock(&tt->lock);
    uint32_t n = atomic_load_explicit(&tt->ntypes, memory_order_relaxed), found = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (strcmp(tt->types[i].name, t->name) == 0) {
            if (memcmp(&tt->types[i], t, sizeof *t) != 0) rc = TYPETAB_CONFLICT;
            found = i;
            break;
        }
    }
    if (!found && rc == TYPETAB_OK) {
        if (n >= MAX_TYPES) {
            rc = TYPETAB_FULL;
        } else {
            tt->types[n] = *t;
            found = n;
            atomic_store_explicit(&tt->ntypes, n + 1, memory_order_release);
        }
    }
    unlock(&tt->lock);
    *tid = found;
    return rc;
}
