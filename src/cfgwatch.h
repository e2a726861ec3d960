/* cfgwatch: notices that the configuration file changed and asks the process
 * to reload it, the same way an operator does: SIGHUP to itself. So a change
 * seen by the watch takes exactly the SIGHUP path (validate, swap or keep the
 * running policy, log, count in /metrics).
 *
 * It watches the file's DIRECTORY with inotify, not the file: editors and
 * `mv` replace the file (a new inode), and a Kubernetes ConfigMap volume
 * swaps a `..data` symlink next to it while the file itself never changes.
 * Only events naming the file or a `..` entry count (a log file next to it
 * does not). They are debounced (quiet for debounce_ms), then the bytes are
 * compared with the last ones seen: only different bytes raise SIGHUP, so
 * other files in the directory and a touch without a change do nothing. A
 * slow poll of the same comparison covers file systems without inotify.
 *
 * The caller must have SIGHUP blocked in every thread and wait for it
 * (server.c's sigwait loop); the watch thread blocks all signals itself. */
#ifndef AG_CFGWATCH_H
#define AG_CFGWATCH_H

#include <stddef.h>

typedef struct cw_watch cw_watch;

/* Starts watching `path`. Returns NULL with a message in err on failure (the
 * daemon then runs without the watch; SIGHUP still works). */
cw_watch *cw_start(const char *path, long debounce_ms, char *err, size_t errlen);

/* Stops the thread and frees the watch; NULL is a no-op. */
void cw_stop(cw_watch *w);

/* The bytes' fingerprint the comparison uses (FNV-1a 64); exposed for the
 * unit test. A missing file is fingerprint 0 and never triggers a reload. */
unsigned long long cw_fingerprint(const char *path);

#endif
