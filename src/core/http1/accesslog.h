/* The access log: one line per request, formatted here in C for every
 * request the server answers, whoever answered it (the WSGI glue, the API's
 * C answers, static files, the server's own errors), and written with one
 * write() per line on the log's descriptor, so the I/O thread logs without
 * Python and the lines of threads and processes do not interleave (an
 * O_APPEND file or a pipe takes a write of up to PIPE_BUF bytes whole).
 *
 * Formats: common (Common Log Format), combined (common, then the Referer
 * and User-Agent in quotes) and json (one object per line). In the text
 * formats, a byte outside printable ASCII, '"' and '\' are written as \xHH
 * (Apache's rule); in JSON, strings are escaped by mt_accesslog_json_escape. */
#ifndef MT_ACCESSLOG_H
#define MT_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"

typedef enum mt_accesslog_format {
    MT_ACCESSLOG_COMMON = 0,
    MT_ACCESSLOG_COMBINED = 1,
    MT_ACCESSLOG_JSON = 2,
} mt_accesslog_format_t;

/* Where lines go; owned by the worker, read-only while the server runs. */
typedef struct mt_accesslog {
    int fd; /* an O_APPEND file or standard error; never closed here */
    mt_accesslog_format_t format;
} mt_accesslog_t;

/* One request as the log sees it. A NULL string is written as "-" (null in
 * JSON). */
typedef struct mt_accesslog_entry {
    const char *peer; /* the client's address, "" for a Unix socket */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int http_minor;           /* -1: the request line did not parse */
    int status;               /* the status sent */
    unsigned long long bytes; /* body bytes sent (0: "-" in the text formats) */
    int64_t duration_us;      /* from the complete head to the last byte handed out; -1: unknown */
    const char *request_id;
    size_t request_id_len;
    const char *referer;
    size_t referer_len;
    const char *user_agent;
    size_t user_agent_len;
} mt_accesslog_entry_t;

/* Escapes src[0, n) for the inside of a JSON string into dst, which must
 * hold 6 * n bytes: '"', '\' and controls (\n, \t, ... or \u00XX); bytes that
 * are not part of well-formed UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) become U+FFFD, so every line is valid UTF-8 JSON.
 * Returns the length written. */
size_t mt_accesslog_json_escape(char *dst, const char *src, size_t n);

/* Appends the line of `e` in `format`, ending with '\n', to out. Returns 0 or
 * -ENOMEM (out then holds a partial line: drop it). */
int mt_accesslog_format(mt_buf_t *out, mt_accesslog_format_t format, const mt_accesslog_entry_t *e);

/* Formats `e` and writes it with one write() (retried on EINTR; a short or
 * failed write is dropped: the log never breaks a response). */
void mt_accesslog_write(const mt_accesslog_t *log, const mt_accesslog_entry_t *e);

/* Logs a request answered in C on connection c, with `status` and `bytes`
 * of body sent: the method, target, Referer and User-Agent are read from the
 * head still in c->rbuf (call it before the connection is handed back), the
 * duration from c->head_us. `head_parsed`: false for a request refused while
 * its head was parsed (a 400 or 431): what the request line gave is logged,
 * "-" for the rest. Does nothing when log is NULL. */
void mt_accesslog_conn(const mt_accesslog_t *log, const mt_conn_t *c, int status, unsigned long long bytes,
                       bool head_parsed);

/* The length of the body of a server's own answer built in out[0, len) (the
 * bytes after the head's blank line; 0 when there is none). */
size_t mt_accesslog_body_length(const char *out, size_t len);

#endif
