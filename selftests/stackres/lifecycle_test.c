// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres: lifecycle.  An fd is bound to the opener's mm (fork child
 * and SCM_RIGHTS receiver get EPERM, poll gives POLLERR); registrations are
 * not inherited across fork and end at exec, exit and the last close, with
 * the mappings left as they are; munmap, mremap or MAP_FIXED over any part
 * ends the whole reservation; two fds of one process each own theirs.
 */
#include "stackres_util.h"
#include <sys/socket.h>
#include <sys/un.h>

/*
 * exec_drops_registrations re-executes this binary with SR_EXEC_FD set: the
 * new image checks that the inherited fd belongs to the old mm.
 */
static void __attribute__((constructor)) exec_child_check(void)
{
	struct stackres_query q;
	struct stackres_reg r;
	const char *s = getenv("SR_EXEC_FD");
	int fd, ret;
	__u32 id;

	if (!s)
		return;
	fd = atoi(s);
	id = atoi(getenv("SR_EXEC_ID"));
	ret = sr_query(fd, id, &q);
	if (ret != -EPERM)
		_exit(10);
	if (sr_reg_range(fd, &r, NULL, 16 * PG, PG, 0, 0, 0, STACKRES_MAP) != -EPERM)
		_exit(11);
	if (sr_unregister(fd, id) != -EPERM)
		_exit(12);
	/* A new fd in the new image has nothing registered. */
	fd = open(SR_DEV, O_RDWR);
	if (fd < 0 || sr_query(fd, id, &q) != -ENOENT)
		_exit(13);
	_exit(0);
}

FIXTURE(life) {
	int fd;
	char *p;
	uint64_t len;
	struct stackres_reg r;
};

FIXTURE_SETUP(life)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
	self->len = 1 * MIB;
	self->p = sr_map_isolated(self->len, PROT_NONE);
	ASSERT_NE(0, sr_u64(self->p));
}

FIXTURE_TEARDOWN(life)
{
	if (self->fd >= 0)
		close(self->fd);
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 1000 + WTERMSIG(status);
}

/* Every operation on an fd from another mm: EPERM, POLLERR, nothing changed. */
static void expect_foreign_fd(struct __test_metadata *_metadata, int fd, __u32 id,
			      uint64_t range)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct stackres_event e;
	struct stackres_query q;
	struct stackres_reg r;
	char *mine = sr_map_isolated(16 * PG, PROT_NONE);
	char perms[5];

	ASSERT_NE(0, sr_u64(mine));
	EXPECT_EQ(-EPERM, sr_query(fd, id, &q));
	EXPECT_EQ(-EPERM, sr_query_addr(fd, range, &q));
	EXPECT_EQ(-EPERM, sr_trim(fd, id, range, 0));
	EXPECT_EQ(-EPERM, sr_unregister(fd, id));
	EXPECT_EQ(-EPERM, sr_reg_range(fd, &r, mine, 16 * PG, PG, 0, 0, 0, 0));
	EXPECT_EQ(-EPERM, sr_reg_range(fd, &r, NULL, 16 * PG, PG, 0, 0, 0, STACKRES_MAP));
	errno = 0;
	EXPECT_EQ(-1, read(fd, &e, sizeof(e)));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLERR, pfd.revents & POLLERR);
	/* The REGISTER attempt did not touch this mm's mapping. */
	ASSERT_TRUE(sr_vma_at(sr_u64(mine), perms, NULL, NULL));
	EXPECT_STREQ("---p", perms);
}

