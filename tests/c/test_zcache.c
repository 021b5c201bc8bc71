/* Unit tests of src/core/static/zcache.c: compressed copies of files in a temporary
 * directory, decoded again with the reference decoders; hits, misses, a new
 * file version, the byte budget, refusals, and threads sharing the cache. */
#include "buf.c"
#include "compress.c"
#include "zcache.c"

#include <brotli/decode.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "tap.h"

static char dir[64];

/* ---- files ---- */

static void put_file(const char *name, const void *data, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, n) != (ssize_t)n)
        abort();
    close(fd);
}

/* Opens a file and fills its version, as the static handler's cache does. */
static int open_file(const char *name, mt_zcache_version_t *v) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0)
        abort();
    *v = (mt_zcache_version_t){sb.st_dev, sb.st_ino, sb.st_size, sb.st_mtim, sb.st_ctim};
    return fd;
}

/* n bytes of CSS-like text: compresses well. */
static char *css(size_t n, char salt) {
    static const char rule[] = ".button { color: #336699; margin: 0 auto; padding: 4px 8px; }\n";
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++)
        s[i] = rule[i % (sizeof rule - 1)];
    s[0] = salt;
    return s;
}

/* n letters from a fixed pseudo-random sequence: compresses to about 60%. */
static char *letters(size_t n, unsigned seed) {
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        s[i] = (char)('a' + (seed >> 16) % 26);
    }
    return s;
}

/* n bytes that no coding makes smaller. */
static char *noise(size_t n) {
    char *s = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s[i] = (char)x;
    }
    return s;
}

/* ---- decoding ---- */

/* Reads the whole memfd and decodes it; returns the decoded length or -1. */
static long decode_fd(int fd, off_t size, mt_coding_t coding, char *out, size_t cap) {
    char *in = malloc((size_t)size);
    if (pread(fd, in, (size_t)size, 0) != size) {
        free(in);
        return -1;
    }
    long n = -1;
    if (coding == MT_CODING_GZIP) {
        z_stream zs = {0};
        inflateInit2(&zs, 15 + 16);
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)size;
        zs.next_out = (Bytef *)out;
        zs.avail_out = (uInt)cap;
        if (inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.avail_in == 0)
            n = (long)zs.total_out;
        inflateEnd(&zs);
    } else if (coding == MT_CODING_BR) {
        size_t len = cap;
        if (BrotliDecoderDecompress((size_t)size, (const uint8_t *)in, &len, (uint8_t *)out) ==
            BROTLI_DECODER_RESULT_SUCCESS)
            n = (long)len;
    } else if (coding == MT_CODING_ZSTD) {
        size_t len = ZSTD_decompress(out, cap, in, (size_t)size);
        if (!ZSTD_isError(len))
            n = (long)len;
    }
    free(in);
    return n;
}

static bool decodes_to(int fd, off_t size, mt_coding_t coding, const char *want, size_t n) {
    char *out = malloc(n + 64);
    long got = decode_fd(fd, size, coding, out, n + 64);
    bool same = got == (long)n && memcmp(out, want, n) == 0;
    free(out);
    return same;
}

static mt_zcache_config_t config_of(size_t budget) {
    return (mt_zcache_config_t){.budget = budget, .min_size = 512, .codings = MT_CODING_ALL, .levels = {-1, 6, 4, 3}};
}

/* ---- tests ---- */

static void test_create(void) {
    mt_zcache_config_t config = config_of(0);
    ok(mt_zcache_create(&config) == NULL, "a budget of 0 is no cache");
    config = config_of(1 << 20);
    config.codings = MT_CODING_MASK(MT_CODING_IDENTITY);
    ok(mt_zcache_create(&config) == NULL, "no coding offered is no cache");
    config.codings = MT_CODING_MASK(MT_CODING_GZIP);
    mt_zcache_t *zc = mt_zcache_create(&config);
    ok(zc != NULL, "created");
    is_int(mt_zcache_codings(zc), MT_CODING_MASK(MT_CODING_GZIP), "offers the configured codings");
    is_int(mt_zcache_level(zc, MT_CODING_BR), 4, "keeps the levels");
    mt_zcache_destroy(zc);
    mt_zcache_destroy(NULL);
}

