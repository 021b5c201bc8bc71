/* Unit tests of src/core/api/router.c: the API router's tree, typed segments,
 * method handling, trailing slashes and the paths it must refuse. */
#include "router.c"

#include "buf.c"
#include "http1.c"

#include <stdio.h>

#include "tap.h"

#define GET BIT(HTTP_GET)
#define POST BIT(HTTP_POST)
#define PUT BIT(HTTP_PUT)
#define DELETE BIT(HTTP_DELETE)

static char scratch[6 * 60000 + 8];

static mt_route_match_t match(const mt_router_t *r, int method, const char *path) {
    mt_route_match_t m;
    memset(&m, 0xAB, sizeof m);
    mt_router_match(r, method, path, strlen(path), scratch, &m);
    return m;
}

static const char *param(const mt_route_match_t *m, int i) {
    static char copy[4096];
    snprintf(copy, sizeof copy, "%.*s", (int)m->params[i].len, scratch + m->params[i].off);
    return copy;
}

static mt_router_t *sample(bool redirect) {
    mt_router_t *r = mt_router_create(redirect);
    is_int(mt_router_add(r, "/", GET, 0), 0, "add /");
    is_int(mt_router_add(r, "/items", GET | POST, 1), 0, "add /items");
    is_int(mt_router_add(r, "/items/{int}", GET, 2), 0, "add /items/{int}");
    is_int(mt_router_add(r, "/items/{int}", PUT | DELETE, 3), 0, "add other methods of /items/{int}");
    is_int(mt_router_add(r, "/items/new", GET, 4), 0, "add /items/new");
    is_int(mt_router_add(r, "/items/{str}/tags/", GET, 5), 0, "add /items/{str}/tags/");
    is_int(mt_router_add(r, "/files/{path}", GET, 6), 0, "add /files/{path}");
    is_int(mt_router_add(r, "/u/{uuid}", GET, 7), 0, "add /u/{uuid}");
    is_int(mt_router_add(r, "/f/{float}/{bool}", GET, 8), 0, "add /f/{float}/{bool}");
    is_int(mt_router_add(r, "/caf\xc3\xa9", GET, 9), 0, "add a UTF-8 static segment");
    return r;
}

static void test_add_errors(void) {
    mt_router_t *r = sample(true);
    is_int(mt_router_count(r), 10, "ten routes");
    is_int(mt_router_add(r, "/items", GET, 10), -EEXIST, "same method and template twice");
    is_int(mt_router_add(r, "items", GET, 10), -EINVAL, "no leading slash");
    is_int(mt_router_add(r, "/a//b", GET, 10), -EINVAL, "empty inner segment");
    is_int(mt_router_add(r, "/a/{nope}", GET, 10), -EINVAL, "unknown type");
    is_int(mt_router_add(r, "/a/x{int}", GET, 10), -EINVAL, "a parameter is a whole segment");
    is_int(mt_router_add(r, "/a/{path}/b", GET, 10), -EINVAL, "nothing after {path}");
    is_int(mt_router_add(r, "/a", 0, 10), -EINVAL, "no method");
    char many[512] = "";
    for (int i = 0; i <= MT_ROUTER_MAX_PARAMS; i++)
        strcat(many, "/{str}");
    is_int(mt_router_add(r, many, GET, 10), -EINVAL, "too many parameters");
    mt_router_destroy(r);
}

