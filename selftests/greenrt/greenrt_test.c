// SPDX-License-Identifier: GPL-2.0
/*
 * libgreenrt, the example green-thread runtime, as a client of /dev/stackres
 * and exit_free(2):
 *  - the API works (spawn, yield order, park/unpark, join from threads and
 *    coroutines), natively and in fallback mode;
 *  - a coroutine that overflows its stack is killed alone: the others finish
 *    with their exact results, and a second overflow on the same worker works
 *    too (the handler restored the signal mask);
 *  - a coroutine whose system call wrote into its guard (EFAULT, no signal)
 *    is ended by the manager from the record (origin KERNEL);
 *  - after the manager's TRIM, parked stacks hold at most a stated bound
 *    (the committed sum of STACKRES_IOC_LIST, and QUERY per stack), their
 *    live frames intact, and every stack crossing the watermark produced
 *    exactly one WATERMARK record;
 *  - both kinds of worker thread: raw clone(2) threads on libstackres's
 *    thread-stack cache, their stacks reused after the exit_free store, and
 *    pthreads, on which coroutine code may call malloc, stdio and errno;
 *  - GREENRT_FALLBACK=1 forces the fallback mode.
 * Native tests SKIP with the reason when /dev/stackres or exit_free is absent;
 * the fallback variants always run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/stackres.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "greenrt.h"
#include "../kselftest_harness.h"

#define KIB 1024UL

static const char *native_missing(void)
{
	static char why[128];
	int fd = open("/dev/stackres", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, sizeof(why), "/dev/stackres unavailable (%s)", strerror(errno));
		return why;
	}
	close(fd);
	if (!gr_exit_free_available())
		return "exit_free(2) not in this kernel (ENOSYS)";
	return NULL;
}

FIXTURE(rt) {
	int dummy;
};

FIXTURE_VARIANT(rt) {
	enum gr_mode mode;
	enum gr_workers workers;
};

FIXTURE_VARIANT_ADD(rt, native) {
	.mode = GR_MODE_NATIVE,
	.workers = GR_WORKERS_RAW,
};

FIXTURE_VARIANT_ADD(rt, native_pthread) {
	.mode = GR_MODE_NATIVE,
	.workers = GR_WORKERS_PTHREAD,
};

FIXTURE_VARIANT_ADD(rt, fallback) {
	.mode = GR_MODE_FALLBACK,
	.workers = GR_WORKERS_PTHREAD,
};

FIXTURE_VARIANT_ADD(rt, fallback_raw) {
	.mode = GR_MODE_FALLBACK,
	.workers = GR_WORKERS_RAW,
};

/* The workers of the runtimes the next tests start. */
static enum gr_workers worker_threads;

FIXTURE_SETUP(rt)
{
	const char *why;

	worker_threads = variant->workers;
	unsetenv("GREENRT_FALLBACK");
	if (variant->mode == GR_MODE_NATIVE) {
		why = native_missing();
		if (why)
			SKIP(return, "%s", why);
	}
}

FIXTURE_TEARDOWN(rt)
{
}

static void init(struct __test_metadata *_metadata, enum gr_mode mode,
		 unsigned int workers, size_t watermark)
{
	struct gr_config cfg = {
		.mode = mode,
		.workers = workers,
		.watermark = watermark,
		.verbose = 1,
		.worker_threads = worker_threads,
	};

	ASSERT_EQ(0, gr_init(&cfg));
	ASSERT_EQ(mode, gr_mode());
	if (worker_threads)
		ASSERT_EQ(worker_threads, gr_worker_threads());
}

static void start(struct __test_metadata *_metadata, enum gr_mode mode,
		  unsigned int workers, size_t watermark)
{
	init(_metadata, mode, workers, watermark);
	ASSERT_EQ(0, gr_start());
}

/* ---------------- API: spawn, yield order, park/unpark, join ---------------- */

static char order[16];
static _Atomic int order_len;

