// SPDX-License-Identifier: GPL-2.0
/*
 * The heavy dense-mode run (make dense-million; not part of make check):
 * 1,000,000 slots of 64 KiB in one x86_64 process (64 GiB of address
 * space), 100,000 of them touched; for 32-bit tasks as many slots as the
 * address space allows (at least 16,384, i.e. 1 GiB), a tenth of
 * them touched.  A sample of slots grows to its limit and overflows by one
 * byte: SIGSEGV/SEGV_MAPERR at that address and an OVERFLOW record naming
 * it.  Prints the VMAs, page tables and time it took.
 * DENSE_SLOTS=N overrides the number of slots.
 */
#include <time.h>
#include "stackres_util.h"

#define SLOT	(64 * KIB)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long status_kb(const char *key)
{
	static char buf[8192];
	char *p;

	if (sr_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

FIXTURE(million) {
	int fd;
};

FIXTURE_SETUP(million)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
}

FIXTURE_TEARDOWN(million)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F_TIMEOUT(million, slots, 1800)
{
	const char *env = getenv("DENSE_SLOTS");
	uint64_t n = env ? strtoull(env, NULL, 0) :
		sr_is_64bit_task() ? 1000000 : 3ULL * 1024 * MIB / SLOT;
	const uint64_t min = sr_is_64bit_task() ? 1000000 : 16384;
	struct stackres_arena a = { 0 };
	struct stackres_event ev[2];
	struct stackres_query q;
	long maps0, pte0, maps1, pte1;
	uint64_t i, touched = 0, step, checked = 0;
	double t0, t1, t2;
	int err;

	maps0 = sr_map_count();
	pte0 = status_kb("VmPTE:");
	t0 = now();
	/* 32-bit: shrink by 1/16 until the address space has room */
	for (;;) {
		memset(&a, 0, sizeof(a));
		a.slot = SLOT;
		a.nslots = n;
		a.guard = PG;
		a.flags = STACKRES_MAP;
		err = sr_ioctl(self->fd, STACKRES_IOC_ARENA, &a);
		if (!err || err != -ENOMEM || env || sr_is_64bit_task())
			break;
		n -= n / 16;
	}
	ASSERT_EQ(0, err) TH_LOG("%llu slots", (unsigned long long)n);
	t1 = now();
	ASSERT_LE(min, n);
	for (i = 0; i < n; i += 10, touched++)
		*(volatile char *)sr_ptr(a.start + (i + 1) * SLOT - 1) = 1;
	t2 = now();
	maps1 = sr_map_count();
	pte1 = status_kb("VmPTE:");
	EXPECT_GE(maps0 + 2, maps1);

	/* 64 slots spread over the arena: fill, then one byte further */
	step = n / 64 ? n / 64 : 1;
	for (i = 0; i < n; i += step, checked++) {
		uint64_t s = a.start + i * SLOT, p;

		for (p = s + SLOT - PG; p >= s + PG; p -= PG)
			ASSERT_FALSE(SR_TRY(SR_WRITE(p, 1))) TH_LOG("slot %llu", (unsigned long long)i);
		ASSERT_TRUE(SR_TRY(SR_WRITE(s + PG - 1, 1)));
		ASSERT_EQ(SEGV_MAPERR, sr_sig.code);
		ASSERT_EQ(s + PG - 1, sr_sig.addr);
		ASSERT_EQ(1, sr_read_events(self->fd, ev, 2));
		ASSERT_EQ(STACKRES_EV_OVERFLOW, ev[0].type);
		ASSERT_EQ(a.id, ev[0].id);
		ASSERT_EQ(s + PG - 1, ev[0].addr);
		ASSERT_EQ(0, sr_query_addr(self->fd, ev[0].addr, &q));
		ASSERT_EQ(s, q.start);
		ASSERT_EQ(i, (q.start - a.start) / SLOT);
	}
	printf("# %llu slots of 64 KiB (%.1f GiB) in %ld more VMA(s); ARENA %.2f s (%.1f us/slot); "
	       "%llu touched in %.2f s; page tables %ld KiB (%.0f bytes/slot); %llu slots overflowed on purpose\n",
	       (unsigned long long)n, n * (double)SLOT / (1 << 30), maps1 - maps0,
	       t1 - t0, (t1 - t0) * 1e6 / n, (unsigned long long)touched, t2 - t1,
	       pte1 - pte0, (pte1 - pte0) * 1024.0 / n, (unsigned long long)checked);
	t0 = now();
	EXPECT_EQ(0, munmap(sr_ptr(a.start), n * SLOT));
	printf("# munmap %.2f s\n", now() - t0);
}

TEST_HARNESS_MAIN