TEST_F(life, fork_child_gets_eperm_and_plain_memory)
{
	struct stackres_query q0, q1;
	struct stackres_event e;
	uint64_t top, floor;
	pid_t pid;

	ASSERT_EQ(0, sr_reg_range(self->fd, &self->r, self->p, self->len, 64 * KIB, 0, 0, 0,
				  STACKRES_NOTIFY_GROW));
	top = self->r.start + self->len;
	floor = self->r.start + 64 * KIB;
	SR_WRITE(top - 1, 0x5a);	/* commits 64 KiB */
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q0));
	ASSERT_EQ(64 * KIB, q0.committed);
	ASSERT_EQ(1, sr_read_events(self->fd, &e, 1));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct stackres_reg r;
		int fd2;

		expect_foreign_fd(_metadata, self->fd, self->r.id, top - 1);
		/* The committed part is inherited as plain memory. */
		EXPECT_EQ(0x5a, *(volatile char *)sr_ptr(top - 1));
		EXPECT_FALSE(SR_TRY(SR_WRITE(top - 64 * KIB, 1)));
		/* The uncommitted part is plain PROT_NONE: no growth in the child. */
		EXPECT_TRUE(SR_TRY(SR_WRITE(top - 64 * KIB - 1, 1)));
		EXPECT_EQ(SIGSEGV, sr_sig.signo);
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		EXPECT_EQ(top - 64 * KIB - 1, sr_sig.addr);
		EXPECT_TRUE(SR_TRY(SR_READ(floor - 1)));
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		/* Registrations are not inherited: the child may register it. */
		fd2 = open(SR_DEV, O_RDWR | O_NONBLOCK);
		EXPECT_LE(0, fd2);
		EXPECT_EQ(0, sr_reg_range(fd2, &r, self->p, self->len, 64 * KIB, 0, 0, 0, 0));
		EXPECT_FALSE(SR_TRY(SR_WRITE(floor, 1)));
		EXPECT_EQ(0, sr_query(fd2, r.id, &q1));
		EXPECT_EQ(self->len - 64 * KIB, q1.committed);
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));

	/* The parent's reservation saw none of it, and still grows. */
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q1));
	EXPECT_EQ(q0.committed, q1.committed);
	EXPECT_EQ(q0.grow_faults, q1.grow_faults);
	EXPECT_EQ(0, q1.overflows);
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, &e, sizeof(e)));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 64 * KIB - 1, 1)));
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q1));
	EXPECT_EQ(128 * KIB, q1.committed);
	/* The parent's memory did not see the child's writes. */
	EXPECT_EQ(0, *(volatile char *)sr_ptr(floor));
}


