// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres ABI version 1, built against the version 1 header (every
 * other program here is built against uapi-v0/ and shows that programs of
 * the old ABI keep working).  Exact outcomes of each addition:
 *
 * - FEATURES: every value; a larger struct's unknown part is zeroed.
 * - ioctl numbers: the module takes the caller's struct size from the
 *   number.  Version 0 sizes (hand-built numbers) keep version 0 behaviour;
 *   for the four ioctls of version 0 any size but version 0's, version 1's
 *   or larger stays ENOTTY as version 0 answered it, for the new ones a
 *   size below version 1 is EINVAL; larger with a zero tail works, a
 *   non-zero tail is E2BIG and changes nothing, a size above the page size
 *   is E2BIG, a wrong direction ENOTTY.
 * - user_data from REGISTER and ARENA in QUERY, LIST and v1 records.
 * - RECORD_SIZE and the 64-byte records: origin USER for the task's own
 *   access, KERNEL for a copy to user memory in a system call, IFETCH for
 *   a jump into an arena guard; the slot of an arena record; LOST.
 * - TRIM_ADDR: no id, the reservation or slot whose (start, end] holds sp,
 *   committed written back; the fast path that changes nothing.
 * - TRIM_VEC: in order, one bad entry stops it with its errno and its index
 *   in done, the ones before it applied, it and the later ones not.
 * - LIST: totals, pagination by next_id, entry sizes.
 * - align for REGISTER|MAP and ARENA|MAP.
 * - QUERY: ANY (another file's reservation, FOREIGN), GUARD, resident.
 */
#define SR_ABI_V1
#include "stackres_util.h"

#ifndef STACKRES_ABI_VERSION
#error "abi_v1_test must be built against the version 1 <linux/stackres.h>"
#endif

/* Sizes and offsets: the same for x86_64, ia32 compat and i386. */
_Static_assert(sizeof(struct stackres_reg) == STACKRES_REG_SIZE_VER1, "reg");
_Static_assert(STACKRES_REG_SIZE_VER1 == 72 && STACKRES_REG_SIZE_VER0 == 56, "reg");
_Static_assert(offsetof(struct stackres_reg, flags) == 48, "reg.flags");
_Static_assert(offsetof(struct stackres_reg, id) == 52, "reg.id");
_Static_assert(offsetof(struct stackres_reg, user_data) == 56, "reg.user_data");
_Static_assert(offsetof(struct stackres_reg, align) == 64, "reg.align");
_Static_assert(sizeof(struct stackres_trim) == STACKRES_TRIM_SIZE_VER1, "trim");
_Static_assert(STACKRES_TRIM_SIZE_VER1 == 40 && STACKRES_TRIM_SIZE_VER0 == 24, "trim");
_Static_assert(offsetof(struct stackres_trim, pad) == 4, "trim.pad");
_Static_assert(offsetof(struct stackres_trim, flags) == 4, "trim.flags");
_Static_assert(offsetof(struct stackres_trim, sp) == 8, "trim.sp");
_Static_assert(offsetof(struct stackres_trim, keep) == 16, "trim.keep");
_Static_assert(offsetof(struct stackres_trim, committed) == 24, "trim.committed");
_Static_assert(offsetof(struct stackres_trim, reserved) == 32, "trim.reserved");
_Static_assert(sizeof(struct stackres_query) == STACKRES_QUERY_SIZE_VER1, "query");
_Static_assert(STACKRES_QUERY_SIZE_VER1 == 96 && STACKRES_QUERY_SIZE_VER0 == 72, "query");
_Static_assert(offsetof(struct stackres_query, overflows) == 64, "query.overflows");
_Static_assert(offsetof(struct stackres_query, user_data) == 72, "query.user_data");
_Static_assert(offsetof(struct stackres_query, slot) == 80, "query.slot");
_Static_assert(offsetof(struct stackres_query, resident) == 88, "query.resident");
_Static_assert(sizeof(struct stackres_arena) == STACKRES_ARENA_SIZE_VER1, "arena");
_Static_assert(STACKRES_ARENA_SIZE_VER1 == 56 && STACKRES_ARENA_SIZE_VER0 == 40, "arena");
_Static_assert(offsetof(struct stackres_arena, flags) == 32, "arena.flags");
_Static_assert(offsetof(struct stackres_arena, id) == 36, "arena.id");
_Static_assert(offsetof(struct stackres_arena, user_data) == 40, "arena.user_data");
_Static_assert(offsetof(struct stackres_arena, align) == 48, "arena.align");
_Static_assert(sizeof(struct stackres_event) == STACKRES_RECORD_SIZE_VER0, "event");
_Static_assert(sizeof(struct stackres_record) == STACKRES_RECORD_SIZE_VER1, "record");
_Static_assert(STACKRES_RECORD_SIZE_VER1 == 64 && STACKRES_RECORD_SIZE_VER0 == 32, "record");
_Static_assert(offsetof(struct stackres_record, committed) == 24, "record.committed");
_Static_assert(offsetof(struct stackres_record, user_data) == 32, "record.user_data");
_Static_assert(offsetof(struct stackres_record, slot) == 40, "record.slot");
_Static_assert(offsetof(struct stackres_record, origin) == 48, "record.origin");
_Static_assert(offsetof(struct stackres_record, flags) == 52, "record.flags");
_Static_assert(offsetof(struct stackres_record, reserved) == 56, "record.reserved");
_Static_assert(sizeof(struct stackres_trim_vec) == 24, "trim_vec");
_Static_assert(offsetof(struct stackres_trim_vec, count) == 8, "trim_vec.count");
_Static_assert(offsetof(struct stackres_trim_vec, entry_size) == 12, "trim_vec.entry_size");
_Static_assert(offsetof(struct stackres_trim_vec, done) == 16, "trim_vec.done");
_Static_assert(offsetof(struct stackres_trim_vec, flags) == 20, "trim_vec.flags");
_Static_assert(sizeof(struct stackres_entry) == STACKRES_ENTRY_SIZE_VER1, "entry");
_Static_assert(STACKRES_ENTRY_SIZE_VER1 == 40, "entry");
_Static_assert(offsetof(struct stackres_entry, committed) == 24, "entry.committed");
_Static_assert(offsetof(struct stackres_entry, id) == 32, "entry.id");
_Static_assert(offsetof(struct stackres_entry, flags) == 36, "entry.flags");
_Static_assert(sizeof(struct stackres_list) == 48, "list");
_Static_assert(offsetof(struct stackres_list, count) == 8, "list.count");
_Static_assert(offsetof(struct stackres_list, entry_size) == 12, "list.entry_size");
_Static_assert(offsetof(struct stackres_list, next_id) == 16, "list.next_id");
_Static_assert(offsetof(struct stackres_list, filled) == 20, "list.filled");
_Static_assert(offsetof(struct stackres_list, flags) == 24, "list.flags");
_Static_assert(offsetof(struct stackres_list, pad) == 28, "list.pad");
_Static_assert(offsetof(struct stackres_list, nr_res) == 32, "list.nr_res");
_Static_assert(offsetof(struct stackres_list, committed) == 40, "list.committed");
_Static_assert(sizeof(struct stackres_features) == STACKRES_FEATURES_SIZE_VER1, "features");
_Static_assert(STACKRES_FEATURES_SIZE_VER1 == 96, "features");
_Static_assert(offsetof(struct stackres_features, ioctls) == 8, "features.ioctls");
_Static_assert(offsetof(struct stackres_features, reg_size) == 48, "features.reg_size");
_Static_assert(offsetof(struct stackres_features, queue_len) == 76, "features.queue_len");
_Static_assert(offsetof(struct stackres_features, page_size) == 80, "features.page_size");
_Static_assert(offsetof(struct stackres_features, chunk_max) == 88, "features.chunk_max");

/* A command number of @nr with any direction and size, as older or newer headers make. */
#define RW		(_IOC_READ | _IOC_WRITE)
#define IOC(dir, nr, size)	_IOC(dir, STACKRES_IOC_MAGIC, nr, size)
#define NR_REGISTER	_IOC_NR(STACKRES_IOC_REGISTER)
#define NR_UNREGISTER	_IOC_NR(STACKRES_IOC_UNREGISTER)
#define NR_TRIM		_IOC_NR(STACKRES_IOC_TRIM)
#define NR_QUERY	_IOC_NR(STACKRES_IOC_QUERY)
#define NR_ARENA	_IOC_NR(STACKRES_IOC_ARENA)
#define NR_FEATURES	_IOC_NR(STACKRES_IOC_FEATURES)
#define NR_RECORD_SIZE	_IOC_NR(STACKRES_IOC_RECORD_SIZE)
#define NR_TRIM_VEC	_IOC_NR(STACKRES_IOC_TRIM_VEC)
#define NR_LIST		_IOC_NR(STACKRES_IOC_LIST)

#define SLOT		(64 * KIB)
#define UD(n)		(0x5eed000000000000ULL | (n))

/* A struct larger than any version's, for the sizes a later header may use. */
#define BIG		256
/* Zeroes for the sizes above the page size (E2BIG whatever they hold). */
static unsigned char zero_buf[3 * 4096] __attribute__((aligned(8)));
#define ABOVE_PAGE	((size_t)PG + 8)

/* Where the task's address space ends (TASK_SIZE of this task's ABI). */
static uint64_t task_size(void)
{
	if (sr_is_64bit_task())
		return 0x7ffffffff000ULL;	/* 4-level paging */
	if (sr_is_compat_task())
		return 0xffffe000ULL;		/* IA32_PAGE_OFFSET */
	return 0xc0000000ULL;			/* VMSPLIT_3G */
}

FIXTURE(v1) {
	int fd;
};

FIXTURE_SETUP(v1)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(v1)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* REGISTER [p, p+len) with the version 1 struct: 0 or -errno. */
static int reg(int fd, struct stackres_reg *r, void *p, uint64_t len, uint64_t guard,
	       uint64_t commit, uint64_t chunk, __u32 flags, uint64_t user_data)
{
	sr_fill_reg(fd, r, p, len, guard, commit, chunk, 0, flags);
	r->user_data = user_data;
	return sr_register(fd, r);
}

/* A reservation of @len on fresh isolated memory; chunk one page. */
static int reg_new(int fd, struct stackres_reg *r, uint64_t len, uint64_t guard,
		   uint64_t commit, uint64_t user_data)
{
	char *p = sr_free_range(len);

	if (!p)
		return -ENOMEM;
	return reg(fd, r, p, len, guard, commit, PG, STACKRES_MAP, user_data);
}

static int arena(int fd, struct stackres_arena *a, uint64_t start, uint64_t nslots,
		 uint64_t guard, __u32 flags, uint64_t user_data, uint64_t align)
{
	memset(a, 0, sizeof(*a));
	a->start = start;
	a->slot = SLOT;
	a->nslots = nslots;
	a->guard = guard;
	a->flags = flags;
	a->user_data = user_data;
	a->align = align;
	return sr_ioctl(fd, STACKRES_IOC_ARENA, a);
}

static int query_addr(int fd, uint64_t addr, __u32 flags, struct stackres_query *q)
{
	memset(q, 0, sizeof(*q));
	q->flags = STACKRES_QUERY_ADDR | flags;
	q->addr = addr;
	return sr_ioctl(fd, STACKRES_IOC_QUERY, q);
}

/* QUERY's committed of @id (a test failure shows as ~0). */
static uint64_t committed_of(int fd, __u32 id)
{
	struct stackres_query q;

	return sr_query(fd, id, &q) ? ~0ULL : q.committed;
}

static int trim(int fd, struct stackres_trim *t, __u32 id, __u32 flags, uint64_t sp,
		uint64_t keep)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->flags = flags;
	t->sp = sp;
	t->keep = keep;
	t->committed = 0xdeadULL;
	return sr_ioctl(fd, STACKRES_IOC_TRIM, t);
}

static int trim_vec(int fd, struct stackres_trim_vec *v, void *trims, __u32 count,
		    __u32 entry_size)
{
	memset(v, 0, sizeof(*v));
	v->trims = sr_u64(trims);
	v->count = count;
	v->entry_size = entry_size;
	v->done = 0xdead;
	return sr_ioctl(fd, STACKRES_IOC_TRIM_VEC, v);
}

