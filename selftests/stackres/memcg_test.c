// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel memory that /dev/stackres allocates for a caller is charged to the
 * caller's memory cgroup (stackres(4), NOTES, "Memory accounting"): the per-file
 * event ring (256 records of 64 bytes = 16 KiB), the file's and the mm's
 * state, every reservation and the id/tree nodes that index it.
 *
 * The test moves itself into a fresh cgroup v2 group and watches
 * memory.current:
 *
 * - open_files: opening SR_NFILES files raises it by at least their rings;
 *   closing them brings it back.
 * - reservations: SR_NRES one-page reservations (commit = 0 on a PROT_NONE
 *   mapping made beforehand, so no VMA changes) raise it by at least
 *   SR_NRES * 64 bytes; UNREGISTER of half of them lowers it by at least
 *   half of that, and close() of the file brings it back.
 *
 * memory.current counts pages charged to the group's page counter.  Charges
 * go through a per-CPU stock of up to MEMCG_CHARGE_BATCH (64) pages, so a
 * plain reading can be off by 256 KiB per CPU.  The test runs on one CPU and
 * drains the stocks before every reading (writing memory.high just below the
 * usage drains them: the current CPU's at once, the others' by a work item
 * that it waits for by reading until two readings agree).  What is left is the
 * per-CPU byte stock of object charges, under a page per CPU, and index
 * nodes (xarray, maple tree) that stay allocated: SR_SLACK (8 pages) bounds
 * the error of a difference of two readings with room to spare.  Freed
 * reservations and per-mm state are freed after an RCU grace period: the
 * "back to the start" checks retry for up to 5 seconds.
 *
 * An unaccounted kernel raises memory.current by the struct files only (the
 * VFS charges them), well under the rings; and by nothing for reservations.
 */
#include "stackres_util.h"
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define CG_ROOT		"/sys/fs/cgroup"
#define CG		CG_ROOT "/stackres-memcg-test"

/* A floor for the event ring per file (256 records of 64 bytes): half of it. */
#define SR_RING		(256 * 32)
#define SR_NFILES	256
#define SR_NRES		2048
#define SR_RES_MIN	64
#define SR_SLACK	(8 * (long long)PG)

static int cg_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

static long long cg_read(void)
{
	static char buf[64];
	ssize_t n = sr_read_file(CG "/memory.current", buf, sizeof(buf));

	if (n <= 0)
		return n < 0 ? n : -EIO;
	return strtoll(buf, NULL, 10);
}

static void sr_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * memory.current of the test's group with the per-CPU stocks drained, in
 * bytes; -errno on error.  memory.high below the usage makes the kernel
 * drain the group's stocks (drain_all_stock()) before it tries to reclaim.
 */
static int cg_high_fd = -1;

static long long cg_current(void)
{
	long long cur = cg_read(), last = -1;
	char buf[32];
	int i, n;

	if (cur < 0 || cg_high_fd < 0)
		return cur < 0 ? cur : -EBADF;
	/* Until a drain changes nothing more (it only lowers the reading). */
	for (i = 0; i < 20 && (last < 0 || last - cur >= (long long)PG); i++) {
		n = snprintf(buf, sizeof(buf), "%lld",
			     cur > (long long)PG ? cur - (long long)PG : 0);
		if (pwrite(cg_high_fd, buf, n, 0) != n || pwrite(cg_high_fd, "max", 3, 0) != 3)
			return -errno;
		sr_sleep_ms(20);
		last = cur;
		cur = cg_read();
	}
	return cur;
}

/*
 * Wait until memory.current is at most @limit (RCU-freed objects are
 * uncharged after a grace period); returns the last reading.
 */
static long long cg_wait_below(long long limit)
{
	long long cur = cg_current();
	int i;

	for (i = 0; i < 50 && cur > limit; i++) {
		sr_sleep_ms(100);
		cur = cg_current();
	}
	return cur;
}

FIXTURE(memcg) {
	bool in_cg;
	int fds[SR_NFILES];
	__u32 ids[SR_NRES];
};

