// SPDX-License-Identifier: GPL-2.0
/*
 * musl's pthreads with the project's stack-cache patch (examples/musl):
 * an exiting thread leaves its mapping to a cache and exits with
 * exit_free(); pthread_create takes a mapping only after that store.
 *
 * Built static with the patched musl-gcc (see the Makefile), for x86_64 and
 * -m32; the -m32 binary runs as ia32 compat on x86_64 and natively on i386.
 *
 * Whether a thread got a cached mapping is seen from the stack itself: every
 * thread reads a word well below its stack pointer (space no frame of this
 * program reaches), then writes a marker there. A fresh mapping reads 0
 * (stock musl, or exit_free missing); a cached one reads the marker of the
 * previous owner.
 *
 * Scale (defaults: the full test; musl_threads.sh sets what fits make check
 * under TCG): MUSL_CHURN_THREADS (100000) threads in each churn test,
 * MUSL_TRACED_THREADS (600) in the ptrace-held poison check,
 * MUSL_FALLBACK_THREADS (2000) per mode without exit_free, MUSL_SMALL_THREADS
 * (400) in the robust mutex, cancellation and forked-child tests,
 * MUSL_FORKS (40) forks from a thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define NR_EXIT_FREE	463
#define MARK_DEPTH	(32 * 1024)	/* below sp; default stacks are 128 KiB */
#define MARKER		0x6d75736cUL	/* "musl" */

static unsigned long env_ulong(const char *name, unsigned long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoul(s, NULL, 0) : def;
}

/* The probe of Documentation/userspace-api/exit_free.rst. */
static int have_exit_free(void)
{
	return syscall(NR_EXIT_FREE, 0, NULL, 0, ~0U, 0, ~0UL) == -1 &&
	       errno == EINVAL;
}

#define REQUIRE_EXIT_FREE() do {					\
	if (!have_exit_free())						\
		SKIP(return, "exit_free() not available (errno %d)", errno); \
} while (0)

/* ------------------------------------------------------------------ */
/* Per-thread checks: fresh TLS, fresh TSD, the stack marker.           */

static __thread int tls_init = 42;
static __thread char tls_bss[512];
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void make_key(void)
{
	pthread_key_create(&key, NULL);
}

struct churn {
	volatile unsigned long reused;	/* threads that found a marker */
	volatile unsigned long bad_tls;	/* TLS or TSD not fresh */
	volatile unsigned long done;
	sem_t slots;			/* bounds the threads alive */
};

static __attribute__((noinline)) unsigned long swap_marker(unsigned long mark)
{
	volatile unsigned long *w;
	unsigned long old;

	w = (void *)(((uintptr_t)__builtin_frame_address(0) - MARK_DEPTH) &
		     -sizeof(long));
	old = *w;
	*w = mark;
	return old;
}

/* Returns 1 if the thread got a mapping a previous thread had used. */
static int thread_checks(struct churn *c)
{
	int i, bad = 0;

	pthread_once(&key_once, make_key);
	if (tls_init != 42 || pthread_getspecific(key))
		bad = 1;
	for (i = 0; i < (int)sizeof(tls_bss); i++)
		bad |= tls_bss[i];
	if (bad)
		__atomic_add_fetch(&c->bad_tls, 1, __ATOMIC_RELAXED);
	tls_init = 7;
	memset(tls_bss, 0x5a, sizeof(tls_bss));
	pthread_setspecific(key, c);
	return swap_marker(MARKER) == MARKER;
}

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	if (thread_checks(c))
		__atomic_add_fetch(&c->reused, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->done, 1, __ATOMIC_RELEASE);
	sem_post(&c->slots);
	return arg;
}

/*
 * n threads, at most @alive at a time, detached or joined by the creator.
 * Returns 0 or the errno of a failed call.
 */
