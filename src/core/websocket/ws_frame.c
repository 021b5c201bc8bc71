#include "ws_frame.h"

#include <errno.h>
#include <string.h>

#include "common.h"

/* ---- UTF-8 ---- */

bool mt_ws_utf8_feed(mt_ws_utf8_t *u, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (u->need == 0) {
            /* Text is mostly ASCII: skip it eight bytes at a time. */
            while (i + 8 <= n) {
                uint64_t v;
                memcpy(&v, p + i, 8);
                if (v & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i == n)
                break;
            uint8_t b = p[i++];
            if (b < 0x80)
                continue;
            /* The lead byte fixes the count and, for E0, ED, F0 and F4, a
             * narrower range of the next byte: that excludes overlong forms,
             * surrogates (U+D800..DFFF) and code points past U+10FFFF. */
            u->lo = 0x80;
            u->hi = 0xbf;
            if (b >= 0xc2 && b <= 0xdf) {
                u->need = 1;
            } else if (b >= 0xe0 && b <= 0xef) {
                u->need = 2;
                if (b == 0xe0)
                    u->lo = 0xa0;
                else if (b == 0xed)
                    u->hi = 0x9f;
            } else if (b >= 0xf0 && b <= 0xf4) {
                u->need = 3;
                if (b == 0xf0)
                    u->lo = 0x90;
                else if (b == 0xf4)
                    u->hi = 0x8f;
            } else {
                return false;
            }
            /* The whole character is here (the common case): check it at
             * once instead of a byte per turn of the loop. */
            if (n - i >= u->need) {
                if (p[i] < u->lo || p[i] > u->hi)
                    return false;
                for (unsigned k = 1; k < u->need; k++)
                    if ((p[i + k] & 0xc0) != 0x80)
                        return false;
                i += u->need;
                u->need = 0;
            }
        } else {
            uint8_t b = p[i++];
            if (b < u->lo || b > u->hi)
                return false;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xbf;
        }
    }
    return true;
}

bool mt_ws_close_code_valid(unsigned code) {
    /* 1012-1014 are registered with IANA since RFC 6455 (service restart, try again later, bad
     * gateway): clients send them, and the server sends 1012 itself on a reload. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* ---- parsing ---- */

void mt_ws_parser_init(mt_ws_parser_t *p, const mt_ws_parser_config_t *config) {
    memset(p, 0, sizeof *p);
    p->config = *config;
    /* Keeps the sums below far from overflow, whatever the caller asked. */
    if (p->config.max_message > ((uint64_t)1 << 62))
        p->config.max_message = (uint64_t)1 << 62;
    if (p->config.max_frame > p->config.max_message + p->config.max_message / 1024 + 64)
        p->config.max_frame = p->config.max_message + p->config.max_message / 1024 + 64;
}

static mt_ws_parse_result_t protocol_fail(mt_ws_parser_t *p, uint16_t code, const char *why) {
    p->close_code = code;
    p->error = why;
    return MT_WS_PARSE_ERROR;
}

/* XORs n payload bytes with the mask, starting at payload offset `pos`
 * (mod 4). Eight bytes at a time: 8 is a multiple of 4, so one rotated
 * 64-bit mask serves the whole run. */
static void unmask(uint8_t *data, size_t n, const uint8_t mask[4], unsigned pos) {
    uint8_t m8[8];
    for (unsigned k = 0; k < 8; k++)
        m8[k] = mask[(pos + k) & 3];
    uint64_t m;
    memcpy(&m, m8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, data + i, 8);
        v ^= m;
        memcpy(data + i, &v, 8);
    }
    for (; i < n; i++)
        data[i] ^= m8[i & 7];
}

/* The wire bytes a compressed message may take: its inflated size bounds
 * what matters, but a message that does not compress grows a little (5
 * bytes per stored block of up to 64 KiB). */
static uint64_t wire_limit(const mt_ws_parser_t *p) {
    uint64_t m = p->config.max_message;
    return p->msg_compressed ? m + m / 1024 + 64 : m;
}

