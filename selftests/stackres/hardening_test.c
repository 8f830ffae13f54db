// SPDX-License-Identifier: GPL-2.0
/*
 * Rules from the mm review hardening (Documentation/man/stackres.4,
 * Documentation/userspace-api/stackres.rst):
 *
 * - mseal(2): REGISTER and ARENA over a range with any sealed VMA fail with
 *   EPERM and change nothing (error order EFAULT, EINVAL, ENXIO, EPERM,
 *   EEXIST); TRIM of a reservation or an arena slot whose range touches a
 *   sealed VMA is EPERM and discards nothing; growth into a reservation
 *   sealed after REGISTER is a FAILED record with err EPERM and SIGSEGV
 *   SEGV_ACCERR at the exact address.  mseal() exists on 64-bit kernels only
 *   (x86_64 and ia32 compat tasks there); the i386 kernel's ENOSYS is a SKIP.
 *   Pages behind PROT_NONE are checked through /proc/self/mem (which reads
 *   them) and mincore().
 * - The result of REGISTER/ARENA is written to user memory last; if that
 *   copy faults (the structure lies in the guard of the range it registers),
 *   the call is EFAULT and nothing stays registered: QUERY is ENOENT, the
 *   arena's guard markers are gone and the same range registers again.
 * - CPUs without NX: a write to a reservation's uncommitted page within 15
 *   bytes after the writing instruction grows the reservation (only a
 *   non-write fault there may be an instruction fetch); a jump into a
 *   reservation never grows it.  These tests run on any CPU and log which
 *   mode they ran in; without NX is the case that matters: scripts/check
 *   boots a guest without NX for this program (i386; x86_64 only with a
 *   kernel without KASAN, which cannot boot on a CPU without NX).
 *   HARDENING_EXPECT_NONX=1 makes a guest that still enforces NX a failure.
 */
#include "stackres_util.h"

#define NR_mseal	462	/* x86_64 and i386 tables alike */

/* /proc/pid/pagemap: a guard marker. */
#define PM_GUARD_REGION	(1ULL << 58)

FIXTURE(hard) {
	int fd;
	int memfd;
};

FIXTURE_SETUP(hard)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	self->memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(hard)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->memfd >= 0)
		close(self->memfd);
}

static int sr_mseal(void *p, uint64_t len)
{
	return syscall(NR_mseal, p, (size_t)len, 0UL) ? -errno : 0;
}

#define REQUIRE_MSEAL() do {						\
	if (syscall(NR_mseal, 0UL, 0UL, 0UL)) {				\
		if (errno == ENOSYS)					\
			SKIP(return, "no mseal(): 6.12 has it on 64-bit kernels only"); \
		ASSERT_EQ(0, -errno) TH_LOG("mseal(0, 0, 0): %s", strerror(errno)); \
	}								\
} while (0)

/* A byte pattern that no zero-filled or other page matches. */
static uint8_t hb_pat(uint64_t a)
{
	return (uint8_t)(sr_pattern(a) + (a & (PG - 1)) * 7 + 1);
}

static void hb_fill(char *p, uint64_t len)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		p[i] = hb_pat(sr_u64(p + i));
}

/*
 * Bytes of [p, p+len) that differ from the pattern, read through
 * /proc/self/mem (works on PROT_NONE anonymous memory); -1 if unreadable.
 */
static long hb_damaged(int memfd, const char *p, uint64_t len)
{
	static uint8_t buf[64 * 1024];
	uint64_t off, i;
	long bad = 0;

	for (off = 0; off < len; off += sizeof(buf)) {
		uint64_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		if (pread(memfd, buf, n, (off_t)sr_u64(p + off)) != (ssize_t)n)
			return -1;
		for (i = 0; i < n; i++)
			bad += buf[i] != hb_pat(sr_u64(p + off + i));
	}
	return bad;
}

static int hb_is_guard(uint64_t a)
{
	uint64_t e;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &e, sizeof(e), (off_t)(a / PG * sizeof(e)));
	close(fd);
	if (n != sizeof(e))
		return -1;
	return !!(e & PM_GUARD_REGION);
}