static void letters(void *arg)
{
	int i;

	for (i = 0; i < 3; i++) {
		order[atomic_fetch_add(&order_len, 1)] = (char)(uintptr_t)arg;
		gr_yield();
	}
}

static _Atomic uint32_t counter;

static void count_up(void *arg)
{
	int i;

	for (i = 0; i < 10; i++) {
		atomic_fetch_add(&counter, 1);
		gr_yield();
	}
}

static struct gr_coro *sleeper;
static _Atomic int sleeper_state;

static void sleepy(void *arg)
{
	atomic_store(&sleeper_state, 1);
	while (atomic_load(&sleeper_state) != 2)
		gr_park();
	atomic_store(&sleeper_state, 3);
}

static void child(void *arg)
{
	*(int *)arg = 42;
}

static _Atomic int join_seen;

static void parent(void *arg)
{
	int v = 0;
	struct gr_coro *c = gr_spawn(child, &v);

	if (c && gr_join(c) == GR_OK && v == 42)
		atomic_store(&join_seen, 1);
}

TEST_F_TIMEOUT(rt, api, 120)
{
	struct gr_coro *a, *b, *p, *cs[200];
	struct gr_stats s;
	int i;

	/* One worker and a FIFO run queue: yields alternate exactly. */
	init(_metadata, variant->mode, 1, 0);
	a = gr_spawn(letters, (void *)'A');
	b = gr_spawn(letters, (void *)'B');
	ASSERT_TRUE(a && b);
	ASSERT_EQ(0, gr_start());
	ASSERT_EQ(GR_OK, gr_join(a));
	ASSERT_EQ(GR_OK, gr_join(b));
	ASSERT_EQ(6, order_len);
	ASSERT_EQ(0, memcmp(order, "ABABAB", 6));

	/* park / unpark from a thread */
	sleeper = gr_spawn(sleepy, NULL);
	ASSERT_TRUE(sleeper != NULL);
	while (atomic_load(&sleeper_state) != 1)
		usleep(1000);
	usleep(20000);
	ASSERT_EQ(1, atomic_load(&sleeper_state));	/* still parked */
	atomic_store(&sleeper_state, 2);
	gr_unpark(sleeper);
	ASSERT_EQ(GR_OK, gr_join(sleeper));
	ASSERT_EQ(3, atomic_load(&sleeper_state));

	/* join from a coroutine */
	p = gr_spawn(parent, NULL);
	ASSERT_EQ(GR_OK, gr_join(p));
	ASSERT_EQ(1, atomic_load(&join_seen));
	gr_stop();

	/* M:N: two workers, 200 coroutines yielding 10 times each */
	ASSERT_EQ(0, gr_start());
	for (i = 0; i < 200; i++) {
		cs[i] = gr_spawn(count_up, NULL);
		ASSERT_TRUE(cs[i] != NULL);
	}
	for (i = 0; i < 200; i++)
		ASSERT_EQ(GR_OK, gr_join(cs[i]));
	ASSERT_EQ(2000, atomic_load(&counter));
	gr_get_stats(&s);
	ASSERT_EQ(205, s.spawned);
	ASSERT_EQ(205, s.finished);
	ASSERT_EQ(0, s.killed);
	gr_shutdown();
}

/* ---------------- overflow isolation ---------------- */

#define NCO 48
static const int victims[2] = { 11, 30 };
static uint32_t results[NCO];

static __attribute__((noinline)) uint32_t recurse(unsigned long n, uint32_t x)
{
	volatile unsigned char buf[200];

	buf[0] = (unsigned char)x;
	buf[199] = (unsigned char)(x >> 8);
	if (n % 64 == 0)
		gr_yield();
	if (!n)
		return x;
	return recurse(n - 1, x * 33 + 7) + buf[0] + buf[199];
}

static uint32_t expected(unsigned long n, uint32_t x)
{
	uint32_t r = 0, xs[400];
	unsigned long i;

	/* recurse() without the stack: sum of the low two bytes on the way up */
	for (i = 0; i <= n; i++) {
		xs[i] = x;
		x = x * 33 + 7;
	}
	r = xs[n];
	for (i = n; i-- > 0;)
		r += (xs[i] & 0xff) + ((xs[i] >> 8) & 0xff);
	return r;
}