static void test_eligible(void) {
    mt_zcache_config_t config = config_of(1 << 20);
    mt_zcache_t *zc = mt_zcache_create(&config);
    ok(mt_zcache_eligible(zc, "text/css; charset=utf-8", 22000), "CSS is compressed");
    ok(mt_zcache_eligible(zc, "text/javascript; charset=utf-8", 512), "JavaScript from min_size on");
    ok(mt_zcache_eligible(zc, "image/svg+xml", MT_ZCACHE_MAX_FILE), "SVG up to the maximum");
    ok(!mt_zcache_eligible(zc, "text/css", 511), "not below min_size");
    ok(!mt_zcache_eligible(zc, "text/css", MT_ZCACHE_MAX_FILE + 1), "not above the maximum");
    ok(!mt_zcache_eligible(zc, "image/png", 22000), "not an image");
    ok(!mt_zcache_eligible(zc, "font/woff2", 22000), "not an already compressed font");
    ok(!mt_zcache_eligible(NULL, "text/css", 22000), "nothing without a cache");
    mt_zcache_destroy(zc);
}

static void test_miss_then_hit(void) {
    mt_zcache_config_t config = config_of(1 << 20);
    mt_zcache_t *zc = mt_zcache_create(&config);
    size_t n = 22000;
    char *text = css(n, '.');
    put_file("base.css", text, n);
    mt_zcache_version_t v;
    int fd = open_file("base.css", &v);
    for (mt_coding_t c = MT_CODING_GZIP; c <= MT_CODING_ZSTD; c++) {
        const char *name = mt_compress_coding_name(c);
        int zfd = -1, zfd2 = -1;
        off_t zsize = 0, zsize2 = 0;
        mt_zcache_item_t *item = NULL, *item2 = NULL;
        unsigned long before = zc->compressions;
        is_int(mt_zcache_get(zc, fd, &v, "text/css", c, &zfd, &zsize, &item), 0, "%s: a miss compresses", name);
        is_int(zc->compressions, before + 1, "%s: once", name);
        ok(zsize > 0 && zsize < (off_t)n / 4, "%s: smaller (%lld bytes)", name, (long long)zsize);
        ok(decodes_to(zfd, zsize, c, text, n), "%s: decodes to the file", name);
        ok(fcntl(zfd, F_GET_SEALS) & F_SEAL_WRITE, "%s: the copy is sealed", name);
        is_int(mt_zcache_get(zc, fd, &v, "text/css", c, &zfd2, &zsize2, &item2), 0, "%s: then a hit", name);
        is_int(zc->compressions, before + 1, "%s: not compressed again", name);
        ok(item2 == item && zfd2 == zfd && zsize2 == zsize, "%s: the same copy", name);
        mt_zcache_release(zc, item);
        mt_zcache_release(zc, item2);
    }
    is_int(zc->count, 3, "one copy per coding");
    is_int(zc->bytes % ZCACHE_PAGE, 0, "counted in pages");
    int zfd;
    off_t zsize;
    mt_zcache_item_t *item = (mt_zcache_item_t *)1;
    is_int(mt_zcache_get(zc, fd, &v, "text/css", MT_CODING_IDENTITY, &zfd, &zsize, &item), -ENOENT,
           "identity is no copy");
    ok(item == NULL, "nothing held after a refusal");
    close(fd);
    free(text);
    mt_zcache_destroy(zc);

    config.codings = MT_CODING_MASK(MT_CODING_BR);
    zc = mt_zcache_create(&config);
    text = css(n, '.');
    fd = open_file("base.css", &v);
    is_int(mt_zcache_get(zc, fd, &v, "text/css", MT_CODING_GZIP, &zfd, &zsize, &item), -ENOENT,
           "a coding not offered is refused");
    is_int(zc->compressions, 0, "without compressing");
    close(fd);
    free(text);
    mt_zcache_destroy(zc);
}