static int list(int fd, struct stackres_list *l, void *entries, __u32 count,
		__u32 entry_size, __u32 next_id)
{
	memset(l, 0, sizeof(*l));
	l->entries = sr_u64(entries);
	l->count = count;
	l->entry_size = entry_size;
	l->next_id = next_id;
	l->filled = 0xdead;
	l->nr_res = 0xdead;
	l->committed = 0xdead;
	return sr_ioctl(fd, STACKRES_IOC_LIST, l);
}

static int record_size(int fd, __u32 size)
{
	return sr_ioctl(fd, STACKRES_IOC_RECORD_SIZE, &size);
}

/* Read queued v1 records; count or -errno. */
static int read_records(int fd, struct stackres_record *rec, int max)
{
	ssize_t n = read(fd, rec, max * sizeof(*rec));

	if (n < 0)
		return -errno;
	if (n % sizeof(*rec))
		return -EPROTO;
	return n / sizeof(*rec);
}

/* Write one byte at @a: grows a reservation (a chunk of a page) down to it. */
static bool touch(uint64_t a)
{
	return !SR_TRY(SR_WRITE(a, 1));
}

#define EXPECT_RECORD(rec, _type, _id, _addr, _ud, _origin, _flags, _slot) do {	\
	EXPECT_EQ((__u32)(_type), (rec).type);					\
	EXPECT_EQ((__u32)(_id), (rec).id);					\
	EXPECT_EQ((__u32)sr_gettid(), (rec).tid);				\
	EXPECT_EQ(0, (rec).err);						\
	EXPECT_EQ((uint64_t)(_addr), (rec).addr);				\
	EXPECT_EQ((uint64_t)(_ud), (rec).user_data);				\
	EXPECT_EQ((__u32)(_origin), (rec).origin);				\
	EXPECT_EQ((__u32)(_flags), (rec).flags);				\
	EXPECT_EQ((uint64_t)(_slot), (rec).slot);				\
	EXPECT_EQ(0, (rec).reserved);						\
} while (0)

TEST(ioctl_numbers)
{
	/* The version 0 numbers are the ones version 0 headers made. */
	EXPECT_EQ(IOC(RW, 1, 72), STACKRES_IOC_REGISTER);
	EXPECT_EQ(0xc038e701U, IOC(RW, 1, 56));
	EXPECT_EQ(0xc004e702U, STACKRES_IOC_UNREGISTER);
	EXPECT_EQ(0xc018e703U, IOC(RW, 3, 24));
	EXPECT_EQ(0xc048e704U, IOC(RW, 4, 72));
	EXPECT_EQ(0xc028e705U, IOC(RW, 5, 40));
	EXPECT_EQ(IOC(RW, 3, 40), STACKRES_IOC_TRIM);
	EXPECT_EQ(IOC(RW, 4, 96), STACKRES_IOC_QUERY);
	EXPECT_EQ(IOC(RW, 5, 56), STACKRES_IOC_ARENA);
	EXPECT_EQ(IOC(_IOC_READ, 6, 96), STACKRES_IOC_FEATURES);
	EXPECT_EQ(IOC(_IOC_WRITE, 7, 4), STACKRES_IOC_RECORD_SIZE);
	EXPECT_EQ(IOC(RW, 8, 24), STACKRES_IOC_TRIM_VEC);
	EXPECT_EQ(IOC(RW, 9, 48), STACKRES_IOC_LIST);
}

TEST_F(v1, features)
{
	struct stackres_features f;
	union {
		struct stackres_features f;
		unsigned char b[128];
	} big;
	char buf[32];
	uint64_t max_res = 32768;
	unsigned int i;

	if (sr_read_file("/sys/module/stackres/parameters/max_reservations", buf,
			 sizeof(buf)) > 0)
		max_res = strtoull(buf, NULL, 0);
	memset(&f, 0xa5, sizeof(f));
	ASSERT_EQ(0, sr_ioctl(self->fd, STACKRES_IOC_FEATURES, &f));
	EXPECT_EQ(1, f.version);
	EXPECT_EQ(STACKRES_ABI_VERSION, f.version);
	EXPECT_EQ(64, f.record_size);
	EXPECT_EQ(0x3fe, f.ioctls);
	EXPECT_EQ(0xf, f.reg_flags);
	EXPECT_EQ(STACKRES_MAP | STACKRES_POPULATE | STACKRES_NOTIFY_GROW |
		  STACKRES_LARGE_FOLIOS, f.reg_flags);
	EXPECT_EQ(1, f.arena_flags);
	EXPECT_EQ(STACKRES_TRIM_ADDR, f.trim_flags);
	EXPECT_EQ(5, f.query_flags);
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY, f.query_flags);
	EXPECT_EQ(72, f.reg_size);
	EXPECT_EQ(56, f.arena_size);
	EXPECT_EQ(40, f.trim_size);
	EXPECT_EQ(96, f.query_size);
	EXPECT_EQ(40, f.entry_size);
	EXPECT_EQ(1024, f.trim_vec_max);
	EXPECT_EQ(max_res, f.max_reservations);
	EXPECT_EQ(256, f.queue_len);
	EXPECT_EQ(PG, f.page_size);
	EXPECT_EQ(task_size(), f.chunk_max);

	/* A later header's larger struct: the same answer, the rest zeroed. */
	memset(&big, 0xa5, sizeof(big));
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(_IOC_READ, NR_FEATURES, sizeof(big)), &big));
	EXPECT_EQ(0, memcmp(&big.f, &f, sizeof(f)));
	for (i = sizeof(f); i < sizeof(big); i++)
		if (big.b[i])
			break;
	EXPECT_EQ(sizeof(big), i) TH_LOG("byte %u of the larger struct not zeroed", i);

	/* Smaller than version 1 (this ioctl's first), too large, wrong way */
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(_IOC_READ, NR_FEATURES, 88), &big));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(_IOC_READ, NR_FEATURES, 8), &big));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(_IOC_READ, NR_FEATURES, 0), &big));
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(_IOC_READ, NR_FEATURES, ABOVE_PAGE), zero_buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_FEATURES, 96), &big));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_WRITE, NR_FEATURES, 96), &big));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_NONE, NR_FEATURES, 0), NULL));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_FEATURES, (void *)8));
}

/* Unknown numbers and known numbers with the wrong direction: ENOTTY. */
TEST_F(v1, wrong_direction_enotty)
{
	static const unsigned int ext[] = { NR_REGISTER, NR_TRIM, NR_QUERY, NR_ARENA,
					     NR_TRIM_VEC, NR_LIST };
	unsigned char buf[128] = { 0 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ext); i++) {
		EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_READ, ext[i], 72), buf))
			TH_LOG("nr %u _IOR", ext[i]);
		EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_WRITE, ext[i], 72), buf))
			TH_LOG("nr %u _IOW", ext[i]);
		EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_NONE, ext[i], 0), buf))
			TH_LOG("nr %u _IO", ext[i]);
	}
	/* UNREGISTER and RECORD_SIZE have one fixed number each. */
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_WRITE, NR_UNREGISTER, 4), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_UNREGISTER, 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_RECORD_SIZE, 4), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_WRITE, NR_RECORD_SIZE, 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(_IOC_READ, NR_RECORD_SIZE, 4), buf));
	/* Numbers no version knows */
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, 0, 56), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, 0x0a, 48), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, 0xff, 8), buf));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, _IOC(RW, 0xE8, NR_REGISTER, 72), buf));
}

/* Is [p, p+n) all zero bytes? */
static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		if (*c++)
			return false;
	return true;
}

/* Live reservations and arenas of the file, from LIST (~0 on error). */
static uint64_t nr_res(int fd)
{
	struct stackres_list l;

	return list(fd, &l, NULL, 0, 0, 0) ? ~0ULL : l.nr_res;
}

/*
 * REGISTER under the version 0 number (56 bytes) is version 0: the bytes a
 * version 1 struct has beyond (user_data, align) are neither read nor
 * written.  Smaller, or between the two versions, is ENOTTY (as version 0
 * answered any size but its own); larger works with a zero tail, is E2BIG
 * with anything else there and then nothing is registered or mapped.
 */
TEST_F(v1, register_sizes)
{
	union {
		struct stackres_reg r;
		unsigned char b[BIG];
	} u;
	struct stackres_query q;
	char *p = sr_map_isolated(256 * KIB, PROT_NONE);
	uint64_t s = sr_u64(p);
	__u32 id0, id1;

	ASSERT_NE(0, s);
	/* version 0 size: user_data and align (garbage) are not read */
	sr_fill_reg(self->fd, &u.r, p, 128 * KIB, PG, 16 * KIB, 0, 0, 0);
	u.r.user_data = 0x1111;
	u.r.align = 3;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 56), &u.r));
	ASSERT_NE(0, u.r.id);
	id0 = u.r.id;
	EXPECT_EQ(0x1111, u.r.user_data);
	EXPECT_EQ(3, u.r.align);
	ASSERT_EQ(0, sr_query(self->fd, id0, &q));
	EXPECT_EQ(0, q.user_data);
	EXPECT_EQ(16 * KIB, q.committed);
	EXPECT_EQ(s, q.start);
	/* version 0 size with STACKRES_MAP: start is written back */
	sr_fill_reg(self->fd, &u.r, NULL, 64 * KIB, PG, PG, 0, 0, STACKRES_MAP);
	u.r.user_data = 0x2222;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 56), &u.r));
	EXPECT_NE(0, u.r.start);
	EXPECT_NE(0, u.r.id);
	EXPECT_EQ(0x2222, u.r.user_data);

	/* larger, zero tail: registered, only what the module knows written */
	memset(&u, 0, sizeof(u));
	sr_fill_reg(self->fd, &u.r, p + 128 * KIB, 128 * KIB, PG, PG, 0, 0, 0);
	u.r.user_data = UD(7);
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 96), &u));
	ASSERT_NE(0, u.r.id);
	id1 = u.r.id;
	EXPECT_TRUE(all_zero(u.b + 72, BIG - 72));
	ASSERT_EQ(0, sr_query(self->fd, id1, &q));
	EXPECT_EQ(UD(7), q.user_data);
	EXPECT_EQ(3, nr_res(self->fd));
	ASSERT_EQ(0, sr_unregister(self->fd, id0));
	ASSERT_EQ(0, sr_unregister(self->fd, id1));
	munmap(p, 256 * KIB);

	/* Every failure below leaves the process as it is. */
	p = sr_map_isolated(256 * KIB, PROT_READ | PROT_WRITE);
	ASSERT_NE(0, sr_u64(p));
	ASSERT_EQ(0, sr_snap_maps(0));
	memset(&u, 0, sizeof(u));
	sr_fill_reg(self->fd, &u.r, p, 128 * KIB, PG, PG, 0, 0, 0);
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 48), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 55), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 0), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 57), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 64), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 71), &u));
	u.b[79] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 80), &u));
	u.b[79] = 0;
	u.b[72] = 0x80;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 73), &u));
	u.b[72] = 0;
	u.b[BIG - 1] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, BIG), &u));
	u.b[BIG - 1] = 0;
	EXPECT_EQ(0, u.r.id);
	/* above the page size: E2BIG whatever it holds */
	memcpy(zero_buf, &u.r, sizeof(u.r));
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, ABOVE_PAGE), zero_buf));
	memset(zero_buf, 0, sizeof(zero_buf));
	EXPECT_EQ(-ENOENT, query_addr(self->fd, sr_u64(p), 0, &q));
	EXPECT_EQ(1, nr_res(self->fd));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	/* and the same struct at the right size works */
	EXPECT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, BIG), &u));
	EXPECT_NE(0, u.r.id);
	munmap(p, 256 * KIB);
}