static void work(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	if (i == (uintptr_t)victims[0] || i == (uintptr_t)victims[1]) {
		recurse(~0UL, (uint32_t)i);	/* only the guard stops it */
		results[i] = 0xdead;
		return;
	}
	results[i] = recurse(100 + i * 5, (uint32_t)i);
}

TEST_F_TIMEOUT(rt, overflow_isolated, 180)
{
	struct gr_coro *cs[NCO];
	unsigned long seq[NCO];
	struct gr_stats s;
	int i, st;

	/* One worker: both overflows are handled on the same thread. */
	start(_metadata, variant->mode, 1, 0);
	for (i = 0; i < NCO; i++) {
		cs[i] = gr_spawn(work, (void *)(uintptr_t)i);
		ASSERT_TRUE(cs[i] != NULL);
		seq[i] = gr_coro_seq(cs[i]);
	}
	for (i = 0; i < NCO; i++) {
		st = gr_join(cs[i]);
		if (i == victims[0] || i == victims[1]) {
			EXPECT_EQ(GR_KILLED_OVERFLOW, st);
			EXPECT_EQ(0, results[i]);
		} else {
			EXPECT_EQ(GR_OK, st) TH_LOG("coroutine %d", i);
			EXPECT_EQ(expected(100 + i * 5, i), results[i]) TH_LOG("coroutine %d", i);
		}
	}
	gr_manager_sync();
	gr_get_stats(&s);
	EXPECT_EQ(NCO - 2, s.finished);
	EXPECT_EQ(2, s.killed);
	EXPECT_EQ(seq[victims[0]], s.overflow_seq);
	/* the guard is the lowest page of the stack */
	EXPECT_LE(s.overflow_stack_start, s.overflow_addr);
	EXPECT_GT(s.overflow_stack_start + 4096, s.overflow_addr);
	if (variant->mode == GR_MODE_NATIVE) {
		EXPECT_EQ(2, s.ev_overflow);
		/* the whole reservation but the guard was committed */
		EXPECT_EQ(gr_stack_size() - 4096, s.overflow_committed);
	}
	/* The runtime still works after both kills. */
	cs[0] = gr_spawn(work, (void *)(uintptr_t)1);
	ASSERT_EQ(GR_OK, gr_join(cs[0]));
	EXPECT_EQ(expected(105, 1), results[1]);
	gr_shutdown();
}

/* ---------------- TRIM of parked stacks ---------------- */

#define NTRIM 32
static struct gr_gate deep_gate, rest_gate;
static uintptr_t frame_addr[NTRIM];
static _Atomic int intact;

static __attribute__((noinline)) void go_deep(unsigned long n)
{
	volatile unsigned char buf[256];

	buf[0] = 1;
	if (n)
		go_deep(n - 1);
	else
		gr_gate_wait(&deep_gate);
	buf[255] = buf[0];
}

static void trimmed(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	size_t deep = sizeof(long) == 8 ? 512 * KIB : 256 * KIB;
	volatile unsigned char mine[512];
	unsigned int k;

	for (k = 0; k < sizeof(mine); k++)
		mine[k] = (unsigned char)(i + k);
	go_deep(deep / 256);	/* each level takes more than its 256-byte buffer */
	frame_addr[i] = (uintptr_t)mine;
	gr_gate_wait(&rest_gate);	/* parked shallow: the manager trims */
	for (k = 0; k < sizeof(mine); k++)
		if (mine[k] != (unsigned char)(i + k))
			return;
	atomic_fetch_add(&intact, 1);
}

/* Native only: fallback stacks are fully read/write, nothing to measure. */
FIXTURE(native) {
	int dummy;
};

FIXTURE_SETUP(native)
{
	const char *why = native_missing();

	worker_threads = GR_WORKERS_DEFAULT;
	if (why)
		SKIP(return, "%s", why);
	unsetenv("GREENRT_FALLBACK");
}

