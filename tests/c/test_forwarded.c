/* Unit tests of src/core/http1/forwarded.c: the trust list, the Forwarded
 * and X-Forwarded-* parsers, and the walk from the nearest hop to the client. */
#include "buf.c"
#include "forwarded.c"
#include "http1.c"
#include "sock.c"

#include <stdlib.h>

#include "tap.h"

static const mt_limits_t limits = {
    .max_request_line = 1024, .max_head_size = 8192, .max_headers = 32, .max_body_size = 1 << 20, .max_chunk_ext = 256};

static mt_peer_t peer_of(const char *text) {
    mt_peer_t p = {0};
    if (strcmp(text, "unix") == 0) {
        p.addr.ss_family = AF_UNIX;
        p.len = sizeof(sa_family_t);
    } else if (strchr(text, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p.addr;
        in6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, text, &in6->sin6_addr);
        in6->sin6_port = htons(50000);
        p.len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&p.addr;
        in->sin_family = AF_INET;
        inet_pton(AF_INET, text, &in->sin_addr);
        in->sin_port = htons(50000);
        p.len = sizeof *in;
    }
    return p;
}

static mt_trust_t trust(const char *text) {
    mt_trust_t t;
    if (mt_trust_parse(&t, text, strlen(text)) != 0)
        ok(0, "test setup: the trust list %s parses", text);
    return t;
}

/* What a request with `fields` from `peer`, trusting `list`, resolves to:
 * "client|scheme|host" (client "-" for the peer itself, with ":port" when one was said). */
static const char *resolved(const char *list, const char *peer, const char *fields) {
    static char text[512];
    char head[4096];
    snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", fields);
    mt_header_t headers[32];
    mt_buf_t body, rbuf;
    mt_buf_init(&body);
    mt_buf_init(&rbuf);
    mt_request_t req;
    mt_http1_init(&req, &limits, headers, &body);
    mt_buf_append(&rbuf, head, strlen(head));
    size_t stop;
    if (mt_http1_parse(&req, rbuf.data, 0, rbuf.len, &stop) != MT_PARSE_COMPLETE)
        ok(0, "test setup: the head parses: %s", fields);
    mt_trust_t t = trust(list);
    mt_peer_t p = peer_of(peer);
    mt_forwarded_t f;
    mt_forwarded_resolve(&t, &p, &req, rbuf.data, &f);
    char host[64] = "-";
    int port = 0;
    if (f.client.len)
        mt_sock_peer_format(&f.client, host, sizeof host, &port);
    char client[80];
    if (port)
        snprintf(client, sizeof client, "%s:%d", host, port);
    else
        snprintf(client, sizeof client, "%s", host);
    snprintf(text, sizeof text, "%s|%s|%.*s", client,
             f.https < 0 ? "-"
             : f.https   ? "https"
                         : "http",
             (int)f.host.len, f.host.len ? rbuf.data + f.host.off : "");
    mt_buf_dispose(&rbuf);
    mt_buf_dispose(&body);
    return text;
}

