// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres at the scale of a green-thread runtime:
 *
 * - green_threads: 10,000 reservations for x86_64 tasks (4,000 for ia32
 *   compat, 2,000 on i386), each the stack of a makecontext() coroutine
 *   that recurses to its own depth and parks there, so that every stack is
 *   live at once.  Every tenth stack grows one page per step (chunk = one
 *   page): committed == grow_faults * page == resident pages; the others
 *   take one default-chunk step and stay lazily populated.
 *
 * - runtime: 64 worker threads run coroutines on 4,096 reservations while a
 *   manager thread epolls the fd, reads GROW records and trims the stacks
 *   that went idle.  At the end every QUERY matches the manager's own
 *   bookkeeping, and every growth step is accounted for by a GROW record or
 *   a LOST count.
 */
#include <stdatomic.h>
#include <sys/epoll.h>
#include <ucontext.h>
#include "stackres_util.h"

FIXTURE(scale) {
	int fd;
};

FIXTURE_SETUP(scale)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(scale)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Recurse @depth frames of ~700 bytes; returns a checksum of the path. */
static unsigned int __attribute__((noinline)) dive(unsigned int depth, unsigned int seed,
						   ucontext_t *park, ucontext_t *self_ctx)
{
	volatile unsigned char buf[700];
	unsigned int sum;

	buf[0] = seed;
	buf[sizeof(buf) - 1] = seed >> 8;
	if (depth == 0) {
		/* The deepest point: park here until resumed. */
		if (park)
			swapcontext(self_ctx, park);
		return seed;
	}
	sum = dive(depth - 1, seed * 33 + depth, park, self_ctx);
	return sum + buf[0] + buf[sizeof(buf) - 1];
}

static unsigned int dive_expect(unsigned int depth, unsigned int seed)
{
	unsigned int sum;

	if (depth == 0)
		return seed;
	sum = dive_expect(depth - 1, seed * 33 + depth);
	return sum + (seed & 0xff) + ((seed >> 8) & 0xff);
}

/* ---------------------------------------------------------------------- */

struct green {
	ucontext_t ctx;
	struct stackres_reg r;
	unsigned int depth, result;
	int done;
};

static ucontext_t green_main;
static struct green *greens;

static void green_fn(int i)
{
	struct green *g = &greens[i];

	g->result = dive(g->depth, i, &green_main, &g->ctx);
	g->done = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Every tenth stack grows one page per step (chunk = one page), so that
 * committed == grow_faults * page == resident pages exactly; the others use
 * the default chunk, which one coroutine never exceeds: one growth step.
 */
TEST_F_TIMEOUT(scale, green_threads, 360)
{
	/*
	 * 10,000 stacks for x86_64 tasks; fewer for 32-bit tasks (3 GiB of
	 * address space on i386), which also keeps the debug-kernel run short.
	 */
	const int n = sr_is_64bit_task() ? 10000 : sr_is_compat_task() ? 4000 : 2000;
	const uint64_t len = 128 * KIB, guard = PG;
	double t0 = now_s(), t1, t2;
	struct stackres_query q;
	long pages_total = 0;
	int i;

	greens = calloc(n, sizeof(*greens));
	ASSERT_NE(0, sr_u64(greens));
	for (i = 0; i < n; i++) {
		struct green *g = &greens[i];

		ASSERT_EQ(0, sr_reg_range(self->fd, &g->r, NULL, len, guard, 0,
					  i % 10 ? 0 : PG, 0, STACKRES_MAP)) TH_LOG("stack %d", i);
		g->depth = 1 + (i * 7) % 16;	/* up to ~12 KiB of frames */
		ASSERT_EQ(0, getcontext(&g->ctx));
		g->ctx.uc_stack.ss_sp = sr_ptr(g->r.start + guard);
		g->ctx.uc_stack.ss_size = len - guard;
		g->ctx.uc_link = &green_main;
		makecontext(&g->ctx, (void (*)(void))green_fn, 1, i);
	}
	t1 = now_s();
	/* Run each to its deepest point: all stacks live at the same time. */
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, swapcontext(&green_main, &greens[i].ctx));
	/* Resume each: unwind and finish. */
	for (i = n - 1; i >= 0; i--) {
		ASSERT_EQ(0, swapcontext(&green_main, &greens[i].ctx));
		ASSERT_EQ(1, greens[i].done);
	}
	t2 = now_s();

	for (i = 0; i < n; i++) {
		struct green *g = &greens[i];
		uint64_t frames = (uint64_t)g->depth * 700;
		long res;

		ASSERT_EQ(dive_expect(g->depth, i), g->result) TH_LOG("stack %d", i);
		ASSERT_EQ(0, sr_query(self->fd, g->r.id, &q));
		res = sr_resident(sr_ptr(g->r.start), len);
		ASSERT_EQ(q.committed, q.peak);
		ASSERT_EQ(0, q.overflows);
		if (i % 10 == 0) {
			/* At least the frames; one page per step; all touched. */
			ASSERT_LE(frames, q.committed) TH_LOG("stack %d", i);
			ASSERT_EQ(q.committed / PG, q.grow_faults) TH_LOG("stack %d", i);
			ASSERT_EQ((long)(q.committed / PG), res) TH_LOG("stack %d", i);
		} else {
			ASSERT_EQ(STACKRES_DEFAULT_CHUNK, q.committed) TH_LOG("stack %d", i);
			ASSERT_EQ(1, q.grow_faults) TH_LOG("stack %d", i);
			/* Touched lazily: the frames' pages, not the whole chunk. */
			ASSERT_LE((long)(frames / PG), res) TH_LOG("stack %d", i);
			ASSERT_GT((long)(q.committed / PG), res) TH_LOG("stack %d", i);
		}
		pages_total += res;
	}
	TH_LOG("%d stacks, %ld pages resident; register %.1fs, run %.1fs, check %.1fs",
	       n, pages_total, t1 - t0, t2 - t1, now_s() - t2);
}

