// SPDX-License-Identifier: MIT
/*
 * libstackres_test: the library as a runtime uses it, built with nothing
 * but `pkg-config --cflags --libs --static stackres` against an installed
 * copy, on whatever tier the machine gives.
 *
 *   libstackres_test [--only NAME[,NAME...]]
 *   libstackres_test --trace463 enosys|e2big [--only ...]
 *
 * Prints TAP.  Environment:
 *   SR_TEST_EXPECT_TIER       stackres, guard or mprotect: the tier the
 *                             library must choose here (unset: not checked)
 *   SR_TEST_EXPECT_EXIT_FREE  1 or 0: whether the thread cache must find
 *                             exit_free(2) (unset: not checked)
 *   SR_TEST_THREADS           threads of the thread cache test (200)
 *   SR_TEST_CHURN_MS          how long the churn test runs (1000)
 *   LIBSTACKRES_TIER          the library's own: the highest tier to use
 *
 * --trace463 runs the program again under ptrace with system call 463
 * failing with ENOSYS (Linux 6.12 without exit_free) or E2BIG (what
 * setxattrat(), 463 since Linux 6.13, answers the probe), and checks that
 * the library called 463 exactly once: the probe, never the exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <stackres/stackres.h>

#define KIB	1024UL
#define MIB	(1024UL * 1024UL)

/* ---- a minimal TAP producer ---- */

static int t_fail;

#define EXPECT(cond, ...) do {						\
	if (!(cond)) {							\
		t_fail++;						\
		printf("# %s:%d: expected %s: ", __func__, __LINE__, #cond); \
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

static const char *skip_reason;
#define SKIP_TEST(...) do {						\
	static char _buf[160];						\
	snprintf(_buf, sizeof(_buf), __VA_ARGS__);			\
	skip_reason = _buf;						\
	return;								\
} while (0)

/* ---- shared state ---- */

static sr_ctx *ctx;
static int tier;
static size_t page;

#define NSTACKS 8
static sr_stack *stk[NSTACKS];
static int cookies[NSTACKS];
static int arena_cookie, tcache_cookie, grow_cookie;

/* The fault callback: what it saw, and where to go. */
static struct sr_fault last_fault;
static volatile int faults;
static sigjmp_buf *volatile fault_jmp;
static sigjmp_buf thread_jmp;		/* the thread cache's overflow test */
static struct sr_fault thread_fault;

static volatile int fault_returns;	/* leave it to the library */
/* The churn test's threads (pthreads, with TLS of their own). */
static __thread sigjmp_buf *tl_jmp;
static __thread struct sr_fault tl_fault;

static void on_fault(const struct sr_fault *f, void *si, void *uc, void *arg)
{
	(void)si;
	(void)uc;
	(void)arg;
	if (tl_jmp) {
		tl_fault = *f;
		siglongjmp(*tl_jmp, 1);
	}
	if (f->user_data == &tcache_cookie) {
		thread_fault = *f;
		siglongjmp(thread_jmp, 1);
	}
	last_fault = *f;
	faults++;
	if (fault_jmp && !fault_returns)
		siglongjmp(*fault_jmp, 1);
}

/* The handler that was there before the library's: gets what is not ours. */
static sigjmp_buf prev_jmp;
static volatile uintptr_t prev_addr;
static volatile int prev_calls;
static struct sr_fault prev_classified;

static void prev_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	prev_addr = (uintptr_t)si->si_addr;
	prev_calls++;
	sr_classify(ctx, si, uc, &prev_classified);
	siglongjmp(prev_jmp, 1);
}

/* Recursion until the guard; the frames keep it from being a loop. */
static volatile int never;

static int recurse(volatile char *prev)
{
	volatile char buf[256];

	if (never)
		return 0;
	buf[0] = prev ? prev[0] + 1 : 0;
	buf[255] = buf[0];
	return recurse(buf) + buf[255];
}

static ucontext_t main_uc, coro_uc;

static void coro_main(void)
{
	recurse(NULL);
}

/* Run recurse() on [base, base + size) until it overflows; 1 if it did. */
static int overflow_on(void *base, size_t size)
{
	sigjmp_buf jb;

	faults = 0;
	if (getcontext(&coro_uc))
		return 0;
	coro_uc.uc_stack.ss_sp = base;
	coro_uc.uc_stack.ss_size = size;
	coro_uc.uc_link = NULL;
	makecontext(&coro_uc, coro_main, 0);
	fault_jmp = &jb;
	if (!sigsetjmp(jb, 1))
		swapcontext(&main_uc, &coro_uc);
	fault_jmp = NULL;
	return faults == 1;
}

/* One store; 1 if it faulted (the callback took it). */
static int store_faults(uintptr_t addr)
{
	sigjmp_buf jb;
	int before = faults;

	fault_jmp = &jb;
	if (!sigsetjmp(jb, 1))
		*(volatile char *)addr = 1;
	fault_jmp = NULL;
	return faults != before;
}

static void touch(uintptr_t from, uintptr_t to)
{
	for (uintptr_t a = to - page; a + page > from && a >= from; a -= page)
		*(volatile char *)a = 1;
}

static uint64_t total(void)
{
	uint64_t t = 0;
	int r = sr_committed_total(ctx, &t);

	EXPECT(r == 0, "sr_committed_total: %d", r);
	return t;
}

/* ---- records ---- */

struct seen {
	int overflow, grow, watermark, failed, lost_records, other, failed_err;
	uint64_t lost;
	struct sr_event last_overflow, last_grow;
	int user, kernel;
	void *want_ud;			/* count overflows of this cookie */
	int want_ud_overflows;
};