/* ARENA: the same size rules; a version 0 arena has user_data 0. */
TEST_F(v1, arena_sizes)
{
	union {
		struct stackres_arena a;
		unsigned char b[BIG];
	} u;
	struct stackres_query q;
	char *p = sr_map_isolated(8 * SLOT, PROT_READ | PROT_WRITE);

	ASSERT_NE(0, sr_u64(p));
	memset(&u, 0, sizeof(u));
	u.a.start = sr_u64(p);
	u.a.slot = SLOT;
	u.a.nslots = 4;
	u.a.guard = PG;
	u.a.user_data = 0x3333;
	u.a.align = 5;
	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_ARENA, 32), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_ARENA, 39), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_ARENA, 48), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_ARENA, 55), &u));
	u.b[63] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_ARENA, 64), &u));
	u.b[63] = 0;
	memcpy(zero_buf, &u.a, sizeof(u.a));
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_ARENA, ABOVE_PAGE), zero_buf));
	memset(zero_buf, 0, sizeof(zero_buf));
	EXPECT_EQ(0, u.a.id);
	EXPECT_EQ(0, nr_res(self->fd));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());

	/* version 0 size: the tail is not read */
	u.a.user_data = 0x3333;
	u.a.align = 5;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_ARENA, 40), &u.a));
	ASSERT_NE(0, u.a.id);
	EXPECT_EQ(0x3333, u.a.user_data);
	ASSERT_EQ(0, sr_query(self->fd, u.a.id, &q));
	EXPECT_EQ(0, q.user_data);
	EXPECT_EQ(4 * SLOT, q.len);
	ASSERT_EQ(0, query_addr(self->fd, sr_u64(p) + SLOT + PG, 0, &q));
	EXPECT_EQ(0, q.user_data);
	EXPECT_EQ(1, q.slot);

	/* larger with a zero tail */
	memset(&u, 0, sizeof(u));
	u.a.start = sr_u64(p) + 4 * SLOT;
	u.a.slot = SLOT;
	u.a.nslots = 4;
	u.a.guard = PG;
	u.a.user_data = UD(9);
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_ARENA, BIG), &u));
	ASSERT_NE(0, u.a.id);
	EXPECT_TRUE(all_zero(u.b + 56, BIG - 56));
	ASSERT_EQ(0, query_addr(self->fd, sr_u64(p) + 7 * SLOT + PG, 0, &q));
	EXPECT_EQ(UD(9), q.user_data);
	EXPECT_EQ(3, q.slot);
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT, q.flags);
	munmap(p, 8 * SLOT);
}

/*
 * TRIM under the version 0 number (24 bytes) trims and writes nothing
 * beyond; version 1 (40 bytes) writes committed back; its reserved word
 * must be 0 (EINVAL); a non-zero tail is E2BIG; either way nothing is
 * trimmed.
 */
TEST_F(v1, trim_sizes)
{
	union {
		struct stackres_trim t;
		unsigned char b[BIG];
	} u;
	struct stackres_reg r;
	uint64_t top;

	ASSERT_EQ(0, reg_new(self->fd, &r, 1 * MIB, 16 * KIB, 512 * KIB, 0));
	top = r.start + r.len;

	memset(&u, 0, sizeof(u));
	u.t.id = r.id;
	u.t.sp = top;
	u.t.keep = 256 * KIB;
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 16), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 23), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 0), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 25), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 32), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 39), &u));
	u.t.reserved = 1;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 40), &u));
	u.t.flags = STACKRES_TRIM_ADDR;
	u.t.id = 0;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 40), &u));
	u.t.flags = 0;
	u.t.id = r.id;
	u.t.reserved = 1ULL << 63;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_TRIM, BIG), &u));
	u.t.reserved = 0;
	u.b[40] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 48), &u));
	u.b[40] = 0;
	u.b[BIG - 1] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_TRIM, BIG), &u));
	u.b[BIG - 1] = 0;
	memcpy(zero_buf, &u.t, sizeof(u.t));
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_TRIM, ABOVE_PAGE), zero_buf));
	memset(zero_buf, 0, sizeof(zero_buf));
	EXPECT_EQ(512 * KIB, committed_of(self->fd, r.id));

	/* version 0: trims, committed (beyond its struct) left alone */
	u.t.committed = 0xdead;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 24), &u.t));
	EXPECT_EQ(0xdead, u.t.committed);
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r.id));

	/* version 1 and larger: committed written back, nothing after it */
	memset(&u, 0, sizeof(u));
	u.t.id = r.id;
	u.t.sp = top;
	u.t.keep = 128 * KIB;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 40), &u.t));
	EXPECT_EQ(128 * KIB, u.t.committed);
	EXPECT_EQ(0, u.t.reserved);
	EXPECT_EQ(128 * KIB, committed_of(self->fd, r.id));
	u.t.keep = 64 * KIB;
	u.t.committed = 0;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_TRIM, BIG), &u));
	EXPECT_EQ(64 * KIB, u.t.committed);
	EXPECT_TRUE(all_zero(u.b + 32, BIG - 32));
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r.id));
}

/* QUERY: version 0 gets 72 bytes, the same values; the size rules. */
TEST_F(v1, query_sizes)
{
	union {
		struct stackres_query q;
		unsigned char b[BIG];
	} u;
	struct stackres_query q1;
	struct stackres_reg r;

	ASSERT_EQ(0, reg_new(self->fd, &r, 1 * MIB, 16 * KIB, 64 * KIB, UD(1)));
	ASSERT_TRUE(touch(r.start + r.len - 1));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q1));
	EXPECT_EQ(UD(1), q1.user_data);
	EXPECT_EQ(PG, q1.resident);

	memset(&u, 0xa5, sizeof(u));
	memset(&u.q, 0, 72);
	u.q.id = r.id;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 72), &u.q));
	EXPECT_EQ(0, memcmp(&u.q, &q1, 72));
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, u.q.user_data);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, u.q.resident);

	memset(&u, 0, sizeof(u));
	u.q.id = r.id;
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 64), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 71), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 80), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 88), &u));
	EXPECT_EQ(-ENOTTY, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 95), &u));
	u.b[100] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_QUERY, 104), &u));
	u.b[100] = 0;
	memcpy(zero_buf, &u.q, sizeof(u.q));
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_QUERY, ABOVE_PAGE), zero_buf));
	memset(zero_buf, 0, sizeof(zero_buf));
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_QUERY, BIG), &u));
	EXPECT_EQ(0, memcmp(&u.q, &q1, sizeof(q1)));
	EXPECT_TRUE(all_zero(u.b + 96, BIG - 96));
}

/* TRIM_VEC and LIST: the same rules for their own structs. */
TEST_F(v1, vec_list_sizes)
{
	union {
		struct stackres_trim_vec v;
		struct stackres_list l;
		unsigned char b[BIG];
	} u;
	struct stackres_trim t = { 0 };
	struct stackres_reg r;

	ASSERT_EQ(0, reg_new(self->fd, &r, 256 * KIB, 16 * KIB, 128 * KIB, 0));
	t.id = r.id;
	t.sp = r.start + r.len;
	t.keep = 64 * KIB;

	memset(&u, 0, sizeof(u));
	u.v.trims = sr_u64(&t);
	u.v.count = 1;
	u.v.entry_size = sizeof(t);
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_TRIM_VEC, 16), &u));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_TRIM_VEC, 23), &u));
	u.b[24] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_TRIM_VEC, 32), &u));
	u.b[24] = 0;
	memcpy(zero_buf, &u.v, sizeof(u.v));
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_TRIM_VEC, ABOVE_PAGE), zero_buf));
	memset(zero_buf, 0, sizeof(zero_buf));
	EXPECT_EQ(128 * KIB, committed_of(self->fd, r.id));
	u.v.done = 0xdead;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_TRIM_VEC, BIG), &u));
	EXPECT_EQ(1, u.v.done);
	EXPECT_EQ(64 * KIB, t.committed);
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r.id));
	EXPECT_TRUE(all_zero(u.b + 24, BIG - 24));

	memset(&u, 0, sizeof(u));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_LIST, 40), &u));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_LIST, 47), &u));
	u.b[55] = 1;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_LIST, 56), &u));
	u.b[55] = 0;
	EXPECT_EQ(-E2BIG, sr_ioctl(self->fd, IOC(RW, NR_LIST, ABOVE_PAGE), zero_buf));
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_LIST, BIG), &u));
	EXPECT_EQ(1, u.l.nr_res);
	EXPECT_EQ(64 * KIB, u.l.committed);
	EXPECT_EQ(0, u.l.filled);
	EXPECT_EQ(0, u.l.next_id);
	EXPECT_TRUE(all_zero(u.b + 48, BIG - 48));
}

/*
 * A version 0 caller gets version 0 answers and refusals: QUERY with a
 * flag version 0 did not know (ANY, GUARD, FOREIGN) is EINVAL, the GUARD
 * answer is not given; REGISTER with a flag of version 1 (LARGE_FOLIOS) is
 * EINVAL; TRIM with a non-zero pad (TRIM_ADDR's bit) is EINVAL.
 */
TEST_F(v1, v0_callers_get_v0_answers)
{
	const unsigned long query0 = IOC(RW, NR_QUERY, 72), trim0 = IOC(RW, NR_TRIM, 24);
	struct stackres_query q;
	struct stackres_trim t;
	struct stackres_reg r, r0;
	int fd2;

	ASSERT_EQ(0, reg_new(self->fd, &r, 256 * KIB, 16 * KIB, 128 * KIB, UD(5)));
	fd2 = open(SR_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);

	memset(&q, 0, sizeof(q));
	q.flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY;
	q.addr = r.start + 100 * KIB;
	EXPECT_EQ(-EINVAL, sr_ioctl(fd2, query0, &q));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, query0, &q));
	q.flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_GUARD;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, query0, &q));
	q.flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_FOREIGN;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, query0, &q));
	/* SLOT was an answer in version 0 too: ignored */
	q.flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT;
	ASSERT_EQ(0, sr_ioctl(self->fd, query0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR, q.flags);
	EXPECT_EQ(r.id, q.id);
	/* an address in the guard: found, without the GUARD answer */
	memset(&q, 0, sizeof(q));
	q.flags = STACKRES_QUERY_ADDR;
	q.addr = r.start + PG;
	ASSERT_EQ(0, sr_ioctl(self->fd, query0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR, q.flags);
	EXPECT_EQ(r.id, q.id);
	EXPECT_EQ(0, q.user_data);
	EXPECT_EQ(0, q.resident);
	close(fd2);

	/* REGISTER: a flag that came with version 1 is EINVAL in a version 0 struct */
	sr_fill_reg(self->fd, &r0, NULL, 256 * KIB, 64 * KIB, 64 * KIB, 64 * KIB, 0,
		    STACKRES_MAP | STACKRES_LARGE_FOLIOS);
	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 56), &r0));
	EXPECT_EQ(0, r0.id);
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	EXPECT_EQ(1, nr_res(self->fd));
	r0.flags = STACKRES_MAP | (1U << 4);
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, IOC(RW, NR_REGISTER, 56), &r0));
	EXPECT_EQ(-EINVAL, sr_register(self->fd, &r0));

	/* TRIM: the pad of version 0 must stay 0 */
	memset(&t, 0, sizeof(t));
	t.sp = r.start + r.len;
	t.pad = STACKRES_TRIM_ADDR;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, trim0, &t));
	t.id = r.id;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, trim0, &t));
	t.pad = 2;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, trim0, &t));
	EXPECT_EQ(128 * KIB, committed_of(self->fd, r.id));
}

/*
 * Where an answer cannot be stored, nothing is done (EFAULT first); where
 * there is no answer (version 0 TRIM, 24-byte TRIM_VEC entries), read-only
 * arguments work as they did in version 0.
 */
