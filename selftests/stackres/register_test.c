// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres: REGISTER validation (every documented error, in the
 * documented order, with the mapping unchanged), STACKRES_MAP, QUERY,
 * UNREGISTER, unknown ioctls and wrong-size structures, and the
 * per-process reservation limit.
 */
#include "stackres_util.h"
#include <termios.h>

#define NPG	16

FIXTURE(reg) {
	int fd;
	char *base;		/* NPG pages, private anonymous, rw */
	uint64_t len;
};

FIXTURE_SETUP(reg)
{
	uint64_t i;

	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	self->len = NPG * PG;
	self->base = sr_map_isolated(self->len, PROT_READ | PROT_WRITE);
	ASSERT_NE(0, sr_u64(self->base));
	for (i = 0; i < self->len; i += PG)
		memset(self->base + i, sr_pattern(sr_u64(self->base + i)), PG);
	ASSERT_EQ(0, sr_install_fault_handler());
}

static char limit_path[128];
static long limit_old = -1;

FIXTURE_TEARDOWN(reg)
{
	/* enospc_limit lowers a module parameter: put it back. */
	if (limit_old > 0)
		sr_write_long(limit_path, limit_old);
	if (self->fd >= 0)
		close(self->fd);
}

/* Expect REGISTER to fail with @err and to leave /proc/self/maps as it was. */
#define EXPECT_REG_FAIL(fd, r, err, what) do {					\
	int __ret;								\
	ASSERT_EQ(0, sr_snap_maps(0));						\
	__ret = sr_register(fd, r);						\
	ASSERT_EQ(0, sr_snap_maps(1));						\
	EXPECT_EQ(-(err), __ret) TH_LOG("case: %s", what);			\
	EXPECT_TRUE(sr_maps_same()) TH_LOG("case %s changed the mappings", what); \
} while (0)

TEST_F(reg, efault_struct_pointer)
{
	char *none = sr_map_isolated(PG, PROT_NONE);

	ASSERT_NE(0, sr_u64(none));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_REGISTER, NULL));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_REGISTER, (void *)8));
	/* EFAULT comes first: the kernel cannot see any field yet. */
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_REGISTER, none));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_QUERY, none));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_TRIM, none));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_UNREGISTER, none));
}

