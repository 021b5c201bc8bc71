/* The API router: a tree of path segments matched in C, before Python.
 *
 * A route is a template of segments: static text, or a typed parameter
 * ("{int}", "{float}", "{bool}", "{uuid}", "{str}", "{path}" — the names
 * live in Python, the router captures values by position). Matching splits
 * the request path at '/', percent-decodes each segment on its own (so an
 * encoded slash stays inside its segment), and walks the tree: static
 * children first, then typed ones in a fixed order (int, float, uuid, bool,
 * str), then {path}, which takes the rest. A typed segment is checked here: a
 * path whose shape matches a route but whose value does not convert (an
 * "abc" for an int) is answered 422 without calling Python.
 *
 * The router only answers for the paths its routes describe. Everything else
 * (no route of that shape, "." or ".." segments, empty inner segments, a NUL)
 * is MT_ROUTE_NONE and falls through to the WSGI application.
 *
 * Threads: routes are added before the router is shared; matching is
 * read-only and may run in any number of threads at once. */
#ifndef MT_ROUTER_H
#define MT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mt_param_type {
    MT_PARAM_INT,
    MT_PARAM_FLOAT,
    MT_PARAM_UUID,
    MT_PARAM_BOOL,
    MT_PARAM_STR,
    MT_PARAM_PATH, /* the rest of the path, slashes included; always last in a template */
    MT_PARAM_NTYPES,
} mt_param_type_t;

#define MT_ROUTER_MAX_PARAMS 16
#define MT_ROUTER_MAX_SEGMENTS 128

typedef enum mt_route_status {
    MT_ROUTE_FOUND,    /* m->route answers; m->params hold the captured values */
    MT_ROUTE_NONE,     /* no route of this shape: the WSGI application's turn */
    MT_ROUTE_METHOD,   /* 405: the path matches, the method does not (m->allow) */
    MT_ROUTE_OPTIONS,  /* OPTIONS of a path without an OPTIONS route: 204 with m->allow */
    MT_ROUTE_INVALID,  /* 422: m->bad_param (of m->route) does not convert to its type */
    MT_ROUTE_REDIRECT, /* 308: the path with its trailing slash added or removed has a route */
} mt_route_status_t;

typedef struct mt_route_value {
    uint32_t off, len; /* the decoded value, in the caller's scratch buffer */
    uint8_t type;      /* mt_param_type_t */
} mt_route_value_t;

typedef struct mt_route_match {
    mt_route_status_t status;
    int route;      /* the route id given to mt_router_add: FOUND, INVALID: the route that answers; METHOD,
                       OPTIONS: one of the path's routes; REDIRECT: one of the other spelling's; NONE: -1 */
    uint64_t allow; /* METHOD, OPTIONS: methods allowed (bits by llhttp method id), HEAD/OPTIONS included */
    int nparams;
    mt_route_value_t params[MT_ROUTER_MAX_PARAMS];
    int bad_param; /* INVALID: index into params */
} mt_route_match_t;

typedef struct mt_router mt_router_t;

/* A router without routes. redirect_slash: answer MT_ROUTE_REDIRECT when
 * only the path with its trailing slash toggled has a route. NULL when out of
 * memory. */
mt_router_t *mt_router_create(bool redirect_slash);
void mt_router_destroy(mt_router_t *r);

/* Adds route `id` (>= 0) for the methods of `methods` (bits 1 << llhttp
 * method id). The template starts with '/', has no empty inner segment, and
 * each segment is literal text or exactly one of "{int}", "{float}",
 * "{uuid}", "{bool}", "{str}", "{path}" ({path} only last). Returns 0,
 * -EINVAL (bad template, too many parameters), -EEXIST (a method of this
 * template already has a route) or -ENOMEM. */
int mt_router_add(mt_router_t *r, const char *tmpl, uint64_t methods, int id);

/* Number of routes added. */
int mt_router_count(const mt_router_t *r);

/* Matches method (an llhttp method id) and path[0, n) (the target's path,
 * still percent-encoded, starting with '/'). `scratch` must hold 6 * n + 8
 * bytes: decoded values are written there, each followed by a NUL. */
void mt_router_match(const mt_router_t *r, int method, const char *path, size_t n, char *scratch, mt_route_match_t *m);

/* The "Allow" field value of a method mask ("GET, HEAD, OPTIONS") into out
 * (>= 256 bytes). Returns its length. */
size_t mt_router_allow_value(uint64_t allow, char *out, size_t size);

/* Converts a validated MT_PARAM_INT value (at most 18 digits) to a number;
 * false if it is longer (the caller uses arbitrary precision). */
bool mt_router_int_value(const char *s, size_t n, long long *out);

#endif
