// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres: stack fault upcalls.  Every record type with its exact
 * fields (GROW, WATERMARK, OVERFLOW, FAILED, LOST), whole-record reads,
 * EINVAL for a short buffer, O_NONBLOCK, poll/epoll, interruptible blocking
 * reads, and the bounded queue: faulting threads never wait on it and the
 * number of dropped records is reported exactly.
 */
#include "stackres_util.h"
#include <sys/epoll.h>

#define MAX_MAP_COUNT "/proc/sys/vm/max_map_count"

static long mmc_old = -1;

FIXTURE(ev) {
	int fd;
	char *p;
	uint64_t len;
	struct stackres_reg r;
	struct sr_model m;
};

FIXTURE_SETUP(ev)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
	self->len = 1 * MIB;
	self->p = sr_map_isolated(self->len, PROT_NONE);
	ASSERT_NE(0, sr_u64(self->p));
}

FIXTURE_TEARDOWN(ev)
{
	/* failed_record lowers vm.max_map_count: never leave it low. */
	if (mmc_old > 0)
		sr_write_long(MAX_MAP_COUNT, mmc_old);
	if (self->fd >= 0)
		close(self->fd);
}

static int ev_register(FIXTURE_DATA(ev) *self, uint64_t guard, uint64_t commit,
		       uint64_t chunk, uint64_t wm, __u32 flags)
{
	int ret = sr_reg_range(self->fd, &self->r, self->p, self->len, guard, commit,
			       chunk, wm, flags);

	sr_model_init(&self->m, &self->r);
	return ret;
}

/* Touch @a (a write), update the model; returns true if it was a growth step. */
static bool ev_touch(FIXTURE_DATA(ev) *self, uint64_t a)
{
	bool grew = sr_model_touch(&self->m, a);

	SR_WRITE(a, 1);
	return grew;
}

#define EXPECT_EVENT(e, _type, _id, _tid, _err, _addr, _committed) do {	\
	EXPECT_EQ((__u32)(_type), (e).type);					\
	EXPECT_EQ((__u32)(_id), (e).id);					\
	EXPECT_EQ((__u32)(_tid), (e).tid);					\
	EXPECT_EQ((__u32)(_err), (e).err);					\
	EXPECT_EQ((uint64_t)(_addr), (e).addr);				\
	EXPECT_EQ((uint64_t)(_committed), (e).committed);			\
} while (0)

#define EXPECT_NO_EVENT(fd) do {						\
	struct stackres_event __e;						\
	errno = 0;								\
	EXPECT_EQ(-1, read(fd, &__e, sizeof(__e)))				\
		TH_LOG("unexpected record type %u", __e.type);			\
	EXPECT_EQ(EAGAIN, errno);						\
} while (0)

TEST_F(ev, grow_records)
{
	struct stackres_event e[8];
	uint64_t top, a[3];
	uint64_t c[3];
	int i;

	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 0, STACKRES_NOTIFY_GROW));
	top = self->m.top;
	a[0] = top - 100;
	a[1] = top - 64 * KIB - 4000;
	a[2] = self->r.start + 64 * KIB + 5;
	for (i = 0; i < 3; i++) {
		ASSERT_TRUE(ev_touch(self, a[i]));
		c[i] = sr_model_committed(&self->m);
	}
	/* A touch inside the committed part is not a growth. */
	ASSERT_FALSE(ev_touch(self, top - 50));

	ASSERT_EQ(3, sr_read_events(self->fd, e, 8));
	for (i = 0; i < 3; i++)
		EXPECT_EVENT(e[i], STACKRES_EV_GROW, self->r.id, sr_gettid(), 0, a[i], c[i]);
	EXPECT_EQ(64 * KIB, c[0]);
	EXPECT_EQ(128 * KIB, c[1]);
	EXPECT_EQ(self->len - 64 * KIB, c[2]);
	EXPECT_NO_EVENT(self->fd);
}

TEST_F(ev, no_grow_records_without_flag)
{
	uint64_t a;

	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 0, 0));
	for (a = self->m.top - 1; a >= self->r.start + 64 * KIB; a -= 64 * KIB)
		ev_touch(self, a);
	EXPECT_EQ(self->len - 64 * KIB, sr_model_committed(&self->m));
	EXPECT_NO_EVENT(self->fd);
}

