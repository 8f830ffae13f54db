// SPDX-License-Identifier: GPL-2.0
/*
 * Dense mode (STACKRES_IOC_ARENA): one mapping cut into equal slots, each a
 * stack with guard markers at its bottom, so that many stacks cost a
 * handful of VMAs instead of two each.
 *
 * - errors: every bad field is EINVAL, a shared mapping ENXIO, an overlap
 *   EEXIST, a bad pointer EFAULT, mlock()ed memory EINVAL, and
 *   /proc/self/maps is unchanged.
 * - a sample of slots grows to its limit; one byte further is SIGSEGV at
 *   that exact address with the marker's SEGV_MAPERR, an OVERFLOW record
 *   (arena id, this thread, that address) and QUERY by the address naming
 *   the slot; a kernel access to a guard is EFAULT and a record too.
 * - TRIM frees a slot's pages below sp - keep, keeps its guard, and the
 *   slot grows again (zero-filled).
 * - ARENA on used memory in several VMAs (and a huge page): each guard
 *   page is a marker, every other page keeps its data.
 * - scale: 100,000 slots of 64 KiB for x86_64 tasks (16,384 for 32-bit
 *   tasks: 1 GiB, a test scale, not the limit), 10,000 (resp. 1,638) of
 *   them touched, in at most two more VMAs; page-table memory per slot is
 *   printed.
 * - lifecycle: fork copies the guards (the child's access is SEGV_MAPERR)
 *   but not the arena (EPERM); munmap of one slot ends the arena; after
 *   UNREGISTER the guards stay, without records.
 *
 * The million-slot run is dense_million (make dense-million).
 */
#include <sys/wait.h>
#include "stackres_util.h"

#define SLOT	(64 * KIB)

/* /proc/pid/pagemap: a guard marker. */
#define PM_GUARD_REGION	(1ULL << 58)

FIXTURE(dense) {
	int fd;
};

FIXTURE_SETUP(dense)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(dense)
{
	if (self->fd >= 0)
		close(self->fd);
}

static int arena(int fd, struct stackres_arena *a, uint64_t start, uint64_t slot,
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

/* Is the page at @a a guard marker, according to /proc/self/pagemap? */
static int is_guard(uint64_t a)
{
	uint64_t e;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &e, sizeof(e), (off_t)(a / PG * sizeof(e)));
	close(fd);
	if (n != sizeof(e))
		return -1;
	return !!(e & PM_GUARD_REGION);
}

/* The VMAs of this process that intersect [start, end). */
static int vmas_in(uint64_t start, uint64_t end)
{
	static char buf[SR_MAPS_SIZE];
	unsigned long long vs, ve;
	int n = 0;
	char *l;

	if (sr_read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		return -1;
	for (l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (sscanf(l, "%llx-%llx", &vs, &ve) == 2 && vs < end && ve > start)
			n++;
	return n;
}

/* VmPTE of /proc/self/status, in KiB. */
static long vm_pte_kb(void)
{
	static char buf[8192];
	char *p;

	if (sr_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	p = strstr(buf, "VmPTE:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

TEST_F(dense, errors_change_nothing)
{
	const uint64_t len = 4 * SLOT;
	char *shared = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *p = sr_map_isolated(len, PROT_READ | PROT_WRITE);
	struct stackres_arena a;
	struct stackres_reg r;
	uint64_t s;

	ASSERT_NE(MAP_FAILED, shared);
	ASSERT_NE(NULL, p);
	s = sr_u64(p);
	ASSERT_EQ(0, sr_snap_maps(0));
	ASSERT_EQ(0, sr_snap_maps(1));
	ASSERT_TRUE(sr_maps_same()) TH_LOG("maps not stable between two reads");
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, 4, PG, 1U << 7));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, 4, PG, STACKRES_POPULATE));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s + 1, SLOT, 4, PG, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT + 1, 4, PG, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, 4, PG + 1, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, 0, 4, PG, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, 0, PG, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, 4, SLOT, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, ~0ULL / 2, PG, 0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, 0, SLOT, ~0ULL / SLOT, PG,
				 STACKRES_MAP));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, ~0ULL << 20, SLOT, 4, PG, 0));
	/* Not private anonymous memory; a hole */
	EXPECT_EQ(-ENXIO, arena(self->fd, &a, sr_u64(shared), SLOT, 4, PG, 0));
	EXPECT_EQ(-ENXIO, arena(self->fd, &a, s, SLOT, 5, PG, 0));
	EXPECT_EQ(-EFAULT, sr_ioctl(self->fd, STACKRES_IOC_ARENA, (void *)8));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	/* mlock()ed memory takes no guard markers: EINVAL before any change */
	ASSERT_EQ(0, mprotect(p, PG, PROT_NONE));
	ASSERT_EQ(0, mlock(p + PG, PG));
	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(-EINVAL, arena(self->fd, &a, s, SLOT, 4, PG, 0));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	ASSERT_EQ(0, munlock(p + PG, PG));
	ASSERT_EQ(0, mprotect(p, PG, PROT_READ | PROT_WRITE));
	/* Overlapping a reservation; a fixed STACKRES_MAP on used memory */
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p + 3 * SLOT, SLOT, PG, PG, 0, 0, 0));
	ASSERT_EQ(0, sr_snap_maps(0));
	EXPECT_EQ(-EEXIST, arena(self->fd, &a, s, SLOT, 4, PG, 0));
	EXPECT_EQ(-EEXIST, arena(self->fd, &a, s, SLOT, 4, PG, STACKRES_MAP));
	ASSERT_EQ(0, sr_snap_maps(1));
	EXPECT_TRUE(sr_maps_same());
	ASSERT_EQ(0, sr_unregister(self->fd, r.id));
	/* Nothing was guarded by the failed calls. */
	EXPECT_EQ(0, is_guard(s));
	EXPECT_EQ(0, is_guard(s + SLOT));
	munmap(p, len);
	munmap(shared, len);
}