/* Guard markers among the first pages of every slot ([guard] bytes each). */
static int hb_guard_pages(uint64_t start, uint64_t slot, uint64_t nslots, uint64_t guard)
{
	uint64_t s, a;
	int n = 0, g;

	for (s = 0; s < nslots; s++)
		for (a = 0; a < guard; a += PG) {
			g = hb_is_guard(start + s * slot + a);
			if (g < 0)
				return -1;
			n += g;
		}
	return n;
}

static int hb_arena(int fd, struct stackres_arena *a, uint64_t start, uint64_t slot,
		    uint64_t nslots, uint64_t guard, __u32 flags)
{
	memset(a, 0, sizeof(*a));
	a->start = start;
	a->slot = slot;
	a->nslots = nslots;
	a->guard = guard;
	a->flags = flags;
	return sr_ioctl(fd, STACKRES_IOC_ARENA, a);
}

/* ---- mseal ---- */

/*
 * REGISTER over a sealed range, in every shape: sealed while PROT_NONE or
 * read/write, with or without a guard and a committed part.  The sealed
 * PROT_NONE, commit = 0 shape changes no protection at all, which is how
 * it used to get through (and a TRIM then dropped the sealed pages).
 */
TEST_F(hard, register_sealed_is_eperm)
{
	static const struct {
		int prot;
		uint64_t guard, commit;	/* in pages */
	} c[] = {
		{ PROT_NONE, 0, 0 },
		{ PROT_NONE, 1, 0 },
		{ PROT_NONE, 1, 1 },
		{ PROT_READ | PROT_WRITE, 0, 4 },
		{ PROT_READ | PROT_WRITE, 1, 1 },
	};
	const uint64_t len = 4 * PG;
	struct stackres_query q;
	struct stackres_reg r;
	unsigned int i;
	int ret;

	REQUIRE_MSEAL();
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);

		ASSERT_TRUE(p != NULL);
		hb_fill(p, len);
		ASSERT_EQ(0, mprotect(p, len, c[i].prot));
		ASSERT_EQ(0, sr_mseal(p, len));
		ASSERT_EQ(0, sr_snap_maps(0));
		ret = sr_reg_range(self->fd, &r, p, len, c[i].guard * PG,
				   c[i].commit * PG, 0, 0, 0);
		ASSERT_EQ(0, sr_snap_maps(1));
		EXPECT_EQ(-EPERM, ret) {
			TH_LOG("case %u (prot %d, guard %llu, commit %llu pages): REGISTER over a sealed range returned %d",
			       i, c[i].prot, (unsigned long long)c[i].guard,
			       (unsigned long long)c[i].commit, ret);
		}
		EXPECT_TRUE(sr_maps_same()) TH_LOG("case %u: protections changed", i);
		EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, sr_u64(p + len - 1), &q));
		EXPECT_EQ(4, sr_resident(p, len));
		EXPECT_EQ(0, hb_damaged(self->memfd, p, len));
		if (ret == 0 && !c[i].commit) {
			/* What the accepted REGISTER allowed: TRIM drops the pages. */
			ret = sr_trim(self->fd, r.id, sr_u64(p + len), 0);
			TH_LOG("case %u: TRIM of that reservation returned %d; %ld of 4 pages resident, %ld bytes damaged",
			       i, ret, sr_resident(p, len),
			       hb_damaged(self->memfd, p, len));
		}
		if (c[i].prot == PROT_NONE) {
			/* Mainline refuses to discard sealed read-only memory too. */
			EXPECT_EQ(-1, madvise(p, len, MADV_DONTNEED));
			EXPECT_EQ(EPERM, errno);
		}
	}
}