static void test_incompressible_type(void) {
    mt_zcache_config_t config = config_of(1 << 20);
    mt_zcache_t *zc = mt_zcache_create(&config);
    char *text = css(4000, '.');
    put_file("picture.png", text, 4000);
    mt_zcache_version_t v;
    int fd = open_file("picture.png", &v), zfd;
    off_t zsize;
    mt_zcache_item_t *item;
    is_int(mt_zcache_get(zc, fd, &v, "image/png", MT_CODING_GZIP, &zfd, &zsize, &item), -ENOENT,
           "an image is not compressed");
    is_int(mt_zcache_get(zc, fd, &v, "text/css", MT_CODING_GZIP, &zfd, &zsize, &item), 0, "the same bytes as CSS are");
    mt_zcache_release(zc, item);
    is_int(zc->compressions, 1, "the image was never read");
    close(fd);
    free(text);

    /* Bytes that do not get smaller: refused, and remembered as refused. */
    char *random = noise(4000);
    put_file("noise.txt", random, 4000);
    fd = open_file("noise.txt", &v);
    is_int(mt_zcache_get(zc, fd, &v, "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), -ENOENT,
           "no gain: served as it is");
    is_int(mt_zcache_get(zc, fd, &v, "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), -ENOENT, "no gain, again");
    is_int(zc->compressions, 2, "tried once per version");
    close(fd);
    free(random);
    mt_zcache_destroy(zc);
}

static void test_new_version(void) {
    mt_zcache_config_t config = config_of(1 << 20);
    mt_zcache_t *zc = mt_zcache_create(&config);
    char *old_text = css(6000, 'a'), *new_text = css(7000, 'b');
    put_file("app.js", old_text, 6000);
    mt_zcache_version_t v;
    int fd = open_file("app.js", &v), zfd;
    off_t zsize;
    mt_zcache_item_t *old_item, *item;
    is_int(mt_zcache_get(zc, fd, &v, "text/javascript", MT_CODING_ZSTD, &zfd, &zsize, &old_item), 0, "first version");
    int old_fd = zfd;
    off_t old_size = zsize;
    close(fd);

    /* Rewritten in place (same inode, new size and mtime), as an editor or a deploy may. */
    put_file("app.js", new_text, 7000);
    mt_zcache_version_t v2;
    fd = open_file("app.js", &v2);
    ok(v2.ino == v.ino, "same inode");
    is_int(mt_zcache_get(zc, fd, &v2, "text/javascript", MT_CODING_ZSTD, &zfd, &zsize, &item), 0, "second version");
    is_int(zc->compressions, 2, "compressed again");
    ok(decodes_to(zfd, zsize, MT_CODING_ZSTD, new_text, 7000), "to the new bytes");
    is_int(zc->count, 1, "the old copy left the cache");
    ok(decodes_to(old_fd, old_size, MT_CODING_ZSTD, old_text, 6000), "yet stays readable while held");
    mt_zcache_release(zc, old_item);
    mt_zcache_release(zc, item);

    /* A version the file no longer has (it changed between the stat and the read). */
    mt_zcache_version_t stale = v2;
    stale.mtime.tv_nsec ^= 1;
    is_int(mt_zcache_get(zc, fd, &stale, "text/javascript", MT_CODING_GZIP, &zfd, &zsize, &item), -EIO,
           "a file that changed while read is not cached");
    is_int(zc->count, 1, "nothing entered");
    close(fd);
    free(old_text);
    free(new_text);
    mt_zcache_destroy(zc);
}

static void test_budget(void) {
    /* Copies of 3000 letters take one page each; the budget holds two. */
    mt_zcache_config_t config = config_of(2 * ZCACHE_PAGE);
    mt_zcache_t *zc = mt_zcache_create(&config);
    char names[4][16];
    char *texts[4];
    mt_zcache_version_t v[4];
    int fds[4], zfd;
    off_t zsize;
    mt_zcache_item_t *item, *held = NULL;
    for (int i = 0; i < 4; i++) {
        snprintf(names[i], sizeof names[i], "f%d.txt", i);
        texts[i] = letters(3000, (unsigned)i + 1);
        put_file(names[i], texts[i], 3000);
        fds[i] = open_file(names[i], &v[i]);
    }
    for (int i = 0; i < 3; i++) {
        is_int(mt_zcache_get(zc, fds[i], &v[i], "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), 0, "file %d", i);
        if (i == 0)
            held = item; /* file 0 is being sent while it is evicted */
        else
            mt_zcache_release(zc, item);
        ok(zc->bytes <= config.budget, "within the budget after file %d (%zu bytes)", i, zc->bytes);
    }
    is_int(zc->count, 2, "the oldest copy was evicted");
    ok(find_item(zc, hash_key(&v[0], MT_CODING_GZIP), &v[0], MT_CODING_GZIP) == NULL, "file 0 is the one");
    ok(fcntl(held->fd, F_GETFD) >= 0 && decodes_to(held->fd, held->size, MT_CODING_GZIP, texts[0], 3000),
       "an evicted copy in use stays open");
    mt_zcache_release(zc, held);

    /* A hit makes a copy the most recent: file 1 stays when file 3 comes. */
    unsigned long before = zc->compressions;
    is_int(mt_zcache_get(zc, fds[1], &v[1], "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), 0, "file 1 again");
    mt_zcache_release(zc, item);
    is_int(zc->compressions, before, "a hit");
    is_int(mt_zcache_get(zc, fds[3], &v[3], "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), 0, "file 3");
    mt_zcache_release(zc, item);
    ok(find_item(zc, hash_key(&v[1], MT_CODING_GZIP), &v[1], MT_CODING_GZIP) != NULL, "file 1 kept");
    ok(find_item(zc, hash_key(&v[2], MT_CODING_GZIP), &v[2], MT_CODING_GZIP) == NULL, "file 2 evicted");
    mt_zcache_destroy(zc);

    /* A copy larger than the whole budget is refused once, not compressed per request. */
    config = config_of(ZCACHE_PAGE);
    zc = mt_zcache_create(&config);
    char *big = letters(20000, 9);
    put_file("big.txt", big, 20000);
    mt_zcache_version_t bv;
    int bfd = open_file("big.txt", &bv);
    is_int(mt_zcache_get(zc, bfd, &bv, "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), -ENOENT,
           "a copy beyond the budget is not kept");
    is_int(mt_zcache_get(zc, bfd, &bv, "text/plain", MT_CODING_GZIP, &zfd, &zsize, &item), -ENOENT, "nor tried again");
    is_int(zc->compressions, 1, "compressed once");
    is_int(zc->bytes, 0, "a refusal costs no bytes");
    close(bfd);
    free(big);
    mt_zcache_destroy(zc);
    for (int i = 0; i < 4; i++) {
        close(fds[i]);
        free(texts[i]);
    }
}

/* ---- threads ---- */

typedef struct worker_arg {
    mt_zcache_t *zc;
    int fds[3];
    mt_zcache_version_t v[3];
    const char *texts[3];
    int failures;
} worker_arg_t;

static void *hammer(void *p) {
    worker_arg_t *a = p;
    for (int i = 0; i < 300; i++) {
        int f = i % 3;
        mt_coding_t c = (mt_coding_t)(1 + (i / 3) % 3);
        int zfd;
        off_t zsize;
        mt_zcache_item_t *item;
        if (mt_zcache_get(a->zc, a->fds[f], &a->v[f], "text/css", c, &zfd, &zsize, &item) < 0 ||
            (i % 37 == 0 && !decodes_to(zfd, zsize, c, a->texts[f], 5000)))
            __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
        mt_zcache_release(a->zc, item);
    }
    return NULL;
}

static void test_threads(void) {
    /* A budget of four pages for nine copies: hits, misses and evictions race. */
    mt_zcache_config_t config = config_of(4 * ZCACHE_PAGE);
    worker_arg_t a = {.zc = mt_zcache_create(&config)};
    char *texts[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d.css", i);
        texts[i] = letters(5000, 100 + (unsigned)i);
        put_file(name, texts[i], 5000);
        a.fds[i] = open_file(name, &a.v[i]);
        a.texts[i] = texts[i];
    }
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, hammer, &a);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    is_int(a.failures, 0, "four threads share the cache");
    ok(a.zc->bytes <= config.budget && a.zc->count <= 4, "within the budget after the race");
    mt_zcache_destroy(a.zc);
    for (int i = 0; i < 3; i++) {
        close(a.fds[i]);
        free(texts[i]);
    }
}

static void remove_tree(void) {
    static const char *names[] = {"base.css", "picture.png", "noise.txt", "app.js", "f0.txt", "f1.txt",
                                  "f2.txt",   "f3.txt",      "big.txt",   "t0.css", "t1.css", "t2.css"};
    char path[128];
    for (size_t i = 0; i < MT_ARRAY_SIZE(names); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/mt-zcache-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    test_create();
    test_eligible();
    test_miss_then_hit();
    test_incompressible_type();
    test_new_version();
    test_budget();
    test_threads();
    remove_tree();
    mt_buf_pool_drain();
    return done_testing();
}