/* Write every page of the slot from its top down to its guard. */
static bool fill_slot(uint64_t slot, uint64_t guard)
{
	uint64_t a;

	for (a = slot + SLOT - 1; a >= slot + guard && a < slot + SLOT; a -= PG)
		if (SR_TRY(SR_WRITE(a, sr_pattern(a))))
			return false;
	/* the lowest byte above the guard */
	return !SR_TRY(SR_WRITE(slot + guard, 1));
}

TEST_F(dense, slots_grow_to_the_guard_then_overflow)
{
	const uint64_t n = 64, guard = 2 * PG;
	const uint64_t sample[] = { 0, 1, 17, 31, 32, 62, 63 };
	struct stackres_arena a;
	struct stackres_event ev[4];
	struct stackres_query q;
	unsigned int i;

	ASSERT_EQ(0, arena(self->fd, &a, 0, SLOT, n, guard, STACKRES_MAP));
	ASSERT_NE(0, a.id);
	ASSERT_NE(0, a.start);
	EXPECT_EQ(1, vmas_in(a.start, a.start + n * SLOT));
	ASSERT_EQ(0, sr_query(self->fd, a.id, &q));
	EXPECT_EQ(a.start, q.start);
	EXPECT_EQ(n * SLOT, q.len);
	EXPECT_EQ(guard, q.guard);
	EXPECT_EQ(0, q.flags & STACKRES_QUERY_SLOT);
	EXPECT_EQ(n * (SLOT - guard), q.committed);

	for (i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
		uint64_t slot = a.start + sample[i] * SLOT, bad = slot + guard - 1;

		EXPECT_EQ(1, is_guard(slot)) TH_LOG("slot %llu", (unsigned long long)sample[i]);
		EXPECT_EQ(1, is_guard(slot + PG));
		EXPECT_EQ(0, is_guard(slot + guard));
		ASSERT_TRUE(fill_slot(slot, guard)) TH_LOG("slot %llu: fault at %#llx",
			(unsigned long long)sample[i], (unsigned long long)sr_sig.addr);

		/* One byte further: the marker's SIGSEGV at that address */
		ASSERT_TRUE(SR_TRY(SR_WRITE(bad, 1)));
		EXPECT_EQ(SIGSEGV, sr_sig.signo);
		EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
		EXPECT_EQ(bad, sr_sig.addr);
		ASSERT_EQ(1, sr_read_events(self->fd, ev, 4));
		EXPECT_EQ(STACKRES_EV_OVERFLOW, ev[0].type);
		EXPECT_EQ(a.id, ev[0].id);
		EXPECT_EQ((__u32)sr_gettid(), ev[0].tid);
		EXPECT_EQ(bad, ev[0].addr);
		EXPECT_EQ(SLOT - guard, ev[0].committed);
		EXPECT_EQ(0, ev[0].err);
		/* QUERY by that address names the slot */
		ASSERT_EQ(0, sr_query_addr(self->fd, bad, &q));
		EXPECT_EQ(a.id, q.id);
		EXPECT_EQ(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT, q.flags);
		EXPECT_EQ(slot, q.start);
		EXPECT_EQ(SLOT, q.len);
		EXPECT_EQ(guard, q.guard);
		EXPECT_EQ(SLOT - guard, q.committed);
		EXPECT_EQ(2 * i + 1, q.overflows);	/* per arena: a write, a read */
		/* The contents survived, and reads of the guard fault too */
		EXPECT_EQ(sr_pattern(slot + SLOT - 1), *(volatile uint8_t *)sr_ptr(slot + SLOT - 1));
		ASSERT_TRUE(SR_TRY(SR_READ(slot)));
		EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
		EXPECT_EQ(slot, sr_sig.addr);
		ASSERT_EQ(1, sr_read_events(self->fd, ev, 4));
		EXPECT_EQ(slot, ev[0].addr);
	}
	/* Still one VMA: no split anywhere */
	EXPECT_EQ(1, vmas_in(a.start, a.start + n * SLOT));
	munmap(sr_ptr(a.start), n * SLOT);
}

