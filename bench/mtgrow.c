// SPDX-License-Identifier: GPL-2.0
/*
 * The mtgrow group: stacks growing on several CPUs at once (issue 16,
 * "Growth on many CPUs").  1, 2 and 4 threads of one process each grow
 * their own 8 MiB stack top-down, one byte per page, all at the same time;
 * the stacks are made fresh before every sample (outside the clock), so
 * every touched page is a growth:
 *
 *   lazy       mmap RW (MAP_NORESERVE) + a PROT_NONE guard page below:
 *              plain demand faults, the baseline
 *   stackres   REGISTER with STACKRES_MAP, commit 0, default chunk (64 KiB):
 *              a growth step through the access fault hook every 16 pages,
 *              each under mmap_lock held for writing
 *   chunk1     the same with chunk = 1 page: every page a growth step, the
 *              case that shows what one step costs the other threads
 *   chunk256k  the same with chunk = 256 KiB: a step every 64 pages
 *   arena      one ARENA (STACKRES_MAP) with a slot per thread: demand
 *              paging above a guard marker, no growth step at all
 *
 * Cases (bench/README.md, "Growth on many CPUs"):
 *   mt-grow-KIND-N      aggregate pages/s of N threads: N * 2,048 pages
 *                       over the time from the first thread's start to the
 *                       last one's end; baseline mt-grow-KIND-1, so the
 *                       ratio is the scaling
 *   mt-probe-KIND       ns per fault of another thread of the same process
 *                       that writes each page of a fresh 4 MiB mapping of
 *                       its own (a heap, say) while one thread grows KIND
 *                       stacks on the other CPU (the prober on CPU 0, the
 *                       grower on CPU 1); baseline mt-probe-idle (nobody
 *                       grows).  Needs 2 CPUs (n/a on one).
 *   mt-probe-KIND-p99   the 99th percentile of the 1,024 faults of a
 *   mt-probe-KIND-max   sample, and its slowest one, us
 *
 * Kinds and thread counts are interleaved in every sample, so that the
 * host's drifts hit them alike.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <linux/stackres.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif

#define MT_MAXT		4
#define MT_LEN		(8UL << 20)		/* grown by each thread */
#define MT_GUARD	PG
#define MT_STACK	(MT_LEN + MT_GUARD)
#define MT_PAGES	(MT_LEN / PG)
#define MT_PROBE_PAGES	1024			/* 4 MiB */
#define MT_PROBE_AFTER	(MT_PAGES / 8)		/* grower pages before it */

enum mt_kind {
	MT_LAZY, MT_STACKRES, MT_CHUNK1, MT_CHUNK256K, MT_ARENA, MT_NKINDS
};

static const char *const mt_kind_name[MT_NKINDS] = {
	"lazy", "stackres", "chunk1", "chunk256k", "arena",
};

/* REGISTER's chunk of each stackres kind (0: the default, 64 KiB) */
static const uint64_t mt_chunk[MT_NKINDS] = {
	[MT_CHUNK1] = PG, [MT_CHUNK256K] = 256UL << 10,
};

static const int mt_threads[] = { 1, 2, 4 };
#define MT_NCOUNTS	3

struct mt_worker {
	pthread_t thread;
	char *top[MT_MAXT];		/* stacks, each grown down from here */
	int ntop;			/* how many, grown one after another */
	int cpu;			/* -1: any */
	uint32_t go;			/* futex: bumped to start a run */
	uint64_t t0, t1;
	/* How far it got, read by the prober on the other CPU. */
	volatile unsigned long progress __attribute__((aligned(64)));
} __attribute__((aligned(64)));

static struct mt_worker mt_w[MT_MAXT];
static uint32_t mt_done;		/* futex: workers finished */
static volatile int mt_quit;
static volatile int mt_stop;		/* the probe is done: stop growing */
static int mt_fd = -1;

/* The stacks of one sample: what to unmap afterwards. */
static uintptr_t mt_map[MT_MAXT];
static size_t mt_maplen[MT_MAXT];
static int mt_nmap;

