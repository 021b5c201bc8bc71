#include "cors.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "http1.h"
#include "server.h" /* the project policy in c->server->config */

typedef struct origin {
    char *text; /* the allowed origin as configured */
    size_t scheme_len;
    const char *netloc; /* in text */
    size_t netloc_len;
} origin_t;

struct mt_cors {
    origin_t *origins;
    size_t norigins;
    bool allow_null; /* "null" is among the origins */
    pcre2_code **regexes;
    size_t nregexes;
    pcre2_code *urls;            /* NULL: every path */
    pcre2_match_context *limits; /* the match limit: the subject is the client's */
    bool allow_all;
    bool credentials;
    bool private_network;
    char *methods;
    char *headers;
    char *expose;     /* NULL: no field */
    char max_age[24]; /* "": no field */
    size_t methods_len, headers_len, expose_len, max_age_len;
};

/* ---- the split of an origin, as Python's urllib.parse.urlsplit does it ---- */

typedef struct parts {
    const char *scheme; /* not lowercased: compare without regard to case */
    size_t scheme_len;
    const char *netloc;
    size_t netloc_len;
} parts_t;

static bool is_alpha(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_scheme_char(char ch) {
    return is_alpha(ch) || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.';
}

/* urlsplit's check of a bracketed host: an IPvFuture ("v1.x") or an IPv6
 * address (with an optional zone), never IPv4. */
static bool bracketed_host_valid(const char *h, size_t n) {
    if (n > 0 && h[0] == 'v') {
        size_t i = 1;
        while (i < n && ((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') || (h[i] >= 'A' && h[i] <= 'F')))
            i++;
        return i > 1 && i + 1 < n && h[i] == '.';
    }
    const char *zone = memchr(h, '%', n);
    size_t alen = zone ? (size_t)(zone - h) : n;
    if (zone && (n - alen == 1 || memchr(zone + 1, '%', n - alen - 1)))
        return false;
    char addr[64];
    unsigned char bin[16];
    if (alen >= sizeof addr)
        return false;
    memcpy(addr, h, alen);
    addr[alen] = '\0';
    return inet_pton(AF_INET6, addr, bin) == 1;
}

/* Splits s[0, n) into scheme and netloc as urlsplit does. Returns false
 * where urlsplit raises ValueError (brackets that do not pair, a bracketed
 * host that is no IPv6 address): django-cors-headers then adds no field. */
static bool split_origin(const char *s, size_t n, parts_t *p) {
    *p = (parts_t){s, 0, s, 0};
    const char *rest = s;
    size_t rlen = n;
    const char *colon = memchr(s, ':', n);
    if (colon && colon > s && is_alpha(s[0])) {
        size_t i = 0;
        while (s + i < colon && is_scheme_char(s[i]))
            i++;
        if (s + i == colon) {
            p->scheme_len = i;
            rest = colon + 1;
            rlen = n - i - 1;
        }
    }
    if (rlen < 2 || rest[0] != '/' || rest[1] != '/')
        return true;
    size_t end = 2;
    while (end < rlen && rest[end] != '/' && rest[end] != '?' && rest[end] != '#')
        end++;
    p->netloc = rest + 2;
    p->netloc_len = end - 2;
    const char *open = memchr(p->netloc, '[', p->netloc_len);
    const char *close = memchr(p->netloc, ']', p->netloc_len);
    if ((open == NULL) != (close == NULL))
        return false;
    if (open) {
        const char *host = open + 1;
        const char *stop = memchr(host, ']', (size_t)(p->netloc + p->netloc_len - host));
        if (stop == NULL)
            return false; /* "]...[": the host runs to the end */
        return bracketed_host_valid(host, (size_t)(stop - host));
    }
    return true;
}

/* ---- regexes ---- */

static pthread_key_t regex_key;
static pthread_once_t regex_key_once = PTHREAD_ONCE_INIT;

static void free_match_data(void *md) {
    pcre2_match_data_free(md);
}

static void make_regex_key(void) {
    if (pthread_key_create(&regex_key, free_match_data) != 0)
        abort(); /* only when the process is out of keys at start */
}

/* The calling thread's match data (one ovector pair: only "did it match"). */
static pcre2_match_data *match_data(void) {
    pthread_once(&regex_key_once, make_regex_key);
    pcre2_match_data *md = pthread_getspecific(regex_key);
    if (md == NULL && (md = pcre2_match_data_create(1, NULL)) != NULL)
        pthread_setspecific(regex_key, md);
    return md;
}

/* At most this many backtracking steps per match: the subject is the
 * client's, and a pattern that backtracks badly on it (nested quantifiers)
 * must not hold a thread. A match that runs out counts as no match. */
#define MATCH_LIMIT 100000

static bool regex_matches(const mt_cors_t *p, pcre2_code *re, const char *s, size_t n) {
    pcre2_match_data *md = match_data();
    return md && pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, p->limits) >= 0;
}

static int compile(pcre2_code **out, const char *pattern, const char *what, char *err, size_t errlen) {
    int code;
    PCRE2_SIZE offset;
    /* Anchored at compile time (re.match): an anchored match may use the JIT. */
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, &code, &offset, NULL);
    if (*out == NULL) {
        char message[160];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)message, sizeof message);
        snprintf(err, errlen, "%s %s: %s at offset %zu", what, pattern, message, (size_t)offset);
        return -EINVAL;
    }
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* the interpreter runs it where the JIT cannot */
    return 0;
}

