/*
 * BERT WordPiece tokenizer, equal to Hugging Face tokenizers (Rust) on the settings
 * BertTokenizerFast uses: added tokens split off first, then BertNormalizer, then
 * BertPreTokenizer, then WordPiece, then [CLS] ... [SEP].
 *
 * HF classifies characters with Unicode 8.0 categories and normalises with Unicode 9.0 data,
 * so the class decisions come from the measured tables in tokenizer_tables.h; utf8proc only
 * supplies decompositions, combining classes and lowercase mappings, which Unicode keeps
 * stable for characters that already existed in 9.0.
 */
#include "internal.h"
#include "tokenizer_tables.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#define FILE_LIMIT ((size_t)256 << 20)
#define MAX_TOKENS ((size_t)INT32_MAX)

/* Bits of cc_ascii (generated). */
enum { CC_CONTROL = 1, CC_SPACE = 2, CC_PUNCT = 4 };

#define NRANGES(t) (sizeof(t) / sizeof((t)[0]))

struct added_token {
    char *pattern; /* what is matched: the content, or its normalised form */
    size_t len;
    int32_t id;
    bool single_word, lstrip, rstrip;
};

/* Added tokens matched on one side of normalisation, as HF's two Aho-Corasick tries. */
struct added_set {
    struct added_token *tok;
    size_t n;
    bool first[256]; /* bytes that start some pattern: a cheap filter before comparing */
};

struct hash_slot {
    int32_t id; /* -1: empty */
    uint32_t h;
};

struct jc_tokenizer {
    char **tok;        /* [n_tok] id -> token; ids < n_vocab point into arena */
    uint32_t *tok_len; /* [n_tok] */
    size_t n_tok, n_vocab;
    char *arena;

    struct hash_slot *slot; /* [mask + 1] the model vocabulary only, as WordPiece sees it */
    size_t mask;
    size_t max_len; /* longest model token in bytes: bounds the WordPiece search */

    char *prefix; /* continuing_subword_prefix */
    size_t prefix_len;
    uint64_t prefix_hash;
    size_t max_chars; /* max_input_chars_per_word */
    int32_t unk, cls, sep;

    bool clean_text, chinese, strip_accents, lowercase;

    struct added_set raw;  /* normalized: false, matched on the input */
    struct added_set norm; /* normalized: true, matched on each normalised piece */
};

/* Scratch of one jc_tokenize call, so a loaded tokenizer stays read-only and shareable. */
struct tk_run {
    const struct jc_tokenizer *tk;
    int32_t *ids; /* content ids, without [CLS] and [SEP] */
    size_t n_ids, cap_ids;
    uint32_t *cp; /* after clean_text and CJK spacing */
    size_t n_cp, cap_cp;
    uint32_t *dcp; /* after NFD */
    size_t n_dcp, cap_dcp;
    uint8_t *ccc; /* combining class of each dcp */
    size_t cap_ccc;
    uint32_t *tmp; /* sorting long runs of marks */
    size_t cap_tmp;
    char *norm; /* the normalised piece as UTF-8 */
    size_t n_norm, cap_norm;
};

/* ---- character classes --------------------------------------------------------------- */