TEST_F(ev, watermark_once_per_crossing)
{
	const uint64_t wm = 256 * KIB;
	struct stackres_event e[4];
	uint64_t a, cross = 0, top;

	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, wm, 0));
	top = self->m.top;
	for (a = top - 1; a >= self->r.start + 64 * KIB; a -= PG) {
		uint64_t before = sr_model_committed(&self->m);

		ev_touch(self, a);
		if (before < wm && sr_model_committed(&self->m) >= wm)
			cross = a;
		if (a < self->r.start + 64 * KIB + PG)
			break;
	}
	ASSERT_NE(0, cross);
	ASSERT_EQ(1, sr_read_events(self->fd, e, 4));
	EXPECT_EVENT(e[0], STACKRES_EV_WATERMARK, self->r.id, sr_gettid(), 0, cross, wm);
	EXPECT_NO_EVENT(self->fd);

	/* TRIM to exactly the watermark: not below it, so not re-armed. */
	ASSERT_EQ(0, sr_trim(self->fd, self->r.id, top, wm));
	sr_model_trim(&self->m, top, wm);
	ev_touch(self, top - wm - 1);
	EXPECT_NO_EVENT(self->fd);

	/* TRIM below it re-arms; the next crossing raises one more. */
	ASSERT_EQ(0, sr_trim(self->fd, self->r.id, top, 64 * KIB));
	sr_model_trim(&self->m, top, 64 * KIB);
	EXPECT_EQ(64 * KIB, sr_model_committed(&self->m));
	EXPECT_NO_EVENT(self->fd);
	ev_touch(self, top - 64 * KIB - 1);	/* 128 KiB */
	ev_touch(self, top - 128 * KIB - 1);	/* 192 KiB */
	EXPECT_NO_EVENT(self->fd);
	ev_touch(self, top - 192 * KIB - 1);	/* 256 KiB: crossing */
	ev_touch(self, top - 256 * KIB - 1);	/* 320 KiB */
	ASSERT_EQ(1, sr_read_events(self->fd, e, 4));
	EXPECT_EVENT(e[0], STACKRES_EV_WATERMARK, self->r.id, sr_gettid(), 0,
		     top - 192 * KIB - 1, wm);
}

TEST_F(ev, watermark_in_one_jump)
{
	struct stackres_event e[4];
	uint64_t a;

	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 128 * KIB, STACKRES_NOTIFY_GROW));
	a = self->r.start + 100 * KIB;
	ASSERT_TRUE(ev_touch(self, a));
	/* One GROW and one WATERMARK for the same fault, in either order. */
	ASSERT_EQ(2, sr_read_events(self->fd, e, 4));
	if (e[0].type == STACKRES_EV_WATERMARK) {
		struct stackres_event t = e[0];

		e[0] = e[1];
		e[1] = t;
	}
	EXPECT_EVENT(e[0], STACKRES_EV_GROW, self->r.id, sr_gettid(), 0, a,
		     self->m.top - (a & ~(PG - 1)));
	EXPECT_EVENT(e[1], STACKRES_EV_WATERMARK, self->r.id, sr_gettid(), 0, a,
		     self->m.top - (a & ~(PG - 1)));
}

TEST_F(ev, watermark_none_when_commit_reaches_it)
{
	ASSERT_EQ(0, ev_register(self, 64 * KIB, 128 * KIB, 0, 128 * KIB, 0));
	ev_touch(self, self->m.top - 128 * KIB - 1);
	ev_touch(self, self->r.start + 64 * KIB);
	EXPECT_EQ(self->len - 64 * KIB, sr_model_committed(&self->m));
	EXPECT_NO_EVENT(self->fd);
}