TEST_F(dense, kernel_access_to_a_guard_is_efault_and_a_record)
{
	struct stackres_arena a;
	struct stackres_event ev[4];
	int pfd[2];

	ASSERT_EQ(0, arena(self->fd, &a, 0, SLOT, 4, PG, STACKRES_MAP));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(4, write(pfd[1], "over", 4));
	/*
	 * read() into the guard of slot 2.  Four bytes: x86_64's copy_to_user
	 * retries a failed copy of 8 bytes or more byte by byte, which faults
	 * twice (Documentation/stackres-internals.rst).
	 */
	EXPECT_EQ(-1, read(pfd[0], sr_ptr(a.start + 2 * SLOT + 100), 4));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(1, sr_read_events(self->fd, ev, 4));
	EXPECT_EQ(STACKRES_EV_OVERFLOW, ev[0].type);
	EXPECT_EQ(a.id, ev[0].id);
	EXPECT_EQ(a.start + 2 * SLOT + 100, ev[0].addr);
	/* the same read into the slot above its guard works */
	EXPECT_EQ(4, read(pfd[0], sr_ptr(a.start + 2 * SLOT + PG), 4));
	EXPECT_EQ(0, memcmp(sr_ptr(a.start + 2 * SLOT + PG), "over", 4));
	EXPECT_EQ(0, sr_read_events(self->fd, ev, 4) > 0);
	close(pfd[0]);
	close(pfd[1]);
	munmap(sr_ptr(a.start), 4 * SLOT);
}