/* ---- the policy ---- */

static char *copy_value(const char *s, size_t *len) {
    *len = strlen(s ? s : "");
    char *c = malloc(*len + 1);
    if (c)
        memcpy(c, s ? s : "", *len + 1);
    return c;
}

int mt_cors_create(mt_cors_t **out, const mt_cors_config_t *config, char *err, size_t errlen) {
    *out = NULL;
    mt_cors_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    int rc = -ENOMEM;
    p->allow_all = config->allow_all;
    p->credentials = config->credentials;
    p->private_network = config->private_network;
    if ((p->methods = copy_value(config->methods, &p->methods_len)) == NULL ||
        (p->headers = copy_value(config->headers, &p->headers_len)) == NULL)
        goto error;
    if (config->expose && config->expose[0] && (p->expose = copy_value(config->expose, &p->expose_len)) == NULL)
        goto error;
    if (config->max_age > 0)
        p->max_age_len = (size_t)snprintf(p->max_age, sizeof p->max_age, "%lld", config->max_age);
    if ((p->limits = pcre2_match_context_create(NULL)) == NULL)
        goto error;
    pcre2_set_match_limit(p->limits, MATCH_LIMIT);
    if (config->norigins && (p->origins = calloc(config->norigins, sizeof *p->origins)) == NULL)
        goto error;
    for (size_t i = 0; i < config->norigins; i++) {
        const char *text = config->origins[i];
        if (strcmp(text, "null") == 0) {
            p->allow_null = true;
            continue;
        }
        parts_t parts;
        if (!split_origin(text, strlen(text), &parts) || parts.scheme_len == 0 || parts.netloc_len == 0) {
            snprintf(err, errlen, "origin %s: expected scheme://host[:port]", text);
            rc = -EINVAL;
            goto error;
        }
        origin_t *o = &p->origins[p->norigins];
        size_t len;
        if ((o->text = copy_value(text, &len)) == NULL)
            goto error;
        p->norigins++;
        o->scheme_len = parts.scheme_len;
        o->netloc = o->text + (parts.netloc - text);
        o->netloc_len = parts.netloc_len;
    }
    if (config->nregexes && (p->regexes = calloc(config->nregexes, sizeof *p->regexes)) == NULL)
        goto error;
    for (size_t i = 0; i < config->nregexes; i++) {
        if ((rc = compile(&p->regexes[i], config->origin_regexes[i], "origin regex", err, errlen)) < 0)
            goto error;
        p->nregexes++;
    }
    if (config->urls_regex && (rc = compile(&p->urls, config->urls_regex, "URL regex", err, errlen)) < 0)
        goto error;
    *out = p;
    return 0;
error:
    mt_cors_destroy(p);
    return rc;
}

void mt_cors_destroy(mt_cors_t *p) {
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->norigins; i++)
        free(p->origins[i].text);
    free(p->origins);
    for (size_t i = 0; i < p->nregexes; i++)
        pcre2_code_free(p->regexes[i]);
    free(p->regexes);
    pcre2_code_free(p->urls);
    pcre2_match_context_free(p->limits);
    free(p->methods);
    free(p->headers);
    free(p->expose);
    free(p);
}

bool mt_cors_path_applies(const mt_cors_t *p, const mt_request_t *req, const char *base) {
    if (p->urls == NULL)
        return true;
    const char *path;
    size_t n = mt_http1_target_path(req, base, &path, NULL);
    char local[2048];
    char *buf = n <= sizeof local ? local : malloc(n);
    if (buf == NULL)
        return false;
    size_t len = mt_http1_percent_decode(buf, path, n);
    bool match = regex_matches(p, p->urls, buf, len);
    if (buf != local)
        free(buf);
    return match;
}

/* The lists django-cors-headers checks when it does not allow every origin
 * (origin_found_in_white_lists): "null" literally, scheme and netloc, regexes. */
static bool origin_listed(const mt_cors_t *p, const char *s, size_t n, const parts_t *parts) {
    if (p->allow_null && n == 4 && memcmp(s, "null", 4) == 0)
        return true;
    for (size_t i = 0; i < p->norigins; i++) {
        const origin_t *o = &p->origins[i];
        if (o->scheme_len == parts->scheme_len && strncasecmp(o->text, parts->scheme, o->scheme_len) == 0 &&
            o->netloc_len == parts->netloc_len && memcmp(o->netloc, parts->netloc, o->netloc_len) == 0)
            return true;
    }
    for (size_t i = 0; i < p->nregexes; i++)
        if (regex_matches(p, p->regexes[i], s, n))
            return true;
    return false;
}