TEST_F(reg, einval_fields)
{
	uint64_t b = sr_u64(self->base), L = self->len;
	const uint64_t huge = ~(uint64_t)0 & ~(PG - 1);
	struct {
		const char *what;
		uint64_t start, len, guard, commit, chunk;
		__u32 flags;
	} c[] = {
		{ "unknown flag bit 31", b, L, PG, PG, 0, 1U << 31 },
		{ "unknown flag bit 3", b, L, PG, PG, 0, 1U << 3 },
		{ "start not page aligned", b + 1, L - PG, PG, PG, 0, 0 },
		{ "start misaligned with MAP", b + 8, L - PG, PG, PG, 0, STACKRES_MAP },
		{ "len not page aligned", b, L - 1, PG, PG, 0, 0 },
		{ "guard not page aligned", b, L, 1, PG, 0, 0 },
		{ "commit not page aligned", b, L, PG, PG / 2, 0, 0 },
		{ "chunk not page aligned", b, L, PG, PG, PG + 1, 0 },
		{ "len zero", b, 0, 0, 0, 0, 0 },
		{ "len zero with MAP", 0, 0, 0, 0, 0, STACKRES_MAP },
		{ "guard + commit > len", b, L, 8 * PG, 9 * PG, 0, 0 },
		{ "guard > len", b, L, L + PG, 0, 0, 0 },
		{ "commit > len", b, L, 0, L + PG, 0, 0 },
		{ "guard + commit overflows", b, L, huge, 2 * PG, 0, 0 },
		{ "start + len overflows", b, huge - PG, 0, 0, 0, 0 },
		{ "len beyond the address space with MAP", 0, huge, 0, 0, 0, STACKRES_MAP },
		/* Not user address space for any of the three ABIs. */
		{ "kernel address", sizeof(long) == 8 ? 0xffff888000000000ULL : 0xfffff000ULL,
		  2 * PG, 0, 0, 0, 0 },
		{ "range ends above user space",
		  sizeof(long) == 8 ? 0x7ffffffff000ULL : 0xffffe000ULL, 4 * PG, 0, 0, 0, 0 },
	};
	struct stackres_reg r;
	unsigned int i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.start = c[i].start;
		r.len = c[i].len;
		r.guard = c[i].guard;
		r.commit = c[i].commit;
		r.chunk = c[i].chunk;
		r.flags = c[i].flags;
		EXPECT_REG_FAIL(self->fd, &r, EINVAL, c[i].what);
		EXPECT_EQ(0, r.id) TH_LOG("case %s wrote an id", c[i].what);
	}

	if (!sr_is_64bit_task()) {
		/* A 32-bit task has no memory at or above 4 GiB. */
		memset(&r, 0, sizeof(r));
		r.start = 1ULL << 32;
		r.len = PG;
		EXPECT_REG_FAIL(self->fd, &r, EINVAL, "start above 4 GiB (32-bit)");
		r.start = 0xffff0000ULL;
		r.len = (1ULL << 32) + PG;
		EXPECT_REG_FAIL(self->fd, &r, EINVAL, "len above 4 GiB (32-bit)");
	}

	/* The memory was not touched: still rw with its pattern. */
	EXPECT_EQ(sr_pattern(b), (uint8_t)self->base[0]);
	EXPECT_EQ(sr_pattern(b + L - PG), (uint8_t)self->base[L - 1]);
}

