/* Guarded input buffers for the C unit tests of parsers (picohttpparser's
 * habit): the input is copied so that it ends right before a PROT_NONE page,
 * so a parser that reads one byte past its input crashes under the test
 * instead of reading garbage. */
#ifndef MT_TEST_GUARD_H
#define MT_TEST_GUARD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct guarded {
    char *map;
    size_t maplen;
} guarded_t;

/* Copies input[0, n) so that it ends right before a PROT_NONE page; returns
 * the copy (aborts if the mapping fails). guard_free releases it. */
static inline void *guard_copy(guarded_t *g, const void *input, size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = (n + page - 1) / page * page;
    if (body == 0)
        body = page;
    g->maplen = body + page;
    g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED || mprotect(g->map + body, page, PROT_NONE) < 0) {
        perror("mmap");
        abort();
    }
    char *data = g->map + body - n;
    if (n)
        memcpy(data, input, n);
    return data;
}

static inline void guard_free(guarded_t *g) {
    if (g->map)
        munmap(g->map, g->maplen);
    g->map = NULL;
}

#endif
