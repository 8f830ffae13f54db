// SPDX-License-Identifier: GPL-2.0
/*
 * Case 3: thread churn.  Threads are created, run a trivial body and exit;
 * CHURN_INFLIGHT of them are in flight at once and the creator reuses a slot
 * as soon as its previous thread is gone.  Four ways of getting a stack back:
 *
 *   churn-pthread     glibc pthread_create + pthread_join (glibc's own cache)
 *   churn-trampoline  a fresh mmap'ed stack per thread; the thread munmaps it
 *                     itself from registers only and exits (as musl does for
 *                     detached threads); the creator learns of the exit from
 *                     CLONE_CHILD_CLEARTID on a word outside the stack
 *   churn-cleartid    a stack cache: the CLONE_CHILD_CLEARTID word lives in
 *                     the cached stack and the creator futex-waits on it
 *   churn-exit_free   the same cache, the thread ends with
 *                     exit_free(0, word, 0, U32|WAKE|PRIVATE)
 *
 * The raw threads share the creator's TLS (no CLONE_SETTLS), so they run
 * only code that touches neither libc nor TLS: inline system calls.
 */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/futex.h>

#include <linux/exit_free.h>
#ifndef EXIT_FREE_U32
#define EXIT_FREE_U32		(1U << 0)
#define EXIT_FREE_WAKE		(1U << 1)
#define EXIT_FREE_PRIVATE	(1U << 2)
#endif
#ifndef __NR_exit_free
#define __NR_exit_free 463
#endif

#define CHURN_INFLIGHT	4
#define CHURN_THREADS	1000
#define THREAD_FLAGS	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | \
			 CLONE_THREAD | CLONE_SYSVSEM)

/*
 * long bench_raw_clone(flags, stack_top, ctid, fn, arg): clone a thread that
 * calls fn(arg) on stack_top and must never return.  Returns the tid or
 * -errno in the creator.
 */
long bench_raw_clone(unsigned long flags, void *stack, volatile uint32_t *ctid,
		     void (*fn)(void *), void *arg);

#if defined(__x86_64__)
__asm__(
	".text\n"
	".globl bench_raw_clone\n"
	".type bench_raw_clone,@function\n"
	"bench_raw_clone:\n"
	"	and $-16, %rsi\n"
	"	sub $16, %rsi\n"
	"	mov %rcx, (%rsi)\n"	/* fn and arg go on the child's stack */
	"	mov %r8, 8(%rsi)\n"
	"	mov %rdx, %r10\n"	/* child_tid */
	"	xor %edx, %edx\n"	/* parent_tid */
	"	xor %r8d, %r8d\n"	/* tls */
	"	mov $56, %eax\n"	/* SYS_clone */
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"
	"1:	xor %ebp, %ebp\n"
	"	mov (%rsp), %rax\n"
	"	mov 8(%rsp), %rdi\n"
	"	call *%rax\n"
	"	ud2\n"
	".size bench_raw_clone, .-bench_raw_clone\n");

static inline long raw_syscall1(long nr, long a)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a)
			 : "rcx", "r11", "memory");
	return ret;
}

static inline long raw_exit_free(volatile uint32_t *addr, unsigned int flags)
{
	register long r10 __asm__("r10") = flags;
	long ret;

	__asm__ volatile("syscall" : "=a"(ret)
			 : "a"(__NR_exit_free), "D"(0), "S"(addr), "d"(0), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

/* munmap(base, len) then exit(0), using no memory in between. */
static __attribute__((noreturn)) void unmap_self_exit(void *base, size_t len)
{
	__asm__ volatile("syscall\n\t"
			 "xor %%edi, %%edi\n\t"
			 "mov $60, %%eax\n\t"
			 "syscall"
			 : : "a"(11), "D"(base), "S"(len) : "rcx", "r11", "memory");
	__builtin_unreachable();
}
#define NR_EXIT 60

#elif defined(__i386__)
__asm__(
	".text\n"
	".globl bench_raw_clone\n"
	".type bench_raw_clone,@function\n"
	"bench_raw_clone:\n"
	"	push %ebx\n"
	"	push %esi\n"
	"	push %edi\n"
	"	mov 16(%esp), %ebx\n"	/* flags */
	"	mov 20(%esp), %ecx\n"	/* stack */
	"	mov 24(%esp), %edi\n"	/* child_tid (CLONE_BACKWARDS order) */
	"	and $-16, %ecx\n"
	"	sub $16, %ecx\n"
	"	mov 28(%esp), %eax\n"
	"	mov %eax, (%ecx)\n"	/* fn */
	"	mov 32(%esp), %eax\n"
	"	mov %eax, 4(%ecx)\n"	/* arg */
	"	xor %edx, %edx\n"	/* parent_tid */
	"	xor %esi, %esi\n"	/* tls */
	"	mov $120, %eax\n"	/* SYS_clone */
	"	int $0x80\n"
	"	test %eax, %eax\n"
	"	jz 1f\n"
	"	pop %edi\n"
	"	pop %esi\n"
	"	pop %ebx\n"
	"	ret\n"
	"1:	xor %ebp, %ebp\n"
	"	mov (%esp), %eax\n"
	"	mov 4(%esp), %edx\n"
	"	sub $16, %esp\n"
	"	mov %edx, (%esp)\n"
	"	call *%eax\n"
	"	ud2\n"
	".size bench_raw_clone, .-bench_raw_clone\n");

static inline long raw_syscall1(long nr, long a)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a) : "memory");
	return ret;
}