FIXTURE_SETUP(memcg)
{
	struct rlimit rl = { SR_NFILES + 64, SR_NFILES + 64 };
	cpu_set_t cpus;
	struct stat st;
	int fd, e;

	self->in_cg = false;
	SR_OPEN_OR_SKIP(fd, 0);
	close(fd);

	mkdir(CG_ROOT, 0755);
	if (stat(CG_ROOT "/cgroup.controllers", &st) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		SKIP(return, "no cgroup v2 (%s)", strerror(errno));
	e = cg_write(CG_ROOT "/cgroup.subtree_control", "+memory");
	if (e)
		SKIP(return, "no memory controller (CONFIG_MEMCG): %s", strerror(-e));
	rmdir(CG);
	ASSERT_EQ(0, mkdir(CG, 0755)) TH_LOG("mkdir " CG ": %s", strerror(errno));
	ASSERT_EQ(0, cg_write(CG "/cgroup.procs", "0"));
	self->in_cg = true;
	cg_high_fd = open(CG "/memory.high", O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, cg_high_fd) TH_LOG("memory.high: %s", strerror(errno));
	/* One CPU: every charge goes through the stock that cg_current() drains. */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu(), &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < SR_NFILES + 64) {
		rl.rlim_cur = SR_NFILES + 64;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl)) TH_LOG("%s", strerror(errno));
	}
	/* Grow the fd table now: its growth is charged too. */
	ASSERT_EQ(SR_NFILES + 32, dup2(0, SR_NFILES + 32));
	close(SR_NFILES + 32);
	/* Fault in the fixture and the stack before the first reading. */
	memset(self->fds, 0xff, sizeof(self->fds));
	memset(self->ids, 0, sizeof(self->ids));
	ASSERT_LT(0, cg_current());
}

FIXTURE_TEARDOWN(memcg)
{
	if (cg_high_fd >= 0)
		close(cg_high_fd);
	if (self->in_cg) {
		cg_write(CG_ROOT "/cgroup.procs", "0");
		rmdir(CG);
	}
}

TEST_F_TIMEOUT(memcg, open_files, 120)
{
	long long before, opened, closed, slack = SR_SLACK;
	int i;

	before = cg_current();
	ASSERT_LT(0, before);
	for (i = 0; i < SR_NFILES; i++) {
		self->fds[i] = open(SR_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->fds[i]) TH_LOG("open #%d: %s", i, strerror(errno));
	}
	opened = cg_current();
	for (i = 0; i < SR_NFILES; i++)
		close(self->fds[i]);
	closed = cg_wait_below(before + slack);

	TH_LOG("memory.current %lld -> %lld (+%lld, %lld per file) -> %lld; slack %lld",
	       before, opened, opened - before, (opened - before) / SR_NFILES, closed,
	       slack);
	/* At least the rings, less what the stock may have covered. */
	ASSERT_GE(opened - before, (long long)SR_NFILES * SR_RING - slack)
		TH_LOG("open files are not charged to the opener's memory cgroup");
	ASSERT_LE(closed, before + slack)
		TH_LOG("closed files stay charged");
}

TEST_F_TIMEOUT(memcg, reservations, 300)
{
	long long before, registered, half, closed, slack = SR_SLACK;
	size_t len = (size_t)SR_NRES * PG;
	struct timespec t0, t1;
	struct stackres_reg r;
	struct stackres_query q;
	char *p;
	int fd, i;

	SR_OPEN_OR_SKIP(fd, 0);
	p = sr_map_isolated(len, PROT_NONE);
	ASSERT_NE(NULL, p);
	/* One reservation, so that the per-mm state exists before we measure. */
	ASSERT_EQ(0, sr_reg_range(fd, &r, p, PG, 0, 0, 0, 0, 0));
	ASSERT_EQ(0, sr_unregister(fd, r.id));
	sr_sleep_ms(100);

	before = cg_current();
	ASSERT_LT(0, before);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < SR_NRES; i++) {
		int ret = sr_reg_range(fd, &r, p + (size_t)i * PG, PG, 0, 0, 0, 0, 0);

		ASSERT_EQ(0, ret) TH_LOG("REGISTER #%d: %s", i, strerror(-ret));
		self->ids[i] = r.id;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	registered = cg_current();
	/* Half of them by UNREGISTER, the rest by close(). */
	for (i = 0; i < SR_NRES / 2; i++)
		ASSERT_EQ(0, sr_unregister(fd, self->ids[i]));
	half = cg_wait_below(registered - (long long)SR_NRES / 2 * SR_RES_MIN + slack);
	ASSERT_EQ(-ENOENT, sr_query_addr(fd, sr_u64(p), &q));
	ASSERT_EQ(0, sr_query_addr(fd, sr_u64(p + len - PG), &q));
	close(fd);
	closed = cg_wait_below(before + slack);

	TH_LOG("memory.current %lld -> %lld (+%lld, %lld per reservation); slack %lld",
	       before, registered, registered - before, (registered - before) / SR_NRES, slack);
	TH_LOG("half unregistered %lld, closed %lld; %d REGISTERs took %ld ms",
	       half, closed, SR_NRES,
	       (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	ASSERT_GE(registered - before, (long long)SR_NRES * SR_RES_MIN - slack)
		TH_LOG("reservations are not charged to the caller's memory cgroup");
	ASSERT_LE(half, registered - (long long)SR_NRES / 2 * SR_RES_MIN + slack)
		TH_LOG("unregistered reservations stay charged");
	ASSERT_LE(closed, before + slack)
		TH_LOG("reservations freed by close stay charged");
	munmap(p, len);
}

TEST_HARNESS_MAIN