static void ev_overflow(const struct sr_event *e, void *arg)
{
	struct seen *s = arg;

	s->overflow++;
	s->last_overflow = *e;
	s->user += e->origin == SR_ORIGIN_USER;
	s->kernel += e->origin == SR_ORIGIN_KERNEL;
	if (s->want_ud && e->user_data == s->want_ud)
		s->want_ud_overflows++;
}

static void ev_grow(const struct sr_event *e, void *arg)
{
	struct seen *s = arg;

	s->grow++;
	s->last_grow = *e;
}

static void ev_watermark(const struct sr_event *e, void *arg)
{
	((struct seen *)arg)->watermark++;
	(void)e;
}

static void ev_failed(const struct sr_event *e, void *arg)
{
	((struct seen *)arg)->failed++;
	((struct seen *)arg)->failed_err = e->err;
}

static void ev_lost(const struct sr_event *e, void *arg)
{
	struct seen *s = arg;

	s->lost_records++;
	s->lost += e->committed;
}

static void ev_other(const struct sr_event *e, void *arg)
{
	((struct seen *)arg)->other++;
	(void)e;
}

static int drain(struct seen *s)
{
	struct sr_event_handlers h = {
		ev_grow, ev_watermark, ev_overflow, ev_failed, ev_lost, ev_other, s
	};
	int n, sum = 0;

	while ((n = sr_events_read(ctx, &h, 1)) > 0)
		sum += n;
	EXPECT(n == -EAGAIN, "sr_events_read: %d", n);
	return sum;
}

/* ---- tests ---- */

static const char *expect_tier_name(void)
{
	return getenv("SR_TEST_EXPECT_TIER");
}

static void test_tier(void)
{
	const char *want = expect_tier_name();
	int want_tier = -1;

	printf("# libstackres %d.%d.%d, tier: %s%s%s%s\n", sr_version() >> 16,
	       (sr_version() >> 8) & 0xff, sr_version() & 0xff, sr_tier_name(tier),
	       *sr_ctx_tier_reason(ctx) ? " (" : "", sr_ctx_tier_reason(ctx),
	       *sr_ctx_tier_reason(ctx) ? ")" : "");
	EXPECT(sr_version() == SR_VERSION, "library %#x, header %#x", sr_version(), SR_VERSION);
	EXPECT(SR_CHECK_VERSION(0, 1), "SR_CHECK_VERSION");
	if (!want) {
		printf("# SR_TEST_EXPECT_TIER unset: tier not checked\n");
		return;
	}
	if (!strcmp(want, "stackres"))
		want_tier = SR_TIER_STACKRES;
	else if (!strcmp(want, "guard"))
		want_tier = SR_TIER_GUARD_MARKERS;
	else if (!strcmp(want, "mprotect"))
		want_tier = SR_TIER_MPROTECT;
	EXPECT(want_tier == tier, "tier %s, expected %s", sr_tier_name(tier), want);
}

static void test_exact_tier(void)
{
	sr_ctx *c = NULL;
	int r;

	r = sr_ctx_create(SR_TIER_MPROTECT, SR_CTX_EXACT_TIER, &c);
	EXPECT(r == 0 && sr_ctx_tier(c) == SR_TIER_MPROTECT, "mprotect: %d", r);
	if (!r)
		EXPECT(sr_ctx_destroy(c) == 0, "destroy");
	r = sr_ctx_create(SR_TIER_STACKRES, SR_CTX_EXACT_TIER, &c);
	if (tier == SR_TIER_STACKRES) {
		EXPECT(r == 0, "exact stackres: %d", r);
		if (!r)
			sr_ctx_destroy(c);
	} else {
		EXPECT(r == -EOPNOTSUPP, "exact stackres below it: %d", r);
	}
	EXPECT(sr_ctx_create(9, 0, &c) == -EINVAL, "max_tier 9");
	EXPECT(sr_ctx_create(0, 0x100, &c) == -EINVAL, "unknown flag");
}

static void test_stacks(void)
{
	for (int i = 0; i < NSTACKS; i++) {
		int r = sr_stack_create(ctx, 1 * MIB, 64 * KIB, &cookies[i], &stk[i]);

		EXPECT(r == 0, "sr_stack_create %d: %d", i, r);
		if (r)
			return;
		EXPECT((uintptr_t)sr_stack_base(stk[i]) % page == 0, "base aligned");
		EXPECT((char *)sr_stack_top(stk[i]) - (char *)sr_stack_base(stk[i]) ==
		       (ptrdiff_t)(1 * MIB), "top - base");
		EXPECT(sr_stack_size(stk[i]) == 1 * MIB, "size");
		EXPECT(sr_stack_guard(stk[i]) == 64 * KIB, "guard");
		EXPECT(sr_stack_user_data(stk[i]) == &cookies[i], "user_data");
		/* The top is usable at once, on every tier. */
		((volatile char *)sr_stack_top(stk[i]))[-1] = 1;
	}
	EXPECT(sr_stack_create(ctx, 0, 0, NULL, &stk[0]) == -EINVAL, "size 0");

	/* Aligned: the start (the guard's bottom) found by masking any address. */
	{
		sr_stack *a;
		uintptr_t start;

		EXPECT(sr_ctx_set(ctx, SR_PARAM_ALIGN, 3 * page) == -EINVAL, "align 3 pages");
		EXPECT(sr_ctx_set(ctx, SR_PARAM_ALIGN, 2 * MIB) == 0, "align 2 MiB");
		EXPECT(sr_stack_create(ctx, 2 * MIB - 64 * KIB, 64 * KIB, NULL, &a) == 0,
		       "aligned stack");
		sr_ctx_set(ctx, SR_PARAM_ALIGN, 0);
		start = (uintptr_t)sr_stack_base(a) - sr_stack_guard(a);
		EXPECT(start % (2 * MIB) == 0, "start %#lx", (unsigned long)start);
		EXPECT((((uintptr_t)sr_stack_top(a) - 1) & ~(2 * MIB - 1)) == start, "mask");
		((volatile char *)sr_stack_top(a))[-1] = 1;
		EXPECT(sr_stack_destroy(a) == 0, "destroy");
	}
	EXPECT(sr_ctx_destroy(ctx) == -EBUSY, "destroy with live stacks");
}

