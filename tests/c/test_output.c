/* Unit tests of src/core/loop/output.c: a connection's output queue, written to a
 * socketpair whose buffer is small, read back by the test. */
#include "buf.c"
#include "output.c"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "tap.h"

static void pattern(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('A' + (i * 13 + seed + i / 97) % 26);
}

/* A non-blocking socketpair with small buffers: [0] is written, [1] read. */
static void pair(int sv[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
}

/* Writes the queue and reads the other end until the queue is empty. */
static size_t pump_all(mt_output_t *o, int sv[2], char *got, size_t cap, int *last_rc) {
    size_t len = 0;
    for (int rounds = 0; rounds < 100000; rounds++) {
        size_t written;
        *last_rc = mt_output_write(o, sv[0], &written);
        ssize_t n;
        while (len < cap && (n = read(sv[1], got + len, cap - len)) > 0)
            len += (size_t)n;
        if (*last_rc != -EAGAIN)
            break;
    }
    return len;
}

static void test_memory(void) {
    mt_output_t o;
    mt_output_init(&o);
    ok(mt_output_empty(&o), "a new queue is empty");
    enum { N = 300000 };
    static char data[N], got[N];
    pattern(data, N, 1);
    /* Many small appends coalesce; a large one gets its own segment. */
    size_t at = 0, short_appends = 0;
    while (at < 100000) {
        size_t n = 1 + at % 777;
        struct iovec iov = {data + at, n};
        if (mt_output_append_iov(&o, &iov, 1, SIZE_MAX) != (ssize_t)n)
            short_appends++;
        at += n;
    }
    is_int(short_appends, 0, "every small append taken whole");
    struct iovec two[2] = {{data + at, 50000}, {data + at + 50000, N - at - 50000}};
    is_int(mt_output_append_iov(&o, two, 2, SIZE_MAX), (long long)(N - at), "two iovecs in one append");
    is_int(o.memory, N, "memory counts every byte");
    is_int(o.pending, N, "pending too");
    int sv[2];
    pair(sv);
    int rc;
    size_t len = pump_all(&o, sv, got, N, &rc);
    is_int(rc, 0, "written to the end");
    ok(len == N && memcmp(got, data, N) == 0, "every byte, in order");
    ok(mt_output_empty(&o) && o.memory == 0 && o.pending == 0, "empty again");
    close(sv[0]);
    close(sv[1]);
}

static void test_limit(void) {
    mt_output_t o;
    mt_output_init(&o);
    char data[1000];
    pattern(data, sizeof data, 2);
    struct iovec iov[3] = {{data, 400}, {data + 400, 400}, {data + 800, 200}};
    is_int(mt_output_append_iov(&o, iov, 3, 500), 500, "an append takes at most its limit");
    is_int(o.memory, 500, "500 bytes queued");
    mt_output_clear(&o);
    ok(mt_output_empty(&o) && o.memory == 0, "cleared");
}

static void test_files(void) {
    char path[] = "/tmp/meltemi-test-output-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    enum { N = 200000 };
    static char data[N], got[N + 200];
    pattern(data, N, 3);
    ok(write(fd, data, N) == N, "temp file");
    mt_output_t o;
    mt_output_init(&o);
    struct iovec head = {"HEAD:", 5};
    mt_output_append_iov(&o, &head, 1, SIZE_MAX);
    is_int(mt_output_append_file(&o, fd, 1000, N - 2000), 0, "a file range queued");
    struct iovec tail = {":TAIL", 5};
    mt_output_append_iov(&o, &tail, 1, SIZE_MAX);
    is_int(o.memory, 10, "the file range costs no memory");
    is_int(o.pending, N - 2000 + 10, "but is pending");
    close(fd); /* the queue holds its own descriptor */
    int sv[2];
    pair(sv);
    int rc;
    size_t len = pump_all(&o, sv, got, sizeof got, &rc);
    is_int(rc, 0, "written to the end");
    ok(len == N - 2000 + 10 && memcmp(got, "HEAD:", 5) == 0 && memcmp(got + 5, data + 1000, N - 2000) == 0 &&
           memcmp(got + 5 + N - 2000, ":TAIL", 5) == 0,
       "memory, file range, memory: in order");
    close(sv[0]);
    close(sv[1]);
}

static void test_short_file(void) {
    char path[] = "/tmp/meltemi-test-output-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    ok(write(fd, "0123456789", 10) == 10, "a 10-byte file");
    mt_output_t o;
    mt_output_init(&o);
    mt_output_append_file(&o, fd, 0, 100);
    close(fd);
    int sv[2];
    pair(sv);
    char got[128];
    int rc;
    size_t len = pump_all(&o, sv, got, sizeof got, &rc);
    is_int(rc, -ENODATA, "a file shorter than its range: -ENODATA");
    is_int(len, 10, "what the file had went out");
    mt_output_clear(&o);
    close(sv[0]);
    close(sv[1]);
}

static void test_broken(void) {
    mt_output_t o;
    mt_output_init(&o);
    struct iovec iov = {"abc", 3};
    mt_output_append_iov(&o, &iov, 1, SIZE_MAX);
    int sv[2];
    pair(sv);
    close(sv[1]);
    size_t written;
    is_int(mt_output_write(&o, sv[0], &written), -EPIPE, "a peer that went away: -EPIPE");
    ok(!mt_output_empty(&o), "the bytes stay until cleared");
    mt_output_clear(&o);
    close(sv[0]);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_memory();
    test_limit();
    test_files();
    test_short_file();
    test_broken();
    is_int(atomic_load(&mt_counters.output_bytes_queued), atomic_load(&mt_counters.output_bytes_released),
           "every queued byte was released (%ld)", atomic_load(&mt_counters.output_bytes_queued));
    return done_testing();
}
