/* libFuzzer driver for the API router (router.c): every request path a
 * client can send, matched against a fixed table of routes of every shape.
 *
 * Input: byte 0 picks the method, the rest is the path (copied to a buffer
 * of its exact size, so that reading past it is an ASan report). Checks the
 * invariants the glue relies on: captured values lie inside the scratch
 * buffer, are NUL-terminated there, carry no NUL, '/' only in {path} and str
 * values (of a match; a 422's bad value may have any), and a found route
 * allows the method. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "router.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

static mt_router_t *router;

static const struct {
    const char *tmpl;
    int method;
} routes[] = {
    {"/", HTTP_GET},
    {"/api/items", HTTP_GET},
    {"/api/items", HTTP_POST},
    {"/api/items/{int}", HTTP_GET},
    {"/api/items/{int}", HTTP_DELETE},
    {"/api/items/new", HTTP_GET},
    {"/api/items/{str}/tags/", HTTP_GET},
    {"/api/f/{float}/{bool}/{uuid}", HTTP_PUT},
    {"/api/files/{path}", HTTP_GET},
    {"/api/{str}/{str}/{int}", HTTP_PATCH},
    {"/caf\xc3\xa9/{int}", HTTP_GET},
};

static bool method_allowed(int route, int method) {
    int m = routes[route].method;
    return m == method || (method == HTTP_HEAD && m == HTTP_GET);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (router == NULL) {
        router = mt_router_create(true);
        CHECK(router != NULL);
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            CHECK(mt_router_add(router, routes[i].tmpl, 1ULL << routes[i].method, (int)i) == 0);
    }
    if (size < 1)
        return 0;
    static const int methods[] = {HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS};
    int method = methods[input[0] % (sizeof methods / sizeof methods[0])];
    size_t n = size - 1;
    char *path = malloc(n ? n : 1);
    size_t scratch_size = 6 * n + 8;
    char *scratch = malloc(scratch_size);
    CHECK(path != NULL && scratch != NULL);
    memcpy(path, input + 1, n);

    mt_route_match_t m;
    mt_router_match(router, method, path, n, scratch, &m);
    switch (m.status) {
    case MT_ROUTE_FOUND:
        CHECK(m.route >= 0 && (size_t)m.route < sizeof routes / sizeof routes[0]);
        CHECK(method_allowed(m.route, method));
        /* fall through: the values are checked for both */
    case MT_ROUTE_INVALID:
        CHECK(m.nparams >= 0 && m.nparams <= MT_ROUTER_MAX_PARAMS);
        if (m.status == MT_ROUTE_INVALID)
            CHECK(m.bad_param >= 0 && m.bad_param < m.nparams);
        for (int i = 0; i < m.nparams; i++) {
            const mt_route_value_t *v = &m.params[i];
            CHECK((size_t)v->off + v->len < scratch_size);
            CHECK(scratch[v->off + v->len] == '\0');
            CHECK(memchr(scratch + v->off, '\0', v->len) == NULL);
            CHECK(v->len > 0);
            /* A typed value that converted has no slash (a bad one, in a 422, may). */
            if (m.status == MT_ROUTE_FOUND && v->type != MT_PARAM_PATH && v->type != MT_PARAM_STR)
                CHECK(memchr(scratch + v->off, '/', v->len) == NULL);
            if (m.status == MT_ROUTE_FOUND && v->type == MT_PARAM_INT) {
                long long value;
                (void)mt_router_int_value(scratch + v->off, v->len, &value);
            }
        }
        break;
    case MT_ROUTE_METHOD:
    case MT_ROUTE_OPTIONS: {
        CHECK(m.allow != 0);
        char allow[256];
        size_t len = mt_router_allow_value(m.allow, allow, sizeof allow);
        CHECK(len > 0 && len < sizeof allow && allow[len] == '\0');
        break;
    }
    case MT_ROUTE_REDIRECT:
        CHECK(n >= 2);
        break;
    case MT_ROUTE_NONE:
        break;
    default:
        CHECK(0);
    }
    free(path);
    free(scratch);
    return 0;
}
