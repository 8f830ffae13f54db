// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres and exit_free(2) under concurrency: a time-bounded stress run.
 *
 *	stackres_stress [-t SECONDS] [-r ROUNDS] [-w WORKERS] [-P]
 *
 * -P leaves PROT_READ out of the mprotect operations (a way to run the rest
 * while REGISTER does not yet reset read-only pages; see regressions_test).
 *
 * Each round opens a few stackres files, registers a pool of reservations
 * ("slots", fixed address ranges shared by all threads) and lets WORKERS
 * threads do, at random, on random slots and all at once: growth (touches
 * anywhere, guard included), TRIM, UNREGISTER + REGISTER, QUERY, munmap +
 * mmap back, mprotect, mremap away and back, fork (the child touches the
 * inherited memory and must get EPERM from the inherited file), exec (the
 * new image uses its own file), and close (dup2 of a fresh file over a
 * file number).  One more thread runs an exit_free storm: threads on a
 * stack cache whose stacks are stackres reservations, each ending with
 * exit_free(U32|WAKE|PRIVATE) on its busy word while the owner futex-waits
 * on it and reuses the stack at once.  A reader thread drains the records
 * of the file whose reservations notify every growth.
 *
 * Between rounds the workers stop, and the accounting must add up: every
 * reservation that no thread disturbed (munmap, mremap, mprotect) since it
 * was registered is still there, QUERY agrees with /proc/self/maps (the
 * committed top read/write, the rest PROT_NONE) and with mincore() (no
 * resident page below the committed part: TRIM freed them), peak >=
 * committed, and its GROW records number exactly its grow_faults when no
 * record was lost.  Then every file is closed and stackres.ko is unloaded
 * and loaded again (as root, from /lib/modules/stackres.ko).
 *
 * Every errno must be one that the documentation lists for the request.
 * The program prints operation counts and "stress: PASS" or "stress: FAIL";
 * kernel reports are the runner's business (scripts/stress, qemu/run).
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/exit_free.h>
#include <linux/stackres.h>

#define DEV		"/dev/stackres"
#define KO		"/lib/modules/stackres.ko"
#define NFILES		4	/* file 0: NOTIFY_GROW reservations, never replaced */
#define NSLOTS		24
#define SLOT_PAGES	64
#define GUARD_PAGES	2
#define MAX_WORKERS	16
#define NSTACKS		8
#define STACK_PAGES	64
#define MAX_IDS		(1 << 16)

static uint64_t PG;
static volatile int stop;
static int nworkers = 6;
static bool no_read_only;	/* -P: mprotect never makes a page read-only */
static bool failed;
static char failmsg[512];

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(&failed, true, __ATOMIC_SEQ_CST))
		return;
	va_start(ap, fmt);
	vsnprintf(failmsg, sizeof(failmsg), fmt, ap);
	va_end(ap);
	stop = 1;
}

/* ------------------------------------------------------------------ */

static inline long raw_syscall(long nr, long a, long b, long c, long d)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;

	__asm__ volatile ("syscall" : "=a" (ret)
			  : "a" (nr), "D" (a), "S" (b), "d" (c), "r" (r10)
			  : "rcx", "r11", "memory");
#elif defined(__i386__)
	__asm__ volatile ("int $0x80" : "=a" (ret)
			  : "a" (nr), "b" (a), "c" (b), "d" (c), "S" (d)
			  : "memory");
#else
#error "x86 only"
#endif
	return ret;
}

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ------------------------------------------------------------------ */
/* Counters                                                             */

enum { C_GROW_TOUCH, C_SEGV_ACCERR, C_SEGV_MAPERR, C_REG, C_REG_FAIL, C_UNREG,
       C_TRIM, C_QUERY, C_MUNMAP, C_MPROTECT, C_MREMAP, C_FORK, C_EXEC, C_CLOSE,
       C_EF_THREADS, C_EF_GROWN, C_RECORDS, C_LOST, C_ROUNDS, C_RELOADS,
       C_CHECKED, C_ERRNO_OTHER, C_NR };
static const char *const cname[C_NR] = {
	"touches", "SIGSEGV/ACCERR", "SIGSEGV/MAPERR", "REGISTER ok", "REGISTER err",
	"UNREGISTER", "TRIM", "QUERY", "munmap+mmap", "mprotect", "mremap",
	"fork", "exec", "close(dup2)", "exit_free threads", "exit_free stack growths",
	"records", "records lost", "rounds", "module reloads",
	"reservations checked", "other errnos",
};
static uint64_t cnt[C_NR];
static uint64_t errnos[4][64];	/* REGISTER, UNREGISTER, TRIM, QUERY */