static bool in_ranges(const struct jc_cp_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static bool is_control(uint32_t cp)
{
    if (cp < 128)
        return cc_ascii[cp] & CC_CONTROL;
    return in_ranges(cc_control, NRANGES(cc_control), cp);
}

/* Rust's char::is_whitespace (White_Space). The table leaves out VT, FF and NEL only
 * because clean_text deletes them as control characters first. */
static bool is_space(uint32_t cp)
{
    if (cp < 128)
        return (cc_ascii[cp] & CC_SPACE) || cp == 0x0B || cp == 0x0C;
    return cp == 0x85 || in_ranges(cc_whitespace, NRANGES(cc_whitespace), cp);
}

static bool is_punct(uint32_t cp)
{
    if (cp < 128)
        return cc_ascii[cp] & CC_PUNCT;
    return in_ranges(cc_punct, NRANGES(cc_punct), cp);
}

static bool is_mn(uint32_t cp)
{
    return cp >= 0x300 && in_ranges(cc_mn, NRANGES(cc_mn), cp);
}

static bool is_cjk(uint32_t cp)
{
    return cp >= 0x3400 && in_ranges(cc_cjk, NRANGES(cc_cjk), cp);
}

static bool is_opaque(uint32_t cp)
{
    return cp >= 0x7FD && in_ranges(cc_nfd_opaque, NRANGES(cc_nfd_opaque), cp);
}

/* The regex \w of Rust (Alphabetic, marks, Nd, Pc, Join_Control), for single_word tokens;
 * Other_Alphabetic outside the marks is mostly the circled and squared letters. */
static bool is_word_char(uint32_t cp)
{
    if (cp < 128)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return cp == 0x200C || cp == 0x200D || (cp >= 0x24B6 && cp <= 0x24E9) ||
               (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
               (cp >= 0x1F170 && cp <= 0x1F189);
    }
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

/*
 * Decodes the sequence at s[0..n), n >= 1. Returns the bytes consumed: a whole valid
 * sequence, or the maximal subpart of an invalid one (at least 1 byte), for which *cp is
 * U+FFFD. This is the Unicode "maximal subpart" practice that Python's decoder follows.
 */
static size_t utf8_next(const char *str, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *cp = 0xFFFD;
            return i;
        }
        v = (v << 6) | (s[i] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = v;
    return need + 1;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Offset of the first invalid byte, or len when buf is valid UTF-8. */
static size_t utf8_invalid_at(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_next(buf + i, len - i, &cp);
        if (cp == 0xFFFD && !(k == 3 && memcmp(buf + i, "\xEF\xBF\xBD", 3) == 0))
            return i;
        i += k;
    }
    return len;
}

long jc_utf8_repair(const char *buf, size_t len, char **out, size_t *out_len)
{
    size_t i = 0, bad = 0, need = 0;
    char *p;

    *out = NULL;
    *out_len = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_next(buf + i, len - i, &cp);
        if (cp == 0xFFFD && !(k == 3 && memcmp(buf + i, "\xEF\xBF\xBD", 3) == 0)) {
            bad++;
            need += 3;
        } else {
            need += k;
        }
        i += k;
    }
    if (bad == 0)
        return 0;
    if (bad > LONG_MAX)
        return jc_fail(JC_ELIMIT, "too many invalid UTF-8 sequences to count");
    p = jc_malloc(need + 1, "repaired UTF-8 text");
    if (!p)
        return JC_ENOMEM;
    need = 0;
    for (i = 0; i < len;) {
        uint32_t cp;
        size_t k = utf8_next(buf + i, len - i, &cp);
        if (cp == 0xFFFD) {
            memcpy(p + need, "\xEF\xBF\xBD", 3);
            need += 3;
        } else {
            memcpy(p + need, buf + i, k);
            need += k;
        }
        i += k;
    }
    p[need] = '\0';
    *out = p;
    *out_len = need;
    return (long)bad;
}

/* ---- vocabulary hash ------------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Id of the model token prefix+s (prefix only when `cont`), or -1. */
static int32_t vocab_find(const struct jc_tokenizer *tk, bool cont, const char *s, size_t n)
{
    size_t plen = cont ? tk->prefix_len : 0;
    uint64_t h = fnv(cont ? tk->prefix_hash : FNV_OFFSET, s, n);
    uint32_t h32 = (uint32_t)(h >> 32);

    for (size_t i = (size_t)h & tk->mask;; i = (i + 1) & tk->mask) {
        int32_t id = tk->slot[i].id;
        if (id < 0)
            return -1;
        if (tk->slot[i].h == h32 && tk->tok_len[id] == plen + n &&
            memcmp(tk->tok[id], tk->prefix, plen) == 0 && memcmp(tk->tok[id] + plen, s, n) == 0)
            return id;
    }
}

/* Id of a token by name, added tokens first as HF's token_to_id does; -1 if unknown. */
static int32_t token_to_id(const struct jc_tokenizer *tk, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = tk->n_vocab; i < tk->n_tok; i++)
        if (tk->tok_len[i] == n && memcmp(tk->tok[i], name, n) == 0)
            return (int32_t)i;
    return vocab_find(tk, false, name, n);
}

/* Builds the hash of ids [0, n_vocab); fails on a duplicate token. */
static int build_hash(struct jc_tokenizer *tk, const char *name, const char *where)
{
    size_t cap = 16;
    while (cap < tk->n_vocab * 2)
        cap *= 2;
    tk->slot = jc_malloc(cap * sizeof *tk->slot, "the vocabulary hash");
    if (!tk->slot)
        return JC_ENOMEM;
    tk->mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        tk->slot[i].id = -1;
    for (size_t id = 0; id < tk->n_vocab; id++) {
        const char *s = tk->tok[id];
        size_t n = tk->tok_len[id];
        uint64_t h = fnv(FNV_OFFSET, s, n);
        size_t i = (size_t)h & tk->mask;
        for (; tk->slot[i].id >= 0; i = (i + 1) & tk->mask) {
            int32_t o = tk->slot[i].id;
            if (tk->tok_len[o] == n && memcmp(tk->tok[o], s, n) == 0)
                return jc_fail(JC_EFORMAT, "'%s': duplicate token '%.*s' in %s (ids %d and %zu)",
                               name, (int)(n > 64 ? 64 : n), s, where, o, id);
        }
        tk->slot[i].id = (int32_t)id;
        tk->slot[i].h = (uint32_t)(h >> 32);
        if (n > tk->max_len)
            tk->max_len = n;
    }
    return 0;
}

/* ---- scratch buffers ------------------------------------------------------------------- */

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    void **p = pp;
    size_t nc = *cap ? *cap : 256;
    void *np;

    if (need <= *cap)
        return 0;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return jc_fail(JC_ENOMEM, "out of memory: tokenizer buffer of %zu items", need);
        nc *= 2;
    }
    np = realloc(*p, nc * elem);
    if (!np)
        return jc_fail(JC_ENOMEM, "out of memory allocating %zu bytes for the tokenizer",
                       nc * elem);
    *p = np;
    *cap = nc;
    return 0;
}

static void run_release(struct tk_run *r)
{
    free(r->ids);
    free(r->cp);
    free(r->dcp);
    free(r->ccc);
    free(r->tmp);
    free(r->norm);
}

static int push_id(struct tk_run *r, int32_t id)
{
    if (r->n_ids == r->cap_ids && grow(&r->ids, &r->cap_ids, r->n_ids + 1, sizeof *r->ids) < 0)
        return JC_ENOMEM;
    r->ids[r->n_ids++] = id;
    return 0;
}

/* ---- BertNormalizer -------------------------------------------------------------------- */

