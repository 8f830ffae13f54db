// SPDX-License-Identifier: GPL-2.0
/*
 * Races between the MMU notifier (munmap, mmap MAP_FIXED over a range) and
 * the calls that act on the same reservations.
 *
 * - unmap_against_unregister_close_reap: threads of one process REGISTER
 *   small reservations over a few shared slots, UNREGISTER them, replace
 *   their files (dup2 over the fd: the old file's last close frees its
 *   reservations), QUERY, and munmap or map over the slots (which ends the
 *   reservations there, marked dead by the notifier and freed by the next
 *   call that meets them), all at once.  Every call must give an errno of
 *   its documented set; at the end every slot is unmapped and nothing can be
 *   found or unregistered, and a fresh REGISTER over every slot works (no
 *   stale reservation blocks it).  Then the process closes everything and
 *   exits, tearing its per-mm state down, and the next round starts.  The
 *   module counts dead reservations per mm and WARNs (which fails a debug
 *   guest) if the count is not zero at teardown: the old kernel let it
 *   drift when the notifier marked a reservation that was being freed.
 *
 * - dense_trim_against_remap: one thread TRIMs an arena slot (sp = slot
 *   top, keep 0) in a loop while the main thread replaces the arena with a
 *   fresh private mapping (munmap + mmap MAP_FIXED, or mmap MAP_FIXED over
 *   it), fills it with a pattern, waits until two more TRIMs completed, and
 *   checks the pattern; then makes the mapping an arena again.  A TRIM must
 *   act on the arena or fail (ENOENT, EINVAL) and never discard memory that
 *   is no longer the arena: the old kernel validated under mmap_lock but
 *   discarded after dropping it (lost pages, or ENOMEM from madvise()).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include "stackres_util.h"

static double sr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

FIXTURE(races) {
	int fd;
};

FIXTURE_SETUP(races)
{
	SR_OPEN_OR_SKIP(self->fd, 0);
}

FIXTURE_TEARDOWN(races)
{
	if (self->fd >= 0)
		close(self->fd);
}

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* ---- unmap against UNREGISTER, close and reap ---- */

#define NR_SLOTS	8
#define SLOT_PAGES	2
#define NR_FILES	3
#define NR_THREADS	4
#define ROUND_SECS	1.0
#define TOTAL_SECS	8.0

enum { OP_REGISTER, OP_UNREGISTER, OP_UNMAP, OP_REMAP, OP_REOPEN, OP_QUERY, NR_OPS };
static const char * const op_name[NR_OPS] = {
	"REGISTER", "UNREGISTER", "munmap+mmap", "mmap over", "reopen", "QUERY",
};
/* Each thread runs this cycle from its own point, on random slots and files. */
static const unsigned char op_cycle[] = {
	OP_REGISTER, OP_UNREGISTER, OP_REGISTER, OP_REMAP, OP_REGISTER, OP_QUERY,
	OP_REGISTER, OP_UNMAP, OP_UNREGISTER, OP_REGISTER, OP_REMAP, OP_REGISTER,
	OP_REOPEN, OP_UNREGISTER, OP_REGISTER, OP_UNMAP, OP_QUERY, OP_REGISTER,
	OP_REMAP, OP_UNREGISTER,
};
#define NR_CYCLE	(sizeof(op_cycle) / sizeof(op_cycle[0]))

struct race {
	char *area;
	int anchor;			/* never replaced: keeps the per-mm state */
	int fds[NR_FILES];

	_Atomic uint64_t last[NR_SLOTS];	/* file << 32 | id registered there */
	double deadline;
	atomic_int bad;
	atomic_long calls[NR_OPS], ok[NR_OPS];
	int bad_op, bad_err;
};

static char *slot_addr(struct race *r, int s)
{
	return r->area + (size_t)s * SLOT_PAGES * PG;
}

static void race_bad(struct race *r, int op, int err)
{
	if (atomic_fetch_add(&r->bad, 1) == 0) {
		r->bad_op = op;
		r->bad_err = err;
	}
}

