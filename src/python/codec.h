/* Content-coding lists as the configuration names them (codec.c). */
#ifndef MT_PY_CODEC_H
#define MT_PY_CODEC_H

#include "compress.h"
#include "module.h"

/* codec.c: parses a list of content codings ("zstd, br,gzip"; case and
 * spaces free; identity allowed and ignored) into a mask of MT_CODING_MASK
 * bits, and, when `order` is given (room for 3), the codings in the order named, without
 * repeats (*count of them). Returns -1 with ValueError for an unknown name. */
long mt_codec_parse_list(const char *s, Py_ssize_t n, mt_coding_t *order, int *count);

#endif
