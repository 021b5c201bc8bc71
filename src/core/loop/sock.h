/* Socket helpers of the I/O thread: accepting in batches, surviving
 * descriptor exhaustion, formatting peer addresses. */
#ifndef MT_SOCK_H
#define MT_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct mt_peer {
    struct sockaddr_storage addr;
    socklen_t len;
} mt_peer_t;

/* Accepts one connection, non-blocking and close-on-exec, with TCP_NODELAY
 * for TCP. Returns the fd or a negative errno (-EAGAIN when none is waiting). */
int mt_sock_accept(int listen_fd, mt_peer_t *peer);

/* Reserves a descriptor (on /dev/null) to give up when accept fails with
 * EMFILE, so the waiting connection can be accepted, refused and closed
 * instead of staying in the backlog and waking epoll forever. */
int mt_sock_spare_open(void);

/* Refuses one waiting connection using the spare descriptor: closes the spare,
 * accepts, writes `response`, closes, reopens the spare. Returns the new spare
 * (or -1 if it could not be reopened). */
int mt_sock_refuse_with_spare(int listen_fd, int spare_fd, const char *response, size_t n);

/* Formats the peer's address ("127.0.0.1", "::1"; "" for a Unix socket) into
 * host (>= 64 bytes) and its port into *port (0 for a Unix socket). */
void mt_sock_peer_format(const mt_peer_t *peer, char *host, size_t hostlen, int *port);

#endif
