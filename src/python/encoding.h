/* Response compression (encoding.c): negotiation, the decision per response, the compressor. */
#ifndef MT_PY_ENCODING_H
#define MT_PY_ENCODING_H

#include "response.h"

/* encoding.c: response compression. */
/* The coding the request accepts among those offered (from its
 * Accept-Encoding field; call before the head's bytes are reused). */
mt_coding_t mt_encoding_negotiate(const WorkerObject *worker, const mt_conn_t *conn);
/* Decides, from the application's status and headers and the body's length
 * (-1 when unknown), whether the response varies by Accept-Encoding
 * (ex->vary) and is compressed (ex->compressing). */
void mt_encoding_decide(mt_exchange_t *ex, long long body_length);
/* Compresses data, appending to handler->zbuf; mode is
 * MT_COMPRESS_CONTINUE, MT_COMPRESS_FLUSH or MT_COMPRESS_END. Returns 0, or -1 with an exception. */
int mt_encoding_compress(mt_exchange_t *ex, const char *data, size_t len, int mode);

#endif
