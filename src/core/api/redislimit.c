/* Rate limits in Redis (redislimit.h). */
#include "redislimit.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "resp.h"

/* GCRA over every key of the decision, atomically. ARGV holds, per key, the
 * period and the emission interval in microseconds; TATs are kept in
 * microseconds of Redis' clock, each key expiring once its TAT has passed. */
static const char SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local nexts = {}\n"
    "for i = 1, #KEYS do\n"
    "  local period = tonumber(ARGV[2 * i - 1])\n"
    "  local interval = tonumber(ARGV[2 * i])\n"
    "  local tat = tonumber(redis.call('GET', KEYS[i])) or now\n"
    "  if tat < now then tat = now end\n"
    "  local nxt = tat + interval\n"
    "  if nxt - now > period then return {0, i, nxt - period - now, tat - now} end\n"
    "  nexts[i] = nxt\n"
    "end\n"
    "for i = 1, #KEYS do\n"
    "  redis.call('SET', KEYS[i], string.format('%d', nexts[i]), 'PX', math.floor((nexts[i] - now) / 1000) + 1)\n"
    "end\n"
    "return {1, 0, 0, 0}\n";

#define DOWN_BACKOFF_MS 1000
#define REPORT_EVERY_MS 10000

/* A connection's input is its own malloc'd buffer, not an mt_buf_t: it
 * lives as long as the pool, which outlives the server's buffer accounting. */
typedef struct redis_conn {
    int fd; /* -1: not connected */
    bool busy;
    char *in;
    size_t in_len, in_cap;
} redis_conn_t;

static void drop_input(redis_conn_t *c, size_t n) {
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

struct mt_redislimit {
    mt_redis_config_t cfg;
    char *host, *password;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    redis_conn_t *conns;
    char sha[41];          /* the script's SHA1, from SCRIPT LOAD ("" until known); under lock */
    int64_t down_until_ms; /* under lock */
    bool down;
    int64_t reported_ms;
    long failures; /* since the last report */
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(const char *fmt, const char *a, int port, const char *b, const char *c) {
    char date[64], line[512];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
    int n = snprintf(line, sizeof line, "[%s] [%d] [WARNING] ", date, (int)getpid());
    n += snprintf(line + n, sizeof line - (size_t)n, fmt, a, port, b, c);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

mt_redislimit_t *mt_redislimit_create(const mt_redis_config_t *cfg, char *errbuf, size_t errlen) {
    mt_redislimit_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    if (r->cfg.pool < 1)
        r->cfg.pool = 1;
    if (r->cfg.timeout_ms < 1)
        r->cfg.timeout_ms = 1;
    r->host = strdup(cfg->host);
    r->password = cfg->password && cfg->password[0] ? strdup(cfg->password) : NULL;
    r->conns = calloc((size_t)r->cfg.pool, sizeof *r->conns);
    if (r->host == NULL || r->conns == NULL || (cfg->password && cfg->password[0] && r->password == NULL)) {
        snprintf(errbuf, errlen, "out of memory");
        mt_redislimit_destroy(r);
        return NULL;
    }
    r->cfg.host = r->host;
    r->cfg.password = r->password;
    for (int i = 0; i < r->cfg.pool; i++)
        r->conns[i].fd = -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->freed, NULL);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(errbuf, errlen, "%s: %s", cfg->host, rc ? gai_strerror(rc) : "no address");
        mt_redislimit_destroy(r);
        return NULL;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return r;
}

void mt_redislimit_destroy(mt_redislimit_t *r) {
    if (r == NULL)
        return;
    for (int i = 0; r->conns && i < r->cfg.pool; i++) {
        if (r->conns[i].fd >= 0)
            close(r->conns[i].fd);
        free(r->conns[i].in);
    }
    if (r->conns) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->freed);
    }
    free(r->conns);
    free(r->host);
    free(r->password);
    free(r);
}

