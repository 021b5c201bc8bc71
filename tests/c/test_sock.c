/* Unit tests of src/core/loop/sock.c: accepting, refusing with the spare
 * descriptor when out of descriptors, formatting peer addresses. */
#include "sock.c"

#include <sys/resource.h>
#include <sys/un.h>

#include "tap.h"

/* A non-blocking listening socket on an ephemeral loopback port. */
static int listen_on(int family, struct sockaddr_storage *addr, socklen_t *len) {
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        *len = sizeof *in6;
    }
    if (bind(fd, (struct sockaddr *)addr, *len) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)addr, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(const struct sockaddr_storage *addr, socklen_t len) {
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)addr, len) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int local_port(int fd) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port)
                                  : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

static void test_accept_ipv4(void) {
    struct sockaddr_storage addr;
    socklen_t len;
    int lfd = listen_on(AF_INET, &addr, &len);
    ok(lfd >= 0, "listening on 127.0.0.1");
    mt_peer_t peer;
    is_int(mt_sock_accept(lfd, &peer), -EAGAIN, "nothing waiting: -EAGAIN");

    int cfd = connect_to(&addr, len);
    int fd = mt_sock_accept(lfd, &peer);
    ok(fd >= 0, "accepts a waiting connection");
    ok(fcntl(fd, F_GETFL) & O_NONBLOCK, "accepted socket is non-blocking");
    ok(fcntl(fd, F_GETFD) & FD_CLOEXEC, "accepted socket is close-on-exec");
    int nodelay = 0;
    socklen_t optlen = sizeof nodelay;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &optlen);
    ok(nodelay, "TCP_NODELAY is set");

    char host[64];
    int port = -1;
    mt_sock_peer_format(&peer, host, sizeof host, &port);
    is_str(host, "127.0.0.1", "peer host");
    is_int(port, local_port(cfd), "peer port is the client's port");
    close(fd);
    close(cfd);
    close(lfd);
}

static void test_accept_ipv6(void) {
    struct sockaddr_storage addr;
    socklen_t len;
    int lfd = listen_on(AF_INET6, &addr, &len);
    if (lfd < 0) {
        skip("no IPv6 loopback");
        return;
    }
    int cfd = connect_to(&addr, len);
    mt_peer_t peer;
    int fd = mt_sock_accept(lfd, &peer);
    char host[64];
    int port = -1;
    mt_sock_peer_format(&peer, host, sizeof host, &port);
    ok(fd >= 0 && strcmp(host, "::1") == 0 && port == local_port(cfd), "IPv6 peer formats as ::1 and its port (%s)",
       host);
    close(fd);
    close(cfd);
    close(lfd);
}

static void test_peer_format_forms(void) {
    mt_peer_t peer;
    memset(&peer, 0, sizeof peer);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&peer.addr;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(8080);
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6->sin6_addr);
    peer.len = sizeof *in6;
    char host[64];
    int port;
    mt_sock_peer_format(&peer, host, sizeof host, &port);
    is_str(host, "10.1.2.3", "a v4-mapped IPv6 peer is shown as IPv4");
    is_int(port, 8080, "and keeps its port");

    memset(&peer, 0, sizeof peer);
    peer.addr.ss_family = AF_UNIX;
    strcpy(host, "garbage");
    port = 77;
    mt_sock_peer_format(&peer, host, sizeof host, &port);
    ok(host[0] == '\0' && port == 0, "a Unix socket peer has no host and port 0");
}

static void test_accept_unix(void) {
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    /* An abstract address: nothing to clean up on the file system. */
    snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "meltemi-test-sock-%d", getpid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un.sun_path + 1));
    ok(bind(lfd, (struct sockaddr *)&un, len) == 0 && listen(lfd, 4) == 0, "listening on a Unix socket");
    int cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    connect(cfd, (struct sockaddr *)&un, len);
    mt_peer_t peer;
    int fd = mt_sock_accept(lfd, &peer);
    ok(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK), "accepts a Unix connection, non-blocking");
    char host[64];
    int port = -1;
    mt_sock_peer_format(&peer, host, sizeof host, &port);
    ok(host[0] == '\0' && port == 0, "Unix peer formats as empty host, port 0");
    close(fd);
    close(cfd);
    close(lfd);
}

/* Out of descriptors: accept fails with EMFILE and the connection would stay
 * in the backlog forever; the spare descriptor lets us answer and close it. */
static void test_refuse_with_spare(void) {
    struct sockaddr_storage addr;
    socklen_t len;
    int lfd = listen_on(AF_INET, &addr, &len);
    int spare = mt_sock_spare_open();
    ok(spare >= 0, "spare descriptor opened");
    int cfd = connect_to(&addr, len);

    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    /* No descriptor above the ones in use may be allocated. */
    int highest = dup(0);
    close(highest);
    low = old;
    low.rlim_cur = (rlim_t)highest;
    setrlimit(RLIMIT_NOFILE, &low);
    mt_peer_t peer;
    int rc = mt_sock_accept(lfd, &peer);
    is_int(rc, -EMFILE, "accept fails with -EMFILE when out of descriptors");
    static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    spare = mt_sock_refuse_with_spare(lfd, spare, answer, sizeof answer - 1);
    ok(spare >= 0, "the spare is reopened after refusing");
    setrlimit(RLIMIT_NOFILE, &old);

    char buf[256];
    size_t got = 0;
    ssize_t n;
    while ((n = read(cfd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    is_str(buf, answer, "the refused client gets the answer, then EOF");
    is_int(mt_sock_accept(lfd, &peer), -EAGAIN, "the backlog is empty afterwards");
    close(spare);
    close(cfd);
    close(lfd);
}

int main(void) {
    test_accept_ipv4();
    test_accept_ipv6();
    test_peer_format_forms();
    test_accept_unix();
    test_refuse_with_spare();
    return done_testing();
}