static void test_overflow_exact(void)
{
	sr_stack *s = stk[3];
	uintptr_t base = (uintptr_t)sr_stack_base(s), g = base - 100;
	char buf[8];
	int fds[2];

	EXPECT(store_faults(g), "a store at base - 100 faulted");
	EXPECT(last_fault.kind == SR_FAULT_OVERFLOW, "kind %d", last_fault.kind);
	EXPECT(last_fault.user_data == &cookies[3], "user_data %p, want %p",
	       last_fault.user_data, (void *)&cookies[3]);
	EXPECT(last_fault.stack == s, "stack %p, want %p", (void *)last_fault.stack, (void *)s);
	EXPECT((uintptr_t)last_fault.addr == g, "addr %p, want %#lx", last_fault.addr,
	       (unsigned long)g);
	EXPECT((uintptr_t)last_fault.guard_start == base - 64 * KIB &&
	       (uintptr_t)last_fault.guard_end == base, "guard %p-%p",
	       last_fault.guard_start, last_fault.guard_end);
	EXPECT(!last_fault.on_stack, "the store ran on the main stack");
	EXPECT(last_fault.arena == NULL, "arena");
	printf("# overflow of stack %p (user_data %p), in guard at %p\n",
	       (void *)last_fault.stack, last_fault.user_data, last_fault.addr);

	/* The kernel's access to the guard fails; no signal. */
	EXPECT(pipe(fds) == 0, "pipe");
	EXPECT(write(fds[1], "12345678", 8) == 8, "write");
	errno = 0;
	EXPECT(read(fds[0], (void *)(base - 8), 8) == -1 && errno == EFAULT,
	       "read() into the guard: errno %d", errno);
	EXPECT(read(fds[0], buf, 8) == 8, "the bytes stayed in the pipe");
	close(fds[0]);
	close(fds[1]);
}

static void test_overflow_recursion(void)
{
	sr_stack *s = stk[5];

	EXPECT(overflow_on(sr_stack_base(s), sr_stack_size(s)), "recursion overflowed");
	EXPECT(last_fault.kind == SR_FAULT_OVERFLOW, "kind %d", last_fault.kind);
	EXPECT(last_fault.user_data == &cookies[5], "user_data");
	EXPECT(last_fault.stack == s, "stack");
	EXPECT(last_fault.addr >= last_fault.guard_start &&
	       last_fault.addr < last_fault.guard_end, "addr %p in the guard %p-%p",
	       last_fault.addr, last_fault.guard_start, last_fault.guard_end);
	EXPECT(last_fault.on_stack, "sp %p in the stack", last_fault.sp);
	if (tier == SR_TIER_STACKRES)
		EXPECT(last_fault.committed == sr_stack_size(s), "committed %zu",
		       last_fault.committed);
}

static void test_not_ours(void)
{
	char *p = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	EXPECT(p != MAP_FAILED, "mmap");
	prev_calls = 0;
	if (!sigsetjmp(prev_jmp, 1))
		*(volatile char *)p = 1;
	EXPECT(prev_calls == 1, "the previous handler ran %d times", prev_calls);
	EXPECT(prev_addr == (uintptr_t)p, "it saw the address");
	EXPECT(prev_classified.kind == SR_FAULT_NOT_OURS, "classified %d",
	       prev_classified.kind);
	munmap(p, page);
}

/* stackres: a fault in a reservation above its guard that the module cannot commit. */
static void test_grow_failed(void)
{
	struct seen s = { 0 };
	sigjmp_buf jb;
	sr_stack *st;
	uintptr_t top, p;

	if (tier != SR_TIER_STACKRES)
		SKIP_TEST("no growth below the stackres tier");
	EXPECT(sr_stack_create(ctx, 256 * KIB, 0, &grow_cookie, &st) == 0, "create");
	top = (uintptr_t)sr_stack_top(st);
	p = top - page;
	*(volatile char *)p = 1;		/* commits the top 64 KiB */
	/* committed memory the program makes inaccessible itself */
	EXPECT(mprotect((void *)p, page, PROT_NONE) == 0, "mprotect");
	drain(&s);
	EXPECT(store_faults(p), "the store faulted");
	EXPECT(last_fault.kind == SR_FAULT_GROW_FAILED && last_fault.stack == st &&
	       last_fault.user_data == &grow_cookie && last_fault.committed == 64 * KIB,
	       "kind %d stack %p user_data %p committed %zu", last_fault.kind,
	       (void *)last_fault.stack, last_fault.user_data, last_fault.committed);
	memset(&s, 0, sizeof(s));
	drain(&s);
	EXPECT(s.failed == 1 && s.failed_err == EACCES, "one FAILED record, %d, err %d",
	       s.failed, s.failed_err);

	/* The callback returns: the previous handler gets the fault. */
	prev_calls = 0;
	fault_returns = 1;
	fault_jmp = &jb;
	if (!sigsetjmp(prev_jmp, 1))
		*(volatile char *)p = 1;
	fault_jmp = NULL;
	fault_returns = 0;
	EXPECT(prev_calls == 1 && prev_addr == p, "passed on: %d calls", prev_calls);
	EXPECT(prev_classified.kind == SR_FAULT_GROW_FAILED, "kind %d",
	       prev_classified.kind);
	drain(&s);
	EXPECT(sr_stack_destroy(st) == 0, "destroy");
}