/* EPERM comes after EFAULT, EINVAL and ENXIO, and before EEXIST. */
TEST_F(hard, register_sealed_error_order)
{
	const uint64_t len = 4 * PG;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_reg r, r2;

	REQUIRE_MSEAL();
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p, len, PG, PG, 0, 0, 0));
	ASSERT_EQ(0, sr_mseal(p, len));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_REGISTER, (void *)8));
	EXPECT_EQ(-EINVAL, sr_reg_range(self->fd, &r2, p, len, PG, PG, 0, 0, 1U << 7));
	/* The page after the range is unmapped: a hole. */
	EXPECT_EQ(-ENXIO, sr_reg_range(self->fd, &r2, p, len + PG, PG, PG, 0, 0, 0));
	/* Sealed and already registered: sealed wins. */
	EXPECT_EQ(-EPERM, sr_reg_range(self->fd, &r2, p, len, PG, PG, 0, 0, 0));
	EXPECT_EQ(0, sr_unregister(self->fd, r.id));
}

/*
 * Registered first (commit = 0: everything PROT_NONE, the data kept), sealed
 * afterwards: TRIM must not discard the sealed pages.
 */
TEST_F(hard, trim_sealed_after_register_keeps_pages)
{
	const uint64_t len = 4 * PG;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_query q;
	struct stackres_reg r;
	int ret;

	REQUIRE_MSEAL();
	ASSERT_TRUE(p != NULL);
	hb_fill(p, len);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p, len, 0, 0, 0, 0, 0));
	ASSERT_EQ(4, sr_resident(p, len));
	ASSERT_EQ(0, sr_mseal(p, len));
	ASSERT_EQ(0, sr_snap_maps(0));
	ret = sr_trim(self->fd, r.id, sr_u64(p + len), 0);
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_EQ(-EPERM, ret);
	EXPECT_TRUE(sr_maps_same());
	EXPECT_EQ(4, sr_resident(p, len));
	EXPECT_EQ(0, hb_damaged(self->memfd, p, len));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(0, q.committed);
	/* madvise(MADV_DONTNEED) refuses the same range (mainline rule). */
	EXPECT_EQ(-1, madvise(p, len, MADV_DONTNEED));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(4, sr_resident(p, len));
}

/* A sealed committed (read/write) part: TRIM is EPERM, the data stays. */
TEST_F(hard, trim_sealed_committed_part)
{
	const uint64_t len = 8 * PG;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_query q;
	struct stackres_reg r;
	char *top = p + len;

	REQUIRE_MSEAL();
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p, len, PG, 2 * PG, 0, 0, 0));
	hb_fill(top - 2 * PG, 2 * PG);
	/* Only the committed part is sealed. */
	ASSERT_EQ(0, sr_mseal(top - 2 * PG, 2 * PG));
	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(-EPERM, sr_trim(self->fd, r.id, sr_u64(top), 0));
	EXPECT_EQ(-EPERM, sr_trim(self->fd, r.id, sr_u64(top - PG), 0));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	EXPECT_EQ(2, sr_resident(top - 2 * PG, 2 * PG));
	EXPECT_EQ(0, hb_damaged(self->memfd, top - 2 * PG, 2 * PG));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(2 * PG, q.committed);
	/* A TRIM that keeps the sealed part whole touches nothing sealed. */
	EXPECT_EQ(0, sr_trim(self->fd, r.id, sr_u64(top - 2 * PG), 0));
	EXPECT_EQ(0, hb_damaged(self->memfd, top - 2 * PG, 2 * PG));
}

/*
 * Caller memory may hold pages below the committed bottom, so a TRIM with
 * its cut below the bottom still drops them; when that fails on a sealed
 * range, the committed part is what it was (it once dropped to the cut,
 * into PROT_NONE pages).
 */
TEST_F(hard, trim_sealed_below_bottom_keeps_committed)
{
	const uint64_t len = 8 * PG;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_query q;
	struct stackres_reg r;
	char *top = p + len;

	REQUIRE_MSEAL();
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p, len, PG, 2 * PG, 0, 0, 0));
	/* What lies between the guard and the committed part is sealed. */
	ASSERT_EQ(0, sr_mseal(p + PG, len - 3 * PG));
	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(-EPERM, sr_trim(self->fd, r.id, sr_u64(top - 4 * PG), 0));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(2 * PG, q.committed);
}

