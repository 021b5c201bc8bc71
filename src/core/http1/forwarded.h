/* Trusted proxies: which peers may say who the client is, and what they say.
 *
 * A request's `Forwarded` (RFC 7239) or, when it has none, its
 * `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` fields are
 * heard only when the connection's peer is trusted (mt_trust_t: addresses and
 * CIDR ranges, Unix sockets, or everyone). The hops of the chain are then
 * walked from the right (the nearest proxy's entry) to the left; the client
 * is the first hop that is not trusted, or the leftmost one when all are.
 * A hop that is no address (`unknown`, an obfuscated identifier such as
 * `_hidden`, RFC 7239 6.3) ends the walk: the client is then the last address
 * known (the trusted hop that reported it). A field that does not parse is
 * ignored whole (the client stays the peer); so is everything a peer that is
 * not trusted sends.
 *
 * The scheme and host: with `Forwarded`, the `proto` and `host` of the element
 * that named the client (written by the first trusted proxy); with the
 * X-Forwarded fields, the rightmost value of each (the nearest proxy's). Only
 * `http` and `https` are scheme values; a host must be a plausible authority
 * (letters, digits, `.-_~:[]` and the sub-delims, 1 to 255 bytes).
 *
 * Everything is parsed in place from the request's buffer; nothing is
 * allocated. */
#ifndef MT_FORWARDED_H
#define MT_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"
#include "sock.h"

/* The most networks a trust list holds, and the most hops of one request
 * looked at (the rightmost ones: a longer chain's leftmost hops are never
 * reached unless all the kept ones are trusted). */
#define MT_TRUST_MAX 64
#define MT_FORWARDED_MAX_HOPS 32

typedef struct mt_net {
    uint8_t v6;     /* 0: IPv4 (addr[0..3]), 1: IPv6 */
    uint8_t prefix; /* leading bits that must match */
    uint8_t addr[16];
} mt_net_t;

typedef struct mt_trust {
    bool all;          /* "*": every peer */
    bool unix_sockets; /* "unix": peers on a Unix socket */
    int nnets;
    mt_net_t nets[MT_TRUST_MAX];
} mt_trust_t;

/* What the trusted proxies said about one request. */
typedef struct mt_forwarded {
    mt_peer_t client; /* the client's address (client.len 0: the peer itself); port 0 when not said */
    int8_t https;     /* -1: not said; 0: http; 1: https */
    mt_span_t host;   /* the host the client asked for (len 0: not said), in the request's buffer */
} mt_forwarded_t;

/* Parses a trust list: items separated by commas or white space, each an IPv4
 * or IPv6 address, a CIDR range ("10.0.0.0/8", "fd00::/8"), "unix" or "*".
 * An empty text trusts nobody. Returns 0, or -EINVAL (t is then untouched... as
 * far as the caller may rely: treat it as unset) or -E2BIG (more than
 * MT_TRUST_MAX networks). */
int mt_trust_parse(mt_trust_t *t, const char *text, size_t n);

/* Whether the peer is trusted. IPv4-mapped IPv6 peers count as IPv4. */
bool mt_trust_peer(const mt_trust_t *t, const mt_peer_t *peer);

/* Resolves the request `req` (spans in `base`) that came from `peer`, into
 * *out. Never fails: what cannot be used is ignored. */
void mt_forwarded_resolve(const mt_trust_t *t, const mt_peer_t *peer, const mt_request_t *req, const char *base,
                          mt_forwarded_t *out);

/* The address the request came from, as far as the trusted proxies say. */
static inline const mt_peer_t *mt_forwarded_client(const mt_forwarded_t *f, const mt_peer_t *peer) {
    return f->client.len ? &f->client : peer;
}

#endif
