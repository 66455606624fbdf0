/*
 * Atomic output files: written under a temporary name beside the target and renamed over
 * it only after a successful flush and fsync, so a failed or interrupted run never leaves a
 * partial file and never truncates an existing one. Open temporary names are kept in a
 * table that jc_afile_cleanup() empties from a signal handler.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_OPEN 16

/* Read from a signal handler: only pointers set and cleared with the signals blocked. */
static char *volatile open_tmp[MAX_OPEN];

static void track(char *tmp, bool add)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < MAX_OPEN; i++)
        if (add ? !open_tmp[i] : open_tmp[i] == tmp) {
            open_tmp[i] = add ? tmp : NULL;
            break;
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void jc_afile_cleanup(void)
{
    for (int i = 0; i < MAX_OPEN; i++)
        if (open_tmp[i])
            unlink(open_tmp[i]); /* async-signal-safe */
}

int jc_afile_open(struct jc_afile *a, const char *path)
{
    size_t plen = strlen(path);

    memset(a, 0, sizeof *a);
    a->path = strdup(path);
    a->tmp = malloc(plen + 32);
    if (!a->path || !a->tmp) {
        free(a->path);
        free(a->tmp);
        return jc_fail(JC_ENOMEM, "out of memory");
    }
    snprintf(a->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    track(a->tmp, true);
    if (!(a->f = fopen(a->tmp, "wb"))) {
        int rc = jc_fail(JC_EIO, "cannot create '%s': %s", a->tmp, strerror(errno));
        track(a->tmp, false);
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
        return rc;
    }
    return 0;
}

void jc_afile_abort(struct jc_afile *a)
{
    if (!a->tmp)
        return;
    if (a->f)
        fclose(a->f);
    unlink(a->tmp);
    track(a->tmp, false);
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

int jc_afile_commit(struct jc_afile *a)
{
    FILE *f = a->f;
    int rc;

    a->f = NULL;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f)) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", a->path, strerror(errno));
        fclose(f);
        goto out_abort;
    }
    if (fclose(f) != 0) {
        rc = jc_fail(JC_EIO, "cannot write '%s': %s", a->path, strerror(errno));
        goto out_abort;
    }
    if (rename(a->tmp, a->path) != 0) {
        rc = jc_fail(JC_EIO, "cannot rename '%s' to '%s': %s", a->tmp, a->path, strerror(errno));
        goto out_abort;
    }
    track(a->tmp, false);
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return 0;
out_abort:
    jc_afile_abort(a);
    return rc;
}
