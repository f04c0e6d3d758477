/*
 * dnsconf, the domain owner's tool: the commands main.c dispatches to.
 * Each takes the arguments after the command name (argv[0] is the
 * command) and returns the process exit status.
 */
#ifndef DNSCONF_DNSCONF_H
#define DNSCONF_DNSCONF_H

enum dnsconf_exit {
	DNSCONF_EXIT_OK = 0,
	DNSCONF_EXIT_INPUT = 1,		/* bad input: files, keys, rules */
	DNSCONF_EXIT_USAGE = 2,		/* bad command line */
};

int	cmd_keygen(int argc, char **argv);
int	cmd_relay_keygen(int argc, char **argv);
int	cmd_sign(int argc, char **argv);
int	cmd_label(int argc, char **argv);

/*
 * Report an unknown option or a missing argument the way every command
 * does: "dnsconf CMD: what is wrong" and a pointer to CMD -h.  Returns
 * DNSCONF_EXIT_USAGE.
 */
int	dnsconf_usage_error(const char *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
