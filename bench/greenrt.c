// SPDX-License-Identifier: GPL-2.0
/*
 * The greenrt group: the greenrt demo's workload (examples/greenrt/demo.c:
 * batches of coroutines recursing to random depths, meeting at their deepest
 * point, parking shallow to be trimmed, ending) on four kinds of coroutine
 * stack, everything else the same (gr_config.stacks, GREENRT_STACKS):
 *
 *   committed  read/write and populated at creation, never trimmed: the
 *              baseline, what a runtime with fixed stacks pays
 *   stackres   stackres reservations, the runtime's native stacks
 *   sigsegv    PROT_NONE reservations grown by a SIGSEGV handler on a
 *              sigaltstack that mprotects 64 KiB steps read/write (the
 *              user-space way), trimmed with MADV_DONTNEED + PROT_NONE
 *   lazy       read/write stacks faulted in lazily with a guard page below,
 *              trimmed with MADV_DONTNEED: what most runtimes do (greenrt's
 *              fallback stacks, libstackres's tier below stackres)
 *
 * Each growable kind runs with its best policy, the same for all three: the
 * budgeted trim (GREENRT_TRIM_BUDGET, _LOW, _WARM: sr_trim_budget(), or its
 * like on rw_low for sigsegv), which trims nothing while the stacks hold at
 * most GRB_BUDGET and then the stacks that free the most down to GRB_LOW,
 * keeping GRB_WARM under each top.
 *
 * Each sample is one run of the demo binary (greenrt-demo next to
 * stackbench, built by bench/run) in its own process, so that its memory
 * figures are its own and its SIGSEGV handler does not replace ours.
 * Measured per run: the wall time from fork to reaping the process, its
 * peak resident set (VmHWM from /proc/self/status, printed by the demo before
 * it unmaps its stacks) and the runtime's peak committed stack bytes (the
 * demo's "committed stacks peak": the sum over all stacks with every
 * coroutine of a batch at its deepest point).  A run whose demo does not
 * finish with "result OK" (every coroutine done, the one that recurses
 * without end killed at its guard) fails the case.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

/*
 * Same maximum for every kind: 1 MiB (the demo's i386 default).  The demo's
 * x86_64 default of 8 MiB x 2,000 coroutines per batch would need 16 GiB of
 * fully committed stacks; 1 MiB x 200 needs 200 MiB of the guest's 1 GiB.
 */
#define GRB_STACK_MAX	(1UL << 20)
#define GRB_BATCH	200
#define GRB_TOTAL	30000
/* The trim policy of the growable kinds (bench/README.md, the greenrt workload). */
#define GRB_BUDGET	(16UL << 20)
#define GRB_LOW		(12UL << 20)
#define GRB_WARM	(64UL << 10)

static const char *const kinds[] = { "committed", "stackres", "sigsegv", "lazy" };
#define NKINDS 4

struct grb_run {
	double secs, hwm_mib, commit_mib;
};

/* Path of greenrt-demo: the directory of this executable. */
static int demo_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 32);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	strcpy(slash ? slash + 1 : buf, "greenrt-demo");
	return access(buf, X_OK);
}

