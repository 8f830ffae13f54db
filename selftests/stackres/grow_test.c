// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres: growth in the fault path.  User accesses and kernel
 * accesses (read()/write() on a pipe, signal frames) below the committed
 * bottom grow the stack by the documented rule and never signal; guard hits
 * and instruction fetches do signal, with the exact address; TRIM gives
 * pages back; threads grow concurrently.
 */
#include "stackres_util.h"
#include <linux/futex.h>
#include <ucontext.h>

/* ---------------------------------------------------------------------- */
/* 8 MiB touched top-down, for several chunk / commit / populate settings. */

FIXTURE(grow8m) {
	int fd;
};

FIXTURE_VARIANT(grow8m) {
	uint64_t chunk, commit;
	__u32 flags;
};

FIXTURE_VARIANT_ADD(grow8m, default_chunk) { .chunk = 0, .commit = 0 };
FIXTURE_VARIANT_ADD(grow8m, chunk_4k) { .chunk = 4096, .commit = 0 };
FIXTURE_VARIANT_ADD(grow8m, chunk_256k) { .chunk = 256 * 1024, .commit = 0 };
FIXTURE_VARIANT_ADD(grow8m, chunk_3m) { .chunk = 3 * 1024 * 1024, .commit = 0 };
FIXTURE_VARIANT_ADD(grow8m, commit_1m) { .chunk = 0, .commit = 1024 * 1024 };
FIXTURE_VARIANT_ADD(grow8m, populate) { .chunk = 0, .commit = 0,
					 .flags = STACKRES_POPULATE };
FIXTURE_VARIANT_ADD(grow8m, populate_commit) { .chunk = 128 * 1024, .commit = 64 * 1024,
						.flags = STACKRES_POPULATE };

FIXTURE_SETUP(grow8m)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
	sr_handler_fd = self->fd;
}

FIXTURE_TEARDOWN(grow8m)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(grow8m, topdown)
{
	const uint64_t len = 8 * MIB, guard = 64 * KIB;
	bool pop = variant->flags & STACKRES_POPULATE;
	struct stackres_query q;
	struct stackres_reg r;
	struct sr_model m;
	uint64_t a, top, floor;
	char *p;

	p = sr_map_isolated(len, PROT_NONE);
	ASSERT_NE(0, sr_u64(p));
	ASSERT_EQ(0, sr_reg_range(self->fd, &r, p, len, guard, variant->commit,
				  variant->chunk, 0, variant->flags));
	sr_model_init(&m, &r);
	top = r.start + len;
	floor = r.start + guard;
	EXPECT_EQ(pop ? (long)(variant->commit / PG) : 0, sr_resident(p, len));

	/* The top byte: inside the initial commit, or the first growth step. */
	sr_model_touch(&m, top - 1);
	*(volatile char *)sr_ptr(top - 1) = 1;
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(sr_model_committed(&m), q.committed);
	EXPECT_EQ(m.steps, q.grow_faults);
	/* Committing does not populate, unless asked to. */
	EXPECT_EQ(pop ? (long)(q.committed / PG) : 1, sr_resident(p, len));

	/* Every page, top-down, with a pattern. */
	for (a = top - PG; a >= floor; a -= PG) {
		sr_model_touch(&m, a);
		memset(sr_ptr(a), sr_pattern(a), PG);
	}
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(len - guard, q.committed);
	EXPECT_EQ(len - guard, q.peak);
	EXPECT_EQ(m.steps, q.grow_faults);
	EXPECT_EQ(0, q.overflows);
	EXPECT_EQ((long)((len - guard) / PG), sr_resident(p, len));
	for (a = floor; a < top; a += PG) {
		uint8_t *b = sr_ptr(a);

		if (b[0] != sr_pattern(a) || b[PG / 3] != sr_pattern(a) ||
		    b[PG - 1] != sr_pattern(a)) {
			EXPECT_EQ(sr_pattern(a), b[0])
				TH_LOG("pattern lost at start + %llu",
				       (unsigned long long)(a - r.start));
			break;
		}
	}

	/* One byte further is the guard. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(floor - 1, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(floor - 1, sr_sig.addr);
	ASSERT_EQ(0, sr_query(self->fd, r.id, &q));
	EXPECT_EQ(1, q.overflows);
	EXPECT_EQ(len - guard, q.committed);
}

/* ---------------------------------------------------------------------- */

FIXTURE(grow) {
	int fd;
	char *p;
	uint64_t len;
	struct stackres_reg r;
	struct sr_model m;
};

FIXTURE_SETUP(grow)
{
	SR_OPEN_OR_SKIP(self->fd, O_NONBLOCK);
	ASSERT_EQ(0, sr_install_fault_handler());
	sr_handler_fd = self->fd;
	self->len = 1 * MIB;
	self->p = sr_map_isolated(self->len, PROT_NONE);
	ASSERT_NE(0, sr_u64(self->p));
}

FIXTURE_TEARDOWN(grow)
{
	if (self->fd >= 0)
		close(self->fd);
}

static int grow_register(FIXTURE_DATA(grow) *self, uint64_t guard, uint64_t commit,
			 uint64_t chunk, __u32 flags)
{
	int ret = sr_reg_range(self->fd, &self->r, self->p, self->len, guard, commit,
			       chunk, 0, flags);

	sr_model_init(&self->m, &self->r);
	return ret;
}

#define EXPECT_MODEL(self) do {							\
	struct stackres_query __q;						\
	ASSERT_EQ(0, sr_query((self)->fd, (self)->r.id, &__q));			\
	EXPECT_EQ(sr_model_committed(&(self)->m), __q.committed);		\
	EXPECT_EQ((self)->m.peak, __q.peak);					\
	EXPECT_EQ((self)->m.steps, __q.grow_faults);				\
} while (0)