TEST_F(v1, unwritable_answers)
{
	struct stackres_trim_vec *vro;
	struct stackres_trim *tro, wt;
	struct stackres_trim_vec v;
	struct stackres_reg r;
	uint64_t top;
	char *m;

	ASSERT_EQ(0, reg_new(self->fd, &r, 512 * KIB, 16 * KIB, 256 * KIB, 0));
	top = r.start + r.len;
	m = sr_map_isolated(2 * PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(0, sr_u64(m));
	tro = (struct stackres_trim *)m;
	tro->id = r.id;
	tro->sp = top;
	tro->keep = 64 * KIB;
	wt = *tro;
	vro = (struct stackres_trim_vec *)(m + PG);
	vro->trims = sr_u64(&wt);
	vro->count = 1;
	vro->entry_size = sizeof(*tro);
	ASSERT_EQ(0, mprotect(m, 2 * PG, PROT_READ));

	/* a version 1 TRIM whose committed cannot be written: nothing trimmed */
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_TRIM, tro));
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r.id));
	/* TRIM_VEC with read-only version 1 entries: the same */
	EXPECT_EQ(-EFAULT, trim_vec(self->fd, &v, tro, 1, sizeof(*tro)));
	EXPECT_EQ(0, v.done);
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r.id));
	/* TRIM_VEC whose done cannot be written: the same */
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_TRIM_VEC, vro));
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r.id));
	EXPECT_EQ(0, wt.committed);

	/* version 0 TRIM and 24-byte entries answer nothing: read-only is fine */
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 24), tro));
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r.id));
	ASSERT_TRUE(touch(top - 256 * KIB));
	ASSERT_EQ(0, trim_vec(self->fd, &v, tro, 1, 24));
	EXPECT_EQ(1, v.done);
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r.id));
	munmap(m, 2 * PG);
}

/*
 * Pages below the committed bottom (memory the task used before REGISTER
 * made it uncommitted) are freed by a TRIM whose cut is at the bottom, as
 * version 0 did; only then does the lock-free path take over.
 */
TEST_F(v1, trim_frees_pages_below_the_bottom)
{
	const uint64_t len = 256 * KIB;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_query q;
	struct stackres_trim t;
	struct stackres_reg r;
	uint64_t a;

	ASSERT_NE(0, sr_u64(p));
	for (a = 0; a < len; a += PG)
		p[a] = 1;
	ASSERT_EQ(0, reg(self->fd, &r, p, len, 0, 16 * KIB, 0, 0, 0));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(16 * KIB, q.committed);
	EXPECT_EQ(len, q.resident);
	/* the cut at the committed bottom: nothing committed below, but pages */
	ASSERT_EQ(0, trim(self->fd, &t, r.id, 0, r.start + len - 16 * KIB, 0));
	EXPECT_EQ(16 * KIB, t.committed);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(16 * KIB, q.committed);
	EXPECT_EQ(16 * KIB, q.resident);
	EXPECT_EQ(16 * KIB / PG, sr_resident(p, len));
	/* the same by address, now with nothing below: 0, nothing changes */
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, r.start + len, 16 * KIB));
	EXPECT_EQ(16 * KIB, t.committed);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(16 * KIB, q.resident);
	munmap(p, len);
}

/* user_data from REGISTER and ARENA comes back from QUERY by id and by address. */
TEST_F(v1, user_data_in_query)
{
	struct stackres_arena a;
	struct stackres_query q;
	struct stackres_reg r;

	ASSERT_EQ(0, reg_new(self->fd, &r, 256 * KIB, 16 * KIB, 64 * KIB, ~0ULL));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(~0ULL, q.user_data);
	EXPECT_EQ(0, q.slot);
	ASSERT_EQ(0, query_addr(self->fd, r.start + 100, 0, &q));
	EXPECT_EQ(~0ULL, q.user_data);
	EXPECT_EQ(r.id, q.id);

	ASSERT_EQ(0, arena(self->fd, &a, 0, 16, 2 * PG, STACKRES_MAP, UD(0x42), 0));
	ASSERT_EQ(0, sr_query(self->fd, a.id, &q));
	EXPECT_EQ(UD(0x42), q.user_data);
	EXPECT_EQ(0, q.flags & STACKRES_QUERY_SLOT);
	ASSERT_EQ(0, query_addr(self->fd, a.start + 13 * SLOT + SLOT - 1, 0, &q));
	EXPECT_EQ(UD(0x42), q.user_data);
	EXPECT_EQ(a.id, q.id);
	EXPECT_EQ(13, q.slot);
	EXPECT_EQ(a.start + 13 * SLOT, q.start);
	EXPECT_EQ(SLOT, q.len);
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT, q.flags);
	/* v0 meaning of committed for a slot */
	EXPECT_EQ(SLOT - 2 * PG, q.committed);
}

/*
 * RECORD_SIZE: 32 or 64, anything else EINVAL; a file starts at 32.  The
 * size applies to what is read after the call, queued records included;
 * read() wants room for one whole record and returns whole records only.
 */
TEST_F(v1, record_size)
{
	static const __u32 bad[] = { 0, 1, 16, 24, 31, 33, 40, 48, 56, 63, 65, 72,
				     96, 128, 4096, 0x80000020, ~0U };
	struct stackres_record rec[4];
	struct stackres_event ev;
	struct stackres_reg r, r2;
	unsigned char buf[256];
	uint64_t floor;
	unsigned int i;
	int fd2;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		EXPECT_EQ(-EINVAL, record_size(self->fd, bad[i])) TH_LOG("size %u", bad[i]);
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_RECORD_SIZE, (void *)8));

	ASSERT_EQ(0, reg_new(self->fd, &r, 256 * KIB, 16 * KIB, 64 * KIB, UD(3)));
	floor = r.start + 16 * KIB;
	/* Three guard hits queued while the file is at 32 (the default). */
	for (i = 0; i < 3; i++)
		ASSERT_TRUE(SR_TRY(SR_WRITE(floor - 1 - i, 1)));

	errno = 0;
	EXPECT_EQ(-1, read(self->fd, buf, 31));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(32, read(self->fd, buf, 32 + 31));
	memcpy(&ev, buf, 32);
	EXPECT_EQ(STACKRES_EV_OVERFLOW, ev.type);
	EXPECT_EQ(floor - 1, ev.addr);

	ASSERT_EQ(0, record_size(self->fd, 64));
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, buf, 32));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, buf, 63));
	EXPECT_EQ(EINVAL, errno);
	/* 100 bytes of room: one whole record */
	memset(buf, 0xa5, sizeof(buf));
	ASSERT_EQ(64, read(self->fd, buf, 100));
	memcpy(&rec[0], buf, 64);
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, r.id, floor - 2, UD(3),
		      STACKRES_ORIGIN_USER, 0, 0);
	EXPECT_EQ(64 * KIB, rec[0].committed);
	EXPECT_EQ(0xa5, buf[64]);

	/* back to 32: the last one queued comes as a version 0 record */
	ASSERT_EQ(0, record_size(self->fd, 32));
	memset(buf, 0xa5, sizeof(buf));
	ASSERT_EQ(32, read(self->fd, buf, sizeof(buf)));
	memcpy(&ev, buf, 32);
	EXPECT_EQ(STACKRES_EV_OVERFLOW, ev.type);
	EXPECT_EQ(r.id, ev.id);
	EXPECT_EQ(floor - 3, ev.addr);
	EXPECT_EQ(64 * KIB, ev.committed);
	EXPECT_EQ(0xa5, buf[32]);
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EAGAIN, errno);

	/* Per file: another file of the process is still at 32. */
	fd2 = open(SR_DEV, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, record_size(self->fd, 64));
	ASSERT_EQ(0, reg_new(fd2, &r2, 128 * KIB, 16 * KIB, PG, 0));
	ASSERT_TRUE(SR_TRY(SR_WRITE(r2.start, 1)));
	ASSERT_EQ(32, read(fd2, buf, sizeof(buf)));
	ASSERT_TRUE(SR_TRY(SR_WRITE(floor - 1, 1)));
	ASSERT_EQ(1, read_records(self->fd, rec, 4));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, r.id, floor - 1, UD(3),
		      STACKRES_ORIGIN_USER, 0, 0);
	close(fd2);
}

/*
 * Version 1 records of a reservation: the cookie, the origin (the task's
 * own access: USER; the kernel copying to user memory in read(): KERNEL),
 * no slot; the first 32 bytes as version 0.
 */