/* ---------------------------------------------------------------------- */

#define RT_WORKERS	64
#define RT_PER_WORKER	64
#define RT_RES		(RT_WORKERS * RT_PER_WORKER)
#define RT_ROUNDS	2
#define RT_LEN		(64 * 1024)
#define RT_GUARD	4096

enum { ST_IDLE, ST_RUNNING, ST_TRIMMING };

struct rt_stack {
	struct stackres_reg r;
	_Atomic int state;
	int used;		/* committed since the last TRIM (owner's view) */
	int pending;		/* manager: a GROW record asked for a trim */
};

struct rt_worker {
	pthread_t th;
	int idx;
	pid_t tid;
	ucontext_t main, ctx;
	unsigned int result, expect;
};

static struct rt_stack *rt;
static struct rt_worker rtw[RT_WORKERS];
static int rt_fd;
static _Atomic int rt_workers_done;
static int rt_by_id[RT_RES * 4 + 1];

static void rt_co(int w, int s)
{
	struct rt_worker *wk = &rtw[w];

	wk->result += dive(1 + (s * 5 + w) % 8, s, NULL, NULL);
}

static void *rt_worker_fn(void *arg)
{
	struct rt_worker *wk = arg;
	int round, k;

	wk->tid = sr_gettid();
	for (round = 0; round < RT_ROUNDS; round++) {
		for (k = 0; k < RT_PER_WORKER; k++) {
			int s = wk->idx * RT_PER_WORKER + k;
			struct rt_stack *st = &rt[s];
			int idle = ST_IDLE;

			/* Wait while the manager trims it. */
			while (!atomic_compare_exchange_weak(&st->state, &idle, ST_RUNNING)) {
				idle = ST_IDLE;
				sched_yield();
			}
			getcontext(&wk->ctx);
			wk->ctx.uc_stack.ss_sp = sr_ptr(st->r.start + RT_GUARD);
			wk->ctx.uc_stack.ss_size = RT_LEN - RT_GUARD;
			wk->ctx.uc_link = &wk->main;
			makecontext(&wk->ctx, (void (*)(void))rt_co, 2, wk->idx, s);
			swapcontext(&wk->main, &wk->ctx);
			wk->expect += dive_expect(1 + (s * 5 + wk->idx) % 8, s);
			st->used = 1;
			atomic_store(&st->state, ST_IDLE);
		}
	}
	atomic_fetch_add(&rt_workers_done, 1);
	return NULL;
}

struct rt_manager {
	uint64_t grows, lost, trims, bad_records;
	int epfd;
};

static void rt_handle_records(struct rt_manager *m)
{
	struct stackres_event e[64];
	int n, i;

	while ((n = sr_read_events(rt_fd, e, 64)) > 0) {
		for (i = 0; i < n; i++) {
			if (e[i].type == STACKRES_EV_LOST) {
				m->lost += e[i].committed;
				continue;
			}
			if (e[i].type != STACKRES_EV_GROW || e[i].id > RT_RES * 4 ||
			    !rt_by_id[e[i].id] ||
			    e[i].committed != RT_LEN - RT_GUARD) {
				m->bad_records++;
				continue;
			}
			m->grows++;
			rt[rt_by_id[e[i].id] - 1].pending = 1;
		}
	}
}

