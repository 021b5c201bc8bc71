/* Static and media files answered in C: URL-prefix mounts over directories,
 * conditional requests, a single byte range, precompressed variants (or
 * copies compressed once per file version, src/core/static/zcache.h), and an
 * open-file cache shared by a worker's handler threads.
 *
 * Threads: mounts are added before the object is shared; after that,
 * mt_static_match and mt_static_serve may be called from the I/O thread and
 * any number of handler threads at once (the cache has its own mutex). No
 * function here touches Python. A file's bytes go out by sendfile as far as
 * the socket takes them and are queued as a file range otherwise, so an
 * answer never waits for its client. */
#ifndef MT_STATIC_H
#define MT_STATIC_H

#include <stdbool.h>

#include "conn.h"
#include "http1.h"
#include "zcache.h"

typedef struct mt_static mt_static_t;

/* A set of mounts and its open-file cache. Returns NULL when out of memory.
 * Freed, with every cached descriptor, by mt_static_destroy. */
mt_static_t *mt_static_create(void);

/* Frees st (NULL is fine). No thread may be serving from it any more. */
void mt_static_destroy(mt_static_t *st);

/* Adds a mount: url_prefix (starts and ends with '/', e.g. "/static/") served
 * from directory `root`, which is opened now and held. Several mounts may
 * share a prefix; they are searched in the order they were added (the
 * staticfiles finders of --dev). max_age is the Cache-Control max-age of
 * ordinary files (0: "no-cache", negative: no Cache-Control); names carrying a
 * ManifestStaticFilesStorage hash get "public, max-age=31536000, immutable".
 * Not thread-safe. Returns 0, -EINVAL (bad prefix), -ENOENT/-ENOTDIR/-EACCES
 * (bad root) or -ENOMEM. */
int mt_static_mount(mt_static_t *st, const char *url_prefix, const char *root, int max_age);

/* Turns on compressed copies: a compressible file (mt_zcache_eligible) that
 * has no precompressed variant is compressed once per version and coding into
 * a cache bounded by config->budget, owned by st and freed with it, and served
 * like a precompressed variant (Content-Encoding, Vary, an ETag per coding,
 * ranges over the compressed bytes). Not thread-safe: call before st is
 * shared. Returns 0, -EINVAL (budget 0 or no coding) or -ENOMEM. */
int mt_static_compress(mt_static_t *st, const mt_zcache_config_t *config);

/* True when the path of req's target (in `base`, before '?'; the authority of
 * an absolute-form target is skipped) starts with a mount's prefix, compared
 * byte for byte before percent-decoding. Any method. */
bool mt_static_match(const mt_static_t *st, const mt_request_t *req, const char *base);

/* Answers the request of c (a matched one) on c, for the thread that owns c
 * (the I/O thread, for a request that arrived whole, or a handler thread):
 * GET and HEAD (405 otherwise), 200/206/304/
 * 404/416. The head's spans are consumed (c->head_consumed is set); a request
 * body is left unread for the caller to skip. With mt_static_compress, the
 * first request for a coding of a compressible file compresses it on the
 * calling thread (at most MT_ZCACHE_MAX_FILE bytes, once per version). Sets
 * *keep_alive (false when the request, a graceful stop or a failed write says
 * to close). Returns 0, or a
 * negative errno when the connection must be closed (client gone, write
 * timeout, out of memory, a file cut short while it was sent). */
int mt_static_serve(mt_static_t *st, mt_conn_t *c, bool *keep_alive);

#endif
