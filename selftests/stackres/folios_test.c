// SPDX-License-Identifier: GPL-2.0
/*
 * STACKRES_LARGE_FOLIOS (ABI version 1): a reservation that grows and is
 * trimmed at 64 KiB boundaries and asks for large folios, so that where the
 * system's policy for 64 KiB folios is "madvise" (the test guests set it in
 * qemu/init) one fault maps a whole 64 KiB folio.
 *
 * - bad_chunk: a chunk that is not a multiple of 64 KiB is EINVAL, nothing
 *   registered.
 * - aligned_growth: the stack top is 64 KiB aligned; a touch a page below the
 *   committed bottom commits exactly down to the 64 KiB boundary below it,
 *   even with a chunk larger than the distance, and never into the guard.
 * - one_fault_per_folio: touching one byte of a fresh chunk makes its whole
 *   folio resident (64 KiB, by mincore and by QUERY's resident bytes); the
 *   same touch in a reservation without the flag makes one page resident.
 * - aligned_trim: TRIM keeps the folio that holds sp - keep whole: committed
 *   after the trim ends at the 64 KiB boundary at or below the cut.
 * - features: FEATURES lists the flag.
 *
 * The resident checks need the guests' THP policy; where the kernel has no
 * 64 KiB folios (no hugepages-64kB directory) they are skipped, saying so.
 */
#define SR_ABI_V1
#include "stackres_util.h"

#define FOLIO		((uint64_t)STACKRES_FOLIO_SIZE)
#define THP_64K		"/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled"

static bool folios_available(void)
{
	char buf[128];

	return sr_read_file(THP_64K, buf, sizeof(buf)) > 0 &&
	       (strstr(buf, "[madvise]") || strstr(buf, "[always]"));
}

/* REGISTER|MAP|LARGE_FOLIOS of @len above a 64 KiB guard, 64 KiB aligned. */
static int folio_reg(int fd, struct stackres_reg *r, uint64_t len, uint64_t commit,
		     uint64_t chunk, uint32_t flags)
{
	memset(r, 0, sizeof(*r));
	r->len = len + FOLIO;
	r->guard = FOLIO;
	r->commit = commit;
	r->chunk = chunk;
	r->align = FOLIO;
	r->flags = STACKRES_MAP | flags;
	return sr_register(fd, r);
}

static uint64_t committed(int fd, __u32 id)
{
	struct stackres_query q;

	return sr_query(fd, id, &q) ? (uint64_t)-1 : q.committed;
}

static uint64_t resident_v1(int fd, __u32 id)
{
	struct stackres_query q = { .id = id };

	return sr_ioctl(fd, STACKRES_IOC_QUERY, &q) ? (uint64_t)-1 : q.resident;
}

FIXTURE(folios) {
	int fd;
};