TEST_F(dense, trim_frees_below_sp_and_keeps_the_guard)
{
	const uint64_t guard = PG, pages = (SLOT - guard) / PG;
	struct stackres_arena a;
	struct stackres_event ev[2];
	uint64_t slot, sp;

	ASSERT_EQ(0, arena(self->fd, &a, 0, SLOT, 8, guard, STACKRES_MAP));
	slot = a.start + 5 * SLOT;
	ASSERT_TRUE(fill_slot(slot, guard));
	ASSERT_TRUE(fill_slot(slot - SLOT, guard));
	EXPECT_EQ((long)pages, sr_resident(sr_ptr(slot + guard), SLOT - guard));

	/* sp in the middle, keep one page: 6 pages above sp - keep stay */
	sp = slot + SLOT - 5 * PG - 100;
	ASSERT_EQ(0, sr_trim(self->fd, a.id, sp, PG));
	EXPECT_EQ(7, sr_resident(sr_ptr(slot + guard), SLOT - guard));
	EXPECT_EQ(0, sr_resident(sr_ptr(slot + guard), (sp - PG) / PG * PG - slot - guard));
	/* the neighbour below is untouched, the guard is still a guard */
	EXPECT_EQ((long)pages, sr_resident(sr_ptr(slot - SLOT + guard), SLOT - guard));
	EXPECT_EQ(1, is_guard(slot));
	ASSERT_TRUE(SR_TRY(SR_WRITE(slot + guard - 1, 1)));
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	ASSERT_EQ(1, sr_read_events(self->fd, ev, 2));
	/* it grows again, zero-filled, and the kept pages kept their data */
	EXPECT_EQ(0, *(volatile uint8_t *)sr_ptr(slot + guard));
	EXPECT_EQ(sr_pattern(slot + SLOT - 1), *(volatile uint8_t *)sr_ptr(slot + SLOT - 1));
	ASSERT_TRUE(fill_slot(slot, guard));

	/* sp at the slot's top trims all of it; sp in a guard is EINVAL */
	ASSERT_EQ(0, sr_trim(self->fd, a.id, slot + SLOT, 0));
	EXPECT_EQ(0, sr_resident(sr_ptr(slot + guard), SLOT - guard));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, a.id, slot + guard - 1, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, a.id, a.start, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, a.id, a.start + 8 * SLOT + PG, 0));
	EXPECT_EQ(0, sr_trim(self->fd, a.id, slot + guard, 0));
	EXPECT_EQ(1, is_guard(slot));
	munmap(sr_ptr(a.start), 8 * SLOT);
}

/*
 * ARENA on memory the task has used, in several VMAs, with a transparent
 * huge page where the system gives one: every page of every guard becomes
 * a marker (its page thrown away, a huge page split first), and every page
 * above the guards keeps its data.  Slots of 5 pages with 2-page guards
 * straddle page-table boundaries.
 */
TEST_F(dense, guards_on_used_memory_in_several_vmas)
{
	const uint64_t slot = 5 * PG, guard = 2 * PG, huge = 2 * MIB;
	const uint64_t n = 6 * MIB / slot, len = n * slot;
	char *m = sr_map_isolated(len + huge, PROT_READ | PROT_WRITE);
	uint64_t s, a, *pm;
	struct stackres_arena ar;
	int fd, vmas;

	ASSERT_NE(NULL, m);
	s = (sr_u64(m) + huge - 1) / huge * huge;
	/* A huge page at the start (if THP allows), two more VMAs inside */
	madvise(sr_ptr(s), 2 * huge, MADV_HUGEPAGE);
	ASSERT_EQ(0, madvise(sr_ptr(s + 2 * huge + 3 * PG), huge + 4 * PG,
			     MADV_DONTFORK));
	for (a = s; a < s + len; a += PG)
		SR_WRITE(a, sr_pattern(a));
	vmas = vmas_in(s, s + len);
	EXPECT_LE(3, vmas);

	ASSERT_EQ(0, arena(self->fd, &ar, s, slot, n, guard, 0));
	EXPECT_EQ(vmas, vmas_in(s, s + len));

	pm = malloc(len / PG * sizeof(*pm));
	ASSERT_NE(NULL, pm);
	fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)(len / PG * sizeof(*pm)),
		  pread(fd, pm, len / PG * sizeof(*pm), (off_t)(s / PG * sizeof(*pm))));
	close(fd);
	for (a = s; a < s + len; a += PG) {
		bool in_guard = (a - s) % slot < guard;

		ASSERT_EQ(in_guard, !!(pm[(a - s) / PG] & PM_GUARD_REGION))
			TH_LOG("page %#llx, slot %llu", (unsigned long long)a,
			       (unsigned long long)((a - s) / slot));
		if (!in_guard)
			ASSERT_EQ(sr_pattern(a), *(volatile uint8_t *)sr_ptr(a))
				TH_LOG("page %#llx lost its data", (unsigned long long)a);
	}
	free(pm);
	/* A guard in the middle is a guard */
	ASSERT_TRUE(SR_TRY(SR_WRITE(s + (n / 2) * slot + guard - 1, 1)));
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	ASSERT_EQ(0, sr_unregister(self->fd, ar.id));
	munmap(m, len + huge);
}