#define INC(c)	__atomic_add_fetch(&cnt[c], 1, __ATOMIC_RELAXED)

/* ------------------------------------------------------------------ */
/* Slots                                                                */

struct slot {
	pthread_mutex_t lock;		/* REGISTER/UNREGISTER and the ids below */
	uint64_t base;			/* fixed address range of SLOT_PAGES */
	volatile uint32_t id;		/* last id registered (0: none) */
	volatile uint32_t seq;		/* odd while a thread disturbs the range */
	volatile uint32_t clean_seq;	/* seq when id was registered, +1: clean */
	volatile uint32_t clean_id;
	volatile uint32_t hist[8];	/* last operations: op << 24 | ops counter */
	volatile uint32_t nhist;
};

static uint32_t opseq;

static void note(struct slot *s, unsigned int op)
{
	uint32_t n = __atomic_fetch_add(&s->nhist, 1, __ATOMIC_RELAXED);

	s->hist[n % 8] = op << 24 | (__atomic_add_fetch(&opseq, 1, __ATOMIC_RELAXED) & 0xffffff);
}

static struct slot slots[NSLOTS];
static int fds[NFILES];
static int efd = -1;		/* the exit_free stack cache's file */

static int slot_fd(int i)
{
	return fds[i % NFILES];
}

static void disturb_begin(struct slot *s)
{
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_SEQ_CST);
}

static void disturb_end(struct slot *s)
{
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_SEQ_CST);
}

static void count_errno(int req, int e)
{
	__atomic_add_fetch(&errnos[req][e < 64 ? e : 63], 1, __ATOMIC_RELAXED);
}

static bool allowed(int req, int e)
{
	switch (req) {
	case 0:	/* REGISTER: the range may be unmapped, registered, or moving */
		return e == EEXIST || e == ENXIO || e == ENOMEM;
	case 1:
		return e == ENOENT;
	case 2:	/* ids restart in a fresh file: another reservation's sp rules */
		return e == ENOENT || e == EINVAL;
	default:
		return e == ENOENT;
	}
}

