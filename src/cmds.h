/* cmds: the sub-commands of the authgate binary. Each returns the process exit
 * code. argv[0] is the sub-command name. */
#ifndef AG_CMDS_H
#define AG_CMDS_H

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_mint(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_healthcheck(int argc, char **argv); /* exit 0 alive, 1 not: cmd_healthcheck.c */
int cmd_reasons(int argc, char **argv);     /* hidden: the reason table, for the docs tests */

#endif