/* The first two bytes: every rule that does not need the length. */
static mt_ws_parse_result_t check_start(mt_ws_parser_t *p) {
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    uint8_t opcode = b0 & 0x0f;
    bool fin = b0 & 0x80, rsv1 = b0 & 0x40;
    if (b0 & 0x30)
        return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "RSV2 or RSV3 set");
    if (!(b1 & 0x80))
        return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "client frame not masked");
    if (opcode >= 0x8) {
        if (opcode > MT_WS_PONG)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "unknown control opcode");
        if (!fin)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
        if (rsv1)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "RSV1 on a control frame");
        if ((b1 & 0x7f) > MT_WS_MAX_CONTROL)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes");
        return MT_WS_PARSE_MORE;
    }
    if (opcode > MT_WS_BINARY)
        return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "unknown data opcode");
    if (opcode == MT_WS_CONTINUATION) {
        if (!p->in_message)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");
        if (rsv1)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "RSV1 on a continuation frame");
    } else {
        if (p->in_message)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
        if (rsv1 && !p->config.deflate)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "RSV1 set without permessage-deflate");
    }
    return MT_WS_PARSE_MORE;
}

/* The whole header is in p->hdr: decode it and start the frame. */
static mt_ws_parse_result_t start_frame(mt_ws_parser_t *p) {
    uint8_t b0 = p->hdr[0], len7 = p->hdr[1] & 0x7f;
    const uint8_t *h = p->hdr + 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)h[0] << 8 | h[1];
        h += 2;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[i];
        if (len >> 63)
            return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "64-bit length with its top bit set");
        h += 8;
    }
    memcpy(p->mask, h, 4);
    p->mask_pos = 0;
    p->fin = b0 & 0x80;
    p->opcode = b0 & 0x0f;
    p->remaining = len;
    p->hdr_len = 0;
    p->in_frame = true;
    if (p->opcode >= 0x8) {
        p->control_len = 0;
        return MT_WS_PARSE_MORE;
    }
    if (p->opcode != MT_WS_CONTINUATION) {
        p->in_message = true;
        p->msg_opcode = p->opcode;
        p->msg_compressed = b0 & 0x40;
        p->msg_len = 0;
        p->utf8 = (mt_ws_utf8_t){0};
    }
    if (len > p->config.max_frame)
        return protocol_fail(p, MT_WS_CLOSE_TOO_BIG, "frame too big");
    /* msg_len <= wire_limit always holds: no overflow in the subtraction. */
    if (len > wire_limit(p) - p->msg_len)
        return protocol_fail(p, MT_WS_CLOSE_TOO_BIG, "message too big");
    p->msg_len += len;
    return MT_WS_PARSE_MORE;
}

static mt_ws_parse_result_t end_control(mt_ws_parser_t *p, mt_ws_event_t *ev) {
    p->in_frame = false;
    *ev = (mt_ws_event_t){.opcode = p->opcode, .data = p->control, .len = p->control_len};
    if (p->opcode != MT_WS_CLOSE)
        return MT_WS_PARSE_CONTROL;
    if (p->control_len == 0) {
        ev->close_code = MT_WS_CLOSE_NO_STATUS;
        return MT_WS_PARSE_CONTROL;
    }
    if (p->control_len == 1)
        return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "close payload of one byte");
    unsigned code = (unsigned)p->control[0] << 8 | p->control[1];
    if (!mt_ws_close_code_valid(code))
        return protocol_fail(p, MT_WS_CLOSE_PROTOCOL_ERROR, "close code that may not be sent");
    mt_ws_utf8_t u = {0};
    if (!mt_ws_utf8_feed(&u, p->control + 2, p->control_len - 2u) || !mt_ws_utf8_complete(&u))
        return protocol_fail(p, MT_WS_CLOSE_INVALID_DATA, "close reason not UTF-8");
    ev->close_code = (uint16_t)code;
    ev->reason = p->control + 2;
    ev->reason_len = p->control_len - 2u;
    return MT_WS_PARSE_CONTROL;
}

