// SPDX-License-Identifier: GPL-2.0
/*
 * The dense group: many small guarded stacks (issue 10), made three ways.
 * Every stack is DSTACK (64 KiB) of address space whose bottom DGUARD
 * (4 KiB) is its guard and whose rest is read/write, demand-paged:
 *
 *   mmap-mprotect  mmap RW + mprotect(PROT_NONE) of the bottom page, per
 *                  stack: two VMAs each (the baseline)
 *   stackres-map   REGISTER with STACKRES_MAP per stack, everything above
 *                  the guard committed: two VMAs each
 *   arena          one STACKRES_IOC_ARENA (STACKRES_MAP) for all of them:
 *                  one VMA, guard markers (MADV_GUARD_INSTALL) per slot
 *
 * Cases (bench/README.md, "Dense stacks"):
 *   dense-create-*  time to create DCREATE stacks, per stack.  The per-stack
 *                   methods need 2 * DCREATE VMAs and (REGISTER) as many
 *                   reservations, more than the defaults allow: the case
 *                   raises vm.max_map_count and stackres's max_reservations
 *                   in the guest for its duration and restores them.
 *   dense-growth-*  page faults, top-down, in fresh arena slots against the
 *                   same pages of a fresh plain RW mapping
 *   dense-max-*     stacks per process at the default limits: the per-stack
 *                   methods until a call fails, the arena at DMAX_ARENA slots
 *                   (shrunk by bisection when it does not fit)
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/stackres.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif

#define DSTACK		(64UL << 10)
#define DGUARD		PG
#define DPAGES		((DSTACK - DGUARD) / PG)	/* usable pages a stack */

/*
 * 100,000 stacks of 64 KiB are 6.25 GiB of address space: i386's 3 GiB
 * user space holds 2 GiB of them (32,768), still more than the default
 * vm.max_map_count allows with two VMAs each.
 */
#if defined(__x86_64__)
#define DCREATE		100000L
#define DMAX_ARENA	1000000UL		/* 64 GiB, 128 MiB of page tables */
#else
#define DCREATE		32768L
#define DMAX_ARENA	((3UL << 30) / DSTACK)	/* all of it; shrinks to fit */
#endif
#define DCREATE_MAP_COUNT	262144L		/* > 2 * DCREATE + the rest */
#define DGROW_SLOTS	128			/* 8 MiB, 1,920 pages touched */
#define DMAX_CAP	200000L			/* > any default ceiling */

#define MAP_COUNT	"/proc/sys/vm/max_map_count"
#define MAX_RES		"/sys/module/stackres/parameters/max_reservations"

static uintptr_t *daddr;	/* the per-stack methods' stacks */

enum dmethod { D_MMAP, D_REGISTER };

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int bad;

	if (!f)
		return -errno;
	bad = fprintf(f, "%ld\n", v) < 0;
	bad |= fclose(f) != 0;
	return bad ? -EIO : 0;
}

/* Lines of /proc/self/maps: the VMAs of this process. */
static long vma_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* VmPTE of /proc/self/status, KiB. */
static long vm_pte_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPTE: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/*
 * One stack by @m; 0 or -errno, *what names the call that failed.  A
 * stack whose mprotect fails is unmapped again: it does not count.
 */
