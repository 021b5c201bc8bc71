/* Unit tests of src/core/api/redislimit.c against a real redis-server
 * (Debian's, started here on a free port): exact counts, all-or-nothing
 * across a route's limits, threads sharing a small pool, a script Redis
 * forgot, and Redis stopped and started again. */
#include "buf.c"
#include "ratelimit.c"
#include "redislimit.c"
#include "resp.c"

#include <signal.h>
#include <sys/wait.h>

#include "tap.h"

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_redis(int port) {
    pid_t pid = fork();
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               (char *)NULL);
        _exit(127);
    }
    /* Ready when it accepts a connection. */
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {
            .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return pid;
        usleep(25000);
    }
    ok(0, "test setup: redis-server starts (is Debian's redis-server installed?)");
    exit(1);
}

static void stop_redis(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int take(mt_redislimit_t *r, int n, const mt_rate_t *const *rates, const char *const *keys,
                mt_redis_verdict_t *v) {
    size_t lens[MT_REDIS_MAX_LIMITS];
    for (int i = 0; i < n; i++)
        lens[i] = strlen(keys[i]);
    return mt_redislimit_take(r, n, rates, keys, lens, v);
}

typedef struct arg {
    mt_redislimit_t *r;
    const mt_rate_t *rate;
    int tries, allowed, errors;
} arg_t;

static void *hammer(void *p) {
    arg_t *a = p;
    const char *key = "t:threads";
    for (int i = 0; i < a->tries; i++) {
        mt_redis_verdict_t v;
        if (take(a->r, 1, &a->rate, &key, &v) < 0)
            a->errors++;
        else
            a->allowed += v.allowed;
    }
    return NULL;
}

int main(void) {
    int port = free_port();
    pid_t redis = start_redis(port);
    char err[128];
    mt_redis_config_t cfg = {.host = "127.0.0.1", .port = port, .timeout_ms = 500, .pool = 2, .fail_open = true};
    mt_redislimit_t *r = mt_redislimit_create(&cfg, err, sizeof err);
    ok(r != NULL, "created");
    mt_rate_t ten, three;
    mt_rate_init(&ten, 1, 10, 60ULL * 1000000000ULL);
    mt_rate_init(&three, 2, 3, 60ULL * 1000000000ULL);

    const mt_rate_t *one[] = {&ten};
    const char *k1[] = {"t:a"};
    mt_redis_verdict_t v;
    int allowed = 0, rc = 0;
    for (int i = 0; i < 15 && rc == 0; i++) {
        rc = take(r, 1, one, k1, &v);
        allowed += rc == 0 && v.allowed;
    }
    is_int(rc, 0, "Redis decides");
    is_int(allowed, 10, "10 per minute: 10 of 15");
    ok(!v.allowed && v.refused_by == 0, "refused by limit 0");
    ok(v.retry > 5 * 100000 && v.retry <= 6 * 100000, "Retry after about 6 s (60/10): %llu ticks",
       (unsigned long long)v.retry);

    /* Two limits: a request refused by the second is not counted by the first. */
    const mt_rate_t *both[] = {&ten, &three};
    const char *k2[] = {"t:wide", "t:narrow"};
    allowed = 0;
    for (int i = 0; i < 6; i++) {
        take(r, 2, both, k2, &v);
        allowed += v.allowed;
    }
    is_int(allowed, 3, "the narrower limit decides");
    ok(!v.allowed && v.refused_by == 1, "refused by limit 1");
    const char *k3[] = {"t:wide"};
    allowed = 0;
    for (int i = 0; i < 10; i++) {
        take(r, 1, one, k3, &v);
        allowed += v.allowed;
    }
    is_int(allowed, 7, "the wider one counted only the 3 that passed (7 left)");

    /* Threads sharing a pool of 2. */
    mt_rate_t hundred;
    mt_rate_init(&hundred, 3, 100, 60ULL * 1000000000ULL);
    pthread_t t[6];
    arg_t args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (arg_t){r, &hundred, 40, 0, 0};
        pthread_create(&t[i], NULL, hammer, &args[i]);
    }
    int total = 0, errors = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        total += args[i].allowed;
        errors += args[i].errors;
    }
    is_int(errors, 0, "no errors with 6 threads on 2 connections");
    is_int(total, 100, "exactly 100 of 240 allowed");

    /* Redis forgets the script (SCRIPT FLUSH): reloaded on NOSCRIPT. */
    redis_conn_t raw = {.fd = -1};
    raw.fd = connect_to(r, now_ms() + 500);
    const char *flush[] = {"SCRIPT", "FLUSH"};
    size_t flens[] = {6, 5};
    mt_resp_reply_t reply;
    size_t used;
    ok(call(&raw, 2, flush, flens, &reply, &used, now_ms() + 500) == 0 && reply.top.type == MT_RESP_STATUS,
       "SCRIPT FLUSH");
    close(raw.fd);
    free(raw.in);
    const char *k4[] = {"t:after-flush"};
    is_int(take(r, 1, one, k4, &v), 0, "after SCRIPT FLUSH it still decides");
    ok(v.allowed, "... and allows");

    /* Redis stops: an error (the caller's policy applies), fast while it is down. */
    stop_redis(redis);
    ok(take(r, 1, one, k4, &v) < 0, "Redis stopped: an error");
    int64_t t0 = now_ms();
    ok(take(r, 1, one, k4, &v) == -EHOSTUNREACH, "then it counts as down");
    ok(now_ms() - t0 < 50, "and answers at once");
    ok(mt_redislimit_fail_open(r), "the policy is the configured one");
    redis = start_redis(port);
    usleep((DOWN_BACKOFF_MS + 100) * 1000);
    is_int(take(r, 1, one, k4, &v), 0, "Redis back: decides again after the back-off");
    stop_redis(redis);
    mt_redislimit_destroy(r);

    cfg.port = free_port();
    r = mt_redislimit_create(&cfg, err, sizeof err);
    ok(r && take(r, 1, one, k4, &v) < 0, "nothing listening: an error, not a hang");
    mt_redislimit_destroy(r);
    cfg.host = "no-such-host.invalid";
    ok(mt_redislimit_create(&cfg, err, sizeof err) == NULL, "an unknown host: %s", err);
    return done_testing();
}