TEST_F(grow, deep_touch_commits_down_to_the_page)
{
	uint64_t a;

	ASSERT_EQ(0, grow_register(self, 64 * KIB, 64 * KIB, 0, 0));
	a = self->r.start + 64 * KIB + 5 * PG + 17;
	sr_model_touch(&self->m, a);
	EXPECT_FALSE(SR_TRY(SR_WRITE(a, 9)));
	EXPECT_MODEL(self);
	EXPECT_EQ(self->len - 64 * KIB - 5 * PG, self->m.top - self->m.bottom);
	EXPECT_EQ(1, self->m.steps);
	/* Committed, but only the written page is populated. */
	EXPECT_EQ(1, sr_resident(self->p, self->len));
	/* Zero-filled below and above the touched byte. */
	EXPECT_EQ(0, *(char *)sr_ptr(a - 1));
	EXPECT_EQ(0, *(char *)sr_ptr(self->m.top - 65 * KIB));
}

TEST_F(grow, chunk_stops_at_the_guard)
{
	uint64_t start, a;

	ASSERT_EQ(0, grow_register(self, 64 * KIB, 0, 640 * KIB, 0));
	start = self->r.start;
	sr_model_touch(&self->m, self->m.top - 1);
	EXPECT_FALSE(SR_TRY(SR_WRITE(self->m.top - 1, 1)));
	EXPECT_MODEL(self);
	EXPECT_EQ(640 * KIB, sr_model_committed(&self->m));
	/* The next step would go below the guard: it stops at start + guard. */
	a = self->m.bottom - 1;
	sr_model_touch(&self->m, a);
	EXPECT_FALSE(SR_TRY(SR_WRITE(a, 1)));
	EXPECT_MODEL(self);
	EXPECT_EQ(self->len - 64 * KIB, sr_model_committed(&self->m));
	EXPECT_TRUE(SR_TRY(SR_READ(start + 64 * KIB - 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(start + 64 * KIB - 1, sr_sig.addr);
}

TEST_F(grow, reads_grow_too)
{
	ASSERT_EQ(0, grow_register(self, PG, 0, 0, 0));
	sr_model_touch(&self->m, self->m.top - 3);
	EXPECT_FALSE(SR_TRY(SR_READ(self->m.top - 3)));
	EXPECT_MODEL(self);
	EXPECT_EQ(STACKRES_DEFAULT_CHUNK, sr_model_committed(&self->m));
}

TEST_F(grow, guard_zero_whole_range_grows)
{
	struct stackres_query q;
	uint64_t start;

	ASSERT_EQ(0, grow_register(self, 0, 0, 0, 0));
	start = self->r.start;
	sr_model_touch(&self->m, start);
	EXPECT_FALSE(SR_TRY(SR_WRITE(start, 1)));
	EXPECT_MODEL(self);
	EXPECT_EQ(self->len, sr_model_committed(&self->m));
	/* Below the reservation is a hole: a plain SEGV_MAPERR, no overflow. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(start - 1, 1)));
	EXPECT_EQ(SEGV_MAPERR, sr_sig.code);
	EXPECT_EQ(start - 1, sr_sig.addr);
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(0, q.overflows);
}

/* The user-mode guard hit: SIGSEGV, SEGV_ACCERR, the exact byte, QUERY in the handler. */
TEST_F(grow, guard_hit_user)
{
	uint64_t start, floor;
	struct stackres_query q;

	ASSERT_EQ(0, grow_register(self, 16 * KIB, 0, 0, 0));
	start = self->r.start;
	floor = start + 16 * KIB;
	sr_model_touch(&self->m, floor);
	EXPECT_FALSE(SR_TRY(SR_WRITE(floor, 1)));
	EXPECT_MODEL(self);
	EXPECT_EQ(self->len - 16 * KIB, sr_model_committed(&self->m));

	EXPECT_TRUE(SR_TRY(SR_WRITE(floor - 1, 2)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(floor - 1, sr_sig.addr);
	/* In the handler, on its sigaltstack: the address maps back to us. */
	EXPECT_EQ(0, sr_sig.qret);
	EXPECT_EQ(self->r.id, sr_sig.q.id);
	EXPECT_EQ(start, sr_sig.q.start);
	EXPECT_EQ(self->len, sr_sig.q.len);
	EXPECT_EQ(16 * KIB, sr_sig.q.guard);
	EXPECT_EQ(1, sr_sig.q.overflows);

	/* A read of the lowest byte is a guard hit too. */
	EXPECT_TRUE(SR_TRY(SR_READ(start)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(start, sr_sig.addr);
	EXPECT_EQ(2, sr_sig.q.overflows);

	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(2, q.overflows);
	EXPECT_EQ(self->len - 16 * KIB, q.committed);
	EXPECT_EQ(1, q.grow_faults);
}

/* A guard hit with uncommitted pages above it still is a guard hit. */
TEST_F(grow, guard_hit_below_uncommitted)
{
	uint64_t floor;
	struct stackres_query q;

	ASSERT_EQ(0, grow_register(self, 2 * PG, PG, 0, 0));
	floor = self->r.start + 2 * PG;
	EXPECT_TRUE(SR_TRY(SR_WRITE(floor - 1, 1)));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(floor - 1, sr_sig.addr);
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(PG, q.committed);
	EXPECT_EQ(0, q.grow_faults);
	EXPECT_EQ(1, q.overflows);
}

/* read() from a pipe into the uncommitted part: the kernel's copy grows it. */
TEST_F(grow, kernel_read_grows)
{
	const size_t n = 3 * PG + 100;
	static uint8_t src[4 * 4096 + 200];
	uint64_t buf;
	int pfd[2];
	size_t i;

	ASSERT_EQ(0, grow_register(self, 64 * KIB, 64 * KIB, 0, 0));
	buf = self->r.start + 64 * KIB + 300 * KIB + 123;
	for (i = 0; i < n; i++)
		src[i] = i * 7 + 1;
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ((ssize_t)n, write(pfd[1], src, n));
	/* The copy's first fault is at buf itself. */
	sr_model_touch(&self->m, buf);
	EXPECT_EQ((ssize_t)n, read(pfd[0], sr_ptr(buf), n));
	EXPECT_EQ(0, memcmp(src, sr_ptr(buf), n));
	EXPECT_MODEL(self);
	EXPECT_EQ(1, self->m.steps);
	close(pfd[0]);
	close(pfd[1]);
}

/* write() from the uncommitted part: kernel reads grow it, the data is zeros. */
TEST_F(grow, kernel_write_grows)
{
	static uint8_t dst[2 * 4096];
	const size_t n = 2 * PG;
	uint64_t buf;
	int pfd[2];
	size_t i;

	ASSERT_EQ(0, grow_register(self, 64 * KIB, 0, 0, 0));
	buf = self->m.top - 200 * KIB - 5;
	ASSERT_EQ(0, pipe(pfd));
	sr_model_touch(&self->m, buf);
	EXPECT_EQ((ssize_t)n, write(pfd[1], sr_ptr(buf), n));
	EXPECT_EQ((ssize_t)n, read(pfd[0], dst, n));
	for (i = 0; i < n; i++)
		if (dst[i])
			break;
	EXPECT_EQ(n, i);
	EXPECT_MODEL(self);
	close(pfd[0]);
	close(pfd[1]);
}

/* Plain PROT_NONE memory, or the guard, gives EFAULT to a kernel access. */
TEST_F(grow, kernel_access_efault)
{
	char *plain = sr_map_isolated(4 * PG, PROT_NONE);
	struct stackres_query q;
	int pfd[2];

	ASSERT_NE(0, sr_u64(plain));
	ASSERT_EQ(0, grow_register(self, 64 * KIB, 64 * KIB, 0, 0));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(sizeof(q), write(pfd[1], &q, sizeof(q)));

	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], plain + PG, 100));
	EXPECT_EQ(EFAULT, errno);

	/* Into the guard: EFAULT, an overflow, nothing committed. */
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], sr_ptr(self->r.start + 8 * KIB), 100));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(1, q.overflows);
	EXPECT_EQ(64 * KIB, q.committed);
	EXPECT_EQ(0, q.grow_faults);

	/* After UNREGISTER the uncommitted part is plain PROT_NONE: EFAULT. */
	ASSERT_EQ(0, sr_unregister(self->fd, self->r.id));
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], sr_ptr(self->m.top - 200 * KIB), 100));
	EXPECT_EQ(EFAULT, errno);
	close(pfd[0]);
	close(pfd[1]);
}