FIXTURE_TEARDOWN(native)
{
}

TEST_F_TIMEOUT(native, trim_bound, 180)
{
	const size_t deep = sizeof(long) == 8 ? 512 * KIB : 256 * KIB;
	/*
	 * The stated bound: a stack parked a few frames below its top keeps
	 * its frames plus trim_keep, rounded to pages: at most 16 KiB.
	 */
	const size_t bound = 16 * KIB;
	struct gr_coro *cs[NTRIM];
	uint64_t at_depth, after;
	struct gr_stats s;
	int i;

	/* watermark below the depth: one WATERMARK record per stack */
	start(_metadata, GR_MODE_NATIVE, 2, deep / 2);
	gr_gate_init(&deep_gate);
	gr_gate_init(&rest_gate);
	for (i = 0; i < NTRIM; i++) {
		cs[i] = gr_spawn(trimmed, (void *)(uintptr_t)i);
		ASSERT_TRUE(cs[i] != NULL);
	}
	gr_gate_wait_arrived(&deep_gate, NTRIM, 0);
	at_depth = gr_committed();
	EXPECT_LE(NTRIM * deep, at_depth);
	gr_gate_open(&deep_gate);
	gr_gate_wait_arrived(&rest_gate, NTRIM, 0);
	gr_manager_sync();
	after = gr_committed();
	EXPECT_GE(NTRIM * bound, after) TH_LOG("committed after TRIM %llu, at depth %llu",
					       (unsigned long long)after,
					       (unsigned long long)at_depth);
	for (i = 0; i < NTRIM; i++) {
		struct stackres_query q = {
			.flags = STACKRES_QUERY_ADDR,
			.addr = frame_addr[i],
		};

		ASSERT_EQ(0, ioctl(gr_stackres_fd(), STACKRES_IOC_QUERY, &q));
		EXPECT_GE(bound, q.committed) TH_LOG("stack %d", i);
		EXPECT_LE(deep, q.peak) TH_LOG("stack %d", i);
	}
	gr_get_stats(&s);
	EXPECT_LE(NTRIM, s.trims_parked);
	EXPECT_EQ(NTRIM, s.ev_watermark);
	gr_gate_open(&rest_gate);
	for (i = 0; i < NTRIM; i++)
		ASSERT_EQ(GR_OK, gr_join(cs[i]));
	/* frames above the trimmed part survived */
	EXPECT_EQ(NTRIM, atomic_load(&intact));
	gr_shutdown();
}

/* ---------------- a guard hit by the kernel ---------------- */

long gr_syscall(long nr, long a, long b, long c, long d, long e, long f);	/* libgreenrt */
static int kpipe[2];
static _Atomic long kread_ret;

static void kernel_writer(void *arg)
{
	char here;
	uintptr_t guard = ((uintptr_t)&here & ~(uintptr_t)(gr_stack_size() - 1)) + 64;

	/* read() copies into the guard page: EFAULT, no signal (no libc: no errno) */
	atomic_store(&kread_ret, gr_syscall(SYS_read, kpipe[0], guard, 128, 0, 0, 0));
	for (;;)
		gr_yield();	/* until the manager ends it at a switch */
}

TEST_F_TIMEOUT(native, kernel_overflow, 120)
{
	static const char data[128] = "stackres";
	struct gr_coro *c;
	struct gr_stats s;

	start(_metadata, GR_MODE_NATIVE, 1, 0);
	ASSERT_EQ(0, pipe(kpipe));
	ASSERT_EQ(sizeof(data), write(kpipe[1], data, sizeof(data)));
	c = gr_spawn(kernel_writer, NULL);
	ASSERT_TRUE(c != NULL);
	EXPECT_EQ(GR_KILLED_FAULT, gr_join(c));
	EXPECT_EQ(-EFAULT, atomic_load(&kread_ret));
	gr_manager_sync();
	gr_get_stats(&s);
	EXPECT_LE(1, s.ev_overflow);
	EXPECT_EQ(1, s.killed);
	EXPECT_EQ(0, s.overflow_seq);	/* that one is for user-mode hits */
	close(kpipe[0]);
	close(kpipe[1]);
	gr_shutdown();
}