/* Canonical ordering: a stable sort by combining class of each run of non-starters. */
static int reorder(struct tk_run *r)
{
    uint32_t *cp = r->dcp;
    uint8_t *cc = r->ccc;
    size_t n = r->n_dcp;

    for (size_t i = 0; i < n;) {
        size_t j = i;
        if (cc[i] == 0) {
            i++;
            continue;
        }
        while (j < n && cc[j] != 0)
            j++;
        if (j - i <= 16) {
            for (size_t a = i + 1; a < j; a++) {
                uint32_t c = cp[a];
                uint8_t k = cc[a];
                size_t b = a;
                for (; b > i && cc[b - 1] > k; b--) {
                    cp[b] = cp[b - 1];
                    cc[b] = cc[b - 1];
                }
                cp[b] = c;
                cc[b] = k;
            }
        } else {
            /* counting sort, so that a long run of marks stays linear */
            size_t count[257] = {0}, m = j - i;
            if (grow(&r->tmp, &r->cap_tmp, m, sizeof *r->tmp) < 0)
                return JC_ENOMEM;
            for (size_t a = i; a < j; a++)
                count[cc[a] + 1]++;
            for (size_t k = 1; k < 257; k++)
                count[k] += count[k - 1];
            for (size_t a = i; a < j; a++)
                r->tmp[count[cc[a]]++] = cp[a];
            memcpy(cp + i, r->tmp, m * sizeof *cp);
            /* count[k] is now where class k ends */
            for (size_t k = 0, a = 0; k < 256; k++)
                for (; a < count[k]; a++)
                    cc[i + a] = (uint8_t)k;
        }
        i = j;
    }
    return 0;
}

/* NFD of r->cp into r->dcp, with HF's Unicode 9.0 view of the opaque code points. */
static int decompose(struct tk_run *r)
{
    r->n_dcp = 0;
    for (size_t i = 0; i < r->n_cp; i++) {
        uint32_t c = r->cp[i];
        utf8proc_int32_t buf[32];
        utf8proc_ssize_t k = 1;
        int boundclass = 0;

        if (c < 0xC0 || is_opaque(c))
            buf[0] = (utf8proc_int32_t)c;
        else
            k = utf8proc_decompose_char((utf8proc_int32_t)c, buf, 32, UTF8PROC_DECOMPOSE,
                                        &boundclass);
        if (k < 1 || k > 32) {
            buf[0] = (utf8proc_int32_t)c;
            k = 1;
        }
        if (grow(&r->dcp, &r->cap_dcp, r->n_dcp + (size_t)k, sizeof *r->dcp) < 0 ||
            grow(&r->ccc, &r->cap_ccc, r->n_dcp + (size_t)k, sizeof *r->ccc) < 0)
            return JC_ENOMEM;
        for (utf8proc_ssize_t j = 0; j < k; j++) {
            uint32_t d = (uint32_t)buf[j];
            r->dcp[r->n_dcp] = d;
            r->ccc[r->n_dcp] =
                d < 0x300 || is_opaque(d)
                    ? 0
                    : (uint8_t)utf8proc_get_property((utf8proc_int32_t)d)->combining_class;
            r->n_dcp++;
        }
    }
    return reorder(r);
}

static int push_cp(struct tk_run *r, uint32_t c)
{
    if (r->n_cp == r->cap_cp && grow(&r->cp, &r->cap_cp, r->n_cp + 1, sizeof *r->cp) < 0)
        return JC_ENOMEM;
    r->cp[r->n_cp++] = c;
    return 0;
}

/* HF's BertNormalizer on s[0..n) (valid UTF-8) into r->norm[0..n_norm). */
static int normalize(struct tk_run *r, const char *s, size_t n)
{
    const struct jc_tokenizer *tk = r->tk;
    const uint32_t *src;
    size_t n_src;

    r->n_cp = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += utf8_next(s + i, n - i, &c);
        if (tk->clean_text) {
            if (c == 0 || c == 0xFFFD || is_control(c))
                continue;
            if (is_space(c))
                c = ' ';
        }
        if (tk->chinese && is_cjk(c)) {
            if (push_cp(r, ' ') < 0 || push_cp(r, c) < 0 || push_cp(r, ' ') < 0)
                return JC_ENOMEM;
        } else if (push_cp(r, c) < 0) {
            return JC_ENOMEM;
        }
    }
    src = r->cp;
    n_src = r->n_cp;
    if (tk->strip_accents) {
        if (decompose(r) < 0)
            return JC_ENOMEM;
        src = r->dcp;
        n_src = r->n_dcp;
    }

    /* 8 bytes a code point: U+0130 lowercases to two */
    if (n_src > SIZE_MAX / 8 || grow(&r->norm, &r->cap_norm, n_src * 8 + 1, 1) < 0)
        return jc_fail(JC_ENOMEM, "out of memory normalising %zu code points", n_src);
    r->n_norm = 0;
    for (size_t i = 0; i < n_src; i++) {
        uint32_t c = src[i];
        if (tk->strip_accents && is_mn(c))
            continue;
        if (tk->lowercase) {
            if (c < 0x80) {
                if (c >= 'A' && c <= 'Z')
                    c += 'a' - 'A';
            } else if (c == 0x130) {
                /* the only full lowercase mapping longer than one code point */
                r->n_norm += utf8_put(r->norm + r->n_norm, 'i');
                c = 0x307;
            } else {
                c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
            }
        }
        r->n_norm += utf8_put(r->norm + r->n_norm, c);
    }
    return 0;
}

/* ---- WordPiece and BertPreTokenizer ---------------------------------------------------- */