static void test_static_and_typed(void) {
    mt_router_t *r = sample(true);
    mt_route_match_t m = match(r, HTTP_GET, "/");
    ok(m.status == MT_ROUTE_FOUND && m.route == 0 && m.nparams == 0, "/ found");
    m = match(r, HTTP_POST, "/items");
    ok(m.status == MT_ROUTE_FOUND && m.route == 1, "POST /items");
    m = match(r, HTTP_GET, "/items/42");
    ok(m.status == MT_ROUTE_FOUND && m.route == 2 && m.nparams == 1, "GET /items/42");
    is_str(param(&m, 0), "42", "int captured");
    is_int(m.params[0].type, MT_PARAM_INT, "as an int");
    m = match(r, HTTP_GET, "/items/-7");
    ok(m.status == MT_ROUTE_FOUND && m.route == 2, "negative int");
    m = match(r, HTTP_DELETE, "/items/42");
    ok(m.status == MT_ROUTE_FOUND && m.route == 3, "DELETE goes to its own route");
    m = match(r, HTTP_GET, "/items/new");
    ok(m.status == MT_ROUTE_FOUND && m.route == 4, "static segment before a typed one");
    m = match(r, HTTP_GET, "/items/abc/tags/");
    ok(m.status == MT_ROUTE_FOUND && m.route == 5, "str after a failed int");
    is_str(param(&m, 0), "abc", "str captured");
    m = match(r, HTTP_GET, "/items/a%2Fb/tags/");
    ok(m.status == MT_ROUTE_FOUND && m.route == 5, "an encoded slash stays in its segment");
    is_str(param(&m, 0), "a/b", "and is decoded in the value");
    m = match(r, HTTP_GET, "/caf%C3%A9");
    ok(m.status == MT_ROUTE_FOUND && m.route == 9, "percent-encoded static segment");
    m = match(r, HTTP_GET, "/u/123e4567-e89b-12d3-a456-426614174000");
    ok(m.status == MT_ROUTE_FOUND && m.route == 7, "uuid with dashes");
    m = match(r, HTTP_GET, "/u/123e4567e89b12d3a456426614174000");
    ok(m.status == MT_ROUTE_FOUND && m.route == 7, "uuid as 32 hex digits");
    m = match(r, HTTP_GET, "/f/1.5e3/TRUE");
    ok(m.status == MT_ROUTE_FOUND && m.route == 8 && m.nparams == 2, "float and bool");
    is_int(m.params[1].type, MT_PARAM_BOOL, "second is a bool");
    mt_router_destroy(r);
}

static void test_invalid_values(void) {
    mt_router_t *r = mt_router_create(true);
    mt_router_add(r, "/n/{int}", GET, 0);
    mt_router_add(r, "/x/{float}", GET, 1);
    mt_router_add(r, "/u/{uuid}", GET, 2);
    mt_router_add(r, "/b/{bool}", GET, 3);
    static const struct {
        const char *path;
        int route;
    } bad[] = {{"/n/abc", 0},  {"/n/1.5", 0},   {"/n/-", 0},  {"/n/%31x", 0}, {"/x/nan", 1},          {"/x/inf", 1},
               {"/x/0x10", 1}, {"/x/1e999", 1}, {"/x/ 1", 1}, {"/u/xyz", 2},  {"/u/123e4567e89b", 2}, {"/b/maybe", 3}};
    for (size_t i = 0; i < MT_ARRAY_SIZE(bad); i++) {
        mt_route_match_t m = match(r, HTTP_GET, bad[i].path);
        ok(m.status == MT_ROUTE_INVALID && m.route == bad[i].route && m.bad_param == 0, "%s is a 422", bad[i].path);
    }
    char digits[4400] = "/n/";
    memset(digits + 3, '7', 4301);
    is_int(match(r, HTTP_GET, digits).status, MT_ROUTE_INVALID, "an int longer than Python converts is a 422");
    digits[3 + 4300] = '\0';
    is_int(match(r, HTTP_GET, digits).status, MT_ROUTE_FOUND, "4300 digits are fine");
    mt_route_match_t m = match(r, HTTP_GET, "/n/%31%32");
    ok(m.status == MT_ROUTE_FOUND, "an encoded int is decoded first");
    is_str(param(&m, 0), "12", "to its digits");
    m = match(r, HTTP_GET, "/n/");
    is_int(m.status, MT_ROUTE_NONE, "an empty value is no match");
    long long v = 0;
    ok(mt_router_int_value("-123456789012345678", 19, &v) && v == -123456789012345678LL, "18 digits convert");
    ok(!mt_router_int_value("1234567890123456789", 19, &v), "19 digits are left to the caller");
    mt_router_destroy(r);
}

static void test_methods(void) {
    mt_router_t *r = sample(true);
    mt_route_match_t m = match(r, HTTP_HEAD, "/items/42");
    ok(m.status == MT_ROUTE_FOUND && m.route == 2, "HEAD answered by the GET route");
    m = match(r, HTTP_POST, "/items/42");
    is_int(m.status, MT_ROUTE_METHOD, "POST on a GET/PUT/DELETE path is a 405");
    char allow[256];
    mt_router_allow_value(m.allow, allow, sizeof allow);
    is_str(allow, "GET, HEAD, PUT, DELETE, OPTIONS", "Allow lists every method");
    m = match(r, HTTP_OPTIONS, "/items");
    is_int(m.status, MT_ROUTE_OPTIONS, "OPTIONS is answered for a path without an OPTIONS route");
    mt_router_allow_value(m.allow, allow, sizeof allow);
    is_str(allow, "GET, HEAD, POST, OPTIONS", "with Allow");
    m = match(r, HTTP_POST, "/items/abc");
    is_int(m.status, MT_ROUTE_INVALID, "a bad value on a path whose other shapes don't match is a 422");
    mt_router_destroy(r);
}

