#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int mt_sock_accept(int listen_fd, mt_peer_t *peer) {
    peer->len = sizeof peer->addr;
    int fd = accept4(listen_fd, (struct sockaddr *)&peer->addr, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (peer->addr.ss_family == AF_INET || peer->addr.ss_family == AF_INET6) {
        /* Responses are written whole with writev: Nagle would only delay them. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int mt_sock_spare_open(void) {
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int mt_sock_refuse_with_spare(int listen_fd, int spare_fd, const char *response, size_t n) {
    if (spare_fd >= 0)
        close(spare_fd);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        ssize_t ignored = write(fd, response, n);
        (void)ignored;
        close(fd);
    }
    return mt_sock_spare_open();
}

void mt_sock_peer_format(const mt_peer_t *peer, char *host, size_t hostlen, int *port) {
    host[0] = '\0';
    *port = 0;
    if (peer->addr.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&peer->addr;
        inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostlen);
        *port = ntohs(in->sin_port);
    } else if (peer->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&peer->addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, (socklen_t)hostlen);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen);
        *port = ntohs(in6->sin6_port);
    }
}