static int do_register(int i)
{
	struct slot *s = &slots[i];
	struct stackres_reg r = {
		.start = s->base, .len = SLOT_PAGES * PG, .guard = GUARD_PAGES * PG,
		.commit = PG * (1 + (i % 4)), .chunk = (i % 3) * 2 * PG,
		.watermark = (i % 2) ? 16 * PG : 0,
		.flags = (i % NFILES == 0 ? STACKRES_NOTIFY_GROW : 0) |
			 (i % 5 == 0 ? STACKRES_POPULATE : 0),
	};
	uint32_t seq;

	pthread_mutex_lock(&s->lock);
	seq = __atomic_load_n(&s->seq, __ATOMIC_SEQ_CST);
	if (ioctl(slot_fd(i), STACKRES_IOC_REGISTER, &r)) {
		int e = errno;

		pthread_mutex_unlock(&s->lock);
		count_errno(0, e);
		INC(C_REG_FAIL);
		if (!allowed(0, e))
			fail("REGISTER slot %d: %s", i, strerror(e));
		return -e;
	}
	count_errno(0, 0);
	INC(C_REG);
	s->id = r.id;
	/* Clean if nobody disturbed the range since before REGISTER. */
	if (!(seq & 1)) {
		s->clean_id = r.id;
		s->clean_seq = seq + 1;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Faults                                                               */

static __thread sigjmp_buf jb;
static __thread volatile int jb_armed;
static __thread volatile int last_code;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	if (jb_armed && sig == SIGSEGV) {
		jb_armed = 0;
		last_code = si->si_code;
		siglongjmp(jb, 1);
	}
	{
		/* Async-signal-safe: what, where, who, in hex. */
		char msg[] = "stress: unexpected signal 00 code 00000000 at 0000000000000000 "
			     "tid 00000000 outside a guarded access\n";
		uint64_t a = (uintptr_t)si->si_addr;
		uint32_t c = si->si_code, t = syscall(SYS_gettid);
		int i;

		msg[26] = '0' + sig / 10;
		msg[27] = '0' + sig % 10;
		for (i = 0; i < 8; i++, c >>= 4)
			msg[41 - i] = "0123456789abcdef"[c & 15];
		for (i = 0; i < 16; i++, a >>= 4)
			msg[61 - i] = "0123456789abcdef"[a & 15];
		for (i = 0; i < 8; i++, t >>= 4)
			msg[74 - i] = "0123456789abcdef"[t & 15];
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(3);
	}
	_exit(3);
}

static void touch(uint64_t a, bool write_it)
{
	if (sigsetjmp(jb, 1) == 0) {
		jb_armed = 1;
		if (write_it)
			*(volatile char *)(uintptr_t)a = 1;
		else
			(void)*(volatile char *)(uintptr_t)a;
		jb_armed = 0;
		INC(C_GROW_TOUCH);
	} else {
		INC(last_code == SEGV_MAPERR ? C_SEGV_MAPERR : C_SEGV_ACCERR);
	}
}

static int setup_altstack(void)
{
	stack_t ss = { .ss_size = 64 * 1024 };

	ss.ss_sp = malloc(ss.ss_size);
	return ss.ss_sp ? sigaltstack(&ss, NULL) : -1;
}

/* ------------------------------------------------------------------ */
/* Workers                                                              */

static char self_exe[256];

static void op_fork(uint64_t *rs)
{
	pid_t pid = fork();
	int st;

	if (pid < 0) {
		if (errno != EAGAIN && errno != ENOMEM)
			fail("fork: %s", strerror(errno));
		return;
	}
	if (!pid) {
		struct stackres_query q = { .id = 1 };
		int k;

		/* Another mm: the inherited file refuses everything. */
		for (k = 0; k < NFILES; k++)
			if (ioctl(fds[k], STACKRES_IOC_QUERY, &q) != -1 || errno != EPERM)
				_exit(20 + k);
		for (k = 0; k < 8; k++) {
			struct slot *s = &slots[rnd_next(rs) % NSLOTS];

			touch(s->base + rnd_next(rs) % (SLOT_PAGES * PG), rnd_next(rs) & 1);
		}
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("fork child: status %#x", st);
	INC(C_FORK);
}

static void op_exec(void)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return;
	if (!pid) {
		char *argv[] = { self_exe, "--exec-child", NULL };

		execv(self_exe, argv);
		_exit(30);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("exec child: status %#x", st);
	INC(C_EXEC);
}

/* The exec'd image: its own file, its own reservation, then exit. */
static int exec_child(void)
{
	struct stackres_reg r = { .len = 32 * 4096, .guard = 4096, .commit = 4096,
				  .flags = STACKRES_MAP };
	struct stackres_query q = { 0 };
	int fd = open(DEV, O_RDWR);

	if (fd < 0)
		return errno == ENOENT ? 0 : 31;	/* module being reloaded */
	if (ioctl(fd, STACKRES_IOC_REGISTER, &r))
		return 32;
	*(volatile char *)(uintptr_t)(r.start + 8 * 4096) = 1;
	q.id = r.id;
	if (ioctl(fd, STACKRES_IOC_QUERY, &q) || q.committed < 24 * 4096 ||
	    q.grow_faults != 1)
		return 33;
	return 0;	/* exit drops the reservation */
}

static pthread_barrier_t start_line;	/* workers + main, once per round */

static void *worker(void *arg)
{
	uint64_t rs = (uintptr_t)arg * 0x1234567ULL;

	void *scratch = mmap(NULL, SLOT_PAGES * PG, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (setup_altstack() || scratch == MAP_FAILED)
		fail("worker setup: %s", strerror(errno));
	/*
	 * Workers punch holes into slots (munmap, mremap away) and fill them
	 * back with MAP_FIXED: no mapping of a thread still starting (its
	 * stack, altstack, scratch) may land in such a hole and be clobbered.
	 * So nobody starts before every thread of the round has its mappings.
	 */
	pthread_barrier_wait(&start_line);
	while (!stop) {
		int i = rnd_next(&rs) % NSLOTS, e;
		struct slot *s = &slots[i];
		uint64_t len = SLOT_PAGES * PG, w = rnd_next(&rs) % 1000;
		uint64_t off = PG * (rnd_next(&rs) % SLOT_PAGES);
		uint32_t id = s->id;

		note(s, w < 350 ? 1 : w < 450 ? 2 : w < 550 ? 3 : w < 650 ? 4 : w < 700 ? 5 :
		     w < 760 ? 6 : w < 820 ? 7 : w < 860 ? 8 : w < 880 ? 9 : w < 890 ? 10 :
		     w < 910 ? 11 : 12);
		if (w < 350) {
			touch(s->base + rnd_next(&rs) % len, w & 1);
		} else if (w < 450) {
			struct stackres_trim t = {
				.id = id, .sp = s->base + GUARD_PAGES * PG +
				      rnd_next(&rs) % ((SLOT_PAGES - GUARD_PAGES) * PG + 1),
				.keep = (rnd_next(&rs) % 4) * PG,
			};

			e = ioctl(slot_fd(i), STACKRES_IOC_TRIM, &t) ? errno : 0;
			count_errno(2, e);
			if (e && !allowed(2, e))
				fail("TRIM: %s", strerror(e));
			INC(C_TRIM);
		} else if (w < 550) {
			struct stackres_query q = { .flags = STACKRES_QUERY_ADDR,
						    .addr = s->base + off };

			e = ioctl(slot_fd(i), STACKRES_IOC_QUERY, &q) ? errno : 0;
			count_errno(3, e);
			if (e && !allowed(3, e))
				fail("QUERY: %s", strerror(e));
			/* Whatever is found there has this slot's geometry. */
			if (!e && (q.start != s->base || q.len != len ||
				   q.guard != GUARD_PAGES * PG || q.committed > len - q.guard ||
				   q.peak < q.committed))
				fail("QUERY slot %d: start %#llx len %#llx guard %#llx "
				     "committed %#llx peak %#llx", i, (unsigned long long)q.start,
				     (unsigned long long)q.len, (unsigned long long)q.guard,
				     (unsigned long long)q.committed, (unsigned long long)q.peak);
			INC(C_QUERY);
		} else if (w < 650) {
			pthread_mutex_lock(&s->lock);
			id = s->id;
			s->clean_id = 0;
			e = ioctl(slot_fd(i), STACKRES_IOC_UNREGISTER, &id) ? errno : 0;
			pthread_mutex_unlock(&s->lock);
			count_errno(1, e);
			if (e && !allowed(1, e))
				fail("UNREGISTER: %s", strerror(e));
			INC(C_UNREG);
			do_register(i);
		} else if (w < 700) {
			do_register(i);
		} else if (w < 760) {
			disturb_begin(s);
			/* Within the slot: its neighbours are other slots. */
			munmap((void *)(uintptr_t)(s->base + off),
			       PG * (1 + rnd_next(&rs) % 4) > len - off ? len - off :
			       PG * (1 + rnd_next(&rs) % 4));
			if (mmap((void *)(uintptr_t)s->base, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) ==
			    MAP_FAILED)
				fail("mmap back: %s", strerror(errno));
			disturb_end(s);
			INC(C_MUNMAP);
			do_register(i);
		} else if (w < 820) {
			static const int prots[] = { PROT_NONE, PROT_READ | PROT_WRITE, PROT_READ };

			disturb_begin(s);
			if (mprotect((void *)(uintptr_t)(s->base + off), PG,
				     prots[rnd_next(&rs) % (no_read_only ? 2 : 3)]) && errno != ENOMEM)
				fail("mprotect: %s", strerror(errno));
			disturb_end(s);
			INC(C_MPROTECT);
		} else if (w < 860) {
			/* Move the slot to a scratch range and back (same size: FIXED). */
			void *to;

			disturb_begin(s);
			to = mremap((void *)(uintptr_t)s->base, len, len,
				    MREMAP_MAYMOVE | MREMAP_FIXED, scratch);
			if (to == scratch) {
				touch((uintptr_t)to, false);	/* may fault: PROT_NONE */
				if (mremap(to, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
					   (void *)(uintptr_t)s->base) == MAP_FAILED)
					fail("mremap back: %s", strerror(errno));
				/* Keep the scratch range ours. */
				if (mmap(scratch, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
					 MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
					fail("scratch: %s", strerror(errno));
			} else if (errno != EFAULT) {
				/* EFAULT: the slot is several VMAs (a reservation). */
				fail("mremap: %s", strerror(errno));
			} else if (mmap((void *)(uintptr_t)s->base, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
					-1, 0) == MAP_FAILED) {
				fail("mmap after mremap: %s", strerror(errno));
			}
			disturb_end(s);
			INC(C_MREMAP);
			do_register(i);
		} else if (w < 880) {
			op_fork(&rs);
		} else if (w < 890) {
			op_exec();
		} else if (w < 910) {
			/* close: a fresh file replaces files 1..3 (never file 0). */
			int k = 1 + rnd_next(&rs) % (NFILES - 1), nfd;

			nfd = open(DEV, O_RDWR | O_CLOEXEC);
			if (nfd < 0) {
				fail("open: %s", strerror(errno));
			} else {
				if (dup3(nfd, fds[k], O_CLOEXEC) < 0)
					fail("dup3: %s", strerror(errno));
				close(nfd);
				INC(C_CLOSE);
			}
		} else {
			/* Touch a run of pages top-down: several growth steps. */
			uint64_t a = s->base + len - PG;
			int n = 1 + rnd_next(&rs) % 16;

			while (n-- && a >= s->base)
				touch((a -= PG), true);
		}
	}
	munmap(scratch, SLOT_PAGES * PG);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Records                                                              */

static uint32_t grow_records[MAX_IDS];
static uint64_t lost_records;

static void *reader(void *arg)
{
	struct stackres_event ev[64];
	pid_t self = syscall(SYS_gettid);

	(void)self;
	while (!stop) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		ssize_t n;
		int k;

		if (poll(&p, 1, 20) <= 0)
			continue;
		n = read(fds[0], ev, sizeof(ev));
		if (n < 0) {
			if (errno != EAGAIN)
				fail("read: %s", strerror(errno));
			continue;
		}
		if (n % sizeof(ev[0]))
			fail("read: %zd bytes", n);
		for (k = 0; k < n / (ssize_t)sizeof(ev[0]); k++) {
			struct stackres_event *e = &ev[k];

			INC(C_RECORDS);
			if (e->type == STACKRES_EV_LOST) {
				lost_records += e->committed;
				cnt[C_LOST] += e->committed;
				continue;
			}
			if (e->type < STACKRES_EV_GROW || e->type > STACKRES_EV_FAILED || !e->id ||
			    e->committed > SLOT_PAGES * PG)
				fail("record type %u id %u committed %#llx", e->type, e->id,
				     (unsigned long long)e->committed);
			if (e->type == STACKRES_EV_GROW && e->id < MAX_IDS)
				grow_records[e->id]++;
		}
	}
	return NULL;
}

static void drain_records(void)
{
	struct stackres_event ev[64];
	ssize_t n;
	int k;

	while ((n = read(fds[0], ev, sizeof(ev))) > 0)
		for (k = 0; k < n / (ssize_t)sizeof(ev[0]); k++) {
			INC(C_RECORDS);
			if (ev[k].type == STACKRES_EV_LOST) {
				lost_records += ev[k].committed;
				cnt[C_LOST] += ev[k].committed;
			} else if (ev[k].type == STACKRES_EV_GROW && ev[k].id < MAX_IDS) {
				grow_records[ev[k].id]++;
			}
		}
}

/* ------------------------------------------------------------------ */
/* exit_free storm on a stack cache of stackres reservations            */

struct estack {
	uint64_t start, len;
	uint32_t id;
	volatile uint32_t busy;
	uint32_t depth;
};
static struct estack estacks[NSTACKS];
static bool have_exit_free;

static int ef_thread(void *arg)
{
	struct estack *es = arg;
	volatile char buf[256];
	uint64_t sp = (uintptr_t)&buf, a;

	/* Use the stack down to depth: the reservation grows under us. */
	buf[0] = 1;
	for (a = sp; a > sp - es->depth && a > es->start + 2 * 4096 * 2; a -= 4096)
		*(volatile char *)(uintptr_t)a = 1;
	raw_syscall(__NR_exit_free, 0, (long)&es->busy, 0,
		    EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE);
	/* exit_free() returned: an error, which the owner sees as busy == 2. */
	es->busy = 2;
	raw_syscall(__NR_futex, (long)&es->busy, FUTEX_WAKE_PRIVATE, 1, 0);
	raw_syscall(__NR_exit, 0, 0, 0, 0);
	return 0;
}

static void *ef_storm(void *arg)
{
	uint64_t rs = 99;
	int k;

	while (!stop) {
		struct estack *es = &estacks[rnd_next(&rs) % NSTACKS];
		struct stackres_trim t;

		/* Wait for the previous thread on this stack to be gone. */
		while (es->busy == 1)
			syscall(SYS_futex, &es->busy, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
		if (es->busy == 2) {
			fail("exit_free returned in a storm thread");
			break;
		}
		if (rnd_next(&rs) % 4 == 0) {
			t = (struct stackres_trim){ .id = es->id, .sp = es->start + es->len,
						    .keep = 4096 };
			if (ioctl(efd, STACKRES_IOC_TRIM, &t))
				fail("storm TRIM: %s", strerror(errno));
		}
		es->depth = 4096 * (rnd_next(&rs) % (STACK_PAGES / 2));
		es->busy = 1;
		if (clone(ef_thread, (void *)(uintptr_t)(es->start + es->len - 64),
			  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			  CLONE_SYSVSEM, es) < 0) {
			es->busy = 0;
			if (errno != EAGAIN)
				fail("clone: %s", strerror(errno));
			continue;
		}
		INC(C_EF_THREADS);
	}
	for (k = 0; k < NSTACKS; k++)
		while (estacks[k].busy == 1)
			syscall(SYS_futex, &estacks[k].busy, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

static bool setup_stacks(void)
{
	int k;

	efd = open(DEV, O_RDWR | O_CLOEXEC);
	if (efd < 0)
		return false;
	for (k = 0; k < NSTACKS; k++) {
		struct stackres_reg r = { .len = STACK_PAGES * PG, .guard = 2 * PG,
					  .commit = 2 * PG, .chunk = 4 * PG,
					  .flags = STACKRES_MAP };

		if (ioctl(efd, STACKRES_IOC_REGISTER, &r))
			return false;
		estacks[k] = (struct estack){ .start = r.start, .len = r.len, .id = r.id };
	}
	return true;
}

static void teardown_stacks(void)
{
	struct stackres_query q;
	int k;

	for (k = 0; k < NSTACKS; k++) {
		memset(&q, 0, sizeof(q));
		q.id = estacks[k].id;
		if (ioctl(efd, STACKRES_IOC_QUERY, &q))
			fail("stack cache reservation %d gone: %s", k, strerror(errno));
		else
			cnt[C_EF_GROWN] += q.grow_faults;
		munmap((void *)(uintptr_t)estacks[k].start, estacks[k].len);
	}
	close(efd);
}

/* ------------------------------------------------------------------ */
/* Round end: the accounting                                            */

static bool perms_of(const char *maps, uint64_t a, char out[5])
{
	const char *line = maps;

	while (*line) {
		unsigned long long s, e;
		const char *nl = strchr(line, '\n');

		if (sscanf(line, "%llx-%llx %4s", &s, &e, out) == 3 && a >= s && a < e)
			return true;
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}

static void dump_maps(const char *maps, uint64_t lo, uint64_t hi)
{
	const char *line = maps;

	while (*line) {
		unsigned long long s, e;
		const char *nl = strchr(line, '\n');
		int len = nl ? nl - line : (int)strlen(line);

		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && e > lo - 4 * PG && s < hi + 4 * PG)
			printf("stress:   maps: %.*s\n", len, line);
		if (!nl)
			break;
		line = nl + 1;
	}
}

static void check_round(void)
{
	static char maps[256 * 1024];
	static unsigned char vec[SLOT_PAGES];
	int fd = open("/proc/self/maps", O_RDONLY), i;
	ssize_t n = 0, got;

	/* seq_file hands out a page or so per read(). */
	while (fd >= 0 && (got = read(fd, maps + n, sizeof(maps) - 1 - n)) > 0)
		n += got;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		fail("reading maps");
		return;
	}
	maps[n] = 0;
	for (i = 0; i < NSLOTS && !failed; i++) {
		struct slot *s = &slots[i];
		struct stackres_query q = { .id = s->clean_id };
		uint64_t end = s->base + SLOT_PAGES * PG, bottom, a;
		char p[5];
		int k;

		if (!s->clean_id || s->clean_seq != s->seq + 1 || s->id != s->clean_id)
			continue;
		if (i % NFILES)	/* files 1..3 may have been replaced by close */
			continue;
		if (ioctl(slot_fd(i), STACKRES_IOC_QUERY, &q)) {
			/* UNREGISTER by a worker ends it legitimately; then id moved on. */
			if (errno == ENOENT && s->id != q.id)
				continue;
			fail("slot %d: undisturbed reservation %u (seq %u): QUERY %s; last ops "
			     "(1 touch 2 trim 3 query 4 unreg+reg 5 reg 6 munmap 7 mprotect "
			     "8 mremap 9 fork 10 exec 11 close 12 run): %x %x %x %x %x %x %x %x "
			     "(next %u)", i, s->clean_id, s->seq, strerror(errno),
			     s->hist[0], s->hist[1], s->hist[2], s->hist[3], s->hist[4],
			     s->hist[5], s->hist[6], s->hist[7], s->nhist % 8);
			return;
		}
		INC(C_CHECKED);
		bottom = end - q.committed;
		if (q.start != s->base || q.committed % PG || q.peak < q.committed ||
		    q.committed > (SLOT_PAGES - GUARD_PAGES) * PG)
			fail("slot %d: QUERY start %#llx committed %#llx peak %#llx", i,
			     (unsigned long long)q.start, (unsigned long long)q.committed,
			     (unsigned long long)q.peak);
		for (a = s->base; a < end; a += PG) {
			if (!perms_of(maps, a, p)) {
				fail("slot %d [%#llx, %#llx) id %u seq %u, QUERY committed %#llx "
				     "peak %#llx grow_faults %llu: %#llx unmapped", i,
				     (unsigned long long)s->base, (unsigned long long)end,
				     s->clean_id, s->seq, (unsigned long long)q.committed,
				     (unsigned long long)q.peak,
				     (unsigned long long)q.grow_faults, (unsigned long long)a);
				dump_maps(maps, s->base, end);
				return;
			}
			if (strncmp(p, a >= bottom ? "rw-" : "---", 3)) {
				fail("slot %d (committed %#llx): page %#llx is %s", i,
				     (unsigned long long)q.committed, (unsigned long long)a, p);
				dump_maps(maps, s->base, end);
				return;
			}
		}
		if (!lost_records && q.id < MAX_IDS && grow_records[q.id] != q.grow_faults)
			fail("slot %d id %u: %u GROW records, grow_faults %llu", i, q.id,
			     grow_records[q.id], (unsigned long long)q.grow_faults);
		/*
		 * Pages below the committed part may hold data from before
		 * REGISTER (it survives, hidden).  TRIM frees them: trim to
		 * half, and nothing above the guard and below sp - keep may
		 * stay resident, whatever happened before.
		 */
		{
			uint64_t keep = (q.committed / PG / 2) * PG, committed = q.committed;
			struct stackres_trim t = { .id = q.id, .sp = end, .keep = keep };

			if (ioctl(slot_fd(i), STACKRES_IOC_TRIM, &t)) {
				fail("slot %d: final TRIM: %s", i, strerror(errno));
				return;
			}
			memset(&q, 0, sizeof(q));
			q.id = t.id;
			if (ioctl(slot_fd(i), STACKRES_IOC_QUERY, &q) ||
			    q.committed != (committed < keep ? committed : keep)) {
				fail("slot %d: committed %#llx after TRIM to %#llx (was %#llx)", i,
				     (unsigned long long)q.committed, (unsigned long long)keep,
				     (unsigned long long)committed);
				return;
			}
			if (mincore((void *)(uintptr_t)s->base, SLOT_PAGES * PG, vec)) {
				fail("mincore: %s", strerror(errno));
				return;
			}
			for (k = GUARD_PAGES; k < (int)(SLOT_PAGES - keep / PG); k++)
				if (vec[k] & 1) {
					fail("slot %d: page %d resident after TRIM (keep %llu pages)",
					     i, k, (unsigned long long)(keep / PG));
					return;
				}
		}
	}
}

/* ------------------------------------------------------------------ */

static int reload_module(void)
{
	int k, fd, ret;

	for (k = 0; k < 100; k++) {
		if (!syscall(SYS_delete_module, "stackres", O_NONBLOCK))
			break;
		if (errno != EWOULDBLOCK && errno != EBUSY && errno != EAGAIN)
			return -errno;
		usleep(20000);
	}
	if (k == 100)
		return -EBUSY;
	fd = open(KO, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_fault,
				.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER };
	double seconds = 180, t0 = now(), round_s;
	int rounds = 0, opt, r, i, k;
	bool can_reload;
	pthread_t th[MAX_WORKERS + 2];

	if (argc > 1 && !strcmp(argv[1], "--exec-child"))
		return exec_child();
	while ((opt = getopt(argc, argv, "t:r:w:P")) != -1) {
		switch (opt) {
		case 'P':
			no_read_only = true;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'w':
			nworkers = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-t SECONDS] [-r ROUNDS] [-w WORKERS] [-P]\n",
				argv[0]);
			return 2;
		}
	}
	if (nworkers < 1 || nworkers > MAX_WORKERS)
		nworkers = 6;
	if (!rounds)
		rounds = seconds >= 120 ? (int)(seconds / 30) : 3;
	round_s = seconds / rounds;
	setvbuf(stdout, NULL, _IOLBF, 0);
	PG = sysconf(_SC_PAGESIZE);
	if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0)
		strcpy(self_exe, argv[0]);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL) || setup_altstack())
		return 2;
	have_exit_free = syscall(__NR_exit_free, 0, NULL, 0, 0x80000000u) == -1 &&
			 errno == EINVAL;
	can_reload = !geteuid() && !access(KO, R_OK) &&
		     !access("/sys/module/stackres/refcnt", R_OK);
	if (access(DEV, F_OK)) {
		printf("stress: SKIP: " DEV " absent (stackres.ko not loaded)\n");
		return 4;
	}
	printf("stress: %.0f s in %d rounds, %d workers, %s, module reload %s\n", seconds,
	       rounds, nworkers, have_exit_free ? "exit_free storm" : "no exit_free",
	       can_reload ? "between rounds" : "not possible here");

	/* The slots: fixed ranges, each between two holes. */
	for (i = 0; i < NSLOTS; i++) {
		char *p = mmap(NULL, (SLOT_PAGES + 2) * PG, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED)
			return 2;
		munmap(p, PG);
		munmap(p + (SLOT_PAGES + 1) * PG, PG);
		slots[i].base = (uintptr_t)p + PG;
		pthread_mutex_init(&slots[i].lock, NULL);
		if (mprotect(p + PG, SLOT_PAGES * PG, PROT_READ | PROT_WRITE))
			return 2;
	}

	for (r = 0; r < rounds && !failed; r++) {
		double rend = t0 + (r + 1) * round_s;
		int nth = 0;

		for (k = 0; k < NFILES; k++) {
			fds[k] = open(DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
			if (fds[k] < 0) {
				fail("round %d: open: %s", r, strerror(errno));
				break;
			}
		}
		if (failed)
			break;
		memset(grow_records, 0, sizeof(grow_records));
		lost_records = 0;
		for (i = 0; i < NSLOTS; i++) {
			slots[i].id = slots[i].clean_id = 0;
			do_register(i);
		}
		if (have_exit_free && !setup_stacks())
			fail("round %d: stack cache: %s", r, strerror(errno));
		stop = 0;
		pthread_barrier_init(&start_line, NULL, nworkers + 1);
		for (i = 0; i < nworkers; i++)
			pthread_create(&th[nth++], NULL, worker, (void *)(uintptr_t)(r * 100 + i + 1));
		pthread_create(&th[nth++], NULL, reader, NULL);
		if (have_exit_free && efd >= 0)
			pthread_create(&th[nth++], NULL, ef_storm, NULL);
		pthread_barrier_wait(&start_line);
		while (!stop && now() < rend)
			usleep(100000);
		stop = 1;
		for (i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start_line);
		drain_records();
		if (!failed)
			check_round();
		if (have_exit_free && efd >= 0)
			teardown_stacks();
		for (k = 0; k < NFILES; k++)
			close(fds[k]);
		INC(C_ROUNDS);
		printf("stress: round %d done at %.0f s: %" PRIu64 " touches, %" PRIu64
		       " exit_free threads, %" PRIu64 " reservations checked\n", r, now() - t0,
		       cnt[C_GROW_TOUCH], cnt[C_EF_THREADS], cnt[C_CHECKED]);
		if (can_reload && !failed && r + 1 < rounds) {
			int e = reload_module();

			if (e)
				fail("round %d: module reload: %s", r, strerror(-e));
			else
				INC(C_RELOADS);
		}
	}

	printf("stress: operation counts:\n");
	for (i = 0; i < C_NR; i++)
		printf("stress:   %-24s %" PRIu64 "\n", cname[i], cnt[i]);
	{
		static const char *const req[4] = { "REGISTER", "UNREGISTER", "TRIM", "QUERY" };
		int e;

		for (i = 0; i < 4; i++) {
			printf("stress:   %-10s", req[i]);
			for (e = 0; e < 64; e++)
				if (errnos[i][e])
					printf(" %s %" PRIu64, e ? strerrorname_np(e) : "ok",
					       errnos[i][e]);
			printf("\n");
		}
	}
	if (failed) {
		printf("stress: FAIL: %s\n", failmsg);
		return 1;
	}
	printf("stress: PASS (%.0f s)\n", now() - t0);
	return 0;
}
