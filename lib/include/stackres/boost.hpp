/* SPDX-License-Identifier: MIT */
/*
 * stackres/boost.hpp: libstackres stacks for Boost.Context, and so for
 * everything built on it: Boost.Fiber fibers, boost::coroutine2 coroutines,
 * boost::context::fiber.  Header-only; link libstackres
 * (`pkg-config --libs stackres`) and the Boost libraries you use.
 *
 *   #include <stackres/boost.hpp>
 *
 *   stackres::stack_allocator salloc;            // 1 MiB stacks, 64 KiB guard
 *   boost::fibers::fiber f(std::allocator_arg, salloc.named("worker"), fn);
 *   boost::coroutines2::coroutine<int>::pull_type src(salloc, gen);
 *
 * stack_allocator is a Boost.Context StackAllocator: allocate() returns a
 * boost::context::stack_context, deallocate() takes it back.  Copies share
 * one pool (Boost copies the allocator into each fiber and coroutine).  The
 * pool keeps up to max_parked returned stacks for reuse; once trim_batch of
 * them are untrimmed it gives their memory back to the kernel, keeping only
 * the page at the top (sr_trim_batch(): one system call per 64 stacks on the
 * stackres tier).  Beyond max_parked, returned stacks are destroyed.
 * deallocate() allocates no memory and takes a mutex; allocate() throws
 * std::bad_alloc or std::system_error when no stack can be made.
 *
 * Each stack has a stack_label, its libstackres user_data: sr_classify() on
 * a SIGSEGV in a guard answers with it, so a fault handler knows the name
 * (and tag) the stack was allocated under (label_of()).  allocate() writes
 * name and tag afresh each time, so a reused stack never carries its
 * previous owner's.
 *
 * Stacks are as big as asked (rounded up to pages); on the stackres tier
 * memory is committed only as the fiber's stack grows, on the lower tiers
 * as it is touched.  Every thread that runs fibers needs an alternate
 * signal stack (sr_thread_altstack()) for the SIGSEGV of an overflow to be
 * delivered at all.
 */
#ifndef STACKRES_BOOST_HPP
#define STACKRES_BOOST_HPP

#include <stackres/stackres.h>

#include <boost/context/stack_context.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <vector>

namespace stackres {

/*
 * One per stack, its user_data: what sr_classify() reports for a fault in
 * its guard.  Only the pool writes it; a fault handler may read it.
 */
struct stack_label {
	static constexpr std::uint64_t magic_value = 0x5352424f4f535400ULL; /* "SRBOOST" */

	std::uint64_t magic = magic_value;
	const char *name = nullptr;	/* given to named(), or nullptr */
	void *tag = nullptr;		/* given to named(), or nullptr */
	sr_stack *stack = nullptr;
	void *base = nullptr;		/* lowest usable byte */
	std::size_t size = 0;		/* usable bytes: base up to sctx.sp */
	unsigned long uses = 0;		/* allocations of this stack so far */
};

/* The label of the stack a fault was in, or nullptr if not one of ours. */
inline const stack_label *label_of(const sr_fault &fault) noexcept
{
	const stack_label *l = static_cast<const stack_label *>(fault.user_data);

	if (fault.kind == SR_FAULT_NOT_OURS || !fault.stack || !l ||
	    l->magic != stack_label::magic_value || l->stack != fault.stack)
		return nullptr;
	return l;
}

struct pool_options {
	std::size_t size = 1 << 20;		/* usable bytes per stack */
	std::size_t guard = 64 << 10;		/* guard bytes below each */
	std::size_t max_parked = 1024;		/* stacks kept for reuse (reserved) */
	std::size_t trim_batch = 64;		/* trim when this many are untrimmed */
	std::size_t keep = 0;			/* bytes a trim keeps below the label */
	int max_tier = SR_TIER_BEST;		/* for a context the pool makes */
};

struct pool_stats {
	std::uint64_t created = 0;	/* stacks made */
	std::uint64_t reused = 0;	/* allocations served from the parked ones */
	std::uint64_t trimmed = 0;	/* parked stacks trimmed */
	std::uint64_t destroyed = 0;	/* returned beyond max_parked (or at the end) */
	std::size_t out = 0;		/* allocated and not yet returned */
	std::size_t parked = 0;		/* kept for reuse now */
};

class stack_pool {
public:
	/* A pool on its own context (the best tier there is, up to max_tier). */
	explicit stack_pool(const pool_options &o = pool_options())
		: opt_(o), own_ctx_(true)
	{
		int r = sr_ctx_create(o.max_tier, 0, &ctx_);

		if (r)
			throw std::system_error(-r, std::generic_category(), "sr_ctx_create");
		reserve();
	}