static int stack_make(enum dmethod m, int fd, uintptr_t *addr, const char **what)
{
	if (m == D_MMAP) {
		char *p = mmap(NULL, DSTACK, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		*what = "mmap";
		if (p == MAP_FAILED)
			return -errno;
		*what = "mprotect";
		if (mprotect(p, DGUARD, PROT_NONE)) {
			int err = -errno;

			munmap(p, DSTACK);
			return err;
		}
		*addr = (uintptr_t)p;
	} else {
		struct stackres_reg r = {
			.len = DSTACK, .guard = DGUARD, .commit = DSTACK - DGUARD,
			.flags = STACKRES_MAP,
		};

		*what = "REGISTER";
		if (ioctl(fd, STACKRES_IOC_REGISTER, &r))
			return -errno;
		*addr = r.start;
	}
	return 0;
}

/* Up to @max stacks by @m; returns how many, the first failure in *err. */
static long stacks_make(enum dmethod m, int fd, long max, int *err,
			const char **what)
{
	long k;

	*err = 0;
	for (k = 0; k < max; k++) {
		*err = stack_make(m, fd, &daddr[k], what);
		if (*err)
			break;
	}
	return k;
}

static void stacks_free(long n)
{
	for (long k = 0; k < n; k++)
		munmap((void *)daddr[k], DSTACK);
}

/* ARENA of @nslots stacks mapped by the module; 0 or -errno. */
static int arena_make(int fd, uint64_t nslots, uint64_t *start)
{
	struct stackres_arena a = {
		.slot = DSTACK, .nslots = nslots, .guard = DGUARD,
		.flags = STACKRES_MAP,
	};

	if (ioctl(fd, STACKRES_IOC_ARENA, &a))
		return -errno;
	*start = a.start;
	return 0;
}

static int sr_open(void)
{
	return open("/dev/stackres", O_RDWR | O_CLOEXEC);
}

/* ------------------------------------------------------------------ */
/* Creation of DCREATE stacks, us per stack                            */

static void create_per_stack(const char *name, enum dmethod m)
{
	const char *base = "dense-create-mmap-mprotect", *what = "";
	int n = reps(5), fd = -1, err;
	double v[n];

	for (int i = 0; i < n; i++) {
		uint64_t t0;
		long made;

		if (m == D_REGISTER)
			fd = sr_open();
		t0 = now_ns();
		made = stacks_make(m, fd, DCREATE, &err, &what);
		v[i] = (now_ns() - t0) / 1000.0 / DCREATE;
		if (fd >= 0)
			close(fd);
		stacks_free(made);
		if (err) {
			report_na(name, "us/stack", base, "%s #%ld failed: %s",
				  what, made, strerror(-err));
			return;
		}
	}
	report(name, "us/stack", base, v, n);
}

static void create_arena(void)
{
	const char *name = "dense-create-arena", *base = "dense-create-mmap-mprotect";
	int n = reps(5);
	double v[n];

	for (int i = 0; i < n; i++) {
		int fd = sr_open(), err;
		uint64_t t0, start = 0;

		t0 = now_ns();
		err = arena_make(fd, DCREATE, &start);
		v[i] = (now_ns() - t0) / 1000.0 / DCREATE;
		close(fd);
		if (err) {
			report_na(name, "us/stack", base, "ARENA of %ld slots: %s",
				  DCREATE, strerror(-err));
			return;
		}
		munmap((void *)(uintptr_t)start, DCREATE * DSTACK);
	}
	report(name, "us/stack", base, v, n);
}

static void dense_create(void)
{
	const char *why = stackres_absent();
	long old_mc = read_long(MAP_COUNT), old_res = -1;
	int err;

	/* The per-stack methods need 2 * DCREATE VMAs: raise the limit. */
	err = old_mc < 0 ? -ENOENT : write_long(MAP_COUNT, DCREATE_MAP_COUNT);
	if (err) {
		report_na("dense-create-mmap-mprotect", "us/stack",
			  "dense-create-mmap-mprotect",
			  "cannot raise vm.max_map_count to %ld: %s",
			  DCREATE_MAP_COUNT, strerror(-err));
	} else {
		create_per_stack("dense-create-mmap-mprotect", D_MMAP);
	}
	if (why) {
		report_na("dense-create-stackres-map", "us/stack",
			  "dense-create-mmap-mprotect", "%s", why);
		report_na("dense-create-arena", "us/stack",
			  "dense-create-mmap-mprotect", "%s", why);
		goto out;
	}
	/* ... and REGISTER as many reservations. */
	old_res = read_long(MAX_RES);
	if (!err)
		err = old_res < 0 ? -ENOENT : write_long(MAX_RES, DCREATE_MAP_COUNT);
	if (err)
		report_na("dense-create-stackres-map", "us/stack",
			  "dense-create-mmap-mprotect",
			  "cannot raise vm.max_map_count and max_reservations to %ld: %s",
			  DCREATE_MAP_COUNT, strerror(-err));
	else
		create_per_stack("dense-create-stackres-map", D_REGISTER);
	create_arena();
out:
	if (old_res >= 0)
		write_long(MAX_RES, old_res);
	if (old_mc >= 0)
		write_long(MAP_COUNT, old_mc);
}

/* ------------------------------------------------------------------ */
/* Growth: demand faults in arena slots against a plain mapping        */

/* Write each usable page of every slot, top-down; ns per page. */
static double touch_slots(char *base)
{
	uint64_t t0 = now_ns();

	for (long s = DGROW_SLOTS - 1; s >= 0; s--) {
		volatile char *slot = base + s * DSTACK;

		for (unsigned long off = DSTACK - PG; off >= DGUARD; off -= PG)
			slot[off] = 1;
	}
	return (double)(now_ns() - t0) / (DGROW_SLOTS * DPAGES);
}

static void dense_growth(void)
{
	const size_t len = DGROW_SLOTS * DSTACK;
	const char *why = stackres_absent();
	int n = reps(9);
	double v[n];

	/* Baseline: the same pages of a fresh RW mapping, no guards. */
	for (int i = 0; i < n; i++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			report_na("dense-growth-lazy", "ns/page", "dense-growth-lazy",
				  "mmap: %s", strerror(errno));
			return;
		}
		v[i] = touch_slots(p);
		munmap(p, len);
	}
	report("dense-growth-lazy", "ns/page", "dense-growth-lazy", v, n);

	if (why) {
		report_na("dense-growth-arena", "ns/page", "dense-growth-lazy",
			  "%s", why);
		return;
	}
	for (int i = 0; i < n; i++) {
		int fd = sr_open(), err;
		uint64_t start = 0;

		err = arena_make(fd, DGROW_SLOTS, &start);
		if (err) {
			report_na("dense-growth-arena", "ns/page", "dense-growth-lazy",
				  "ARENA: %s", strerror(-err));
			close(fd);
			return;
		}
		v[i] = touch_slots((char *)(uintptr_t)start);
		munmap((void *)(uintptr_t)start, len);
		close(fd);
	}
	report("dense-growth-arena", "ns/page", "dense-growth-lazy", v, n);
}