TEST_F(reg, enxio_not_private_anonymous)
{
	uint64_t b = sr_u64(self->base), L = self->len;
	struct stackres_reg r;
	char *shared, *file, *hole, *free;
	int mfd;

	/* A hole inside the range. */
	hole = sr_map_isolated(L, PROT_READ | PROT_WRITE);
	ASSERT_NE(0, sr_u64(hole));
	ASSERT_EQ(0, munmap(hole + 8 * PG, PG));
	sr_fill_reg(self->fd, &r, hole, L, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENXIO, "hole in the range");

	/* Nothing mapped at all. */
	free = sr_free_range(L);
	ASSERT_NE(0, sr_u64(free));
	sr_fill_reg(self->fd, &r, free, L, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENXIO, "unmapped range");

	/* Shared anonymous. */
	shared = mmap(NULL, L, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(sr_u64(MAP_FAILED), sr_u64(shared));
	sr_fill_reg(self->fd, &r, shared, L, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENXIO, "MAP_SHARED|MAP_ANONYMOUS");

	/* Private, but file-backed (a memfd). */
	mfd = memfd_create("stackres", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, L));
	file = mmap(NULL, L, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	ASSERT_NE(sr_u64(MAP_FAILED), sr_u64(file));
	sr_fill_reg(self->fd, &r, file, L, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENXIO, "MAP_PRIVATE of a file");

	/* Private anonymous followed by a shared page: not entirely private. */
	ASSERT_NE(sr_u64(MAP_FAILED),
		  sr_u64(mmap(self->base + L - PG, PG, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0)));
	sr_fill_reg(self->fd, &r, self->base, L, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENXIO, "private then shared");

	/* The vDSO is a special mapping. */
	{
		static char maps[SR_MAPS_SIZE];
		unsigned long long vs, ve;
		char *v;

		ASSERT_LT(0, sr_read_file("/proc/self/maps", maps, sizeof(maps)));
		v = strstr(maps, "[vdso]");
		if (v) {
			while (v > maps && v[-1] != '\n')
				v--;
			ASSERT_EQ(2, sscanf(v, "%llx-%llx", &vs, &ve));
			sr_fill_reg(self->fd, &r, sr_ptr(vs), ve - vs, 0, 0, 0, 0, 0);
			EXPECT_REG_FAIL(self->fd, &r, ENXIO, "[vdso]");
		}
	}
	(void)b;
}

TEST_F(reg, error_order)
{
	uint64_t L = self->len;
	struct stackres_reg r, ok;
	char *hole = sr_map_isolated(L, PROT_READ | PROT_WRITE);

	ASSERT_NE(0, sr_u64(hole));
	ASSERT_EQ(0, munmap(hole + 4 * PG, PG));

	/* EINVAL before ENXIO: a bad field over a hole. */
	sr_fill_reg(self->fd, &r, hole + 1, L - PG, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EINVAL, "misaligned start over a hole");
	sr_fill_reg(self->fd, &r, hole, L, 8 * PG, 9 * PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EINVAL, "guard + commit > len over a hole");
	sr_fill_reg(self->fd, &r, hole, L, PG, PG, 0, 0, 1U << 20);
	EXPECT_REG_FAIL(self->fd, &r, EINVAL, "unknown flag over a hole");

	/* ENXIO before EEXIST: overlaps a reservation and also has a hole. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &ok, hole + 8 * PG, 8 * PG, PG, PG, 0, 0, 0));
	sr_fill_reg(self->fd, &r, hole, L, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENXIO, "hole and overlap");

	/* EINVAL before EEXIST. */
	sr_fill_reg(self->fd, &r, hole + 8 * PG, 8 * PG, PG, PG, PG + 1, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EINVAL, "bad chunk on a registered range");

	/* Valid fields on the registered range: EEXIST. */
	sr_fill_reg(self->fd, &r, hole + 8 * PG, 8 * PG, PG, PG, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "same range again");
}

TEST_F(reg, eexist_overlap)
{
	uint64_t L = self->len;
	struct stackres_reg a, b, r;
	int fd2;

	/* Two adjacent reservations do not overlap. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &a, self->base, L / 2, PG, 0, 0, 0, 0));
	ASSERT_EQ(0, sr_reg_range(self->fd, &b, self->base + L / 2, L / 2, 0, PG, 0, 0, 0));
	EXPECT_NE(0, a.id);
	EXPECT_NE(0, b.id);
	EXPECT_NE(a.id, b.id);

	sr_fill_reg(self->fd, &r, self->base, L / 2, PG, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "identical range");
	sr_fill_reg(self->fd, &r, self->base + PG, 2 * PG, 0, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "inside another");
	sr_fill_reg(self->fd, &r, self->base + L / 2 - PG, 2 * PG, 0, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "straddles two");
	sr_fill_reg(self->fd, &r, self->base, PG, 0, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "only the guard page of another");
	sr_fill_reg(self->fd, &r, self->base, L, PG, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "covers both");

	/* Another stackres fd of the same mm sees them too. */
	SR_OPEN_OR_SKIP(fd2, O_NONBLOCK);
	sr_fill_reg(fd2, &r, self->base + 2 * PG, PG, 0, 0, 0, 0, 0);
	EXPECT_REG_FAIL(fd2, &r, EEXIST, "overlap across two fds");
	sr_fill_reg(fd2, &r, self->base + L - PG, PG, 0, PG, 0, 0, STACKRES_MAP);
	EXPECT_REG_FAIL(fd2, &r, EEXIST, "MAP at a reserved fixed address, other fd");

	/* After UNREGISTER the other fd can take the range. */
	EXPECT_EQ(0, sr_unregister(self->fd, a.id));
	EXPECT_EQ(0, sr_reg_range(fd2, &r, self->base, L / 2, PG, 0, 0, 0, 0));
	close(fd2);
}

TEST_F(reg, register_sets_protections_and_keeps_data)
{
	uint64_t b = sr_u64(self->base), L = self->len, s, e;
	struct stackres_query q;
	struct stackres_reg r;
	char perms[5];

	/* guard 2 pages, commit 3 pages at the top. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base, L, 2 * PG, 3 * PG, 0, 0, 0));
	EXPECT_EQ(b, r.start);
	EXPECT_NE(0, r.id);

	ASSERT_TRUE(sr_vma_at(b + L - 1, perms, &s, &e));
	EXPECT_STREQ("rw-p", perms);
	EXPECT_EQ(b + L - 3 * PG, s);
	EXPECT_EQ(b + L, e);
	ASSERT_TRUE(sr_vma_at(b, perms, &s, &e));
	EXPECT_STREQ("---p", perms);
	EXPECT_EQ(b, s);
	EXPECT_EQ(b + L - 3 * PG, e);

	/* The committed part kept its data. */
	EXPECT_EQ(sr_pattern(b + L - 3 * PG), (uint8_t)self->base[L - 3 * PG]);

	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(r.id, q.id);
	EXPECT_EQ(b, q.start);
	EXPECT_EQ(L, q.len);
	EXPECT_EQ(2 * PG, q.guard);
	EXPECT_EQ(3 * PG, q.committed);
	EXPECT_EQ(3 * PG, q.peak);
	EXPECT_EQ(0, q.grow_faults);
	EXPECT_EQ(0, q.overflows);

	/* Data hidden by PROT_NONE is visible again once committed. */
	EXPECT_FALSE(SR_TRY(SR_READ(b + 5 * PG + 7)));
	EXPECT_EQ(sr_pattern(b + 5 * PG), (uint8_t)self->base[5 * PG + 7]);
	EXPECT_EQ(sr_pattern(b + 2 * PG), (uint8_t)self->base[2 * PG]);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(L - 2 * PG, q.committed);	/* down to the guard */
	EXPECT_EQ(1, q.grow_faults);
}

TEST_F(reg, register_edge_sizes)
{
	struct stackres_reg r;
	struct stackres_query q;
	char perms[5];

	/* guard = commit = 0: one uncommitted page. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base, PG, 0, 0, 0, 0, 0));
	ASSERT_TRUE(sr_vma_at(sr_u64(self->base), perms, NULL, NULL));
	EXPECT_STREQ("---p", perms);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, q.committed);
	EXPECT_EQ(0, q.guard);

	/* guard + commit == len: fully committed, nothing to grow. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base + 2 * PG, 4 * PG, PG, 3 * PG,
				  0, 0, 0));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(3 * PG, q.committed);

	/* A guard of the whole range: nothing can ever be committed. */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base + 8 * PG, 2 * PG, 2 * PG, 0,
				  0, 0, 0));
	EXPECT_TRUE(SR_TRY(SR_WRITE(sr_u64(self->base) + 9 * PG, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(sr_u64(self->base) + 9 * PG, sr_sig.addr);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, q.committed);
	EXPECT_EQ(1, q.overflows);
}

TEST_F(reg, map_anywhere)
{
	uint64_t len = 32 * PG, s, e;
	struct stackres_query q;
	struct stackres_reg r;
	char perms[5];

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, NULL, len, PG, 2 * PG, 0, 0, STACKRES_MAP));
	ASSERT_NE(0, r.start);
	EXPECT_EQ(0, r.start & (PG - 1));
	EXPECT_NE(0, r.id);

	ASSERT_TRUE(sr_vma_at(r.start + len - 1, perms, &s, &e));
	EXPECT_STREQ("rw-p", perms);
	EXPECT_EQ(r.start + len - 2 * PG, s);
	EXPECT_EQ(r.start + len, e);
	ASSERT_TRUE(sr_vma_at(r.start, perms, &s, &e));
	EXPECT_STREQ("---p", perms);
	EXPECT_LE(s, r.start);
	EXPECT_EQ(r.start + len - 2 * PG, e);

	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(r.start, q.start);
	EXPECT_EQ(len, q.len);
	EXPECT_EQ(2 * PG, q.committed);

	/* Fresh memory, not populated, zero-filled, and it grows. */
	EXPECT_EQ(0, sr_resident(sr_ptr(r.start), len));
	EXPECT_FALSE(SR_TRY(SR_WRITE(r.start + 10 * PG, 5)));
	EXPECT_EQ(0, *(char *)sr_ptr(r.start + 10 * PG + 1));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(len - 10 * PG, q.committed);	/* deep touch: straight to the page */
	EXPECT_EQ(1, sr_resident(sr_ptr(r.start), len));
}