static int churn(struct churn *c, unsigned long n, int detached, int alive)
{
	pthread_t ring[16];
	pthread_attr_t attr;
	unsigned long i;
	void *res;
	int ret;

	memset(c, 0, sizeof(*c));
	sem_init(&c->slots, 0, alive);
	pthread_attr_init(&attr);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < n; i++) {
		while (sem_wait(&c->slots))
			;
		if (!detached && i >= (unsigned long)alive) {
			ret = pthread_join(ring[i % alive], &res);
			if (ret || res != c)
				return ret ? ret : EPROTO;
		}
		ret = pthread_create(&ring[i % alive], &attr, churn_thread, c);
		if (ret)
			return ret;
	}
	if (!detached)
		for (i = n > (unsigned long)alive ? n - alive : 0; i < n; i++)
			if (pthread_join(ring[i % alive], &res))
				return EPROTO;
	while (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) < n)
		usleep(1000);
	return 0;
}

/*
 * For the tests that need more than the harness's default timeout. The
 * churn tests get an hour for their full scale; in make check the runner's
 * timeout (settings) bounds the whole program first.
 */
FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

static void churn_test(struct __test_metadata *_metadata, int detached)
{
	unsigned long n = env_ulong("MUSL_CHURN_THREADS", 100000);
	struct churn c;
	struct timespec t0, t1;

	REQUIRE_EXIT_FREE();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, churn(&c, n, detached, 4));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_EQ(0, c.bad_tls);
	/* Nearly every thread runs on a cached mapping. */
	EXPECT_GE(c.reused, n - n / 10);
	ksft_print_msg("%lu %s threads in %.2f s, %lu on cached stacks\n",
		       n, detached ? "detached" : "joinable",
		       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		       c.reused);
}

TEST_F_TIMEOUT(slow, churn_detached, 3600)
{
	churn_test(_metadata, 1);
}

TEST_F_TIMEOUT(slow, churn_joinable, 3600)
{
	churn_test(_metadata, 0);
}

/* ------------------------------------------------------------------ */
/*
 * Without exit_free, musl must behave as unpatched: no mapping reused. The
 * kernel under test has exit_free, so a tracer makes the probe fail as it
 * would elsewhere: it skips the first system call 463 of a child and makes
 * it return -err (ENOSYS: a kernel without 463; E2BIG: mainline's
 * setxattrat), then lets the child run untraced. The probe is made once, by
 * the first pthread_create(), so every later thread sees the same answer.
 */
#ifdef __x86_64__
#define REG_NR(r)	((r).orig_rax)
#define REG_RET(r)	((r).rax)
#else
#define REG_NR(r)	((r).orig_eax)
#define REG_RET(r)	((r).eax)
#endif

/*
 * The child waits on go[0]; returns 0 once its first 463 has failed with
 * -err and it runs untraced.
 */
static int fake_first_463(pid_t pid, int go, int err)
{
	struct user_regs_struct regs;
	int status, in_463 = 0;

	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD) ||
	    ptrace(PTRACE_INTERRUPT, pid, 0, 0))
		return -1;
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status) ||
	    ptrace(PTRACE_SYSCALL, pid, 0, 0) || write(go, "g", 1) != 1)
		return -1;
	for (;;) {
		if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status))
			return -1;
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			if (ptrace(PTRACE_SYSCALL, pid, 0, 0))
				return -1;
			continue;
		}
		if (ptrace(PTRACE_GETREGS, pid, 0, &regs))
			return -1;
		if (!in_463 && REG_NR(regs) == NR_EXIT_FREE) {
			REG_NR(regs) = -1;	/* skip it */
			in_463 = 1;
		} else if (in_463) {
			REG_RET(regs) = -err;
			if (ptrace(PTRACE_SETREGS, pid, 0, &regs))
				return -1;
			return ptrace(PTRACE_DETACH, pid, 0, 0);
		}
		if (ptrace(PTRACE_SETREGS, pid, 0, &regs) ||
		    ptrace(PTRACE_SYSCALL, pid, 0, 0))
			return -1;
	}
}