TEST_F(life, scm_rights_fd_is_eperm)
{
	struct stackres_query q;
	int sv[2], fd;
	pid_t pid;
	struct {
		__u32 id;
		uint64_t start;
	} info;
	char go;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct stackres_reg r;
		int cfd = open(SR_DEV, O_RDWR | O_NONBLOCK);

		ASSERT_LE(0, cfd);
		ASSERT_EQ(0, sr_reg_range(cfd, &r, NULL, 256 * KIB, PG, 64 * KIB, 0, 0,
					  STACKRES_MAP));
		info.id = r.id;
		info.start = r.start;
		ASSERT_EQ(0, sr_send_fd(sv[1], cfd));
		ASSERT_EQ((ssize_t)sizeof(info), write(sv[1], &info, sizeof(info)));
		ASSERT_EQ(1, read(sv[1], &go, 1));
		/* Nothing the other process did changed the registration. */
		EXPECT_EQ(0, sr_query(cfd, r.id, &q));
		EXPECT_EQ(64 * KIB, q.committed);
		EXPECT_EQ(0, q.grow_faults);
		_exit(0);
	}
	fd = sr_recv_fd(sv[0]);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sizeof(info), read(sv[0], &info, sizeof(info)));
	expect_foreign_fd(_metadata, fd, info.id, info.start + 256 * KIB - 1);
	close(fd);
	ASSERT_EQ(1, write(sv[0], "g", 1));
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(life, close_ends_registrations_mapping_stays)
{
	uint64_t top, s, e;
	struct stackres_query q;
	struct stackres_reg r;
	char perms[5];
	int fd2;

	SR_OPEN_OR_SKIP(fd2, O_NONBLOCK);
	ASSERT_EQ(0, sr_reg_range(fd2, &r, self->p, self->len, 64 * KIB, 64 * KIB, 0, 0, 0));
	top = r.start + self->len;
	SR_WRITE(top - 100 * KIB, 7);	/* grows to 100 KiB + page rounding */
	ASSERT_EQ(0, sr_query(fd2, r.id, &q));
	ASSERT_EQ(0, sr_snap_maps(0));
	close(fd2);
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same()) TH_LOG("close changed the mappings");

	ASSERT_TRUE(sr_vma_at(top - 1, perms, &s, &e));
	EXPECT_STREQ("rw-p", perms);
	EXPECT_EQ(top - q.committed, s);
	EXPECT_EQ(7, *(volatile char *)sr_ptr(top - 100 * KIB));
	/* No growth any more. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(top - q.committed - 1, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(top - q.committed - 1, sr_sig.addr);
	/* The range is free to register again, by any fd. */
	EXPECT_EQ(0, sr_reg_range(self->fd, &r, self->p, self->len, 64 * KIB, 0, 0, 0, 0));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, q.committed);	/* REGISTER sets the protections again */
	EXPECT_FALSE(SR_TRY(SR_READ(top - 1)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
}

TEST_F(life, two_fds_each_own_theirs)
{
	char *p2 = sr_map_isolated(256 * KIB, PROT_NONE);
	struct stackres_query q;
	struct stackres_reg r1, r2;
	int fd2;

	ASSERT_NE(0, sr_u64(p2));
	SR_OPEN_OR_SKIP(fd2, O_NONBLOCK);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r1, self->p, self->len, PG, 0, 0, 0, 0));
	ASSERT_EQ(0, sr_reg_range(fd2, &r2, p2, 256 * KIB, PG, 0, 0, 0, 0));
	/* Growth serves both. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(r1.start + self->len - 1, 1)));
	EXPECT_FALSE(SR_TRY(SR_WRITE(r2.start + 256 * KIB - 1, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r1.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
	ASSERT_EQ(0, sr_query(fd2, r2.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
	/* Each sees only its own by address. */
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, r2.start, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(fd2, r1.start, &q));

	/* Closing one ends only its registrations. */
	close(fd2);
	EXPECT_TRUE(SR_TRY(SR_WRITE(r2.start + 256 * KIB - 64 * KIB - 1, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_FALSE(SR_TRY(SR_WRITE(r1.start + self->len - 64 * KIB - 1, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r1.id, &q));
	EXPECT_EQ(128 * KIB, q.committed);
}

/* munmap / mremap / MAP_FIXED over any part ends the whole reservation. */
FIXTURE(ends) {
	int fd;
	char *p;
	uint64_t len;
};

enum end_how { END_UNMAP_MID, END_UNMAP_TOP, END_UNMAP_GUARD, END_MREMAP_MOVE, END_MREMAP_SHRINK, END_MAP_OVER };

FIXTURE_VARIANT(ends) {
	enum end_how how;
};

FIXTURE_VARIANT_ADD(ends, munmap_uncommitted_page) { .how = END_UNMAP_MID };
FIXTURE_VARIANT_ADD(ends, munmap_committed_top) { .how = END_UNMAP_TOP };
FIXTURE_VARIANT_ADD(ends, munmap_guard) { .how = END_UNMAP_GUARD };
FIXTURE_VARIANT_ADD(ends, mremap_move) { .how = END_MREMAP_MOVE };
FIXTURE_VARIANT_ADD(ends, mremap_shrink) { .how = END_MREMAP_SHRINK };
FIXTURE_VARIANT_ADD(ends, map_fixed_over) { .how = END_MAP_OVER };

FIXTURE_SETUP(ends)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
	self->len = 1 * MIB;
	self->p = sr_map_isolated(self->len, PROT_NONE);
	ASSERT_NE(0, sr_u64(self->p));
}

FIXTURE_TEARDOWN(ends)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(ends, reservation_ends)
{
	const uint64_t guard = 64 * KIB;
	uint64_t s, top, probe, lo, hi;
	struct stackres_event e;
	struct stackres_query q;
	struct stackres_reg r;
	char *moved;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->p, self->len, guard, 64 * KIB, 0, 0,
				  STACKRES_NOTIFY_GROW));
	s = r.start;
	top = s + self->len;
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 100 * KIB, 1)));	/* committed 128 KiB */
	/* Uncommitted and still mapped after every variant: plain PROT_NONE there. */
	probe = s + 512 * KIB;
	lo = s;			/* a range still mapped, to register again */
	hi = top;

	switch (variant->how) {
	case END_UNMAP_MID:
		ASSERT_EQ(0, munmap(sr_ptr(s + 256 * KIB), PG));
		lo = s + 256 * KIB + PG;
		break;
	case END_UNMAP_TOP:
		ASSERT_EQ(0, munmap(sr_ptr(top - PG), PG));
		hi = top - PG;
		break;
	case END_UNMAP_GUARD:
		ASSERT_EQ(0, munmap(sr_ptr(s), PG));
		lo = s + PG;
		break;
	case END_MREMAP_MOVE:
		/* Move the committed top (its own VMA) somewhere else. */
		moved = sr_free_range(128 * KIB);
		ASSERT_NE(0, sr_u64(moved));
		ASSERT_EQ(sr_u64(moved), sr_u64(mremap(sr_ptr(top - 128 * KIB), 128 * KIB,
						       128 * KIB,
						       MREMAP_MAYMOVE | MREMAP_FIXED, moved)));
		/* The moved memory kept its data and is not a reservation. */
		EXPECT_EQ(1, *(volatile char *)(moved + 28 * KIB));
		EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, sr_u64(moved), &q));
		hi = top - 128 * KIB;
		break;
	case END_MREMAP_SHRINK:
		/* The top (committed) part is a separate VMA: shrink the lower one. */
		ASSERT_EQ(sr_u64(self->p),
			  sr_u64(mremap(self->p, 256 * KIB, 128 * KIB, 0)));
		lo = s + 256 * KIB;
		break;
	case END_MAP_OVER:
		ASSERT_EQ(s + 300 * KIB,
			  sr_u64(mmap(sr_ptr(s + 300 * KIB), PG, PROT_NONE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)));
		lo = s + 300 * KIB + PG;
		break;
	}

	EXPECT_EQ(-ENOENT, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, top - 1, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, s + 512 * KIB, &q));
	EXPECT_EQ(-ENOENT, sr_unregister(self->fd, r.id));
	EXPECT_EQ(-ENOENT, sr_trim(self->fd, r.id, top, 0));
	if (probe) {
		/* The rest is plain memory: no growth, a plain access fault. */
		EXPECT_TRUE(SR_TRY(SR_WRITE(probe, 1)));
		EXPECT_EQ(SIGSEGV, sr_sig.signo);
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		EXPECT_EQ(probe, sr_sig.addr);
		if (variant->how != END_MREMAP_MOVE)
			EXPECT_EQ(1, *(volatile char *)sr_ptr(top - 100 * KIB));
	}
	/* Only the one growth before the end was reported. */
	ASSERT_EQ(1, sr_read_events(self->fd, &e, 1));
	EXPECT_EQ(STACKRES_EV_GROW, e.type);
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, &e, sizeof(e)));
	EXPECT_EQ(EAGAIN, errno);

	/* What is still mapped can be registered again, and grows. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, sr_ptr(lo), hi - lo, 0, 0, 0, 0, 0));
	EXPECT_FALSE(SR_TRY(SR_WRITE(hi - 1, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
}

/* exit (and SIGKILL) with live reservations, threads blocked and faulting. */
static void *block_reading(void *arg)
{
	struct stackres_event e;

	while (read(*(int *)arg, &e, sizeof(e)) > 0)
		;
	return NULL;
}

