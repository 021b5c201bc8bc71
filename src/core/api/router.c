/* The API router: see router.h. A tree with one level per path segment;
 * each node has its static children sorted (binary search) and at most one
 * child per parameter type. Matching is a depth-first walk whose cost is
 * bounded by the number of nodes: each node sits at one depth, and a request
 * segment is compared with a node only at that depth. */
#include "router.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "http1.h"

typedef struct mt_rnode mt_rnode_t;

struct mt_rnode {
    char *text; /* a static segment's text */
    size_t len;
    mt_rnode_t **statics; /* sorted by (len, bytes) */
    size_t nstatics;
    mt_rnode_t *typed[MT_PARAM_NTYPES];
    uint64_t methods; /* methods with a route ending here */
    int *routes;      /* 64 route ids by method, allocated with the first route */
};

struct mt_router {
    mt_rnode_t root;
    bool redirect_slash;
    int count;
};

static const char *const type_names[MT_PARAM_NTYPES] = {"{int}", "{float}", "{uuid}", "{bool}", "{str}", "{path}"};

mt_router_t *mt_router_create(bool redirect_slash) {
    mt_router_t *r = calloc(1, sizeof *r);
    if (r)
        r->redirect_slash = redirect_slash;
    return r;
}

static void node_free(mt_rnode_t *node) {
    for (size_t i = 0; i < node->nstatics; i++) {
        node_free(node->statics[i]);
        free(node->statics[i]);
    }
    for (int t = 0; t < MT_PARAM_NTYPES; t++) {
        if (node->typed[t]) {
            node_free(node->typed[t]);
            free(node->typed[t]);
        }
    }
    free(node->statics);
    free(node->text);
    free(node->routes);
}

void mt_router_destroy(mt_router_t *r) {
    if (r == NULL)
        return;
    node_free(&r->root);
    free(r);
}

int mt_router_count(const mt_router_t *r) {
    return r->count;
}

static int segment_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* The static child for text[0, len), or where it would be inserted (*at). */
static mt_rnode_t *static_find(const mt_rnode_t *node, const char *text, size_t len, size_t *at) {
    size_t lo = 0, hi = node->nstatics;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = segment_cmp(node->statics[mid]->text, node->statics[mid]->len, text, len);
        if (c == 0)
            return node->statics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    return NULL;
}

static mt_rnode_t *static_child(mt_rnode_t *node, const char *text, size_t len) {
    size_t at = 0;
    mt_rnode_t *child = static_find(node, text, len, &at);
    if (child)
        return child;
    child = calloc(1, sizeof *child);
    mt_rnode_t **grown = realloc(node->statics, (node->nstatics + 1) * sizeof *grown);
    if (child == NULL || grown == NULL) {
        free(child);
        if (grown)
            node->statics = grown;
        return NULL;
    }
    node->statics = grown;
    child->text = malloc(len + 1);
    if (child->text == NULL) {
        free(child);
        return NULL;
    }
    memcpy(child->text, text, len);
    child->text[len] = '\0';
    child->len = len;
    memmove(&node->statics[at + 1], &node->statics[at], (node->nstatics - at) * sizeof *grown);
    node->statics[at] = child;
    node->nstatics++;
    return child;
}

static int param_type_of(const char *seg, size_t len) {
    for (int t = 0; t < MT_PARAM_NTYPES; t++)
        if (strlen(type_names[t]) == len && memcmp(type_names[t], seg, len) == 0)
            return t;
    return -1;
}

