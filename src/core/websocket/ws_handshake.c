#include "ws_handshake.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

/* ---- SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only ----
 *
 * Written here rather than taken from libcrypto: the handshake hashes 60
 * bytes once per connection, where speed does not matter, and linking
 * OpenSSL for it would add a build and run-time dependency (and its version
 * churn) to every install. SHA-1 has no security role here (RFC 6455 10.3:
 * the accept key only proves the server read the handshake). The unit test
 * checks it against FIPS 180 test vectors and RFC 6455's example. */

typedef struct sha1 {
    uint32_t h[5];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} sha1_t;

static uint32_t rol(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(sha1_t *s, const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(sha1_t *s) {
    *s = (sha1_t){.h = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}};
}

static void sha1_update(sha1_t *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->bytes += n;
    while (n > 0) {
        size_t take = MT_MIN(n, 64 - s->fill);
        memcpy(s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        n -= take;
        if (s->fill == 64) {
            sha1_block(s, s->block);
            s->fill = 0;
        }
    }
}

static void sha1_final(sha1_t *s, uint8_t out[20]) {
    uint64_t bits = s->bytes * 8;
    static const uint8_t pad[64] = {0x80};
    sha1_update(s, pad, s->fill < 56 ? 56 - s->fill : 120 - s->fill);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, len, 8);
    for (int i = 0; i < 20; i++)
        out[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t base64_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c) {
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* RFC 6455 4.1: the key is a random 16-byte value, base64-encoded: exactly
 * 22 alphabet characters and "==", the last character's two unused bits
 * zero (the canonical encoding every client produces). */
static bool key_valid(const char *key, size_t n) {
    if (n != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(key[i]) < 0)
            return false;
    return (b64_value(key[21]) & 15) == 0;
}

void mt_ws_accept_key(const char *key, size_t n, char out[MT_WS_ACCEPT_LEN + 1]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    sha1_t s;
    uint8_t digest[20];
    sha1_init(&s);
    sha1_update(&s, key, n);
    sha1_update(&s, guid, sizeof guid - 1);
    sha1_final(&s, digest);
    base64_encode(digest, sizeof digest, out);
}

/* ---- header lists ---- */

static bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

static bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool ieq(const char *s, size_t n, const char *lit) {
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i])
            return false;
    return true;
}

static void trim(const char **p, size_t *n) {
    while (*n > 0 && is_ows(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*p)[*n - 1]))
        (*n)--;
}

/* Calls back for each element of a comma-separated list (RFC 9110 5.6.1),
 * trimmed; empty elements are skipped, as the list rule allows. Stops when
 * the callback returns false; returns false then. */
typedef bool (*each_fn)(void *ctx, const char *p, size_t n);

static bool list_each(const char *p, size_t n, each_fn fn, void *ctx) {
    while (n > 0) {
        const char *comma = memchr(p, ',', n);
        size_t len = comma ? (size_t)(comma - p) : n;
        const char *e = p;
        size_t en = len;
        trim(&e, &en);
        if (en > 0 && !fn(ctx, e, en))
            return false;
        if (!comma)
            break;
        p += len + 1;
        n -= len + 1;
    }
    return true;
}

static bool is_token(const char *p, size_t n) {
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar(p[i]))
            return false;
    return true;
}

/* list_each callback: stops (returns false) at the element named by ctx. */
static bool not_this(void *ctx, const char *p, size_t n) {
    return !ieq(p, n, ctx);
}

typedef struct protocols_ctx {
    mt_ws_handshake_t *hs;
    const char *base;
    const char *error;
} protocols_ctx_t;

static bool add_protocol(void *arg, const char *p, size_t n) {
    protocols_ctx_t *ctx = arg;
    if (!is_token(p, n)) {
        ctx->error = "Sec-WebSocket-Protocol is not a list of tokens";
        return false;
    }
    if (ctx->hs->nprotocols == MT_WS_MAX_PROTOCOLS) {
        ctx->error = "too many subprotocols offered";
        return false;
    }
    ctx->hs->protocols[ctx->hs->nprotocols++] = (mt_span_t){(uint32_t)(p - ctx->base), (uint32_t)n};
    return true;
}

