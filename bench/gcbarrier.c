// SPDX-License-Identifier: GPL-2.0
/*
 * The gcbarrier group: what the access fault hook costs processes that do
 * not use stackres for their stacks but take access faults for their own
 * reasons (bench/README.md, "The gcbarrier group").
 *
 * The workload is an mprotect toggle, as a GC write barrier or a JIT's W^X
 * switch does it: write to a PROT_NONE page, the SIGSEGV handler makes it
 * read/write, the write is retried, and the page is made PROT_NONE again.
 *
 *   gcb-toggle-nofd     in a process that never opened /dev/stackres
 *   gcb-toggle-fd       /dev/stackres open, nothing registered (the mm has
 *                       not opted in: no REGISTER/ARENA yet)
 *   gcb-toggle-outside  /dev/stackres open and one reservation registered
 *                       (the mm opted in), the toggled page outside it
 *   gcb-fault           control: a plain demand fault (MADV_DONTNEED, then
 *                       write every page of 4 MiB), not an access fault
 *   gcb-mprotect        control: the toggle's two mprotect() calls alone,
 *                       without the write (-fd, -outside: in those processes;
 *                       opening the device registers an MMU notifier, which
 *                       every mprotect() of the mm then calls)
 *
 * The unpatched kernel has no /dev/stackres: there the fd cases are n/a and
 * gcb-toggle-nofd is the baseline that bench/gcbarrier-compare puts the
 * patched kernel's rows against (two -icount boots with the same command).
 *
 * Every configuration runs in a fresh process (fork + exec of this binary,
 * recognised by STACKBENCH_GCB_CHILD in the environment before main()
 * runs): the opt-in is a property of the mm, and the parent has opened the
 * device and registered reservations in other groups.  The child writes
 * "case value" lines to a pipe; the parent reports them.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <linux/stackres.h>

#define GCB_ENV		"STACKBENCH_GCB_CHILD"
#define GCB_TOGGLES	2000		/* per sample */
#define GCB_FAULT_LEN	(4UL << 20)	/* per gcb-fault sample */
#define GCB_SAMPLES	15		/* per case over all rounds */
#define GCB_RES_LEN	(64UL << 10)	/* the reservation of -outside */

enum gcb_mode { GCB_NOFD, GCB_FD, GCB_OUTSIDE };

static const char *const gcb_case[] = {
	[GCB_NOFD] = "gcb-toggle-nofd",
	[GCB_FD] = "gcb-toggle-fd",
	[GCB_OUTSIDE] = "gcb-toggle-outside",
};

static const char *const gcb_mprotect_case[] = {
	[GCB_NOFD] = "gcb-mprotect",
	[GCB_FD] = "gcb-mprotect-fd",
	[GCB_OUTSIDE] = "gcb-mprotect-outside",
};

/* ------------------------------------------------------------------ */
/* The child: one configuration, its samples as text on fd `out`      */

static FILE *gcb_out;
static char *volatile tg_page;
static volatile unsigned long tg_faults;

static void tg_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	if ((char *)si->si_addr != tg_page ||
	    mprotect(tg_page, PG, PROT_READ | PROT_WRITE)) {
		/* Not the toggled page, or mprotect failed: die on the retry. */
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	tg_faults++;
}

static void na(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void na(const char *name, const char *fmt, ...)
{
	va_list ap;

	fprintf(gcb_out, "NA %s ", name);
	va_start(ap, fmt);
	vfprintf(gcb_out, fmt, ap);
	va_end(ap);
	fputc('\n', gcb_out);
}

/* N toggles of tg_page; ns per toggle, or -1 if a write did not fault. */
static double toggle_sample(int n)
{
	unsigned long f0 = tg_faults;
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++) {
		*tg_page = (char)i;		/* faults: PROT_NONE */
		mprotect(tg_page, PG, PROT_NONE);
	}
	t0 = now_ns() - t0;
	return tg_faults - f0 == (unsigned long)n ? (double)t0 / n : -1;
}

/* N mprotect() pairs of tg_page without touching it; ns per pair. */
static double mprotect_sample(int n)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++) {
		mprotect(tg_page, PG, PROT_READ | PROT_WRITE);
		mprotect(tg_page, PG, PROT_NONE);
	}
	return (double)(now_ns() - t0) / n;
}

static double fault_sample(char *p)
{
	uint64_t t0;

	madvise(p, GCB_FAULT_LEN, MADV_DONTNEED);
	t0 = now_ns();
	for (size_t off = 0; off < GCB_FAULT_LEN; off += PG)
		((volatile char *)p)[off] = 1;
	return (double)(now_ns() - t0) / (GCB_FAULT_LEN / PG);
}

/*
 * -outside: register one reservation and grow it once, which proves that
 * this mm's access faults now go to the module (the opt-in is on).
 */
static int register_one(int fd, const char *name)
{
	struct stackres_reg r = {
		.len = GCB_RES_LEN + PG, .guard = PG, .flags = STACKRES_MAP,
	};
	struct stackres_query q = { 0 };

	if (ioctl(fd, STACKRES_IOC_REGISTER, &r)) {
		na(name, "REGISTER: %s", strerror(errno));
		return -1;
	}
	((volatile char *)(uintptr_t)r.start)[GCB_RES_LEN] = 1;
	q.id = r.id;
	if (ioctl(fd, STACKRES_IOC_QUERY, &q) || q.grow_faults != 1) {
		na(name, "the reservation did not grow once (QUERY: %s, %llu growth steps)",
		   strerror(errno), (unsigned long long)q.grow_faults);
		return -1;
	}
	/* The toggled page must be outside every reservation. */
	q = (struct stackres_query){ .flags = STACKRES_QUERY_ADDR,
				     .addr = (uintptr_t)tg_page };
	if (!ioctl(fd, STACKRES_IOC_QUERY, &q) || errno != ENOENT) {
		na(name, "QUERY of the toggled page: %s, expected ENOENT",
		   strerror(errno));
		return -1;
	}
	return 0;
}

