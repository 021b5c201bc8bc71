#include "static.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "common.h"
#include "compress.h"
#include "conditional.h"
#include "cors.h"
#include "file_cache.h"
#include "http1_write.h"
#include "respond.h"
#include "server.h"
#include "zcache.h"

#define CACHE_TTL_MS 1000   /* an entry is trusted this long, then revalidated with one fstatat */
#define CACHE_CAPACITY 1024 /* entries (open descriptors and remembered misses) */
#define MAX_PATH 1024       /* decoded path below a mount, suffix included */
#define SMALL_BODY 12288    /* bodies up to this size go out with the head in one writev */
#define IMMUTABLE_MAX_AGE "public, max-age=31536000, immutable"

typedef struct mount {
    char *prefix;
    size_t prefix_len;
    int root_fd; /* O_PATH descriptor of the root, held for the mount's life */
    int max_age;
} mount_t;

/* The file name suffix of each coding's precompressed variant. */
static const struct {
    const char *text;
    size_t len;
} suffixes[] = {
    [MT_CODING_IDENTITY] = {"", 0},
    [MT_CODING_GZIP] = {".gz", 3},
    [MT_CODING_BR] = {".br", 3},
    [MT_CODING_ZSTD] = {".zst", 4},
};

#define NCODINGS MT_ARRAY_SIZE(suffixes)

struct mt_static {
    mount_t **mounts;
    int nmounts;
    mt_file_cache_t *files; /* the open-file cache, shared by every mount (file_cache.h) */
    mt_zcache_t *zcache;    /* compressed copies of files without precompressed variants; NULL: off */
};

/* ---- mounts ---- */

