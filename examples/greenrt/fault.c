// SPDX-License-Identifier: GPL-2.0
/*
 * The SIGSEGV handler: turn a coroutine's stack overflow into the death of
 * that coroutine only.
 *
 * The handler runs on the worker's sigaltstack (the faulting stack has no
 * room left).  For stackres stacks one system call (fine in a handler)
 * answers everything: STACKRES_IOC_QUERY by address (STACKRES_QUERY_ADDR |
 * STACKRES_QUERY_ANY: any reservation of the process) says whether si_addr
 * lies in a reservation, whether it is ours (not FOREIGN), which gr_stack
 * (user_data), whether it hit the guard (GUARD; else the kernel could not
 * commit) and how much was committed.  For other stacks it checks the
 * current coroutine's guard bounds; on SIGSEGV-grown stacks
 * (GR_STACKS_SIGSEGV) a fault between the guard and the read/write part is
 * growth instead: the handler mprotects and returns to retry the access.
 * On an overflow, instead of returning into an access that would fault
 * again, it restores the signal mask the fault interrupted and switches to
 * the worker's scheduler, marking the coroutine dead; the signal frame on
 * the altstack is simply abandoned.
 * Faults that are not a coroutine's stack get the default action.
 */
#include <linux/stackres.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <ucontext.h>

#include "internal.h"

static struct gr_worker *worker_of(const char *sp)
{
	unsigned int i;

	for (i = 0; i < GR_MAX_WORKERS; i++) {
		struct gr_worker *w = &gr_rt.workers[i];

		if (w->altstack && sp >= w->altstack && sp < w->altstack + GR_ALTSTACK)
			return w;
	}
	return NULL;
}

static void default_action(void)
{
	unsigned long ksa[6] = { 0 };	/* SIG_DFL, no flags, empty mask */

	gr_sys4(SYS_rt_sigaction, SIGSEGV, ksa, NULL, 8);
}

static void segv_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	char here;
	struct gr_worker *w = worker_of(&here);
	struct gr_coro *c = w ? w->current : NULL;
	uintptr_t a = (uintptr_t)si->si_addr;
	struct gr_stack *st = NULL;
	int status = GR_KILLED_OVERFLOW;
	size_t committed = 0;

	(void)sig;
	/* Only a fault has an address (not kill() or sigqueue()). */
	if (si->si_code != SEGV_ACCERR && si->si_code != SEGV_MAPERR)
		c = NULL;
	/* SIGSEGV-grown stacks: a touch below the read/write part grows it. */
	if (c && gr_rt.skind == GR_SK_SIGSEGV && gr_stack_grow(c->stack, a))
		return;		/* the access is retried */
	if (c && gr_rt.skind == GR_SK_STACKRES) {
		struct stackres_query q = {
			.flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY,
			.addr = a,
		};

		if (!gr_sys3(SYS_ioctl, gr_rt.srfd, STACKRES_IOC_QUERY, &q) &&
		    !(q.flags & STACKRES_QUERY_FOREIGN)) {
			st = (struct gr_stack *)(uintptr_t)q.user_data;
			committed = q.committed;
			if (!(q.flags & STACKRES_QUERY_GUARD))
				status = GR_KILLED_GROWFAIL;
		}
	} else if (c && a >= c->stack->start && a < c->stack->start + c->stack->guard) {
		st = c->stack;
	} else if (c && gr_rt.skind == GR_SK_SIGSEGV && a >= c->stack->start &&
		   a < c->stack->rw_low) {
		st = c->stack;		/* gr_stack_grow's mprotect failed */
		status = GR_KILLED_GROWFAIL;
	}
	if (!c || st != c->stack) {
		/* Not the running coroutine's stack: crash as without the runtime. */
		default_action();
		return;
	}
	c->status = status;
	c->fault_addr = a;
	c->fault_committed = gr_rt.skind == GR_SK_STACKRES ? committed :
		gr_stack_committed(st);
	c->fault_tid = gr_sys0(SYS_gettid);
	/* We never return through sigreturn: unblock SIGSEGV ourselves. */
	gr_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &uc->uc_sigmask, NULL, 8);
	w->pending = GR_P_KILLED;
	gr_switch(&c->ctx, &w->sched_ctx);
}

int gr_fault_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSEGV, &sa, NULL) ? -1 : 0;
}

int gr_fault_worker_init(struct gr_worker *w)
{
	stack_t ss = { .ss_sp = w->altstack, .ss_flags = 0, .ss_size = GR_ALTSTACK };

	return gr_sys2(SYS_sigaltstack, &ss, NULL);
}