int mt_router_add(mt_router_t *r, const char *tmpl, uint64_t methods, int id) {
    if (tmpl[0] != '/' || methods == 0 || id < 0)
        return -EINVAL;
    mt_rnode_t *node = &r->root;
    const char *p = tmpl + 1;
    int nparams = 0;
    bool after_path = false;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (after_path || (len == 0 && end != NULL))
            return -EINVAL; /* an empty inner segment, or something after {path} */
        if (memchr(p, '{', len) || memchr(p, '}', len)) {
            int type = param_type_of(p, len);
            if (type < 0 || ++nparams > MT_ROUTER_MAX_PARAMS)
                return -EINVAL;
            if (node->typed[type] == NULL && (node->typed[type] = calloc(1, sizeof(mt_rnode_t))) == NULL)
                return -ENOMEM;
            node = node->typed[type];
            after_path = type == MT_PARAM_PATH;
        } else {
            node = static_child(node, p, len);
            if (node == NULL)
                return -ENOMEM;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (node->methods & methods)
        return -EEXIST;
    if (node->routes == NULL && (node->routes = malloc(64 * sizeof(int))) == NULL)
        return -ENOMEM;
    for (int m = 0; m < 64; m++)
        if (methods & (1ULL << m))
            node->routes[m] = id;
    node->methods |= methods;
    r->count++;
    return 0;
}

/* ---- matching ---- */

typedef struct segment {
    uint32_t raw_off;  /* in the path */
    uint32_t off, len; /* decoded, in scratch */
} segment_t;

typedef struct walk {
    const char *path;
    size_t n;
    char *scratch;
    size_t rest_off; /* where {path} values are decoded in scratch */
    const segment_t *segs;
    int nsegs;
    int method;
    mt_route_value_t params[MT_ROUTER_MAX_PARAMS];
    int nparams;
    int bad; /* index of a parameter that did not convert on the current branch, or -1 */

    const mt_rnode_t *found;
    const mt_rnode_t *shape; /* the first node whose path matched, whatever the method */
    const mt_rnode_t *invalid;
    mt_route_value_t invalid_params[MT_ROUTER_MAX_PARAMS];
    int invalid_nparams, invalid_bad;
} walk_t;

#define BIT(m) (1ULL << (m))

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool mt_router_int_value(const char *s, size_t n, long long *out) {
    bool negative = n > 0 && s[0] == '-';
    size_t i = negative ? 1 : 0;
    if (n - i > 18)
        return false;
    long long v = 0;
    for (; i < n; i++)
        v = v * 10 + (s[i] - '0');
    *out = negative ? -v : v;
    return true;
}

/* Longer than CPython converts from text by default (sys.int_info.default_max_str_digits). */
#define MAX_INT_DIGITS 4300

static bool valid_int(const char *s, size_t n) {
    size_t i = n > 0 && s[0] == '-' ? 1 : 0;
    if (i == n || n - i > MAX_INT_DIGITS)
        return false;
    for (; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* s is NUL-terminated at s[n]. A finite decimal number, nothing around it. */
static bool valid_float(const char *s, size_t n) {
    if (n == 0 || n > 64 || !(is_digit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.'))
        return false;
    char *end;
    double v = strtod(s, &end);
    return end == s + n && isfinite(v) && memchr(s, 'x', n) == NULL && memchr(s, 'X', n) == NULL;
}

static bool valid_uuid(const char *s, size_t n) {
    if (n == 32) {
        for (size_t i = 0; i < n; i++)
            if (!is_hex(s[i]))
                return false;
        return true;
    }
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

static bool word_ieq(const char *s, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static bool valid_bool(const char *s, size_t n) {
    static const char *const words[] = {"true", "false", "1", "0", "yes", "no", "on", "off"};
    for (size_t i = 0; i < MT_ARRAY_SIZE(words); i++)
        if (word_ieq(s, n, words[i]))
            return true;
    return false;
}

static bool value_valid(int type, const char *s, size_t n) {
    switch (type) {
    case MT_PARAM_INT:
        return valid_int(s, n);
    case MT_PARAM_FLOAT:
        return valid_float(s, n);
    case MT_PARAM_UUID:
        return valid_uuid(s, n);
    case MT_PARAM_BOOL:
        return valid_bool(s, n);
    default:
        return n > 0;
    }
}

/* A "." or ".." component in a decoded value (components split at '/'). */
static bool has_dot_segment(const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - start;
            if ((len == 1 && s[start] == '.') || (len == 2 && s[start] == '.' && s[start + 1] == '.'))
                return true;
            start = i + 1;
        }
    }
    return false;
}

static bool allows(const mt_rnode_t *node, int method) {
    return (node->methods & BIT(method)) || (method == HTTP_HEAD && (node->methods & BIT(HTTP_GET)));
}

/* At a node where the whole path was consumed: records what it means.
 * Returns true when the search is over. */
static bool arrive(walk_t *w, const mt_rnode_t *node) {
    if (node->methods == 0)
        return false;
    if (w->bad >= 0) {
        if (w->invalid == NULL) {
            w->invalid = node;
            memcpy(w->invalid_params, w->params, sizeof w->params);
            w->invalid_nparams = w->nparams;
            w->invalid_bad = w->bad;
        }
        return false;
    }
    if (allows(node, w->method)) {
        w->found = node;
        return true;
    }
    if (w->shape == NULL)
        w->shape = node;
    return false;
}

static bool walk(walk_t *w, const mt_rnode_t *node, int i) {
    if (i == w->nsegs)
        return arrive(w, node);
    const segment_t *seg = &w->segs[i];
    const char *text = w->scratch + seg->off;
    const mt_rnode_t *child = static_find(node, text, seg->len, NULL);
    if (child && walk(w, child, i + 1))
        return true;
    if (w->nparams == MT_ROUTER_MAX_PARAMS)
        return false;
    for (int type = 0; type < MT_PARAM_PATH; type++) {
        child = node->typed[type];
        if (child == NULL || seg->len == 0)
            continue;
        bool valid = value_valid(type, text, seg->len);
        if (!valid && w->bad >= 0)
            continue; /* one bad value per branch is enough to explain a 422 */
        int saved_bad = w->bad;
        if (!valid)
            w->bad = w->nparams;
        w->params[w->nparams++] = (mt_route_value_t){seg->off, seg->len, (uint8_t)type};
        if (walk(w, child, i + 1))
            return true; /* the values stay for the caller */
        w->nparams--;
        w->bad = saved_bad;
    }
    child = node->typed[MT_PARAM_PATH];
    if (child && child->methods) {
        /* The rest of the path, decoded as one value (an encoded slash
         * becomes a slash: the value is a path). */
        size_t raw = seg->raw_off;
        size_t len = mt_http1_percent_decode(w->scratch + w->rest_off, w->path + raw, w->n - raw);
        char *value = w->scratch + w->rest_off;
        value[len] = '\0';
        if (len == 0 || memchr(value, '\0', len) || has_dot_segment(value, len))
            return false;
        w->params[w->nparams++] = (mt_route_value_t){(uint32_t)w->rest_off, (uint32_t)len, MT_PARAM_PATH};
        if (arrive(w, child))
            return true; /* the value stays for the caller */
        w->nparams--;
    }
    return false;
}

/* Splits and decodes path[0, n) into segments. False when the path cannot
 * name a route: empty inner segment, "." or "..", NUL, too many segments. */
static bool split(walk_t *w, segment_t *segs) {
    const char *path = w->path;
    size_t n = w->n, pos = 1, out = 0;
    int count = 0;
    for (;;) {
        size_t end = pos;
        while (end < n && path[end] != '/')
            end++;
        if (count == MT_ROUTER_MAX_SEGMENTS)
            return false;
        if (end == pos && end < n)
            return false; /* "//" */
        size_t len = mt_http1_percent_decode(w->scratch + out, path + pos, end - pos);
        const char *d = w->scratch + out;
        if (memchr(d, '\0', len) || (len == 1 && d[0] == '.') || (len == 2 && d[0] == '.' && d[1] == '.'))
            return false;
        segs[count++] = (segment_t){(uint32_t)pos, (uint32_t)out, (uint32_t)len};
        w->scratch[out + len] = '\0';
        out += len + 1;
        if (end >= n)
            break;
        pos = end + 1;
    }
    w->nsegs = count;
    w->rest_off = out;
    return true;
}

static uint64_t allow_of(const mt_rnode_t *node) {
    uint64_t allow = node->methods | BIT(HTTP_OPTIONS);
    if (allow & BIT(HTTP_GET))
        allow |= BIT(HTTP_HEAD);
    return allow;
}

static int route_for(const mt_rnode_t *node, int method) {
    if (node->methods & BIT(method))
        return node->routes[method];
    if (method == HTTP_HEAD && (node->methods & BIT(HTTP_GET)))
        return node->routes[HTTP_GET];
    for (int m = 0; m < 64; m++)
        if (node->methods & BIT(m))
            return node->routes[m];
    return -1;
}

static void match_once(const mt_router_t *r, int method, const char *path, size_t n, char *scratch,
                       mt_route_match_t *m) {
    segment_t segs[MT_ROUTER_MAX_SEGMENTS];
    walk_t w = {.path = path, .n = n, .scratch = scratch, .segs = segs, .method = method, .bad = -1};
    m->status = MT_ROUTE_NONE;
    m->route = -1;
    m->nparams = 0;
    if (n == 0 || path[0] != '/' || !split(&w, segs))
        return;
    walk(&w, &r->root, 0);
    if (w.found) {
        m->status = MT_ROUTE_FOUND;
        m->route = route_for(w.found, method);
        m->nparams = w.nparams;
        memcpy(m->params, w.params, (size_t)w.nparams * sizeof w.params[0]);
    } else if (w.invalid && (allows(w.invalid, method) || w.shape == NULL)) {
        m->status = MT_ROUTE_INVALID;
        m->route = route_for(w.invalid, method);
        m->nparams = w.invalid_nparams;
        memcpy(m->params, w.invalid_params, (size_t)w.invalid_nparams * sizeof w.params[0]);
        m->bad_param = w.invalid_bad;
    } else if (w.shape) {
        m->status = method == HTTP_OPTIONS ? MT_ROUTE_OPTIONS : MT_ROUTE_METHOD;
        m->route = route_for(w.shape, method);
        m->allow = allow_of(w.shape);
    }
}

void mt_router_match(const mt_router_t *r, int method, const char *path, size_t n, char *scratch, mt_route_match_t *m) {
    match_once(r, method, path, n, scratch, m);
    if (m->status != MT_ROUTE_NONE || !r->redirect_slash || n < 2)
        return;
    /* Only the other spelling has a route: say where it is. The toggled path
     * is built behind the space the match needs for the original. */
    char *toggled = scratch + 2 * n + 2;
    size_t tn = n;
    memcpy(toggled, path, n);
    if (path[n - 1] == '/')
        tn--;
    else
        toggled[tn++] = '/';
    mt_route_match_t other;
    match_once(r, method, toggled, tn, toggled + tn, &other);
    if (other.status != MT_ROUTE_NONE) {
        m->status = MT_ROUTE_REDIRECT;
        m->route = other.route;
        m->nparams = 0;
    }
}

size_t mt_router_allow_value(uint64_t allow, char *out, size_t size) {
    static const int order[] = {HTTP_GET,    HTTP_HEAD,    HTTP_POST,  HTTP_PUT,    HTTP_PATCH,
                                HTTP_DELETE, HTTP_OPTIONS, HTTP_TRACE, HTTP_CONNECT};
    size_t len = 0;
    out[0] = '\0';
    uint64_t named = 0;
    for (size_t i = 0; i < MT_ARRAY_SIZE(order); i++)
        named |= BIT(order[i]);
    for (size_t i = 0; i < MT_ARRAY_SIZE(order) + 64; i++) {
        int m = i < MT_ARRAY_SIZE(order) ? order[i] : (int)(i - MT_ARRAY_SIZE(order));
        if (!(allow & BIT(m)) || (i >= MT_ARRAY_SIZE(order) && (named & BIT(m))))
            continue;
        const char *name = llhttp_method_name((llhttp_method_t)m);
        size_t nlen = strlen(name);
        if (len + nlen + 3 > size)
            break;
        if (len) {
            memcpy(out + len, ", ", 2);
            len += 2;
        }
        memcpy(out + len, name, nlen);
        len += nlen;
        out[len] = '\0';
    }
    return len;
}
