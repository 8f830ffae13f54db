// SPDX-License-Identifier: MIT
/*
 * overflow: the smallest runtime on libstackres.  A coroutine (ucontext)
 * runs on a guarded, growable stack, recurses without end, and hits the
 * guard; the library's SIGSEGV handler hands the fault to on_overflow(),
 * which names the coroutine from the stack's cookie and leaves the dead
 * stack.  The program then goes on and says what it saw.
 *
 *   cc -o overflow overflow.c $(pkg-config --cflags --libs stackres)
 *
 * It runs on whatever tier the kernel gives (stackres, guard markers,
 * mprotect; LIBSTACKRES_TIER=guard or =mprotect caps it) and exits 0 only if
 * the overflow was caught in the guard of the coroutine's own stack.
 */
#define _GNU_SOURCE
#include <err.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include <stackres/stackres.h>

struct coroutine {
	const char *name;
	ucontext_t uc;
	sigjmp_buf overflowed;		/* where on_overflow() sends it */
	struct sr_fault fault;		/* what it saw */
};

static struct coroutine parser = { .name = "parser" };
static struct coroutine *my_coroutine = &parser;
static ucontext_t main_uc;

/* On the thread's alternate signal stack: the stack's cookie is the coroutine. */
static void on_overflow(const struct sr_fault *f, void *si, void *uc, void *arg)
{
	struct coroutine *co = f->user_data;

	(void)si, (void)uc, (void)arg;
	co->fault = *f;
	siglongjmp(co->overflowed, 1);	/* leave the overflowed stack */
}

static int recurse(int depth)
{
	volatile char frame[256];

	frame[0] = (char)depth;
	if (depth == 1 << 30)		/* never: the guard comes first */
		return 0;
	return recurse(depth + 1) + frame[0];
}

static void coroutine_main(void)
{
	if (!sigsetjmp(my_coroutine->overflowed, 1))
		recurse(0);
	/* Back on the coroutine's stack, above what overflowed. */
}

int main(void)
{
	sr_ctx *ctx;
	sr_stack *st;
	const struct sr_fault *f = &parser.fault;
	int ok;

	if (sr_ctx_create(SR_TIER_BEST, 0, &ctx) ||
	    sr_install_segv_handler(ctx, on_overflow, NULL) ||	/* names the stack */
	    sr_thread_altstack(0) ||				/* per thread */
	    sr_stack_create(ctx, 1 << 20, 64 << 10, my_coroutine, &st))
		errx(1, "libstackres setup failed");
	/* run the coroutine on [sr_stack_base(st), sr_stack_top(st)) */
	getcontext(&parser.uc);
	parser.uc.uc_stack.ss_sp = sr_stack_base(st);
	parser.uc.uc_stack.ss_size = sr_stack_size(st);
	parser.uc.uc_link = &main_uc;
	makecontext(&parser.uc, coroutine_main, 0);
	if (swapcontext(&main_uc, &parser.uc))
		err(1, "swapcontext");

	printf("tier: %s\n", sr_tier_name(sr_ctx_tier(ctx)));
	ok = f->kind == SR_FAULT_OVERFLOW && f->user_data == &parser && f->stack == st &&
	     f->guard_end == sr_stack_base(st) &&
	     (uintptr_t)f->addr - (uintptr_t)f->guard_start < sr_stack_guard(st);
	printf("%s: %s\n", parser.name, ok ? "stack overflow caught in the guard of its own stack" :
	       "no overflow of its stack seen");
	sr_stack_destroy(st);
	sr_ctx_destroy(ctx);
	return ok ? 0 : 1;
}