/* A signal frame written onto an uncommitted sigaltstack in a reservation. */
static volatile uint64_t handler_local;
static volatile int handler_ran;
static volatile int handler_qret = -1;
static struct stackres_query handler_q;
static int handler_fd = -1;

static void usr1_handler(int sig)
{
	volatile char local = 1;

	handler_local = sr_u64((const void *)&local);
	handler_ran++;
	if (handler_fd >= 0)
		handler_qret = sr_query_addr(handler_fd, handler_local, &handler_q);
}

TEST_F(grow, signal_frame_on_uncommitted_sigaltstack)
{
	struct sigaction sa = { .sa_handler = usr1_handler, .sa_flags = SA_ONSTACK };
	stack_t ss = { 0 }, old;
	struct stackres_query q;

	ASSERT_EQ(0, grow_register(self, 16 * KIB, 0, 0, 0));
	ss.ss_sp = sr_ptr(self->r.start + 16 * KIB);
	ss.ss_size = self->len - 16 * KIB;
	ASSERT_EQ(0, sigaltstack(&ss, &old));
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	handler_fd = self->fd;

	ASSERT_EQ(0, raise(SIGUSR1));
	ASSERT_EQ(0, sigaltstack(&old, NULL));
	EXPECT_EQ(1, handler_ran);
	EXPECT_LT(self->r.start + 16 * KIB, handler_local);
	EXPECT_GT(self->m.top, handler_local);
	EXPECT_EQ(0, handler_qret);
	EXPECT_EQ(self->r.id, handler_q.id);
	/*
	 * The frame and the handler fit in the first chunk: one growth step,
	 * whichever byte the kernel wrote first.
	 */
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(STACKRES_DEFAULT_CHUNK, q.committed);
	EXPECT_EQ(1, q.grow_faults);
	EXPECT_EQ(0, q.overflows);
}