static int wordpiece(struct tk_run *r, const char *w, size_t n, size_t nchars)
{
    const struct jc_tokenizer *tk = r->tk;
    size_t mark = r->n_ids, start = 0;

    if (nchars > tk->max_chars)
        return push_id(r, tk->unk);
    while (start < n) {
        size_t end = n;
        int32_t id = -1;

        if (end - start > tk->max_len) {
            end = start + tk->max_len;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80)
                end--;
        }
        while (end > start) {
            id = vocab_find(tk, start > 0, w + start, end - start);
            if (id >= 0)
                break;
            do
                end--;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            /* no piece fits here: the whole word is unknown, not a partial result */
            r->n_ids = mark;
            return push_id(r, tk->unk);
        }
        if (push_id(r, id) < 0)
            return JC_ENOMEM;
        start = end;
    }
    return 0;
}

/* Splits on whitespace (dropped) and punctuation (kept, one character a word). */
static int pretokenize(struct tk_run *r, const char *s, size_t n)
{
    size_t i = 0, w = 0, chars = 0;

    while (i < n) {
        uint32_t c;
        size_t k = utf8_next(s + i, n - i, &c);
        bool space = is_space(c);
        if (space || is_punct(c)) {
            if (chars && wordpiece(r, s + w, i - w, chars) < 0)
                return JC_ENOMEM;
            if (!space && wordpiece(r, s + i, k, 1) < 0)
                return JC_ENOMEM;
            chars = 0;
            w = i + k;
        } else {
            chars++;
        }
        i += k;
    }
    if (chars && wordpiece(r, s + w, n - w, chars) < 0)
        return JC_ENOMEM;
    return 0;
}

/* ---- added tokens ---------------------------------------------------------------------- */

