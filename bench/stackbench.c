// SPDX-License-Identifier: GPL-2.0
/*
 * stackbench: every way of growing, creating and recycling thread stacks,
 * measured side by side in one guest (bench/README.md explains the cases).
 *
 *   stackbench [-r MULT] [-R ROUNDS] [GROUP...]
 *                                     GROUP: growth ktouch churn create scale upcall greenrt
 *                                            dense libc gcbarrier mtgrow
 *   stackbench -l                     list the cases (name unit baseline)
 *
 * Features are detected at run time: without /dev/stackres or exit_free a
 * case prints "@@NA" with the reason, so the program works at every stage of
 * the patch series.  Only the measured region of a case is timed; set-up and
 * tear-down (mmap, REGISTER, munmap, TRIM, ...) are outside the clock unless
 * they are what the case measures.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <linux/stackres.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif

double rep_mult = 1.0;
static int rounds = 3;

/* Samples per call of a case: its share of n over all rounds. */
int reps(int n)
{
	int r = (int)((n * rep_mult + rounds - 1) / rounds);

	return r < 1 ? 1 : r;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

/*
 * The groups run `rounds` times in turn, so slow drifts of the (shared,
 * noisy) host hit every case alike; samples accumulate per case and the
 * cumulative statistics are printed after every round (bench/run keeps the
 * last line of each case, so a guest that dies late still leaves results).
 */
struct acc {
	char name[40], unit[16], base[40], why[200];
	int n, cap;
	double *v;
};

static struct acc accs[128];
static int nacc;

static struct acc *acc_get(const char *name, const char *unit, const char *base)
{
	struct acc *a;

	for (int i = 0; i < nacc; i++)
		if (!strcmp(accs[i].name, name))
			return &accs[i];
	if (nacc == (int)(sizeof(accs) / sizeof(accs[0])))
		abort();
	a = &accs[nacc++];
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->unit, sizeof(a->unit), "%s", unit);
	snprintf(a->base, sizeof(a->base), "%s", base);
	return a;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void report(const char *name, const char *unit, const char *base,
	    double *v, int n)
{
	struct acc *a = acc_get(name, unit, base);

	if (a->n + n > a->cap) {
		a->cap = (a->n + n) * 2;
		a->v = realloc(a->v, a->cap * sizeof(*a->v));
		if (!a->v)
			abort();
	}
	memcpy(a->v + a->n, v, n * sizeof(*v));
	a->n += n;
}

void report_na(const char *name, const char *unit, const char *base,
	       const char *fmt, ...)
{
	struct acc *a = acc_get(name, unit, base);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

static void print_results(void)
{
	for (int i = 0; i < nacc; i++) {
		struct acc *a = &accs[i];
		double med;
		int n = a->n;

		if (!n) {
			printf("@@NA %s %s %s %s\n", a->name, a->unit, a->base,
			       a->why);
			continue;
		}
		qsort(a->v, n, sizeof(*a->v), cmp_double);
		med = n % 2 ? a->v[n / 2] : (a->v[n / 2 - 1] + a->v[n / 2]) / 2;
		/* 7 digits: counts (dense-max-*, stacks) must stay exact */
		printf("@@R %s %s %s %d %.7g %.7g %.7g\n", a->name, a->unit,
		       a->base, n, a->v[0], med, a->v[n - 1]);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Feature detection                                                   */

static char stackres_why[128];

const char *stackres_absent(void)
{
	int fd = open("/dev/stackres", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return NULL;
	}
	snprintf(stackres_why, sizeof(stackres_why),
		 "no /dev/stackres (open: %s; module not built or not loaded)",
		 strerror(errno));
	return stackres_why;
}

static int sr_open(void)
{
	return open("/dev/stackres", O_RDWR | O_CLOEXEC);
}

/* REGISTER; returns the id or -errno, sets *start. */
static long sr_register(int fd, uint64_t *start, uint64_t len, uint64_t guard,
			uint64_t commit, uint64_t chunk, uint32_t flags)
{
	struct stackres_reg r = {
		.start = *start, .len = len, .guard = guard, .commit = commit,
		.chunk = chunk, .flags = flags,
	};

	if (ioctl(fd, STACKRES_IOC_REGISTER, &r))
		return -errno;
	*start = r.start;
	return r.id;
}

/* ------------------------------------------------------------------ */
/* Case 1: growth of an 8 MiB stack touched top-down, cost per page    */

#define GROW_PAGES (GROW_LEN / PG)

static void touch_down(char *top, size_t len)
{
	for (size_t off = PG; off <= len; off += PG)
		((volatile char *)top)[-(long)off] = 1;
}

static double time_touch(char *top, size_t len)
{
	uint64_t t0 = now_ns();

	touch_down(top, len);
	return (double)(now_ns() - t0) / (len / PG);
}

static void growth_lazy(void)
{
	int n = reps(9);
	double v[n];

	for (int i = 0; i < n; i++) {
		char *p = mmap(NULL, GROW_LEN, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			report_na("growth-lazy", "ns/page", "growth-lazy",
				  "mmap: %s", strerror(errno));
			return;
		}
		v[i] = time_touch(p + GROW_LEN, GROW_LEN);
		munmap(p, GROW_LEN);
	}
	report("growth-lazy", "ns/page", "growth-lazy", v, n);
}

/* One stackres growth case: len = 8 MiB + one guard page, nothing committed. */
static void growth_stackres_case(const char *name, const char *base,
				 uint64_t chunk, uint32_t flags)
{
	const char *why = stackres_absent();
	int n = reps(9), fd;
	double v[n];

	if (why) {
		report_na(name, "ns/page", base, "%s", why);
		return;
	}
	fd = sr_open();
	for (int i = 0; i < n; i++) {
		uint64_t start = 0;
		long id = sr_register(fd, &start, GROW_LEN + PG, PG, 0, chunk,
				      STACKRES_MAP | flags);

		if (id < 0) {
			report_na(name, "ns/page", base, "REGISTER: %s",
				  strerror(-id));
			close(fd);
			return;
		}
		v[i] = time_touch((char *)(uintptr_t)start + GROW_LEN + PG,
				  GROW_LEN);
		munmap((void *)(uintptr_t)start, GROW_LEN + PG);
	}
	close(fd);
	report(name, "ns/page", base, v, n);
}

/*
 * STACKRES_LARGE_FOLIOS: 8 MiB above a 64 KiB guard, placed 64 KiB-aligned
 * so that every growth step is made of whole 64 KiB folios (the guest's
 * hugepages-64kB policy is madvise: qemu/init).  Registers the stack and
 * returns its top, or 0 with *why set.
 */
#define FOLIO	STACKRES_FOLIO_SIZE

static char *folio_stack(int fd, uint32_t flags, size_t len, long *err)
{
	struct stackres_reg r = {
		.len = len + FOLIO, .guard = FOLIO, .align = FOLIO,
		.flags = STACKRES_MAP | STACKRES_LARGE_FOLIOS | flags,
	};

	if (ioctl(fd, STACKRES_IOC_REGISTER, &r)) {
		*err = errno;
		return NULL;
	}
	return (char *)(uintptr_t)(r.start + r.len);
}

static void growth_folios_case(const char *name, uint32_t flags)
{
	const char *why = stackres_absent();
	int n = reps(9), fd;
	double v[n];

	if (why) {
		report_na(name, "ns/page", "growth-lazy", "%s", why);
		return;
	}
	fd = sr_open();
	for (int i = 0; i < n; i++) {
		long err = 0;
		char *top = folio_stack(fd, flags, GROW_LEN, &err);

		if (!top) {
			report_na(name, "ns/page", "growth-lazy",
				  "REGISTER|LARGE_FOLIOS: %s", strerror(err));
			close(fd);
			return;
		}
		v[i] = time_touch(top, GROW_LEN);
		munmap(top - GROW_LEN - FOLIO, GROW_LEN + FOLIO);
	}
	close(fd);
	report(name, "ns/page", "growth-lazy", v, n);
}

/*
 * What growth costs in memory: resident bytes of a stack after a shallow
 * dive (3 pages touched below its top), by mincore() over the stack.
 */
#define DIVE_PAGES	3
#define DIVE_LEN	(1UL << 20)

static double resident_bytes(char *top, size_t len)
{
	unsigned char vec[DIVE_LEN / 4096];
	size_t pages = len / PG, n = 0;

	if (pages > sizeof(vec) || mincore(top - len, len, vec))
		return -1;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return (double)n * PG;
}

static void resident_case(const char *name, int kind)
{
	int n = reps(3), fd = -1;
	double v[n];

	if (kind && stackres_absent()) {
		report_na(name, "bytes", "resident-lazy", "%s",
			  stackres_absent());
		return;
	}
	if (kind)
		fd = sr_open();
	for (int i = 0; i < n; i++) {
		char *top, *map;
		long err = 0;
		uint64_t start = 0;
		size_t maplen = DIVE_LEN + FOLIO;

		if (kind == 0) {
			map = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
			top = map == MAP_FAILED ? NULL : map + maplen;
		} else if (kind == 1) {
			top = sr_register(fd, &start, maplen, FOLIO, 0, 0,
					  STACKRES_MAP) < 0 ? NULL :
				(char *)(uintptr_t)start + maplen;
		} else {
			top = folio_stack(fd, 0, DIVE_LEN, &err);
		}
		if (!top) {
			report_na(name, "bytes", "resident-lazy",
				  "creating the stack failed");
			if (fd >= 0)
				close(fd);
			return;
		}
		touch_down(top, DIVE_PAGES * PG);
		v[i] = resident_bytes(top, DIVE_LEN);
		munmap(top - maplen, maplen);
	}
	if (fd >= 0)
		close(fd);
	report(name, "bytes", "resident-lazy", v, n);
}

/* SIGSEGV growth: the handler mprotects sv_step pages at the fault. */
static volatile uintptr_t sv_lo, sv_hi;
static volatile unsigned long sv_step;

/* Upcall cases: where the handler jumps back to, and when it was entered. */
static sigjmp_buf up_env;
static volatile int up_armed;
static volatile uint64_t up_t1;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr & ~(PG - 1), lo;

	(void)sig; (void)uc;
	if (up_armed) {
		up_t1 = now_ns();
		up_armed = 0;
		siglongjmp(up_env, 1);
	}
	if (a < sv_lo || a >= sv_hi) {
		/* Not ours: die on the re-executed access. */
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	lo = a + PG - sv_step * PG;
	if (lo < sv_lo || lo > a)
		lo = sv_lo;
	if (mprotect((void *)lo, a + PG - lo, PROT_READ | PROT_WRITE)) {
		/* Say why before dying on the re-executed access. */
		static const char msg[] = "stackbench: mprotect in the SIGSEGV handler failed\n";

		write(2, msg, sizeof(msg) - 1);
		signal(SIGSEGV, SIG_DFL);
	}
}

static void growth_sigsegv_case(const char *name, unsigned long step)
{
	int n = reps(9);
	double v[n];

	for (int i = 0; i < n; i++) {
		char *p = mmap(NULL, GROW_LEN + PG, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			report_na(name, "ns/page", "growth-lazy", "mmap: %s",
				  strerror(errno));
			return;
		}
		/* The bottom page stays PROT_NONE: the guard. */
		sv_lo = (uintptr_t)p + PG;
		sv_hi = (uintptr_t)p + PG + GROW_LEN;
		sv_step = step;
		v[i] = time_touch(p + PG + GROW_LEN, GROW_LEN);
		sv_lo = sv_hi = 0;
		munmap(p, GROW_LEN + PG);
	}
	report(name, "ns/page", "growth-lazy", v, n);
}

/*
 * MAP_GROWSDOWN: one page at the top of a hole of 8 MiB + 2 MiB (the
 * kernel keeps stack_guard_gap, 1 MiB, free below a growing stack).  Nothing
 * else maps memory while this runs, so the hole stays empty.
 */
static void growth_growsdown(void)
{
	const size_t hole = GROW_LEN + (2UL << 20);
	struct rlimit old, rl;
	int n = reps(9);
	double v[n];

	getrlimit(RLIMIT_STACK, &old);
	rl = old;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * GROW_LEN)
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= 2 * GROW_LEN ?
			      2 * GROW_LEN : rl.rlim_max;
	setrlimit(RLIMIT_STACK, &rl);
	for (int i = 0; i < n; i++) {
		char *area = mmap(NULL, hole + PG, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		char *top, *g;

		if (area == MAP_FAILED) {
			report_na("growth-growsdown", "ns/page", "growth-lazy",
				  "mmap: %s", strerror(errno));
			goto out;
		}
		top = area + hole + PG;
		g = mmap(top - PG, PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN,
			 -1, 0);
		if (g == MAP_FAILED) {
			report_na("growth-growsdown", "ns/page", "growth-lazy",
				  "mmap(MAP_GROWSDOWN): %s", strerror(errno));
			munmap(area, hole + PG);
			goto out;
		}
		munmap(area, hole);
		v[i] = time_touch(top, GROW_LEN);
		munmap(top - GROW_LEN, GROW_LEN);
	}
	report("growth-growsdown", "ns/page", "growth-lazy", v, n);
out:
	setrlimit(RLIMIT_STACK, &old);
}

/* userfaultfd: a handler thread answers each missing fault with ZEROPAGE. */
struct uffd_ctx {
	int uffd, stopfd;
	long served;
};

static void *uffd_thread(void *arg)
{
	struct uffd_ctx *c = arg;
	struct pollfd pfd[2] = {
		{ .fd = c->uffd, .events = POLLIN },
		{ .fd = c->stopfd, .events = POLLIN },
	};

	for (;;) {
		struct uffd_msg m;
		struct uffdio_zeropage zp;

		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents)
			return NULL;
		if (read(c->uffd, &m, sizeof(m)) != sizeof(m))
			continue;
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		zp.range.start = m.arg.pagefault.address & ~(PG - 1);
		zp.range.len = PG;
		zp.mode = 0;
		ioctl(c->uffd, UFFDIO_ZEROPAGE, &zp);
		c->served++;
	}
}

static void growth_userfaultfd(void)
{
	const char *name = "growth-userfaultfd";
	struct uffdio_api api = { .api = UFFD_API };
	struct uffd_ctx c = { .stopfd = -1 };
	int n = reps(9);
	pthread_t t;
	double v[n];

	/* poll() on a blocking userfaultfd always reports POLLERR. */
	c.uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (c.uffd < 0) {
		report_na(name, "ns/page", "growth-lazy", "userfaultfd: %s",
			  strerror(errno));
		return;
	}
	if (ioctl(c.uffd, UFFDIO_API, &api)) {
		report_na(name, "ns/page", "growth-lazy", "UFFDIO_API: %s",
			  strerror(errno));
		close(c.uffd);
		return;
	}
	c.stopfd = eventfd(0, EFD_CLOEXEC);
	pthread_create(&t, NULL, uffd_thread, &c);
	for (int i = 0; i < n; i++) {
		char *p = mmap(NULL, GROW_LEN, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)p, .len = GROW_LEN },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (p == MAP_FAILED || ioctl(c.uffd, UFFDIO_REGISTER, &reg)) {
			report_na(name, "ns/page", "growth-lazy",
				  "mmap/UFFDIO_REGISTER: %s", strerror(errno));
			n = 0;
			break;
		}
		v[i] = time_touch(p + GROW_LEN, GROW_LEN);
		ioctl(c.uffd, UFFDIO_UNREGISTER, &reg.range);
		munmap(p, GROW_LEN);
	}
	eventfd_write(c.stopfd, 1);
	pthread_join(t, NULL);
	close(c.stopfd);
	close(c.uffd);
	if (n)
		report(name, "ns/page", "growth-lazy", v, n);
}

static void bench_growth(void)
{
	growth_lazy();
	growth_stackres_case("growth-stackres", "growth-lazy", 0, 0);
	growth_stackres_case("growth-stackres-chunk1", "growth-lazy", PG, 0);
	growth_stackres_case("growth-stackres-populate", "growth-lazy", 0,
			     STACKRES_POPULATE);
	growth_folios_case("growth-stackres-folios", 0);
	growth_folios_case("growth-stackres-folios-populate",
			   STACKRES_POPULATE);
	resident_case("resident-lazy", 0);
	resident_case("resident-stackres", 1);
	resident_case("resident-stackres-folios", 2);
	growth_sigsegv_case("growth-sigsegv", 1);
	growth_sigsegv_case("growth-sigsegv-16", 16);
	growth_growsdown();
	growth_userfaultfd();
}

/* ------------------------------------------------------------------ */
/* Case 2: kernel-touch growth, read() of 64 KiB from a pipe           */

#define KT_LEN (64UL << 10)

static char kt_src[KT_LEN];

enum kt_mode { KT_RESIDENT, KT_COMMITTED, KT_STACKRES };

/* Time one read() of KT_LEN bytes into dst; -errno on failure. */
static double kt_read(int *pfd, char *dst)
{
	uint64_t t0;
	size_t got = 0;

	if (write(pfd[1], kt_src, KT_LEN) != (ssize_t)KT_LEN)
		return -errno;
	t0 = now_ns();
	while (got < KT_LEN) {
		ssize_t r = read(pfd[0], dst + got, KT_LEN - got);

		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			char drain[4096];

			/* Empty the pipe so the next case starts clean. */
			fcntl(pfd[0], F_SETFL, O_NONBLOCK);
			while (read(pfd[0], drain, sizeof(drain)) > 0)
				;
			fcntl(pfd[0], F_SETFL, 0);
			return -e;
		}
		got += r;
	}
	return (now_ns() - t0) / 1000.0;
}

static void ktouch_case(const char *name, enum kt_mode mode)
{
	const char *base = "ktouch-committed";
	int n = reps(101), pfd[2], fd = -1;
	uint64_t start = 0;
	long id = 0;
	char *buf;
	double v[n];

	if (mode == KT_STACKRES) {
		const char *why = stackres_absent();

		if (why) {
			report_na(name, "us/call", base, "%s", why);
			return;
		}
		fd = sr_open();
		id = sr_register(fd, &start, (1UL << 20) + PG, PG, 0, 0,
				 STACKRES_MAP);
		if (id < 0) {
			report_na(name, "us/call", base, "REGISTER: %s",
				  strerror(-id));
			close(fd);
			return;
		}
		/* The buffer is the top 64 KiB, where a stack frame would be. */
		buf = (char *)(uintptr_t)start + (1UL << 20) + PG - KT_LEN;
	} else {
		buf = mmap(NULL, KT_LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(buf, 1, KT_LEN);
	}
	if (pipe(pfd)) {
		report_na(name, "us/call", base, "pipe: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (mode == KT_COMMITTED) {
			/* Committed (RW) but not resident, as after a TRIM. */
			madvise(buf, KT_LEN, MADV_DONTNEED);
		} else if (mode == KT_STACKRES) {
			/* Decommit everything: the read must grow the stack. */
			struct stackres_trim tr = {
				.id = id, .sp = start + (1UL << 20) + PG, .keep = 0,
			};

			if (ioctl(fd, STACKRES_IOC_TRIM, &tr)) {
				report_na(name, "us/call", base, "TRIM: %s",
					  strerror(errno));
				goto out;
			}
		}
		v[i] = kt_read(pfd, buf);
		if (v[i] < 0) {
			report_na(name, "us/call", base, "read() into the buffer: %s",
				  strerror((int)-v[i]));
			goto out;
		}
	}
	report(name, "us/call", base, v, n);
out:
	close(pfd[0]);
	close(pfd[1]);
	if (fd >= 0) {
		munmap((void *)(uintptr_t)start, (1UL << 20) + PG);
		close(fd);
	} else {
		munmap(buf, KT_LEN);
	}
}

/* The same read() into a PROT_NONE region guarded by a SIGSEGV handler. */
static void ktouch_sigsegv(void)
{
	char *p = mmap(NULL, KT_LEN + PG, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int pfd[2];
	double r;

	if (pipe(pfd))
		return;
	sv_lo = (uintptr_t)p + PG;
	sv_hi = (uintptr_t)p + PG + KT_LEN;
	sv_step = 1;
	r = kt_read(pfd, p + PG);
	sv_lo = sv_hi = 0;
	if (r < 0)
		report_na("ktouch-sigsegv", "us/call", "ktouch-committed",
			  "not possible: read() fails with %s, the SIGSEGV handler never runs for kernel accesses",
			  strerrorname_np((int)-r));
	else
		report_na("ktouch-sigsegv", "us/call", "ktouch-committed",
			  "unexpected: read() into PROT_NONE succeeded");
	close(pfd[0]);
	close(pfd[1]);
	munmap(p, KT_LEN + PG);
}

static void bench_ktouch(void)
{
	memset(kt_src, 7, sizeof(kt_src));
	ktouch_case("ktouch-committed", KT_COMMITTED);
	ktouch_case("ktouch-resident", KT_RESIDENT);
	ktouch_case("ktouch-stackres", KT_STACKRES);
	ktouch_sigsegv();
}

/* ------------------------------------------------------------------ */
/* Case 4: creating 10,000 reservations                                */

#define NCREATE 10000

/*
 * 8 MiB each on x86_64; the 3 GiB user space of i386 cannot hold 10,000 of
 * those (80 GiB), so 32-bit builds use 128 KiB (bench/README.md says so).
 */
#if defined(__x86_64__)
#define CREATE_LEN GROW_LEN
#else
#define CREATE_LEN (128UL << 10)
#endif
#define CREATE_COMMIT (64UL << 10)

static uintptr_t create_addr[NCREATE];

enum create_mode { CR_MMAP, CR_SR_MAP, CR_SR_CALLER };

static void create_case(const char *name, enum create_mode mode)
{
	const char *base = "create-mmap-mprotect";
	int n = reps(5), fd = -1, made;
	double v[n];

	if (mode != CR_MMAP && stackres_absent()) {
		report_na(name, "us/resv", base, "%s", stackres_absent());
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *fail = NULL;
		int err = 0;
		uint64_t t0;

		if (mode != CR_MMAP)
			fd = sr_open();
		t0 = now_ns();
		for (made = 0; made < NCREATE; made++) {
			uint64_t s = 0;
			char *p = NULL;
			long id;

			if (mode != CR_SR_MAP) {
				p = mmap(NULL, CREATE_LEN, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
					 -1, 0);
				if (p == MAP_FAILED) {
					fail = "mmap";
					err = errno;
					break;
				}
				create_addr[made] = (uintptr_t)p;
			}
			if (mode == CR_MMAP) {
				if (mprotect(p, PG, PROT_NONE)) {
					fail = "mprotect";
					err = errno;
					break;
				}
				continue;
			}
			s = (uintptr_t)p;
			id = sr_register(fd, &s, CREATE_LEN, PG, CREATE_COMMIT, 0,
					 mode == CR_SR_MAP ? STACKRES_MAP : 0);
			if (id < 0) {
				fail = "REGISTER";
				err = -id;
				if (mode == CR_SR_CALLER)
					made++;	/* the mapping exists */
				break;
			}
			create_addr[made] = s;
		}
		v[i] = (now_ns() - t0) / 1000.0 / NCREATE;
		if (fd >= 0)
			close(fd);
		for (int k = 0; k < made; k++)
			munmap((void *)create_addr[k], CREATE_LEN);
		if (fail) {
			report_na(name, "us/resv", base, "%s #%d failed: %s",
				  fail, made, strerror(err));
			return;
		}
	}
	report(name, "us/resv", base, v, n);
}

static void bench_create(void)
{
	create_case("create-mmap-mprotect", CR_MMAP);
	create_case("create-stackres-map", CR_SR_MAP);
	create_case("create-stackres-caller", CR_SR_CALLER);
}

/* ------------------------------------------------------------------ */
/* Case 5: growth fault cost with 1, 1,000 and 30,000 live reservations */

/*
 * Every growth step is a fault through the hook (chunk = one page), so the
 * lookup cost is not diluted by plain demand faults.  The other live
 * reservations are 16 KiB (one guard page, one committed page: two VMAs
 * each, 30,000 of them stay under vm.max_map_count) so they fit the i386
 * address space too.
 */
#define SCALE_FILL_LEN (16UL << 10)

static uintptr_t scale_fill[30000];

static void bench_scale(void)
{
	static const int levels[] = { 1, 1000, 30000 };
	const char *why = stackres_absent();
	int fd, live = 1;

	if (why) {
		for (int l = 0; l < 3; l++) {
			char name[32];

			snprintf(name, sizeof(name), "scale-%d", levels[l]);
			report_na(name, "ns/page", "scale-1", "%s", why);
		}
		return;
	}
	fd = sr_open();
	for (int l = 0; l < 3; l++) {
		int n = reps(7);
		double v[n];
		char name[32];

		snprintf(name, sizeof(name), "scale-%d", levels[l]);
		/* Fillers: live counts the measured reservation too. */
		for (; live < levels[l]; live++) {
			uint64_t s = 0;
			long id = sr_register(fd, &s, SCALE_FILL_LEN, PG, PG, 0,
					      STACKRES_MAP);

			if (id < 0) {
				report_na(name, "ns/page", "scale-1",
					  "only %d live reservations: REGISTER: %s",
					  live, strerror(-id));
				break;
			}
			scale_fill[live - 1] = s;
		}
		if (live < levels[l])
			break;
		for (int i = 0; i < n; i++) {
			uint64_t start = 0;
			long id = sr_register(fd, &start, GROW_LEN + PG, PG, 0, PG,
					      STACKRES_MAP);

			if (id < 0) {
				report_na(name, "ns/page", "scale-1",
					  "REGISTER with %d live: %s", live,
					  strerror(-id));
				goto out;
			}
			v[i] = time_touch((char *)(uintptr_t)start + GROW_LEN + PG,
					  GROW_LEN);
			munmap((void *)(uintptr_t)start, GROW_LEN + PG);
		}
		report(name, "ns/page", "scale-1", v, n);
	}
out:
	/*
	 * Closing the fd ends every registration; the fillers' mappings must
	 * go too, or the next round runs out of vm.max_map_count.
	 */
	close(fd);
	for (int k = 0; k < live - 1; k++)
		munmap((void *)scale_fill[k], SCALE_FILL_LEN);
}

/* ------------------------------------------------------------------ */
/* Case 6: overflow upcall latency                                     */

/*
 * Write *p with the SIGSEGV handler armed to jump back here.  Returns the
 * time taken just before the access, or 0 if the access did not fault; the
 * handler leaves its entry time in up_t1.
 */
static __attribute__((noinline)) uint64_t guard_touch(volatile char *p)
{
	volatile uint64_t t0 = 0;

	if (sigsetjmp(up_env, 1))
		return t0;
	up_armed = 1;
	t0 = now_ns();
	*p = 1;
	up_armed = 0;
	return 0;
}

/* Guard hit -> handler entry, in us; -1 when the access did not fault. */
static double guard_hit(volatile char *p)
{
	uint64_t t0 = guard_touch(p);

	return t0 ? (up_t1 - t0) / 1000.0 : -1;
}

struct epoll_ctx {
	int fd, ep;
	volatile uint32_t seq;	/* OVERFLOW records read so far */
	volatile uint64_t t1;	/* when the last one was read */
	volatile int stop;
};

static void *epoll_reader(void *arg)
{
	struct epoll_ctx *c = arg;

	while (!c->stop) {
		struct epoll_event e;
		struct stackres_event ev;

		if (epoll_wait(c->ep, &e, 1, 200) <= 0)
			continue;
		while (read(c->fd, &ev, sizeof(ev)) == sizeof(ev)) {
			if (ev.type != STACKRES_EV_OVERFLOW)
				continue;
			c->t1 = now_ns();
			__atomic_add_fetch(&c->seq, 1, __ATOMIC_RELEASE);
			syscall(SYS_futex, &c->seq, FUTEX_WAKE_PRIVATE, 1, NULL,
				NULL, 0);
		}
	}
	return NULL;
}

static void bench_upcall(void)
{
	const char *why = stackres_absent();
	int n = reps(201), fd;
	char *plain;
	uint64_t start = 0;
	long id;
	double v[n];

	/* Baseline: a plain PROT_NONE guard page below a RW page. */
	plain = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(plain, PG, PROT_NONE);
	for (int i = 0; i < n; i++)
		v[i] = guard_hit(plain);
	munmap(plain, 2 * PG);
	if (v[0] < 0 || v[n - 1] < 0)
		report_na("upcall-guard-plain", "us", "upcall-guard-plain",
			  "writing a PROT_NONE page did not fault");
	else
		report("upcall-guard-plain", "us", "upcall-guard-plain", v, n);

	if (why) {
		report_na("upcall-sigsegv", "us", "upcall-guard-plain", "%s", why);
		report_na("upcall-epoll", "us", "upcall-guard-plain", "%s", why);
		return;
	}
	fd = sr_open();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	id = sr_register(fd, &start, 64UL << 10, PG, (64UL << 10) - PG, 0,
			 STACKRES_MAP);
	if (id < 0) {
		report_na("upcall-sigsegv", "us", "upcall-guard-plain",
			  "REGISTER: %s", strerror(-id));
		report_na("upcall-epoll", "us", "upcall-guard-plain",
			  "REGISTER: %s", strerror(-id));
		close(fd);
		return;
	}

	/* Guard hit -> SIGSEGV handler entry (records drained untimed). */
	for (int i = 0; i < n; i++) {
		struct stackres_event ev;

		v[i] = guard_hit((char *)(uintptr_t)start);
		while (read(fd, &ev, sizeof(ev)) == sizeof(ev))
			;
		if (v[i] < 0) {
			report_na("upcall-sigsegv", "us", "upcall-guard-plain",
				  "writing the guard did not fault");
			goto out;
		}
	}
	report("upcall-sigsegv", "us", "upcall-guard-plain", v, n);

	/* Guard hit -> OVERFLOW record read by a thread in epoll_wait(). */
	{
		struct epoll_ctx c = { .fd = fd };
		struct epoll_event e = { .events = EPOLLIN };
		pthread_t t;
		int got = 0;

		c.ep = epoll_create1(EPOLL_CLOEXEC);
		if (epoll_ctl(c.ep, EPOLL_CTL_ADD, fd, &e)) {
			report_na("upcall-epoll", "us", "upcall-guard-plain",
				  "epoll_ctl: %s", strerror(errno));
			close(c.ep);
			goto out;
		}
		pthread_create(&t, NULL, epoll_reader, &c);
		for (int i = 0; i < n; i++) {
			uint32_t want = c.seq + 1;
			uint64_t t0 = guard_touch((char *)(uintptr_t)start);
			uint64_t deadline = now_ns() + 5000000000ULL;

			if (!t0)
				break;
			while (c.seq < want && now_ns() < deadline) {
				struct timespec ts = { 0, 100000000 };

				syscall(SYS_futex, &c.seq, FUTEX_WAIT_PRIVATE,
					want - 1, &ts, NULL, 0);
			}
			if (c.seq < want)
				break;
			v[got++] = (c.t1 - t0) / 1000.0;
		}
		c.stop = 1;
		pthread_join(t, NULL);
		close(c.ep);
		if (got < n)
			report_na("upcall-epoll", "us", "upcall-guard-plain",
				  "no OVERFLOW record within 5 s after guard hit #%d",
				  got);
		else
			report("upcall-epoll", "us", "upcall-guard-plain", v, n);
	}
out:
	munmap((void *)(uintptr_t)start, 64UL << 10);
	close(fd);
}

/* ------------------------------------------------------------------ */

static const char *const case_list[][3] = {
	{ "growth-lazy", "ns/page", "growth-lazy" },
	{ "growth-stackres", "ns/page", "growth-lazy" },
	{ "growth-stackres-chunk1", "ns/page", "growth-lazy" },
	{ "growth-stackres-populate", "ns/page", "growth-lazy" },
	{ "growth-stackres-folios", "ns/page", "growth-lazy" },
	{ "growth-stackres-folios-populate", "ns/page", "growth-lazy" },
	{ "resident-lazy", "bytes", "resident-lazy" },
	{ "resident-stackres", "bytes", "resident-lazy" },
	{ "resident-stackres-folios", "bytes", "resident-lazy" },
	{ "growth-sigsegv", "ns/page", "growth-lazy" },
	{ "growth-sigsegv-16", "ns/page", "growth-lazy" },
	{ "growth-growsdown", "ns/page", "growth-lazy" },
	{ "growth-userfaultfd", "ns/page", "growth-lazy" },
	{ "ktouch-committed", "us/call", "ktouch-committed" },
	{ "ktouch-resident", "us/call", "ktouch-committed" },
	{ "ktouch-stackres", "us/call", "ktouch-committed" },
	{ "ktouch-sigsegv", "us/call", "ktouch-committed" },
	{ "churn-trampoline", "threads/s", "churn-trampoline" },
	{ "churn-pthread", "threads/s", "churn-trampoline" },
	{ "churn-cleartid", "threads/s", "churn-trampoline" },
	{ "churn-exit_free", "threads/s", "churn-trampoline" },
	{ "create-mmap-mprotect", "us/resv", "create-mmap-mprotect" },
	{ "create-stackres-map", "us/resv", "create-mmap-mprotect" },
	{ "create-stackres-caller", "us/resv", "create-mmap-mprotect" },
	{ "scale-1", "ns/page", "scale-1" },
	{ "scale-1000", "ns/page", "scale-1" },
	{ "scale-30000", "ns/page", "scale-1" },
	{ "upcall-guard-plain", "us", "upcall-guard-plain" },
	{ "upcall-sigsegv", "us", "upcall-guard-plain" },
	{ "upcall-epoll", "us", "upcall-guard-plain" },
	{ "greenrt-committed-time", "s", "greenrt-committed-time" },
	{ "greenrt-stackres-time", "s", "greenrt-committed-time" },
	{ "greenrt-sigsegv-time", "s", "greenrt-committed-time" },
	{ "greenrt-lazy-time", "s", "greenrt-committed-time" },
	{ "greenrt-committed-rss", "MiB", "greenrt-committed-rss" },
	{ "greenrt-stackres-rss", "MiB", "greenrt-committed-rss" },
	{ "greenrt-sigsegv-rss", "MiB", "greenrt-committed-rss" },
	{ "greenrt-lazy-rss", "MiB", "greenrt-committed-rss" },
	{ "greenrt-committed-commit", "MiB", "greenrt-committed-commit" },
	{ "greenrt-stackres-commit", "MiB", "greenrt-committed-commit" },
	{ "greenrt-sigsegv-commit", "MiB", "greenrt-committed-commit" },
	{ "greenrt-lazy-commit", "MiB", "greenrt-committed-commit" },
	{ "dense-create-mmap-mprotect", "us/stack", "dense-create-mmap-mprotect" },
	{ "dense-create-stackres-map", "us/stack", "dense-create-mmap-mprotect" },
	{ "dense-create-arena", "us/stack", "dense-create-mmap-mprotect" },
	{ "dense-growth-lazy", "ns/page", "dense-growth-lazy" },
	{ "dense-growth-arena", "ns/page", "dense-growth-lazy" },
	{ "dense-max-mmap-mprotect", "stacks", "dense-max-mmap-mprotect" },
	{ "dense-max-stackres-map", "stacks", "dense-max-mmap-mprotect" },
	{ "dense-max-arena", "stacks", "dense-max-mmap-mprotect" },
	{ "libc-detached-musl", "threads/s", "libc-detached-musl" },
	{ "libc-detached-musl-exit_free", "threads/s", "libc-detached-musl" },
	{ "libc-detached-glibc", "threads/s", "libc-detached-musl" },
	{ "libc-joinable-musl", "threads/s", "libc-joinable-musl" },
	{ "libc-joinable-musl-exit_free", "threads/s", "libc-joinable-musl" },
	{ "libc-joinable-glibc", "threads/s", "libc-joinable-musl" },
	{ "gcb-fault", "ns/page", "gcb-fault" },
	{ "gcb-mprotect", "ns/pair", "gcb-mprotect" },
	{ "gcb-toggle-nofd", "ns/toggle", "gcb-toggle-nofd" },
	{ "gcb-toggle-fd", "ns/toggle", "gcb-toggle-nofd" },
	{ "gcb-toggle-outside", "ns/toggle", "gcb-toggle-nofd" },
	{ "gcb-mprotect-fd", "ns/pair", "gcb-mprotect" },
	{ "gcb-mprotect-outside", "ns/pair", "gcb-mprotect" },
	{ "mt-grow-lazy-1", "pages/s", "mt-grow-lazy-1" },
	{ "mt-grow-lazy-2", "pages/s", "mt-grow-lazy-1" },
	{ "mt-grow-lazy-4", "pages/s", "mt-grow-lazy-1" },
	{ "mt-grow-stackres-1", "pages/s", "mt-grow-stackres-1" },
	{ "mt-grow-stackres-2", "pages/s", "mt-grow-stackres-1" },
	{ "mt-grow-stackres-4", "pages/s", "mt-grow-stackres-1" },
	{ "mt-grow-chunk1-1", "pages/s", "mt-grow-chunk1-1" },
	{ "mt-grow-chunk1-2", "pages/s", "mt-grow-chunk1-1" },
	{ "mt-grow-chunk1-4", "pages/s", "mt-grow-chunk1-1" },
	{ "mt-grow-chunk256k-1", "pages/s", "mt-grow-chunk256k-1" },
	{ "mt-grow-chunk256k-2", "pages/s", "mt-grow-chunk256k-1" },
	{ "mt-grow-chunk256k-4", "pages/s", "mt-grow-chunk256k-1" },
	{ "mt-grow-arena-1", "pages/s", "mt-grow-arena-1" },
	{ "mt-grow-arena-2", "pages/s", "mt-grow-arena-1" },
	{ "mt-grow-arena-4", "pages/s", "mt-grow-arena-1" },
	{ "mt-probe-idle", "ns/page", "mt-probe-idle" },
	{ "mt-probe-lazy", "ns/page", "mt-probe-idle" },
	{ "mt-probe-stackres", "ns/page", "mt-probe-idle" },
	{ "mt-probe-chunk1", "ns/page", "mt-probe-idle" },
	{ "mt-probe-chunk256k", "ns/page", "mt-probe-idle" },
	{ "mt-probe-arena", "ns/page", "mt-probe-idle" },
	{ "mt-probe-idle-p99", "us", "mt-probe-idle-p99" },
	{ "mt-probe-lazy-p99", "us", "mt-probe-idle-p99" },
	{ "mt-probe-stackres-p99", "us", "mt-probe-idle-p99" },
	{ "mt-probe-chunk1-p99", "us", "mt-probe-idle-p99" },
	{ "mt-probe-chunk256k-p99", "us", "mt-probe-idle-p99" },
	{ "mt-probe-arena-p99", "us", "mt-probe-idle-p99" },
	{ "mt-probe-idle-max", "us", "mt-probe-idle-max" },
	{ "mt-probe-lazy-max", "us", "mt-probe-idle-max" },
	{ "mt-probe-stackres-max", "us", "mt-probe-idle-max" },
	{ "mt-probe-chunk1-max", "us", "mt-probe-idle-max" },
	{ "mt-probe-chunk256k-max", "us", "mt-probe-idle-max" },
	{ "mt-probe-arena-max", "us", "mt-probe-idle-max" },
};

static const struct {
	const char *name;
	void (*fn)(void);
} groups[] = {
	{ "growth", bench_growth },
	{ "ktouch", bench_ktouch },
	{ "churn", bench_churn },
	{ "create", bench_create },
	{ "scale", bench_scale },
	{ "upcall", bench_upcall },
	{ "greenrt", bench_greenrt },
	{ "dense", bench_dense },
	{ "libc", bench_libc },
	{ "gcbarrier", bench_gcbarrier },
	{ "mtgrow", bench_mtgrow },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int main(int argc, char **argv)
{
	static char altstack[64 << 10];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct sigaction sa = { .sa_sigaction = segv_handler,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };
	struct utsname u;
	int opt, all = 1;

	while ((opt = getopt(argc, argv, "lr:R:")) != -1) {
		switch (opt) {
		case 'l':
			for (size_t i = 0; i < ARRAY_SIZE(case_list); i++)
				printf("%s %s %s\n", case_list[i][0],
				       case_list[i][1], case_list[i][2]);
			return 0;
		case 'r':
			rep_mult = atof(optarg);
			break;
		case 'R':
			rounds = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-l] [-r MULT] [-R ROUNDS] [GROUP...]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaltstack(&ss, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	uname(&u);
	printf("@@BEGIN %s %s %d-bit, cpus online %ld, stackres %s, exit_free %s\n",
	       u.release, u.machine, (int)sizeof(long) * 8,
	       sysconf(_SC_NPROCESSORS_ONLN),
	       stackres_absent() ? "absent" : "present",
	       exit_free_absent() ? "absent" : "present");
	for (int r = 1; r <= rounds; r++) {
		for (size_t g = 0; g < ARRAY_SIZE(groups); g++) {
			int run = optind == argc;

			for (int a = optind; a < argc; a++)
				run |= !strcmp(argv[a], groups[g].name);
			if (!run)
				continue;
			all = 0;
			fprintf(stderr, "stackbench: round %d/%d: %s\n", r, rounds,
				groups[g].name);
			groups[g].fn();
		}
		printf("@@ROUND %d\n", r);
		print_results();
	}
	printf("@@END\n");
	return all;	/* 1: no group matched */
}