TEST_F(reg, map_fixed)
{
	uint64_t len = 16 * PG;
	char *free = sr_free_range(len);
	struct stackres_query q;
	struct stackres_reg r, r2;
	char perms[5];

	ASSERT_NE(0, sr_u64(free));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, free, len, PG, PG, 0, 0, STACKRES_MAP));
	EXPECT_EQ(sr_u64(free), r.start);
	ASSERT_TRUE(sr_vma_at(r.start + len - 1, perms, NULL, NULL));
	EXPECT_STREQ("rw-p", perms);
	ASSERT_EQ(0, sr_query_addr(self->fd, sr_u64(free), &q));
	EXPECT_EQ(r.id, q.id);

	/* Occupied, even partly: EEXIST and the occupant is untouched. */
	sr_fill_reg(self->fd, &r2, self->base + 4 * PG, len, PG, PG, 0, 0, STACKRES_MAP);
	EXPECT_REG_FAIL(self->fd, &r2, EEXIST, "MAP over a plain mapping");
	sr_fill_reg(self->fd, &r2, self->base - 4 * PG, 8 * PG, PG, PG, 0, 0, STACKRES_MAP);
	EXPECT_REG_FAIL(self->fd, &r2, EEXIST, "MAP over the start of a plain mapping");
	sr_fill_reg(self->fd, &r2, free, len, PG, PG, 0, 0, STACKRES_MAP);
	EXPECT_REG_FAIL(self->fd, &r2, EEXIST, "MAP over a reservation");
	EXPECT_EQ(sr_pattern(sr_u64(self->base) + 4 * PG), (uint8_t)self->base[4 * PG]);
	ASSERT_TRUE(sr_vma_at(sr_u64(self->base) + 4 * PG, perms, NULL, NULL));
	EXPECT_STREQ("rw-p", perms);
}

