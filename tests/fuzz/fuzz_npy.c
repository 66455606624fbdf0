/*
 * The .npy reader. jc_npy_read takes a path, so each input is written to one temporary file
 * per process: made with mkstemp in /tmp and unlinked at once, read back through
 * /proc/self/fd, so that nothing is left behind however the run ends.
 */
#include "fuzz.h"

#include "jclip.h"

#include <unistd.h>

static const char *input_path(int *fd)
{
    static char path[64];
    static int tmp = -1;

    if (tmp < 0) {
        char name[] = "/tmp/jclip-fuzz-npy-XXXXXX";
        if ((tmp = mkstemp(name)) < 0) {
            perror("fuzz_npy: mkstemp");
            abort();
        }
        unlink(name);
        snprintf(path, sizeof path, "/proc/self/fd/%d", tmp);
    }
    *fd = tmp;
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd;
    const char *path = input_path(&fd);
    float *values = NULL;
    size_t rows = 0, cols = 0;

    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        perror("fuzz_npy: cannot write the input");
        abort();
    }
    int rc = jc_npy_read(path, &values, &rows, &cols);
    FUZZ_CHECK(rc == 0 || rc == JC_EFORMAT || rc == JC_ENOMEM);
    if (rc < 0) {
        FUZZ_CHECK(values == NULL);
        return 0;
    }
    /* the values are the last rows * cols * 4 bytes of the file */
    FUZZ_CHECK(cols == 0 || rows <= size / 4 / cols);
    FUZZ_CHECK(rows * cols * 4 <= size);
    FUZZ_CHECK(!memcmp(values, data + size - rows * cols * 4, rows * cols * 4));
    free(values);
    return 0;
}