mt_static_t *mt_static_create(void) {
    mt_static_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    if ((st->files = mt_file_cache_create(CACHE_CAPACITY, CACHE_TTL_MS)) == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

void mt_static_destroy(mt_static_t *st) {
    if (st == NULL)
        return;
    mt_file_cache_destroy(st->files);
    for (int i = 0; i < st->nmounts; i++) {
        close(st->mounts[i]->root_fd);
        free(st->mounts[i]->prefix);
        free(st->mounts[i]);
    }
    free(st->mounts);
    mt_zcache_destroy(st->zcache);
    free(st);
}

int mt_static_mount(mt_static_t *st, const char *url_prefix, const char *root, int max_age) {
    size_t plen = strlen(url_prefix);
    if (plen == 0 || url_prefix[0] != '/' || url_prefix[plen - 1] != '/')
        return -EINVAL;
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    mount_t *m = calloc(1, sizeof *m);
    mount_t **mounts = realloc(st->mounts, sizeof *mounts * (size_t)(st->nmounts + 1));
    if (mounts)
        st->mounts = mounts;
    if (m == NULL || mounts == NULL || (m->prefix = strdup(url_prefix)) == NULL) {
        free(m);
        close(fd);
        return -ENOMEM;
    }
    mt_file_cache_probe(fd);
    m->prefix_len = plen;
    m->root_fd = fd;
    m->max_age = max_age;
    st->mounts[st->nmounts++] = m;
    return 0;
}

int mt_static_compress(mt_static_t *st, const mt_zcache_config_t *config) {
    mt_zcache_t *zc = mt_zcache_create(config);
    if (zc == NULL)
        return config->budget == 0 || (config->codings & MT_CODING_ALL) == 0 ? -EINVAL : -ENOMEM;
    mt_zcache_destroy(st->zcache);
    st->zcache = zc;
    return 0;
}

bool mt_static_match(const mt_static_t *st, const mt_request_t *req, const char *base) {
    const char *path;
    size_t n = mt_http1_target_path(req, base, &path, NULL);
    for (int i = 0; i < st->nmounts; i++)
        if (n >= st->mounts[i]->prefix_len && memcmp(path, st->mounts[i]->prefix, st->mounts[i]->prefix_len) == 0)
            return true;
    return false;
}

/* ---- request analysis ---- */

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes raw[0, n) into out (NUL-terminated, at most cap bytes with
 * the NUL) and refuses anything that could name a file other than the plain
 * reading of the URL: empty, "." and ".." segments (encoded dots decode
 * first), an encoded '/', backslashes and control characters (NUL among
 * them). Invalid escapes stay as they are, as in PATH_INFO. Returns the
 * length, or -1. */
static ssize_t clean_path(const char *raw, size_t n, char *out, size_t cap) {
    size_t o = 0, seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || raw[i] == '/') {
            size_t len = o - seg;
            if (len == 0 || (len <= 2 && memcmp(out + seg, "..", len) == 0))
                return -1;
            if (i == n)
                break;
            if (o + 2 > cap)
                return -1;
            out[o++] = '/';
            seg = o;
            continue;
        }
        unsigned char ch = (unsigned char)raw[i];
        int hi, lo;
        if (ch == '%' && i + 2 < n && (hi = hex_digit((unsigned char)raw[i + 1])) >= 0 &&
            (lo = hex_digit((unsigned char)raw[i + 2])) >= 0) {
            ch = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (ch == '/')
                return -1;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '\\' || o + 2 > cap)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* A request field, several of them joined (mt_request_header). NULL when
 * absent; *too_long is set when the joined list overflowed (then NULL too). */
static const char *header_value(const mt_request_t *req, const char *base, const char *lower, size_t n, char *buf,
                                size_t *len, bool *too_long) {
    const char *value;
    int rc = mt_request_header(req, base, lower, n, buf, &value, len);
    *too_long = rc == -E2BIG;
    return rc > 0 ? value : NULL;
}

#define HEADER(name, len) header_value(req, base, name, sizeof name - 1, joined, (len), &too_long)

/* The coding the client prefers among the available variants (a mask of
 * MT_CODING_MASK bits), by the negotiation that compressed responses use.
 * Several Accept-Encoding fields are one list; one too long to join gets
 * identity, never a coding its lost part may have refused. */
static mt_coding_t choose_coding(const mt_request_t *req, const char *base, unsigned available) {
    char joined[MT_REQUEST_FIELD_MAX];
    const char *value;
    size_t n;
    if (mt_request_header(req, base, "accept-encoding", 15, joined, &value, &n) <= 0)
        return MT_CODING_IDENTITY;
    return mt_compress_negotiate(value, n, available);
}

static bool hex12(const char *s) {
    for (int i = 0; i < 12; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* True when the last path segment carries a ManifestStaticFilesStorage hash:
 * "name.0123456789ab.ext", or "name.0123456789ab" for a name without an
 * extension (Django hashes those too). */
static bool hashed_name(const char *path, size_t len) {
    const char *slash = memrchr(path, '/', len);
    const char *name = slash ? slash + 1 : path;
    size_t n = (size_t)(path + len - name);
    const char *dot = memrchr(name, '.', n);
    if (dot == NULL)
        return false;
    size_t before = (size_t)(dot - name), after = n - before - 1;
    if (before >= 14 && name[before - 13] == '.' && hex12(dot - 12))
        return true;
    return after == 12 && before >= 1 && hex12(dot + 1);
}

static const struct {
    const char *ext, *type;
} content_types[] = {
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"eot", "application/vnd.ms-fontobject"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "text/xml; charset=utf-8"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

static const char *content_type(const char *path, size_t len) {
    const char *end = path + len, *p = end;
    while (p > path && p[-1] != '.' && p[-1] != '/')
        p--;
    if (p > path && p[-1] == '.')
        for (size_t i = 0; i < MT_ARRAY_SIZE(content_types); i++)
            if (strlen(content_types[i].ext) == (size_t)(end - p) &&
                strncasecmp(content_types[i].ext, p, (size_t)(end - p)) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

/* ---- answering ---- */

typedef struct reply {
    mt_conn_t *c;
    mt_buf_t out;
    mt_respond_t head; /* the response writer: framing, fields, connection */
} reply_t;

static int send_out(reply_t *r) {
    struct iovec iov = {r->out.data, r->out.len};
    return mt_conn_writev(r->c, &iov, 1);
}

/* A short text/plain answer of the server's own, with `fields` added to the
 * head. */
static int answer_text(reply_t *r, int status, const mt_field_t *fields, int nfields) {
    char body[64];
    int blen = snprintf(body, sizeof body, "%d %s\n", status, mt_http1_reason(status));
    int rc =
        mt_respond_answer(&r->head, &r->out, status, fields, nfields, "text/plain; charset=utf-8", body, (size_t)blen);
    r->c->answer_status = status;
    r->c->answer_bytes = r->head.no_body ? 0 : (unsigned long long)blen;
    return rc ? rc : send_out(r);
}

/* Sends [off, off + count) of the file after the head in r->out: a small body
 * is read into the same buffer and leaves with the head in one write. */
static int send_file(reply_t *r, int fd, off_t off, size_t count) {
    if (count <= SMALL_BODY) {
        int rc = mt_buf_reserve(&r->out, count);
        if (rc < 0)
            return rc;
        size_t got = 0;
        while (got < count) {
            ssize_t n = pread(fd, r->out.data + r->out.len + got, count - got, off + (off_t)got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return -EIO; /* cut short since its stat */
            got += (size_t)n;
        }
        r->out.len += count;
        return send_out(r);
    }
    struct iovec head = {r->out.data, r->out.len};
    int rc = mt_conn_writev_more(r->c, &head, 1);
    if (rc == 0)
        rc = mt_conn_sendfile(r->c, fd, &off, count);
    if (rc != -ENOSYS && rc != -EINVAL)
        return rc;
    /* A file system that sendfile cannot read: copy through the buffer. */
    while (count > 0) {
        ssize_t n = pread(fd, r->out.data, MT_MIN(count, r->out.cap), off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EIO;
        r->out.len = (size_t)n;
        if ((rc = send_out(r)) < 0)
            return rc;
        off += n;
        count -= (size_t)n;
    }
    return 0;
}

/* Looks up the file for the request path in the matching mounts (the first
 * that has it wins). Returns a referenced entry and its mount, NULL for a 404,
 * or NULL with *err for a 503. */
static mt_file_t *find_file(mt_static_t *st, const mt_request_t *req, const char *base, char *path, size_t *plen,
                            int *err) {
    const char *raw;
    size_t n = mt_http1_target_path(req, base, &raw, NULL);
    for (int i = 0; i < st->nmounts; i++) {
        const mount_t *m = st->mounts[i];
        if (n < m->prefix_len || memcmp(raw, m->prefix, m->prefix_len) != 0)
            continue;
        ssize_t len = clean_path(raw + m->prefix_len, n - m->prefix_len, path, MAX_PATH - 8);
        if (len < 0)
            continue;
        mt_file_t *e = mt_file_cache_get(st->files, m, m->root_fd, path, (size_t)len, err);
        if (e == NULL)
            return NULL;
        if (e->fd >= 0) {
            *plen = (size_t)len;
            return e;
        }
        mt_file_release(st->files, e);
    }
    return NULL;
}

/* The precompressed variants beside e that are at least as new as it: fills
 * variants[] (referenced) and returns their bits. */
static unsigned find_variants(mt_static_t *st, mt_file_t *e, char *path, size_t len, mt_file_t *variants[NCODINGS]) {
    unsigned available = 0;
    for (mt_coding_t c = MT_CODING_GZIP; c < NCODINGS; c++) {
        memcpy(path + len, suffixes[c].text, suffixes[c].len + 1);
        int err;
        mt_file_t *v = mt_file_cache_get(st->files, e->owner, ((const mount_t *)e->owner)->root_fd, path,
                                         len + suffixes[c].len, &err);
        variants[c] = NULL;
        if (v && v->fd >= 0 &&
            (v->mtime.tv_sec > e->mtime.tv_sec ||
             (v->mtime.tv_sec == e->mtime.tv_sec && v->mtime.tv_nsec >= e->mtime.tv_nsec))) {
            variants[c] = v;
            available |= MT_CODING_MASK(c);
        } else if (v) {
            mt_file_release(st->files, v);
        }
    }
    path[len] = '\0';
    return available;
}

/* For a file without precompressed variants: the copy that the compressed-file
 * cache holds (or makes now) in the coding the client prefers among those
 * offered. Returns that coding with *item referenced and *copy a view of the
 * file's entry on the copy's bytes (its tag names the level, since a copy made
 * at another level has other bytes), or MT_CODING_IDENTITY with *item NULL.
 * Sets *vary when the file is one the cache compresses, whatever this client
 * accepts, so that caches keep the representations apart. */
static mt_coding_t find_compressed(mt_static_t *st, const mt_request_t *req, const char *base, const mt_file_t *file,
                                   const char *path, size_t plen, mt_file_t *copy, mt_zcache_item_t **item,
                                   bool *vary) {
    const char *type = content_type(path, plen);
    if (!mt_zcache_eligible(st->zcache, type, file->size))
        return MT_CODING_IDENTITY;
    *vary = true;
    mt_coding_t coding = choose_coding(req, base, mt_zcache_codings(st->zcache));
    if (coding == MT_CODING_IDENTITY)
        return coding;
    mt_zcache_version_t version = {file->dev, file->ino, file->size, file->mtime, file->ctime};
    int fd;
    off_t size;
    if (mt_zcache_get(st->zcache, file->fd, &version, type, coding, &fd, &size, item) < 0)
        return MT_CODING_IDENTITY; /* not worth it, or not possible now: the file as it is */
    /* Only the fields answer_file reads, all fixed since the entry was made:
     * the rest (references, LRU links, checked_ms) change under the lock. */
    memset(copy, 0, sizeof *copy);
    copy->fd = fd;
    copy->size = size;
    copy->mtime = file->mtime;
    copy->owner = file->owner;
    memcpy(copy->last_modified, file->last_modified, sizeof copy->last_modified);
    /* A file tag is at most 50 characters (three 64-bit numbers in hex). */
    snprintf(copy->tag, sizeof copy->tag, "%.50s-z%d", file->tag, mt_zcache_level(st->zcache, coding));
    return coding;
}

/* Answers with the representation `rep` of the file at `path`. */
static int answer_file(reply_t *r, const mt_request_t *req, const char *base, mt_file_t *rep, mt_coding_t coding,
                       bool vary, const char *path, size_t plen) {
    char etag[80];
    size_t elen = (size_t)snprintf(etag, sizeof etag, "\"%s%s%s\"", rep->tag, coding ? "-" : "",
                                   coding ? mt_compress_coding_name(coding) : "");
    int64_t mtime = rep->mtime.tv_sec;
    const char *v;
    size_t vlen;
    char joined[MT_REQUEST_FIELD_MAX];
    bool too_long;
    bool head_only = req->method_id == HTTP_HEAD;

    /* Preconditions in the order of RFC 9110 13.2.2. A list too long to
     * join is a value we cannot use: If-Match fails, If-None-Match matches
     * nothing, Range and If-Range are ignored (the whole file goes out). */
    int status = 200;
    if ((v = HEADER("if-match", &vlen)) != NULL || too_long) {
        if (v == NULL || !mt_etag_list_match(v, vlen, etag, elen, true))
            status = 412;
    } else if ((v = HEADER("if-unmodified-since", &vlen)) != NULL) {
        int64_t t = mt_http_date_parse(v, vlen);
        if (t >= 0 && mtime > t)
            status = 412;
    }
    if (status == 200 && ((v = HEADER("if-none-match", &vlen)) != NULL || too_long)) {
        if (v && mt_etag_list_match(v, vlen, etag, elen, false))
            status = 304;
    } else if (status == 200 && (v = HEADER("if-modified-since", &vlen)) != NULL) {
        int64_t t = mt_http_date_parse(v, vlen);
        if (t >= 0 && mtime <= t)
            status = 304;
    }
    if (status == 412)
        return answer_text(r, 412, NULL, 0);

    uint64_t size = (uint64_t)rep->size, first = 0, last = size ? size - 1 : 0;
    if (status == 200 && !head_only) {
        /* If-Range first: both lookups may use `joined`. */
        bool current = true;
        if ((v = HEADER("if-range", &vlen)) != NULL || too_long) {
            if (v == NULL)
                current = false;
            else if (vlen && (v[0] == '"' || v[0] == 'W'))
                current = mt_etag_list_match(v, vlen, etag, elen, true);
            else
                current = mt_http_date_parse(v, vlen) == mtime;
        }
        mt_range_result_t range = MT_RANGE_IGNORE;
        if (current && (v = HEADER("range", &vlen)) != NULL)
            range = mt_range_parse(v, vlen, size, &first, &last);
        if (range == MT_RANGE_UNSATISFIABLE) {
            char value[48];
            int n = snprintf(value, sizeof value, "bytes */%llu", (unsigned long long)size);
            mt_field_t field = {"Content-Range", 13, value, (size_t)n};
            return answer_text(r, 416, &field, 1);
        }
        if (range == MT_RANGE_ONE)
            status = 206;
    }

    mt_respond_t *h = &r->head;
    mt_buf_t *out = &r->out;
    h->vary = vary;
    char value[96];
    int n;
    int rc = mt_respond_status(h, out, status);
    if (status != 304) {
        const char *type = content_type(path, plen);
        if (rc == 0)
            rc = mt_respond_field(h, out, "Content-Type", 12, type, strlen(type));
        if (rc == 0 && status == 206) {
            n = snprintf(value, sizeof value, "bytes %llu-%llu/%llu", (unsigned long long)first,
                         (unsigned long long)last, (unsigned long long)size);
            rc = mt_respond_field(h, out, "Content-Range", 13, value, (size_t)n);
        }
        if (rc == 0)
            rc = mt_respond_field(h, out, "Accept-Ranges", 13, "bytes", 5);
    }
    if (rc == 0)
        rc = mt_respond_field(h, out, "ETag", 4, etag, elen);
    if (rc == 0)
        rc = mt_respond_field(h, out, "Last-Modified", 13, rep->last_modified, MT_HTTP_DATE_LEN);
    int max_age = ((const mount_t *)rep->owner)->max_age;
    if (rc == 0 && hashed_name(path, plen)) {
        rc = mt_respond_field(h, out, "Cache-Control", 13, IMMUTABLE_MAX_AGE, sizeof IMMUTABLE_MAX_AGE - 1);
    } else if (rc == 0 && max_age >= 0) {
        n = max_age > 0 ? snprintf(value, sizeof value, "public, max-age=%d", max_age)
                        : snprintf(value, sizeof value, "no-cache");
        rc = mt_respond_field(h, out, "Cache-Control", 13, value, (size_t)n);
    }
    if (rc == 0)
        rc = mt_respond_end(h, out, coding && status != 304 ? mt_compress_coding_name(coding) : NULL,
                            (long long)(size ? last - first + 1 : 0));
    if (rc < 0)
        return rc;
    r->c->answer_status = status;
    r->c->answer_bytes = status == 304 || head_only || size == 0 ? 0 : last - first + 1;
    if (status == 304 || head_only || size == 0)
        return send_out(r);
    return send_file(r, rep->fd, (off_t)first, (size_t)(last - first + 1));
}

int mt_static_serve(mt_static_t *st, mt_conn_t *c, bool *keep_alive) {
    const mt_request_t *req = &c->req;
    const char *base = c->rbuf.data;
    reply_t r = {.c = c};
    mt_respond_init(&r.head, req, mt_respond_keep_alive(c, mt_server_draining(c->server)));
    mt_respond_request_id(&r.head, c);
    mt_cors_decision_t cors;
    mt_cors_decide(&cors, c);
    mt_cors_respond(&r.head, &cors);
    c->answer_status = 0;
    c->answer_bytes = 0;
    mt_buf_init(&r.out);
    mt_file_t *file = NULL, *variants[NCODINGS] = {NULL};
    mt_file_t copy;
    mt_zcache_item_t *zitem = NULL;
    int rc;
    if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
        static const mt_field_t allow = {"Allow", 5, "GET, HEAD", 9};
        rc = answer_text(&r, 405, &allow, 1);
        goto done;
    }
    char path[MAX_PATH];
    size_t plen = 0;
    int err = 0;
    file = find_file(st, req, base, path, &plen, &err);
    if (file == NULL) {
        rc = answer_text(&r, err ? 503 : 404, NULL, 0);
        goto done;
    }
    unsigned available = find_variants(st, file, path, plen, variants);
    mt_coding_t coding = available ? choose_coding(req, base, available) : MT_CODING_IDENTITY;
    mt_file_t *rep = coding ? variants[coding] : file;
    bool vary = available != 0;
    if (!available)
        coding = find_compressed(st, req, base, file, path, plen, &copy, &zitem, &vary);
    if (zitem)
        rep = &copy;
    rc = answer_file(&r, req, base, rep, coding, vary, path, plen);
    if (rc == -EIO || rc == -ENODATA)
        mt_file_expire(st->files, zitem ? file : rep); /* the file changed under us: look again next time */
done:
    c->head_consumed = true;
    for (size_t i = 0; i < NCODINGS; i++)
        if (variants[i])
            mt_file_release(st->files, variants[i]);
    mt_zcache_release(st->zcache, zitem);
    if (file)
        mt_file_release(st->files, file);
    mt_buf_dispose(&r.out);
    *keep_alive = r.head.keep_alive && rc == 0;
    return rc;
}
