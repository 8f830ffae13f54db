// SPDX-License-Identifier: MIT
/*
 * Records.  On the stackres tier they are the module's version 1 records
 * (64 bytes), read from the context's /dev/stackres file.  Below it the
 * library's SIGSEGV handler queues an OVERFLOW record itself for every
 * guard hit it classifies (nothing else would), into a bounded lock-free
 * queue that a signal handler may push to, and signals an eventfd; like the
 * module's, the queue holds 256 records and counts what it drops.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <linux/stackres.h>

#include "internal.h"

/* Called from the SIGSEGV handler. */
void sr_synth_push(sr_ctx *ctx, const struct sr_fault *f)
{
	uint32_t pos = atomic_load_explicit(&ctx->ring_head, memory_order_relaxed);
	struct sr_synth *c;
	uint64_t one = 1;

	for (;;) {
		int32_t dif;

		c = &ctx->ring[pos % SR_RING];
		dif = (int32_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&ctx->ring_head, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			atomic_fetch_add(&ctx->ring_lost, 1);	/* full */
			goto signal;
		} else {
			pos = atomic_load_explicit(&ctx->ring_head, memory_order_relaxed);
		}
	}
	c->tid = (uint32_t)sr_sys0(SYS_gettid);
	c->addr = (uintptr_t)f->addr;
	c->user_data = f->user_data;
	c->slot = f->slot;
	c->in_slot = f->arena != NULL;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
signal:
	sr_sys3(SYS_write, ctx->efd, &one, sizeof(one));
}

SR_API int sr_events_fd(sr_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	return ctx->tier == SR_TIER_STACKRES ? ctx->fd : ctx->efd;
}

static void dispatch(const struct sr_event_handlers *h, const struct sr_event *ev)
{
	sr_event_fn fn;

	switch (ev->type) {
	case SR_EVENT_GROW:
		fn = h->grow;
		break;
	case SR_EVENT_WATERMARK:
		fn = h->watermark;
		break;
	case SR_EVENT_OVERFLOW:
		fn = h->overflow;
		break;
	case SR_EVENT_FAILED:
		fn = h->failed;
		break;
	case SR_EVENT_LOST:
		fn = h->lost;
		break;
	default:
		fn = h->other;
		break;
	}
	if (fn)
		fn(ev, h->arg);
}

static void decode(const struct stackres_record *r, struct sr_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = r->type;
	ev->origin = r->origin;
	ev->flags = r->flags & STACKRES_RECORD_SLOT ? SR_EVENT_SLOT : 0;
	ev->err = r->err;
	ev->tid = r->tid;
	ev->id = r->id;
	ev->addr = (void *)(uintptr_t)r->addr;
	ev->committed = r->committed;
	ev->user_data = (void *)(uintptr_t)r->user_data;
	ev->slot = ev->flags & SR_EVENT_SLOT ? (size_t)r->slot : 0;
}

/* At most this many records per call, so that a busy queue cannot keep it. */
#define SR_EVENTS_MAX	1024

static int wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int e = errno, r;

	r = poll(&p, 1, -1);
	r = r < 0 ? -errno : 0;
	errno = e;
	return r;
}

static int read_stackres(sr_ctx *ctx, const struct sr_event_handlers *h, int nonblocking)
{
	struct stackres_record buf[32];
	struct sr_event ev;
	int done = 0, e = errno;
	ssize_t n;
	size_t i;

	while (done < SR_EVENTS_MAX) {
		n = read(ctx->fd, buf, sizeof(buf));
		if (n < 0) {
			int r = -errno;

			errno = e;
			if (r == -EAGAIN && !done && !nonblocking) {
				r = wait_readable(ctx->fd);
				if (r)
					return r;
				continue;
			}
			if (r == -EAGAIN || done)
				break;
			return r;
		}
		if (n % sizeof(buf[0]))
			return -EPROTO;
		for (i = 0; i < n / sizeof(buf[0]); i++) {
			decode(&buf[i], &ev);
			dispatch(h, &ev);
			done++;
		}
	}
	return done ? done : -EAGAIN;
}

static int read_synth(sr_ctx *ctx, const struct sr_event_handlers *h, int nonblocking)
{
	struct sr_event ev;
	uint64_t cnt;
	int done = 0, e = errno;
	uint32_t lost;

	for (;;) {
		/* Clear the eventfd first: a push after this signals it again. */
		if (read(ctx->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN) {
			int r = -errno;

			errno = e;
			return r;
		}
		errno = e;
		sr_lock(&ctx->ev_lock);
		while (done < SR_EVENTS_MAX) {
			uint32_t pos = atomic_load_explicit(&ctx->ring_tail, memory_order_relaxed);
			struct sr_synth *c = &ctx->ring[pos % SR_RING];

			if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
				break;
			memset(&ev, 0, sizeof(ev));
			ev.type = SR_EVENT_OVERFLOW;
			ev.origin = SR_ORIGIN_USER;
			ev.flags = SR_EVENT_SYNTHETIC | (c->in_slot ? SR_EVENT_SLOT : 0);
			ev.tid = c->tid;
			ev.addr = (void *)c->addr;
			ev.user_data = c->user_data;
			ev.slot = c->slot;
			atomic_store_explicit(&c->seq, pos + SR_RING, memory_order_release);
			atomic_store_explicit(&ctx->ring_tail, pos + 1, memory_order_relaxed);
			sr_unlock(&ctx->ev_lock);
			dispatch(h, &ev);
			done++;
			sr_lock(&ctx->ev_lock);
		}
		lost = atomic_exchange(&ctx->ring_lost, 0);
		sr_unlock(&ctx->ev_lock);
		if (lost) {
			memset(&ev, 0, sizeof(ev));
			ev.type = SR_EVENT_LOST;
			ev.flags = SR_EVENT_SYNTHETIC;
			ev.committed = lost;
			dispatch(h, &ev);
			done++;
		}
		if (done || nonblocking)
			break;
		{
			int r = wait_readable(ctx->efd);

			if (r)
				return r;
		}
	}
	return done ? done : -EAGAIN;
}

SR_API int sr_events_read(sr_ctx *ctx, const struct sr_event_handlers *h, int nonblocking)
{
	static const struct sr_event_handlers none;

	if (!ctx)
		return -EINVAL;
	if (!h)
		h = &none;
	if (ctx->tier == SR_TIER_STACKRES)
		return read_stackres(ctx, h, nonblocking);
	return read_synth(ctx, h, nonblocking);
}
