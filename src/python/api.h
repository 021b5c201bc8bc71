/* The typed API's glue (api.c): routes from meltemi.api, matching without the GIL, calling endpoints. */
#ifndef MT_PY_API_H
#define MT_PY_API_H

#include "response.h"

/* The detail of the 400 a request gets when a path segment it binds to a parameter is not UTF-8
 * (*bad_status from mt_api_call or mt_api_loop_args). */
#define MT_API_PATH_NOT_UTF8 "the request path is not valid UTF-8"

/* api.c: the typed API (meltemi.api). */
typedef struct mt_api mt_api_t;
typedef enum mt_api_result {
    MT_API_NONE,     /* no route: the WSGI application answers */
    MT_API_PYTHON,   /* a Python route: handler->route and ->match say which */
    MT_API_LOOP,     /* an async Python route for the worker's loop (asgi_api.c), same fields */
    MT_API_ANSWERED, /* answered in C (405, OPTIONS, 422, 308, a constant route) */
} mt_api_result_t;
/* From API.c_routes() (GIL held). NULL with an exception. */
mt_api_t *mt_api_create(PyObject *spec);
void mt_api_destroy(mt_api_t *api);
/* Adds API_METHODS and API_PARAM_TYPES (tuples of str: the methods and the
 * path parameter types the router knows) to the module. 0, or -1 with an
 * exception. */
int mt_api_add_constants(PyObject *module);
/* Matches the request on c, without the GIL; answers it when C can. */
mt_api_result_t mt_api_route_request(WorkerObject *worker, mt_conn_t *c, mt_handler_t *handler, bool *keep_alive);
/* The request's fields as a dict of lowercase names (repeated fields joined
 * with ", ", "; " for Cookie), as the API's request.headers (GIL held). NULL
 * with an exception. */
PyObject *mt_api_headers_dict(const WorkerObject *w, const mt_conn_t *c);
/* Calls the matched route's endpoint like a WSGI application (GIL held).
 * NULL with an exception, or with *bad_status set and no exception when the
 * request itself is at fault. */
PyObject *mt_api_call(mt_exchange_t *ex, PyObject *start_response, mt_handler_t *handler, int *bad_status);

/* Whether route is a WebSocket route (API.websocket()). */
bool mt_api_route_websocket(const mt_api_t *api, int route);

/* For an async route on the loop: the tuple (endpoint, method, path, query,
 * headers, path parameters[, auth]) that Endpoint.serve_loop() takes (GIL
 * held). NULL as mt_api_call. */
PyObject *mt_api_loop_args(mt_exchange_t *ex, mt_handler_t *handler, int *bad_status);

#endif
