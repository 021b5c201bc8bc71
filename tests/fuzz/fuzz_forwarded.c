/* libFuzzer driver for the trusted-proxy parsers (forwarded.c): the input is
 * parsed as a trust list, and as the header fields of a request from a
 * trusted peer (Forwarded, X-Forwarded-For/-Proto/-Host, whatever the fuzzer
 * writes). Whatever it holds: no crash, no read outside the request, and a
 * result that is sane (a client of a known family, a scheme of -1/0/1, a host
 * span inside the head made of host characters). */
#include "forwarded.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mt_trust_t t;
    (void)mt_trust_parse(&t, (const char *)data, size);

    static const char prefix[] = "GET / HTTP/1.1\r\nHost: h\r\n";
    size_t n = sizeof prefix - 1 + size + 4;
    char *head = malloc(n);
    if (head == NULL)
        return 0;
    memcpy(head, prefix, sizeof prefix - 1);
    memcpy(head + sizeof prefix - 1, data, size);
    memcpy(head + n - 4, "\r\n\r\n", 4);
    static const mt_limits_t limits = {.max_request_line = 1024,
                                       .max_head_size = 1 << 20,
                                       .max_headers = 64,
                                       .max_body_size = 1 << 20,
                                       .max_chunk_ext = 256};
    mt_header_t headers[64];
    mt_buf_t body;
    mt_buf_init(&body);
    mt_request_t req;
    mt_http1_init(&req, &limits, headers, &body);
    size_t stop;
    if (mt_http1_parse(&req, head, 0, n, &stop) == MT_PARSE_COMPLETE || req.head_complete) {
        static const char list[] = "127.0.0.1 10.0.0.0/8 2001:db8::/32 unix";
        mt_trust_parse(&t, list, sizeof list - 1);
        mt_peer_t peer = {0};
        struct sockaddr_in *in = (struct sockaddr_in *)&peer.addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(0x7f000001);
        peer.len = sizeof *in;
        mt_forwarded_t f;
        mt_forwarded_resolve(&t, &peer, &req, head, &f);
        CHECK(f.https >= -1 && f.https <= 1);
        CHECK(f.client.len == 0 || f.client.addr.ss_family == AF_INET || f.client.addr.ss_family == AF_INET6);
        CHECK(f.host.len <= 255 && (size_t)f.host.off + f.host.len <= n);
        for (uint32_t i = 0; i < f.host.len; i++)
            CHECK(head[f.host.off + i] > 0x20 && head[f.host.off + i] < 0x7f && head[f.host.off + i] != '/');
    }
    mt_buf_dispose(&body);
    free(head);
    return 0;
}
