/*
 * The records of the --jsonl mode and the base64 codec they need.
 *
 * The JSON is scanned here, not with cJSON, for two reasons. The id must come back as it was
 * written, and cJSON keeps numbers as doubles (12345678901234567890 or 1.0 would not survive a
 * round trip). And cJSON accepts what RFC 8259 does not (raw control characters in strings,
 * "01", "1."), so "malformed" would depend on a library's leniency. Lines are untrusted and
 * fuzzed: every read is bounded by the end of the line, the recursion by MAX_DEPTH.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 256

/* The one fault whose message names the character found. */
static const char UNEXPECTED[] = "an unexpected character";

/* ---- base64 ---------------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t jc_base64_encode(const void *in, size_t n, char *out)
{
    const uint8_t *p = in;
    size_t k = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t t = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[k++] = B64[t >> 18];
        out[k++] = B64[t >> 12 & 63];
        out[k++] = B64[t >> 6 & 63];
        out[k++] = B64[t & 63];
    }
    if (i < n) {
        uint32_t t = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[k++] = B64[t >> 18];
        out[k++] = B64[t >> 12 & 63];
        out[k++] = i + 1 < n ? B64[t >> 6 & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
    return k;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int b64_bad_char(unsigned char c, size_t at)
{
    if (c == '=')
        return jc_fail(JC_EFORMAT, "invalid base64: padding '=' at offset %zu before the end", at);
    if (c > 0x20 && c < 0x7f)
        return jc_fail(JC_EFORMAT, "invalid base64: '%c' at offset %zu is not in the alphabet", c,
                       at);
    return jc_fail(JC_EFORMAT, "invalid base64: byte 0x%02x at offset %zu is not in the alphabet",
                   c, at);
}

int jc_base64_decode(const char *in, size_t len, void *out, size_t *n)
{
    const unsigned char *s = (const unsigned char *)in;
    uint8_t *o = out;
    size_t k = 0, pad = 0;

    *n = 0;
    if (len % 4)
        return jc_fail(JC_EFORMAT,
                       "invalid base64: %zu characters, not a multiple of 4 (padding is required)",
                       len);
    if (len && s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len; i += 4) {
        size_t data = i + 4 == len ? 4 - pad : 4;
        uint32_t t = 0;
        for (size_t j = 0; j < 4; j++) {
            int v = j < data ? b64_value(s[i + j]) : 0;
            if (v < 0)
                return b64_bad_char(s[i + j], i + j);
            t = t << 6 | (uint32_t)v;
        }
        /* RFC 4648 3.5: the bits after the last byte are zero, so each byte string has one
         * encoding; a decoder that ignored them would accept several spellings of it. */
        if ((data == 2 && (t & 0xFFFF)) || (data == 3 && (t & 0xFF)))
            return jc_fail(JC_EFORMAT,
                           "invalid base64: the last character at offset %zu has nonzero unused "
                           "bits",
                           i + data - 1);
        o[k++] = (uint8_t)(t >> 16);
        if (data > 2)
            o[k++] = (uint8_t)(t >> 8);
        if (data > 3)
            o[k++] = (uint8_t)t;
    }
    *n = k;
    return 0;
}

/* ---- a strict JSON scanner --------------------------------------------------------------- */

struct scan {
    const char *base, *p, *end;
    const char *why; /* the first fault, NULL while there is none */
    size_t at;       /* its byte offset in the line */
};

static bool fault(struct scan *s, const char *at, const char *why)
{
    if (!s->why) {
        s->why = why;
        s->at = (size_t)(at - s->base);
    }
    return false;
}

static bool more(const struct scan *s)
{
    return s->p < s->end;
}