	/* A pool on the caller's context, which must outlive the pool. */
	stack_pool(sr_ctx *ctx, const pool_options &o) : opt_(o), ctx_(ctx), own_ctx_(false)
	{
		reserve();
	}

	stack_pool(const stack_pool &) = delete;
	stack_pool &operator=(const stack_pool &) = delete;

	~stack_pool()
	{
		for (sr_stack *s : fresh_)
			unmake(s);
		for (sr_stack *s : trimmed_)
			unmake(s);
		if (own_ctx_)
			sr_ctx_destroy(ctx_);
	}

	sr_ctx *ctx() const noexcept { return ctx_; }
	int tier() const noexcept { return sr_ctx_tier(ctx_); }
	const pool_options &options() const noexcept { return opt_; }

	boost::context::stack_context allocate(const char *name, void *tag)
	{
		sr_stack *s = nullptr;
		stack_label *l;

		{
			std::lock_guard<std::mutex> g(mu_);
			std::vector<sr_stack *> &from = fresh_.empty() ? trimmed_ : fresh_;

			if (!from.empty()) {
				s = from.back();
				from.pop_back();
				stats_.reused++;
			}
			stats_.out++;
		}
		if (!s) {
			int r = make(&s);

			std::lock_guard<std::mutex> g(mu_);
			if (r) {
				stats_.out--;
				if (r == -ENOMEM)
					throw std::bad_alloc();
				throw std::system_error(-r, std::generic_category(),
							"sr_stack_create");
			}
			stats_.created++;
		}
		l = label_of(s);
		l->name = name;
		l->tag = tag;
		l->uses++;

		boost::context::stack_context sctx;
		sctx.sp = sp_of(s);
		sctx.size = l->size;
		return sctx;
	}

	/* Allocates nothing: the parked lists have room for max_parked. */
	void deallocate(boost::context::stack_context &sctx) noexcept
	{
		stack_label *l = *static_cast<stack_label **>(sctx.sp);
		sr_stack *s = l->stack;
		bool destroy = false, full = false;

		l->name = nullptr;
		l->tag = nullptr;
		{
			std::lock_guard<std::mutex> g(mu_);

			stats_.out--;
			if (fresh_.size() + trimmed_.size() + trimming_ >= opt_.max_parked) {
				destroy = true;
				stats_.destroyed++;
			} else {
				fresh_.push_back(s);
				full = opt_.trim_batch && fresh_.size() >= opt_.trim_batch;
			}
		}
		if (destroy)
			unmake(s);
		else if (full)
			trim();
	}

	/* Trim every parked stack not trimmed since it was last used. */
	void trim() noexcept
	{
		for (;;) {
			sr_stack *batch[chunk];
			sr_trim v[chunk];
			std::size_t n = 0;

			{
				std::lock_guard<std::mutex> g(mu_);

				while (n < chunk && !fresh_.empty()) {
					batch[n++] = fresh_.back();
					fresh_.pop_back();
				}
				trimming_ += n;
			}
			if (!n)
				return;
			/*
			 * Outside the lock: no other thread can take these
			 * stacks meanwhile.  A failed entry only leaves that
			 * stack's memory where it was.
			 */
			for (std::size_t i = 0; i < n; i++) {
				v[i] = sr_trim();
				v[i].stack = batch[i];
				v[i].sp = sp_of(batch[i]);
				v[i].keep = opt_.keep;
			}
			sr_trim_batch(ctx_, v, static_cast<unsigned int>(n));

			std::lock_guard<std::mutex> g(mu_);

			trimming_ -= n;
			stats_.trimmed += n;
			trimmed_.insert(trimmed_.end(), batch, batch + n);
		}
	}