/* One demo run; 0, or -1 with the reason in why. */
static int run_demo(const char *path, const char *kind, struct grb_run *r,
		    char *why, size_t wlen)
{
	static char out[65536];
	char total[32], batch[32], smax[32], skind[48], budget[48], low[48], warm[48];
	char *const argv[] = { (char *)"greenrt-demo", NULL };
	char *envp[] = { total, batch, smax, skind, budget, low, warm, NULL };
	size_t got = 0;
	int pfd[2], status;
	uint64_t t0;
	ssize_t n;
	pid_t pid;
	char *p;

	snprintf(total, sizeof(total), "GREENRT_DEMO_TOTAL=%d", GRB_TOTAL);
	snprintf(batch, sizeof(batch), "GREENRT_DEMO_BATCH=%d", GRB_BATCH);
	snprintf(smax, sizeof(smax), "GREENRT_STACK_MAX=%lu", GRB_STACK_MAX);
	snprintf(skind, sizeof(skind), "GREENRT_STACKS=%s",
		 strcmp(kind, "stackres") ? kind : "default");
	snprintf(budget, sizeof(budget), "GREENRT_TRIM_BUDGET=%lu", GRB_BUDGET);
	snprintf(low, sizeof(low), "GREENRT_TRIM_LOW=%lu", GRB_LOW);
	snprintf(warm, sizeof(warm), "GREENRT_TRIM_WARM=%lu", GRB_WARM);
	if (pipe(pfd)) {
		snprintf(why, wlen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	t0 = now_ns();
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		execve(path, argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		snprintf(why, wlen, "fork: %s", strerror(errno));
		return -1;
	}
	while ((n = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0 ||
	       (n < 0 && errno == EINTR))
		got += n > 0 ? n : 0;
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r->secs = (now_ns() - t0) / 1e9;
	out[got] = 0;

	p = strstr(out, "\ncommitted stacks");
	if (!WIFEXITED(status) || WEXITSTATUS(status) || !strstr(out, "result              OK") ||
	    !p || sscanf(p, "\ncommitted stacks peak %lf MiB", &r->commit_mib) != 1 ||
	    !(p = strstr(out, "high-water (VmHWM) ")) ||
	    sscanf(p, "high-water (VmHWM) %lf MiB", &r->hwm_mib) != 1) {
		/* The demo's last line says what went wrong (or where it stopped). */
		char *last;

		while (got && out[got - 1] == '\n')
			out[--got] = 0;
		last = strrchr(out, '\n');
		snprintf(why, wlen, "greenrt-demo (GREENRT_STACKS=%s) %s %d: %.160s",
			 kind, WIFEXITED(status) ? "exit status" : "killed by signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			 last ? last + 1 : out);
		return -1;
	}
	return 0;
}

void bench_greenrt(void)
{
	static const char *const unit[3] = { "s", "MiB", "MiB" };
	static const char *const base[3] = {
		"greenrt-committed-time", "greenrt-committed-rss", "greenrt-committed-commit",
	};
	char names[3][NKINDS][40], path[4096], why[256];
	const char *absent = stackres_absent();
	int n = reps(6), done[NKINDS] = { 0 }, failed[NKINDS] = { 0 };
	double v[3][NKINDS][n];

	if (!absent)
		absent = exit_free_absent();
	for (int k = 0; k < NKINDS; k++) {
		snprintf(names[0][k], 40, "greenrt-%s-time", kinds[k]);
		snprintf(names[1][k], 40, "greenrt-%s-rss", kinds[k]);
		snprintf(names[2][k], 40, "greenrt-%s-commit", kinds[k]);
	}
	if (demo_path(path, sizeof(path) - 32)) {
		for (int k = 0; k < NKINDS; k++)
			for (int m = 0; m < 3; m++)
				report_na(names[m][k], unit[m], base[m],
					  "no greenrt-demo next to stackbench (bench/run builds it)");
		return;
	}
	/* Kinds interleaved, so slow drifts of the host hit all alike. */
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < NKINDS; k++) {
			struct grb_run r;

			if (failed[k])
				continue;
			if (k == 1 && absent) {
				for (int m = 0; m < 3; m++)
					report_na(names[m][k], unit[m], base[m],
						  "runtime not native: %s", absent);
				failed[k] = 1;
				continue;
			}
			if (run_demo(path, kinds[k], &r, why, sizeof(why))) {
				for (int m = 0; m < 3; m++)
					report_na(names[m][k], unit[m], base[m], "%s", why);
				failed[k] = 1;
				continue;
			}
			v[0][k][done[k]] = r.secs;
			v[1][k][done[k]] = r.hwm_mib;
			v[2][k][done[k]] = r.commit_mib;
			done[k]++;
		}
	}
	for (int k = 0; k < NKINDS; k++)
		for (int m = 0; m < 3 && !failed[k]; m++)
			report(names[m][k], unit[m], base[m], v[m][k], done[k]);
}