TEST_F(v1, records_of_a_reservation)
{
	struct stackres_record rec[8];
	struct stackres_reg r;
	uint64_t floor, top;
	char buf[8];
	int pfd[2];

	ASSERT_EQ(0, record_size(self->fd, 64));
	ASSERT_EQ(0, reg_new(self->fd, &r, 1 * MIB, 16 * KIB, 64 * KIB, UD(0xab)));
	floor = r.start + 16 * KIB;
	top = r.start + r.len;

	/* OVERFLOW by the task */
	ASSERT_TRUE(SR_TRY(SR_WRITE(floor - 3, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	ASSERT_EQ(1, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, r.id, floor - 3, UD(0xab),
		      STACKRES_ORIGIN_USER, 0, 0);
	EXPECT_EQ(64 * KIB, rec[0].committed);

	/* OVERFLOW by the kernel: read() from a pipe into the guard */
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(4, write(pfd[1], "abcd", 4));
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], sr_ptr(r.start + PG + 8), 4));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(1, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, r.id, r.start + PG + 8, UD(0xab),
		      STACKRES_ORIGIN_KERNEL, 0, 0);
	EXPECT_EQ(64 * KIB, rec[0].committed);
	/* (the failed read() left the bytes in the pipe) */
	ASSERT_EQ(4, read(pfd[0], buf, sizeof(buf)));

	/* GROW records (NOTIFY_GROW): by the task and by the kernel */
	ASSERT_EQ(0, reg(self->fd, &r, sr_free_range(1 * MIB), 1 * MIB, 16 * KIB, 64 * KIB,
			 PG, STACKRES_MAP | STACKRES_NOTIFY_GROW, UD(0xac)));
	top = r.start + r.len;
	ASSERT_TRUE(touch(top - 64 * KIB - 1));
	ASSERT_EQ(4, write(pfd[1], "efgh", 4));
	ASSERT_EQ(4, read(pfd[0], sr_ptr(top - 128 * KIB - 8), 4));
	ASSERT_EQ(2, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_GROW, r.id, top - 64 * KIB - 1, UD(0xac),
		      STACKRES_ORIGIN_USER, 0, 0);
	EXPECT_EQ(64 * KIB + PG, rec[0].committed);
	EXPECT_RECORD(rec[1], STACKRES_EV_GROW, r.id, top - 128 * KIB - 8, UD(0xac),
		      STACKRES_ORIGIN_KERNEL, 0, 0);
	EXPECT_EQ(128 * KIB + PG, rec[1].committed);
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * Records of an arena: the slot index with STACKRES_RECORD_SLOT, and the
 * origin of the guard hit: the task's store (USER), read() (KERNEL), a
 * jump into the guard of an executable arena (IFETCH).
 */
TEST_F(v1, records_of_an_arena)
{
	const uint64_t n = 16, guard = 2 * PG;
	void (*jump)(void);
	struct stackres_record rec[8];
	struct stackres_arena a;
	uint64_t bad;
	int pfd[2];

	ASSERT_EQ(0, record_size(self->fd, 64));
	ASSERT_EQ(0, arena(self->fd, &a, 0, n, guard, STACKRES_MAP, UD(0xa7e), 0));

	bad = a.start + 5 * SLOT + guard - 1;
	ASSERT_TRUE(SR_TRY(SR_WRITE(bad, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	ASSERT_EQ(1, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, a.id, bad, UD(0xa7e),
		      STACKRES_ORIGIN_USER, STACKRES_RECORD_SLOT, 5);

	bad = a.start + 15 * SLOT;
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(4, write(pfd[1], "abcd", 4));
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], sr_ptr(bad), 4));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(1, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, a.id, bad, UD(0xa7e),
		      STACKRES_ORIGIN_KERNEL, STACKRES_RECORD_SLOT, 15);
	close(pfd[0]);
	close(pfd[1]);

	/* slot 0: a guard hit at the arena's first byte */
	ASSERT_TRUE(SR_TRY(SR_READ(a.start)));
	ASSERT_EQ(1, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, a.id, a.start, UD(0xa7e),
		      STACKRES_ORIGIN_USER, STACKRES_RECORD_SLOT, 0);

	/* An instruction fetch from a guard (the arena made executable) */
	ASSERT_EQ(0, mprotect(sr_ptr(a.start), n * SLOT, PROT_READ | PROT_WRITE | PROT_EXEC));
	bad = a.start + 9 * SLOT + PG;
	jump = (void (*)(void))sr_ptr(bad);
	ASSERT_TRUE(SR_TRY(jump()));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	EXPECT_EQ(bad, sr_sig.addr);
	ASSERT_EQ(1, read_records(self->fd, rec, 8));
	EXPECT_RECORD(rec[0], STACKRES_EV_OVERFLOW, a.id, bad, UD(0xa7e),
		      STACKRES_ORIGIN_IFETCH, STACKRES_RECORD_SLOT, 9);
	EXPECT_EQ(-EAGAIN, read_records(self->fd, rec, 8));
}

/* LOST as a version 1 record: no cookie, no origin, no slot. */
TEST_F(v1, lost_record)
{
	static struct stackres_record rec[300];
	struct stackres_reg r;
	uint64_t top;
	int i, n;

	ASSERT_EQ(0, record_size(self->fd, 64));
	ASSERT_EQ(0, reg(self->fd, &r, sr_free_range(2 * MIB), 2 * MIB, 16 * KIB, 0, PG,
			 STACKRES_MAP | STACKRES_NOTIFY_GROW, UD(0x105)));
	top = r.start + r.len;
	/* 300 growth steps of a page each, nobody reading: 256 kept, 44 lost */
	for (i = 0; i < 300; i++)
		ASSERT_TRUE(touch(top - 1 - i * PG));
	n = read_records(self->fd, rec, 300);
	ASSERT_EQ(257, n);
	for (i = 0; i < 256; i++)
		if (rec[i].type != STACKRES_EV_GROW || rec[i].id != r.id ||
		    rec[i].addr != top - 1 - i * PG || rec[i].committed != (i + 1) * PG ||
		    rec[i].user_data != UD(0x105) || rec[i].origin != STACKRES_ORIGIN_USER ||
		    rec[i].flags || rec[i].slot || rec[i].reserved)
			break;
	EXPECT_EQ(256, i) {
		TH_LOG("record %d: type %u id %u addr %#llx committed %llu ud %#llx origin %u",
		       i, rec[i].type, rec[i].id, (unsigned long long)rec[i].addr,
		       (unsigned long long)rec[i].committed,
		       (unsigned long long)rec[i].user_data, rec[i].origin);
	}
	EXPECT_EQ(STACKRES_EV_LOST, rec[256].type);
	EXPECT_EQ(0, rec[256].id);
	EXPECT_EQ(0, rec[256].err);
	EXPECT_EQ(0, rec[256].addr);
	EXPECT_EQ(44, rec[256].committed);
	EXPECT_EQ(0, rec[256].user_data);
	EXPECT_EQ(0, rec[256].slot);
	EXPECT_EQ(0, rec[256].origin);
	EXPECT_EQ(0, rec[256].flags);
	EXPECT_EQ(0, rec[256].reserved);
}

/*
 * TRIM_ADDR: no id; the reservation or slot of this file whose (start, end]
 * holds sp, so the end of one reservation that touches another is its own
 * and a start belongs to nobody; committed written back.
 */
TEST_F(v1, trim_addr)
{
	const uint64_t L = 512 * KIB;
	struct stackres_reg r, r2, rf;
	struct stackres_trim t;
	struct stackres_query q;
	char *p = sr_map_isolated(2 * L, PROT_NONE);
	uint64_t s = sr_u64(p);
	char perms[5];
	int fd2;

	ASSERT_NE(0, s);
	/* two reservations that touch: [s, s+L) guard 16K and [s+L, s+2L) guard 0 */
	ASSERT_EQ(0, reg(self->fd, &r, p, L, 16 * KIB, 256 * KIB, PG, 0, UD(1)));
	ASSERT_EQ(0, reg(self->fd, &r2, p + L, L, 0, 256 * KIB, PG, 0, UD(2)));

	EXPECT_EQ(-EINVAL, trim(self->fd, &t, r.id, STACKRES_TRIM_ADDR, s + L, 0));
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, r.id, 2, s + L, 0));
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR | 2, s + L, 0));
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, 0, 1U << 31, s + L, 0));
	/* nobody's (start, end] */
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s - 1, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + 2 * L + 1, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, 0, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, ~0ULL, 0));
	/* not truncated to a pointer's width */
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR,
				s + L + (1ULL << 32), 0));
	/* in the guard: EINVAL; at its top: nothing to drop */
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + 1, 0));
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + 16 * KIB - 1, 0));
	EXPECT_EQ(0xdead, t.committed);
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r.id));
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + 16 * KIB, 0));
	EXPECT_EQ(256 * KIB, t.committed);
	EXPECT_EQ(0, t.id);

	/* s + 2L: the second one's end */
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + 2 * L, 64 * KIB));
	EXPECT_EQ(64 * KIB, t.committed);
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r2.id));
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r.id));
	/* s + L: the first one's end, not the second one's start */
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + L, 128 * KIB));
	EXPECT_EQ(128 * KIB, t.committed);
	EXPECT_EQ(128 * KIB, committed_of(self->fd, r.id));
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r2.id));
	/* inside a page: the page holding sp - keep stays */
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + L - 100, 0));
	EXPECT_EQ(PG, t.committed);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(PG, q.committed);
	ASSERT_TRUE(sr_vma_at(s + L - PG, perms, NULL, NULL));
	EXPECT_STREQ("rw-p", perms);
	ASSERT_TRUE(sr_vma_at(s + L - PG - 1, perms, NULL, NULL));
	EXPECT_STREQ("---p", perms);
	/* by id with the version 1 struct: committed written back too */
	ASSERT_EQ(0, trim(self->fd, &t, r2.id, 0, s + 2 * L, 32 * KIB));
	EXPECT_EQ(32 * KIB, t.committed);

	/* the start of a reservation without a guard is in no (start, end] */
	ASSERT_EQ(0, reg_new(self->fd, &rf, 256 * KIB, 0, 128 * KIB, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, rf.start, 0));
	ASSERT_EQ(0, trim(self->fd, &t, rf.id, 0, rf.start, 0));
	EXPECT_EQ(128 * KIB, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, rf.start + 1, 0));
	EXPECT_EQ(128 * KIB, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, rf.start + rf.len, 0));
	EXPECT_EQ(0, t.committed);

	/* only this file's reservations */
	fd2 = open(SR_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, reg_new(fd2, &rf, 256 * KIB, 16 * KIB, 128 * KIB, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, rf.start + rf.len, 0));
	EXPECT_EQ(128 * KIB, committed_of(fd2, rf.id));
	ASSERT_EQ(0, trim(fd2, &t, 0, STACKRES_TRIM_ADDR, rf.start + rf.len, 0));
	EXPECT_EQ(0, t.committed);
	close(fd2);
	/* not after UNREGISTER */
	ASSERT_EQ(0, sr_unregister(self->fd, r2.id));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, s + 2 * L, 0));
	munmap(p, 2 * L);
}

/* TRIM_ADDR in an arena: the slot whose (start, end] holds sp; committed is resident. */
TEST_F(v1, trim_addr_arena_slot)
{
	const uint64_t guard = 2 * PG;
	struct stackres_arena a;
	struct stackres_trim t;
	uint64_t slot3, top3;
	int i;

	ASSERT_EQ(0, arena(self->fd, &a, 0, 8, guard, STACKRES_MAP, UD(8), 0));
	slot3 = a.start + 3 * SLOT;
	top3 = slot3 + SLOT;
	for (i = 0; i < 6; i++)
		ASSERT_TRUE(touch(top3 - 1 - i * PG));
	ASSERT_TRUE(touch(slot3 - 1));		/* the top page of slot 2 */
	ASSERT_EQ(6, sr_resident(sr_ptr(slot3), SLOT));

	EXPECT_EQ(-EINVAL, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, slot3 + PG, 0));
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, slot3 + guard - 1, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, a.start, 0));
	EXPECT_EQ(-ENOENT, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, a.start + 8 * SLOT + 1, 0));
	EXPECT_EQ(-EINVAL, trim(self->fd, &t, a.id, STACKRES_TRIM_ADDR, top3, 0));
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, slot3 + guard, 0));
	EXPECT_EQ(6 * PG, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, top3, 2 * PG));
	EXPECT_EQ(2 * PG, t.committed);
	EXPECT_EQ(2, sr_resident(sr_ptr(slot3), SLOT));
	/* slot3 is the top of slot 2 */
	EXPECT_EQ(1, sr_resident(sr_ptr(slot3 - SLOT), SLOT));
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, slot3, 0));
	EXPECT_EQ(0, t.committed);
	EXPECT_EQ(0, sr_resident(sr_ptr(slot3 - SLOT), SLOT));
	EXPECT_EQ(2, sr_resident(sr_ptr(slot3), SLOT));
	/* the arena's end is the top of its last slot */
	ASSERT_TRUE(touch(a.start + 8 * SLOT - 1));
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, a.start + 8 * SLOT, PG));
	EXPECT_EQ(PG, t.committed);
	/* by id: committed is the resident bytes of the slot too */
	ASSERT_EQ(0, trim(self->fd, &t, a.id, 0, top3, PG));
	EXPECT_EQ(PG, t.committed);
	EXPECT_EQ(1, sr_resident(sr_ptr(slot3), SLOT));
	/* the guard keeps its markers */
	EXPECT_TRUE(SR_TRY(SR_WRITE(slot3 + guard - 1, 1)));
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
}

/*
 * The fast path: when nothing is committed below sp - keep, TRIM returns 0
 * and changes nothing (version 0 and 1, by id and by address).
 */
TEST_F(v1, trim_fast_path)
{
	struct stackres_trim t0;
	struct stackres_query q0, q;
	struct stackres_reg r;
	struct stackres_trim t;
	uint64_t top, a;

	ASSERT_EQ(0, reg_new(self->fd, &r, 1 * MIB, 16 * KIB, 64 * KIB, 0));
	top = r.start + r.len;
	for (a = top - 64 * KIB; a < top; a += PG)
		SR_WRITE(a, sr_pattern(a));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q0));
	ASSERT_EQ(0, sr_snap_maps(0));

	ASSERT_EQ(0, trim(self->fd, &t, r.id, 0, top, 128 * KIB));
	EXPECT_EQ(64 * KIB, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, r.id, 0, top, 64 * KIB));
	EXPECT_EQ(64 * KIB, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, top - 32 * KIB, 32 * KIB));
	EXPECT_EQ(64 * KIB, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, top - 100, 1 * MIB));
	EXPECT_EQ(64 * KIB, t.committed);
	ASSERT_EQ(0, trim(self->fd, &t, r.id, 0, r.start + 16 * KIB, 0));
	EXPECT_EQ(64 * KIB, t.committed);
	memset(&t0, 0, sizeof(t0));
	t0.id = r.id;
	t0.sp = top;
	t0.keep = 200 * KIB;
	t0.committed = 0xdead;
	ASSERT_EQ(0, sr_ioctl(self->fd, IOC(RW, NR_TRIM, 24), &t0));
	EXPECT_EQ(0xdead, t0.committed);

	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, memcmp(&q0, &q, sizeof(q)));
	for (a = top - 64 * KIB; a < top; a += PG)
		if (*(volatile uint8_t *)sr_ptr(a) != sr_pattern(a))
			break;
	EXPECT_EQ(top, a);

	/* and one below the bottom does trim */
	ASSERT_EQ(0, trim(self->fd, &t, 0, STACKRES_TRIM_ADDR, top, 32 * KIB));
	EXPECT_EQ(32 * KIB, t.committed);
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_FALSE(sr_maps_same());
}

/* Grow reservation @r (chunk one page) so that @c bytes are committed. */
static bool commit_to(const struct stackres_reg *r, uint64_t c)
{
	return touch(r->start + r->len - c);
}

#define NVEC 4

/*
 * NVEC reservations r[] (tops top[]) committed to 256 KiB, and t[] one
 * version 1 entry per reservation that trims it to 64 KiB.
 */