/* Growth into a reservation sealed after REGISTER: FAILED (EPERM), SIGSEGV. */
TEST_F(hard, grow_into_sealed_fails)
{
	const uint64_t len = 8 * PG;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_event ev[4];
	struct stackres_query q;
	struct stackres_reg r;
	uint64_t a;

	REQUIRE_MSEAL();
	ASSERT_TRUE(p != NULL);
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p, len, PG, PG, 0, 0,
				  STACKRES_NOTIFY_GROW));
	ASSERT_EQ(0, sr_mseal(p, len));
	ASSERT_EQ(0, sr_snap_maps(0));
	a = sr_u64(p + len - PG) - 3;
	ASSERT_TRUE(SR_TRY(SR_WRITE(a, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(a, sr_sig.addr);
	ASSERT_EQ(1, sr_read_events(self->fd, ev, 4));
	EXPECT_EQ(STACKRES_EV_FAILED, ev[0].type);
	EXPECT_EQ(r.id, ev[0].id);
	EXPECT_EQ(EPERM, ev[0].err);
	EXPECT_EQ(a, ev[0].addr);
	EXPECT_EQ((__u32)sr_gettid(), ev[0].tid);
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(PG, q.committed);
	EXPECT_EQ(0, q.grow_faults);
}

/*
 * ARENA over a sealed mapping: EPERM, no guard markers, the data kept.
 * TRIM of a slot of an arena sealed afterwards: EPERM, the data kept
 * (mainline's MADV_DONTNEED would drop read/write sealed pages; stackres
 * discards no sealed memory at all).
 */
TEST_F(hard, arena_sealed)
{
	const uint64_t slot = 4 * PG, nslots = 4, len = slot * nslots;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	char *q2 = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_query q;
	struct stackres_arena a;
	char *s1;
	int ret;

	REQUIRE_MSEAL();
	ASSERT_TRUE(p != NULL);
	ASSERT_TRUE(q2 != NULL);
	hb_fill(p, len);
	ASSERT_EQ(0, sr_mseal(p, len));
	ASSERT_EQ(0, sr_snap_maps(0));
	ret = hb_arena(self->fd, &a, sr_u64(p), slot, nslots, PG, 0);
	EXPECT_EQ(-EPERM, ret);
	EXPECT_EQ(0, hb_guard_pages(sr_u64(p), slot, nslots, PG));
	EXPECT_EQ(0, hb_damaged(self->memfd, p, len));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, sr_u64(p + PG), &q));
	if (ret == 0)
		sr_unregister(self->fd, a.id);
	ret = hb_arena(self->fd, &a, sr_u64(p), slot, nslots, 0, 0);
	EXPECT_EQ(-EPERM, ret);
	if (ret == 0)
		sr_unregister(self->fd, a.id);
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());

	/* Arena first, sealed afterwards. */
	ASSERT_EQ(0, hb_arena(self->fd, &a, sr_u64(q2), slot, nslots, PG, 0));
	ASSERT_EQ(nslots, hb_guard_pages(sr_u64(q2), slot, nslots, PG));
	s1 = q2 + slot;
	hb_fill(s1 + PG, slot - PG);
	ASSERT_EQ(0, sr_mseal(q2, len));
	EXPECT_EQ(-EPERM, sr_trim(self->fd, a.id, sr_u64(s1 + slot), 0));
	EXPECT_EQ(3, sr_resident(s1 + PG, slot - PG));
	EXPECT_EQ(0, hb_damaged(self->memfd, s1 + PG, slot - PG));
	EXPECT_EQ(nslots, hb_guard_pages(sr_u64(q2), slot, nslots, PG));
}

/* ---- the result copied last ---- */

/*
 * The structure lies in the guard page of the range it registers: REGISTER
 * makes that page PROT_NONE, so writing the result back faults.  EFAULT,
 * and nothing registered; the protections REGISTER set stay as set.
 */