/* A coroutine whose stack pointer is deep in the uncommitted part takes a signal. */
static ucontext_t co_main, co_ctx;

static void co_deep_signal(void)
{
	/* Move the stack pointer ~300 KiB down without touching the memory. */
	char *deep = alloca(300 * 1024);

	/* Keep the allocation: the compiler drops an unused alloca(). */
	asm volatile("" : : "r"(deep) : "memory");
	raise(SIGUSR1);
}

TEST_F(grow, signal_with_sp_deep_in_uncommitted)
{
	struct sigaction sa = { .sa_handler = usr1_handler };
	struct stackres_query q;
	uint64_t lo;

	ASSERT_EQ(0, grow_register(self, 16 * KIB, 0, 0, 0));
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	handler_fd = self->fd;

	ASSERT_EQ(0, getcontext(&co_ctx));
	co_ctx.uc_stack.ss_sp = sr_ptr(self->r.start + 16 * KIB);
	co_ctx.uc_stack.ss_size = self->len - 16 * KIB;
	co_ctx.uc_link = &co_main;
	makecontext(&co_ctx, co_deep_signal, 0);
	ASSERT_EQ(0, swapcontext(&co_main, &co_ctx));

	EXPECT_EQ(1, handler_ran);
	EXPECT_EQ(0, handler_qret);
	EXPECT_EQ(self->r.id, handler_q.id);
	lo = handler_local & ~(PG - 1);
	EXPECT_GT(self->m.top - 300 * KIB, handler_local);
	/* Committed reaches at least the handler's frame, at most one chunk further. */
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_LE(self->m.top - lo, q.committed);
	EXPECT_GE(self->m.top - lo + STACKRES_DEFAULT_CHUNK, q.committed);
	EXPECT_EQ(0, q.overflows);
	EXPECT_LE(2, q.grow_faults);
}

