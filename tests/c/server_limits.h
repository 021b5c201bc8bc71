/* The request limits and output water marks the C unit tests that drive a
 * connection directly give their stand-in server (conn.c reads only
 * c->server->config): small enough that tests reach each limit quickly. */
#ifndef MT_TEST_SERVER_LIMITS_H
#define MT_TEST_SERVER_LIMITS_H

#define MT_TEST_LIMITS                                                                                                 \
    .limits = {.max_request_line = 1024,                                                                               \
               .max_head_size = 8192,                                                                                  \
               .max_headers = 32,                                                                                      \
               .max_body_size = 1 << 20,                                                                               \
               .max_chunk_ext = 256},                                                                                  \
    .write_timeout_ms = 2000, .output_high_water = 65536, .output_low_water = 16384

#endif
