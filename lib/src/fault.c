// SPDX-License-Identifier: MIT
/*
 * Classifying a SIGSEGV, the chaining handler, per-thread alternate stacks.
 *
 * Everything reachable from the handler is async-signal-safe: no lock, no
 * allocation, raw system calls only (sys.h), and at most one of them to
 * classify: STACKRES_IOC_QUERY by address on the stackres tier, none below
 * it (the lock-free lookup of ctx.c).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <linux/stackres.h>

#include "internal.h"

static uintptr_t sp_of(const void *ucv)
{
	const ucontext_t *uc = ucv;

	if (!uc)
		return 0;
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__i386__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_ESP];
#else
	return 0;
#endif
}

static void fault_clear(struct sr_fault *f)
{
	unsigned int i;

	f->kind = SR_FAULT_NOT_OURS;
	f->on_stack = 0;
	f->addr = NULL;
	f->user_data = NULL;
	f->stack = NULL;
	f->arena = NULL;
	f->slot = 0;
	f->guard_start = f->guard_end = NULL;
	f->committed = 0;
	f->sp = NULL;
	for (i = 0; i < sizeof(f->reserved) / sizeof(f->reserved[0]); i++)
		f->reserved[i] = 0;
}

static int classify_stackres(sr_ctx *ctx, uintptr_t addr, uintptr_t sp, struct sr_fault *f)
{
	struct stackres_query q;
	long r;

	/* (no memset: the compiler may not call into libc here either) */
	q.id = 0;
	q.flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY;
	q.addr = addr;
	q.start = q.len = q.guard = q.committed = q.peak = 0;
	q.grow_faults = q.overflows = q.user_data = q.slot = q.resident = 0;
	r = sr_sys3(SYS_ioctl, ctx->fd, STACKRES_IOC_QUERY, &q);
	if (r == -ENOENT)
		return 0;
	if (r)
		return (int)r;
	if (q.flags & STACKRES_QUERY_FOREIGN)
		return 0;
	if (q.flags & STACKRES_QUERY_SLOT) {
		/* An arena slot: only its guard is ours to report. */
		if (!(q.flags & STACKRES_QUERY_GUARD))
			return 0;
		f->kind = SR_FAULT_OVERFLOW;
		f->arena = sr_arena_find(ctx, addr);
		f->slot = q.slot;
		f->on_stack = sp > q.start && sp - q.start <= q.len;
	} else {
		/* Above the guard: the module could not commit (a FAILED record). */
		f->kind = q.flags & STACKRES_QUERY_GUARD ? SR_FAULT_OVERFLOW :
			SR_FAULT_GROW_FAILED;
		f->stack = sr_table_find(ctx, q.start);
		f->committed = q.committed;
		f->on_stack = sp >= q.start && sp - q.start <= q.len;
	}
	f->user_data = (void *)(uintptr_t)q.user_data;
	f->guard_start = (void *)(uintptr_t)q.start;
	f->guard_end = (void *)(uintptr_t)(q.start + q.guard);
	return 0;
}

static void classify_table(sr_ctx *ctx, uintptr_t addr, uintptr_t sp, struct sr_fault *f)
{
	sr_stack *st = sr_table_find(ctx, addr);
	sr_arena *a;
	uint32_t s;

	if (st) {
		uintptr_t start;
		size_t len, guard;
		void *ud;

		s = sr_seq_begin(&st->seq);
		start = st->start;
		len = st->len;
		guard = st->guard;
		ud = st->user_data;
		if (sr_seq_retry(&st->seq, s))
			return;
		f->kind = SR_FAULT_OVERFLOW;
		f->stack = st;
		f->user_data = ud;
		f->guard_start = (void *)start;
		f->guard_end = (void *)(start + guard);
		f->on_stack = sp >= start && sp - start <= len;
		return;
	}
	a = sr_arena_find(ctx, addr);
	if (a) {
		uintptr_t start, bottom;
		size_t slot_size, guard, slot;
		void *ud;

		s = sr_seq_begin(&a->seq);
		start = a->start;
		slot_size = a->slot_size;
		guard = a->guard;
		ud = a->user_data;
		if (sr_seq_retry(&a->seq, s) || addr < start)
			return;
		slot = (addr - start) / slot_size;
		bottom = start + slot * slot_size;
		if (addr - bottom >= guard)
			return;
		f->kind = SR_FAULT_OVERFLOW;
		f->arena = a;
		f->slot = slot;
		f->user_data = ud;
		f->guard_start = (void *)bottom;
		f->guard_end = (void *)(bottom + guard);
		f->on_stack = sp > bottom && sp - bottom <= slot_size;
	}
}