/* ---- permessage-deflate offers (RFC 7692 5, 7.1) ---- */

typedef struct offer {
    bool server_no_context_takeover, client_no_context_takeover;
    bool has_server_bits, has_client_bits;
    int server_bits, client_bits; /* client_bits 0: offered without a value */
    bool bad;                     /* an unknown, repeated or malformed parameter: decline */
} offer_t;

/* A window-bits value: 8..15, decimal, no leading zero (RFC 7692 7.1.2). */
static int window_bits(const char *v, size_t n) {
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + v[1] - '0';
    return -1;
}

static void offer_param(offer_t *o, const char *name, size_t nn, const char *value, size_t vn, bool has_value) {
    if (ieq(name, nn, "server_no_context_takeover")) {
        o->bad |= o->server_no_context_takeover || has_value;
        o->server_no_context_takeover = true;
    } else if (ieq(name, nn, "client_no_context_takeover")) {
        o->bad |= o->client_no_context_takeover || has_value;
        o->client_no_context_takeover = true;
    } else if (ieq(name, nn, "server_max_window_bits")) {
        o->bad |= o->has_server_bits || !has_value;
        o->has_server_bits = true;
        o->server_bits = has_value ? window_bits(value, vn) : -1;
        o->bad |= o->server_bits < 0;
    } else if (ieq(name, nn, "client_max_window_bits")) {
        o->bad |= o->has_client_bits;
        o->has_client_bits = true;
        o->client_bits = has_value ? window_bits(value, vn) : 0;
        o->bad |= o->client_bits < 0;
    } else {
        o->bad = true;
    }
}

/* Accepts an offer under the config, or returns false to decline it. */
static bool offer_accept(const offer_t *o, const mt_ws_handshake_config_t *cfg, mt_ws_handshake_t *hs) {
    if (o->bad)
        return false;
    /* zlib cannot compress raw deflate with a 256-byte window (it refuses
     * windowBits -8): a client that asks for it is declined. */
    if (o->has_server_bits && o->server_bits < 9)
        return false;
    mt_ws_deflate_params_t *p = &hs->params;
    int sbits = cfg->server_max_window_bits < 9 ? 9 : MT_MIN(cfg->server_max_window_bits, 15);
    if (o->has_server_bits)
        sbits = MT_MIN(sbits, o->server_bits);
    p->server_max_window_bits = (uint8_t)sbits;
    p->server_no_context_takeover = o->server_no_context_takeover || cfg->server_no_context_takeover;
    p->client_no_context_takeover = o->client_no_context_takeover || cfg->client_no_context_takeover;
    /* Without client_max_window_bits in the offer the client may use a
     * 15-bit window and we must not name one (7.1.2.2). */
    int cbits = 15;
    if (o->has_client_bits) {
        cbits = cfg->client_max_window_bits < 8 ? 8 : MT_MIN(cfg->client_max_window_bits, 15);
        if (o->client_bits)
            cbits = MT_MIN(cbits, o->client_bits);
    }
    p->client_max_window_bits = (uint8_t)cbits;
    /* A client that does not let us choose its window makes us inflate
     * with 15 bits: under a tight memory bound, no compression at all. */
    if (cfg->max_memory && mt_ws_deflate_memory(p, cfg->mem_level) > cfg->max_memory) {
        *p = (mt_ws_deflate_params_t){0};
        return false;
    }
    hs->deflate = true;
    hs->announce_server_bits = o->has_server_bits;
    hs->announce_client_bits = o->has_client_bits;
    return true;
}

typedef struct ext_ctx {
    const mt_ws_handshake_config_t *cfg;
    mt_ws_handshake_t *hs;
    bool done; /* an offer was accepted, or a syntax error ended the parse */
} ext_ctx_t;

/* Parses one Sec-WebSocket-Extensions value:
 *   extension = token *( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] )
 * elements separated by commas. Returns false on a syntax error (every
 * offer after it is then declined), or once an offer was accepted. */