/* ------------------------------------------------------------------ */
/* Stacks per process at the default limits                            */

static void max_per_stack(const char *name, enum dmethod m)
{
	const char *what = "", *base = "dense-max-mmap-mprotect";
	long vmas = vma_count(), made;
	int fd = m == D_REGISTER ? sr_open() : -1, err;
	double v;

	made = stacks_make(m, fd, DMAX_CAP, &err, &what);
	fprintf(stderr, "stackbench: %s: %ld stacks, then %s: %s "
		"(vm.max_map_count %ld, stackres max_reservations %ld; VMAs %ld before, %ld after)\n",
		name, made, what, err ? strerror(-err) : "no failure",
		read_long(MAP_COUNT), read_long(MAX_RES), vmas, vma_count());
	if (fd >= 0)
		close(fd);
	stacks_free(made);
	if (!err) {
		report_na(name, "stacks", base, "no failure within %ld stacks",
			  DMAX_CAP);
		return;
	}
	v = made;
	report(name, "stacks", base, &v, 1);
}

/*
 * DMAX_ARENA slots, or when that does not fit (ENOMEM: address space or
 * memory; EINVAL: larger than the address space) the most that do, found
 * by bisection to within 256 slots (16 MiB).
 */
static void max_arena(void)
{
	const char *name = "dense-max-arena", *base = "dense-max-mmap-mprotect";
	uint64_t ok = 0, bad = DMAX_ARENA + 1, want = DMAX_ARENA, start = 0;
	long vmas = vma_count(), pte = vm_pte_kb(), dpte;
	int fd = sr_open(), err, tries = 0;
	uint64_t t0, t1;
	double v;

	/* ok: the largest size that fitted, bad: the smallest that did not */
	for (;;) {
		if (++tries > 40) {	/* cannot happen; never loop forever */
			err = -EAGAIN;
			break;
		}
		t0 = now_ns();
		err = arena_make(fd, want, &start);
		t1 = now_ns();
		if (!err) {
			ok = want;
			if (bad - ok <= 256)
				break;		/* mapped: keep it */
			munmap((void *)(uintptr_t)start, want * DSTACK);
		} else if (err == -ENOMEM || err == -EINVAL) {
			bad = want;
			if (bad - ok <= 256 && ok) {
				want = ok;	/* map the last that fitted */
				continue;
			}
			if (bad - ok <= 256)
				break;
		} else {
			break;
		}
		want = ok + (bad - ok) / 2;
	}
	if (err) {
		report_na(name, "stacks", base, "ARENA of %llu slots: %s",
			  (unsigned long long)want, strerror(-err));
		close(fd);
		return;
	}
	/* The first and the last slot are stacks: their top pages work. */
	((volatile char *)(uintptr_t)start)[DSTACK - 1] = 1;
	((volatile char *)(uintptr_t)start)[ok * DSTACK - 1] = 1;
	dpte = vm_pte_kb() - pte;
	fprintf(stderr, "stackbench: %s: %llu slots of 64 KiB (%.2f GiB; %d ARENA call(s)); "
		"that ARENA took %.3f s (%.3f us/slot); %ld VMA(s) more; page tables +%ld KiB "
		"(%.0f bytes/slot); vm.max_map_count %ld\n", name,
		(unsigned long long)ok, ok * (double)DSTACK / (1 << 30), tries,
		(t1 - t0) / 1e9, (t1 - t0) / 1e3 / ok, vma_count() - vmas,
		dpte, dpte * 1024.0 / ok, read_long(MAP_COUNT));
	munmap((void *)(uintptr_t)start, ok * DSTACK);
	close(fd);
	v = ok;
	report(name, "stacks", base, &v, 1);
}

static void dense_max(void)
{
	const char *why = stackres_absent();

	max_per_stack("dense-max-mmap-mprotect", D_MMAP);
	if (why) {
		report_na("dense-max-stackres-map", "stacks",
			  "dense-max-mmap-mprotect", "%s", why);
		report_na("dense-max-arena", "stacks",
			  "dense-max-mmap-mprotect", "%s", why);
		return;
	}
	max_per_stack("dense-max-stackres-map", D_REGISTER);
	max_arena();
}

void bench_dense(void)
{
	if (!daddr) {
		daddr = malloc(DMAX_CAP * sizeof(*daddr));
		if (!daddr)
			abort();
	}
	/* At the default limits first: dense_create changes them for a while. */
	dense_max();
	dense_create();
	dense_growth();
}