/* The OVERFLOW record is queued before the SIGSEGV is delivered. */
TEST_F(ev, overflow_record_before_signal)
{
	uint64_t floor;
	struct stackres_event e;

	ASSERT_EQ(0, ev_register(self, 16 * KIB, 64 * KIB, 0, 0, 0));
	floor = self->r.start + 16 * KIB;
	sr_handler_fd = self->fd;
	sr_handler_read = true;
	EXPECT_TRUE(SR_TRY(SR_WRITE(floor - 3, 1)));
	sr_handler_read = false;
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(floor - 3, sr_sig.addr);
	EXPECT_EQ((ssize_t)sizeof(struct stackres_event), sr_sig.rret);
	e = sr_sig.ev;
	EXPECT_EVENT(e, STACKRES_EV_OVERFLOW, self->r.id, sr_gettid(), 0, floor - 3, 64 * KIB);
	EXPECT_NO_EVENT(self->fd);
}

/* A kernel access to the guard: EFAULT, and an OVERFLOW record all the same. */
TEST_F(ev, overflow_record_from_kernel_access)
{
	struct stackres_event e[2];
	uint64_t buf;
	int pfd[2];

	ASSERT_EQ(0, ev_register(self, 16 * KIB, 64 * KIB, 0, 0, 0));
	buf = self->r.start + 4 * KIB + 8;
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(4, write(pfd[1], "abcd", 4));
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], sr_ptr(buf), 4));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(1, sr_read_events(self->fd, e, 2));
	EXPECT_EVENT(e[0], STACKRES_EV_OVERFLOW, self->r.id, sr_gettid(), 0, buf, 64 * KIB);
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * Growth that cannot be done: with vm.max_map_count at its floor, the first
 * commit of a reservation (which must split its VMA) fails with ENOMEM.
 */
TEST_F(ev, failed_record)
{
	struct stackres_event e[2];
	struct stackres_query q;
	char buf[32];
	uint64_t a;
	bool faulted;
	int ret;

	if (sr_read_file(MAX_MAP_COUNT, buf, sizeof(buf)) <= 0)
		SKIP(return, MAX_MAP_COUNT " not readable");
	mmc_old = strtol(buf, NULL, 0);
	ASSERT_EQ(0, ev_register(self, 16 * KIB, 0, 0, 0, 0));
	a = self->m.top - 10;

	ret = sr_write_long(MAX_MAP_COUNT, 1);
	if (ret)
		SKIP(return, "cannot lower vm.max_map_count: %s", strerror(-ret));
	faulted = SR_TRY(SR_WRITE(a, 1));
	ret = sr_write_long(MAX_MAP_COUNT, mmc_old);
	ASSERT_EQ(0, ret);
	mmc_old = -1;

	EXPECT_TRUE(faulted);
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(a, sr_sig.addr);
	ASSERT_EQ(1, sr_read_events(self->fd, e, 2));
	EXPECT_EVENT(e[0], STACKRES_EV_FAILED, self->r.id, sr_gettid(), ENOMEM, a, 0);
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(0, q.committed);
	EXPECT_EQ(0, q.grow_faults);
	EXPECT_EQ(0, q.overflows);

	/* With the limit back, the same access grows as usual. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(a, 1)));
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(STACKRES_DEFAULT_CHUNK, q.committed);
	EXPECT_EQ(1, q.grow_faults);
}

/*
 * Committed memory the process itself made inaccessible is not committed
 * again: SIGSEGV plus a FAILED record with EACCES, nothing changes.
 */
TEST_F(ev, failed_record_after_user_mprotect)
{
	struct stackres_event e[2];
	struct stackres_query q;
	uint64_t top;

	ASSERT_EQ(0, ev_register(self, 16 * KIB, 64 * KIB, 0, 0, 0));
	top = self->m.top;
	ASSERT_EQ(0, mprotect(sr_ptr(top - 64 * KIB), 4 * KIB, PROT_READ));
	EXPECT_TRUE(SR_TRY(SR_WRITE(top - 64 * KIB + 8, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(top - 64 * KIB + 8, sr_sig.addr);
	ASSERT_EQ(1, sr_read_events(self->fd, e, 2));
	EXPECT_EVENT(e[0], STACKRES_EV_FAILED, self->r.id, sr_gettid(), EACCES,
		     top - 64 * KIB + 8, 64 * KIB);
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
	EXPECT_EQ(0, q.grow_faults);
	EXPECT_EQ(0, q.overflows);
	/* The rest of the committed part is as it was. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 1, 1)));
}

TEST_F(ev, read_whole_records_only)
{
	struct stackres_event e[3];
	char small[sizeof(struct stackres_event) * 5 / 2];

	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 0, STACKRES_NOTIFY_GROW));
	ev_touch(self, self->m.top - 1);
	ev_touch(self, self->m.top - 64 * KIB - 1);
	ev_touch(self, self->m.top - 128 * KIB - 1);

	/* Smaller than one record: EINVAL, and nothing is consumed. */
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, small, sizeof(struct stackres_event) - 1));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, small, 1));
	EXPECT_EQ(EINVAL, errno);
	/* Two and a half records of room: two records. */
	EXPECT_EQ((ssize_t)(2 * sizeof(struct stackres_event)),
		  read(self->fd, small, sizeof(small)));
	memcpy(e, small, 2 * sizeof(struct stackres_event));
	EXPECT_EQ(64 * KIB, e[0].committed);
	EXPECT_EQ(128 * KIB, e[1].committed);
	ASSERT_EQ(1, sr_read_events(self->fd, &e[2], 1));
	EXPECT_EQ(192 * KIB, e[2].committed);
	EXPECT_NO_EVENT(self->fd);
}