static void test_records(void)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct seen s = { 0 };
	int ep = epoll_create1(EPOLL_CLOEXEC), fd = sr_events_fd(ctx);
	uintptr_t g = (uintptr_t)sr_stack_base(stk[3]) - 100;

	EXPECT(fd >= 0, "sr_events_fd %d", fd);
	drain(&s);
	EXPECT(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl");
	EXPECT(epoll_wait(ep, &out, 1, 0) == 0, "nothing to read");
	EXPECT(sr_events_read(ctx, NULL, 1) == -EAGAIN, "nonblocking, empty");

	EXPECT(store_faults(g), "guard store");
	EXPECT(epoll_wait(ep, &out, 1, 1000) == 1, "readable after an overflow");
	memset(&s, 0, sizeof(s));
	EXPECT(sr_events_read(ctx, &(struct sr_event_handlers){
		.overflow = ev_overflow, .lost = ev_lost, .arg = &s }, 0) >= 1,
	       "blocking read");
	EXPECT(s.overflow == 1, "one OVERFLOW record, %d", s.overflow);
	EXPECT(s.last_overflow.user_data == &cookies[3], "its user_data %p",
	       s.last_overflow.user_data);
	EXPECT((uintptr_t)s.last_overflow.addr == g, "its address %p", s.last_overflow.addr);
	EXPECT(s.last_overflow.origin == SR_ORIGIN_USER, "origin %d", s.last_overflow.origin);
	EXPECT(s.last_overflow.tid == (uint32_t)syscall(SYS_gettid), "tid");
	EXPECT(!!(s.last_overflow.flags & SR_EVENT_SYNTHETIC) == (tier != SR_TIER_STACKRES),
	       "flags %#x", s.last_overflow.flags);
	EXPECT(epoll_wait(ep, &out, 1, 0) == 0, "drained");
	close(ep);

	if (tier != SR_TIER_STACKRES)
		return;
	/* The module's own: a kernel access, growth and a watermark. */
	{
		int fds[2];
		sr_stack *gs;
		uintptr_t top;

		EXPECT(pipe(fds) == 0, "pipe");
		EXPECT(write(fds[1], "x", 1) == 1, "write");
		EXPECT(read(fds[0], (void *)(g - 4096), 1) == -1 && errno == EFAULT, "EFAULT");
		close(fds[0]);
		close(fds[1]);
		memset(&s, 0, sizeof(s));
		drain(&s);
		EXPECT(s.overflow >= 1 && s.kernel == s.overflow,
		       "kernel-origin OVERFLOW records: %d of %d", s.kernel, s.overflow);

		EXPECT(sr_ctx_set(ctx, SR_PARAM_NOTIFY_GROW, 1) == 0, "NOTIFY_GROW");
		EXPECT(sr_ctx_set(ctx, SR_PARAM_WATERMARK, 128 * KIB) == 0, "WATERMARK");
		EXPECT(sr_stack_create(ctx, 512 * KIB, 0, &grow_cookie, &gs) == 0, "create");
		sr_ctx_set(ctx, SR_PARAM_NOTIFY_GROW, 0);
		sr_ctx_set(ctx, SR_PARAM_WATERMARK, 0);
		top = (uintptr_t)sr_stack_top(gs);
		touch(top - 256 * KIB, top);
		memset(&s, 0, sizeof(s));
		drain(&s);
		EXPECT(s.grow == 4, "4 GROW records (64 KiB steps), %d", s.grow);
		EXPECT(s.watermark == 1, "1 WATERMARK record, %d", s.watermark);
		EXPECT(s.last_grow.user_data == &grow_cookie, "GROW user_data");
		EXPECT(s.last_grow.committed == 256 * KIB, "GROW committed %llu",
		       (unsigned long long)s.last_grow.committed);
		sr_stack_destroy(gs);
	}
}

static void test_lost(void)
{
	struct seen s = { 0 };
	uintptr_t g = (uintptr_t)sr_stack_base(stk[2]) - 8;
	int i, hits = 0;

	drain(&s);
	memset(&s, 0, sizeof(s));
	s.want_ud = &cookies[2];
	for (i = 0; i < 300; i++)
		hits += store_faults(g);
	EXPECT(hits == 300, "300 guard hits, %d", hits);
	drain(&s);
	EXPECT(s.want_ud_overflows + s.lost == 300, "%d OVERFLOW + %llu lost",
	       s.want_ud_overflows, (unsigned long long)s.lost);
	EXPECT(s.want_ud_overflows == 256 && s.lost_records == 1,
	       "the queue holds 256: %d records, %d LOST records", s.want_ud_overflows,
	       s.lost_records);
}

static void test_trim(void)
{
	sr_stack *s;
	uintptr_t top;
	uint64_t t0, t1, t2, t3;
	size_t c = 0;

	EXPECT(sr_stack_create(ctx, 1 * MIB, 64 * KIB, NULL, &s) == 0, "create");
	top = (uintptr_t)sr_stack_top(s);
	t0 = total();
	touch(top - 256 * KIB, top);
	t1 = total();
	EXPECT(t1 - t0 == 256 * KIB, "touching 256 KiB: total +%lld",
	       (long long)(t1 - t0));
	EXPECT(sr_stack_committed(s, &c) == 0 && c == 256 * KIB, "stack: %zu", c);
	EXPECT(sr_stack_trim(s, (void *)(top - 64 * KIB), 0) == 0, "trim");
	t2 = total();
	EXPECT(t2 - t0 == 64 * KIB, "after trim to 64 KiB: total +%lld",
	       (long long)(t2 - t0));
	EXPECT(sr_stack_committed(s, &c) == 0 && c == 64 * KIB, "stack: %zu", c);
	/* keep: a red zone below sp stays */
	EXPECT(sr_stack_trim(s, (void *)(top - 32 * KIB), 16 * KIB) == 0, "trim keep");
	EXPECT(sr_stack_committed(s, &c) == 0 && c == 48 * KIB, "keep 16 KiB: %zu", c);
	EXPECT(sr_stack_trim(s, (void *)top, 0) == 0, "trim all");
	t3 = total();
	EXPECT(t3 == t0, "all of it: %lld", (long long)(t3 - t0));
	EXPECT(sr_stack_trim(s, (void *)(top + 1), 0) == -EINVAL, "sp above top");
	EXPECT(sr_stack_trim(s, (char *)sr_stack_base(s) - 1, 0) == -EINVAL, "sp in guard");
	printf("# committed: %llu before, +%llu touched, +%llu trimmed\n",
	       (unsigned long long)t0, (unsigned long long)(t1 - t0),
	       (unsigned long long)(t2 - t0));
	EXPECT(sr_stack_destroy(s) == 0, "destroy");
}