static void no_exit_free(struct __test_metadata *_metadata, int err)
{
	unsigned long n = env_ulong("MUSL_FALLBACK_THREADS", 2000);
	int status = 0, go[2];
	pid_t pid;
	char g;

	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct churn c;

		close(go[1]);
		while (read(go[0], &g, 1) != 1)
			;
		if (churn(&c, n, 1, 4))
			_exit(3);
		if (c.reused || c.bad_tls)
			_exit(4);
		if (churn(&c, n, 0, 4))
			_exit(5);
		/* A fresh mapping every time: no marker ever seen. */
		_exit(c.reused || c.bad_tls ? 6 : 0);
	}
	close(go[0]);
	if (fake_first_463(pid, go[1], err)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ASSERT_TRUE(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(unpatched_kernel_enosys)
{
	no_exit_free(_metadata, ENOSYS);
}

TEST(mainline_setxattrat_e2big)
{
	no_exit_free(_metadata, E2BIG);
}

/* ------------------------------------------------------------------ */
/* Robust mutexes held at exit: the next owner sees EOWNERDEAD.         */

static pthread_mutex_t robust;
static sem_t locked;

static void *hold_and_exit(void *arg)
{
	pthread_mutex_lock(&robust);
	swap_marker(MARKER);
	sem_post(&locked);
	return arg;
}

TEST(robust_mutex_held_at_exit)
{
	int n = env_ulong("MUSL_SMALL_THREADS", 400);
	pthread_mutexattr_t ma;
	pthread_attr_t attr;
	pthread_t t;
	int i, j;

	REQUIRE_EXIT_FREE();
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	ASSERT_EQ(0, pthread_mutex_init(&robust, &ma));
	sem_init(&locked, 0, 0);
	pthread_attr_init(&attr);
	for (i = 0; i < n; i++) {
		int detached = i & 1;

		pthread_attr_setdetachstate(&attr, detached ?
			PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
		ASSERT_EQ(0, pthread_create(&t, &attr, hold_and_exit, NULL));
		while (sem_wait(&locked))
			;
		if (!detached)
			ASSERT_EQ(0, pthread_join(t, NULL));
		/* A detached owner may not be gone yet: EBUSY until then. */
		for (j = 0; j < 100000; j++) {
			int r = pthread_mutex_trylock(&robust);

			if (r == EBUSY) {
				sched_yield();
				continue;
			}
			ASSERT_EQ(EOWNERDEAD, r);
			break;
		}
		ASSERT_LT(j, 100000);
		ASSERT_EQ(0, pthread_mutex_consistent(&robust));
		ASSERT_EQ(0, pthread_mutex_unlock(&robust));
	}
}

/* ------------------------------------------------------------------ */
/* Cancellation: cleanup handlers run, join gets PTHREAD_CANCELED.      */

static volatile int cleanups;

static void cleanup(void *arg)
{
	__atomic_add_fetch(&cleanups, 1, __ATOMIC_RELAXED);
}

static void *block_forever(void *arg)
{
	sem_t *started = arg;

	pthread_cleanup_push(cleanup, NULL);
	swap_marker(MARKER);
	sem_post(started);
	for (;;)
		pause();
	pthread_cleanup_pop(0);
	return NULL;
}

TEST(cancellation)
{
	int n = env_ulong("MUSL_SMALL_THREADS", 400);
	sem_t started;
	pthread_t t;
	void *res;
	int i;

	REQUIRE_EXIT_FREE();
	sem_init(&started, 0, 0);
	cleanups = 0;
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, pthread_create(&t, NULL, block_forever, &started));
		while (sem_wait(&started))
			;
		ASSERT_EQ(0, pthread_cancel(t));
		ASSERT_EQ(0, pthread_join(t, &res));
		ASSERT_TRUE(res == PTHREAD_CANCELED);
	}
	EXPECT_EQ(n, cleanups);
}

/* ------------------------------------------------------------------ */
/* pthread_attr_setguardsize: the guard stays PROT_NONE on reuse.       */

struct guard_probe {
	size_t guard;
	int guard_faults;	/* write() from the guard: EFAULT */
	int below_ok;		/* write() from the stack's low end: works */
	int reused;
	char *lo;
};

static void *guard_thread(void *arg)
{
	struct guard_probe *g = arg;
	pthread_attr_t a;
	size_t size;
	void *lo;
	int fd[2];

	g->reused = swap_marker(MARKER) == MARKER;
	if (pthread_getattr_np(pthread_self(), &a) ||
	    pthread_attr_getstack(&a, &lo, &size) || pipe(fd))
		return NULL;
	g->lo = lo;
	g->guard_faults = write(fd[1], (char *)lo - g->guard, 1) == -1 &&
			  errno == EFAULT &&
			  write(fd[1], (char *)lo - 1, 1) == -1 && errno == EFAULT;
	g->below_ok = write(fd[1], lo, 1) == 1;
	close(fd[0]);
	close(fd[1]);
	return g;
}

TEST(guardsize)
{
	static const size_t guards[] = { 65536, 65536, 4096, 65536, 4096 };
	struct guard_probe g;
	pthread_attr_t attr;
	pthread_t t;
	void *res;
	int i, reused = 0;

	REQUIRE_EXIT_FREE();
	for (i = 0; i < 5; i++) {
		memset(&g, 0, sizeof(g));
		g.guard = guards[i];
		pthread_attr_init(&attr);
		ASSERT_EQ(0, pthread_attr_setguardsize(&attr, g.guard));
		ASSERT_EQ(0, pthread_create(&t, &attr, guard_thread, &g));
		ASSERT_EQ(0, pthread_join(t, &res));
		ASSERT_TRUE(res == &g);
		EXPECT_TRUE(g.guard_faults);
		EXPECT_TRUE(g.below_ok);
		reused += g.reused;
	}
	/* The 2nd, 4th (64 KiB) and 5th (4 KiB) find a mapping of their size. */
	EXPECT_EQ(3, reused);
}

/* ------------------------------------------------------------------ */
/* pthread_attr_setstack: a user stack is never cached.                 */

static void *on_user_stack(void *arg)
{
	return __builtin_frame_address(0);
}

TEST(user_stack_not_cached)
{
	size_t size = 256 * 1024;
	char *buf, *p;
	pthread_attr_t attr;
	pthread_t t;
	void *frame;
	size_t i;
	int k;

	REQUIRE_EXIT_FREE();
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(buf != MAP_FAILED);
	pthread_attr_init(&attr);
	ASSERT_EQ(0, pthread_attr_setstack(&attr, buf, size));
	ASSERT_EQ(0, pthread_create(&t, &attr, on_user_stack, NULL));
	ASSERT_EQ(0, pthread_join(t, &frame));
	ASSERT_TRUE((char *)frame >= buf && (char *)frame < buf + size);
	memset(buf, 0xa5, size);
	/* Threads with the default attributes, and with the user stack's
	 * size, never run in it. */
	for (k = 0; k < 50; k++) {
		pthread_attr_t a2;

		pthread_attr_init(&a2);
		if (k & 1)
			pthread_attr_setstacksize(&a2, size);
		ASSERT_EQ(0, pthread_create(&t, &a2, on_user_stack, NULL));
		ASSERT_EQ(0, pthread_join(t, &frame));
		ASSERT_FALSE((char *)frame >= buf && (char *)frame < buf + size);
	}
	for (i = 0, p = buf; i < size; i++)
		ASSERT_EQ(0xa5, (unsigned char)p[i]);
	munmap(buf, size);
}

/* ------------------------------------------------------------------ */
/* fork from a thread while other threads come and go.                  */

static volatile int stop_churn;

static void *background(void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	struct churn *c = arg;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!stop_churn) {
		while (sem_wait(&c->slots))
			;
		if (pthread_create(&t, &attr, churn_thread, c))
			sem_post(&c->slots);
	}
	return NULL;
}

