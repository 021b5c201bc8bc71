/* A stand-in for the server's I/O thread in unit tests that drive a
 * connection directly: it writes a connection's queued output whenever epoll
 * reports the socket writable (mt_conn_on_writable), as io_main does.
 *
 * pump_start(&server) gives the server an epoll descriptor; connections are
 * registered by their first mt_conn_arm_writable. pump_forget(c) must come
 * before a connection is freed: the pump holds its lock across a whole
 * epoll_wait and the handling of what it returned, so after pump_forget no
 * event for c is in flight. */
#ifndef MT_TEST_PUMP_H
#define MT_TEST_PUMP_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

static pthread_t pump_thread;
static pthread_mutex_t pump_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool pump_stopping;

static void *pump_main(void *arg) {
    mt_server_t *s = arg;
    while (!atomic_load(&pump_stopping)) {
        struct epoll_event events[16];
        pthread_mutex_lock(&pump_lock);
        int n = epoll_wait(s->epfd, events, 16, 5);
        for (int i = 0; i < n; i++) {
            bool flushing;
            mt_conn_on_writable((mt_conn_t *)events[i].data.ptr, &flushing);
        }
        pthread_mutex_unlock(&pump_lock);
        if (n <= 0)
            sched_yield();
    }
    return NULL;
}

static void pump_start(mt_server_t *s) {
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0 || pthread_create(&pump_thread, NULL, pump_main, s) != 0)
        abort();
}

static void pump_stop(mt_server_t *s) {
    atomic_store(&pump_stopping, true);
    pthread_join(pump_thread, NULL);
    close(s->epfd);
}

static void pump_forget(mt_server_t *s, mt_conn_t *c) {
    pthread_mutex_lock(&pump_lock);
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    pthread_mutex_unlock(&pump_lock);
}

#endif