static void test_trim_batch(void)
{
	struct sr_trim t[5];
	sr_stack *s[4];
	size_t c;
	int i, r;

	memset(t, 0, sizeof(t));
	for (i = 0; i < 4; i++) {
		uintptr_t top;

		EXPECT(sr_stack_create(ctx, 256 * KIB, 0, NULL, &s[i]) == 0, "create");
		top = (uintptr_t)sr_stack_top(s[i]);
		touch(top - 128 * KIB, top);
		t[i].stack = s[i];
		t[i].sp = (void *)(top - 64 * KIB);
	}
	t[4].stack = s[0];
	t[4].sp = (char *)sr_stack_top(s[0]) + page;	/* outside: fails alone */
	r = sr_trim_batch(ctx, t, 5);
	EXPECT(r == 4, "4 of 5 trimmed, %d", r);
	EXPECT(t[4].error == -EINVAL, "entry 4: %d", t[4].error);
	for (i = 0; i < 4; i++) {
		EXPECT(t[i].error == 0, "entry %d: %d", i, t[i].error);
		EXPECT(t[i].committed == (tier == SR_TIER_STACKRES ? 64 * KIB : SR_UNKNOWN),
		       "entry %d committed %zu", i, t[i].committed);
		EXPECT(sr_stack_committed(s[i], &c) == 0 && c == 64 * KIB, "stack %d: %zu",
		       i, c);
		sr_stack_destroy(s[i]);
	}
}

/*
 * sr_trim_budget(): nothing under the budget; above it the largest gain
 * first, down to low, sparing warm; without a budget every entry.
 */
static void test_trim_budget(void)
{
	/* whole 64 KiB steps: the module's default growth chunk */
	static const size_t depth[4] = { 256 * KIB, 192 * KIB, 128 * KIB, 64 * KIB };
	struct sr_budget b;
	struct sr_trim t[5];
	sr_stack *s[4];
	uint64_t all;
	size_t c;
	int i, r;

	for (i = 0; i < 4; i++) {
		EXPECT(sr_stack_create(ctx, 320 * KIB, 0, NULL, &s[i]) == 0, "create");
		touch((uintptr_t)sr_stack_top(s[i]) - depth[i], (uintptr_t)sr_stack_top(s[i]));
	}
	all = total();
	memset(t, 0, sizeof(t));
	for (i = 0; i < 4; i++) {
		t[i].stack = s[i];
		t[i].sp = sr_stack_top(s[i]);	/* idle: everything may go */
	}
	/* within the budget: one read of the total, nothing trimmed */
	memset(&b, 0, sizeof(b));
	b.high = all;
	b.warm = 16 * KIB;
	r = sr_trim_budget(ctx, t, 4, &b);
	EXPECT(r == 0 && b.total == all && b.freed == 0, "under the budget: %d, total %llu",
	       r, (unsigned long long)b.total);
	for (i = 0; i < 4; i++)
		EXPECT(t[i].error == SR_TRIM_SKIPPED, "entry %d: %d", i, t[i].error);
	/* a total the caller read itself is taken as it is */
	b.high = all - 1;
	b.total = page;
	r = sr_trim_budget(ctx, t, 4, &b);
	EXPECT(r == 0 && b.total == page, "the caller's total: %d, %llu", r,
	       (unsigned long long)b.total);
	/* 1 byte over, down to 200 KiB less: the deepest (240 KiB gain) alone */
	b.total = 0;
	b.low = all - 200 * KIB;
	r = sr_trim_budget(ctx, t, 4, &b);
	EXPECT(r == 1 && b.freed == 240 * KIB, "over the budget: %d trimmed, %llu freed", r,
	       (unsigned long long)b.freed);
	EXPECT(t[0].error == 0, "entry 0: %d", t[0].error);
	for (i = 1; i < 4; i++)
		EXPECT(t[i].error == SR_TRIM_SKIPPED, "entry %d: %d", i, t[i].error);
	for (i = 0; i < 4; i++)
		EXPECT(sr_stack_committed(s[i], &c) == 0 && c == (i ? depth[i] : 16 * KIB),
		       "stack %d: %zu", i, c);
	EXPECT(total() == all - 240 * KIB, "total %llu", (unsigned long long)total());
	/* no budget: every entry, warm kept; a bad entry fails alone */
	memset(&b, 0, sizeof(b));
	b.warm = 16 * KIB;
	t[4].stack = s[0];
	t[4].sp = (char *)sr_stack_top(s[0]) + page;
	r = sr_trim_budget(ctx, t, 5, &b);
	EXPECT(r == 4 && t[4].error == -EINVAL, "no budget: %d trimmed, entry 4: %d", r,
	       t[4].error);
	for (i = 0; i < 4; i++) {
		EXPECT(sr_stack_committed(s[i], &c) == 0 && c == 16 * KIB, "stack %d: %zu", i, c);
		sr_stack_destroy(s[i]);
	}
	EXPECT(sr_trim_budget(ctx, t, 1, NULL) == -EINVAL, "no budget struct");
}