static void test_trust_list(void) {
    mt_trust_t t;
    is_int(mt_trust_parse(&t, "127.0.0.1, ::1 unix", 19), 0, "addresses and unix");
    is_int(t.nnets, 2, "two networks");
    ok(t.unix_sockets && !t.all, "unix sockets, not everyone");
    is_int(mt_trust_parse(&t, "10.0.0.0/8,fd00::/8", 19), 0, "CIDR ranges");
    is_int(t.nets[0].prefix, 8, "prefix /8");
    is_int(mt_trust_parse(&t, "*", 1), 0, "'*'");
    ok(t.all, "everyone");
    is_int(mt_trust_parse(&t, "", 0), 0, "empty");
    ok(!t.all && !t.unix_sockets && t.nnets == 0, "an empty list trusts nobody");
    is_int(mt_trust_parse(&t, "10.0.0.0/33", 11), -EINVAL, "/33 on IPv4 is refused");
    is_int(mt_trust_parse(&t, "::/129", 6), -EINVAL, "/129 on IPv6 is refused");
    is_int(mt_trust_parse(&t, "10.0.0.1/", 9), -EINVAL, "an empty prefix is refused");
    is_int(mt_trust_parse(&t, "example.com", 11), -EINVAL, "a name is refused");
    is_int(mt_trust_parse(&t, "300.0.0.1", 9), -EINVAL, "a bad address is refused");

    t = trust("10.1.0.0/16 2001:db8::/32 unix");
    mt_peer_t p = peer_of("10.1.200.3");
    ok(mt_trust_peer(&t, &p), "inside an IPv4 range");
    p = peer_of("10.2.0.1");
    ok(!mt_trust_peer(&t, &p), "outside it");
    p = peer_of("2001:db8:ffff::1");
    ok(mt_trust_peer(&t, &p), "inside an IPv6 range");
    p = peer_of("2001:db9::1");
    ok(!mt_trust_peer(&t, &p), "outside it");
    p = peer_of("::ffff:10.1.2.3");
    ok(mt_trust_peer(&t, &p), "an IPv4-mapped peer counts as IPv4");
    p = peer_of("unix");
    ok(mt_trust_peer(&t, &p), "a Unix socket with 'unix'");
    t = trust("127.0.0.1");
    ok(!mt_trust_peer(&t, &p), "a Unix socket without 'unix'");
    t = trust("10.0.0.0/3");
    p = peer_of("31.255.255.255");
    ok(mt_trust_peer(&t, &p), "a prefix that is not a whole byte: inside");
    p = peer_of("32.0.0.0");
    ok(!mt_trust_peer(&t, &p), "... and outside");
}

static void test_x_forwarded(void) {
    const char *T = "127.0.0.1 10.0.0.0/8";
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 203.0.113.7\r\n"), "203.0.113.7|-|", "one hop");
    is_str(resolved("10.9.9.9", "127.0.0.1", "X-Forwarded-For: 203.0.113.7\r\n"), "-|-|",
           "an untrusted peer is not heard");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 1.1.1.1, 203.0.113.7, 10.0.0.2\r\n"), "203.0.113.7|-|",
           "the rightmost untrusted hop, walking through trusted ones");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 10.0.0.5, 10.0.0.2\r\n"), "10.0.0.5|-|",
           "all trusted: the leftmost");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.2\r\n"),
           "203.0.113.7|-|", "several fields are one list");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 2001:db8::1\r\n"), "2001:db8::1|-|", "bare IPv6");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: [2001:db8::1]:8080\r\n"), "2001:db8::1:8080|-|",
           "bracketed IPv6 with a port");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 203.0.113.7:4711\r\n"), "203.0.113.7:4711|-|",
           "IPv4 with a port");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: ::ffff:203.0.113.7\r\n"), "203.0.113.7|-|",
           "IPv4-mapped is IPv4");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: garbage, 203.0.113.7\r\n"), "-|-|",
           "a malformed list is ignored whole");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 203.0.113.7, unknown\r\n"), "-|-|",
           "unknown as the nearest hop: the peer stays the client");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: unknown, 10.0.0.3\r\n"), "10.0.0.3|-|",
           "unknown behind a trusted hop: that hop");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 1.2.3.4,, 5.6.7.8 ,\r\n"), "5.6.7.8|-|",
           "empty list elements are skipped");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: 1.2.3.4:99999\r\n"), "-|-|", "a port above 65535");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-For: [::1\r\n"), "-|-|", "an unclosed bracket");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-Proto: https\r\n"), "-|https|", "proto");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-Proto: http, HTTPS\r\n"), "-|https|", "proto: the rightmost");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-Proto: gopher\r\n"), "-|-|", "an unknown scheme is ignored");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-Host: example.com:8443\r\n"), "-|-|example.com:8443", "host");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-Host: evil.test, api.example.com\r\n"), "-|-|api.example.com",
           "host: the rightmost");
    is_str(resolved(T, "127.0.0.1", "X-Forwarded-Host: bad/host\r\n"), "-|-|", "a host with '/' is ignored");
    is_str(resolved("10.0.0.1", "127.0.0.1", "X-Forwarded-Proto: https\r\nX-Forwarded-Host: e.com\r\n"), "-|-|",
           "proto and host from an untrusted peer are ignored");
}

