/* The WebSocket opening handshake, server side (RFC 6455 4.2, RFC 7692 5
 * and 7.1): validating an upgrade request parsed by http1.c, computing
 * Sec-WebSocket-Accept, offering the client's subprotocols and Origin to the
 * application, negotiating permessage-deflate, and writing the 101 (or the
 * 400/426 refusal) head.
 *
 * Everything here is pure: no allocation, no I/O, no global state; safe
 * from any thread. Spans point into the request's input buffer (`base`),
 * which must outlive their use, as for mt_request_t. */
#ifndef MT_WS_HANDSHAKE_H
#define MT_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"
#include "ws_deflate.h"

#define MT_WS_MAX_PROTOCOLS 16 /* subprotocols recorded from Sec-WebSocket-Protocol; more is a 400 */
#define MT_WS_ACCEPT_LEN 28    /* base64 of a SHA-1 digest */

/* Results of mt_ws_handshake_parse. */
typedef enum mt_ws_handshake_result {
    MT_WS_HANDSHAKE_OK = 0,            /* a valid upgrade request: answer with mt_ws_handshake_accept */
    MT_WS_HANDSHAKE_NOT_WEBSOCKET = 1, /* no "Upgrade: websocket": an ordinary HTTP request */
    MT_WS_HANDSHAKE_BAD_REQUEST = 2,   /* 400; hs->error says why */
    MT_WS_HANDSHAKE_BAD_VERSION = 3,   /* 426 with "Sec-WebSocket-Version: 13" */
} mt_ws_handshake_result_t;

/* What the server is willing to do for permessage-deflate. */
typedef struct mt_ws_handshake_config {
    bool deflate;                    /* accept permessage-deflate offers at all */
    uint8_t server_max_window_bits;  /* 9..15: the largest window we compress with */
    uint8_t client_max_window_bits;  /* 8..15: asked of a client that allows us to choose */
    bool server_no_context_takeover; /* reset our compressor after every message (saves its memory) */
    bool client_no_context_takeover; /* ask the client to reset its compressor after every message */
    int mem_level;                   /* zlib memLevel the connection will compress with */
    size_t max_memory;               /* zlib bytes per connection (mt_ws_deflate_memory); 0: no bound */
} mt_ws_handshake_config_t;

typedef struct mt_ws_handshake {
    char accept[MT_WS_ACCEPT_LEN + 1]; /* Sec-WebSocket-Accept, NUL-terminated */
    bool has_origin;
    mt_span_t origin;                         /* the Origin field, for the application to check */
    mt_span_t protocols[MT_WS_MAX_PROTOCOLS]; /* offered subprotocols, in the client's order */
    uint32_t nprotocols;
    bool deflate;                  /* a permessage-deflate offer was accepted */
    mt_ws_deflate_params_t params; /* ... with these parameters */
    bool announce_server_bits;     /* the offer named server_max_window_bits: the answer names ours */
    bool announce_client_bits;     /* the offer allowed client_max_window_bits: the answer sets it */
    const char *error;             /* why the request was refused: a static string */
} mt_ws_handshake_t;

/* Checks an upgrade request whose head is complete: GET, HTTP/1.1, Host,
 * "Upgrade: websocket", "Connection: upgrade" (a token of the list), no
 * body, Sec-WebSocket-Version 13 (else 426), one Sec-WebSocket-Key that is
 * the base64 of 16 bytes. Fills `hs` (accept key, Origin, subprotocols, the
 * first acceptable permessage-deflate offer under `config`; an offer we
 * cannot honour, or whose streams would need more than config->max_memory,
 * is declined, never refused). */
mt_ws_handshake_result_t mt_ws_handshake_parse(mt_ws_handshake_t *hs, const mt_request_t *req, const char *base,
                                               const mt_ws_handshake_config_t *config);

/* Writes the 101 head into out (cap bytes, NUL-terminated): Upgrade,
 * Connection, Sec-WebSocket-Accept, the chosen subprotocol (n bytes, NULL
 * for none: it must be one the client offered) and the negotiated
 * extension. Returns its length, -EINVAL for a subprotocol the client did
 * not offer, or -ENOSPC. */
int mt_ws_handshake_accept(const mt_ws_handshake_t *hs, const char *base, const char *protocol, size_t n, char *out,
                           size_t cap);

/* Writes the refusal for a failed parse (400, or 426 with
 * Sec-WebSocket-Version: 13; both with Connection: close and a short text
 * body). Returns its length or -ENOSPC. */
int mt_ws_handshake_refuse(mt_ws_handshake_result_t result, const mt_ws_handshake_t *hs, char *out, size_t cap);

/* Sec-WebSocket-Accept for a key (n bytes, as sent): base64 of the SHA-1 of
 * the key followed by the GUID of RFC 6455 1.3. */
void mt_ws_accept_key(const char *key, size_t n, char out[MT_WS_ACCEPT_LEN + 1]);

#endif