static void *forker(void *arg)
{
	int i, status, forks = env_ulong("MUSL_FORKS", 40);
	unsigned long n = env_ulong("MUSL_SMALL_THREADS", 400) / 2;
	long bad = 0;

	for (i = 0; i < forks; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return (void *)1L;
		if (!pid) {
			struct churn c;

			/* The child's cache must serve (and not wait for
			 * stores that only the parent's threads make). */
			if (churn(&c, n, i & 1, 2) || c.bad_tls ||
			    c.reused < n - n / 4)
				_exit(1);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			bad++;
	}
	return (void *)bad;
}

TEST_F_TIMEOUT(slow, fork_from_thread, 300)
{
	struct churn c;
	pthread_t bg, f;
	void *res;

	REQUIRE_EXIT_FREE();
	memset(&c, 0, sizeof(c));
	sem_init(&c.slots, 0, 4);
	stop_churn = 0;
	ASSERT_EQ(0, pthread_create(&bg, NULL, background, &c));
	ASSERT_EQ(0, pthread_create(&f, NULL, forker, NULL));
	ASSERT_EQ(0, pthread_join(f, &res));
	stop_churn = 1;
	ASSERT_EQ(0, pthread_join(bg, NULL));
	EXPECT_TRUE(res == NULL);
	EXPECT_EQ(0, c.bad_tls);
}

/* ------------------------------------------------------------------ */
/*
 * Poison check: no mapping is handed out before its store. A tracer stops
 * every thread at PTRACE_EVENT_EXIT, which comes before exit_free()'s store,
 * and holds it there until the creator has entered pthread_create() again.
 * The live top of the held thread's stack (from its stack pointer up to the
 * start of its TLS) must not change meanwhile: a new thread given the
 * mapping would write its start arguments there, and clear its TLS.
 *
 * The threads are detached: a detached thread's mapping is in the cache
 * from just before its exit_free() call, which is the window to check (a
 * joinable thread's mapping enters the cache only once its joiner has seen
 * the store). One thread at a time; the creator starts the next one only
 * once the tracer holds the previous one at its exit stop (or after 50 ms),
 * so the held thread's mapping is the newest in the cache when
 * pthread_create() looks there (before it takes the thread list lock,
 * which the held thread still owns).
 */

#define TRACE_SLOTS 4096

struct trace_shm {
	sem_t slots;				/* threads alive, at most 1 */
	volatile unsigned long creates;		/* pthread_create() entries */
	volatile unsigned long stops;		/* exit stops seen */
	volatile unsigned long released;	/* ... and let go */
	volatile uintptr_t top[TRACE_SLOTS];	/* by tid: stack top */
	volatile unsigned long checked, changed, reused;
};

static struct trace_shm *tshm;

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}