TEST_F(ev, poll_readable)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct stackres_event e;

	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 0, STACKRES_NOTIFY_GROW));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ev_touch(self, self->m.top - 1);
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents & POLLIN);
	EXPECT_EQ(0, pfd.revents & (POLLERR | POLLHUP | POLLNVAL));
	ASSERT_EQ(1, sr_read_events(self->fd, &e, 1));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
}

/* A manager thread in epoll_wait is woken by a worker's guard hit. */
struct mgr {
	int fd, epfd, nev;
	struct stackres_event ev;
	volatile int waiting;
};

static void *manager(void *arg)
{
	struct mgr *m = arg;
	struct epoll_event ee;

	m->waiting = 1;
	m->nev = epoll_wait(m->epfd, &ee, 1, 20000);
	if (m->nev == 1 && read(m->fd, &m->ev, sizeof(m->ev)) != sizeof(m->ev))
		m->nev = -2;
	return NULL;
}

struct worker_arg {
	uint64_t addr;
	pid_t tid;
	int code;
	uint64_t fault_addr;
};

static void *overflow_worker(void *arg)
{
	struct worker_arg *w = arg;

	w->tid = sr_gettid();
	if (sr_altstack())
		return NULL;
	if (SR_TRY(SR_WRITE(w->addr, 1))) {
		w->code = sr_sig.code;
		w->fault_addr = sr_sig.addr;
	}
	return NULL;
}

TEST_F(ev, epoll_wakes_manager_on_worker_overflow)
{
	struct epoll_event ee = { .events = EPOLLIN };
	struct worker_arg w = { 0 };
	struct mgr m = { 0 };
	pthread_t mt, wt;

	ASSERT_EQ(0, ev_register(self, 16 * KIB, 64 * KIB, 0, 0, 0));
	m.fd = self->fd;
	m.epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, m.epfd);
	ee.data.fd = self->fd;
	ASSERT_EQ(0, epoll_ctl(m.epfd, EPOLL_CTL_ADD, self->fd, &ee));
	ASSERT_EQ(0, pthread_create(&mt, NULL, manager, &m));
	while (!m.waiting)
		usleep(1000);
	usleep(100 * 1000);	/* let it block in epoll_wait */

	w.addr = self->r.start + 16 * KIB - 1;
	ASSERT_EQ(0, pthread_create(&wt, NULL, overflow_worker, &w));
	pthread_join(wt, NULL);
	pthread_join(mt, NULL);

	EXPECT_EQ(SEGV_ACCERR, w.code);
	EXPECT_EQ(w.addr, w.fault_addr);
	ASSERT_EQ(1, m.nev);
	EXPECT_EVENT(m.ev, STACKRES_EV_OVERFLOW, self->r.id, w.tid, 0, w.addr, 64 * KIB);
	close(m.epfd);
}