static void *race_thread(void *arg)
{
	struct race *r = arg;
	uint32_t seed = (uint32_t)sr_gettid() * 2654435761u | 1;
	unsigned long n = xorshift(&seed) % NR_CYCLE, end = n + 3 * NR_CYCLE;

	/* At least three cycles, then until the deadline. */
	while (n < end || (n & 7) || sr_now() < r->deadline) {
		uint32_t x = xorshift(&seed);
		int s = x % NR_SLOTS, k = (x >> 8) % NR_FILES, op, ret = 0;
		struct stackres_query q;
		struct stackres_reg reg;
		uint64_t last;
		char *a = slot_addr(r, s);

		op = op_cycle[n++ % NR_CYCLE];
		atomic_fetch_add(&r->calls[op], 1);
		switch (op) {
		case OP_REGISTER:
			ret = sr_reg_range(r->fds[k], &reg, a, SLOT_PAGES * PG, 0,
					   (x >> 24) & 1 ? PG : 0, 0, 0, 0);
			if (!ret)
				atomic_store(&r->last[s], (uint64_t)k << 32 | reg.id);
			else if (ret != -EEXIST && ret != -ENXIO)
				race_bad(r, op, -ret);
			break;
		case OP_UNREGISTER:
			last = atomic_load(&r->last[s]);
			ret = sr_unregister(r->fds[last >> 32], (uint32_t)last);
			if (ret && ret != -ENOENT)
				race_bad(r, op, -ret);
			break;
		case OP_UNMAP:
			/* Both must succeed: the slot is ours alone. */
			if (munmap(a, SLOT_PAGES * PG) ||
			    mmap(a, SLOT_PAGES * PG, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a)
				race_bad(r, op, ret = errno);
			break;
		case OP_REMAP:
			if (mmap(a, SLOT_PAGES * PG, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a)
				race_bad(r, op, ret = errno);
			break;
		case OP_REOPEN: {
			int nfd = open(SR_DEV, O_RDWR | O_CLOEXEC);

			/* dup2 replaces atomically: no thread sees EBADF. */
			if (nfd < 0 || dup2(nfd, r->fds[k]) != r->fds[k])
				race_bad(r, op, ret = errno);
			if (nfd >= 0)
				close(nfd);
			break;
		}
		case OP_QUERY:
			ret = sr_query_addr(r->fds[k], sr_u64(a), &q);
			if (ret && ret != -ENOENT)
				race_bad(r, op, -ret);
			break;
		}
		if (!ret)
			atomic_fetch_add(&r->ok[op], 1);
	}
	return NULL;
}

/* Say why on stderr and exit with @code. */
static int race_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "# ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return code;
}

/* One process: the threads, then exact checks; returns its exit status. */
static int race_round(double secs, long *calls, long *ok)
{
	size_t len = (size_t)NR_SLOTS * SLOT_PAGES * PG;
	pthread_t thr[NR_THREADS];
	struct stackres_query q;
	struct stackres_reg reg;
	static struct race r;
	int i, k, s, ret;

	memset(&r, 0, sizeof(r));
	r.anchor = open(SR_DEV, O_RDWR | O_CLOEXEC);
	if (r.anchor < 0)
		return race_fail(10, "open: %s", strerror(errno));
	for (k = 0; k < NR_FILES; k++) {
		r.fds[k] = open(SR_DEV, O_RDWR | O_CLOEXEC);
		if (r.fds[k] < 0)
			return race_fail(10, "open: %s", strerror(errno));
	}
	r.area = sr_map_isolated(len, PROT_NONE);
	if (!r.area)
		return race_fail(10, "mmap: %s", strerror(errno));
	r.deadline = sr_now() + secs;
	for (i = 0; i < NR_THREADS; i++)
		if (pthread_create(&thr[i], NULL, race_thread, &r))
			return race_fail(10, "pthread_create failed");
	for (i = 0; i < NR_THREADS; i++)
		pthread_join(thr[i], NULL);
	for (i = 0; i < NR_OPS; i++) {
		calls[i] += r.calls[i];
		ok[i] += r.ok[i];
	}
	if (r.bad)
		return race_fail(11, "%d calls failed outside their errno set, first: %s: %s",
				 r.bad, op_name[r.bad_op], strerror(r.bad_err));

	/* Unmap every slot: whatever was registered there has ended. */
	if (munmap(r.area, len))
		return race_fail(12, "munmap: %s", strerror(errno));
	for (k = 0; k < NR_FILES; k++)
		for (s = 0; s < NR_SLOTS; s++) {
			ret = sr_query_addr(r.fds[k], sr_u64(slot_addr(&r, s)), &q);
			if (ret != -ENOENT)
				return race_fail(13, "QUERY slot %d file %d after munmap: %d",
						 s, k, ret);
		}
	for (s = 0; s < NR_SLOTS; s++) {
		uint64_t last = r.last[s];

		if (!last)
			continue;
		ret = sr_unregister(r.fds[last >> 32], (uint32_t)last);
		if (ret != -ENOENT)
			return race_fail(14, "UNREGISTER of id %u after munmap: %d",
					 (uint32_t)last, ret);
	}
	for (k = 0; k < NR_FILES; k++)
		close(r.fds[k]);
	/* Nothing stale in the tree: every slot can be registered again. */
	if (mmap(r.area, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) != r.area)
		return race_fail(12, "mmap: %s", strerror(errno));
	for (s = 0; s < NR_SLOTS; s++) {
		ret = sr_reg_range(r.anchor, &reg, slot_addr(&r, s), SLOT_PAGES * PG,
				   0, 0, 0, 0, 0);
		if (ret)
			return race_fail(15, "REGISTER slot %d at the end: %d", s, ret);
		ret = sr_unregister(r.anchor, reg.id);
		if (ret)
			return race_fail(15, "UNREGISTER slot %d at the end: %d", s, ret);
		ret = sr_query_addr(r.anchor, sr_u64(slot_addr(&r, s)), &q);
		if (ret != -ENOENT)
			return race_fail(15, "QUERY slot %d at the end: %d", s, ret);
	}
	close(r.anchor);
	return 0;
}

TEST_F_TIMEOUT(races, unmap_against_unregister_close_reap, 120)
{
	long calls[NR_OPS], ok[NR_OPS], *shared;
	double end = sr_now() + TOTAL_SECS;
	int rounds = 0, i, status;
	pid_t pid;

	shared = mmap(NULL, 2 * sizeof(calls), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared);
	memset(shared, 0, 2 * sizeof(calls));
	do {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(race_round(ROUND_SECS, shared, shared + NR_OPS));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		rounds++;
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("round %d: status %#x", rounds, status);
	} while (sr_now() < end || rounds < 2);
	memcpy(calls, shared, sizeof(calls));
	memcpy(ok, shared + NR_OPS, sizeof(ok));
	for (i = 0; i < NR_OPS; i++)
		TH_LOG("%-12s %7ld calls, %7ld succeeded", op_name[i], calls[i], ok[i]);
	TH_LOG("%d rounds (processes)", rounds);
	/* The race was really run: each kind of call succeeded. */
	for (i = 0; i < NR_OPS; i++)
		ASSERT_LT(0, ok[i]) TH_LOG("no successful call of kind %d", i);
}

/* ---- dense TRIM against munmap + mmap ---- */

#define AR_SLOT_PAGES	8
#define AR_NSLOTS	1
#define AR_SECS		6.0
#define AR_ROUNDS	20

struct trimmer {
	int fd;
	uint64_t sp;

	_Atomic uint32_t id;
	atomic_int stop;
	atomic_long done, ok, enoent, einval, other;
	int other_err;
};

static void *trim_thread(void *arg)
{
	struct trimmer *t = arg;

	while (!atomic_load(&t->stop)) {
		int ret = sr_trim(t->fd, atomic_load(&t->id), t->sp, 0);

		if (!ret)
			atomic_fetch_add(&t->ok, 1);
		else if (ret == -ENOENT)
			atomic_fetch_add(&t->enoent, 1);
		else if (ret == -EINVAL)
			atomic_fetch_add(&t->einval, 1);
		else if (atomic_fetch_add(&t->other, 1) == 0)
			t->other_err = -ret;
		atomic_fetch_add(&t->done, 1);
	}
	return NULL;
}

static uint8_t fill_byte(unsigned long round, size_t page)
{
	return (uint8_t)(round * 7 + page * 13 + 1) | 1;	/* never 0 */
}

TEST_F_TIMEOUT(races, dense_trim_against_remap, 120)
{
	size_t len = AR_SLOT_PAGES * AR_NSLOTS * PG, pg;
	unsigned long round = 0, lost_pages = 0, lost_rounds = 0, remapped[2] = { 0, 0 };
	uint32_t seed = 12345;
	struct stackres_arena a;
	struct trimmer t;
	double start;
	pthread_t thr;
	char *p;
	int ret;

	memset(&t, 0, sizeof(t));
	t.fd = self->fd;
	p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, p);
	memset(&a, 0, sizeof(a));
	a.start = sr_u64(p);
	a.slot = AR_SLOT_PAGES * PG;
	a.nslots = AR_NSLOTS;
	a.guard = PG;
	ASSERT_EQ(0, sr_ioctl(t.fd, STACKRES_IOC_ARENA, &a));
	t.id = a.id;
	t.sp = a.start + a.slot;	/* the top of slot 0: all of it */
	ASSERT_EQ(0, pthread_create(&thr, NULL, trim_thread, &t));

	/* AR_SECS and AR_ROUNDS rounds, unless that takes 3 * AR_SECS. */
	start = sr_now();
	while (sr_now() < start + 3 * AR_SECS &&
	       (sr_now() < start + AR_SECS || round < AR_ROUNDS)) {
		int mode = round & 1, lost = 0, spins;
		long done0 = atomic_load(&t.ok);
		volatile unsigned int delay;

		/* Let a TRIM find the new arena, then hit the next one. */
		for (spins = 0; spins < 10000 && atomic_load(&t.ok) == done0; spins++)
			sched_yield();
		for (delay = xorshift(&seed) % 4096; delay; delay--)
			;
		/* The arena ends here (the MMU notifier marks it dead). */
		if (mode == 0)
			ASSERT_EQ(0, munmap(p, len));
		ASSERT_EQ(p, mmap(p, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
		remapped[mode]++;
		for (pg = 0; pg < len / PG; pg++)
			memset(p + pg * PG, fill_byte(round, pg), PG);
		/* A TRIM that validated the old arena has finished by now. */
		done0 = atomic_load(&t.done);
		for (spins = 0; spins < 10000 && atomic_load(&t.done) < done0 + 2; spins++)
			sched_yield();
		for (pg = 0; pg < len / PG; pg++) {
			const char *c = p + pg * PG;
			size_t i;

			for (i = 0; i < PG; i++)
				if ((uint8_t)c[i] != fill_byte(round, pg))
					break;
			lost += i < PG;
		}
		lost_pages += lost;
		lost_rounds += lost > 0;
		memset(&a, 0, sizeof(a));
		a.start = sr_u64(p);
		a.slot = AR_SLOT_PAGES * PG;
		a.nslots = AR_NSLOTS;
		a.guard = PG;
		ret = sr_ioctl(t.fd, STACKRES_IOC_ARENA, &a);
		ASSERT_EQ(0, ret) TH_LOG("ARENA round %lu: %s", round, strerror(-ret));
		atomic_store(&t.id, a.id);
		round++;
	}
	atomic_store(&t.stop, 1);
	pthread_join(thr, NULL);

	TH_LOG("%lu rounds (%lu munmap+mmap, %lu mmap over)", round, remapped[0], remapped[1]);
	TH_LOG("TRIM: %ld ok, %ld ENOENT, %ld EINVAL, %ld other (%s)", (long)t.ok,
	       (long)t.enoent, (long)t.einval, (long)t.other, t.other ? strerror(t.other_err) : "-");
	TH_LOG("lost: %lu pages in %lu rounds", lost_pages, lost_rounds);
	EXPECT_EQ(0, t.other) TH_LOG("TRIM failed with %s", strerror(t.other_err));
	EXPECT_EQ(0, lost_pages) TH_LOG("TRIM discarded memory that was no longer the arena");
	/* The race was run: TRIMs hit live arenas and stale ids. */
	EXPECT_LT(0, t.ok);
	EXPECT_LT(0, t.enoent);
	EXPECT_LE(AR_ROUNDS, round);
	munmap(p, len);
}

TEST_HARNESS_MAIN