/* Decodes the code point that ends at s[end] (valid UTF-8); returns its length. */
static size_t prev_cp(const char *s, size_t end, uint32_t *cp)
{
    size_t i = end - 1;
    while (i > 0 && end - i < 4 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    utf8_next(s + i, end - i, cp);
    return end - i;
}

typedef int (*piece_fn)(struct tk_run *r, const char *s, size_t n);

/*
 * HF's AddedVocabulary::find_matches: leftmost-longest matches of the set's patterns in
 * s[0..n); each match becomes its id, the text between goes to `piece`.
 */
static int split_added(struct tk_run *r, const struct added_set *set, const char *s, size_t n,
                       piece_fn piece)
{
    size_t done = 0, pos = 0;

    while (pos < n) {
        const struct added_token *best = NULL;
        size_t start, stop;

        if (set->first[(unsigned char)s[pos]]) {
            for (size_t t = 0; t < set->n; t++) {
                const struct added_token *a = &set->tok[t];
                if (a->len <= n - pos && (!best || a->len > best->len) &&
                    memcmp(s + pos, a->pattern, a->len) == 0)
                    best = a;
            }
        }
        if (!best) {
            pos++;
            continue;
        }
        start = pos;
        stop = pos + best->len;
        pos = stop;
        if (best->single_word) {
            uint32_t prev = 0, next = 0;
            if (start > 0)
                prev_cp(s, start, &prev);
            if (stop < n)
                utf8_next(s + stop, n - stop, &next);
            if ((start > 0 && is_word_char(prev)) || (stop < n && is_word_char(next)))
                continue;
        }
        if (best->lstrip) {
            uint32_t c;
            size_t k;
            while (start > done && (k = prev_cp(s, start, &c), is_space(c)))
                start -= k;
        }
        if (best->rstrip) {
            while (stop < n) {
                uint32_t c;
                size_t k = utf8_next(s + stop, n - stop, &c);
                if (!is_space(c))
                    break;
                stop += k;
            }
            pos = stop;
        }
        if (done < start && piece(r, s + done, start - done) < 0)
            return JC_ENOMEM;
        if (push_id(r, best->id) < 0)
            return JC_ENOMEM;
        done = stop;
    }
    if (done < n && piece(r, s + done, n - done) < 0)
        return JC_ENOMEM;
    return 0;
}

/* A piece of the input between raw added tokens: normalise, then the rest of the pipeline. */
static int normalized_piece(struct tk_run *r, const char *s, size_t n)
{
    if (normalize(r, s, n) < 0)
        return JC_ENOMEM;
    if (r->tk->norm.n)
        return split_added(r, &r->tk->norm, r->norm, r->n_norm, pretokenize);
    return pretokenize(r, r->norm, r->n_norm);
}

/* ---- tokenize ---------------------------------------------------------------------------- */

int jc_tokenize(const struct jc_tokenizer *tk, const char *text, size_t len, size_t max_tokens,
                int32_t **ids, size_t *n, size_t *n_full)
{
    struct tk_run r = {.tk = tk};
    char *fixed = NULL;
    size_t fixed_len, keep;
    int32_t *out;
    long bad;
    int rc;

    if (ids)
        *ids = NULL;
    if (n)
        *n = 0;
    if (n_full)
        *n_full = 0;
    if (!tk || !ids || !n || (!text && len))
        return jc_fail(JC_EINVAL, "jc_tokenize: missing tokenizer, text or output");
    if (max_tokens < 2)
        return jc_fail(JC_EINVAL, "cannot tokenize to at most %zu tokens: [CLS] and [SEP] need 2",
                       max_tokens);

    /* Invalid sequences become U+FFFD first, so every later step sees valid UTF-8. */
    bad = jc_utf8_repair(text ? text : "", len, &fixed, &fixed_len);
    if (bad < 0)
        return (int)bad;
    if (fixed) {
        text = fixed;
        len = fixed_len;
    }
    if (tk->raw.n)
        rc = split_added(&r, &tk->raw, text ? text : "", len, normalized_piece);
    else
        rc = normalized_piece(&r, text ? text : "", len);
    if (rc < 0)
        goto out;

    keep = r.n_ids < max_tokens - 2 ? r.n_ids : max_tokens - 2;
    out = jc_malloc((keep + 2) * sizeof *out, "token ids");
    if (!out) {
        rc = JC_ENOMEM;
        goto out;
    }
    out[0] = tk->cls;
    if (keep)
        memcpy(out + 1, r.ids, keep * sizeof *out);
    out[keep + 1] = tk->sep;
    *ids = out;
    *n = keep + 2;
    if (n_full)
        *n_full = r.n_ids + 2;
    rc = 0;
out:
    run_release(&r);
    free(fixed);
    return rc;
}

const char *jc_tokenizer_token(const struct jc_tokenizer *tk, int32_t id)
{
    if (!tk || id < 0 || (size_t)id >= tk->n_tok)
        return NULL;
    return tk->tok[id];
}

size_t jc_tokenizer_size(const struct jc_tokenizer *tk)
{
    return tk ? tk->n_tok : 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void added_release(struct added_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->tok[i].pattern);
    free(set->tok);
}

void jc_tokenizer_free(struct jc_tokenizer *tk)
{
    if (!tk)
        return;
    if (tk->tok)
        for (size_t i = tk->n_vocab; i < tk->n_tok; i++)
            free(tk->tok[i]);
    free(tk->tok);
    free(tk->tok_len);
    free(tk->arena);
    free(tk->slot);
    free(tk->prefix);
    added_release(&tk->raw);
    added_release(&tk->norm);
    free(tk);
}

/* Allocates the id table for n model tokens of `bytes` bytes in all (NULs included). */
static int alloc_vocab(struct jc_tokenizer *tk, size_t n, size_t bytes)
{
    tk->tok = jc_calloc(n, sizeof *tk->tok, "the vocabulary");
    tk->tok_len = jc_calloc(n, sizeof *tk->tok_len, "the vocabulary");
    tk->arena = jc_malloc(bytes, "the vocabulary");
    if (!tk->tok || !tk->tok_len || !tk->arena)
        return JC_ENOMEM;
    tk->n_tok = tk->n_vocab = n;
    return 0;
}

static int set_prefix(struct jc_tokenizer *tk, const char *prefix)
{
    tk->prefix_len = strlen(prefix);
    tk->prefix = jc_malloc(tk->prefix_len + 1, "the subword prefix");
    if (!tk->prefix)
        return JC_ENOMEM;
    memcpy(tk->prefix, prefix, tk->prefix_len + 1);
    tk->prefix_hash = fnv(FNV_OFFSET, prefix, tk->prefix_len);
    return 0;
}

/*
 * Adds a token to the added vocabulary as HF's add_tokens does: its id is the model's when
 * the model has the content, else the next id after everything so far.
 */
static int add_token(struct jc_tokenizer *tk, const char *content, bool single_word, bool lstrip,
                     bool rstrip, bool normalized, const char *name)
{
    size_t len = strlen(content);
    int32_t id = token_to_id(tk, content);
    struct added_set *set = normalized ? &tk->norm : &tk->raw;
    struct added_token *a;
    char *pattern;
    size_t plen;

    if (len == 0)
        return 0; /* HF ignores empty tokens */
    if (id < 0) {
        char **ntok;
        uint32_t *nlen;
        if (tk->n_tok >= MAX_TOKENS)
            return jc_fail(JC_EFORMAT, "'%s': too many tokens", name);
        ntok = realloc(tk->tok, (tk->n_tok + 1) * sizeof *ntok);
        if (ntok)
            tk->tok = ntok;
        nlen = realloc(tk->tok_len, (tk->n_tok + 1) * sizeof *nlen);
        if (nlen)
            tk->tok_len = nlen;
        if (!ntok || !nlen)
            return jc_fail(JC_ENOMEM, "out of memory adding token '%s'", content);
        tk->tok[tk->n_tok] = strdup(content);
        if (!tk->tok[tk->n_tok])
            return jc_fail(JC_ENOMEM, "out of memory adding token '%s'", content);
        tk->tok_len[tk->n_tok] = (uint32_t)len;
        id = (int32_t)tk->n_tok++;
    } else {
        /* an earlier added token with the same content already matches */
        for (size_t i = 0; i < tk->raw.n; i++)
            if (tk->raw.tok[i].id == id)
                return 0;
        for (size_t i = 0; i < tk->norm.n; i++)
            if (tk->norm.tok[i].id == id)
                return 0;
    }

    if (set == &tk->norm) {
        /* HF matches a normalized token by its normalised form */
        struct tk_run r = {.tk = tk};
        if (normalize(&r, content, len) < 0) {
            run_release(&r);
            return JC_ENOMEM;
        }
        pattern = r.norm;
        plen = r.n_norm;
        r.norm = NULL;
        run_release(&r);
        if (plen == 0) {
            free(pattern);
            return 0;
        }
    } else {
        pattern = strdup(content);
        plen = len;
        if (!pattern)
            return jc_fail(JC_ENOMEM, "out of memory adding token '%s'", content);
    }
    a = realloc(set->tok, (set->n + 1) * sizeof *a);
    if (!a) {
        free(pattern);
        return jc_fail(JC_ENOMEM, "out of memory adding token '%s'", content);
    }
    set->tok = a;
    a = &set->tok[set->n++];
    a->pattern = pattern;
    a->len = plen;
    a->id = id;
    a->single_word = single_word;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    set->first[(unsigned char)pattern[0]] = true;
    return 0;
}

static int require_token(struct jc_tokenizer *tk, int32_t *id, const char *token, const char *what,
                         const char *name)
{
    *id = token_to_id(tk, token);
    if (*id < 0)
        return jc_fail(JC_EFORMAT, "'%s': %s token '%s' is not in the vocabulary", name, what,
                       token);
    return 0;
}

int jc_tokenizer_from_vocab(struct jc_tokenizer **out, const char *buf, size_t len,
                            const char *name)
{
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    struct jc_tokenizer *tk;
    size_t lines = 0, bad, i, id;
    char *dst;
    int rc;

    if (!out)
        return jc_fail(JC_EINVAL, "jc_tokenizer_from_vocab: no output");
    *out = NULL;
    if (!name)
        name = "vocab.txt";
    if (!buf && len)
        return jc_fail(JC_EINVAL, "'%s': no buffer", name);
    if (!buf)
        buf = "";
    bad = utf8_invalid_at(buf, len);
    if (bad < len) {
        size_t line = 1;
        for (i = 0; i < bad; i++)
            line += buf[i] == '\n';
        return jc_fail(JC_EFORMAT, "'%s': invalid UTF-8 on line %zu", name, line);
    }

    /* Lines end with \n, \r\n or \r, as Python's universal newlines read them. */
    for (i = 0; i < len;) {
        while (i < len && buf[i] != '\n' && buf[i] != '\r')
            i++;
        lines++;
        if (i < len && buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i++;
        i++;
    }
    if (lines >= MAX_TOKENS)
        return jc_fail(JC_EFORMAT, "'%s': too many lines", name);

    tk = jc_calloc(1, sizeof *tk, "a tokenizer");
    if (!tk)
        return JC_ENOMEM;
    tk->clean_text = tk->chinese = tk->strip_accents = tk->lowercase = true;
    tk->max_chars = 100;
    rc = alloc_vocab(tk, lines, len + 1);
    if (rc < 0)
        goto out_free;
    rc = set_prefix(tk, "##");
    if (rc < 0)
        goto out_free;
    dst = tk->arena;
    for (i = 0, id = 0; i < len; id++) {
        size_t start = i;
        while (i < len && buf[i] != '\n' && buf[i] != '\r')
            i++;
        memcpy(dst, buf + start, i - start);
        tk->tok[id] = dst;
        tk->tok_len[id] = (uint32_t)(i - start);
        dst += i - start;
        *dst++ = '\0';
        if (i < len && buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i++;
        i++;
    }
    rc = build_hash(tk, name, "the vocabulary");
    if (rc < 0)
        goto out_free;
    for (i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        if (vocab_find(tk, false, specials[i], strlen(specials[i])) < 0)
            continue;
        rc = add_token(tk, specials[i], false, false, false, false, name);
        if (rc < 0)
            goto out_free;
    }
    if ((rc = require_token(tk, &tk->unk, "[UNK]", "unknown", name)) < 0 ||
        (rc = require_token(tk, &tk->cls, "[CLS]", "classifier", name)) < 0 ||
        (rc = require_token(tk, &tk->sep, "[SEP]", "separator", name)) < 0)
        goto out_free;
    *out = tk;
    return 0;

out_free:
    jc_tokenizer_free(tk);
    return rc;
}

/* ---- tokenizer.json ---------------------------------------------------------------------- */

static const char *json_type(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* An optional boolean member: *v keeps its default when absent or null. */
static int json_bool(const cJSON *o, const char *key, bool *v, const char *where, const char *name)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!b || cJSON_IsNull(b))
        return 0;
    if (!cJSON_IsBool(b))
        return jc_fail(JC_EFORMAT, "'%s': %s.%s is not a boolean", name, where, key);
    *v = cJSON_IsTrue(b);
    return 0;
}

/* A whole number in [0, limit]; `what` names it in the message. */
static int json_index(const cJSON *v, double limit, size_t *out, const char *what, const char *name)
{
    double d;
    if (!cJSON_IsNumber(v))
        return jc_fail(JC_EFORMAT, "'%s': %s is not a number", name, what);
    d = v->valuedouble;
    if (!(d >= 0 && d <= limit) || d != (double)(size_t)d)
        return jc_fail(JC_EFORMAT, "'%s': %s is out of range: %.17g", name, what, d);
    *out = (size_t)d;
    return 0;
}

static int load_model(struct jc_tokenizer *tk, const cJSON *model, const char *name)
{
    const cJSON *vocab, *v;
    const char *type = json_type(model);
    size_t n, bytes = 0;
    char *dst;
    int rc;

    if (!cJSON_IsObject(model))
        return jc_fail(JC_EFORMAT, "'%s': no model object", name);
    if (!type || strcmp(type, "WordPiece") != 0)
        return jc_fail(JC_EFORMAT, "'%s': unsupported model type '%s' (only WordPiece)", name,
                       type ? type : "(none)");

    v = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    if (v && !cJSON_IsNull(v) && !cJSON_IsString(v))
        return jc_fail(JC_EFORMAT, "'%s': model.continuing_subword_prefix is not a string", name);
    rc = set_prefix(tk, cJSON_IsString(v) ? v->valuestring : "##");
    if (rc < 0)
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    tk->max_chars = 100;
    if (v && !cJSON_IsNull(v)) {
        rc = json_index(v, 1e15, &tk->max_chars, "model.max_input_chars_per_word", name);
        if (rc < 0)
            return rc;
    }

    vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return jc_fail(JC_EFORMAT, "'%s': model.vocab is not an object", name);
    n = 0;
    for (v = vocab->child; v; v = v->next) {
        if (!v->string)
            return jc_fail(JC_EFORMAT, "'%s': model.vocab has an entry without a key", name);
        bytes += strlen(v->string) + 1;
        n++;
    }
    if (n >= MAX_TOKENS)
        return jc_fail(JC_EFORMAT, "'%s': too many tokens in model.vocab", name);
    rc = alloc_vocab(tk, n, bytes + 1);
    if (rc < 0)
        return rc;
    dst = tk->arena;
    for (v = vocab->child; v; v = v->next) {
        size_t id, len = strlen(v->string);
        char what[96];
        snprintf(what, sizeof what, "the id of '%.48s' in model.vocab", v->string);
        rc = json_index(v, (double)n - 1, &id, what, name);
        if (rc < 0)
            return rc;
        if (tk->tok[id])
            return jc_fail(JC_EFORMAT,
                           "'%s': id %zu is given to both '%.48s' and '%.48s' in model.vocab", name,
                           id, tk->tok[id], v->string);
        memcpy(dst, v->string, len + 1);
        tk->tok[id] = dst;
        tk->tok_len[id] = (uint32_t)len;
        dst += len + 1;
    }
    return build_hash(tk, name, "model.vocab");
}

static int load_normalizer(struct jc_tokenizer *tk, const cJSON *norm, const char *name)
{
    const char *type = json_type(norm);
    int rc;

    if (!norm || cJSON_IsNull(norm))
        return 0; /* no normalisation at all */
    if (!type || strcmp(type, "BertNormalizer") != 0)
        return jc_fail(JC_EFORMAT, "'%s': unsupported normalizer '%s' (only BertNormalizer)", name,
                       type ? type : "(none)");
    tk->clean_text = tk->chinese = tk->lowercase = true;
    if ((rc = json_bool(norm, "clean_text", &tk->clean_text, "normalizer", name)) < 0 ||
        (rc = json_bool(norm, "handle_chinese_chars", &tk->chinese, "normalizer", name)) < 0 ||
        (rc = json_bool(norm, "lowercase", &tk->lowercase, "normalizer", name)) < 0)
        return rc;
    /* strip_accents: null follows lowercase, as in HF */
    tk->strip_accents = tk->lowercase;
    return json_bool(norm, "strip_accents", &tk->strip_accents, "normalizer", name);
}

static int load_added(struct jc_tokenizer *tk, const cJSON *added, const char *name)
{
    const cJSON *a;
    size_t i = 0;
    int rc;

    if (!added || cJSON_IsNull(added))
        return 0;
    if (!cJSON_IsArray(added))
        return jc_fail(JC_EFORMAT, "'%s': added_tokens is not an array", name);
    for (a = added->child; a; a = a->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        bool single_word = false, lstrip = false, rstrip = false, normalized = true;
        char where[32];
        size_t given;

        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (!cJSON_IsObject(a) || !cJSON_IsString(content))
            return jc_fail(JC_EFORMAT, "'%s': %s has no content string", name, where);
        /* HF assigns ids itself and only warns when the given one differs */
        if (id && (rc = json_index(id, (double)UINT32_MAX, &given, "an added token id", name)) < 0)
            return rc;
        if ((rc = json_bool(a, "single_word", &single_word, where, name)) < 0 ||
            (rc = json_bool(a, "lstrip", &lstrip, where, name)) < 0 ||
            (rc = json_bool(a, "rstrip", &rstrip, where, name)) < 0 ||
            (rc = json_bool(a, "normalized", &normalized, where, name)) < 0)
            return rc;
        rc = add_token(tk, content->valuestring, single_word, lstrip, rstrip, normalized, name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The id the post-processor writes for one special token of a template. */
static int template_id(struct jc_tokenizer *tk, const cJSON *pp, const cJSON *item, int32_t *out,
                       const char *name)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(st, "id");
    const cJSON *spec, *ids;
    size_t id;
    int rc;

    if (!cJSON_IsString(tok))
        return jc_fail(JC_EFORMAT, "'%s': unsupported post_processor template (not [CLS] $A [SEP])",
                       name);
    spec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pp, "special_tokens"),
                                            tok->valuestring);
    ids = cJSON_GetObjectItemCaseSensitive(spec, "ids");
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != 1)
        return jc_fail(JC_EFORMAT, "'%s': post_processor.special_tokens has no single id for '%s'",
                       name, tok->valuestring);
    rc = json_index(ids->child, (double)tk->n_tok - 1, &id, "a post_processor token id", name);
    if (rc < 0)
        return rc;
    *out = (int32_t)id;
    return 0;
}

/* The single-sequence template must be [CLS] $A [SEP] in some spelling. */
static int load_post(struct jc_tokenizer *tk, const cJSON *pp, const char *name)
{
    const char *type = json_type(pp);
    int rc;

    if (!pp || cJSON_IsNull(pp)) {
        if ((rc = require_token(tk, &tk->cls, "[CLS]", "classifier", name)) < 0 ||
            (rc = require_token(tk, &tk->sep, "[SEP]", "separator", name)) < 0)
            return rc;
        return 0;
    }
    if (type && strcmp(type, "TemplateProcessing") == 0) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
        const cJSON *seq, *seq_id;
        if (!cJSON_IsArray(single) || cJSON_GetArraySize(single) != 3)
            return jc_fail(JC_EFORMAT,
                           "'%s': unsupported post_processor template (not [CLS] $A [SEP])", name);
        seq = cJSON_GetObjectItemCaseSensitive(single->child->next, "Sequence");
        seq_id = cJSON_GetObjectItemCaseSensitive(seq, "id");
        if (!cJSON_IsString(seq_id) || strcmp(seq_id->valuestring, "A") != 0)
            return jc_fail(JC_EFORMAT,
                           "'%s': unsupported post_processor template (not [CLS] $A [SEP])", name);
        if ((rc = template_id(tk, pp, single->child, &tk->cls, name)) < 0 ||
            (rc = template_id(tk, pp, single->child->next->next, &tk->sep, name)) < 0)
            return rc;
        return 0;
    }
    if (type && strcmp(type, "BertProcessing") == 0) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(pp, "cls");
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(pp, "sep");
        size_t c, s;
        if (!cJSON_IsArray(cls) || cJSON_GetArraySize(cls) != 2 || !cJSON_IsArray(sep) ||
            cJSON_GetArraySize(sep) != 2)
            return jc_fail(JC_EFORMAT, "'%s': post_processor.cls and .sep must be [token, id]",
                           name);
        if ((rc = json_index(cls->child->next, (double)tk->n_tok - 1, &c, "post_processor.cls id",
                             name)) < 0 ||
            (rc = json_index(sep->child->next, (double)tk->n_tok - 1, &s, "post_processor.sep id",
                             name)) < 0)
            return rc;
        tk->cls = (int32_t)c;
        tk->sep = (int32_t)s;
        return 0;
    }
    return jc_fail(JC_EFORMAT, "'%s': unsupported post_processor '%s'", name,
                   type ? type : "(none)");
}