bool mt_cors_origin_allowed(const mt_cors_t *p, const char *s, size_t n) {
    parts_t parts;
    /* A tab inside: urlsplit would remove it before splitting, so what it
     * compares is not what was sent. Refused rather than mimicked. */
    if (memchr(s, '\t', n) || !split_origin(s, n, &parts))
        return false;
    return p->allow_all || origin_listed(p, s, n, &parts);
}

const mt_cors_t *mt_cors_select(const mt_conn_t *c) {
    const mt_cors_t *project = c->server ? c->server->config.cors : NULL;
    if (project && mt_cors_path_applies(project, &c->req, c->rbuf.data))
        return project;
    if (c->cors && mt_cors_path_applies(c->cors, &c->req, c->rbuf.data))
        return c->cors;
    return NULL;
}

void mt_cors_decide(mt_cors_decision_t *d, const mt_conn_t *c) {
    d->policy = mt_cors_select(c);
    d->allowed = false;
    d->is_options = false;
    d->private_network = false;
    d->origin_len = 0;
    if (d->policy == NULL)
        return;
    const mt_cors_t *p = d->policy;
    const char *base = c->rbuf.data;
    char buf[MT_REQUEST_FIELD_MAX];
    const char *origin;
    size_t olen;
    /* One Origin field (RFC 6454 7.3); several, joined, would be no origin. */
    if (mt_request_header(&c->req, base, "origin", 6, buf, &origin, &olen) != 1 || origin == buf || olen == 0)
        return;
    if (!mt_cors_origin_allowed(p, origin, olen))
        return;
    bool star = p->allow_all && !p->credentials;
    if (!star) {
        if (olen > MT_CORS_ORIGIN_MAX)
            return;
        memcpy(d->origin, origin, olen);
        d->origin_len = (uint16_t)olen;
    }
    d->allowed = true;
    d->is_options = c->req.method_id == HTTP_OPTIONS;
    const char *pna;
    size_t plen;
    d->private_network =
        p->private_network &&
        mt_request_header(&c->req, base, "access-control-request-private-network", 38, buf, &pna, &plen) == 1 &&
        plen == 4 && memcmp(pna, "true", 4) == 0;
}

static void add_late(mt_respond_t *r, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (r->nlate < MT_RESPOND_LATE_MAX)
        r->late[r->nlate++] = (mt_field_t){name, nlen, value, vlen};
}

#define LATE(r, name, value, vlen) add_late(r, name, sizeof name - 1, value, vlen)

void mt_cors_respond(mt_respond_t *r, const mt_cors_decision_t *d) {
    const mt_cors_t *p = d->policy;
    if (p == NULL)
        return;
    r->vary_origin = true;
    if (!d->allowed)
        return;
    if (d->origin_len)
        LATE(r, "Access-Control-Allow-Origin", d->origin, d->origin_len);
    else
        LATE(r, "Access-Control-Allow-Origin", "*", 1);
    if (p->credentials)
        LATE(r, "Access-Control-Allow-Credentials", "true", 4);
    if (p->expose)
        LATE(r, "Access-Control-Expose-Headers", p->expose, p->expose_len);
    if (d->is_options) {
        LATE(r, "Access-Control-Allow-Headers", p->headers, p->headers_len);
        LATE(r, "Access-Control-Allow-Methods", p->methods, p->methods_len);
        if (p->max_age_len)
            LATE(r, "Access-Control-Max-Age", p->max_age, p->max_age_len);
    }
    if (d->private_network)
        LATE(r, "Access-Control-Allow-Private-Network", "true", 4);
}

bool mt_cors_is_preflight(const mt_conn_t *c) {
    if (c->req.method_id != HTTP_OPTIONS)
        return false;
    char buf[MT_REQUEST_FIELD_MAX];
    const char *value;
    size_t len;
    return mt_request_header(&c->req, c->rbuf.data, "access-control-request-method", 29, buf, &value, &len) != 0;
}

bool mt_cors_preflight(mt_conn_t *c, mt_buf_t *out, bool *keep_alive) {
    if (!mt_cors_is_preflight(c))
        return false;
    mt_cors_decision_t d;
    mt_cors_decide(&d, c);
    if (d.policy == NULL)
        return false;
    mt_respond_t head;
    mt_respond_init(&head, &c->req, *keep_alive && mt_respond_keep_alive(c, false));
    mt_respond_request_id(&head, c);
    mt_cors_respond(&head, &d);
    out->len = 0;
    int rc = mt_respond_answer(&head, out, 200, NULL, 0, NULL, "", 0);
    *keep_alive = head.keep_alive;
    c->answer_status = 200;
    c->answer_bytes = 0;
    if (rc == 0) {
        struct iovec iov = {out->data, out->len};
        rc = mt_conn_writev(c, &iov, 1);
    }
    out->len = 0;
    if (rc < 0)
        *keep_alive = false;
    c->head_consumed = true;
    return true;
}