/* ---------------- the two kinds of worker thread ---------------- */

TEST(raw_workers_reuse_stacks)
{
	struct gr_config cfg = { .workers = 2, .worker_threads = GR_WORKERS_RAW };
	struct gr_coro *c;
	struct gr_stats s;
	int round;

	ASSERT_EQ(0, gr_init(&cfg));
	ASSERT_EQ(GR_WORKERS_RAW, gr_worker_threads());
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, gr_start());
		c = gr_spawn(count_up, NULL);
		ASSERT_TRUE(c != NULL);
		ASSERT_EQ(GR_OK, gr_join(c));
		gr_stop();
	}
	gr_get_stats(&s);
	/* gr_stop() waited for the exit_free stores: the second start made no stack */
	EXPECT_EQ(4, s.threads_started);
	EXPECT_EQ(2, s.thread_stacks_created);
	EXPECT_EQ(2, s.thread_stacks_reused);
	gr_shutdown();
}

static _Atomic int libc_ok;

static void uses_libc(void *arg)
{
	char buf[64], *p;
	int i;

	for (i = 0; i < 20; i++) {
		p = malloc(100 + i * 1000);
		if (!p)
			return;
		snprintf(buf, sizeof(buf), "coroutine %lu round %d", (unsigned long)(uintptr_t)arg, i);
		memcpy(p, buf, sizeof(buf));
		errno = 0;
		if (close(-1) != -1 || errno != EBADF) {
			free(p);
			return;
		}
		gr_yield();		/* may go on on another worker */
		if (strcmp(p, buf)) {
			free(p);
			return;
		}
		free(p);
	}
	atomic_fetch_add(&libc_ok, 1);
}

TEST(pthread_workers_libc)
{
	struct gr_config cfg = { .workers = 2, .worker_threads = GR_WORKERS_PTHREAD };
	struct gr_coro *cs[16];
	int i;

	ASSERT_EQ(0, gr_init(&cfg));
	ASSERT_EQ(GR_WORKERS_PTHREAD, gr_worker_threads());
	ASSERT_EQ(0, gr_start());
	for (i = 0; i < 16; i++) {
		cs[i] = gr_spawn(uses_libc, (void *)(uintptr_t)i);
		ASSERT_TRUE(cs[i] != NULL);
	}
	for (i = 0; i < 16; i++)
		ASSERT_EQ(GR_OK, gr_join(cs[i]));
	EXPECT_EQ(16, atomic_load(&libc_ok));
	gr_shutdown();
}

/* ---------------- the fallback switch ---------------- */

TEST(fallback_env)
{
	struct gr_config cfg = { .mode = GR_MODE_AUTO, .workers = 2 };
	struct gr_coro *c;
	uint32_t before;

	setenv("GREENRT_FALLBACK", "1", 1);
	ASSERT_EQ(0, gr_init(&cfg));
	EXPECT_EQ(GR_MODE_FALLBACK, gr_mode());
	EXPECT_TRUE(strstr(gr_mode_reason(), "GREENRT_FALLBACK") != NULL);
	EXPECT_EQ(-1, gr_stackres_fd());
	ASSERT_EQ(0, gr_start());
	before = atomic_load(&counter);
	c = gr_spawn(count_up, NULL);
	ASSERT_TRUE(c != NULL);
	ASSERT_EQ(GR_OK, gr_join(c));
	EXPECT_EQ(before + 10, atomic_load(&counter));
	gr_shutdown();
	unsetenv("GREENRT_FALLBACK");

	/* Without the switch: native exactly when both features exist. */
	ASSERT_EQ(0, gr_init(&cfg));
	EXPECT_EQ(native_missing() ? GR_MODE_FALLBACK : GR_MODE_NATIVE, gr_mode());
	gr_shutdown();
}

TEST_HARNESS_MAIN