/* A blocked read() ends with EINTR on a signal, and is not woken by anything else. */
static void usr1(int sig)
{
}

struct reader {
	int fd;
	ssize_t ret;
	int err;
	volatile int done;
	struct stackres_event ev;
};

static void *blocking_reader(void *arg)
{
	struct reader *r = arg;

	r->ret = read(r->fd, &r->ev, sizeof(r->ev));
	r->err = errno;
	r->done = 1;
	return NULL;
}

TEST_F(ev, blocking_read_interrupted_only_by_signal)
{
	struct sigaction sa = { .sa_handler = usr1 };	/* no SA_RESTART */
	struct reader rd = { 0 };
	struct stackres_event e;
	pthread_t t;

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	rd.fd = open(SR_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, rd.fd);
	ASSERT_EQ(0, pthread_create(&t, NULL, blocking_reader, &rd));
	usleep(200 * 1000);
	EXPECT_EQ(0, rd.done);

	/* A record for another file does not wake it. */
	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 0, STACKRES_NOTIFY_GROW));
	ev_touch(self, self->m.top - 1);
	usleep(200 * 1000);
	EXPECT_EQ(0, rd.done);
	ASSERT_EQ(1, sr_read_events(self->fd, &e, 1));

	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	pthread_join(t, NULL);
	EXPECT_EQ(1, rd.done);
	EXPECT_EQ(-1, rd.ret);
	EXPECT_EQ(EINTR, rd.err);
	close(rd.fd);
}

TEST_F(ev, blocking_read_wakes_on_record)
{
	struct reader rd = { 0 };
	struct stackres_reg r;
	pthread_t t;
	uint64_t a;

	rd.fd = open(SR_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, rd.fd);
	ASSERT_EQ(0, sr_reg_range(rd.fd, &r, self->p, self->len, 64 * KIB, 0, 0, 0,
				  STACKRES_NOTIFY_GROW));
	ASSERT_EQ(0, pthread_create(&t, NULL, blocking_reader, &rd));
	usleep(100 * 1000);
	EXPECT_EQ(0, rd.done);
	a = r.start + self->len - 5;
	SR_WRITE(a, 1);
	pthread_join(t, NULL);
	EXPECT_EQ((ssize_t)sizeof(rd.ev), rd.ret);
	EXPECT_EVENT(rd.ev, STACKRES_EV_GROW, r.id, sr_gettid(), 0, a, 64 * KIB);
	close(rd.fd);
}

/* Records go to the file that owns the reservation only. */
TEST_F(ev, records_per_file)
{
	char *p2 = sr_map_isolated(256 * KIB, PROT_NONE);
	struct stackres_event e;
	struct stackres_reg r2;
	int fd2;

	ASSERT_NE(0, sr_u64(p2));
	ASSERT_EQ(0, ev_register(self, 64 * KIB, 0, 0, 0, STACKRES_NOTIFY_GROW));
	SR_OPEN_OR_SKIP(fd2, O_NONBLOCK);
	ASSERT_EQ(0, sr_reg_range(fd2, &r2, p2, 256 * KIB, PG, 0, 0, 0,
				  STACKRES_NOTIFY_GROW));
	SR_WRITE(r2.start + 256 * KIB - 1, 1);
	EXPECT_NO_EVENT(self->fd);
	ASSERT_EQ(1, sr_read_events(fd2, &e, 1));
	EXPECT_EVENT(e, STACKRES_EV_GROW, r2.id, sr_gettid(), 0, r2.start + 256 * KIB - 1,
		     64 * KIB);
	close(fd2);
}

/*
 * LOST: nobody reads while two threads take many growth steps.  They all
 * finish, the first records are kept in order, and a LOST record after them
 * counts exactly the rest.
 */
struct lost_worker {
	uint64_t lo, top;
	pthread_barrier_t *bar;
};

static void *lost_toucher(void *arg)
{
	struct lost_worker *w = arg;
	uint64_t a;

	pthread_barrier_wait(w->bar);
	for (a = w->top - 1; a >= w->lo; a -= PG)
		SR_WRITE(a, 1);
	return NULL;
}