mt_ws_parse_result_t mt_ws_parse(mt_ws_parser_t *p, uint8_t *buf, size_t len, size_t *consumed, mt_ws_event_t *ev) {
    size_t i = 0;
    *consumed = 0;
    if (p->close_code)
        return MT_WS_PARSE_ERROR;
    /* Nothing can complete without input (an empty frame is reported in
     * the call that completes its header), and buf may then be NULL. */
    if (len == 0)
        return MT_WS_PARSE_MORE;
    for (;;) {
        if (!p->in_frame) {
            if (p->hdr_len < 2) {
                while (p->hdr_len < 2 && i < len)
                    p->hdr[p->hdr_len++] = buf[i++];
                if (p->hdr_len < 2) {
                    *consumed = i;
                    return MT_WS_PARSE_MORE;
                }
                if (check_start(p) == MT_WS_PARSE_ERROR) {
                    *consumed = i;
                    return MT_WS_PARSE_ERROR;
                }
                uint8_t len7 = p->hdr[1] & 0x7f;
                p->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
            }
            size_t take = MT_MIN((size_t)(p->hdr_need - p->hdr_len), len - i);
            memcpy(p->hdr + p->hdr_len, buf + i, take);
            p->hdr_len = (uint8_t)(p->hdr_len + take);
            i += take;
            if (p->hdr_len < p->hdr_need) {
                *consumed = i;
                return MT_WS_PARSE_MORE;
            }
            if (start_frame(p) == MT_WS_PARSE_ERROR) {
                *consumed = i;
                return MT_WS_PARSE_ERROR;
            }
            if (p->remaining > 0)
                continue;
            /* An empty frame is complete with its header. */
        }
        size_t take = (size_t)MT_MIN(p->remaining, (uint64_t)(len - i));
        if (take == 0 && p->remaining > 0) {
            *consumed = i;
            return MT_WS_PARSE_MORE;
        }
        uint8_t *data = buf + i;
        unmask(data, take, p->mask, p->mask_pos);
        p->mask_pos = (uint8_t)((p->mask_pos + take) & 3);
        p->remaining -= take;
        i += take;
        *consumed = i;
        if (p->opcode >= 0x8) {
            memcpy(p->control + p->control_len, data, take);
            p->control_len = (uint8_t)(p->control_len + take);
            if (p->remaining > 0)
                return MT_WS_PARSE_MORE; /* all input consumed */
            return end_control(p, ev);
        }
        bool frame_end = p->remaining == 0;
        bool message_end = frame_end && p->fin;
        if (frame_end)
            p->in_frame = false;
        if (p->msg_opcode == MT_WS_TEXT && !p->msg_compressed &&
            (!mt_ws_utf8_feed(&p->utf8, data, take) || (message_end && !mt_ws_utf8_complete(&p->utf8))))
            return protocol_fail(p, MT_WS_CLOSE_INVALID_DATA, "text message not UTF-8");
        *ev = (mt_ws_event_t){.opcode = p->msg_opcode,
                              .compressed = p->msg_compressed,
                              .frame_end = frame_end,
                              .message_end = message_end,
                              .data = data,
                              .len = take};
        if (message_end)
            p->in_message = false;
        return MT_WS_PARSE_DATA;
    }
}

/* ---- serializing ---- */

size_t mt_ws_frame_header(uint8_t out[10], mt_ws_opcode_t opcode, bool fin, bool rsv1, uint64_t len) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int mt_ws_close_payload(uint8_t out[MT_WS_MAX_CONTROL], unsigned code, const char *reason, size_t n) {
    /* 1012-1014 (service restart, try again later, bad gateway) were registered after RFC 6455: a server
     * sends them (1012 on a reload), while the parser keeps to the RFC's list for what a client sends. */
    if (!mt_ws_close_code_valid(code) && !(code >= 1012 && code <= 1014))
        return -EINVAL;
    mt_ws_utf8_t u = {0};
    if (n > 0 && (!mt_ws_utf8_feed(&u, (const uint8_t *)reason, n) || !mt_ws_utf8_complete(&u)))
        return -EINVAL;
    size_t keep = MT_MIN(n, (size_t)MT_WS_MAX_CONTROL - 2);
    /* Cut before a continuation byte, never inside a character. */
    while (keep < n && keep > 0 && ((uint8_t)reason[keep] & 0xc0) == 0x80)
        keep--;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (keep)
        memcpy(out + 2, reason, keep);
    return (int)(keep + 2);
}
