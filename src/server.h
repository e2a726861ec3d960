/* server: the daemon. N workers, each an event loop owning a libmicrohttpd
 * daemon on its own SO_REUSEPORT listener and a libcurl multi handle; the main
 * thread only handles signals (reload, log reopen, shutdown). */
#ifndef AG_SERVER_H
#define AG_SERVER_H

/* Load the configuration, start serving, return the process exit code when
 * stopped by SIGTERM/SIGINT (0) or on a start-up error (1). With pid_file, the
 * daemon's pid is written there once it serves and removed when it exits. */
int srv_main(const char *config_path, const char *pid_file);

#endif