TEST_F_TIMEOUT(ev, lost_records, 90)
{
	/* 2 x 1023 growth steps: far more than the 256 records a file queues. */
	const uint64_t len = 4 * MIB;
	static struct stackres_event e[8192];
	struct lost_worker w[2];
	struct stackres_reg r[2], r3;
	struct stackres_query q;
	pthread_barrier_t bar;
	char *p3;
	pthread_t t[2];
	uint64_t next[2] = { PG, PG }, grows = 0, lost = 0, faults = 0;
	int i, n, total = 0, lost_records = 0, last_type = 0;

	pthread_barrier_init(&bar, NULL, 2);
	for (i = 0; i < 2; i++) {
		char *p = sr_map_isolated(len, PROT_NONE);

		ASSERT_NE(0, sr_u64(p));
		ASSERT_EQ(0, sr_reg_range(self->fd, &r[i], p, len, PG, 0, PG, 0,
					  STACKRES_NOTIFY_GROW));
		w[i] = (struct lost_worker){ r[i].start + PG, r[i].start + len, &bar };
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, lost_toucher, &w[i]));
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, sr_query(self->fd, r[i].id, &q));
		EXPECT_EQ(len - PG, q.committed);
		EXPECT_EQ((len - PG) / PG, q.grow_faults);
		faults += q.grow_faults;
	}

	while ((n = sr_read_events(self->fd, e + total, 8192 - total)) > 0)
		total += n;
	ASSERT_EQ(-EAGAIN, n);
	for (i = 0; i < total; i++) {
		int k;

		switch (e[i].type) {
		case STACKRES_EV_GROW:
			k = e[i].id == r[1].id;
			ASSERT_EQ(k ? r[1].id : r[0].id, e[i].id);
			/* Kept records are the earliest ones, gap-free, per reservation. */
			EXPECT_EQ(next[k], e[i].committed);
			next[k] = e[i].committed + PG;
			EXPECT_EQ(0, lost_records) TH_LOG("GROW after LOST: no reader ran");
			grows++;
			break;
		case STACKRES_EV_LOST:
			EXPECT_EQ(0, e[i].id);
			EXPECT_EQ(0, e[i].tid);
			EXPECT_EQ(0, e[i].addr);
			EXPECT_EQ(0, e[i].err);
			EXPECT_LT(0, e[i].committed);
			lost += e[i].committed;
			lost_records++;
			break;
		default:
			EXPECT_EQ(STACKRES_EV_GROW, e[i].type);
		}
		last_type = e[i].type;
	}
	TH_LOG("%d records read: %llu GROW, %d LOST records for %llu dropped, %llu faults",
	       total, (unsigned long long)grows, lost_records, (unsigned long long)lost,
	       (unsigned long long)faults);
	EXPECT_LE(1, lost_records);
	EXPECT_EQ(STACKRES_EV_LOST, last_type);
	EXPECT_EQ(faults, grows + lost);

	/* Once drained, the queue works normally again. */
	p3 = sr_map_isolated(256 * KIB, PROT_NONE);
	ASSERT_NE(0, sr_u64(p3));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r3, p3, 256 * KIB, PG, 0, 0, 0,
				  STACKRES_NOTIFY_GROW));
	SR_WRITE(r3.start + 256 * KIB - 1, 1);
	ASSERT_EQ(1, sr_read_events(self->fd, e, 8));
	EXPECT_EVENT(e[0], STACKRES_EV_GROW, r3.id, sr_gettid(), 0,
		     r3.start + 256 * KIB - 1, 64 * KIB);
}

TEST_F(ev, nonblock_eagain)
{
	struct stackres_event e;
	int fd2;

	EXPECT_NO_EVENT(self->fd);
	/* O_NONBLOCK set later with fcntl works too. */
	SR_OPEN_OR_SKIP(fd2, 0);
	ASSERT_EQ(0, fcntl(fd2, F_SETFL, O_NONBLOCK));
	errno = 0;
	EXPECT_EQ(-1, read(fd2, &e, sizeof(e)));
	EXPECT_EQ(EAGAIN, errno);
	close(fd2);
}

TEST_HARNESS_MAIN