/* Does the CPU refuse to run code from a plain read/write page? */
static bool nx_active(void)
{
	unsigned char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void (*fn)(void) = (void (*)(void))p;
	bool faulted;

	if (p == MAP_FAILED)
		return true;
	p[0] = 0xc3;	/* ret */
	faulted = SR_TRY(fn());
	munmap(p, PG);
	return faulted;
}

/*
 * Instruction fetches never grow a stack (on i386 without NX the hook
 * recognises them from the instruction pointer).
 */
TEST_F(grow, exec_fetch_does_not_grow)
{
	struct stackres_event ev;
	struct stackres_query q;
	uint64_t target;
	void (*fn)(void);

	ASSERT_EQ(0, grow_register(self, 16 * KIB, 64 * KIB, 0, STACKRES_NOTIFY_GROW));
	target = self->r.start + 16 * KIB + 32 * KIB + 64;
	fn = sr_ptr(target);
	EXPECT_TRUE(SR_TRY(fn()));
	EXPECT_EQ(SIGSEGV, sr_sig.signo);
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(target, sr_sig.addr);

	/*
	 * The committed part is not executable either (when the CPU enforces
	 * NX: without it, a plain rw page runs as code); nothing changes.
	 */
	if (nx_active()) {
		target = self->m.top - PG;
		fn = sr_ptr(target);
		EXPECT_TRUE(SR_TRY(fn()));
		EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
		EXPECT_EQ(target, sr_sig.addr);
	} else {
		TH_LOG("no NX here: rw memory is executable, committed part not checked");
	}

	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(64 * KIB, q.committed);
	EXPECT_EQ(0, q.grow_faults);
	EXPECT_EQ(0, q.overflows);
	/* No record, although the reservation asked for GROW records. */
	EXPECT_EQ(-1, read(self->fd, &ev, sizeof(ev)));
	EXPECT_EQ(EAGAIN, errno);
	/*
	 * Nothing in the uncommitted part.  (x86 treats a fetch from a
	 * not-present page like a read, so the committed page fetched from
	 * got the zero page before the NX fault: that is not growth.)
	 */
	EXPECT_EQ(0, sr_resident(self->p, self->len - 64 * KIB));
}

/*
 * Paths that do not go through the fault handler: process_vm_readv() and a
 * shared futex pin the page with get_user_pages() and fail with EFAULT on an
 * uncommitted page, committing nothing.  A private FUTEX_WAIT reads the word
 * with get_user(), an ordinary fault, so it grows the stack.
 */