static void test_refused_paths(void) {
    mt_router_t *r = sample(true);
    static const char *const none[] = {
        "/nothing",
        "/items/42/more",
        "/items//42",
        "/items/./42",
        "/items/../items",
        "/items/%2e%2e/x",
        "/items/%00",
        "/files/",
        "/files/a/../../etc/passwd",
        "/files/a%2F..%2Fb",
        "/files/%2e%2e",
        "",
        "items",
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(none); i++) {
        mt_route_match_t m = match(r, HTTP_GET, none[i]);
        is_int(m.status, MT_ROUTE_NONE, "%s falls through", none[i]);
    }
    mt_route_match_t m = match(r, HTTP_GET, "/files/css/site.css");
    ok(m.status == MT_ROUTE_FOUND && m.route == 6, "{path} takes the rest");
    is_str(param(&m, 0), "css/site.css", "slashes included");
    m = match(r, HTTP_GET, "/files/a%20b/c%2Fd");
    is_str(param(&m, 0), "a b/c/d", "{path} is decoded as a whole");
    char deep[MT_ROUTER_MAX_SEGMENTS * 2 + 8] = "";
    for (int i = 0; i <= MT_ROUTER_MAX_SEGMENTS; i++)
        strcat(deep, "/a");
    is_int(match(r, HTTP_GET, deep).status, MT_ROUTE_NONE, "too many segments fall through");
    mt_router_destroy(r);
}

static void test_trailing_slash(void) {
    mt_router_t *r = sample(true);
    is_int(match(r, HTTP_GET, "/items/").status, MT_ROUTE_REDIRECT, "/items/ redirects to /items");
    is_int(match(r, HTTP_GET, "/items/x/tags").status, MT_ROUTE_REDIRECT, "and the other way round");
    is_int(match(r, HTTP_POST, "/items/").status, MT_ROUTE_REDIRECT, "whatever the method (308 keeps it)");
    is_int(match(r, HTTP_GET, "/nothing/").status, MT_ROUTE_NONE, "no redirect to a path without a route");
    mt_router_destroy(r);
    r = sample(false);
    is_int(match(r, HTTP_GET, "/items/").status, MT_ROUTE_NONE, "strict: /items/ is not /items");
    mt_router_destroy(r);
}

static void test_many_routes(void) {
    mt_router_t *r = mt_router_create(false);
    char path[64];
    int added = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(path, sizeof path, "/r%d/{int}/leaf%d", i, i % 7);
        added += mt_router_add(r, path, GET, i) == 0;
    }
    is_int(added, 2000, "2000 routes added");
    int right = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(path, sizeof path, "/r%d/%d/leaf%d", i, i * 3, i % 7);
        mt_route_match_t m = match(r, HTTP_GET, path);
        right += m.status == MT_ROUTE_FOUND && m.route == i;
    }
    is_int(right, 2000, "each found by its own path");
    mt_router_destroy(r);
}

static void test_long_path(void) {
    mt_router_t *r = sample(true);
    static char path[60000];
    strcpy(path, "/files/");
    memset(path + 7, 'a', sizeof path - 8);
    path[sizeof path - 1] = '\0';
    mt_route_match_t m = match(r, HTTP_GET, path);
    ok(m.status == MT_ROUTE_FOUND && m.params[0].len == sizeof path - 8, "a very long {path} value");
    static char wide[8000];
    memset(wide, 0, sizeof wide);
    for (size_t i = 0; i + 3 < sizeof wide - 1; i += 3)
        memcpy(wide + i, "%41", 3);
    wide[0] = '/';
    is_int(match(r, HTTP_GET, wide).status, MT_ROUTE_NONE, "a long encoded segment without a route");
    mt_router_destroy(r);
}

int main(void) {
    test_add_errors();
    test_static_and_typed();
    test_invalid_values();
    test_methods();
    test_refused_paths();
    test_trailing_slash();
    test_many_routes();
    test_long_path();
    return done_testing();
}