int jc_tokenizer_from_json(struct jc_tokenizer **out, const char *buf, size_t len, const char *name)
{
    struct jc_tokenizer *tk = NULL;
    const char *end = NULL, *type;
    cJSON *root;
    size_t bad;
    int rc;

    if (!out)
        return jc_fail(JC_EINVAL, "jc_tokenizer_from_json: no output");
    *out = NULL;
    if (!name)
        name = "tokenizer.json";
    if (!buf)
        return jc_fail(JC_EINVAL, "'%s': no buffer", name);
    bad = utf8_invalid_at(buf, len);
    if (bad < len)
        return jc_fail(JC_EFORMAT, "'%s': invalid UTF-8 at byte %zu", name, bad);
    if ((rc = jc_json_parse(&root, buf, len, &end, name)) == JC_ENOMEM)
        return rc;
    if (!root) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        return jc_fail(JC_EFORMAT, "'%s': malformed JSON near byte %zu", name, at);
    }
    if (!cJSON_IsObject(root)) {
        rc = jc_fail(JC_EFORMAT, "'%s': not a JSON object", name);
        goto out_json;
    }
    tk = jc_calloc(1, sizeof *tk, "a tokenizer");
    if (!tk) {
        rc = JC_ENOMEM;
        goto out_json;
    }
    type = json_type(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
    if (!type || strcmp(type, "BertPreTokenizer") != 0) {
        rc = jc_fail(JC_EFORMAT, "'%s': unsupported pre_tokenizer '%s' (only BertPreTokenizer)",
                     name, type ? type : "(none)");
        goto out_free;
    }
    if ((rc = load_normalizer(tk, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), name)) <
            0 ||
        (rc = load_model(tk, cJSON_GetObjectItemCaseSensitive(root, "model"), name)) < 0 ||
        (rc = load_added(tk, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), name)) < 0)
        goto out_free;
    {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        const char *u = cJSON_IsString(unk) ? unk->valuestring : "[UNK]";
        if (unk && !cJSON_IsNull(unk) && !cJSON_IsString(unk)) {
            rc = jc_fail(JC_EFORMAT, "'%s': model.unk_token is not a string", name);
            goto out_free;
        }
        /* WordPiece takes [UNK] from its own vocabulary, not from the added tokens */
        tk->unk = vocab_find(tk, false, u, strlen(u));
        if (tk->unk < 0) {
            rc = jc_fail(JC_EFORMAT, "'%s': unknown token '%s' is not in model.vocab", name, u);
            goto out_free;
        }
    }
    rc = load_post(tk, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), name);
    if (rc < 0)
        goto out_free;
    *out = tk;
    tk = NULL;
    rc = 0;