TEST_F(grow, gup_paths)
{
	struct iovec local, remote;
	struct stackres_query q;
	uint32_t buf[4];
	uint64_t a;
	long ret;
	int memfd;

	ASSERT_EQ(0, grow_register(self, 64 * KIB, 64 * KIB, 0, 0));
	a = self->m.top - 300 * KIB;

	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = sr_ptr(a);
	remote.iov_len = sizeof(buf);
	errno = 0;
	ret = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (ret < 0 && errno == ENOSYS)
		TH_LOG("process_vm_readv not configured");
	else {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EFAULT, errno);
	}

	/* /proc/self/mem (like ptrace) forces access: it reads, commits nothing. */
	memset(buf, 0xff, sizeof(buf));
	memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, memfd);
	EXPECT_EQ((ssize_t)sizeof(buf), pread(memfd, buf, sizeof(buf), (off_t)a));
	EXPECT_EQ(0, buf[0] | buf[1] | buf[2] | buf[3]);
	close(memfd);

	errno = 0;
	ret = syscall(SYS_futex, sr_ptr(a), FUTEX_WAIT, 1, NULL, NULL, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, errno);
	EXPECT_MODEL(self);	/* nothing committed by either */

	/* Private FUTEX_WAIT: the word is read with a plain uaccess, it grows. */
	sr_model_touch(&self->m, a);
	errno = 0;
	ret = syscall(SYS_futex, sr_ptr(a), FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EAGAIN, errno);	/* the word is 0, not 1 */
	EXPECT_MODEL(self);
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(0, q.overflows);
}

/* ---------------------------------------------------------------------- */
/* TRIM */

TEST_F(grow, trim)
{
	const uint64_t guard = 64 * KIB;
	uint64_t a, sp, keep, x, floor;
	char perms[5];
	long rss0, rss1;

	ASSERT_EQ(0, grow_register(self, guard, 0, 0, 0));
	floor = self->r.start + guard;
	for (a = self->m.top - PG; a >= floor; a -= PG) {
		sr_model_touch(&self->m, a);
		memset(sr_ptr(a), sr_pattern(a), PG);
	}
	EXPECT_MODEL(self);
	EXPECT_EQ((long)((self->len - guard) / PG), sr_resident(self->p, self->len));
	rss0 = sr_smaps_rss_kb(self->r.start, self->m.top);
	EXPECT_EQ((long)((self->len - guard) / 1024), rss0);

	/* Pages entirely below sp - keep go; the page holding sp - keep stays. */
	sp = self->r.start + 600 * KIB + 100;
	keep = 3 * PG + 5;
	x = (sp - keep) & ~(PG - 1);
	ASSERT_EQ(0, sr_trim(self->fd, self->r.id, sp, keep));
	sr_model_trim(&self->m, sp, keep);
	EXPECT_MODEL(self);
	EXPECT_EQ(self->m.top - x, sr_model_committed(&self->m));
	EXPECT_EQ((long)((self->m.top - x) / PG), sr_resident(self->p, self->len));
	EXPECT_EQ(0, sr_resident(sr_ptr(floor), x - floor));
	rss1 = sr_smaps_rss_kb(self->r.start, self->m.top);
	EXPECT_EQ((long)((x - floor) / 1024), rss0 - rss1);
	ASSERT_TRUE(sr_vma_at(x - 1, perms, NULL, NULL));
	EXPECT_STREQ("---p", perms);
	ASSERT_TRUE(sr_vma_at(x, perms, NULL, NULL));
	EXPECT_STREQ("rw-p", perms);
	/* Data above is intact. */
	EXPECT_EQ(sr_pattern(x), *(uint8_t *)sr_ptr(x));
	EXPECT_EQ(sr_pattern(sp - keep), *(uint8_t *)sr_ptr(sp - keep));
	EXPECT_EQ(sr_pattern(self->m.top - 1), *(uint8_t *)sr_ptr(self->m.top - 1));

	/* It grows again, with zero-filled pages; peak is not lowered. */
	a = x - 10 * PG - 1;
	sr_model_touch(&self->m, a);
	EXPECT_FALSE(SR_TRY(SR_READ(a)));
	EXPECT_EQ(0, *(uint8_t *)sr_ptr(a));
	EXPECT_EQ(0, *(uint8_t *)sr_ptr(x - 1));
	EXPECT_MODEL(self);
	EXPECT_EQ(self->len - guard, self->m.peak);

	/* sp == start + len trims everything. */
	ASSERT_EQ(0, sr_trim(self->fd, self->r.id, self->m.top, 0));
	sr_model_trim(&self->m, self->m.top, 0);
	EXPECT_MODEL(self);
	EXPECT_EQ(0, sr_model_committed(&self->m));
	EXPECT_EQ(0, sr_resident(self->p, self->len));
	EXPECT_EQ(0, sr_smaps_rss_kb(self->r.start, self->m.top));

	/* And grows from the top again. */
	sr_model_touch(&self->m, self->m.top - 1);
	EXPECT_FALSE(SR_TRY(SR_WRITE(self->m.top - 1, 5)));
	EXPECT_MODEL(self);
	EXPECT_EQ(STACKRES_DEFAULT_CHUNK, sr_model_committed(&self->m));
}