#define FILL_VEC() do {							\
	for (i = 0; i < NVEC; i++) {					\
		ASSERT_TRUE(commit_to(&r[i], 256 * KIB));		\
		memset(&t[i], 0, sizeof(t[i]));			\
		t[i].id = r[i].id;					\
		t[i].sp = top[i];					\
		t[i].keep = 64 * KIB;					\
		t[i].committed = 0xdead;				\
	}								\
} while (0)
/* The first n entries were applied (and written back), the others not. */
#define EXPECT_TRIMMED(n) do {						\
	for (i = 0; i < NVEC; i++) {					\
		uint64_t c = i < (n) ? 64 * KIB : 256 * KIB;		\
		EXPECT_EQ(c, committed_of(self->fd, r[i].id))		\
			TH_LOG("reservation %d", i);			\
		EXPECT_EQ(i < (n) ? 64 * KIB : 0xdead, t[i].committed)	\
			TH_LOG("entry %d", i);				\
	}								\
} while (0)

/*
 * TRIM_VEC: applied in order; an entry that fails stops the call with its
 * errno and its index in done: the entries before it are trimmed (their
 * committed written back), it and the later ones are not.
 */
TEST_F(v1, trim_vec)
{
	struct stackres_reg r[NVEC];
	struct stackres_trim t[NVEC], *e;
	struct stackres_trim_vec v;
	uint64_t top[NVEC];
	char *m;
	int i;

	for (i = 0; i < NVEC; i++) {
		ASSERT_EQ(0, reg_new(self->fd, &r[i], 512 * KIB, 16 * KIB, 256 * KIB, UD(i)));
		top[i] = r[i].start + r[i].len;
	}

	FILL_VEC();
	ASSERT_EQ(0, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(NVEC, v.done);
	EXPECT_TRIMMED(NVEC);

	/* entry 2 in the guard: EINVAL, done 2 */
	FILL_VEC();
	t[2].sp = r[2].start + PG;
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(2, v.done);
	EXPECT_TRIMMED(2);

	/* entry 0 of no reservation: ENOENT, done 0, nothing trimmed */
	FILL_VEC();
	t[0].id = 0x7fffffff;
	EXPECT_EQ(-ENOENT, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(0, v.done);
	EXPECT_TRIMMED(0);

	/* entry 3 with an unknown flag; entry 1 TRIM_ADDR with an id */
	FILL_VEC();
	t[3].flags = 2;
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(3, v.done);
	EXPECT_TRIMMED(3);
	FILL_VEC();
	t[1].flags = STACKRES_TRIM_ADDR;
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(1, v.done);
	EXPECT_TRIMMED(1);

	/* TRIM_ADDR entries, one outside everything: ENOENT at it */
	FILL_VEC();
	for (i = 0; i < NVEC; i++) {
		t[i].id = 0;
		t[i].flags = STACKRES_TRIM_ADDR;
	}
	t[2].sp = r[2].start;
	EXPECT_EQ(-ENOENT, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(2, v.done);
	EXPECT_TRIMMED(2);
	FILL_VEC();
	for (i = 0; i < NVEC; i++) {
		t[i].id = 0;
		t[i].flags = STACKRES_TRIM_ADDR;
	}
	ASSERT_EQ(0, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(NVEC, v.done);
	EXPECT_TRIMMED(NVEC);

	/* the array cannot be read: EFAULT, done 0, nothing trimmed */
	FILL_VEC();
	EXPECT_EQ(-EFAULT, trim_vec(self->fd, &v, (void *)8, NVEC, sizeof(t[0])));
	EXPECT_EQ(0, v.done);
	/* entries 0 and 1 readable, 2 and 3 on a PROT_NONE page */
	m = sr_map_isolated(2 * PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(0, sr_u64(m));
	e = (struct stackres_trim *)(m + PG - 2 * sizeof(*e));
	memcpy(e, t, 2 * sizeof(*e));
	ASSERT_EQ(0, mprotect(m + PG, PG, PROT_NONE));
	EXPECT_EQ(-EFAULT, trim_vec(self->fd, &v, e, NVEC, sizeof(t[0])));
	EXPECT_EQ(0, v.done);
	EXPECT_EQ(0xdead, e[0].committed);
	munmap(m, 2 * PG);
	EXPECT_TRIMMED(0);

	/* count 0: nothing, done 0 */
	EXPECT_EQ(0, trim_vec(self->fd, &v, t, 0, sizeof(t[0])));
	EXPECT_EQ(0, v.done);
	EXPECT_EQ(0, trim_vec(self->fd, &v, NULL, 0, sizeof(t[0])));
	EXPECT_EQ(0, v.done);
	EXPECT_TRIMMED(0);
}

/* TRIM_VEC: flags, count and entry_size rules. */
TEST_F(v1, trim_vec_limits)
{
	static struct stackres_trim many[1025];
	static unsigned char raw[NVEC * 48];
	struct stackres_reg r[NVEC];
	struct stackres_trim t[NVEC];
	struct stackres_trim_vec v;
	uint64_t top[NVEC];
	int i;

	for (i = 0; i < NVEC; i++) {
		ASSERT_EQ(0, reg_new(self->fd, &r[i], 512 * KIB, 16 * KIB, 256 * KIB, UD(i)));
		top[i] = r[i].start + r[i].len;
	}
	FILL_VEC();
	/* flags */
	memset(&v, 0, sizeof(v));
	v.trims = sr_u64(t);
	v.count = NVEC;
	v.entry_size = sizeof(t[0]);
	v.flags = 1;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_TRIM_VEC, &v));
	v.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_TRIM_VEC, &v));
	/* entry_size */
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, 0));
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, 16));
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, 23));
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, 25));
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, 32));
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, 39));
	EXPECT_EQ(-E2BIG, trim_vec(self->fd, &v, zero_buf, 1, PG + 1));
	/* count */
	for (i = 0; i < 1025; i++) {
		many[i].id = r[0].id;
		many[i].sp = top[0];
		many[i].keep = 64 * KIB;
	}
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, many, 1025, sizeof(many[0])));
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, many, ~0U, sizeof(many[0])));
	EXPECT_TRIMMED(0);
	ASSERT_EQ(0, trim_vec(self->fd, &v, many, 1024, sizeof(many[0])));
	EXPECT_EQ(1024, v.done);
	EXPECT_EQ(64 * KIB, many[1023].committed);
	EXPECT_EQ(64 * KIB, committed_of(self->fd, r[0].id));

	/* version 0 entries (24 bytes): trimmed, nothing written back */
	FILL_VEC();
	memset(raw, 0xa5, sizeof(raw));
	for (i = 0; i < NVEC; i++)
		memcpy(raw + i * 24, &t[i], 24);
	ASSERT_EQ(0, trim_vec(self->fd, &v, raw, NVEC, 24));
	EXPECT_EQ(NVEC, v.done);
	EXPECT_EQ(0xa5, raw[NVEC * 24]);
	for (i = 0; i < NVEC; i++) {
		EXPECT_EQ(0, memcmp(raw + i * 24, &t[i], 24)) TH_LOG("entry %d changed", i);
		EXPECT_EQ(64 * KIB, committed_of(self->fd, r[i].id));
	}

	/* 48-byte entries with a zero tail: committed written, the tail left */
	FILL_VEC();
	memset(raw, 0, sizeof(raw));
	for (i = 0; i < NVEC; i++)
		memcpy(raw + i * 48, &t[i], sizeof(t[i]));
	ASSERT_EQ(0, trim_vec(self->fd, &v, raw, NVEC, 48));
	EXPECT_EQ(NVEC, v.done);
	for (i = 0; i < NVEC; i++) {
		memcpy(&t[i], raw + i * 48, sizeof(t[i]));
		EXPECT_TRUE(all_zero(raw + i * 48 + 40, 8));
	}
	EXPECT_TRIMMED(NVEC);

	/* a non-zero tail in entry 1: E2BIG, done 1 */
	FILL_VEC();
	memset(raw, 0, sizeof(raw));
	for (i = 0; i < NVEC; i++)
		memcpy(raw + i * 48, &t[i], sizeof(t[i]));
	raw[1 * 48 + 47] = 1;
	EXPECT_EQ(-E2BIG, trim_vec(self->fd, &v, raw, NVEC, 48));
	EXPECT_EQ(1, v.done);
	for (i = 0; i < NVEC; i++)
		memcpy(&t[i], raw + i * 48, sizeof(t[i]));
	EXPECT_TRIMMED(1);

	/* reserved not 0 in entry 2: EINVAL, done 2 */
	FILL_VEC();
	t[2].reserved = 1;
	EXPECT_EQ(-EINVAL, trim_vec(self->fd, &v, t, NVEC, sizeof(t[0])));
	EXPECT_EQ(2, v.done);
	EXPECT_TRIMMED(2);
}

/* TRIM_VEC over arena slots and reservations together. */
TEST_F(v1, trim_vec_mixed)
{
	struct stackres_arena a;
	struct stackres_reg r;
	struct stackres_trim t[3];
	struct stackres_trim_vec v;
	int i;

	ASSERT_EQ(0, arena(self->fd, &a, 0, 4, PG, STACKRES_MAP, 0, 0));
	ASSERT_EQ(0, reg_new(self->fd, &r, 512 * KIB, 16 * KIB, 256 * KIB, 0));
	for (i = 0; i < 4; i++) {
		ASSERT_TRUE(touch(a.start + 2 * SLOT - 1 - i * PG));
		ASSERT_TRUE(touch(a.start + 4 * SLOT - 1 - i * PG));
	}
	memset(t, 0, sizeof(t));
	t[0].flags = STACKRES_TRIM_ADDR;
	t[0].sp = a.start + 2 * SLOT;
	t[0].keep = PG;
	t[1].id = r.id;
	t[1].sp = r.start + r.len;
	t[2].id = a.id;
	t[2].sp = a.start + 4 * SLOT;
	t[2].keep = 3 * PG;
	ASSERT_EQ(0, trim_vec(self->fd, &v, t, 3, sizeof(t[0])));
	EXPECT_EQ(3, v.done);
	EXPECT_EQ(PG, t[0].committed);
	EXPECT_EQ(0, t[1].committed);
	EXPECT_EQ(3 * PG, t[2].committed);
	EXPECT_EQ(1, sr_resident(sr_ptr(a.start + SLOT), SLOT));
	EXPECT_EQ(3, sr_resident(sr_ptr(a.start + 3 * SLOT), SLOT));
	EXPECT_EQ(0, committed_of(self->fd, r.id));
}

static void expect_entry(struct __test_metadata *_metadata, const struct stackres_entry *e,
			 const struct stackres_entry *want)
{
	EXPECT_EQ(want->id, e->id);
	EXPECT_EQ(want->user_data, e->user_data);
	EXPECT_EQ(want->start, e->start);
	EXPECT_EQ(want->len, e->len);
	EXPECT_EQ(want->committed, e->committed) TH_LOG("id %u", e->id);
	EXPECT_EQ(want->flags, e->flags);
}

#define NLIST 4

/*
 * LIST: this file's reservations and arenas in id order from next_id on,
 * nr_res and committed over all of them whatever fits; next_id says where
 * the next call goes on, 0 when all were reported.
 */
