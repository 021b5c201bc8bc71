/* A connection of the stand-in server whose request head has been parsed, as
 * a handler gets it, with the other end of its socket pair as the client: for
 * the C unit tests that write answers on a connection directly (test_answer,
 * test_cors). Include after defining `static mt_server_t server`. */
#ifndef MT_TEST_CLIENT_H
#define MT_TEST_CLIENT_H

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct client {
    mt_conn_t *c;
    int peer;
    char got[8192];
} client_t;

static void open_with(client_t *t, const char *head) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    t->c = calloc(1, sizeof *t->c + sizeof(mt_header_t) * server.config.limits.max_headers);
    if (mt_conn_init(t->c, &server, sv[0]) < 0)
        abort();
    atomic_init(&t->c->state, MT_CONN_ACTIVE);
    t->peer = sv[1];
    mt_http1_init(&t->c->req, &server.config.limits, t->c->headers, &t->c->body);
    mt_buf_append(&t->c->rbuf, head, strlen(head));
    size_t stop;
    if (mt_http1_parse(&t->c->req, t->c->rbuf.data, 0, t->c->rbuf.len, &stop) == MT_PARSE_ERROR)
        ok(0, "test setup: the head parses (%s)", t->c->req.error_reason);
}

/* What the client received so far, as a string. */
static const char *received(client_t *t) {
    ssize_t n = recv(t->peer, t->got, sizeof t->got - 1, MSG_DONTWAIT);
    t->got[n > 0 ? n : 0] = '\0';
    return t->got;
}

static void close_client(client_t *t) {
    close(t->peer);
    close(t->c->fd);
    mt_conn_dispose(t->c);
    free(t->c);
}

#endif
