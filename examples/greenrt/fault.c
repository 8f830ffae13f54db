// SPDX-License-Identifier: GPL-2.0
/*
 * A coroutine's stack overflow ends that coroutine only.
 *
 * libstackres's SIGSEGV handler (sr_install_segv_handler()) classifies the
 * fault on the worker's alternate signal stack and calls on_fault() for one
 * in a guard of our stacks (or, on stackres, above it where the kernel
 * could not commit): the stack's user_data is its gr_stack, whose owner is
 * the coroutine.  Instead of returning into an access that would fault
 * again, on_fault() restores the signal mask the fault interrupted and
 * switches to the worker's scheduler, marking the coroutine dead; the
 * signal frame on the altstack is simply abandoned.  Faults that are not
 * ours go to the previous disposition.
 *
 * SIGSEGV-grown stacks (GR_STACKS_SIGSEGV, greenrt's own, for comparison)
 * have their own handler: a fault between the guard and the read/write part
 * is growth (mprotect, then the access is retried), one in the guard an
 * overflow.
 */
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "internal.h"

/* On the faulting worker: end the coroutine c, never return. */
static void kill_current(struct gr_coro *c, int status, uintptr_t addr, size_t committed,
			 const ucontext_t *uc)
{
	struct gr_worker *w = c->worker;

	c->status = status;
	c->fault_addr = addr;
	c->fault_committed = committed;
	c->fault_tid = gr_sys0(SYS_gettid);
	/* We never return through sigreturn: unblock SIGSEGV ourselves. */
	gr_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &uc->uc_sigmask, NULL, 8);
	w->pending = GR_P_KILLED;
	gr_switch(&c->ctx, &w->sched_ctx);
}

/* The running coroutine of the stack, if the fault happened on it. */
static struct gr_coro *running_on(struct gr_stack *st, const void *ucv)
{
	struct gr_coro *c = st ? atomic_load(&st->owner) : NULL;

	if (!c || atomic_load(&c->state) != GR_S_RUNNING || !c->worker ||
	    c->worker->current != c)
		return NULL;
	return c;
}

static void on_fault(const struct sr_fault *f, void *si, void *ucv, void *arg)
{
	struct gr_stack *st = f->user_data;
	struct gr_coro *c = running_on(st, ucv);

	(void)si;
	(void)arg;
	/* A thread stack's or another coroutine's: the library reports it. */
	if (!c || !f->on_stack)
		return;
	kill_current(c, f->kind == SR_FAULT_GROW_FAILED ? GR_KILLED_GROWFAIL :
		     GR_KILLED_OVERFLOW, (uintptr_t)f->addr,
		     gr_rt.skind == GR_SK_STACKRES ? f->committed : gr_stack_committed(st), ucv);
}

static void default_action(void)
{
	unsigned long ksa[6] = { 0 };	/* SIG_DFL, no flags, empty mask */

	gr_sys4(SYS_rt_sigaction, SIGSEGV, ksa, NULL, 8);
}

static void sigsegv_handler(int sig, siginfo_t *si, void *ucv)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	struct gr_stack *st = NULL;
	struct gr_coro *c;

	(void)sig;
	/* Only a fault has an address (not kill() or sigqueue()). */
	if (si->si_code == SEGV_ACCERR || si->si_code == SEGV_MAPERR)
		st = gr_stack_of(a);
	c = running_on(st, ucv);
	if (!c || c->stack != st || a >= st->rw_low) {
		/* Not the running coroutine's stack: crash as without the runtime. */
		default_action();
		return;
	}
	if (gr_stack_grow(st, a))
		return;		/* the access is retried */
	kill_current(c, a < st->start + st->guard ? GR_KILLED_OVERFLOW : GR_KILLED_GROWFAIL,
		     a, gr_stack_committed(st), ucv);
}

int gr_fault_init(void)
{
	struct sigaction sa;

	if (gr_rt.skind != GR_SK_SIGSEGV)
		return sr_install_segv_handler(gr_rt.ctx, on_fault, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsegv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSEGV, &sa, NULL) ? -1 : 0;
}

void gr_fault_fini(void)
{
	if (gr_rt.skind != GR_SK_SIGSEGV)
		sr_uninstall_segv_handler(gr_rt.ctx);
	else
		signal(SIGSEGV, SIG_DFL);
}