TEST_F_TIMEOUT(dense, scale_in_a_handful_of_vmas, 300)
{
	const uint64_t n = sr_is_64bit_task() ? 100000 : 16384, every = 10;
	long pte0, pte1, maps0, maps1;
	struct stackres_arena a;
	struct stackres_query q;
	uint64_t i, touched = 0;

	maps0 = sr_map_count();
	pte0 = vm_pte_kb();
	ASSERT_EQ(0, arena(self->fd, &a, 0, SLOT, n, PG, STACKRES_MAP))
		TH_LOG("%llu slots of 64 KiB", (unsigned long long)n);
	for (i = 0; i < n; i += every, touched++)
		*(volatile char *)sr_ptr(a.start + (i + 1) * SLOT - 1) = 1;
	maps1 = sr_map_count();
	pte1 = vm_pte_kb();
	EXPECT_GE(maps0 + 2, maps1);
	EXPECT_EQ(1, vmas_in(a.start, a.start + n * SLOT));
	/* Page tables: one PTE page per 32 slots of 64 KiB, plus upper levels */
	EXPECT_GE((long)(n / 32 * 4 * 2), pte1 - pte0);
	printf("# %llu slots of 64 KiB (%llu touched): %ld VMAs more, page tables %ld KiB = %.0f bytes/slot\n",
	       (unsigned long long)n, (unsigned long long)touched, maps1 - maps0,
	       pte1 - pte0, (pte1 - pte0) * 1024.0 / n);
	/* The last slot works as the first does */
	ASSERT_EQ(0, sr_query_addr(self->fd, a.start + n * SLOT - 1, &q));
	EXPECT_EQ(a.start + (n - 1) * SLOT, q.start);
	ASSERT_TRUE(SR_TRY(SR_WRITE(a.start + (n - 1) * SLOT + PG - 1, 1)));
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	EXPECT_EQ(a.start + (n - 1) * SLOT + PG - 1, sr_sig.addr);
	EXPECT_EQ(0, munmap(sr_ptr(a.start), n * SLOT));
	EXPECT_EQ(-ENOENT, sr_query(self->fd, a.id, &q));
}

TEST_F(dense, lifecycle)
{
	struct stackres_arena a;
	struct stackres_event ev[2];
	struct stackres_query q;
	int status;
	pid_t pid;

	ASSERT_EQ(0, arena(self->fd, &a, 0, SLOT, 4, PG, STACKRES_MAP));
	/* fork: the child has the guards, not the arena */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct stackres_arena b;

		if (!SR_TRY(SR_WRITE(a.start + SLOT + 10, 1)) || sr_sig.code != SEGV_MAPERR ||
		    sr_sig.addr != a.start + SLOT + 10)
			_exit(1);
		if (SR_TRY(SR_WRITE(a.start + SLOT + PG, 1)))
			_exit(2);
		if (sr_query(self->fd, a.id, &q) != -EPERM ||
		    arena(self->fd, &b, 0, SLOT, 4, PG, STACKRES_MAP) != -EPERM)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* the child's overflow is not the parent's record */
	EXPECT_EQ(0, sr_read_events(self->fd, ev, 2) > 0);

	/* UNREGISTER: guards stay, records stop */
	ASSERT_EQ(0, sr_unregister(self->fd, a.id));
	ASSERT_TRUE(SR_TRY(SR_WRITE(a.start + 3 * SLOT, 1)));
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	EXPECT_EQ(0, sr_read_events(self->fd, ev, 2) > 0);
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, a.start, &q));
	munmap(sr_ptr(a.start), 4 * SLOT);

	/* munmap of one slot ends the arena; the range can be used again */
	ASSERT_EQ(0, arena(self->fd, &a, 0, SLOT, 4, PG, STACKRES_MAP));
	ASSERT_EQ(0, munmap(sr_ptr(a.start + SLOT), SLOT));
	EXPECT_EQ(-ENOENT, sr_query(self->fd, a.id, &q));
	EXPECT_EQ(-ENOENT, sr_query_addr(self->fd, a.start + 3 * SLOT, &q));
	ASSERT_EQ(0, arena(self->fd, &a, a.start + 2 * SLOT, SLOT, 2, PG, 0));
	ASSERT_EQ(0, sr_query_addr(self->fd, a.start + SLOT + 5, &q));
	EXPECT_EQ(a.start + SLOT, q.start);
	munmap(sr_ptr(a.start - 2 * SLOT), 4 * SLOT);
}

TEST_HARNESS_MAIN
