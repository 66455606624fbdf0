/* Image files, decoded with stb_image. */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

int jc_image_size(const char *path, int *w, int *h)
{
    struct stat st;
    FILE *f;
    int comp, ok;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return jc_fail(JC_EIO, "cannot read '%s': is a directory", path);
    if (!(f = fopen(path, "rb")))
        return jc_fail(JC_EIO, "cannot open '%s': %s", path, strerror(errno));
    ok = stbi_info_from_file(f, w, h, &comp);
    fclose(f);
    if (!ok)
        return jc_fail(JC_EFORMAT, "cannot read '%s': %s", path,
                       st.st_size == 0 ? "empty file" : stbi_failure_reason());
    if (*w <= 0 || *h <= 0)
        return jc_fail(JC_EFORMAT, "'%s' has no pixels (%d x %d)", path, *w, *h);
    return 0;
}