FIXTURE_SETUP(folios)
{
	SR_OPEN_OR_SKIP(self->fd, O_RDWR);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(folios)
{
	close(self->fd);
}

TEST_F(folios, features)
{
	struct stackres_features ft;

	memset(&ft, 0, sizeof(ft));
	ASSERT_EQ(0, sr_ioctl(self->fd, STACKRES_IOC_FEATURES, &ft));
	EXPECT_TRUE(ft.reg_flags & STACKRES_LARGE_FOLIOS);
}

TEST_F(folios, bad_chunk)
{
	struct stackres_reg r;
	struct stackres_query q;

	EXPECT_EQ(-EINVAL, folio_reg(self->fd, &r, MIB, 0, 4 * PG,
				     STACKRES_LARGE_FOLIOS));
	EXPECT_EQ(-EINVAL, folio_reg(self->fd, &r, MIB, 0, FOLIO + PG,
				     STACKRES_LARGE_FOLIOS));
	/* Nothing was registered: the first id is still free. */
	EXPECT_EQ(-ENOENT, sr_query(self->fd, 1, &q));
	ASSERT_EQ(0, folio_reg(self->fd, &r, MIB, 0, 2 * FOLIO,
			       STACKRES_LARGE_FOLIOS));
	EXPECT_EQ(0, r.start % FOLIO);
}

TEST_F(folios, aligned_growth)
{
	struct stackres_reg r;
	uint64_t top, c;

	ASSERT_EQ(0, folio_reg(self->fd, &r, MIB, FOLIO, 0, STACKRES_LARGE_FOLIOS));
	top = r.start + r.len;
	ASSERT_EQ(0, top % FOLIO);
	EXPECT_EQ(FOLIO, committed(self->fd, r.id));

	/* A page below the committed bottom: one chunk, down to a boundary. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - FOLIO - PG, 1)));
	EXPECT_EQ(2 * FOLIO, committed(self->fd, r.id));

	/* Far below: the step ends at the 64 KiB boundary under the address. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 5 * FOLIO - 3 * PG, 1)));
	EXPECT_EQ(6 * FOLIO, committed(self->fd, r.id));

	/* Growth stops at the guard: the lowest byte above it commits all. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(r.start + FOLIO, 1)));
	EXPECT_EQ(MIB, committed(self->fd, r.id));
	c = committed(self->fd, r.id);
	EXPECT_EQ(0, c % FOLIO);
	EXPECT_TRUE(SR_TRY(SR_WRITE(r.start + FOLIO - 1, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
}

TEST_F(folios, one_fault_per_folio)
{
	struct stackres_reg r, plain;
	uint64_t top;

	if (!folios_available())
		SKIP(return, "no 64 KiB folios for MADV_HUGEPAGE ranges (%s)", THP_64K);
	ASSERT_EQ(0, folio_reg(self->fd, &r, MIB, 0, 0, STACKRES_LARGE_FOLIOS));
	top = r.start + r.len;
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 100, 1)));
	EXPECT_EQ(FOLIO, committed(self->fd, r.id));
	EXPECT_EQ((long)(FOLIO / PG), sr_resident(sr_ptr(top - FOLIO), FOLIO));
	EXPECT_EQ(FOLIO, resident_v1(self->fd, r.id));

	/* The same touch without the flag: one page. */
	ASSERT_EQ(0, folio_reg(self->fd, &plain, MIB, 0, 0, 0));
	top = plain.start + plain.len;
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 100, 1)));
	EXPECT_EQ(FOLIO, committed(self->fd, plain.id));
	EXPECT_EQ(1, sr_resident(sr_ptr(top - FOLIO), FOLIO));
	EXPECT_EQ(PG, resident_v1(self->fd, plain.id));
}

TEST_F(folios, aligned_trim)
{
	struct stackres_reg r;
	uint64_t top;

	ASSERT_EQ(0, folio_reg(self->fd, &r, MIB, 0, 0, STACKRES_LARGE_FOLIOS));
	top = r.start + r.len;
	EXPECT_FALSE(SR_TRY(SR_WRITE(r.start + FOLIO, 1)));
	EXPECT_EQ(MIB, committed(self->fd, r.id));
	EXPECT_FALSE(SR_TRY(SR_WRITE(top - 100, 1)));

	/* Cut 3 pages into a folio: that folio stays whole. */
	EXPECT_EQ(0, sr_trim(self->fd, r.id, top - 2 * FOLIO - 3 * PG, 0));
	EXPECT_EQ(3 * FOLIO, committed(self->fd, r.id));
	/* keep counts below sp, and the cut still rounds down. */
	EXPECT_EQ(0, sr_trim(self->fd, r.id, top - PG, FOLIO + PG));
	EXPECT_EQ(2 * FOLIO, committed(self->fd, r.id));
	EXPECT_EQ(0, sr_trim(self->fd, r.id, top - PG, 0));
	EXPECT_EQ(FOLIO, committed(self->fd, r.id));
	/* The top folio, touched, is whole; the bottom one is gone. */
	if (folios_available()) {
		EXPECT_EQ((long)(FOLIO / PG), sr_resident(sr_ptr(top - FOLIO), FOLIO));
		EXPECT_EQ(0, sr_resident(sr_ptr(r.start + FOLIO), FOLIO));
	}
}

TEST_HARNESS_MAIN
