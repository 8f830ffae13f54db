// SPDX-License-Identifier: GPL-2.0
/*
 * The libc group: pthread create + exit throughput of three libcs, for
 * detached and for joinable threads (bench/pthreads.c, at most 4 alive):
 *
 *   libc-*-musl           Debian's musl, unpatched: a fresh mmap + mprotect
 *                         per thread; a detached thread munmaps its own stack
 *                         (__unmapself), a joinable one is unmapped by its
 *                         joiner
 *   libc-*-musl-exit_free musl + examples/musl/patches: the stack cache,
 *                         mappings released by exit_free()
 *   libc-*-glibc          glibc's NPTL and its stack cache (the thread's
 *                         CLONE_CHILD_CLEARTID word says when a stack is free)
 *
 * The baseline is unpatched musl. Each helper (pthreads-musl,
 * pthreads-musl-exit_free, pthreads-glibc next to stackbench, built by
 * bench/run) runs in its own process; its samples are read from a pipe.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#define LIBC_THREADS	2000
#define LIBC_SAMPLES	5

static const char *const libcs[] = { "musl", "musl-exit_free", "glibc" };

static int helper_path(const char *libc, char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 64);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	sprintf(slash ? slash + 1 : buf, "pthreads-%s", libc);
	return access(buf, X_OK);
}

static void run(const char *libc, const char *mode)
{
	char path[4096], name[64], base[64], nthreads[16], nsamples[16];
	double v[64];
	int pfd[2], status, n = 0;
	FILE *f;
	pid_t pid;

	snprintf(name, sizeof(name), "libc-%s-%s", mode, libc);
	snprintf(base, sizeof(base), "libc-%s-musl", mode);
	if (!strcmp(libc, "musl-exit_free") && exit_free_absent()) {
		report_na(name, "threads/s", base, "%s", exit_free_absent());
		return;
	}
	if (helper_path(libc, path, sizeof(path))) {
		report_na(name, "threads/s", base, "pthreads-%s not built", libc);
		return;
	}
	snprintf(nthreads, sizeof(nthreads), "%d", reps(LIBC_THREADS));
	snprintf(nsamples, sizeof(nsamples), "%d", LIBC_SAMPLES);
	if (pipe(pfd))
		return;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(path, path, mode, nthreads, nsamples, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	while (f && n < 64 && fscanf(f, "%lf", &v[n]) == 1)
		n++;
	if (f)
		fclose(f);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) || n != LIBC_SAMPLES) {
		report_na(name, "threads/s", base, "pthreads-%s failed (%d samples)",
			  libc, n);
		return;
	}
	report(name, "threads/s", base, v, n);
}

void bench_libc(void)
{
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < 3; i++)
			run(libcs[i], m ? "joinable" : "detached");
}