SR_API int sr_classify(sr_ctx *ctx, const void *siginfo, const void *ucontext,
		       struct sr_fault *f)
{
	const siginfo_t *si = siginfo;
	uintptr_t addr, sp;

	if (!ctx || !si || !f)
		return -EINVAL;
	fault_clear(f);
	addr = (uintptr_t)si->si_addr;
	sp = sp_of(ucontext);
	f->addr = si->si_addr;
	f->sp = (void *)sp;
	/* Only a fault the kernel raised (not kill(), sigqueue()) has an address. */
	if (si->si_signo != SIGSEGV || si->si_code <= 0)
		return 0;
	if (ctx->tier == SR_TIER_STACKRES)
		return classify_stackres(ctx, addr, sp, f);
	classify_table(ctx, addr, sp, f);
	return 0;
}

/* ---- the handler ---- */

#define SR_MAX_HANDLED	16

static sr_ctx *_Atomic handled[SR_MAX_HANDLED];
static _Atomic uint32_t handler_lock;
static struct sigaction prev_action;
static int installed;

static void put_str(char *buf, size_t *n, const char *s)
{
	while (*s && *n < 255)
		buf[(*n)++] = *s++;
}

static void put_hex(char *buf, size_t *n, uintptr_t v)
{
	char tmp[2 * sizeof(v)];
	int i = 0;

	put_str(buf, n, "0x");
	do {
		tmp[i++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (i && *n < 255)
		buf[(*n)++] = tmp[--i];
}

static void report(const struct sr_fault *f)
{
	char buf[256];
	size_t n = 0;

	put_str(buf, &n, f->kind == SR_FAULT_OVERFLOW ?
		"libstackres: stack overflow: guard hit at " :
		"libstackres: stack growth failed at ");
	put_hex(buf, &n, (uintptr_t)f->addr);
	put_str(buf, &n, f->arena ? ", arena slot " : ", stack ");
	put_hex(buf, &n, f->arena ? f->slot : (uintptr_t)f->stack);
	put_str(buf, &n, " (user_data ");
	put_hex(buf, &n, (uintptr_t)f->user_data);
	put_str(buf, &n, "), guard ");
	put_hex(buf, &n, (uintptr_t)f->guard_start);
	put_str(buf, &n, "-");
	put_hex(buf, &n, (uintptr_t)f->guard_end);
	put_str(buf, &n, "\n");
	sr_sys3(SYS_write, 2, buf, n);
}

static void set_default(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

/*
 * Not ours: what the previous disposition would have done.  A fault the
 * kernel raised repeats when we return; a signal sent with kill() must be
 * raised again (it stays blocked until we return).
 */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (prev_action.sa_flags & SA_SIGINFO) {
		if (prev_action.sa_sigaction) {
			prev_action.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (prev_action.sa_handler == SIG_IGN) {
		if (si->si_code > 0)
			set_default();
		return;
	} else if (prev_action.sa_handler != SIG_DFL) {
		prev_action.sa_handler(sig);
		return;
	}
	set_default();
	if (si->si_code <= 0)
		sr_sys3(SYS_tgkill, sr_sys0(SYS_getpid), sr_sys0(SYS_gettid), sig);
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	int e = errno, i;

	for (i = 0; i < SR_MAX_HANDLED; i++) {
		sr_ctx *ctx = atomic_load(&handled[i]);
		struct sr_fault f;

		if (!ctx || sr_classify(ctx, si, uc, &f) || f.kind == SR_FAULT_NOT_OURS)
			continue;
		/* Below stackres nobody else records the hit. */
		if (ctx->tier != SR_TIER_STACKRES && f.kind == SR_FAULT_OVERFLOW)
			sr_synth_push(ctx, &f);
		if (ctx->fault_fn)
			ctx->fault_fn(&f, si, uc, ctx->fault_arg);
		/*
		 * It returned.  A failed growth may be the program's own doing
		 * (committed memory it made PROT_NONE): the previous handler
		 * may know it.  An overflow would fault again: let it kill.
		 */
		if (f.kind == SR_FAULT_GROW_FAILED)
			break;
		report(&f);
		set_default();
		errno = e;
		return;
	}
	chain(sig, si, uc);
	errno = e;
}

SR_API int sr_install_segv_handler(sr_ctx *ctx, sr_fault_fn fn, void *arg)
{
	int i, slot = -1, r = 0;

	if (!ctx)
		return -EINVAL;
	sr_lock(&handler_lock);
	for (i = 0; i < SR_MAX_HANDLED; i++) {
		sr_ctx *c = atomic_load(&handled[i]);

		if (c == ctx) {
			slot = i;
			break;
		}
		if (!c && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		r = -ENOSPC;
		goto out;
	}
	ctx->fault_fn = fn;
	ctx->fault_arg = arg;
	if (!installed) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = segv_handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, &prev_action)) {
			r = -errno;
			goto out;
		}
		installed = 1;
	}
	atomic_store(&handled[slot], ctx);
out:
	sr_unlock(&handler_lock);
	return r;
}

static int forget(sr_ctx *ctx)
{
	int i, found = 0, left = 0;

	for (i = 0; i < SR_MAX_HANDLED; i++) {
		sr_ctx *c = atomic_load(&handled[i]);

		if (c == ctx) {
			atomic_store(&handled[i], NULL);
			found = 1;
		} else if (c) {
			left = 1;
		}
	}
	if (installed && !left) {
		struct sigaction cur;

		/* Put the previous one back, unless someone replaced ours since. */
		if (!sigaction(SIGSEGV, NULL, &cur) && (cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_sigaction == segv_handler) {
			sigaction(SIGSEGV, &prev_action, NULL);
			installed = 0;
		}
	}
	return found;
}

SR_API int sr_uninstall_segv_handler(sr_ctx *ctx)
{
	int found;

	if (!ctx)
		return -EINVAL;
	sr_lock(&handler_lock);
	found = forget(ctx);
	sr_unlock(&handler_lock);
	return found ? 0 : -ENOENT;
}

void sr_handler_forget(sr_ctx *ctx)
{
	sr_lock(&handler_lock);
	forget(ctx);
	sr_unlock(&handler_lock);
}

/* ---- alternate signal stacks ---- */

#define ALT_MAGIC	0x5352414c54535400ULL	/* "SRALTST" */

/* At the bottom of the alternate stack: overwritten only just before overflow. */
struct alt_hdr {
	uint64_t magic;
	void *self;
	size_t maplen;
};

SR_API int sr_thread_altstack(size_t size)
{
	size_t page = sysconf(_SC_PAGESIZE), len;
	struct alt_hdr *h;
	stack_t cur, ss;
	int e = errno;
	long r;
	char *p;

	r = sr_sys2(SYS_sigaltstack, NULL, &cur);
	if (r)
		return (int)r;
	if (!(cur.ss_flags & SS_DISABLE))
		return 0;		/* it has one: keep it */
	if (size > SIZE_MAX / 2)
		return -EINVAL;
	size = size ? (size + page - 1) & ~(page - 1) : SR_ALTSTACK_DEFAULT;
	len = page + size;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		errno = e;
		return (int)r;
	}
	/* A guard below it: a marker where the kernel has them, else PROT_NONE. */
	if (madvise(p, page, MADV_GUARD_INSTALL) && mprotect(p, page, PROT_NONE)) {
		r = -errno;
		munmap(p, len);
		errno = e;
		return (int)r;
	}
	errno = e;
	h = (struct alt_hdr *)(p + page);
	h->magic = ALT_MAGIC;
	h->self = h;
	h->maplen = len;
	ss.ss_sp = p + page;
	ss.ss_size = size;
	ss.ss_flags = 0;
	r = sr_sys2(SYS_sigaltstack, &ss, NULL);
	if (r)
		sr_unmap(p, len);
	return (int)r;
}

SR_API int sr_thread_altstack_free(void)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct alt_hdr *h;
	stack_t cur, off;
	long r;

	r = sr_sys2(SYS_sigaltstack, NULL, &cur);
	if (r)
		return (int)r;
	if (cur.ss_flags & SS_DISABLE)
		return 0;
	if (cur.ss_flags & SS_ONSTACK)
		return -EBUSY;
	h = cur.ss_sp;
	if (((uintptr_t)h & (page - 1)) || h->magic != ALT_MAGIC || h->self != h)
		return -ENOENT;		/* not one of ours */
	off.ss_sp = NULL;
	off.ss_size = 0;
	off.ss_flags = SS_DISABLE;
	r = sr_sys2(SYS_sigaltstack, &off, NULL);
	if (r)
		return (int)r;
	sr_unmap((char *)h - page, h->maplen);
	return 0;
}