struct grower {
	struct stackres_reg r;
	int fd;
};

static void *grow_forever(void *arg)
{
	struct grower *g = arg;
	uint64_t a;

	for (;;) {
		for (a = g->r.start + g->r.len - 1; a >= g->r.start + g->r.guard; a -= PG)
			SR_WRITE(a, 1);
		sr_trim(g->fd, g->r.id, g->r.start + g->r.len, 0);
	}
	return NULL;
}

static void live_child(int mode)
{
	static struct stackres_reg r[32];
	static struct grower g;
	pthread_t t;
	int fd, i;

	fd = open(SR_DEV, O_RDWR);
	if (fd < 0)
		_exit(20);
	for (i = 0; i < 32; i++) {
		if (sr_reg_range(fd, &r[i], NULL, 128 * KIB, PG, 0, 0, 0,
				 STACKRES_MAP | STACKRES_NOTIFY_GROW))
			_exit(21);
		SR_WRITE(r[i].start + 128 * KIB - 1, 1);
	}
	if (sr_reg_range(fd, &g.r, NULL, 512 * KIB, PG, 0, PG, 0, STACKRES_MAP))
		_exit(22);
	g.fd = fd;
	if (pthread_create(&t, NULL, block_reading, &fd) ||
	    pthread_create(&t, NULL, grow_forever, &g))
		_exit(23);
	usleep(200 * 1000);
	if (mode == 0)
		_exit(0);	/* exit_group with the fd open, threads running */
	pause();		/* parent sends SIGKILL */
	_exit(24);
}

TEST_F(life, exit_with_live_reservations)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		live_child(0);
	EXPECT_EQ(0, wait_child(pid));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		live_child(1);
	usleep(500 * 1000);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(1000 + SIGKILL, wait_child(pid));
}

TEST_F(life, exec_drops_registrations)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *argv[] = { "lifecycle_test", NULL };
		char fdstr[16], idstr[16];
		struct stackres_reg r;
		int fd;

		/* An fd without O_CLOEXEC survives exec; its registrations do not. */
		fd = open(SR_DEV, O_RDWR);
		if (fd < 0 || sr_reg_range(fd, &r, self->p, self->len, PG, PG, 0, 0, 0))
			_exit(126);
		snprintf(fdstr, sizeof(fdstr), "%d", fd);
		snprintf(idstr, sizeof(idstr), "%u", r.id);
		setenv("SR_EXEC_FD", fdstr, 1);
		setenv("SR_EXEC_ID", idstr, 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	/* 0: the new image got EPERM on the old fd and ENOENT on a new one. */
	EXPECT_EQ(0, wait_child(pid));
}

TEST_HARNESS_MAIN