static inline long raw_exit_free(volatile uint32_t *addr, unsigned int flags)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret)
			 : "a"(__NR_exit_free), "b"(0), "c"(addr), "d"(0), "S"(flags)
			 : "memory");
	return ret;
}

static __attribute__((noreturn)) void unmap_self_exit(void *base, size_t len)
{
	__asm__ volatile("int $0x80\n\t"
			 "xor %%ebx, %%ebx\n\t"
			 "mov $1, %%eax\n\t"
			 "int $0x80"
			 : : "a"(91), "b"(base), "c"(len) : "memory");
	__builtin_unreachable();
}
#define NR_EXIT 1
#else
#error "x86_64 and i386 only"
#endif

static volatile long churn_runs;

static void body(void)
{
	__atomic_add_fetch(&churn_runs, 1, __ATOMIC_RELAXED);
}

static void __attribute__((noreturn)) raw_exit(void)
{
	for (;;)
		raw_syscall1(NR_EXIT, 0);
}

struct slot {
	volatile uint32_t *word;	/* 0 = the slot's thread is gone */
	char *base;			/* stack mapping (guard at the bottom) */
	size_t len;
	pthread_t pt;
	int pt_live;
};

static void child_tramp(void *arg)
{
	struct slot *s = arg;
	char *base = s->base;
	size_t len = s->len;

	body();
	unmap_self_exit(base, len);
}

static void child_cleartid(void *arg)
{
	(void)arg;
	body();
	raw_exit();
}

static void child_exit_free(void *arg)
{
	body();
	raw_exit_free(arg, EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE);
	raw_exit();	/* exit_free refused: never reached when it works */
}

static void *pt_body(void *arg)
{
	body();
	return arg;
}

static void wait_zero(volatile uint32_t *w, int op)
{
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != 0)
		syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

/* A guarded stack as musl maps one: PROT_NONE, then RW above the guard. */
static char *map_stack(size_t len)
{
	char *p = mmap(NULL, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + CHURN_GUARD, len - CHURN_GUARD, PROT_READ | PROT_WRITE)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

static char exit_free_why[128];

const char *exit_free_absent(void)
{
	static int known;
	pid_t pid;
	int st;

	if (known)
		return exit_free_why[0] ? exit_free_why : NULL;
	known = 1;
	/*
	 * exit_free(42, NULL, 0, 0) is a plain thread exit with status 42.
	 * Probe it in a child: the child's exit status tells a working
	 * exit_free from ENOSYS, or from another syscall 463 (mainline 6.13+
	 * gave the number to setxattrat), which returns instead of exiting.
	 */
	pid = fork();
	if (pid == 0) {
		long r = syscall(__NR_exit_free, 42, NULL, 0UL, 0U);

		_exit(r == -1 && errno == ENOSYS ? 11 : 12);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		snprintf(exit_free_why, sizeof(exit_free_why), "cannot probe exit_free");
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 11)
		snprintf(exit_free_why, sizeof(exit_free_why),
			 "exit_free (syscall %d) not in this kernel: ENOSYS",
			 __NR_exit_free);
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 42)
		snprintf(exit_free_why, sizeof(exit_free_why),
			 "syscall %d is not exit_free here (probe status 0x%x)",
			 __NR_exit_free, st);
	return exit_free_why[0] ? exit_free_why : NULL;
}

enum churn_mode { CH_TRAMPOLINE, CH_PTHREAD, CH_CLEARTID, CH_EXIT_FREE };

static const char *const churn_name[] = {
	"churn-trampoline", "churn-pthread", "churn-cleartid", "churn-exit_free",
};