TEST_F(reg, map_populate)
{
	uint64_t len = 64 * PG;
	struct stackres_query q;
	struct stackres_reg r;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, NULL, len, 4 * PG, 8 * PG, 16 * PG, 0,
				  STACKRES_MAP | STACKRES_POPULATE));
	EXPECT_EQ(8, sr_resident(sr_ptr(r.start), len));
	EXPECT_EQ(8, sr_resident(sr_ptr(r.start + len - 8 * PG), 8 * PG));

	/* One growth step commits and populates a whole chunk. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(r.start + len - 8 * PG - 1, 1)));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(24 * PG, q.committed);
	EXPECT_EQ(24, sr_resident(sr_ptr(r.start), len));
}

TEST_F(reg, query_by_addr)
{
	uint64_t b = sr_u64(self->base), L = self->len;
	struct stackres_query q;
	struct stackres_reg r;
	uint64_t in[] = { b, b + PG - 1, b + 2 * PG - 1, b + 2 * PG, b + L / 2, b + L - 1 };
	unsigned int i;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base, L, 2 * PG, PG, 0, 0, 0));
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		ASSERT_EQ(0, sr_query_addr(self->fd, in[i], &q))
			TH_LOG("addr start + %llu", (unsigned long long)(in[i] - b));
		EXPECT_EQ(r.id, q.id);
		EXPECT_EQ(b, q.start);
		EXPECT_EQ(L, q.len);
		EXPECT_EQ(2 * PG, q.guard);
		EXPECT_EQ(PG, q.committed);
	}
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, b - 1, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, b + L, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, 0, &q));
	EXPECT_EQ(-ENOENT, sr_query(self->fd, r.id + 1000, &q));
	EXPECT_EQ(-ENOENT, sr_query(self->fd, 0, &q));

	/* Unknown query flags. */
	memset(&q, 0, sizeof(q));
	q.id = r.id;
	q.flags = 1U << 7;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_QUERY, &q));
}