TEST_F(hard, register_result_unwritable)
{
	const uint64_t len = 4 * PG;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_reg *in_guard = (struct stackres_reg *)p, r;
	struct stackres_query q;
	char perms[5];
	int ret;

	ASSERT_TRUE(p != NULL);
	sr_fill_reg(self->fd, in_guard, p, len, PG, PG, 0, 0, 0);
	ret = sr_register(self->fd, in_guard);
	EXPECT_EQ(-EFAULT, ret);
	ret = sr_query_addr(self->fd, sr_u64(p + 2 * PG), &q);
	EXPECT_EQ(-ENOENT, ret) {
		TH_LOG("REGISTER said EFAULT but reservation %u is live (start %#llx, committed %llu)",
		       q.id, (unsigned long long)q.start,
		       (unsigned long long)q.committed);
	}
	ASSERT_TRUE(sr_vma_at(sr_u64(p), perms, NULL, NULL));
	EXPECT_STREQ("---p", perms);
	ASSERT_TRUE(sr_vma_at(sr_u64(p + len - PG), perms, NULL, NULL));
	EXPECT_STREQ("rw-p", perms);
	/* The same range, the structure elsewhere. */
	EXPECT_EQ(0, sr_reg_range(self->fd, &r, p, len, PG, PG, 0, 0, 0));
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(sr_u64(p), q.start);
	EXPECT_EQ(len, q.len);
	EXPECT_EQ(PG, q.guard);
	EXPECT_EQ(PG, q.committed);
}

/* The same for ARENA: the structure in a slot's guard gets a marker. */
TEST_F(hard, arena_result_unwritable)
{
	const uint64_t slot = 4 * PG, nslots = 4, len = slot * nslots;
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_arena *in_guard = (struct stackres_arena *)(p + 2 * slot), a;
	struct stackres_query q;
	int ret;

	ASSERT_TRUE(p != NULL);
	memset(in_guard, 0, sizeof(*in_guard));
	in_guard->start = sr_u64(p);
	in_guard->slot = slot;
	in_guard->nslots = nslots;
	in_guard->guard = PG;
	ret = sr_ioctl(self->fd, STACKRES_IOC_ARENA, in_guard);
	EXPECT_EQ(-EFAULT, ret);
	ret = sr_query_addr(self->fd, sr_u64(p + slot + PG), &q);
	EXPECT_EQ(-ENOENT, ret) {
		TH_LOG("ARENA said EFAULT but arena %u is live", q.id);
	}
	EXPECT_EQ(0, hb_guard_pages(sr_u64(p), slot, nslots, PG));
	EXPECT_EQ(0, hb_arena(self->fd, &a, sr_u64(p), slot, nslots, PG, 0));
	EXPECT_EQ(nslots, hb_guard_pages(sr_u64(p), slot, nslots, PG));
}

/* ---- CPUs without NX ---- */