static void test_forwarded(void) {
    const char *T = "127.0.0.1 10.0.0.0/8 2001:db8:1::/48";
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=192.0.2.60;proto=https;host=example.com\r\n"),
           "192.0.2.60|https|example.com", "RFC 7239 4, one element");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=\"[2001:db8:cafe::17]:4711\"\r\n"), "2001:db8:cafe::17:4711|-|",
           "quoted IPv6 with a port");
    is_str(resolved(T, "127.0.0.1", "Forwarded: For=\"[2001:db8:cafe::17]\";Proto=HTTPS\r\n"),
           "2001:db8:cafe::17|https|", "parameter names without case");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=192.0.2.43, for=198.51.100.17;proto=https, for=10.1.2.3\r\n"),
           "198.51.100.17|https|", "a chain: the first untrusted, with its element's proto");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=192.0.2.43\r\nForwarded: for=10.1.2.3;proto=http\r\n"),
           "192.0.2.43|-|", "several fields are one list");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=_hidden;proto=https, for=10.1.2.3\r\n"), "10.1.2.3|https|",
           "an obfuscated client: the trusted hop that reported it");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=unknown\r\n"), "-|-|", "unknown: the peer");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=\"_gazonk:_port\"\r\n"), "-|-|", "an obfuscated port");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=\"[2001:db8:1::5]\", for=\"[2001:db8:1::6]\"\r\n"),
           "2001:db8:1::5|-|", "IPv6 trusted ranges walked through");
    is_str(resolved(T, "::1", "Forwarded: for=192.0.2.60\r\n"), "-|-|", "an untrusted IPv6 peer");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=192.0.2.60\r\nX-Forwarded-For: 198.51.100.1\r\n"), "192.0.2.60|-|",
           "Forwarded wins over X-Forwarded-For");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=[::1]\r\nX-Forwarded-For: 198.51.100.1\r\n"), "-|-|",
           "an unquoted IPv6 is malformed: ignored, and X-Forwarded-For is not heard either");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=\"1.2.3.4\r\n"), "-|-|", "an unclosed quote");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=1.2.3.4;for=5.6.7.8\r\n"), "-|-|", "a parameter given twice");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for\r\n"), "-|-|", "a parameter without a value");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=\r\n"), "-|-|", "an empty value");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=1.2.3.4 junk\r\n"), "-|-|", "junk after a value");
    is_str(resolved(T, "127.0.0.1", "Forwarded: by=10.0.0.1;for=192.0.2.9;secret=x\r\n"), "192.0.2.9|-|",
           "other parameters are ignored");
    is_str(resolved(T, "127.0.0.1", "Forwarded: for=\"192.0.2.\\61\"\r\n"), "192.0.2.61|-|",
           "a quoted-pair in a quoted value");
    is_str(resolved(T, "127.0.0.1", "Forwarded: host=\"a\\b.com\";for=192.0.2.1\r\n"), "192.0.2.1|-|",
           "a host with an escape is ignored");
    is_str(resolved(T, "127.0.0.1", "Forwarded: proto=https\r\n"), "-|https|",
           "an element without 'for' still gives its proto");
    is_str(resolved(T, "127.0.0.1", "Forwarded: ,, for=192.0.2.1 ,\r\n"), "192.0.2.1|-|", "empty elements");
    is_str(resolved("*", "198.51.100.1", "Forwarded: for=192.0.2.1, for=192.0.2.2\r\n"), "192.0.2.1|-|",
           "'*' trusts every hop: the leftmost");
    is_str(resolved("unix", "unix", "Forwarded: for=192.0.2.1\r\n"), "192.0.2.1|-|", "from a Unix socket");
}

static void test_long_chain(void) {
    char fields[2048] = "X-Forwarded-For: 192.0.2.1";
    for (int i = 0; i < 40; i++)
        snprintf(fields + strlen(fields), sizeof fields - strlen(fields), ", 10.0.0.%d", i + 1);
    strcat(fields, "\r\n");
    is_str(resolved("127.0.0.1 10.0.0.0/8", "127.0.0.1", fields), "10.0.0.9|-|",
           "41 hops, all but the first trusted: the walk ends at the leftmost of the %d kept", MT_FORWARDED_MAX_HOPS);
}

int main(void) {
    test_trust_list();
    test_x_forwarded();
    test_forwarded();
    test_long_chain();
    return done_testing();
}