static void *traced_thread(void *arg)
{
	pthread_attr_t a;
	void *lo;
	size_t size;

	/* What a thread leaves at the top of its mapping differs from one
	 * thread to the next: its start argument, and its TLS. */
	tls_init = (int)(uintptr_t)arg;
	memset(tls_bss, (int)(uintptr_t)arg | 1, sizeof(tls_bss));
	if (swap_marker(MARKER) == MARKER)
		tshm->reused++;
	if (!pthread_getattr_np(pthread_self(), &a) &&
	    !pthread_attr_getstack(&a, &lo, &size))
		tshm->top[gettid() % TRACE_SLOTS] = (uintptr_t)lo + size;
	sem_post(&tshm->slots);
	return NULL;
}

static void traced_churn(unsigned long n, int go)
{
	pthread_attr_t attr;
	pthread_t t;
	unsigned long i;
	long t0;
	char g;

	while (read(go, &g, 1) != 1)	/* until the tracer is there */
		;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < n; i++) {
		t0 = now_us();
		while (sem_wait(&tshm->slots))
			;
		while (tshm->stops < i && now_us() - t0 < 50000)
			;
		__atomic_add_fetch(&tshm->creates, 1, __ATOMIC_SEQ_CST);
		if (pthread_create(&t, &attr, traced_thread,
				   (void *)(uintptr_t)(i + 1)))
			_exit(2);
	}
	while (sem_wait(&tshm->slots))
		;
	/* Not before the last thread is let go: exit_group() would kill it
	 * in the middle of its check. */
	__atomic_add_fetch(&tshm->creates, 1, __ATOMIC_SEQ_CST);
	t0 = now_us();
	while (tshm->released < n && now_us() - t0 < 5000000)
		;
	_exit(0);
}