static void test_arena(void)
{
	struct seen s = { 0 };
	sr_arena *a;
	uintptr_t b7, t5;
	uint64_t t0, t1, t2;
	int r;

	r = sr_arena_create(ctx, 64 * KIB, 16, 0, &arena_cookie, &a);
	EXPECT(r == 0, "sr_arena_create: %d", r);
	if (r)
		return;
	EXPECT(sr_arena_nslots(a) == 16 && sr_arena_slot_size(a) == 64 * KIB &&
	       sr_arena_guard(a) == page && sr_arena_user_data(a) == &arena_cookie, "arena");
	b7 = (uintptr_t)sr_arena_slot_base(a, 7);
	EXPECT((uintptr_t)sr_arena_slot_top(a, 7) - b7 == 64 * KIB - page, "slot 7");
	EXPECT(sr_arena_slot_base(a, 16) == NULL, "no slot 16");
	drain(&s);
	EXPECT(store_faults(b7 - 1), "a store below slot 7 faulted");
	EXPECT(last_fault.kind == SR_FAULT_OVERFLOW && last_fault.arena == a &&
	       last_fault.slot == 7 && last_fault.user_data == &arena_cookie,
	       "kind %d arena %p slot %zu user_data %p", last_fault.kind,
	       (void *)last_fault.arena, last_fault.slot, last_fault.user_data);
	EXPECT((uintptr_t)last_fault.addr == b7 - 1 &&
	       (uintptr_t)last_fault.guard_start == b7 - page &&
	       (uintptr_t)last_fault.guard_end == b7, "addr %p guard %p-%p",
	       last_fault.addr, last_fault.guard_start, last_fault.guard_end);
	memset(&s, 0, sizeof(s));
	drain(&s);
	EXPECT(s.overflow == 1 && (s.last_overflow.flags & SR_EVENT_SLOT) &&
	       s.last_overflow.slot == 7 && s.last_overflow.user_data == &arena_cookie,
	       "record: %d, flags %#x, slot %zu", s.overflow, s.last_overflow.flags,
	       s.last_overflow.slot);

	t5 = (uintptr_t)sr_arena_slot_top(a, 5);
	t0 = total();
	touch((uintptr_t)sr_arena_slot_base(a, 5), t5);
	t1 = total();
	EXPECT(t1 - t0 == 64 * KIB - page, "slot 5 resident: +%lld", (long long)(t1 - t0));
	EXPECT(sr_arena_trim(a, (void *)(t5 - 16 * KIB), 0) == 0, "trim slot 5");
	t2 = total();
	EXPECT(t2 - t0 == 16 * KIB, "after trim: +%lld", (long long)(t2 - t0));
	EXPECT(sr_arena_trim(a, (void *)(b7 - 1), 0) == -EINVAL, "sp in a guard");
	EXPECT(sr_arena_destroy(a) == 0, "destroy");
}

/* ---- thread stacks ---- */

static _Atomic int ran;

static int thread_fn(void *arg)
{
	(void)arg;
	ran++;
	return 0;
}

static int overflow_thread(void *arg)
{
	volatile int *done = arg;

	if (!sigsetjmp(thread_jmp, 1))
		recurse(NULL);
	*done = 1;
	return 0;
}

static void wait_out(sr_tcache *c)
{
	struct sr_tcache_stats st;

	do {
		sched_yield();
		sr_tcache_stats(c, &st);
	} while (st.out);
}

static void test_tcache(void)
{
	const char *want = getenv("SR_TEST_EXPECT_EXIT_FREE");
	int n = getenv("SR_TEST_THREADS") ? atoi(getenv("SR_TEST_THREADS")) : 200;
	struct sr_tcache_stats st;
	volatile int done = 0;
	sr_tcache *c;
	sr_tstack *ts;
	int i, r, mode;

	r = sr_tcache_create(ctx, 64 * KIB, 0, &tcache_cookie, SR_TCACHE_ALTSTACK, &c);
	EXPECT(r == 0, "sr_tcache_create: %d", r);
	if (r)
		return;
	mode = sr_tcache_mode(c);
	printf("# thread stacks released by %s\n",
	       mode == SR_TCACHE_EXIT_FREE ? "exit_free(2)" : "the clear_child_tid store");
	if (want)
		EXPECT(mode == (atoi(want) ? SR_TCACHE_EXIT_FREE : SR_TCACHE_CLEARTID),
		       "mode %d, SR_TEST_EXPECT_EXIT_FREE=%s", mode, want);
	EXPECT(sr_exit_free_available() == (mode == SR_TCACHE_EXIT_FREE), "probe cached");

	/* One after the other: one stack serves them all. */
	ran = 0;
	for (i = 0; i < n; i++) {
		r = sr_tcache_spawn(c, thread_fn, NULL, NULL);
		if (r <= 0) {
			EXPECT(r > 0, "spawn %d: %d", i, r);
			break;
		}
		wait_out(c);
	}
	EXPECT(sr_tcache_wait_idle(c) == 0, "wait_idle");
	EXPECT(ran == n, "%d threads ran, %d", n, (int)ran);
	sr_tcache_stats(c, &st);
	EXPECT(st.created == 1 && st.reused == (uint64_t)n - 1 && st.spawned == (uint64_t)n &&
	       st.out == 0, "created %llu reused %llu spawned %llu out %llu",
	       (unsigned long long)st.created, (unsigned long long)st.reused,
	       (unsigned long long)st.spawned, (unsigned long long)st.out);
	printf("# %d threads on %llu stack(s), %llu waits for the word\n", n,
	       (unsigned long long)st.created, (unsigned long long)st.waits);

	/* Bursts: no more stacks than threads alive at once. */
	ran = 0;
	for (int round = 0; round < 4; round++) {
		for (i = 0; i < 8; i++)
			EXPECT(sr_tcache_spawn(c, thread_fn, NULL, NULL) > 0, "burst spawn");
		wait_out(c);
		sr_tcache_wait_idle(c);
	}
	sr_tcache_stats(c, &st);
	EXPECT(ran == 32 && st.created <= 9, "ran %d, %llu stacks", (int)ran,
	       (unsigned long long)st.created);

	/* An overflow in such a thread, on the sigaltstack carved off its stack. */
	memset(&thread_fault, 0, sizeof(thread_fault));
	r = sr_tcache_spawn(c, overflow_thread, (void *)&done, &ts);
	EXPECT(r > 0, "spawn: %d", r);
	if (r > 0) {
		wait_out(c);
		sr_tcache_wait_idle(c);
		EXPECT(done, "the thread caught its overflow");
		EXPECT(thread_fault.kind == SR_FAULT_OVERFLOW &&
		       thread_fault.stack == sr_tstack_stack(ts) && thread_fault.on_stack,
		       "kind %d stack %p (want %p) on_stack %d", thread_fault.kind,
		       (void *)thread_fault.stack, (void *)sr_tstack_stack(ts),
		       thread_fault.on_stack);
	}
	r = sr_tcache_trim(c, 0);
	EXPECT(r >= 1, "trimmed %d idle stacks", r);
	EXPECT(sr_tcache_get(c, &ts) == 0, "get");
	EXPECT(sr_tcache_destroy(c) == -EBUSY, "destroy with a stack out");
	sr_tcache_put(ts);
	EXPECT(sr_tcache_destroy(c) == 0, "destroy");
}

