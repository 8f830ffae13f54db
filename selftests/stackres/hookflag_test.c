// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres: the VMAs the access fault hook hears of.  REGISTER marks
 * every VMA of its range VM_ACCESS_HOOK ("ah" in smaps VmFlags), whole and
 * without splitting it, and the fault path offers the hook only faults on
 * marked VMAs; the module learns that a reservation ended from the hook's
 * unmap op, not from an MMU notifier.  So: caller memory that is part of a
 * larger VMA still grows, the rest of that VMA is declined as before, the
 * process's other mappings are never offered, and munmap, MAP_FIXED over
 * and mremap away still end a reservation, leaving no growth behind.
 */
#include "stackres_util.h"

/*
 * Does the smaps entry of the VMA containing @addr list @flag in VmFlags?
 * 1 yes, 0 no, -1 if @addr is not mapped.
 */
static int vma_has_flag(uint64_t addr, const char *flag)
{
	static char buf[2 * 1024 * 1024];
	char *line, *save = NULL;
	bool in = false;

	if (sr_read_file("/proc/self/smaps", buf, sizeof(buf)) <= 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long s, e;
		char *tok, *tsave = NULL;

		if (line[strspn(line, "0123456789abcdef")] == '-' &&
		    sscanf(line, "%llx-%llx ", &s, &e) == 2) {
			in = addr >= s && addr < e;
			continue;
		}
		if (!in || strncmp(line, "VmFlags:", 8))
			continue;
		for (tok = strtok_r(line + 8, " ", &tsave); tok; tok = strtok_r(NULL, " ", &tsave))
			if (!strcmp(tok, flag))
				return 1;
		return 0;
	}
	return -1;
}

FIXTURE(hook) {
	int fd;
};

FIXTURE_SETUP(hook)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(hook)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Caller memory in the middle of a 4 MiB VMA: marked whole, grows. */
TEST_F(hook, caller_memory_in_larger_vma_grows)
{
	const uint64_t len = 4 * MIB, rlen = 1 * MIB;
	struct stackres_query q;
	struct stackres_reg r;
	uint64_t base, s, top, vs, ve;
	char perms[5];
	char *p;

	p = sr_map_isolated(len, PROT_NONE);
	ASSERT_NE(0, sr_u64(p));
	base = sr_u64(p);
	s = base + 1 * MIB;
	top = s + rlen;
	EXPECT_EQ(0, vma_has_flag(base, "ah"));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, sr_ptr(s), rlen, PG, 64 * KIB, 0, 0, 0));

	/*
	 * Marked whole, not split at the reservation's bottom: the part of
	 * the VMA below it has the mark too.
	 */
	ASSERT_TRUE(sr_vma_at(s, perms, &vs, &ve));
	EXPECT_STREQ("---p", perms);
	EXPECT_EQ(1, vma_has_flag(base, "ah"));
	EXPECT_EQ(1, vma_has_flag(top - 1, "ah"));
	/* The part above the reservation was marked too (same VMA before). */
	EXPECT_EQ(1, vma_has_flag(top, "ah"));

	/* Growth works in the reservation. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 64 * KIB - 1, 7)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(128 * KIB, q.committed);
	EXPECT_EQ(1, q.grow_faults);
	/* Growth split the marked VMA; both parts keep the mark. */
	EXPECT_EQ(1, vma_has_flag(top - 128 * KIB, "ah"));
	EXPECT_EQ(1, vma_has_flag(top - 128 * KIB - 1, "ah"));

	/* The marked rest of the VMA, outside the reservation: declined. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(base, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(base, sr_sig.addr);
	EXPECT_TRUE(SR_TRY(SR_WRITE(top + PG, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(top + PG, sr_sig.addr);
	/* The guard: an overflow, not growth. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(s, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(128 * KIB, q.committed);
	EXPECT_EQ(1, q.overflows);

	/* mprotect() keeps the mark (a GC barrier on the reservation's VMA). */
	ASSERT_EQ(0, mprotect(sr_ptr(top - PG), PG, PROT_READ));
	EXPECT_EQ(1, vma_has_flag(top - PG, "ah"));
	ASSERT_EQ(0, mprotect(sr_ptr(top - PG), PG, PROT_READ | PROT_WRITE));
	EXPECT_EQ(0, munmap(p, len));
	EXPECT_EQ(-ENOENT, sr_query(self->fd, r.id, &q));
}

/* The process's other mappings are not marked, and fault as before. */
TEST_F(hook, other_mappings_unmarked)
{
	struct stackres_reg r;
	char *mine, *res;
	int i;

	res = sr_map_isolated(256 * KIB, PROT_NONE);
	mine = sr_map_isolated(16 * PG, PROT_NONE);
	ASSERT_NE(0, sr_u64(res));
	ASSERT_NE(0, sr_u64(mine));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, res, 256 * KIB, PG, 64 * KIB, 0, 0, 0));
	EXPECT_EQ(0, vma_has_flag(sr_u64(mine), "ah"));
	/* A GC barrier's toggle: every write faults once. */
	for (i = 0; i < 3; i++) {
		EXPECT_TRUE(SR_TRY(SR_WRITE(sr_u64(mine), 1)));
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		EXPECT_EQ(sr_u64(mine), sr_sig.addr);
		ASSERT_EQ(0, mprotect(mine, PG, PROT_READ | PROT_WRITE));
		EXPECT_FALSE(SR_TRY(SR_WRITE(sr_u64(mine), 1)));
		ASSERT_EQ(0, mprotect(mine, PG, PROT_NONE));
	}
	EXPECT_EQ(0, vma_has_flag(sr_u64(mine), "ah"));
	/* A STACKRES_MAP reservation is marked, and the mapping is exactly it. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, NULL, 256 * KIB, PG, 64 * KIB, 0, 0,
				  STACKRES_MAP));
	EXPECT_EQ(1, vma_has_flag(r.start, "ah"));
	EXPECT_EQ(1, vma_has_flag(r.start + 256 * KIB - 1, "ah"));
}

enum end_how { END_UNMAP, END_MAP_OVER, END_MREMAP_AWAY };

FIXTURE(ends) {
	int fd;
};

FIXTURE_VARIANT(ends) {
	enum end_how how;
	bool caller;	/* caller memory in a larger VMA, not STACKRES_MAP */
};