bool mt_redislimit_fail_open(const mt_redislimit_t *r) {
    return r->cfg.fail_open;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events) ? -EIO : 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_to(mt_redislimit_t *r, int64_t deadline) {
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&r->addr, r->addrlen) < 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = wait_fd(fd, POLLOUT, deadline), err = 0;
    socklen_t len = sizeof err;
    if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
        rc = -err;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
        } else if (w < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* Reads one reply into c->in (its strings point there until the next call). */
static int read_reply(redis_conn_t *c, mt_resp_reply_t *reply, size_t *used, int64_t deadline) {
    for (;;) {
        if (c->in_len) {
            mt_resp_result_t rc = mt_resp_parse(c->in, c->in_len, reply, used);
            if (rc == MT_RESP_DONE)
                return 0;
            if (rc == MT_RESP_BAD)
                return -EPROTO;
        }
        if (c->in_cap - c->in_len < 4096) {
            if (c->in_cap > 2 * MT_RESP_MAX_BULK)
                return -EPROTO;
            char *grown = realloc(c->in, c->in_cap * 2 + 4096);
            if (grown == NULL)
                return -ENOMEM;
            c->in = grown;
            c->in_cap = c->in_cap * 2 + 4096;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
        } else if (n == 0) {
            return -ECONNRESET;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}

/* Sends one command and reads its reply; the caller drops `used` bytes. */
static int call(redis_conn_t *c, int argc, const char *const *argv, const size_t *lens, mt_resp_reply_t *reply,
                size_t *used, int64_t deadline) {
    mt_buf_t out;
    mt_buf_init(&out);
    int rc = mt_resp_command(&out, argc, argv, lens);
    if (rc == 0)
        rc = send_all(c->fd, out.data, out.len, deadline);
    mt_buf_dispose(&out);
    return rc < 0 ? rc : read_reply(c, reply, used, deadline);
}

static bool is_error(const mt_resp_reply_t *reply, const char *prefix) {
    size_t n = strlen(prefix);
    return reply->top.type == MT_RESP_ERROR && reply->top.len >= n && memcmp(reply->top.str, prefix, n) == 0;
}

/* A new connection: AUTH, SELECT and SCRIPT LOAD. */
static int open_conn(mt_redislimit_t *r, redis_conn_t *c, int64_t deadline) {
    int fd = connect_to(r, deadline);
    if (fd < 0)
        return fd;
    c->fd = fd;
    c->in_len = 0;
    mt_resp_reply_t reply;
    size_t used;
    int rc = 0;
    if (r->password) {
        const char *argv[] = {"AUTH", r->password};
        size_t lens[] = {4, strlen(r->password)};
        rc = call(c, 2, argv, lens, &reply, &used, deadline);
        if (rc == 0 && reply.top.type != MT_RESP_STATUS)
            rc = -EACCES;
        drop_input(c, used);
    }
    if (rc == 0 && r->cfg.db) {
        char db[16];
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, (size_t)snprintf(db, sizeof db, "%d", r->cfg.db)};
        rc = call(c, 2, argv, lens, &reply, &used, deadline);
        if (rc == 0 && reply.top.type != MT_RESP_STATUS)
            rc = -EINVAL;
        drop_input(c, used);
    }
    if (rc == 0) {
        const char *argv[] = {"SCRIPT", "LOAD", SCRIPT};
        size_t lens[] = {6, 4, sizeof SCRIPT - 1};
        rc = call(c, 3, argv, lens, &reply, &used, deadline);
        if (rc == 0 && (reply.top.type != MT_RESP_BULK || reply.top.len != 40))
            rc = -EPROTO;
        if (rc == 0) {
            pthread_mutex_lock(&r->lock);
            memcpy(r->sha, reply.top.str, 40);
            r->sha[40] = '\0';
            pthread_mutex_unlock(&r->lock);
        }
        drop_input(c, used);
    }
    if (rc < 0) {
        close(fd);
        c->fd = -1;
    }
    return rc;
}

static redis_conn_t *acquire(mt_redislimit_t *r, int64_t deadline) {
    pthread_mutex_lock(&r->lock);
    for (;;) {
        redis_conn_t *pick = NULL;
        for (int i = 0; i < r->cfg.pool; i++) {
            redis_conn_t *c = &r->conns[i];
            if (!c->busy && (pick == NULL || (pick->fd < 0 && c->fd >= 0)))
                pick = c;
        }
        if (pick) {
            pick->busy = true;
            pthread_mutex_unlock(&r->lock);
            return pick;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->freed, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void release(mt_redislimit_t *r, redis_conn_t *c, int rc) {
    if (rc < 0 && c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->in_len = 0;
    pthread_mutex_lock(&r->lock);
    /* One connection failed: the idle ones, to the same server, are as
     * likely dead (a restart); reconnect them on their next use. */
    for (int i = 0; rc < 0 && i < r->cfg.pool; i++) {
        redis_conn_t *o = &r->conns[i];
        if (!o->busy && o->fd >= 0) {
            close(o->fd);
            o->fd = -1;
        }
    }
    c->busy = false;
    pthread_cond_signal(&r->freed);
    pthread_mutex_unlock(&r->lock);
}

/* Notes the outcome of one attempt; reports the store going down (then every
 * 10 s while it stays down) and coming back. */
static void note(mt_redislimit_t *r, int rc) {
    int64_t now = now_ms();
    bool report_down = false, report_up = false;
    long failures = 0;
    pthread_mutex_lock(&r->lock);
    if (rc < 0) {
        r->down_until_ms = now + DOWN_BACKOFF_MS;
        r->failures++;
        if (!r->down || now - r->reported_ms >= REPORT_EVERY_MS) {
            report_down = true;
            failures = r->failures;
            r->failures = 0;
            r->reported_ms = now;
        }
        r->down = true;
    } else if (r->down) {
        r->down = false;
        r->failures = 0;
        report_up = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (report_down) {
        char what[160];
        snprintf(what, sizeof what, "%s (%ld failed decision%s since the last report)", strerror(-rc), failures,
                 failures == 1 ? "" : "s");
        report("rate limits: Redis at %s:%d unreachable: %s; %s until it answers", r->host, r->cfg.port, what,
               r->cfg.fail_open ? "allowing requests (fail open)" : "refusing requests with 503 (fail closed)");
    } else if (report_up) {
        report("rate limits: Redis at %s:%d answers again%s%s", r->host, r->cfg.port, "", "");
    }
}

int mt_redislimit_take(mt_redislimit_t *r, int n, const mt_rate_t *const *rates, const char *const *keys,
                       const size_t *klens, mt_redis_verdict_t *v) {
    if (n < 1 || n > MT_REDIS_MAX_LIMITS)
        return -EINVAL;
    int64_t start = now_ms();
    pthread_mutex_lock(&r->lock);
    bool backoff = r->down && start < r->down_until_ms;
    if (backoff)
        r->failures++;
    pthread_mutex_unlock(&r->lock);
    if (backoff)
        return -EHOSTUNREACH;
    int64_t deadline = start + r->cfg.timeout_ms;
    redis_conn_t *c = acquire(r, deadline);
    if (c == NULL) {
        note(r, -EBUSY);
        return -EBUSY;
    }
    int rc = 0;
    if (c->fd < 0)
        rc = open_conn(r, c, start + 2 * r->cfg.timeout_ms);
    /* EVALSHA sha n key... (period interval)... */
    char nums[2 * MT_REDIS_MAX_LIMITS][24], count[8], sha[41];
    const char *argv[3 + 3 * MT_REDIS_MAX_LIMITS];
    size_t lens[3 + 3 * MT_REDIS_MAX_LIMITS];
    pthread_mutex_lock(&r->lock);
    memcpy(sha, r->sha, sizeof sha);
    pthread_mutex_unlock(&r->lock);
    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = sha;
    lens[1] = 40;
    argv[2] = count;
    lens[2] = (size_t)snprintf(count, sizeof count, "%d", n);
    for (int i = 0; i < n; i++) {
        argv[3 + i] = keys[i];
        lens[3 + i] = klens[i];
        uint64_t us_per_tick = MT_RL_TICK_NS / 1000;
        argv[3 + n + 2 * i] = nums[2 * i];
        lens[3 + n + 2 * i] =
            (size_t)snprintf(nums[2 * i], sizeof nums[0], "%llu", (unsigned long long)(rates[i]->period * us_per_tick));
        argv[4 + n + 2 * i] = nums[2 * i + 1];
        lens[4 + n + 2 * i] = (size_t)snprintf(nums[2 * i + 1], sizeof nums[0], "%llu",
                                               (unsigned long long)(rates[i]->interval * us_per_tick));
    }
    mt_resp_reply_t reply;
    size_t used = 0;
    deadline = now_ms() + r->cfg.timeout_ms;
    for (int attempt = 0; rc == 0; attempt++) {
        rc = call(c, 3 + 3 * n, argv, lens, &reply, &used, deadline);
        if (rc == 0 && is_error(&reply, "NOSCRIPT") && attempt == 0) {
            /* Redis restarted or flushed its scripts: load it again, once. */
            drop_input(c, used);
            const char *load[] = {"SCRIPT", "LOAD", SCRIPT};
            size_t llens[] = {6, 4, sizeof SCRIPT - 1};
            rc = call(c, 3, load, llens, &reply, &used, deadline);
            if (rc == 0 && (reply.top.type != MT_RESP_BULK || reply.top.len != 40))
                rc = -EPROTO;
            if (rc == 0)
                memcpy(sha, reply.top.str, 40);
            drop_input(c, used);
            continue;
        }
        break;
    }
    if (rc == 0) {
        if (reply.top.type != MT_RESP_ARRAY || reply.n != 4 || reply.items[0].type != MT_RESP_INT ||
            reply.items[1].type != MT_RESP_INT || reply.items[2].type != MT_RESP_INT ||
            reply.items[3].type != MT_RESP_INT || reply.items[1].integer < 0 || reply.items[1].integer > n) {
            rc = -EPROTO;
        } else {
            uint64_t us_per_tick = MT_RL_TICK_NS / 1000;
            v->allowed = reply.items[0].integer == 1;
            v->refused_by = v->allowed ? -1 : (int)reply.items[1].integer - 1;
            v->retry = reply.items[2].integer > 0 ? (uint64_t)reply.items[2].integer / us_per_tick : 0;
            v->reset = reply.items[3].integer > 0 ? (uint64_t)reply.items[3].integer / us_per_tick : 0;
            if (!v->allowed && v->refused_by < 0)
                rc = -EPROTO;
        }
    }
    release(r, c, rc);
    note(r, rc);
    return rc;
}