/*
 * ---- classification while other threads create and destroy stacks ----
 * Each thread keeps up to 256 stacks of random sizes and guards, replaces
 * one at random in every step and, every 8th step, stores at a random
 * guard address of a live one: the fault must name exactly it.  This
 * exercises the lookup table's growth and tombstones (and REGISTER and
 * UNREGISTER on stackres) under the handler.
 */
#define CHURN_SLOTS	256

struct churn {
	unsigned int seed;
	long ops, checked, bad;
	int err;
};

static volatile int churn_stop;

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	sr_stack *live[CHURN_SLOTS] = { 0 };
	sigjmp_buf jb;
	int i, r;

	if (sr_thread_altstack(0)) {
		c->err = -1;
		return NULL;
	}
	while (!churn_stop && !c->err) {
		i = rand_r(&c->seed) % CHURN_SLOTS;
		if (live[i]) {
			c->err = sr_stack_destroy(live[i]);
			live[i] = NULL;
		} else {
			r = sr_stack_create(ctx, 16 * KIB * (1 + rand_r(&c->seed) % 4),
					    page * (1 + rand_r(&c->seed) % 40), &live[i],
					    &live[i]);
			c->err = r;
		}
		c->ops++;
		if (live[i] && !(c->ops & 7)) {
			char *g = (char *)sr_stack_base(live[i]) - 1 -
				rand_r(&c->seed) % sr_stack_guard(live[i]);

			tl_jmp = &jb;
			if (!sigsetjmp(jb, 1)) {
				*(volatile char *)g = 1;
				c->bad++;		/* no fault */
			} else if (tl_fault.kind != SR_FAULT_OVERFLOW ||
				   tl_fault.stack != live[i] ||
				   tl_fault.user_data != &live[i] || tl_fault.addr != g) {
				c->bad++;
			}
			tl_jmp = NULL;
			c->checked++;
		}
	}
	for (i = 0; i < CHURN_SLOTS; i++)
		if (live[i] && sr_stack_destroy(live[i]))
			c->err = -1;
	sr_thread_altstack_free();
	return NULL;
}

static void test_churn(void)
{
	int ms = getenv("SR_TEST_CHURN_MS") ? atoi(getenv("SR_TEST_CHURN_MS")) : 1000;
	struct churn c[3];
	pthread_t t[3];
	struct seen s = { 0 };
	long ops = 0, checked = 0;
	int i;

	churn_stop = 0;
	for (i = 0; i < 3; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].seed = 1234 + i;
		EXPECT(pthread_create(&t[i], NULL, churn_thread, &c[i]) == 0, "pthread_create");
	}
	usleep(ms * 1000);
	churn_stop = 1;
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		EXPECT(c[i].err == 0 && c[i].bad == 0, "thread %d: error %d, %ld of %ld wrong",
		       i, c[i].err, c[i].bad, c[i].checked);
		ops += c[i].ops;
		checked += c[i].checked;
	}
	EXPECT(checked > 0, "some faults checked");
	printf("# %ld creates and destroys, %ld overflows classified\n", ops, checked);
	drain(&s);
}

/* ---- the alternate stack helper, on a pthread ---- */

static void *altstack_thread(void *arg)
{
	int *res = arg;
	stack_t ss;

	res[0] = sr_thread_altstack(0);
	res[1] = sr_thread_altstack(0);		/* has one: kept */
	res[2] = overflow_on(sr_stack_base(stk[6]), sr_stack_size(stk[6])) &&
		last_fault.user_data == &cookies[6] && last_fault.on_stack;
	res[3] = sr_thread_altstack_free();
	res[4] = sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_DISABLE);
	return NULL;
}

static void test_altstack(void)
{
	int res[5] = { -1, -1, -1, -1, -1 };
	pthread_t t;

	EXPECT(pthread_create(&t, NULL, altstack_thread, res) == 0, "pthread_create");
	pthread_join(t, NULL);
	EXPECT(res[0] == 0 && res[1] == 0, "sr_thread_altstack: %d %d", res[0], res[1]);
	EXPECT(res[2] == 1, "overflow caught on the pthread's altstack");
	EXPECT(res[3] == 0 && res[4] == 1, "freed: %d, disabled: %d", res[3], res[4]);
}

