/* Unit tests of src/core/static/file_cache.c: lookups under a root that never leave
 * it, hits, misses, revalidation of changed files, eviction while an entry is
 * still in use. (test_static.c exercises the cache through requests.) */
#include "clock.c"
#include "conditional.c"
#include "file_cache.c"

#include <stdlib.h>
#include <sys/stat.h>

#include "tap.h"

static char root[64];
static int root_fd;
static const int owner; /* any address serves as the owner key */

static void write_file(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static mt_file_t *get(mt_file_cache_t *fc, const char *path) {
    int err = 0;
    mt_file_t *f = mt_file_cache_get(fc, &owner, root_fd, path, strlen(path), &err);
    if (f == NULL)
        diag("lookup of %s failed: %d", path, err);
    return f;
}

static void test_hits_and_misses(void) {
    mt_file_cache_t *fc = mt_file_cache_create(16, 60000);
    mt_file_t *a = get(fc, "a.txt");
    ok(a && a->fd >= 0 && a->size == 5, "a regular file is opened");
    unsigned long opens = fc->opens;
    mt_file_t *again = get(fc, "a.txt");
    ok(again == a && fc->opens == opens, "a second lookup is a hit: the same entry, nothing opened");
    mt_file_release(fc, again);
    mt_file_t *miss = get(fc, "missing.txt");
    ok(miss && miss->fd == -1, "a missing file is a remembered miss");
    mt_file_t *dir = get(fc, "sub");
    ok(dir && dir->fd == -1, "a directory is not served");
    mt_file_t *out = get(fc, "escape");
    ok(out && out->fd == -1, "a symlink that leaves the root is not followed");
    mt_file_release(fc, miss);
    mt_file_release(fc, dir);
    mt_file_release(fc, out);
    mt_file_release(fc, a);
    mt_file_cache_destroy(fc);
}

static void test_changed_file_reopened(void) {
    mt_file_cache_t *fc = mt_file_cache_create(16, 60000);
    mt_file_t *a = get(fc, "b.txt");
    ok(a && a->size == 3, "the first version");
    mt_file_release(fc, a);
    write_file("b.txt", "longer text");
    mt_file_t *b = get(fc, "b.txt");
    ok(b && b->size == 11, "a file rewritten in place is noticed within the TTL (fstat of the descriptor)");
    mt_file_release(fc, b);
    mt_file_t *c = get(fc, "b.txt");
    mt_file_expire(fc, c);
    mt_file_release(fc, c);
    unsigned long opens = fc->opens;
    mt_file_t *d = get(fc, "b.txt");
    ok(d && d->size == 11 && fc->opens == opens, "an expired entry of an unchanged file is revalidated, not reopened");
    mt_file_release(fc, d);
    mt_file_cache_destroy(fc);
}

static void test_eviction_keeps_entries_in_use(void) {
    mt_file_cache_t *fc = mt_file_cache_create(2, 60000);
    mt_file_t *a = get(fc, "a.txt");
    mt_file_release(fc, get(fc, "b.txt"));
    mt_file_release(fc, get(fc, "c.txt"));
    is_int(fc->count, 2, "the cache holds at most its capacity");
    ok(!a->in_table, "the least recently used entry was evicted");
    char buf[8] = "";
    ok(pread(a->fd, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0, "an evicted entry in use keeps its descriptor");
    mt_file_release(fc, a); /* the last reference: freed here (ASan checks) */
    mt_file_cache_destroy(fc);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/mt-file-cache-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    write_file("a.txt", "hello");
    write_file("b.txt", "abc");
    write_file("c.txt", "c");
    char path[256];
    snprintf(path, sizeof path, "%s/sub", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/escape", root);
    symlink("/etc/passwd", path);
    root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    mt_file_cache_probe(root_fd);
    test_hits_and_misses();
    test_changed_file_reopened();
    test_eviction_keeps_entries_in_use();
    close(root_fd);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", root);
    if (system(command) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