static bool parse_extensions(ext_ctx_t *ctx, const char *p, size_t n) {
    size_t i = 0;
    for (;;) {
        while (i < n && (is_ows(p[i]) || p[i] == ','))
            i++;
        if (i == n)
            return true;
        size_t name = i;
        while (i < n && is_tchar(p[i]))
            i++;
        if (i == name)
            return false;
        bool deflate = ieq(p + name, i - name, "permessage-deflate");
        offer_t o = {0};
        for (;;) {
            while (i < n && is_ows(p[i]))
                i++;
            if (i == n || p[i] == ',')
                break;
            if (p[i] != ';')
                return false;
            i++;
            while (i < n && is_ows(p[i]))
                i++;
            size_t pn = i;
            while (i < n && is_tchar(p[i]))
                i++;
            size_t pn_len = i - pn;
            if (pn_len == 0)
                return false;
            while (i < n && is_ows(p[i]))
                i++;
            char value[8];
            size_t vn = 0;
            bool has_value = false, too_long = false;
            if (i < n && p[i] == '=') {
                has_value = true;
                i++;
                while (i < n && is_ows(p[i]))
                    i++;
                if (i < n && p[i] == '"') {
                    /* A quoted value must be a token once unquoted (RFC 6455 9.1). */
                    i++;
                    for (;;) {
                        if (i == n)
                            return false;
                        char c = p[i++];
                        if (c == '"')
                            break;
                        if (c == '\\') {
                            if (i == n)
                                return false;
                            c = p[i++];
                        }
                        if (!is_tchar(c))
                            return false;
                        if (vn < sizeof value)
                            value[vn++] = c;
                        else
                            too_long = true;
                    }
                } else {
                    size_t v = i;
                    while (i < n && is_tchar(p[i]))
                        i++;
                    if (i == v)
                        return false;
                    vn = MT_MIN(i - v, sizeof value);
                    too_long = i - v > sizeof value;
                    memcpy(value, p + v, vn);
                }
            }
            if (deflate)
                offer_param(&o, p + pn, pn_len, value, vn, has_value);
            o.bad |= too_long;
        }
        if (deflate && ctx->cfg->deflate && offer_accept(&o, ctx->cfg, ctx->hs))
            return false;
    }
}

/* ---- the request ---- */

static mt_ws_handshake_result_t refuse(mt_ws_handshake_t *hs, mt_ws_handshake_result_t r, const char *why) {
    hs->error = why;
    return r;
}

mt_ws_handshake_result_t mt_ws_handshake_parse(mt_ws_handshake_t *hs, const mt_request_t *req, const char *base,
                                               const mt_ws_handshake_config_t *config) {
    memset(hs, 0, sizeof *hs);
    bool upgrade_ws = false, connection_upgrade = false;
    uint32_t nversion = 0, nkey = 0, norigin = 0;
    const char *version = NULL, *key = NULL;
    size_t version_len = 0, key_len = 0;
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const mt_header_t *h = &req->headers[i];
        const char *v = base + h->value.off;
        size_t vn = h->value.len;
        trim(&v, &vn);
        if (mt_span_ieq(base, h->name, "upgrade", 7)) {
            upgrade_ws |= !list_each(v, vn, not_this, "websocket");
        } else if (mt_span_ieq(base, h->name, "connection", 10)) {
            connection_upgrade |= !list_each(v, vn, not_this, "upgrade");
        } else if (mt_span_ieq(base, h->name, "sec-websocket-version", 21)) {
            nversion++;
            version = v;
            version_len = vn;
        } else if (mt_span_ieq(base, h->name, "sec-websocket-key", 17)) {
            nkey++;
            key = v;
            key_len = vn;
        } else if (mt_span_ieq(base, h->name, "origin", 6)) {
            norigin++;
            hs->has_origin = true;
            hs->origin = (mt_span_t){(uint32_t)(v - base), (uint32_t)vn};
        }
    }
    if (!upgrade_ws)
        return MT_WS_HANDSHAKE_NOT_WEBSOCKET;
    if (req->method_id != HTTP_GET)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "a WebSocket handshake must be a GET");
    if (req->http_minor != 1)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "a WebSocket handshake must be HTTP/1.1");
    if (!connection_upgrade)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "Connection does not list upgrade");
    if (req->host_count != 1)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "a WebSocket handshake needs one Host");
    /* Bytes after the head belong to the WebSocket connection: a body
     * would be read as frames. */
    if (req->chunked || req->content_length > 0)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "a WebSocket handshake has no body");
    if (nversion > 1)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "Sec-WebSocket-Version given twice");
    if (nversion == 0 || version_len != 2 || memcmp(version, "13", 2) != 0)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_VERSION, "unsupported Sec-WebSocket-Version");
    if (nkey != 1 || !key_valid(key, key_len))
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "Sec-WebSocket-Key is missing, repeated or malformed");
    if (norigin > 1)
        return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, "Origin given twice");
    mt_ws_accept_key(key, key_len, hs->accept);

    protocols_ctx_t pctx = {hs, base, NULL};
    ext_ctx_t ectx = {config, hs, false};
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const mt_header_t *h = &req->headers[i];
        const char *v = base + h->value.off;
        size_t vn = h->value.len;
        if (mt_span_ieq(base, h->name, "sec-websocket-protocol", 22)) {
            if (!list_each(v, vn, add_protocol, &pctx))
                return refuse(hs, MT_WS_HANDSHAKE_BAD_REQUEST, pctx.error);
        } else if (mt_span_ieq(base, h->name, "sec-websocket-extensions", 24) && !hs->deflate && !ectx.done) {
            ectx.done = !parse_extensions(&ectx, v, vn);
        }
    }
    return MT_WS_HANDSHAKE_OK;
}