FIXTURE_VARIANT_ADD(ends, munmap) { .how = END_UNMAP };
FIXTURE_VARIANT_ADD(ends, map_fixed_over) { .how = END_MAP_OVER };
FIXTURE_VARIANT_ADD(ends, mremap_away) { .how = END_MREMAP_AWAY };
FIXTURE_VARIANT_ADD(ends, munmap_caller) { .how = END_UNMAP, .caller = true };
FIXTURE_VARIANT_ADD(ends, map_fixed_over_caller) { .how = END_MAP_OVER, .caller = true };
FIXTURE_VARIANT_ADD(ends, mremap_away_caller) { .how = END_MREMAP_AWAY, .caller = true };

FIXTURE_SETUP(ends)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(ends)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * The reservation [s, s + 1 MiB) ends; the mappings left in its range are
 * plain memory: no growth there (the mark alone does not make a fault
 * ours), and the range may be registered again.
 */
TEST_F(ends, no_growth_after_end)
{
	const uint64_t len = 1 * MIB;
	uint64_t s, top, probe;
	struct stackres_query q;
	struct stackres_reg r;
	char *moved, *p = NULL;

	if (variant->caller) {
		p = sr_map_isolated(3 * MIB, PROT_NONE);
		ASSERT_NE(0, sr_u64(p));
		ASSERT_EQ(0, sr_reg_range(self->fd, &r, p + MIB, len, PG, 64 * KIB, 0, 0, 0));
	} else {
		ASSERT_EQ(0, sr_reg_range(self->fd, &r, NULL, len, PG, 64 * KIB, 0, 0,
					  STACKRES_MAP));
	}
	s = r.start;
	top = s + len;
	probe = s + 512 * KIB;
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 100 * KIB, 1)));	/* grows once */

	switch (variant->how) {
	case END_UNMAP:
		ASSERT_EQ(0, munmap(sr_ptr(s + 256 * KIB), PG));
		break;
	case END_MAP_OVER:
		/* A fresh PROT_NONE mapping over the middle: not marked. */
		ASSERT_EQ(probe, sr_u64(mmap(sr_ptr(probe), 64 * KIB, PROT_NONE,
					     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)));
		EXPECT_EQ(0, vma_has_flag(probe, "ah"));
		break;
	case END_MREMAP_AWAY:
		/* The uncommitted middle moves; the mark goes with it. */
		moved = sr_free_range(128 * KIB);
		ASSERT_NE(0, sr_u64(moved));
		ASSERT_EQ(sr_u64(moved), sr_u64(mremap(sr_ptr(s + 128 * KIB), 128 * KIB,
						       128 * KIB,
						       MREMAP_MAYMOVE | MREMAP_FIXED, moved)));
		EXPECT_EQ(1, vma_has_flag(sr_u64(moved), "ah"));
		/* Marked, but no reservation there: a plain access fault. */
		EXPECT_TRUE(SR_TRY(SR_WRITE(sr_u64(moved) + PG, 1)));
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, sr_u64(moved), &q));
		break;
	}

	EXPECT_EQ(-ENOENT, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, top - 1, &q));
	/* Still mapped (and marked unless replaced), but no longer grown. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(probe, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(probe, sr_sig.addr);
	EXPECT_EQ(1, *(volatile char *)sr_ptr(top - 100 * KIB));
	/* What is left of the range may be a reservation again, and grows. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, sr_ptr(top - 256 * KIB), 256 * KIB, PG,
				  0, 0, 0, 0));
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 200 * KIB, 2)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(1, q.grow_faults);
	if (p)
		munmap(p, 3 * MIB);
}

/*
 * exit and exec end reservations through exit_mmap()'s unmap (no release
 * callback any more): a child that registers, grows and exits leaves the
 * parent's reservation alone, and a child that exits with its fd open
 * frees everything (the module's state goes with the last close).
 */
TEST_F(hook, child_exit_with_reservations)
{
	struct stackres_query q;
	struct stackres_reg r;
	int i, status;
	pid_t pid;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, NULL, 256 * KIB, PG, 64 * KIB, 0, 0,
				  STACKRES_MAP));
	for (i = 0; i < 4; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct stackres_reg cr;
			int cfd = open(SR_DEV, O_RDWR);

			if (cfd < 0 ||
			    sr_reg_range(cfd, &cr, NULL, 256 * KIB, PG, 64 * KIB, 0, 0,
					 STACKRES_MAP))
				_exit(1);
			if (SR_TRY(SR_WRITE(cr.start + 100 * KIB, 1)))
				_exit(2);
			/* The parent's range, inherited marked: not grown here. */
			if (!SR_TRY(SR_WRITE(r.start + 100 * KIB, 1)))
				_exit(3);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
	EXPECT_FALSE(SR_TRY(SR_WRITE(r.start + 100 * KIB, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(1, q.grow_faults);
}

TEST_HARNESS_MAIN