#define SNAP 4096

/* At a thread's exit stop: snapshot, hold, compare. */
static void hold_and_check(pid_t tid)
{
	static char a[SNAP], b[SNAP];
	struct user_regs_struct regs;
	struct iovec l, r;
	uintptr_t sp, top = tshm->top[tid % TRACE_SLOTS];
	unsigned long creates = tshm->creates;
	ssize_t len;
	long t0;

	__atomic_add_fetch(&tshm->stops, 1, __ATOMIC_SEQ_CST);
	if (!top || ptrace(PTRACE_GETREGS, tid, 0, &regs))
		return;
#ifdef __x86_64__
	sp = regs.rsp;
#else
	sp = regs.esp;
#endif
	if (sp >= top || top - sp > SNAP - 64)
		return;
	len = top + 64 - sp;
	l.iov_base = a; l.iov_len = len;
	r.iov_base = (void *)sp; r.iov_len = len;
	if (process_vm_readv(tid, &l, 1, &r, 1, 0) != len)
		return;
	/* Until the creator is back in pthread_create(), and a bit. */
	t0 = now_us();
	while (tshm->creates == creates && now_us() - t0 < 20000)
		;
	t0 = now_us();
	while (now_us() - t0 < 2000)
		;
	l.iov_base = b;
	if (process_vm_readv(tid, &l, 1, &r, 1, 0) != len) {
		if (!tshm->changed++)
			ksft_print_msg("tid %d: its stack is gone at its exit stop\n",
				       tid);
	} else if (memcmp(a, b, len)) {
		ssize_t i = 0;

		while (a[i] == b[i])
			i++;
		if (!tshm->changed++)
			ksft_print_msg("tid %d: its stack changed at its exit stop, at sp + %zd of %zd (top + 64)\n",
				       tid, i, len);
	}
	tshm->checked++;
	tshm->top[tid % TRACE_SLOTS] = 0;
}

TEST_F_TIMEOUT(slow, poison_no_reuse_before_store, 300)
{
	unsigned long n = env_ulong("MUSL_TRACED_THREADS", 600);
	int status, leader_done = 0, go[2];
	pid_t pid, w;

	REQUIRE_EXIT_FREE();
	tshm = mmap(NULL, sizeof(*tshm), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(tshm != MAP_FAILED);
	sem_init(&tshm->slots, 1, 1);
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid)
		traced_churn(n, go[0]);
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACECLONE |
			    PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL));
	ASSERT_EQ(1, write(go[1], "g", 1));
	while (!leader_done) {
		int sig = 0;

		w = waitpid(-1, &status, __WALL);
		ASSERT_GT(w, 0);
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (w == pid) {
				leader_done = 1;
				ASSERT_TRUE(WIFEXITED(status));
				ASSERT_EQ(0, WEXITSTATUS(status));
			}
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		switch (status >> 8) {
		case SIGTRAP | (PTRACE_EVENT_EXIT << 8):
			if (w != pid) {
				hold_and_check(w);
				tshm->released++;
			}
			break;
		case SIGTRAP | (PTRACE_EVENT_CLONE << 8):
		case SIGTRAP | (PTRACE_EVENT_STOP << 8):
			break;
		default:
			sig = WSTOPSIG(status);
			if (sig == SIGSTOP)
				sig = 0;
		}
		ptrace(PTRACE_CONT, w, 0, sig);
	}
	ksft_print_msg("%lu threads held at their exit stop, %lu reused a mapping\n",
		       tshm->checked, tshm->reused);
	EXPECT_EQ(0, tshm->changed);
	/* The check ran, and the cache served threads meanwhile. */
	EXPECT_GE(tshm->checked, n / 2);
	EXPECT_GE(tshm->reused, n / 4);
	munmap(tshm, sizeof(*tshm));
}

TEST_HARNESS_MAIN