/* Appends to out[*len, cap) with snprintf's rules; -ENOSPC when it does not fit. */
static __attribute__((format(printf, 4, 5))) int append(char *out, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len >= cap)
        return -ENOSPC;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return -ENOSPC;
    *len += (size_t)n;
    return 0;
}

int mt_ws_handshake_accept(const mt_ws_handshake_t *hs, const char *base, const char *protocol, size_t n, char *out,
                           size_t cap) {
    if (protocol) {
        bool offered = false;
        for (uint32_t i = 0; i < hs->nprotocols && !offered; i++)
            offered = hs->protocols[i].len == n && memcmp(base + hs->protocols[i].off, protocol, n) == 0;
        if (!offered)
            return -EINVAL;
    }
    size_t len = 0;
    int rc = append(out, cap, &len,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n",
                    hs->accept);
    if (rc == 0 && protocol)
        rc = append(out, cap, &len, "Sec-WebSocket-Protocol: %.*s\r\n", (int)n, protocol);
    if (rc == 0 && hs->deflate) {
        const mt_ws_deflate_params_t *p = &hs->params;
        rc = append(out, cap, &len, "Sec-WebSocket-Extensions: permessage-deflate%s%s",
                    p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                    p->client_no_context_takeover ? "; client_no_context_takeover" : "");
        if (rc == 0 && hs->announce_server_bits)
            rc = append(out, cap, &len, "; server_max_window_bits=%d", p->server_max_window_bits);
        if (rc == 0 && hs->announce_client_bits)
            rc = append(out, cap, &len, "; client_max_window_bits=%d", p->client_max_window_bits);
        if (rc == 0)
            rc = append(out, cap, &len, "\r\n");
    }
    if (rc == 0)
        rc = append(out, cap, &len, "\r\n");
    return rc < 0 ? rc : (int)len;
}

int mt_ws_handshake_refuse(mt_ws_handshake_result_t result, const mt_ws_handshake_t *hs, char *out, size_t cap) {
    const char *why = hs->error ? hs->error : "bad WebSocket handshake";
    size_t len = 0;
    int rc = result == MT_WS_HANDSHAKE_BAD_VERSION
                 ? append(out, cap, &len,
                          "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n"
                          "Connection: close\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n",
                          strlen(why) + 1, why)
                 : append(out, cap, &len,
                          "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                          "Content-Length: %zu\r\n\r\n%s\n",
                          strlen(why) + 1, why);
    return rc < 0 ? rc : (int)len;
}
