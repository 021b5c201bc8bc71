#include "requestid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

bool mt_request_id_valid(const char *value, size_t n) {
    if (n == 0 || n > MT_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)value[i];
        if (b < 0x21 || b > 0x7e || b == '"' || b == '\\')
            return false;
    }
    return true;
}

/* xoshiro256** (Blackman and Vigna): a few nanoseconds per 8 bytes. */
static __thread uint64_t state[4];
static __thread bool seeded;

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(void) {
    uint64_t result = rotl(state[1] * 5, 7) * 9, t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
}

static void seed(void) {
    if (getrandom(state, sizeof state, 0) != (ssize_t)sizeof state) {
        /* No entropy source: ids stay unique enough from time, pid and address. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
        state[1] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
        state[2] = (uint64_t)(uintptr_t)&state;
        state[3] = 0x2545f4914f6cdd1dULL;
    }
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        state[0] = 1; /* the one state xoshiro cannot leave */
    seeded = true;
}

void mt_request_id_generate(char *out) {
    static const char hex[] = "0123456789abcdef";
    if (!seeded)
        seed();
    for (int w = 0; w < 2; w++) {
        uint64_t x = next();
        for (int i = 0; i < 16; i++, x >>= 4)
            out[w * 16 + i] = hex[x & 15];
    }
}

void mt_request_id_assign(mt_conn_t *c, const char *lower, size_t n) {
    const char *value = NULL;
    size_t len = 0;
    char buf[MT_REQUEST_FIELD_MAX];
    /* A field given twice is joined with ", ": not valid, so replaced. */
    if (mt_request_header(&c->req, c->rbuf.data, lower, n, buf, &value, &len) == 1) {
        while (len && mt_is_ows(value[len - 1]))
            len--;
    }
    if (value && mt_request_id_valid(value, len)) {
        memcpy(c->request_id, value, len);
        c->request_id_len = (uint8_t)len;
        return;
    }
    mt_request_id_generate(c->request_id);
    c->request_id_len = MT_REQUEST_ID_GENERATED_LEN;
}