TEST_F(grow, trim_initial_commit_is_not_special)
{
	ASSERT_EQ(0, grow_register(self, PG, 256 * KIB, 0, 0));
	ASSERT_EQ(0, sr_trim(self->fd, self->r.id, self->m.top - 100 * KIB, 0));
	sr_model_trim(&self->m, self->m.top - 100 * KIB, 0);
	EXPECT_MODEL(self);
	EXPECT_EQ(100 * KIB, sr_model_committed(&self->m));
	EXPECT_EQ(256 * KIB, self->m.peak);
}

TEST_F(grow, trim_bounds)
{
	const uint64_t guard = 64 * KIB;
	struct stackres_trim t;
	uint64_t s;

	ASSERT_EQ(0, grow_register(self, guard, 128 * KIB, 0, 0));
	s = self->r.start;
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, self->r.id, s + guard - 1, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, self->r.id, s, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, self->r.id, s + self->len + 1, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, self->r.id, s + self->len + PG, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, self->r.id, 0, 0));
	EXPECT_EQ(-EINVAL, sr_trim(self->fd, self->r.id, ~0ULL, 0));
	EXPECT_MODEL(self);

	memset(&t, 0, sizeof(t));
	t.id = self->r.id;
	t.pad = 1;
	t.sp = s + self->len;
	EXPECT_EQ(-EINVAL, sr_ioctl(self->fd, STACKRES_IOC_TRIM, &t));
	EXPECT_EQ(-ENOENT, sr_trim(self->fd, self->r.id + 77, s + self->len, 0));
	EXPECT_MODEL(self);

	/* The lowest valid sp: nothing above the guard lies below it. */
	EXPECT_EQ(0, sr_trim(self->fd, self->r.id, s + guard, 0));
	EXPECT_MODEL(self);
	/* keep larger than the committed part: nothing to do. */
	EXPECT_EQ(0, sr_trim(self->fd, self->r.id, s + self->len, self->len - guard));
	EXPECT_MODEL(self);
	EXPECT_EQ(128 * KIB, sr_model_committed(&self->m));
}

/* mprotect by the process does not end the reservation. */
TEST_F(grow, mprotect_keeps_reservation)
{
	struct stackres_query q;
	uint64_t floor;

	ASSERT_EQ(0, grow_register(self, 16 * KIB, 16 * KIB, 0, 0));
	floor = self->r.start + 16 * KIB;
	ASSERT_EQ(0, mprotect(sr_ptr(floor), 64 * KIB, PROT_READ | PROT_WRITE));
	/* Accessible by the process's own choice: a plain fault, no growth. */
	EXPECT_FALSE(SR_TRY(SR_WRITE(floor + 5, 1)));
	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(0, q.grow_faults);
	EXPECT_EQ(16 * KIB, q.committed);
	/* Between the two, still PROT_NONE: growth as usual. */
	sr_model_touch(&self->m, self->m.top - 17 * KIB);
	EXPECT_FALSE(SR_TRY(SR_WRITE(self->m.top - 17 * KIB, 1)));
	EXPECT_MODEL(self);
	/* The guard is still a guard. */
	EXPECT_TRUE(SR_TRY(SR_WRITE(floor - 1, 1)));
	EXPECT_EQ(SEGV_ACCERR, sr_sig.code);
	EXPECT_EQ(floor - 1, sr_sig.addr);
}