/* Does the first "flags" line of /proc/cpuinfo name nx? */
static bool hb_cpuinfo_nx(void)
{
	static char buf[64 * 1024];
	char *f, *end, *tok, *save = NULL;

	if (sr_read_file("/proc/cpuinfo", buf, sizeof(buf)) <= 0)
		return false;
	f = strstr(buf, "\nflags");
	if (f)
		f = strchr(f, ':');
	if (!f)
		return false;
	end = strchr(f, '\n');
	if (end)
		*end = 0;
	for (tok = strtok_r(f + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (!strcmp(tok, "nx"))
			return true;
	return false;
}

/*
 * The kernel uses NX (and trusts the error code's instruction fetch bit)
 * exactly when the CPU has it, which /proc/cpuinfo shows.  (Executing a
 * PROT_READ page is no probe for it: TCG's i386 target runs such a page
 * although the guest kernel uses NX.)
 */
#define LOG_NX_MODE(_nx) do {						\
	const char *_e = getenv("HARDENING_EXPECT_NONX");		\
	TH_LOG("mode: %s", (_nx) ?					\
	       "NX: instruction fetches are marked in the error code" :	\
	       "no NX: the kernel guesses instruction fetches from ip");	\
	if (_e && atoi(_e))						\
		ASSERT_FALSE(_nx) TH_LOG("this run is meant for a CPU without NX"); \
} while (0)

/*
 * The last bytes of an executable page hold a store whose target is the
 * first byte of the next page, the bottom of a reservation (guard 0,
 * commit 0): address - ip is 3, less than an instruction's 15 bytes.
 */
#if defined(__x86_64__)
/* mov %edi,(%rsi); ret */
static const uint8_t store_code[] = { 0x89, 0x3e, 0xc3 };
#define STORE_AT	0
#else
/* mov 4(%esp),%eax; mov 8(%esp),%edx; mov %eax,(%edx); ret */
static const uint8_t store_code[] = { 0x8b, 0x44, 0x24, 0x04, 0x8b, 0x54, 0x24, 0x08,
				      0x89, 0x02, 0xc3 };
#define STORE_AT	8
#endif

TEST_F(hard, write_next_to_ip_grows)
{
	char *m = sr_map_isolated(2 * PG, PROT_READ | PROT_WRITE);
	char *res = m + PG, *code = res - sizeof(store_code);
	void (*store)(uint32_t v, void *to) = (void (*)(uint32_t, void *))code;
	struct stackres_event ev[4];
	struct stackres_query q;
	struct stackres_reg r;
	bool nx = hb_cpuinfo_nx(), faulted;

	LOG_NX_MODE(nx);
	ASSERT_TRUE(m != NULL);
	ASSERT_EQ(3, sr_u64(res) - sr_u64(code + STORE_AT));
	memcpy(code, store_code, sizeof(store_code));
	ASSERT_EQ(0, mprotect(m, PG, PROT_READ | PROT_EXEC));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, res, PG, 0, 0, 0, 0,
				  STACKRES_NOTIFY_GROW));
	faulted = SR_TRY(store(0x5eed1234, res));
	EXPECT_FALSE(faulted) {
		TH_LOG("the store at ip %p to %p was taken for an instruction fetch: signal %d code %d addr %#llx",
		       code + STORE_AT, res, sr_sig.signo, sr_sig.code,
		       (unsigned long long)sr_sig.addr);
	}
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(PG, q.committed);
	EXPECT_EQ(1, q.grow_faults);
	ASSERT_EQ(1, sr_read_events(self->fd, ev, 4));
	EXPECT_EQ(STACKRES_EV_GROW, ev[0].type);
	EXPECT_EQ(sr_u64(res), ev[0].addr);
	if (!faulted)
		EXPECT_EQ(0x5eed1234, *(volatile uint32_t *)res);
}

/*
 * Instruction fetches never grow: a jump to the uncommitted bottom of a
 * reservation, and an instruction that starts at the end of an executable
 * page and continues into a reservation (the fetch fault is 1 byte after
 * ip), are SIGSEGV SEGV_ACCERR at the reservation's first byte, with
 * nothing committed and no record.
 */
TEST_F(hard, fetch_never_grows)
{
	char *m = sr_map_isolated(3 * PG, PROT_READ | PROT_WRITE);
	char *res = m + PG;
	struct stackres_event ev[4];
	struct stackres_query q;
	struct stackres_reg r;
	bool nx = hb_cpuinfo_nx();
	int i;

	LOG_NX_MODE(nx);
	ASSERT_TRUE(m != NULL);
	/* A 2-byte instruction whose second byte lies in the reservation. */
	memset(m, 0x90, PG);		/* nop */
	m[PG - 1] = (char)0x89;		/* mov %eax, <modrm in the next page> */
	ASSERT_EQ(0, mprotect(m, PG, PROT_READ | PROT_EXEC));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, res, 2 * PG, 0, 0, 0, 0,
				  STACKRES_NOTIFY_GROW));
	for (i = 0; i < 2; i++) {
		void (*jump)(void) = (void (*)(void))(i ? m + PG - 1 : res);

		ASSERT_TRUE(SR_TRY(jump())) TH_LOG("case %d ran", i);
		EXPECT_EQ(SIGSEGV, sr_sig.signo);
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		EXPECT_EQ(sr_u64(res), sr_sig.addr) TH_LOG("case %d", i);
		ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
		EXPECT_EQ(0, q.committed);
		EXPECT_EQ(0, q.grow_faults);
		EXPECT_EQ(-EAGAIN, sr_read_events(self->fd, ev, 4));
	}
}

TEST_HARNESS_MAIN