TEST_F(reg, query_other_fd_sees_nothing)
{
	struct stackres_query q;
	struct stackres_reg r;
	int fd2;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base, self->len, PG, PG, 0, 0, 0));
	SR_OPEN_OR_SKIP(fd2, O_NONBLOCK);
	EXPECT_EQ(-ENOENT, sr_query(fd2, r.id, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(fd2, r.start, &q));
	EXPECT_EQ(-ENOENT, sr_unregister(fd2, r.id));
	EXPECT_EQ(-ENOENT, sr_trim(fd2, r.id, r.start + r.len, 0));
	/* ... and the registration is still there for its owner. */
	EXPECT_EQ(0, sr_query(self->fd, r.id, &q));
	close(fd2);
}

TEST_F(reg, unregister)
{
	uint64_t b = sr_u64(self->base), L = self->len;
	struct stackres_query q;
	struct stackres_reg r;

	ASSERT_EQ(0, sr_reg_range(self->fd, &r, self->base, L, PG, 2 * PG, 0, 0, 0));
	EXPECT_FALSE(SR_TRY(SR_WRITE(b + L - 3 * PG, 3)));	/* one growth step */

	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(0, sr_unregister(self->fd, r.id));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same()) TH_LOG("UNREGISTER changed the mappings");
	EXPECT_EQ(-ENOENT, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, b + L - 1, &q));
	EXPECT_EQ(-ENOENT, sr_unregister(self->fd, r.id));
	EXPECT_EQ(-ENOENT, sr_unregister(self->fd, 0));
	EXPECT_EQ(-ENOENT, sr_trim(self->fd, r.id, b + L, 0));

	/* Committed data stays, and the rest (here the guard) is plain PROT_NONE. */
	EXPECT_EQ(3, self->base[L - 3 * PG]);
	EXPECT_TRUE(SR_TRY(SR_WRITE(b + 10, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(b + 10, sr_sig.addr);

	/* The range can be registered again. */
	EXPECT_EQ(0, sr_reg_range(self->fd, &r, self->base, L, PG, 2 * PG, 0, 0, 0));
}

TEST_F(reg, enotty)
{
	struct stackres_reg r;
	struct stackres_query q;
	char buf[256];
	unsigned long reg = STACKRES_IOC_REGISTER;
	int ret;

	memset(buf, 0, sizeof(buf));
	sr_fill_reg(self->fd, &r, self->base, self->len, PG, PG, 0, 0, 0);
	memcpy(buf, &r, sizeof(r));

	/* Unknown numbers. */
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IO(STACKRES_IOC_MAGIC, 0x7f), NULL));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOWR(STACKRES_IOC_MAGIC, 0x7f, __u64), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOWR(STACKRES_IOC_MAGIC + 1, _IOC_NR(reg),
						      struct stackres_reg), buf));

	/* Right number, wrong size: smaller and larger. */
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, STACKRES_IOC_MAGIC,
						     _IOC_NR(reg), sizeof(r) - 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, STACKRES_IOC_MAGIC,
						     _IOC_NR(reg), sizeof(r) + 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, STACKRES_IOC_MAGIC,
						     _IOC_NR(STACKRES_IOC_QUERY),
						     sizeof(q) - 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, STACKRES_IOC_MAGIC,
						     _IOC_NR(STACKRES_IOC_TRIM),
						     sizeof(struct stackres_trim) + 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOC(_IOC_READ | _IOC_WRITE, STACKRES_IOC_MAGIC,
						     _IOC_NR(STACKRES_IOC_UNREGISTER), 8), buf));
	/* Right size, other direction. */
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOW(STACKRES_IOC_MAGIC, _IOC_NR(reg),
						     struct stackres_reg), buf));
	/* A tty ioctl is not ours either. */
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, TCGETS, buf));

	/* None of them registered anything. */
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, sr_u64(self->base), &q));
	ret = sr_register(self->fd, &r);
	EXPECT_EQ(0, ret);
}