/* ---------------------------------------------------------------------- */
/* Threads */

struct toucher {
	uint64_t lo, hi;	/* pages in [lo, hi) */
	int stride, first;	/* page index step and offset, from the top */
	pthread_barrier_t *bar;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;
	uint64_t a;
	int i = 0;

	sr_altstack();
	pthread_barrier_wait(t->bar);
	for (a = t->hi - PG; a >= t->lo; a -= PG, i++) {
		if (i % t->stride == t->first)
			memset(sr_ptr(a), sr_pattern(a), PG);
		if (a == t->lo)
			break;
	}
	return NULL;
}

TEST_F_TIMEOUT(grow, threads_same_reservation, 60)
{
	const int n = 4;
	const uint64_t guard = 64 * KIB;
	struct toucher t[4];
	pthread_barrier_t bar;
	pthread_t th[4];
	struct stackres_query q;
	uint64_t a, floor;
	int i;

	self->len = 4 * MIB;
	self->p = sr_map_isolated(self->len, PROT_NONE);
	ASSERT_NE(0, sr_u64(self->p));
	ASSERT_EQ(0, grow_register(self, guard, 0, 0, 0));
	floor = self->r.start + guard;
	pthread_barrier_init(&bar, NULL, n);
	for (i = 0; i < n; i++) {
		t[i] = (struct toucher){ floor, self->m.top, n, i, &bar };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, touch_thread, &t[i]));
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);

	ASSERT_EQ(0, sr_query(self->fd, self->r.id, &q));
	EXPECT_EQ(self->len - guard, q.committed);
	EXPECT_EQ(self->len - guard, q.peak);
	EXPECT_EQ(0, q.overflows);
	EXPECT_LE(1, q.grow_faults);
	EXPECT_GE((self->len - guard) / PG, q.grow_faults);
	EXPECT_EQ((long)((self->len - guard) / PG), sr_resident(self->p, self->len));
	for (a = floor; a < self->m.top; a += PG)
		if (*(uint8_t *)sr_ptr(a) != sr_pattern(a) ||
		    *(uint8_t *)sr_ptr(a + PG - 1) != sr_pattern(a))
			break;
	EXPECT_EQ(self->m.top, a);
}

TEST_F_TIMEOUT(grow, threads_own_reservations, 60)
{
	const int n = 4;
	const uint64_t len = 1 * MIB, guard = 64 * KIB;
	struct stackres_reg r[4];
	struct toucher t[4];
	struct sr_model m;
	pthread_barrier_t bar;
	pthread_t th[4];
	struct stackres_query q;
	uint64_t a;
	int i;

	pthread_barrier_init(&bar, NULL, n);
	for (i = 0; i < n; i++) {
		char *p = sr_map_isolated(len, PROT_NONE);

		ASSERT_NE(0, sr_u64(p));
		ASSERT_EQ(0, sr_reg_range(self->fd, &r[i], p, len, guard, 0,
					  (i + 1) * 16 * KIB, 0, 0));
		t[i] = (struct toucher){ r[i].start + guard, r[i].start + len, 1, 0, &bar };
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, touch_thread, &t[i]));
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < n; i++) {
		sr_model_init(&m, &r[i]);
		for (a = m.top - PG; a >= m.start + guard; a -= PG)
			sr_model_touch(&m, a);
		ASSERT_EQ(0, sr_query(self->fd, r[i].id, &q));
		EXPECT_EQ(len - guard, q.committed);
		EXPECT_EQ(m.steps, q.grow_faults) TH_LOG("reservation %d", i);
		EXPECT_EQ(*(uint8_t *)sr_ptr(r[i].start + guard), sr_pattern(r[i].start + guard));
	}
}

TEST_HARNESS_MAIN