TEST_F(v1, list)
{
	struct stackres_entry want[NLIST], e[8], tmp;
	static unsigned char raw[NLIST * 48];
	struct stackres_list l;
	struct stackres_reg r, rf;
	struct stackres_arena a;
	uint64_t sum = 0;
	__u32 next;
	int i, j, fd2;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, reg_new(self->fd, &r, 512 * KIB, 16 * KIB, (i + 1) * 64 * KIB,
				     UD(0x10 + i)));
		want[i] = (struct stackres_entry){ .user_data = UD(0x10 + i), .start = r.start,
			.len = r.len, .committed = (i + 1) * 64 * KIB, .id = r.id };
	}
	ASSERT_EQ(0, arena(self->fd, &a, 0, 4, PG, STACKRES_MAP, UD(0x20), 0));
	for (i = 0; i < 3; i++)
		ASSERT_TRUE(touch(a.start + 2 * SLOT - 1 - i * PG));
	want[3] = (struct stackres_entry){ .user_data = UD(0x20), .start = a.start,
		.len = 4 * SLOT, .committed = 3 * PG, .id = a.id,
		.flags = STACKRES_ENTRY_ARENA };
	/* in id order */
	for (i = 0; i < NLIST; i++)
		for (j = i + 1; j < NLIST; j++)
			if (want[j].id < want[i].id) {
				tmp = want[i];
				want[i] = want[j];
				want[j] = tmp;
			}
	for (i = 0; i < NLIST; i++)
		sum += want[i].committed;
	/* another file's are not listed */
	fd2 = open(SR_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, reg_new(fd2, &rf, 256 * KIB, 16 * KIB, 128 * KIB, 0));

	/* totals only */
	ASSERT_EQ(0, list(self->fd, &l, NULL, 0, 0, 0));
	EXPECT_EQ(0, l.filled);
	EXPECT_EQ(0, l.next_id);
	EXPECT_EQ(NLIST, l.nr_res);
	EXPECT_EQ(sum, l.committed);
	ASSERT_EQ(0, list(fd2, &l, NULL, 0, 0, 0));
	EXPECT_EQ(1, l.nr_res);
	EXPECT_EQ(128 * KIB, l.committed);

	/* all in one call */
	memset(e, 0xa5, sizeof(e));
	ASSERT_EQ(0, list(self->fd, &l, e, 8, sizeof(e[0]), 0));
	EXPECT_EQ(NLIST, l.filled);
	EXPECT_EQ(0, l.next_id);
	EXPECT_EQ(NLIST, l.nr_res);
	EXPECT_EQ(sum, l.committed);
	for (i = 0; i < NLIST; i++)
		expect_entry(_metadata, &e[i], &want[i]);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, e[NLIST].user_data);

	/* one at a time */
	next = 0;
	for (i = 0; i < NLIST; i++) {
		memset(e, 0xa5, sizeof(e));
		ASSERT_EQ(0, list(self->fd, &l, e, 1, sizeof(e[0]), next));
		ASSERT_EQ(1, l.filled);
		expect_entry(_metadata, &e[0], &want[i]);
		EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, e[1].user_data);
		EXPECT_EQ(i + 1 < NLIST ? want[i + 1].id : 0, l.next_id);
		EXPECT_EQ(NLIST, l.nr_res);
		EXPECT_EQ(sum, l.committed);
		next = l.next_id;
	}
	/* count 2 of 4; from an id; past the last; no room at all */
	ASSERT_EQ(0, list(self->fd, &l, e, 2, sizeof(e[0]), 0));
	EXPECT_EQ(2, l.filled);
	EXPECT_EQ(want[2].id, l.next_id);
	EXPECT_EQ(NLIST, l.nr_res);
	ASSERT_EQ(0, list(self->fd, &l, e, 8, sizeof(e[0]), want[1].id));
	EXPECT_EQ(3, l.filled);
	EXPECT_EQ(0, l.next_id);
	expect_entry(_metadata, &e[0], &want[1]);
	ASSERT_EQ(0, list(self->fd, &l, e, 8, sizeof(e[0]), want[NLIST - 1].id + 1));
	EXPECT_EQ(0, l.filled);
	EXPECT_EQ(0, l.next_id);
	EXPECT_EQ(NLIST, l.nr_res);
	EXPECT_EQ(sum, l.committed);
	ASSERT_EQ(0, list(self->fd, &l, e, 0, sizeof(e[0]), 0));
	EXPECT_EQ(0, l.filled);
	EXPECT_EQ(want[0].id, l.next_id);

	/* 48-byte entries: the 8 bytes the module does not know are zeroed */
	memset(raw, 0xff, sizeof(raw));
	ASSERT_EQ(0, list(self->fd, &l, raw, NLIST, 48, 0));
	EXPECT_EQ(NLIST, l.filled);
	for (i = 0; i < NLIST; i++) {
		memcpy(&tmp, raw + i * 48, sizeof(tmp));
		expect_entry(_metadata, &tmp, &want[i]);
		EXPECT_TRUE(all_zero(raw + i * 48 + 40, 8)) TH_LOG("entry %d", i);
	}

	/* bad input */
	memset(&l, 0, sizeof(l));
	l.entries = sr_u64(e);
	l.count = 8;
	l.entry_size = sizeof(e[0]);
	l.flags = 1;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_LIST, &l));
	l.flags = 0;
	l.pad = 1;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_LIST, &l));
	EXPECT_EQ(-EINVAL, list(self->fd, &l, e, 8, 39, 0));
	EXPECT_EQ(-EINVAL, list(self->fd, &l, e, 8, 0, 0));
	EXPECT_EQ(-EINVAL, list(self->fd, &l, e, 8, 24, 0));
	EXPECT_EQ(-E2BIG, list(self->fd, &l, zero_buf, 1, PG + 8, 0));
	EXPECT_EQ(-EFAULT, list(self->fd, &l, (void *)8, 8, sizeof(e[0]), 0));

	/* gone after UNREGISTER */
	ASSERT_EQ(0, sr_unregister(self->fd, want[1].id));
	ASSERT_EQ(0, list(self->fd, &l, e, 8, sizeof(e[0]), 0));
	EXPECT_EQ(NLIST - 1, l.filled);
	EXPECT_EQ(NLIST - 1, l.nr_res);
	EXPECT_EQ(sum - want[1].committed, l.committed);
	expect_entry(_metadata, &e[0], &want[0]);
	expect_entry(_metadata, &e[1], &want[2]);
	expect_entry(_metadata, &e[2], &want[3]);
	close(fd2);
}

/*
 * LIST with no entries, in a file without arenas, answers from counters:
 * they must follow every way the committed bytes change (REGISTER, growth,
 * TRIM, UNREGISTER, munmap, MAP_FIXED over a reservation) and agree with
 * a full LIST and with QUERY.
 */
TEST_F(v1, list_totals_follow_every_change)
{
	struct stackres_entry e[4];
	struct stackres_list l, full;
	struct stackres_reg r[4];
	struct stackres_trim t;
	uint64_t sum;
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, reg_new(self->fd, &r[i], 512 * KIB, 16 * KIB, 64 * KIB, 0));
#define TOTALS_ARE(_nr, _sum) do {						\
	ASSERT_EQ(0, list(self->fd, &l, NULL, 0, 0, 0));			\
	EXPECT_EQ((uint64_t)(_nr), l.nr_res);					\
	EXPECT_EQ((uint64_t)(_sum), l.committed);				\
	ASSERT_EQ(0, list(self->fd, &full, e, 4, sizeof(e[0]), 0));		\
	EXPECT_EQ(l.nr_res, full.nr_res);					\
	EXPECT_EQ(l.committed, full.committed);					\
} while (0)
	TOTALS_ARE(4, 4 * 64 * KIB);
	/* growth */
	ASSERT_TRUE(commit_to(&r[0], 256 * KIB));
	ASSERT_TRUE(commit_to(&r[1], 128 * KIB));
	sum = 256 * KIB + 128 * KIB + 2 * 64 * KIB;
	EXPECT_EQ(256 * KIB, committed_of(self->fd, r[0].id));
	TOTALS_ARE(4, sum);
	/* TRIM by id down to 96 KiB, and one that changes nothing */
	ASSERT_EQ(0, trim(self->fd, &t, r[0].id, 0, r[0].start + r[0].len - 96 * KIB, 0));
	EXPECT_EQ(96 * KIB, t.committed);
	sum -= 256 * KIB - 96 * KIB;
	TOTALS_ARE(4, sum);
	ASSERT_EQ(0, trim(self->fd, &t, r[2].id, 0, r[2].start + r[2].len - 32 * KIB, 64 * KIB));
	EXPECT_EQ(64 * KIB, t.committed);
	TOTALS_ARE(4, sum);
	/* UNREGISTER */
	ASSERT_EQ(0, sr_unregister(self->fd, r[1].id));
	sum -= 128 * KIB;
	TOTALS_ARE(3, sum);
	/* munmap ends a reservation: counted out at the next LIST */
	ASSERT_EQ(0, munmap((void *)(uintptr_t)r[2].start, r[2].len));
	sum -= 64 * KIB;
	TOTALS_ARE(2, sum);
	/* a mapping made over one ends it too */
	ASSERT_NE(MAP_FAILED, mmap((void *)(uintptr_t)r[3].start, PG, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	sum -= 64 * KIB;
	TOTALS_ARE(1, sum);
	EXPECT_EQ(96 * KIB, sum);
	ASSERT_EQ(0, sr_unregister(self->fd, r[0].id));
	TOTALS_ARE(0, 0);
#undef TOTALS_ARE
}

/* The largest power of two not above @x. */
static uint64_t pow2_floor(uint64_t x)
{
	uint64_t p = 1;

	while (p <= x / 2)
		p <<= 1;
	return p;
}

/*
 * align: with STACKRES_MAP and start 0 the mapping starts at a multiple of
 * it; a power of two from the page size to TASK_SIZE; EINVAL otherwise or
 * without MAP; ENOMEM when no aligned hole is left; nothing changes on error.
 */
TEST_F(v1, align)
{
	const uint64_t ts = task_size();
	const uint64_t bad[] = { 1, 2, PG / 2, PG - 1, PG + 1, 3 * PG, 2 * MIB + PG,
				 pow2_floor(ts) * 2, 1ULL << 63, ~0ULL };
	struct stackres_arena a;
	struct stackres_query q;
	struct stackres_reg r;
	char *p = sr_map_isolated(1 * MIB, PROT_READ | PROT_WRITE);
	unsigned int i, n = 0;
	uint64_t al;

	ASSERT_NE(0, sr_u64(p));
	for (i = 0; i < 4; i++, n += 2) {
		sr_fill_reg(self->fd, &r, NULL, 256 * KIB, 16 * KIB, 64 * KIB, 0, 0,
			    STACKRES_MAP);
		r.align = 2 * MIB;
		r.user_data = UD(i);
		ASSERT_EQ(0, sr_register(self->fd, &r));
		EXPECT_EQ(0, r.start % (2 * MIB))
			TH_LOG("start %#llx", (unsigned long long)r.start);
		EXPECT_EQ(2 * MIB, r.align);
		ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
		EXPECT_EQ(r.start, q.start);
		EXPECT_EQ(64 * KIB, q.committed);
		EXPECT_EQ(UD(i), q.user_data);
		EXPECT_TRUE(touch(r.start + r.len - 128 * KIB));
		EXPECT_FALSE(touch(r.start + 16 * KIB - 1));

		ASSERT_EQ(0, arena(self->fd, &a, 0, 8, PG, STACKRES_MAP, UD(i), 2 * MIB));
		EXPECT_EQ(0, a.start % (2 * MIB))
			TH_LOG("start %#llx", (unsigned long long)a.start);
		EXPECT_FALSE(touch(a.start + PG - 1));
		EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
		EXPECT_TRUE(touch(a.start + PG));
		ASSERT_EQ(0, query_addr(self->fd, a.start + 7 * SLOT, 0, &q));
		EXPECT_EQ(7, q.slot);
	}
	/* larger alignments, and the page size */
	for (al = PG; al <= 256 * MIB; al *= 16, n += 2) {
		sr_fill_reg(self->fd, &r, NULL, 64 * KIB, PG, PG, 0, 0, STACKRES_MAP);
		r.align = al;
		ASSERT_EQ(0, sr_register(self->fd, &r))
			TH_LOG("align %#llx", (unsigned long long)al);
		EXPECT_EQ(0, r.start % al);
		ASSERT_EQ(0, arena(self->fd, &a, 0, 2, PG, STACKRES_MAP, 0, al));
		EXPECT_EQ(0, a.start % al);
	}

	ASSERT_EQ(0, sr_snap_maps(0));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		sr_fill_reg(self->fd, &r, NULL, 64 * KIB, PG, PG, 0, 0, STACKRES_MAP);
		r.align = bad[i];
		EXPECT_EQ(-EINVAL, sr_register(self->fd, &r))
			TH_LOG("align %#llx", (unsigned long long)bad[i]);
		EXPECT_EQ(-EINVAL, arena(self->fd, &a, 0, 2, PG, STACKRES_MAP, 0, bad[i]))
			TH_LOG("align %#llx", (unsigned long long)bad[i]);
	}
	/* without MAP, or MAP at a fixed start: EINVAL for any align */
	for (al = PG; al <= 2 * MIB; al *= 2) {
		sr_fill_reg(self->fd, &r, p, 64 * KIB, PG, PG, 0, 0, 0);
		r.align = al;
		EXPECT_EQ(-EINVAL, sr_register(self->fd, &r));
		EXPECT_EQ(-EINVAL, arena(self->fd, &a, sr_u64(p), 2, PG, 0, 0, al));
	}
	munmap(p, 1 * MIB);
	ASSERT_EQ(0, sr_snap_maps(0));
	p = sr_free_range(4 * MIB);
	ASSERT_NE(0, sr_u64(p));
	p = sr_ptr((sr_u64(p) + 2 * MIB - 1) & ~(2 * MIB - 1));
	sr_fill_reg(self->fd, &r, p, 64 * KIB, PG, PG, 0, 0, STACKRES_MAP);
	r.align = 2 * MIB;
	EXPECT_EQ(-EINVAL, sr_register(self->fd, &r));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, sr_u64(p), 2, PG, STACKRES_MAP, 0, 2 * MIB));
	/* no hole: the largest alignment there is, for as many bytes */
	al = pow2_floor(ts);
	sr_fill_reg(self->fd, &r, NULL, al, PG, PG, 0, 0, STACKRES_MAP);
	r.align = al;
	EXPECT_EQ(-ENOMEM, sr_register(self->fd, &r));
	EXPECT_EQ(-ENOMEM, arena(self->fd, &a, 0, al / SLOT, PG, STACKRES_MAP, 0, al));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	EXPECT_EQ(n, nr_res(self->fd));
}

