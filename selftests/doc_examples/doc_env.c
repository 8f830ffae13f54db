// SPDX-License-Identifier: GPL-2.0
/*
 * doc_env MODE PROG [ARG...]: run one documentation example as it would run
 * on another kernel, on the patched kernel of the guest.
 *
 *   native    as it is;
 *   nomodule  without /dev/stackres: in a mount namespace of its own with an
 *             empty tmpfs on /dev, as on a kernel without the module;
 *   enosys    system call 463 fails with ENOSYS without running, as on Linux
 *             6.12 without the patch series;
 *   e2big     system call 463 fails with E2BIG without running, as
 *             setxattrat() on Linux 6.13 and later fails for the probe.
 *
 * enosys and e2big trace every thread of PROG with ptrace: at the entry of
 * system call 463 the call is skipped (orig_ax = -1) and at its exit the
 * error is set.  They print "doc_env: syscall 463 called N times" on stderr:
 * an example must call it exactly once there, to probe.
 *
 * Exits with PROG's exit status, or 128 + the signal that killed it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_EXIT_FREE	463
#define MAX_TIDS	64

#ifdef __x86_64__
#define ORIG_AX	offsetof(struct user_regs_struct, orig_rax)
#define AX	offsetof(struct user_regs_struct, rax)
#else
#define ORIG_AX	offsetof(struct user_regs_struct, orig_eax)
#define AX	offsetof(struct user_regs_struct, eax)
#endif

static void die(const char *what)
{
	fprintf(stderr, "doc_env: %s: %s\n", what, strerror(errno));
	exit(126);
}

static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void no_module(void)
{
	if (unshare(CLONE_NEWNS))
		die("unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("mount(MS_PRIVATE)");
	if (mount("none", "/dev", "tmpfs", 0, "mode=0755"))
		die("mount /dev");
	if (access("/dev/stackres", F_OK) == 0 || errno != ENOENT)
		die("/dev/stackres still there");
}

/* Per traced thread: a skipped call 463 waits for its exit stop. */
static pid_t pending[MAX_TIDS];

static int pending_take(pid_t tid)
{
	for (int i = 0; i < MAX_TIDS; i++) {
		if (pending[i] == tid) {
			pending[i] = 0;
			return 1;
		}
	}
	return 0;
}

static void pending_add(pid_t tid)
{
	for (int i = 0; i < MAX_TIDS; i++) {
		if (!pending[i]) {
			pending[i] = tid;
			return;
		}
	}
	errno = ENOSPC;
	die("too many threads");
}

static int trace(char **argv, long err)
{
	struct __ptrace_syscall_info info;
	int st, code = 126, calls = 0;
	pid_t pid, tid;

	pid = fork();
	if (pid == -1)
		die("fork");
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			die("PTRACE_TRACEME");
		raise(SIGSTOP);
		execv(argv[0], argv);
		die(argv[0]);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
		die("waitpid");
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
		   PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL))
		die("PTRACE_SETOPTIONS");
	if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL))
		die("PTRACE_SYSCALL");

	while ((tid = waitpid(-1, &st, __WALL)) != -1) {
		int sig = 0;

		if (!WIFSTOPPED(st)) {
			if (tid == pid)
				code = exit_code(st);
			continue;
		}
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(info), &info) <= 0)
				die("PTRACE_GET_SYSCALL_INFO");
			if (info.op == PTRACE_SYSCALL_INFO_ENTRY &&
			    info.entry.nr == NR_EXIT_FREE) {
				calls++;
				if (ptrace(PTRACE_POKEUSER, tid, ORIG_AX, -1L))
					die("PTRACE_POKEUSER orig_ax");
				pending_add(tid);
			} else if (info.op == PTRACE_SYSCALL_INFO_EXIT &&
				   pending_take(tid)) {
				if (ptrace(PTRACE_POKEUSER, tid, AX, -err))
					die("PTRACE_POKEUSER ax");
			}
		} else if (WSTOPSIG(st) != SIGTRAP && WSTOPSIG(st) != SIGSTOP) {
			sig = WSTOPSIG(st);	/* deliver it */
		}
		/* A thread may be gone already (ESRCH): its exit is reported next. */
		ptrace(PTRACE_SYSCALL, tid, NULL, sig);
	}
	if (errno != ECHILD)
		die("waitpid");
	fprintf(stderr, "doc_env: syscall 463 called %d times\n", calls);
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: doc_env native|nomodule|enosys|e2big PROG [ARG...]\n");
		return 126;
	}
	if (!strcmp(argv[1], "enosys"))
		return trace(argv + 2, ENOSYS);
	if (!strcmp(argv[1], "e2big"))
		return trace(argv + 2, E2BIG);
	if (!strcmp(argv[1], "nomodule"))
		no_module();
	else if (strcmp(argv[1], "native"))
		return 126;
	execv(argv[2], argv + 2);
	die(argv[2]);
}