	/* Destroy every parked stack. */
	void release()
	{
		std::vector<sr_stack *> a, b;

		{
			std::lock_guard<std::mutex> g(mu_);

			a.swap(fresh_);
			b.swap(trimmed_);
			stats_.destroyed += a.size() + b.size();
		}
		for (sr_stack *s : a)
			unmake(s);
		for (sr_stack *s : b)
			unmake(s);
	}

	pool_stats stats() const
	{
		std::lock_guard<std::mutex> g(mu_);
		pool_stats st = stats_;

		st.parked = fresh_.size() + trimmed_.size();
		return st;
	}

	/* Bytes committed to this pool's context: sr_committed_total(). */
	std::uint64_t committed() const
	{
		std::uint64_t total = 0;
		int r = sr_committed_total(ctx_, &total);

		if (r)
			throw std::system_error(-r, std::generic_category(), "sr_committed_total");
		return total;
	}

private:
	/* Stacks per sr_trim_batch() call, from a local array. */
	static constexpr std::size_t chunk = 64;

	void reserve()
	{
		fresh_.reserve(opt_.max_parked);
		trimmed_.reserve(opt_.max_parked);
	}

	/*
	 * The top 64 bytes of each stack are the pool's: the first word is the
	 * label, for deallocate(), which gets only the stack_context back.
	 * 64 keeps sctx.sp as aligned as the top (Boost wants 16).
	 */
	static constexpr std::size_t top_reserve = 64;

	static void *sp_of(sr_stack *s) noexcept
	{
		return static_cast<char *>(sr_stack_top(s)) - top_reserve;
	}

	static stack_label *label_of(sr_stack *s) noexcept
	{
		return static_cast<stack_label *>(sr_stack_user_data(s));
	}

	int make(sr_stack **sp)
	{
		std::unique_ptr<stack_label> l(new stack_label);
		sr_stack *s;
		int r = sr_stack_create(ctx_, opt_.size + top_reserve, opt_.guard,
					l.get(), &s);

		if (r)
			return r;
		l->stack = s;
		l->base = sr_stack_base(s);
		l->size = sr_stack_size(s) - top_reserve;
		*static_cast<stack_label **>(sp_of(s)) = l.release();
		*sp = s;
		return 0;
	}

	static void unmake(sr_stack *s) noexcept
	{
		stack_label *l = label_of(s);

		sr_stack_destroy(s);
		delete l;
	}

	pool_options opt_;
	sr_ctx *ctx_ = nullptr;
	bool own_ctx_;
	mutable std::mutex mu_;
	std::vector<sr_stack *> fresh_;		/* parked, not trimmed since use */
	std::vector<sr_stack *> trimmed_;	/* parked and trimmed */
	std::size_t trimming_ = 0;		/* taken from fresh_ by trim() */
	pool_stats stats_;
};

/*
 * The Boost.Context StackAllocator.  Copies share the pool; named() gives a
 * copy whose allocations carry that name and tag (a fault handler reads
 * them through label_of()).  The pool lives as long as any copy, and so as
 * long as any fiber or coroutine holding one.
 */
class stack_allocator {
public:
	typedef boost::context::stack_context stack_context;

	/* A pool of its own on a context of its own. */
	explicit stack_allocator(const pool_options &o = pool_options())
		: pool_(std::make_shared<stack_pool>(o)) {}

	explicit stack_allocator(std::shared_ptr<stack_pool> pool) : pool_(std::move(pool)) {}

	stack_allocator named(const char *name, void *tag = nullptr) const
	{
		stack_allocator a(*this);

		a.name_ = name;
		a.tag_ = tag;
		return a;
	}

	stack_context allocate() { return pool_->allocate(name_, tag_); }
	void deallocate(stack_context &sctx) noexcept { pool_->deallocate(sctx); }

	stack_pool &pool() const noexcept { return *pool_; }
	const std::shared_ptr<stack_pool> &shared_pool() const noexcept { return pool_; }

private:
	std::shared_ptr<stack_pool> pool_;
	const char *name_ = nullptr;
	void *tag_ = nullptr;
};

} /* namespace stackres */

#endif /* STACKRES_BOOST_HPP */