static int gcb_child(enum gcb_mode mode, int samples)
{
	struct sigaction sa = { .sa_sigaction = tg_handler,
				.sa_flags = SA_SIGINFO };
	const char *name = gcb_case[mode];
	char *area;
	int fd = -1;

	/*
	 * Three pages: the toggled one in the middle, PROT_READ neighbours
	 * whose protection differs from both of its states, so mprotect()
	 * only changes one VMA's flags (no split, no merge).
	 */
	area = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		na(name, "mmap: %s", strerror(errno));
		return 0;
	}
	tg_page = area + PG;
	sigaction(SIGSEGV, &sa, NULL);
	if (mode != GCB_NOFD) {
		fd = open("/dev/stackres", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			na(name, "no /dev/stackres (open: %s; module not built or not loaded)",
			   strerror(errno));
			return 0;
		}
		if (mode == GCB_OUTSIDE && register_one(fd, name))
			return 0;
	}
	/* Make the page resident, then warm up. */
	mprotect(tg_page, PG, PROT_READ | PROT_WRITE);
	*tg_page = 1;
	mprotect(tg_page, PG, PROT_NONE);
	if (toggle_sample(GCB_TOGGLES / 10) < 0) {
		na(name, "a write to the PROT_NONE page did not fault exactly once");
		return 0;
	}
	if (mode == GCB_NOFD) {
		char *p = mmap(NULL, GCB_FAULT_LEN, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			na("gcb-fault", "mmap: %s", strerror(errno));
		} else {
			fault_sample(p);
			for (int i = 0; i < samples; i++)
				fprintf(gcb_out, "R gcb-fault %.7g\n", fault_sample(p));
			munmap(p, GCB_FAULT_LEN);
		}
	}
	for (int i = 0; i < samples; i++)
		fprintf(gcb_out, "R %s %.7g\n", gcb_mprotect_case[mode],
			mprotect_sample(GCB_TOGGLES));
	for (int i = 0; i < samples; i++) {
		double v = toggle_sample(GCB_TOGGLES);

		if (v < 0) {
			na(name, "a write to the PROT_NONE page did not fault exactly once");
			return 0;
		}
		fprintf(gcb_out, "R %s %.7g\n", name, v);
	}
	return 0;
}

/* Before main(): a child started by run_child() does its part and exits. */
__attribute__((constructor)) static void gcb_child_entry(void)
{
	const char *env = getenv(GCB_ENV);
	int mode, samples, out;

	if (!env)
		return;
	if (sscanf(env, "%d %d %d", &mode, &samples, &out) != 3 ||
	    mode < GCB_NOFD || mode > GCB_OUTSIDE)
		_exit(2);
	gcb_out = fdopen(out, "w");
	if (!gcb_out)
		_exit(2);
	gcb_child(mode, samples);
	fclose(gcb_out);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent                                                          */

static void na_all(enum gcb_mode mode, const char *why)
{
	report_na(gcb_case[mode], "ns/toggle", "gcb-toggle-nofd", "%s", why);
	report_na(gcb_mprotect_case[mode], "ns/pair", "gcb-mprotect", "%s", why);
	if (mode == GCB_NOFD)
		report_na("gcb-fault", "ns/page", "gcb-fault", "%s", why);
}

static void run_child(enum gcb_mode mode)
{
	char env[64], line[300], name[64], why[300] = "no samples";
	int pfd[2], status;
	double v[3][GCB_SAMPLES];
	int nv[3] = { 0 };
	const char *const names[3] = { gcb_case[mode], gcb_mprotect_case[mode],
				       "gcb-fault" };
	const char *const units[3] = { "ns/toggle", "ns/pair", "ns/page" };
	const char *const bases[3] = { "gcb-toggle-nofd", "gcb-mprotect", "gcb-fault" };
	int samples = reps(GCB_SAMPLES);
	FILE *f;
	pid_t pid;

	if (samples > GCB_SAMPLES)
		samples = GCB_SAMPLES;
	if (pipe(pfd)) {
		na_all(mode, "pipe failed");
		return;
	}
	snprintf(env, sizeof(env), "%d %d %d", mode, samples, pfd[1]);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		setenv(GCB_ENV, env, 1);
		execl("/proc/self/exe", "stackbench-gcb", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		double x;
		int k, off = 0;

		if (sscanf(line, "R %63s %lf", name, &x) == 2) {
			for (k = 0; k < 3 && strcmp(names[k], name); k++)
				;
			if (k < 3 && nv[k] < GCB_SAMPLES)
				v[k][nv[k]++] = x;
		} else if (sscanf(line, "NA %63s %n", name, &off) == 1 && off) {
			line[strcspn(line, "\n")] = 0;
			snprintf(why, sizeof(why), "%s", line + off);
		}
	}
	if (f)
		fclose(f);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		na_all(mode, "the child process failed");
		return;
	}
	/* A case without samples is n/a for the reason the child gave. */
	for (int k = 0; k < (mode == GCB_NOFD ? 3 : 2); k++)
		if (nv[k])
			report(names[k], units[k], bases[k], v[k], nv[k]);
		else
			report_na(names[k], units[k], bases[k], "%s", why);
}

void bench_gcbarrier(void)
{
	run_child(GCB_NOFD);
	run_child(GCB_FD);
	run_child(GCB_OUTSIDE);
}
