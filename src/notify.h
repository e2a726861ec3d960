/* notify: the systemd notify protocol (READY=1, RELOADING=1, STOPPING=1,
 * STATUS=...), spoken directly over $NOTIFY_SOCKET so no libsystemd is needed.
 * Every call is a no-op when not started by systemd. */
#ifndef AG_NOTIFY_H
#define AG_NOTIFY_H

int sd_notify_msg(const char *msg); /* 0 sent or not under systemd; -1 error */

#endif