static long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu < 0) {
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
	} else {
		CPU_SET(cpu, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

static void *mt_worker_main(void *arg)
{
	struct mt_worker *w = arg;
	uint32_t seen = 0;
	int pinned = -1;

	for (;;) {
		uint32_t g;

		while ((g = __atomic_load_n(&w->go, __ATOMIC_ACQUIRE)) == seen)
			futex(&w->go, FUTEX_WAIT_PRIVATE, seen);
		seen = g;
		if (mt_quit)
			return NULL;
		if (w->cpu != pinned) {
			pin_self(w->cpu);
			pinned = w->cpu;
		}
		w->t0 = now_ns();
		for (int s = 0; s < w->ntop && !mt_stop; s++) {
			volatile char *top = w->top[s];

			for (unsigned long i = 1; i <= MT_PAGES && !mt_stop; i++) {
				top[-(long)(i * PG)] = 1;
				w->progress++;
			}
		}
		w->t1 = now_ns();
		__atomic_add_fetch(&mt_done, 1, __ATOMIC_RELEASE);
		futex(&mt_done, FUTEX_WAKE_PRIVATE, 1);
	}
}

/* Start workers 0..n-1 (their stacks ready); mt_wait() for them. */
static void mt_start(int n)
{
	__atomic_store_n(&mt_done, 0, __ATOMIC_RELEASE);
	mt_stop = 0;
	for (int i = 0; i < n; i++) {
		mt_w[i].progress = 0;
		__atomic_add_fetch(&mt_w[i].go, 1, __ATOMIC_RELEASE);
		futex(&mt_w[i].go, FUTEX_WAKE_PRIVATE, 1);
	}
}

static void mt_wait(int n)
{
	uint32_t d;

	while ((d = __atomic_load_n(&mt_done, __ATOMIC_ACQUIRE)) < (uint32_t)n)
		futex(&mt_done, FUTEX_WAIT_PRIVATE, d);
}

static void mt_unmap(void)
{
	for (int i = 0; i < mt_nmap; i++)
		munmap((void *)mt_map[i], mt_maplen[i]);
	mt_nmap = 0;
}

/*
 * Fresh stacks of @kind for workers 0..n-1; 0, or -errno with *what
 * naming the call that failed (nothing left mapped).
 */
static int mt_make(enum mt_kind kind, int n, const char **what)
{
	mt_nmap = 0;
	if (kind == MT_ARENA) {
		struct stackres_arena a = {
			.slot = MT_STACK, .nslots = n, .guard = MT_GUARD,
			.flags = STACKRES_MAP,
		};

		*what = "ARENA";
		if (ioctl(mt_fd, STACKRES_IOC_ARENA, &a))
			return -errno;
		mt_map[0] = a.start;
		mt_maplen[0] = n * MT_STACK;
		mt_nmap = 1;
		for (int i = 0; i < n; i++) {
			mt_w[i].top[0] = (char *)(uintptr_t)a.start + (i + 1) * MT_STACK;
			mt_w[i].ntop = 1;
		}
		return 0;
	}
	for (int i = 0; i < n; i++) {
		uintptr_t start;

		if (kind == MT_LAZY) {
			char *p = mmap(NULL, MT_STACK, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				       -1, 0);

			*what = "mmap";
			if (p == MAP_FAILED)
				goto fail;
			start = (uintptr_t)p;
			mt_map[mt_nmap] = start;
			mt_maplen[mt_nmap++] = MT_STACK;
			*what = "mprotect";
			if (mprotect(p, MT_GUARD, PROT_NONE))
				goto fail;
		} else {
			struct stackres_reg r = {
				.len = MT_STACK, .guard = MT_GUARD,
				.chunk = mt_chunk[kind],
				.flags = STACKRES_MAP,
			};

			*what = "REGISTER";
			if (ioctl(mt_fd, STACKRES_IOC_REGISTER, &r))
				goto fail;
			start = r.start;
			mt_map[mt_nmap] = start;
			mt_maplen[mt_nmap++] = MT_STACK;
		}
		mt_w[i].top[0] = (char *)start + MT_STACK;
		mt_w[i].ntop = 1;
	}
	return 0;
fail:
	{
		int err = -errno;

		mt_unmap();
		return err;
	}
}

/* ------------------------------------------------------------------ */
/* Aggregate growth of 1, 2 and 4 threads                              */

/* One sample: pages/s of n threads growing fresh @kind stacks. */
static double mt_grow_sample(enum mt_kind kind, int n, int *err,
			     const char **what)
{
	uint64_t t0 = UINT64_MAX, t1 = 0;

	*err = mt_make(kind, n, what);
	if (*err)
		return 0;
	for (int i = 0; i < n; i++)
		mt_w[i].cpu = -1;
	mt_start(n);
	mt_wait(n);
	for (int i = 0; i < n; i++) {
		if (mt_w[i].t0 < t0)
			t0 = mt_w[i].t0;
		if (mt_w[i].t1 > t1)
			t1 = mt_w[i].t1;
	}
	mt_unmap();
	return n * (double)MT_PAGES * 1e9 / (double)(t1 - t0);
}

static void mt_grow(const char *why)
{
	int n = reps(30);
	double *v = calloc((size_t)MT_NKINDS * MT_NCOUNTS * n, sizeof(*v));
	char dead[MT_NKINDS][MT_NCOUNTS][200] = { 0 };

	if (!v)
		abort();
	for (int s = 0; s < n; s++) {
		for (int kk = 0; kk < MT_NKINDS; kk++) {
			/* A different kind first in every sample. */
			int k = (kk + s) % MT_NKINDS;

			for (int c = 0; c < MT_NCOUNTS; c++) {
				const char *what = "";
				int err = 0;

				if (k != MT_LAZY && why) {
					snprintf(dead[k][c], sizeof(dead[k][c]),
						 "%s", why);
					continue;
				}
				if (dead[k][c][0])
					continue;
				v[(k * MT_NCOUNTS + c) * n + s] =
					mt_grow_sample(k, mt_threads[c], &err, &what);
				if (err)
					snprintf(dead[k][c], sizeof(dead[k][c]),
						 "%s for %d stacks: %s", what,
						 mt_threads[c], strerror(-err));
			}
		}
	}
	for (int k = 0; k < MT_NKINDS; k++) {
		char base[40];

		snprintf(base, sizeof(base), "mt-grow-%s-1", mt_kind_name[k]);
		for (int c = 0; c < MT_NCOUNTS; c++) {
			char name[40];

			snprintf(name, sizeof(name), "mt-grow-%s-%d",
				 mt_kind_name[k], mt_threads[c]);
			if (dead[k][c][0])
				report_na(name, "pages/s", base, "%s", dead[k][c]);
			else
				report(name, "pages/s", base,
				       v + (k * MT_NCOUNTS + c) * n, n);
		}
	}
	free(v);
}

/* ------------------------------------------------------------------ */
/* Another thread's page faults while one thread grows                 */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * One sample: this thread (on CPU 0) writes each page of a fresh mapping
 * of its own while worker 0 (on CPU 1) grows fresh @kind stacks, one after
 * another (made beforehand: nothing is mapped or unmapped meanwhile), from
 * when the grower is an eighth into its first stack until the probe is
 * done; kind < 0: nobody grows.  Returns 1 with the mean (ns), the 99th
 * percentile and the slowest (us) of the faults, 0 when the grower ran
 * out of stacks before the probe was done (the sample does not count), or
 * -errno.
 */
static int mt_probe_sample(int kind, double *mean, double *p99, double *max,
			   const char **what)
{
	const size_t plen = MT_PROBE_PAGES * PG;
	uint64_t lat[MT_PROBE_PAGES], sum = 0;
	unsigned long end = 0;
	char *q, *probe;
	int err;

	if (kind >= 0) {
		err = mt_make(kind, MT_MAXT, what);
		if (err)
			return err;
		/* All of them for worker 0. */
		for (int i = 1; i < MT_MAXT; i++)
			mt_w[0].top[i] = mt_w[i].top[0];
		mt_w[0].ntop = MT_MAXT;
		mt_w[0].cpu = 1;
	}
	/* Its own VMA: a hole on both sides, so that nothing merges with it. */
	q = mmap(NULL, plen + 2 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q == MAP_FAILED) {
		*what = "mmap";
		err = -errno;
		mt_unmap();
		return err;
	}
	munmap(q, PG);
	munmap(q + PG + plen, PG);
	probe = q + PG;

	if (kind >= 0) {
		mt_start(1);
		while (mt_w[0].progress < MT_PROBE_AFTER)
			;
	}
	for (int i = 0; i < MT_PROBE_PAGES; i++) {
		uint64_t t = now_ns();

		((volatile char *)probe)[i * PG] = 1;
		lat[i] = now_ns() - t;
		sum += lat[i];
	}
	if (kind >= 0) {
		end = mt_w[0].progress;
		mt_stop = 1;
		mt_wait(1);
	}
	munmap(probe, plen);
	mt_unmap();
	if (end >= MT_MAXT * MT_PAGES)
		return 0;
	qsort(lat, MT_PROBE_PAGES, sizeof(lat[0]), cmp_u64);
	*mean = (double)sum / MT_PROBE_PAGES;
	*p99 = lat[MT_PROBE_PAGES * 99 / 100] / 1000.0;
	*max = lat[MT_PROBE_PAGES - 1] / 1000.0;
	return 1;
}

static void mt_probe(const char *why)
{
	/* slot 0: idle; slot k + 1: a grower of kind k */
	const int nk = MT_NKINDS + 1;
	int n = reps(30), got[MT_NKINDS + 1] = { 0 };
	double *v = calloc((size_t)3 * nk * n, sizeof(double));
	char dead[MT_NKINDS + 1][200] = { 0 };
	cpu_set_t old;
	int late = 0;

	if (!v)
		abort();
	sched_getaffinity(0, sizeof(old), &old);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		for (int k = 0; k < nk; k++)
			snprintf(dead[k], sizeof(dead[k]),
				 "needs 2 CPUs: the probe and the grower run at once");
		goto report;
	}
	pin_self(0);
	for (int s = 0; s < n; s++) {
		for (int kk = 0; kk < nk; kk++) {
			int k = (kk + s) % nk, tries;
			const char *what = "";

			if (k > 0 && why) {
				snprintf(dead[k], sizeof(dead[k]), "%s", why);
				continue;
			}
			if (dead[k][0])
				continue;
			for (tries = 0; tries < 3; tries++) {
				double *o = v + 3 * (k * n + got[k]);
				int r = mt_probe_sample(k - 1, o, o + 1, o + 2, &what);

				if (r < 0) {
					snprintf(dead[k], sizeof(dead[k]), "%s: %s",
						 what, strerror(-r));
					break;
				}
				if (r > 0) {
					got[k]++;
					break;
				}
				late++;
			}
		}
	}
	sched_setaffinity(0, sizeof(old), &old);
	if (late)
		fprintf(stderr, "stackbench: mt-probe: %d sample(s) again, the grower ran out of stacks first\n",
			late);
report:
	for (int k = 0; k < nk; k++) {
		static const char *const sfx[3] = { "", "-p99", "-max" };
		static const char *const unit[3] = { "ns/page", "us", "us" };
		const char *kname = k ? mt_kind_name[k - 1] : "idle";

		for (int j = 0; j < 3; j++) {
			char name[40], base[40];
			double col[n];

			snprintf(name, sizeof(name), "mt-probe-%s%s", kname, sfx[j]);
			snprintf(base, sizeof(base), "mt-probe-idle%s", sfx[j]);
			if (dead[k][0] || !got[k]) {
				report_na(name, unit[j], base, "%s", dead[k][0] ? dead[k] :
					  "the grower always ran out of stacks before the probe was done");
				continue;
			}
			for (int i = 0; i < got[k]; i++)
				col[i] = v[3 * (k * n + i) + j];
			report(name, unit[j], base, col, got[k]);
		}
	}
	free(v);
}

void bench_mtgrow(void)
{
	const char *why = stackres_absent();

	if (!why) {
		mt_fd = open("/dev/stackres", O_RDWR | O_CLOEXEC);
		if (mt_fd < 0)
			why = "open /dev/stackres failed";
	}
	mt_quit = 0;
	for (int i = 0; i < MT_MAXT; i++) {
		mt_w[i].cpu = -1;
		mt_w[i].go = 0;
		if (pthread_create(&mt_w[i].thread, NULL, mt_worker_main, &mt_w[i]))
			abort();
	}
	mt_grow(why);
	mt_probe(why);
	mt_quit = 1;
	for (int i = 0; i < MT_MAXT; i++) {
		__atomic_add_fetch(&mt_w[i].go, 1, __ATOMIC_RELEASE);
		futex(&mt_w[i].go, FUTEX_WAKE_PRIVATE, 1);
		pthread_join(mt_w[i].thread, NULL);
	}
	if (mt_fd >= 0)
		close(mt_fd);
	mt_fd = -1;
}