/*
 * The per-process limit on live reservations is a module parameter.  The
 * test lowers it when it is writable (the guest runs as root) and restores
 * it afterwards.
 */
static int find_limit_param(char *path, size_t size)
{
	static const char *const names[] = {
		"max_reservations", "max_per_process", "max_regs", "limit",
		"max_reservations_per_mm", "max_per_mm",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, size, "/sys/module/stackres/parameters/%s", names[i]);
		if (!access(path, R_OK))
			return 0;
	}
	return -1;
}

static long read_long(const char *path)
{
	char buf[64];

	if (sr_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 0);
}

TEST_F(reg, enospc_limit)
{
	struct stackres_query q;
	struct stackres_reg r;
	long limit = 8, i;
	char *m;
	int fd2;

	if (find_limit_param(limit_path, sizeof(limit_path)))
		SKIP(return, "no reservation limit parameter in /sys/module/stackres/parameters");
	limit_old = read_long(limit_path);
	ASSERT_LT(0, limit_old);
	if (sr_write_long(limit_path, limit)) {
		if (limit_old > 4096)
			SKIP(return, "%s=%ld is read-only and too large to reach here",
			     limit_path, limit_old);
		limit = limit_old;
		limit_old = -1;
	}

	/* The limit counts every fd of the process: use two. */
	SR_OPEN_OR_SKIP(fd2, O_NONBLOCK);
	m = sr_map_isolated((limit + 2) * 2 * PG, PROT_NONE);
	ASSERT_NE(0, sr_u64(m));
	for (i = 0; i < limit; i++) {
		ASSERT_EQ(0, sr_reg_range(i & 1 ? fd2 : self->fd, &r, m + i * 2 * PG, 2 * PG,
					  PG, 0, 0, 0, 0)) TH_LOG("registration %ld", i);
	}
	/* EEXIST is checked before the limit. */
	sr_fill_reg(self->fd, &r, m, 2 * PG, PG, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, EEXIST, "overlap at the limit");
	sr_fill_reg(self->fd, &r, m + limit * 2 * PG, 2 * PG, PG, 0, 0, 0, 0);
	EXPECT_REG_FAIL(self->fd, &r, ENOSPC, "one over the limit");
	sr_fill_reg(fd2, &r, m + limit * 2 * PG, 2 * PG, PG, 0, 0, 0, 0);
	EXPECT_REG_FAIL(fd2, &r, ENOSPC, "one over the limit, other fd");
	sr_fill_reg(fd2, &r, NULL, 2 * PG, PG, 0, 0, 0, STACKRES_MAP);
	EXPECT_REG_FAIL(fd2, &r, ENOSPC, "MAP over the limit");

	/* Ending one makes room for exactly one. */
	ASSERT_EQ(0, sr_query_addr(self->fd, sr_u64(m), &q));
	ASSERT_EQ(0, sr_unregister(self->fd, q.id));
	EXPECT_EQ(0, sr_reg_range(fd2, &r, m + limit * 2 * PG, 2 * PG, PG, 0, 0, 0, 0));
	sr_fill_reg(fd2, &r, m + (limit + 1) * 2 * PG, 2 * PG, PG, 0, 0, 0, 0);
	EXPECT_REG_FAIL(fd2, &r, ENOSPC, "over the limit again");

	/* Closing an fd ends its registrations: room again. */
	close(fd2);
	EXPECT_EQ(0, sr_reg_range(self->fd, &r, m + (limit + 1) * 2 * PG, 2 * PG, PG, 0, 0,
				  0, 0));
}

TEST_HARNESS_MAIN