out_free:
    jc_tokenizer_free(tk);
out_json:
    cJSON_Delete(root);
    return rc;
}

int jc_tokenizer_load(struct jc_tokenizer **out, const char *dir)
{
    struct stat st;
    char *path, *buf = NULL;
    size_t len;
    bool vocab = false;
    int rc;

    if (!out || !dir)
        return jc_fail(JC_EINVAL, "jc_tokenizer_load: no directory or output");
    *out = NULL;
    if (stat(dir, &st) != 0)
        return jc_fail(JC_ENOTFOUND, "cannot open tokenizer directory '%s': %s", dir,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return jc_fail(JC_ENOTFOUND, "'%s' is not a directory", dir);
    path = jc_path_join(dir, "tokenizer.json");
    if (!path)
        return JC_ENOMEM;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        path = jc_path_join(dir, "vocab.txt");
        if (!path)
            return JC_ENOMEM;
        if (stat(path, &st) != 0 && errno == ENOENT) {
            free(path);
            return jc_fail(JC_ENOTFOUND, "no tokenizer.json or vocab.txt in '%s'", dir);
        }
        vocab = true;
    }
    rc = jc_read_file(path, FILE_LIMIT, &buf, &len);
    if (rc == 0)
        rc = vocab ? jc_tokenizer_from_vocab(out, buf, len, path)
                   : jc_tokenizer_from_json(out, buf, len, path);
    free(buf);
    free(path);
    return rc;
}