/* Words of the trampoline case: outside the stacks, which are unmapped. */
static volatile uint32_t tramp_word[CHURN_INFLIGHT];

/* Start the slot's next thread; 0 or -errno. */
static long churn_start(enum churn_mode mode, struct slot *s)
{
	long r;

	switch (mode) {
	case CH_PTHREAD:
		r = -pthread_create(&s->pt, NULL, pt_body, NULL);
		s->pt_live = !r;
		return r;
	case CH_TRAMPOLINE:
		s->len = CHURN_STACK + CHURN_GUARD;
		s->base = map_stack(s->len);
		if (!s->base)
			return -errno;
		*s->word = 1;
		r = bench_raw_clone(THREAD_FLAGS | CLONE_CHILD_CLEARTID,
				    s->base + s->len, s->word, child_tramp, s);
		break;
	case CH_CLEARTID:
		*s->word = 1;
		r = bench_raw_clone(THREAD_FLAGS | CLONE_CHILD_CLEARTID,
				    s->base + s->len - 128, s->word,
				    child_cleartid, NULL);
		break;
	case CH_EXIT_FREE:
	default:
		*s->word = 1;
		r = bench_raw_clone(THREAD_FLAGS, s->base + s->len - 128, NULL,
				    child_exit_free, (void *)s->word);
		break;
	}
	if (r < 0) {
		*s->word = 0;
		if (mode == CH_TRAMPOLINE)
			munmap(s->base, s->len);
		return r;
	}
	return 0;
}

/* Wait until the slot's thread is gone and its stack is free again. */
static void churn_wait(enum churn_mode mode, struct slot *s)
{
	switch (mode) {
	case CH_PTHREAD:
		if (s->pt_live)
			pthread_join(s->pt, NULL);
		s->pt_live = 0;
		break;
	case CH_EXIT_FREE:
		wait_zero(s->word, FUTEX_WAIT_PRIVATE);
		break;
	default:
		/* The kernel's clear_child_tid wake is a shared futex wake. */
		wait_zero(s->word, FUTEX_WAIT);
		break;
	}
}

static void churn_case(enum churn_mode mode)
{
	const char *name = churn_name[mode], *base = churn_name[CH_TRAMPOLINE];
	struct slot slots[CHURN_INFLIGHT] = { 0 };
	int n = reps(7), ok = 1;
	double v[n];

	if (mode == CH_EXIT_FREE && exit_free_absent()) {
		report_na(name, "threads/s", base, "%s", exit_free_absent());
		return;
	}
	for (int k = 0; k < CHURN_INFLIGHT; k++) {
		struct slot *s = &slots[k];

		if (mode == CH_TRAMPOLINE) {
			s->word = &tramp_word[k];
		} else if (mode != CH_PTHREAD) {
			/* The cache: one stack per slot, its word at the top. */
			s->len = CHURN_STACK + CHURN_GUARD;
			s->base = map_stack(s->len);
			if (!s->base) {
				report_na(name, "threads/s", base, "mmap: %s",
					  strerror(errno));
				return;
			}
			s->word = (volatile uint32_t *)(s->base + s->len - 64);
		}
	}
	for (int i = 0; i < n && ok; i++) {
		long before = churn_runs;
		uint64_t t0 = now_ns();

		for (int t = 0; t < CHURN_THREADS; t++) {
			struct slot *s = &slots[t % CHURN_INFLIGHT];
			long r;

			churn_wait(mode, s);
			r = churn_start(mode, s);
			if (r) {
				report_na(name, "threads/s", base, "thread #%d: %s",
					  t, strerror(-r));
				ok = 0;
				break;
			}
		}
		for (int k = 0; k < CHURN_INFLIGHT; k++)
			churn_wait(mode, &slots[k]);
		v[i] = CHURN_THREADS / ((now_ns() - t0) / 1e9);
		if (ok && churn_runs - before != CHURN_THREADS) {
			report_na(name, "threads/s", base,
				  "%ld thread bodies ran for %d threads",
				  churn_runs - before, CHURN_THREADS);
			ok = 0;
		}
	}
	if (mode == CH_CLEARTID || mode == CH_EXIT_FREE)
		for (int k = 0; k < CHURN_INFLIGHT; k++)
			munmap(slots[k].base, slots[k].len);
	if (ok)
		report(name, "threads/s", base, v, n);
}

void bench_churn(void)
{
	churn_case(CH_TRAMPOLINE);
	churn_case(CH_PTHREAD);
	churn_case(CH_CLEARTID);
	churn_case(CH_EXIT_FREE);
}