static void skip_ws(struct scan *s)
{
    while (more(s) && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the UTF-8 sequence at p (RFC 3629: no overlong forms, surrogates or code points
 * past U+10FFFF), or 0 if it is not one. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4;
    else
        return 0;
    if (p[0] == 0xE0)
        lo = 0xA0;
    else if (p[0] == 0xED)
        hi = 0x9F;
    else if (p[0] == 0xF0)
        lo = 0x90;
    else if (p[0] == 0xF4)
        hi = 0x8F;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static bool scan_string(struct scan *s)
{
    const char *open = s->p++;

    while (more(s)) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return fault(s, s->p, "a control character in a string (it must be escaped)");
        if (c == '\\') {
            if (s->end - s->p < 2)
                break;
            if (s->p[1] == 'u') {
                for (int i = 2; i < 6; i++)
                    if (s->end - s->p <= i || hex_value((unsigned char)s->p[i]) < 0)
                        return fault(s, s->p, "a \\u escape without four hex digits");
                s->p += 6;
            } else if (s->p[1] && strchr("\"\\/bfnrt", s->p[1])) {
                s->p += 2;
            } else {
                return fault(s, s->p, "an invalid escape in a string");
            }
            continue;
        }
        size_t n = utf8_length((const unsigned char *)s->p, (const unsigned char *)s->end);
        if (!n)
            return fault(s, s->p, "invalid UTF-8 in a string");
        s->p += n;
    }
    return fault(s, open, "a string without its closing quote");
}

static bool digits(struct scan *s)
{
    const char *from = s->p;
    while (more(s) && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from;
}

static bool scan_number(struct scan *s)
{
    const char *from = s->p;

    if (*s->p == '-')
        s->p++;
    if (more(s) && *s->p == '0') {
        s->p++;
        if (more(s) && *s->p >= '0' && *s->p <= '9')
            return fault(s, from, "a number with a leading zero");
    } else if (!digits(s)) {
        return fault(s, from, "an invalid number");
    }
    if (more(s) && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return fault(s, from, "an invalid number (no digit after '.')");
    }
    if (more(s) && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (more(s) && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return fault(s, from, "an invalid number (no digit in the exponent)");
    }
    return true;
}

static bool scan_word(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
        return fault(s, s->p, UNEXPECTED);
    s->p += n;
    return true;
}

static bool scan_value(struct scan *s, int depth);

/* An object or an array; s->p is at its opening bracket. */
static bool scan_container(struct scan *s, int depth)
{
    char close = *s->p == '{' ? '}' : ']';

    if (depth >= MAX_DEPTH)
        return fault(s, s->p, "nesting deeper than 256 levels");
    s->p++;
    skip_ws(s);
    if (more(s) && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        if (close == '}') {
            if (!more(s) || *s->p != '"')
                return fault(s, s->p, "a key (a string) expected");
            if (!scan_string(s))
                return false;
            skip_ws(s);
            if (!more(s) || *s->p != ':')
                return fault(s, s->p, "':' expected after a key");
            s->p++;
            skip_ws(s);
        }
        if (!scan_value(s, depth + 1))
            return false;
        skip_ws(s);
        if (more(s) && *s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (more(s) && *s->p == close) {
            s->p++;
            return true;
        }
        return fault(s, s->p, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static bool scan_value(struct scan *s, int depth)
{
    if (!more(s))
        return fault(s, s->p, "a value expected at the end of the line");
    switch (*s->p) {
    case '{':
    case '[':
        return scan_container(s, depth);
    case '"':
        return scan_string(s);
    case 't':
        return scan_word(s, "true");
    case 'f':
        return scan_word(s, "false");
    case 'n':
        return scan_word(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return fault(s, s->p, UNEXPECTED);
    }
}

/* What a value that starts with c is, for messages. */
static const char *kind_name(char c)
{
    switch (c) {
    case '{':
        return "an object";
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

static size_t put_utf8(char *out, uint32_t u)
{
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xC0 | u >> 6);
        out[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (char)(0xE0 | u >> 12);
        out[1] = (char)(0x80 | (u >> 6 & 0x3F));
        out[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | u >> 18);
    out[1] = (char)(0x80 | (u >> 12 & 0x3F));
    out[2] = (char)(0x80 | (u >> 6 & 0x3F));
    out[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

static uint32_t hex4(const char *p)
{
    uint32_t u = 0;
    for (int i = 0; i < 4; i++)
        u = u << 4 | (uint32_t)hex_value((unsigned char)p[i]);
    return u;
}

/*
 * The value of a scanned string [from, to) (quotes included): malloc'd, NUL-terminated,
 * *len bytes. No escape is longer decoded than written, so the raw length bounds the result.
 */
static char *unescape(const char *from, const char *to, size_t *len)
{
    const char *p = from + 1, *end = to - 1;
    char *out = jc_malloc((size_t)(end - p) + 1, "a JSON string");
    size_t n = 0;

    if (!out)
        return NULL;
    while (p < end) {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        char c = p[1];
        p += 2;
        switch (c) {
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            uint32_t u = hex4(p);
            p += 4;
            if (u >= 0xD800 && u <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            /* a lone surrogate has no UTF-8 form: replaced, as invalid UTF-8 is elsewhere */
            if (u >= 0xD800 && u <= 0xDFFF)
                u = 0xFFFD;
            n += put_utf8(out + n, u);
            break;
        }
        default: /* '"', '\\' and '/' stand for themselves */
            out[n++] = c;
            break;
        }
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* The scanned value [from, to) without the whitespace outside its strings; malloc'd. */
static char *compact(const char *from, const char *to)
{
    char *out = jc_malloc((size_t)(to - from) + 1, "an id");
    size_t n = 0;
    bool in_string = false;

    if (!out)
        return NULL;
    for (const char *p = from; p < to; p++) {
        if (in_string) {
            out[n++] = *p;
            if (*p == '\\')
                out[n++] = *++p;
            else if (*p == '"')
                in_string = false;
        } else if (*p == '"') {
            out[n++] = *p;
            in_string = true;
        } else if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

/* ---- records ------------------------------------------------------------------------------ */

struct member {
    const char *key, *val, *end; /* val NULL while the key has not been seen */
};

/* A key as written, quotes included, cut short for a message. */
static void key_text(char *buf, size_t cap, const char *key, const char *end)
{
    size_t n = (size_t)(end - key);
    if (n + 1 <= cap) {
        memcpy(buf, key, n);
        buf[n] = '\0';
        return;
    }
    n = cap - 5;
    while (n > 1 && ((unsigned char)key[n] & 0xC0) == 0x80)
        n--; /* not inside a UTF-8 sequence */
    memcpy(buf, key, n);
    memcpy(buf + n, "...\"", 5);
}

static int data_uri(char *uri, size_t len, struct jc_record *out)
{
    size_t head;
    int rc = jc_data_uri(uri, len, "\"image\"", &out->data, &out->data_len, &head);

    if (rc < 0)
        return rc;
    /* only the head is kept, as the image's name in messages */
    uri[head] = '\0';
    char *shrunk = realloc(uri, head + 1);
    out->image = shrunk ? shrunk : uri;
    out->kind = JC_RECORD_IMAGE;
    return 0;
}

static int image_value(char *s, size_t len, struct jc_record *out)
{
    int rc;

    if (len == 0) {
        free(s);
        return jc_fail(JC_EFORMAT, "\"image\" is empty: a path or a data URI expected");
    }
    if (len >= 5 && !strncasecmp(s, "data:", 5)) {
        if ((rc = data_uri(s, len, out)) < 0) {
            free(s);
            free(out->data);
            out->data = NULL;
            out->data_len = 0;
        }
        return rc;
    }
    if (memchr(s, '\0', len)) {
        free(s);
        return jc_fail(JC_EFORMAT, "\"image\" is a path with a NUL character");
    }
    out->kind = JC_RECORD_IMAGE;
    out->image = s;
    return 0;
}

int jc_record_parse(const char *line, size_t len, struct jc_record *out)
{
    struct scan s = {0};
    struct member id = {0}, text = {0}, image = {0}, draft = {0}, *m;
    const char *bad = NULL, *bad_end = NULL, *first;
    bool duplicate = false;
    char name[72];

    memset(out, 0, sizeof *out);
    if (!line && len)
        return jc_fail(JC_EINVAL, "jc_record_parse: a NULL line of %zu bytes", len);
    s.base = s.p = line ? line : "";
    s.end = s.p + len;
    skip_ws(&s);
    if (!more(&s))
        return jc_fail(JC_EFORMAT, "an empty line, not a JSON object");
    first = s.p;
    if (scan_value(&s, 0)) {
        skip_ws(&s);
        if (more(&s))
            fault(&s, s.p, "more after the JSON value");
    }
    if (s.why == UNEXPECTED) {
        unsigned char c = (unsigned char)s.base[s.at];
        if (c > 0x20 && c < 0x7f)
            return jc_fail(JC_EFORMAT, "malformed JSON at column %zu: an unexpected '%c'", s.at + 1,
                           c);
        return jc_fail(JC_EFORMAT, "malformed JSON at column %zu: an unexpected byte 0x%02x",
                       s.at + 1, c);
    }
    if (s.why)
        return jc_fail(JC_EFORMAT, "malformed JSON at column %zu: %s", s.at + 1, s.why);
    if (*first != '{')
        return jc_fail(JC_EFORMAT, "not a JSON object but %s", kind_name(*first));

    /* The line is valid JSON: walk the top-level members again, noting where each value is. */
    s.p = first + 1;
    skip_ws(&s);
    while (*s.p != '}') {
        const char *key = s.p, *key_end, *val;
        size_t klen;
        scan_string(&s);
        key_end = s.p;
        skip_ws(&s);
        s.p++; /* ':' */
        skip_ws(&s);
        val = s.p;
        scan_value(&s, 1);
        char *k = unescape(key, key_end, &klen);
        if (!k)
            return JC_ENOMEM;
        m = klen == 2 && !memcmp(k, "id", 2)      ? &id
            : klen == 4 && !memcmp(k, "text", 4)  ? &text
            : klen == 5 && !memcmp(k, "image", 5) ? &image
            : klen == 5 && !memcmp(k, "draft", 5) ? &draft
                                                  : NULL;
        free(k);
        if (m && !m->val) {
            *m = (struct member){key, val, s.p};
        } else if (!bad) {
            bad = key;
            bad_end = key_end;
            duplicate = m != NULL;
        }
        skip_ws(&s);
        if (*s.p == ',') {
            s.p++;
            skip_ws(&s);
        }
    }

    if (id.val && !(out->id = compact(id.val, id.end)))
        return JC_ENOMEM;
    if (bad) {
        key_text(name, sizeof name, bad, bad_end);
        if (duplicate)
            return jc_fail(JC_EFORMAT, "duplicate key %s", name);
        return jc_fail(JC_EFORMAT, "unknown key %s (a record has \"id\" and \"text\" or \"image\")",
                       name);
    }
    if (draft.val) {
        size_t dl = (size_t)(draft.end - draft.val);
        if (dl == 4 && !memcmp(draft.val, "true", 4))
            out->draft = true;
        else if (!(dl == 5 && !memcmp(draft.val, "false", 5)))
            return jc_fail(JC_EFORMAT, "\"draft\" is %s, not true or false", kind_name(*draft.val));
        if (text.val)
            return jc_fail(JC_EFORMAT, "\"draft\" is for image records, not text");
    }
    if (!id.val)
        return jc_fail(JC_EFORMAT, "missing \"id\"");
    if (text.val && image.val)
        return jc_fail(JC_EFORMAT, "both \"text\" and \"image\": a record has one of them");
    if (!text.val && !image.val)
        return jc_fail(JC_EFORMAT, "neither \"text\" nor \"image\"");
    m = text.val ? &text : &image;
    if (*m->val != '"')
        return jc_fail(JC_EFORMAT, "\"%s\" is %s, not a string", m == &text ? "text" : "image",
                       kind_name(*m->val));
    size_t n;
    char *str = unescape(m->val, m->end, &n);
    if (!str)
        return JC_ENOMEM;
    if (m == &image)
        return image_value(str, n, out);
    out->kind = JC_RECORD_TEXT;
    out->text = str;
    out->text_len = n;
    return 0;
}

void jc_record_release(struct jc_record *r)
{
    free(r->id);
    free(r->text);
    free(r->image);
    free(r->data);
    memset(r, 0, sizeof *r);
}