static void rt_trim_idle(struct rt_manager *m)
{
	int s;

	for (s = 0; s < RT_RES; s++) {
		struct rt_stack *st = &rt[s];
		int idle = ST_IDLE;

		if (!st->pending)
			continue;
		if (!atomic_compare_exchange_strong(&st->state, &idle, ST_TRIMMING))
			continue;
		if (sr_trim(rt_fd, st->r.id, st->r.start + RT_LEN, 0) == 0) {
			st->used = 0;
			m->trims++;
		} else {
			m->bad_records++;
		}
		st->pending = 0;
		atomic_store(&st->state, ST_IDLE);
	}
}

static void *rt_manager_fn(void *arg)
{
	struct rt_manager *m = arg;
	struct epoll_event ee;

	while (atomic_load(&rt_workers_done) < RT_WORKERS) {
		if (epoll_wait(m->epfd, &ee, 1, 50) < 0 && errno != EINTR)
			break;
		rt_handle_records(m);
		rt_trim_idle(m);
	}
	rt_handle_records(m);
	return NULL;
}

TEST_F_TIMEOUT(scale, runtime, 300)
{
	struct epoll_event ee = { .events = EPOLLIN };
	struct rt_manager m = { 0 };
	struct stackres_query q;
	uint64_t faults = 0, committed = 0, expect_committed = 0;
	unsigned int result = 0, expect = 0;
	double t0 = now_s(), t1;
	pthread_attr_t attr;
	pthread_t mt;
	int s, w;

	rt_fd = self->fd;
	rt = calloc(RT_RES, sizeof(*rt));
	ASSERT_NE(0, sr_u64(rt));
	for (s = 0; s < RT_RES; s++) {
		ASSERT_EQ(0, sr_reg_range(self->fd, &rt[s].r, NULL, RT_LEN, RT_GUARD, 0,
					  RT_LEN - RT_GUARD, 0,
					  STACKRES_MAP | STACKRES_NOTIFY_GROW)) TH_LOG("stack %d", s);
		ASSERT_GE(RT_RES * 4, rt[s].r.id);
		rt_by_id[rt[s].r.id] = s + 1;
	}

	m.epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, m.epfd);
	ASSERT_EQ(0, epoll_ctl(m.epfd, EPOLL_CTL_ADD, self->fd, &ee));
	ASSERT_EQ(0, pthread_create(&mt, NULL, rt_manager_fn, &m));

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (w = 0; w < RT_WORKERS; w++) {
		rtw[w].idx = w;
		ASSERT_EQ(0, pthread_create(&rtw[w].th, &attr, rt_worker_fn, &rtw[w]));
	}
	for (w = 0; w < RT_WORKERS; w++) {
		pthread_join(rtw[w].th, NULL);
		result += rtw[w].result;
		expect += rtw[w].expect;
	}
	pthread_join(mt, NULL);
	t1 = now_s();

	EXPECT_EQ(expect, result);
	EXPECT_EQ(0, m.bad_records);
	for (s = 0; s < RT_RES; s++) {
		ASSERT_EQ(0, sr_query(self->fd, rt[s].r.id, &q));
		EXPECT_EQ(rt[s].used ? RT_LEN - RT_GUARD : 0, q.committed)
			TH_LOG("stack %d", s);
		EXPECT_EQ(RT_LEN - RT_GUARD, q.peak);
		EXPECT_EQ(0, q.overflows);
		committed += q.committed;
		expect_committed += rt[s].used ? RT_LEN - RT_GUARD : 0;
		faults += q.grow_faults;
	}
	TH_LOG("%llu growth steps: %llu GROW records, %llu lost; %llu trims; %llu KiB committed; %.1fs",
	       (unsigned long long)faults, (unsigned long long)m.grows,
	       (unsigned long long)m.lost, (unsigned long long)m.trims,
	       (unsigned long long)committed / 1024, t1 - t0);
	EXPECT_EQ(expect_committed, committed);
	EXPECT_EQ(faults, m.grows + m.lost);
	EXPECT_LE(RT_RES, faults);
	close(m.epfd);
}

TEST_HARNESS_MAIN
