/* Trusted proxies (forwarded.h): the trust list, the parsers of Forwarded
 * and X-Forwarded-*, and the walk from the nearest hop to the client. */
#include "forwarded.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "common.h"

static bool isalnum_ascii(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A token character (RFC 9110 5.6.2). */
static bool is_field_token_char(char c) {
    return isalnum_ascii(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* ---- addresses ---- */

typedef enum node_kind {
    NODE_BAD,  /* does not parse: the whole field is ignored */
    NODE_NONE, /* "unknown", an obfuscated identifier, or an element without "for" */
    NODE_ADDR,
} node_kind_t;

typedef struct hop {
    uint8_t kind; /* node_kind_t */
    uint8_t v6;
    uint16_t port;
    uint8_t addr[16];
    int8_t https;   /* Forwarded's proto: -1 not said */
    mt_span_t host; /* Forwarded's host (len 0: not said) */
} hop_t;

/* Parses an IPv4 or (v6) IPv6 address text of n bytes into addr. */
static bool parse_ip(const char *s, size_t n, bool v6, uint8_t *addr) {
    char text[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(v6 ? AF_INET6 : AF_INET, text, addr) == 1;
}

static bool parse_port(const char *s, size_t n, uint16_t *port) {
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* An IPv4-mapped IPv6 address ("::ffff:192.0.2.1") as the IPv4 address it is. */
static void unmap(hop_t *h) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (h->v6 && memcmp(h->addr, mapped, 12) == 0) {
        memmove(h->addr, h->addr + 12, 4);
        h->v6 = 0;
    }
}

/* A node (RFC 7239 6): IPv4 [":" port], "[" IPv6 "]" [":" port], "unknown" or
 * "_" obfuscated [":" port]. X-Forwarded-For also has bare IPv6 (bare_v6). */
static node_kind_t parse_node(const char *s, size_t n, bool bare_v6, hop_t *h) {
    h->port = 0;
    if (n == 0)
        return NODE_BAD;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return NODE_BAD;
        size_t alen = (size_t)(close - s - 1), rest = n - alen - 2;
        if (!parse_ip(s + 1, alen, true, h->addr))
            return NODE_BAD;
        if (rest && (close[1] != ':' || !parse_port(close + 2, rest - 1, &h->port)))
            return NODE_BAD;
        h->v6 = 1;
        unmap(h);
        return NODE_ADDR;
    }
    if (bare_v6 && memchr(s, ':', n) != memrchr(s, ':', n)) { /* two colons or more: IPv6 */
        if (!parse_ip(s, n, true, h->addr))
            return NODE_BAD;
        h->v6 = 1;
        unmap(h);
        return NODE_ADDR;
    }
    const char *colon = memchr(s, ':', n);
    size_t nlen = colon ? (size_t)(colon - s) : n;
    if (colon && !parse_port(colon + 1, n - nlen - 1, &h->port)) {
        /* An obfuscated port ("_abc") is allowed after any node name. */
        size_t plen = n - nlen - 1;
        if (plen < 2 || colon[1] != '_')
            return NODE_BAD;
        for (size_t i = 2; i < plen + 1; i++)
            if (!(isalnum_ascii(colon[i]) || colon[i] == '.' || colon[i] == '_' || colon[i] == '-'))
                return NODE_BAD;
        h->port = 0;
    }
    if (nlen == 7 && strncasecmp(s, "unknown", 7) == 0)
        return NODE_NONE;
    if (s[0] == '_') {
        if (nlen < 2)
            return NODE_BAD;
        for (size_t i = 1; i < nlen; i++)
            if (!(isalnum_ascii(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
                return NODE_BAD;
        return NODE_NONE;
    }
    if (!parse_ip(s, nlen, false, h->addr))
        return NODE_BAD;
    h->v6 = 0;
    return NODE_ADDR;
}

/* ---- the trust list ---- */

static bool net_contains(const mt_net_t *net, bool v6, const uint8_t *addr) {
    if (net->v6 != v6)
        return false;
    unsigned bits = net->prefix, i = 0;
    for (; bits >= 8; bits -= 8, i++)
        if (net->addr[i] != addr[i])
            return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return (net->addr[i] & mask) == (addr[i] & mask);
}

static bool trust_addr(const mt_trust_t *t, bool v6, const uint8_t *addr) {
    if (t->all)
        return true;
    for (int i = 0; i < t->nnets; i++)
        if (net_contains(&t->nets[i], v6, addr))
            return true;
    return false;
}

int mt_trust_parse(mt_trust_t *t, const char *text, size_t n) {
    mt_trust_t parsed = {0};
    size_t pos = 0;
    while (pos < n) {
        while (pos < n && (text[pos] == ',' || text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n'))
            pos++;
        size_t start = pos;
        while (pos < n && !(text[pos] == ',' || text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n'))
            pos++;
        const char *item = text + start;
        size_t len = pos - start;
        if (len == 0)
            continue;
        if (len == 1 && item[0] == '*') {
            parsed.all = true;
            continue;
        }
        if (len == 4 && memcmp(item, "unix", 4) == 0) {
            parsed.unix_sockets = true;
            continue;
        }
        if (parsed.nnets == MT_TRUST_MAX)
            return -E2BIG;
        mt_net_t *net = &parsed.nets[parsed.nnets];
        const char *slash = memchr(item, '/', len);
        size_t alen = slash ? (size_t)(slash - item) : len;
        net->v6 = memchr(item, ':', alen) != NULL;
        unsigned max = net->v6 ? 128 : 32;
        if (!parse_ip(item, alen, net->v6, net->addr))
            return -EINVAL;
        unsigned prefix = max;
        if (slash) {
            uint16_t p;
            if (!parse_port(slash + 1, len - alen - 1, &p) || p > max || len - alen - 1 > 3)
                return -EINVAL;
            prefix = p;
        }
        net->prefix = (uint8_t)prefix;
        parsed.nnets++;
    }
    *t = parsed;
    return 0;
}

bool mt_trust_peer(const mt_trust_t *t, const mt_peer_t *peer) {
    if (t->all)
        return true;
    switch (peer->addr.ss_family) {
    case AF_UNIX:
        return t->unix_sockets;
    case AF_INET:
        return trust_addr(t, false, (const uint8_t *)&((const struct sockaddr_in *)&peer->addr)->sin_addr);
    case AF_INET6: {
        hop_t h = {.v6 = 1};
        memcpy(h.addr, &((const struct sockaddr_in6 *)&peer->addr)->sin6_addr, 16);
        unmap(&h);
        return trust_addr(t, h.v6, h.addr);
    }
    default:
        return false;
    }
}

/* ---- the fields ---- */

/* The rightmost hops of a request, oldest first. */
typedef struct chain {
    hop_t hops[MT_FORWARDED_MAX_HOPS];
    unsigned n; /* hops seen; the last MT_FORWARDED_MAX_HOPS are kept, at n % MAX */
} chain_t;

static hop_t *chain_add(chain_t *c) {
    hop_t *h = &c->hops[c->n++ % MT_FORWARDED_MAX_HOPS];
    memset(h, 0, sizeof *h);
    h->https = -1;
    return h;
}

static const hop_t *chain_at(const chain_t *c, unsigned i) {
    return &c->hops[i % MT_FORWARDED_MAX_HOPS];
}

static int8_t scheme_of(const char *s, size_t n) {
    if (n == 4 && strncasecmp(s, "http", 4) == 0)
        return 0;
    if (n == 5 && strncasecmp(s, "https", 5) == 0)
        return 1;
    return -1;
}

static bool host_valid(const char *s, size_t n) {
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum_ascii(s[i]) && strchr("-._~:[]!$&'()*+;=%", s[i]) == NULL)
            return false;
    return true;
}

static size_t skip_ows(const char *s, size_t pos, size_t n) {
    while (pos < n && mt_is_ows(s[pos]))
        pos++;
    return pos;
}

/* One Forwarded field value s[0, n) (at offset `off` of the request buffer):
 * its elements appended to the chain. Returns false when it does not parse. */
static bool parse_forwarded(chain_t *chain, const char *s, size_t n, uint32_t off) {
    size_t pos = 0;
    while (pos < n) {
        pos = skip_ows(s, pos, n);
        if (pos < n && s[pos] == ',') { /* an empty list element */
            pos++;
            continue;
        }
        if (pos >= n)
            break;
        hop_t *h = chain_add(chain);
        unsigned seen = 0; /* for, proto, host: each at most once per element */
        for (;;) {
            pos = skip_ows(s, pos, n);
            size_t name = pos;
            while (pos < n && is_field_token_char(s[pos]))
                pos++;
            size_t nlen = pos - name;
            if (nlen) {
                if (pos >= n || s[pos] != '=')
                    return false;
                pos++;
                char value[256];
                size_t vlen = 0, vstart = pos;
                bool escaped = false;
                if (pos < n && s[pos] == '"') {
                    vstart = ++pos;
                    while (pos < n && s[pos] != '"') {
                        if (s[pos] == '\\') {
                            escaped = true;
                            if (++pos >= n)
                                return false;
                        }
                        unsigned char ch = (unsigned char)s[pos];
                        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                            return false;
                        if (vlen < sizeof value)
                            value[vlen] = s[pos];
                        vlen++;
                        pos++;
                    }
                    if (pos >= n)
                        return false;
                    pos++; /* the closing quote */
                } else {
                    while (pos < n && is_field_token_char(s[pos])) {
                        if (vlen < sizeof value)
                            value[vlen] = s[pos];
                        vlen++;
                        pos++;
                    }
                    if (vlen == 0)
                        return false;
                }
                if (vlen > sizeof value)
                    return false;
                unsigned bit = 0;
                if (nlen == 3 && strncasecmp(s + name, "for", 3) == 0) {
                    bit = 1;
                    node_kind_t kind = parse_node(value, vlen, false, h);
                    if (kind == NODE_BAD)
                        return false;
                    h->kind = (uint8_t)kind;
                } else if (nlen == 5 && strncasecmp(s + name, "proto", 5) == 0) {
                    bit = 2;
                    h->https = scheme_of(value, vlen);
                } else if (nlen == 4 && strncasecmp(s + name, "host", 4) == 0) {
                    bit = 4;
                    if (!escaped && host_valid(value, vlen))
                        h->host = (mt_span_t){off + (uint32_t)vstart, (uint32_t)vlen};
                }
                if (seen & bit)
                    return false;
                seen |= bit;
                pos = skip_ows(s, pos, n);
            }
            if (pos >= n || s[pos] == ',') {
                if (pos < n)
                    pos++;
                break;
            }
            if (s[pos] != ';')
                return false;
            pos++;
        }
        if (!(seen & 1))
            h->kind = NODE_NONE;
    }
    return true;
}

/* One X-Forwarded-For value: its addresses appended. False when one does not parse. */
static bool parse_xff(chain_t *chain, const char *s, size_t n) {
    size_t pos = 0;
    while (pos < n) {
        pos = skip_ows(s, pos, n);
        const char *comma = memchr(s + pos, ',', n - pos);
        size_t end = comma ? (size_t)(comma - s) : n, last = end;
        while (last > pos && mt_is_ows(s[last - 1]))
            last--;
        if (last > pos) {
            hop_t *h = chain_add(chain);
            node_kind_t kind = parse_node(s + pos, last - pos, true, h);
            if (kind == NODE_BAD)
                return false;
            h->kind = (uint8_t)kind;
        }
        pos = end + 1;
    }
    return true;
}

/* The rightmost non-empty element of a list value, trimmed. */
static bool last_element(const char *s, size_t n, size_t *start, size_t *len) {
    bool found = false;
    size_t pos = 0;
    while (pos <= n) {
        const char *comma = pos < n ? memchr(s + pos, ',', n - pos) : NULL;
        size_t end = comma ? (size_t)(comma - s) : n;
        size_t a = skip_ows(s, pos, end), b = end;
        while (b > a && mt_is_ows(s[b - 1]))
            b--;
        if (b > a) {
            *start = a;
            *len = b - a;
            found = true;
        }
        pos = end + 1;
    }
    return found;
}

static void set_client(mt_forwarded_t *out, const hop_t *h) {
    memset(&out->client, 0, sizeof out->client);
    if (h->v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->client.addr;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, h->addr, 16);
        in6->sin6_port = htons(h->port);
        out->client.len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&out->client.addr;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, h->addr, 4);
        in->sin_port = htons(h->port);
        out->client.len = sizeof *in;
    }
}

/* The walk, right to left; returns the index of the element it stopped at (-1: none). */
static long walk_chain(const mt_trust_t *t, const chain_t *chain, mt_forwarded_t *out) {
    unsigned kept = MT_MIN(chain->n, MT_FORWARDED_MAX_HOPS);
    long stop = -1;
    for (unsigned k = 0; k < kept; k++) {
        unsigned i = chain->n - 1 - k;
        const hop_t *h = chain_at(chain, i);
        stop = (long)i;
        if (h->kind != NODE_ADDR)
            break;
        set_client(out, h);
        if (!trust_addr(t, h->v6, h->addr))
            break;
    }
    return stop;
}

void mt_forwarded_resolve(const mt_trust_t *t, const mt_peer_t *peer, const mt_request_t *req, const char *base,
                          mt_forwarded_t *out) {
    out->client.len = 0;
    out->https = -1;
    out->host = (mt_span_t){0, 0};
    if (t == NULL || !mt_trust_peer(t, peer))
        return;
    chain_t chain;
    chain.n = 0;
    bool forwarded = false, bad = false;
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const mt_header_t *f = &req->headers[i];
        if (mt_span_ieq(base, f->name, "forwarded", 9)) {
            forwarded = true;
            if (!bad && !parse_forwarded(&chain, base + f->value.off, f->value.len, f->value.off))
                bad = true;
        }
    }
    if (forwarded) {
        if (bad)
            return;
        long stop = walk_chain(t, &chain, out);
        if (stop >= 0) {
            const hop_t *h = chain_at(&chain, (unsigned)stop);
            out->https = h->https;
            out->host = h->host;
        }
        return;
    }
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const mt_header_t *f = &req->headers[i];
        const char *v = base + f->value.off;
        size_t a, len;
        if (mt_span_ieq(base, f->name, "x-forwarded-for", 15)) {
            if (!bad && !parse_xff(&chain, v, f->value.len))
                bad = true;
        } else if (mt_span_ieq(base, f->name, "x-forwarded-proto", 17)) {
            if (last_element(v, f->value.len, &a, &len))
                out->https = scheme_of(v + a, len);
        } else if (mt_span_ieq(base, f->name, "x-forwarded-host", 16)) {
            if (last_element(v, f->value.len, &a, &len))
                out->host =
                    host_valid(v + a, len) ? (mt_span_t){f->value.off + (uint32_t)a, (uint32_t)len} : (mt_span_t){0, 0};
        }
    }
    if (!bad)
        walk_chain(t, &chain, out);
}
