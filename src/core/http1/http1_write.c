#include "http1_write.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

const char *mt_http1_reason(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* tchar of RFC 9110 5.6.2, as a 256-entry table. */
static const unsigned char token_chars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
    ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1,  ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1,  ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1,
    ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,  ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,
    ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,  ['z'] = 1,
};

bool mt_http1_token_valid(const char *s, size_t n) {
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!token_chars[(unsigned char)s[i]])
            return false;
    return true;
}

bool mt_http1_value_valid(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

int mt_http1_write_raw(mt_buf_t *out, const char *text, size_t n) {
    return mt_buf_append(out, text, n);
}

int mt_http1_write_status(mt_buf_t *out, const char *status, size_t n, int *code) {
    if (n < 4 || status[3] != ' ')
        return -EINVAL;
    for (int i = 0; i < 3; i++)
        if (status[i] < '0' || status[i] > '9')
            return -EINVAL;
    if (status[0] == '0' || !mt_http1_value_valid(status + 4, n - 4))
        return -EINVAL;
    int rc = mt_buf_reserve(out, n + 11);
    if (rc < 0)
        return rc;
    memcpy(out->data + out->len, "HTTP/1.1 ", 9);
    memcpy(out->data + out->len + 9, status, n);
    memcpy(out->data + out->len + 9 + n, "\r\n", 2);
    out->len += n + 11;
    *code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    return 0;
}

int mt_http1_write_line(mt_buf_t *out, const char *name, size_t nlen, const char *a, size_t alen, const char *b,
                        size_t blen) {
    int rc = mt_buf_reserve(out, nlen + alen + blen + 4);
    if (rc < 0)
        return rc;
    char *p = out->data + out->len;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, a, alen);
    p += alen;
    if (blen)
        memcpy(p, b, blen);
    p += blen;
    *p++ = '\r';
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    return 0;
}

int mt_http1_write_field(mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (!mt_http1_token_valid(name, nlen) || !mt_http1_value_valid(value, vlen))
        return -EINVAL;
    return mt_http1_write_line(out, name, nlen, value, vlen, NULL, 0);
}

int mt_http1_write_date(mt_buf_t *out) {
    int rc = mt_buf_reserve(out, 6 + MT_HTTP_DATE_LEN + 2);
    if (rc < 0)
        return rc;
    char *p = out->data + out->len;
    memcpy(p, "Date: ", 6);
    memcpy(p + 6, mt_clock_http_date(), MT_HTTP_DATE_LEN);
    memcpy(p + 6 + MT_HTTP_DATE_LEN, "\r\n", 2);
    out->len += 6 + MT_HTTP_DATE_LEN + 2;
    return 0;
}

int mt_http1_write_content_length(mt_buf_t *out, unsigned long long n) {
    /* Digits by hand: this runs for nearly every response, and printf's machinery costs more than the rest. */
    char line[48] = "Content-Length: ";
    char digits[20];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t len = 16;
    while (nd)
        line[len++] = digits[--nd];
    line[len++] = '\r';
    line[len++] = '\n';
    return mt_buf_append(out, line, len);
}

size_t mt_http1_chunk_size_line(char *line, size_t size) {
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = digits[size & 15];
        size >>= 4;
    } while (size);
    for (size_t i = 0; i < n; i++)
        line[i] = tmp[n - 1 - i];
    line[n] = '\r';
    line[n + 1] = '\n';
    return n + 2;
}

/* Fields a trailer section may not carry (RFC 9110 6.5.1), with the reason:
 * what frames, routes or controls the message must be known before the
 * content, and a recipient may drop or misuse it after (RFC 9110 6.5.2). */
static const struct {
    const char *name;
    const char *rule;
} forbidden_trailers[] = {
    {"content-length", "message framing"},
    {"transfer-encoding", "message framing"},
    {"trailer", "message framing"},
    {"connection", "message framing"},
    {"keep-alive", "message framing"},
    {"proxy-connection", "message framing"},
    {"te", "message framing"},
    {"upgrade", "message framing"},
    {"host", "routing"},
    {"location", "routing"},
    {"authorization", "authentication"},
    {"proxy-authorization", "authentication"},
    {"www-authenticate", "authentication"},
    {"proxy-authenticate", "authentication"},
    {"set-cookie", "authentication"},
    {"cookie", "authentication"},
    {"expect", "request modifiers"},
    {"max-forwards", "request modifiers"},
    {"range", "request modifiers"},
    {"if-match", "request modifiers"},
    {"if-none-match", "request modifiers"},
    {"if-modified-since", "request modifiers"},
    {"if-unmodified-since", "request modifiers"},
    {"if-range", "request modifiers"},
    {"cache-control", "response controls"},
    {"expires", "response controls"},
    {"age", "response controls"},
    {"pragma", "response controls"},
    {"vary", "response controls"},
    {"retry-after", "response controls"},
    {"date", "response controls"},
    {"content-encoding", "content format"},
    {"content-type", "content format"},
    {"content-range", "content format"},
};

const char *mt_http1_trailer_rule(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof forbidden_trailers / sizeof forbidden_trailers[0]; i++)
        if (strlen(forbidden_trailers[i].name) == n && strncasecmp(name, forbidden_trailers[i].name, n) == 0)
            return forbidden_trailers[i].rule;
    return NULL;
}

int mt_http1_write_trailer(mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (!mt_http1_token_valid(name, nlen) || !mt_http1_value_valid(value, vlen))
        return -EINVAL;
    if (mt_http1_trailer_rule(name, nlen))
        return MT_HTTP1_EFORBIDDEN;
    return out ? mt_http1_write_line(out, name, nlen, value, vlen, NULL, 0) : 0;
}

int mt_http1_last_chunk(mt_buf_t *out, bool trailers) {
    return trailers ? mt_buf_append(out, "0\r\n", 3) : mt_buf_append(out, "0\r\n\r\n", 5);
}