/*
 * QUERY_ANY: by address, any live reservation of the process, another
 * file's with FOREIGN and that file's id; without it, only this file's.
 */
TEST_F(v1, query_any)
{
	struct stackres_query q, q2;
	struct stackres_reg r, r2;
	struct stackres_arena a2;
	int fd2 = open(SR_DEV, O_RDWR | O_CLOEXEC);
	const __u32 answers = STACKRES_QUERY_SLOT | STACKRES_QUERY_GUARD |
			      STACKRES_QUERY_FOREIGN;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, reg_new(self->fd, &r, 256 * KIB, 16 * KIB, 64 * KIB, UD(0xf1)));
	ASSERT_EQ(0, reg_new(fd2, &r2, 256 * KIB, 16 * KIB, 64 * KIB, UD(0xf2)));
	ASSERT_EQ(0, arena(fd2, &a2, 0, 4, 2 * PG, STACKRES_MAP, UD(0xa2), 0));

	EXPECT_EQ(-ENOENT, query_addr(self->fd, r2.start + 100 * KIB, 0, &q));
	EXPECT_EQ(-ENOENT, query_addr(self->fd, a2.start + SLOT, 0, &q));

	ASSERT_EQ(0, query_addr(self->fd, r2.start + 100 * KIB, STACKRES_QUERY_ANY, &q));
	ASSERT_EQ(0, query_addr(fd2, r2.start + 100 * KIB, 0, &q2));
	EXPECT_EQ(STACKRES_QUERY_FOREIGN, q.flags & answers);
	EXPECT_TRUE(q.flags & STACKRES_QUERY_ADDR);
	EXPECT_EQ(0, q2.flags & answers);
	EXPECT_EQ(r2.id, q.id);
	EXPECT_EQ(r2.start, q.start);
	EXPECT_EQ(r2.len, q.len);
	EXPECT_EQ(16 * KIB, q.guard);
	EXPECT_EQ(64 * KIB, q.committed);
	EXPECT_EQ(UD(0xf2), q.user_data);
	EXPECT_EQ(q2.committed, q.committed);
	EXPECT_EQ(q2.resident, q.resident);
	/* in the guard of another file's reservation */
	ASSERT_EQ(0, query_addr(self->fd, r2.start, STACKRES_QUERY_ANY, &q));
	EXPECT_EQ(STACKRES_QUERY_FOREIGN | STACKRES_QUERY_GUARD, q.flags & answers);
	/* another file's arena: the slot */
	ASSERT_EQ(0, query_addr(self->fd, a2.start + 2 * SLOT + 3 * PG, STACKRES_QUERY_ANY, &q));
	EXPECT_EQ(STACKRES_QUERY_FOREIGN | STACKRES_QUERY_SLOT, q.flags & answers);
	EXPECT_EQ(a2.id, q.id);
	EXPECT_EQ(2, q.slot);
	EXPECT_EQ(a2.start + 2 * SLOT, q.start);
	EXPECT_EQ(SLOT, q.len);
	EXPECT_EQ(UD(0xa2), q.user_data);
	/* this file's own: not FOREIGN */
	ASSERT_EQ(0, query_addr(self->fd, r.start + 100 * KIB, STACKRES_QUERY_ANY, &q));
	EXPECT_EQ(0, q.flags & answers);
	EXPECT_EQ(r.id, q.id);
	EXPECT_EQ(UD(0xf1), q.user_data);
	/* and from the other file, this one is foreign */
	ASSERT_EQ(0, query_addr(fd2, r.start + 100 * KIB, STACKRES_QUERY_ANY, &q));
	EXPECT_EQ(STACKRES_QUERY_FOREIGN, q.flags & answers);
	EXPECT_EQ(r.id, q.id);
	/* nobody's */
	EXPECT_EQ(-ENOENT, query_addr(self->fd, sr_u64(sr_free_range(PG)),
				      STACKRES_QUERY_ANY, &q));
	EXPECT_EQ(-ENOENT, query_addr(self->fd, r2.start + r2.len, STACKRES_QUERY_ANY, &q));

	/* ANY needs ADDR; unknown bits; answer bits on input are ignored */
	memset(&q, 0, sizeof(q));
	q.id = r.id;
	q.flags = STACKRES_QUERY_ANY;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_QUERY, &q));
	EXPECT_EQ(-EINVAL, query_addr(self->fd, r.start + 100 * KIB, 1U << 5, &q));
	EXPECT_EQ(-EINVAL, query_addr(self->fd, r.start + 100 * KIB, 1U << 31, &q));
	ASSERT_EQ(0, query_addr(self->fd, r.start + 100 * KIB, answers, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR, q.flags);
	EXPECT_EQ(r.id, q.id);
	memset(&q, 0, sizeof(q));
	q.id = r.id;
	q.flags = answers;
	ASSERT_EQ(0, sr_ioctl(self->fd, STACKRES_IOC_QUERY, &q));
	EXPECT_EQ(0, q.flags);
	EXPECT_EQ(UD(0xf1), q.user_data);

	/* after the other file's last close: gone */
	close(fd2);
	EXPECT_EQ(-ENOENT, query_addr(self->fd, r2.start + 100 * KIB, STACKRES_QUERY_ANY, &q));
	EXPECT_EQ(-ENOENT, query_addr(self->fd, a2.start + SLOT, STACKRES_QUERY_ANY, &q));
}

/* QUERY_GUARD: the address lies in the guard (of its slot, in an arena). */
TEST_F(v1, query_guard)
{
	const uint64_t guard = 2 * PG;
	struct stackres_arena a;
	struct stackres_query q;
	struct stackres_reg r, r0;
	uint64_t s;

	ASSERT_EQ(0, reg_new(self->fd, &r, 256 * KIB, 16 * KIB, 64 * KIB, 0));
	ASSERT_EQ(0, reg_new(self->fd, &r0, 256 * KIB, 0, 64 * KIB, 0));
	ASSERT_EQ(0, arena(self->fd, &a, 0, 4, guard, STACKRES_MAP, 0, 0));

	ASSERT_EQ(0, query_addr(self->fd, r.start, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_GUARD, q.flags);
	ASSERT_EQ(0, query_addr(self->fd, r.start + 16 * KIB - 1, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_GUARD, q.flags);
	ASSERT_EQ(0, query_addr(self->fd, r.start + 16 * KIB, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR, q.flags);
	ASSERT_EQ(0, query_addr(self->fd, r.start + r.len - 1, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR, q.flags);
	ASSERT_EQ(0, query_addr(self->fd, r0.start, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR, q.flags);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, q.flags);

	s = a.start + 3 * SLOT;
	ASSERT_EQ(0, query_addr(self->fd, s, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT | STACKRES_QUERY_GUARD, q.flags);
	EXPECT_EQ(3, q.slot);
	ASSERT_EQ(0, query_addr(self->fd, s + guard - 1, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT | STACKRES_QUERY_GUARD, q.flags);
	ASSERT_EQ(0, query_addr(self->fd, s + guard, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT, q.flags);
	ASSERT_EQ(0, query_addr(self->fd, s - 1, 0, &q));
	EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT, q.flags);
	EXPECT_EQ(2, q.slot);
	ASSERT_EQ(0, sr_query(self->fd, a.id, &q));
	EXPECT_EQ(0, q.flags);
}

/* resident: bytes in memory, of the reservation, of the slot, of the whole arena. */
TEST_F(v1, query_resident)
{
	const uint64_t guard = 2 * PG;
	struct stackres_arena a;
	struct stackres_query q;
	struct stackres_list l;
	struct stackres_reg r, rp;
	struct stackres_trim t;
	uint64_t top;
	int i;

	ASSERT_EQ(0, reg_new(self->fd, &r, 1 * MIB, 16 * KIB, 256 * KIB, 0));
	top = r.start + r.len;
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, q.resident);
	EXPECT_EQ(256 * KIB, q.committed);
	for (i = 0; i < 3; i++)
		ASSERT_TRUE(touch(top - 1 - i * 10 * PG));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(3 * PG, q.resident);
	ASSERT_TRUE(touch(top - 512 * KIB));	/* grows, one page more */
	ASSERT_EQ(0, query_addr(self->fd, r.start + 16 * KIB, 0, &q));
	EXPECT_EQ(4 * PG, q.resident);
	EXPECT_EQ(512 * KIB, q.committed);
	EXPECT_EQ(4, sr_resident(sr_ptr(r.start), r.len));
	ASSERT_EQ(0, trim(self->fd, &t, r.id, 0, top, 16 * PG));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(2 * PG, q.resident);

	sr_fill_reg(self->fd, &rp, NULL, 256 * KIB, 16 * KIB, 64 * KIB, 0, 0,
		    STACKRES_MAP | STACKRES_POPULATE);
	ASSERT_EQ(0, sr_register(self->fd, &rp));
	ASSERT_EQ(0, sr_query(self->fd, rp.id, &q));
	EXPECT_EQ(64 * KIB, q.resident);

	ASSERT_EQ(0, arena(self->fd, &a, 0, 8, guard, STACKRES_MAP, 0, 0));
	for (i = 0; i < 5; i++)
		ASSERT_TRUE(touch(a.start + 3 * SLOT - 1 - i * PG));
	for (i = 0; i < 2; i++)
		ASSERT_TRUE(touch(a.start + 6 * SLOT + guard + i * PG));
	ASSERT_EQ(0, query_addr(self->fd, a.start + 2 * SLOT + guard, 0, &q));
	EXPECT_EQ(2, q.slot);
	EXPECT_EQ(5 * PG, q.resident);
	EXPECT_EQ(SLOT - guard, q.committed);
	ASSERT_EQ(0, query_addr(self->fd, a.start + 6 * SLOT, 0, &q));
	EXPECT_EQ(2 * PG, q.resident);
	ASSERT_EQ(0, query_addr(self->fd, a.start + 5 * SLOT, 0, &q));
	EXPECT_EQ(0, q.resident);
	ASSERT_EQ(0, sr_query(self->fd, a.id, &q));
	EXPECT_EQ(7 * PG, q.resident);
	EXPECT_EQ(8 * (SLOT - guard), q.committed);
	ASSERT_EQ(0, list(self->fd, &l, NULL, 0, 0, 0));
	EXPECT_EQ(3, l.nr_res);
	EXPECT_EQ(16 * PG + 64 * KIB + 7 * PG, l.committed);
}

TEST_HARNESS_MAIN
