// SPDX-License-Identifier: GPL-2.0
/*
 * Regression tests for what the stress run and the fuzzer found.
 *
 *  - REGISTER sets the protections itself (stackres(4),
 *    STACKRES_IOC_REGISTER): the top `commit` bytes read/write and the
 *    rest PROT_NONE, whatever the caller's mapping had before, read-only
 *    pages included.  Found by
 *    stackres_stress (mprotect racing with UNREGISTER + REGISTER left a
 *    read-only page inside a committed part).
 *  - Growth over the uncommitted part commits all of it: no read-only page
 *    left from before REGISTER survives inside the committed part.
 */
#include "../stackres/stackres_util.h"

FIXTURE(regress) {
	int fd;
	char *p;
};

FIXTURE_SETUP(regress)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
	self->p = sr_map_isolated(16 * PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(0, sr_u64(self->p));
}

FIXTURE_TEARDOWN(regress)
{
	if (self->fd >= 0)
		close(self->fd);
}

static void expect_perms(struct __test_metadata *_metadata, char *p, int page,
			 const char *want)
{
	char perms[5];

	ASSERT_TRUE(sr_vma_at(sr_u64(p) + page * PG, perms, NULL, NULL));
	EXPECT_STREQ(want, perms) TH_LOG("page %d", page);
}

TEST_F(regress, register_resets_read_only_pages)
{
	struct stackres_reg r;
	int i;

	/* One read-only page in the committed top, one below it. */
	ASSERT_EQ(0, mprotect(self->p + 14 * PG, PG, PROT_READ));
	ASSERT_EQ(0, mprotect(self->p + 8 * PG, PG, PROT_READ));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->p, 16 * PG, PG, 4 * PG, 0, 0, 0));
	for (i = 0; i < 12; i++)
		expect_perms(_metadata, self->p, i, "---p");
	for (i = 12; i < 16; i++)
		expect_perms(_metadata, self->p, i, "rw-p");
	/* Committed means writable: no SIGSEGV in the committed top. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(sr_u64(self->p) + 14 * PG, 1)));
}

TEST_F(regress, growth_commits_a_formerly_read_only_page)
{
	struct stackres_query q;
	struct stackres_reg r;
	int i;

	ASSERT_EQ(0, mprotect(self->p + 8 * PG, PG, PROT_READ));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->p, 16 * PG, PG, 4 * PG, 0, 0, 0));
	/* Growth by the default chunk: down to the guard. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(sr_u64(self->p) + 9 * PG, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(15 * PG, q.committed);
	for (i = 1; i < 16; i++)
		expect_perms(_metadata, self->p, i, "rw-p");
	EXPECT_FALSE(SR_TRY(SR_WRITE(sr_u64(self->p) + 8 * PG, 1)));
}

TEST_HARNESS_MAIN