static void test_teardown(void)
{
	for (int i = 0; i < NSTACKS; i++)
		EXPECT(sr_stack_destroy(stk[i]) == 0, "destroy %d", i);
	EXPECT(sr_uninstall_segv_handler(ctx) == 0, "uninstall");
	EXPECT(sr_ctx_destroy(ctx) == 0, "ctx destroy");
	ctx = NULL;
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "tier", test_tier },
	{ "exact_tier", test_exact_tier },
	{ "stacks", test_stacks },
	{ "overflow_exact_address", test_overflow_exact },
	{ "overflow_by_recursion", test_overflow_recursion },
	{ "fault_not_ours_chains", test_not_ours },
	{ "grow_failed", test_grow_failed },
	{ "records", test_records },
	{ "records_lost", test_lost },
	{ "trim_and_committed", test_trim },
	{ "trim_batch", test_trim_batch },
	{ "trim_budget", test_trim_budget },
	{ "arena", test_arena },
	{ "thread_cache", test_tcache },
	{ "altstack_pthread", test_altstack },
	{ "classify_under_churn", test_churn },
	{ "teardown", test_teardown },
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static int selected(const char *only, const char *name)
{
	size_t n = strlen(name);
	const char *p = only;

	if (!only || !strcmp(name, "tier") || !strcmp(name, "stacks") ||
	    !strcmp(name, "teardown"))
		return 1;
	while ((p = strstr(p, name)) != NULL) {
		if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return 1;
		p += n;
	}
	return 0;
}

/* ---- --trace463 ---- */

#ifdef __x86_64__
#define ORIG_AX	offsetof(struct user_regs_struct, orig_rax)
#define AX	offsetof(struct user_regs_struct, rax)
#else
#define ORIG_AX	offsetof(struct user_regs_struct, orig_eax)
#define AX	offsetof(struct user_regs_struct, eax)
#endif

static int trace463(char **argv, long err)
{
	struct __ptrace_syscall_info info;
	pid_t pid, tid, pending[64] = { 0 };
	int st, code = 126, calls = 0, i;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			_exit(126);
		raise(SIGSTOP);
		execv("/proc/self/exe", argv);
		_exit(126);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st) ||
	    ptrace(PTRACE_SETOPTIONS, pid, NULL, PTRACE_O_TRACESYSGOOD |
		   PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL) ||
	    ptrace(PTRACE_SYSCALL, pid, NULL, NULL)) {
		perror("trace463");
		return 1;
	}
	while ((tid = waitpid(-1, &st, __WALL)) != -1) {
		int sig = 0;

		if (!WIFSTOPPED(st)) {
			if (tid == pid)
				code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			continue;
		}
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(info), &info) <= 0)
				continue;
			if (info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == 463) {
				calls++;
				ptrace(PTRACE_POKEUSER, tid, ORIG_AX, -1L);	/* skip it */
				for (i = 0; i < 64 && pending[i]; i++)
					;
				if (i < 64)
					pending[i] = tid;
			} else if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
				for (i = 0; i < 64; i++) {
					if (pending[i] == tid) {
						pending[i] = 0;
						ptrace(PTRACE_POKEUSER, tid, AX, -err);
					}
				}
			}
		} else if (WSTOPSIG(st) != SIGTRAP && WSTOPSIG(st) != SIGSTOP) {
			sig = WSTOPSIG(st);
		}
		ptrace(PTRACE_SYSCALL, tid, NULL, sig);
	}
	printf("1..1\n");
	printf("%sok 1 %s: system call 463 made %d time(s), exit status %d\n",
	       calls == 1 && code == 0 ? "" : "not ", err == ENOSYS ? "enosys" : "e2big",
	       calls, code);
	return calls == 1 && code == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	struct sigaction sa;
	unsigned int i, n = 0, num = 0, failed = 0;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "--trace463")) {
		long err = !strcmp(argv[2], "enosys") ? ENOSYS : E2BIG;
		char *args[] = { argv[0], "--only", "thread_cache", NULL };

		setenv("SR_TEST_EXPECT_EXIT_FREE", "0", 1);
		if (!getenv("SR_TEST_THREADS"))
			setenv("SR_TEST_THREADS", "40", 1);
		return trace463(args, err);
	}
	if (argc >= 3 && !strcmp(argv[1], "--only"))
		only = argv[2];
	page = sysconf(_SC_PAGESIZE);

	/* A handler of the program's own first: the library chains to it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = prev_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGSEGV, &sa, NULL);

	r = sr_ctx_create(SR_TIER_BEST, 0, &ctx);
	if (r) {
		printf("1..1\nnot ok 1 sr_ctx_create: %s\n", strerror(-r));
		return 1;
	}
	tier = sr_ctx_tier(ctx);
	if (sr_install_segv_handler(ctx, on_fault, NULL) || sr_thread_altstack(0)) {
		printf("1..1\nnot ok 1 handler setup\n");
		return 1;
	}

	printf("TAP version 13\n");
	for (i = 0; i < NTESTS; i++)
		n += selected(only, tests[i].name);
	printf("1..%u\n", n);
	for (i = 0; i < NTESTS; i++) {
		if (!selected(only, tests[i].name))
			continue;
		t_fail = 0;
		skip_reason = NULL;
		tests[i].fn();
		num++;
		if (skip_reason)
			printf("ok %u %s # SKIP %s\n", num, tests[i].name, skip_reason);
		else
			printf("%sok %u %s\n", t_fail ? "not " : "", num, tests[i].name);
		failed += t_fail != 0;
	}
	printf("# tier %s: %u of %u failed\n", sr_tier_name(tier), failed, n);
	return failed ? 1 : 0;
}
