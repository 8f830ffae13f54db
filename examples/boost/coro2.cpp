// SPDX-License-Identifier: MIT
/*
 * coro2: boost::coroutine2 generators on the same libstackres allocator as
 * the fibers (stackres::stack_allocator is a Boost.Context StackAllocator,
 * and coroutine2 takes one as its first argument).
 *
 * 100 Fibonacci generators alive at once, advanced in turn; then 100 more,
 * on the stacks the first 100 gave back.  Prints TAP.
 */
#include <stackres/boost.hpp>

#include <boost/coroutine2/all.hpp>

#include <cinttypes>
#include <cstdio>
#include <vector>

namespace {

typedef boost::coroutines2::coroutine<std::uint64_t> coro;

int tests, failed;

void check(bool ok, const char *what)
{
	std::printf("%sok %d %s\n", ok ? "" : "not ", ++tests, what);
	failed += !ok;
}

void fibonacci(coro::push_type &yield)
{
	std::uint64_t a = 0, b = 1;

	for (;;) {
		yield(a);
		b += a;
		a = b - a;
	}
}

// Advance kGens generators kSteps times each, in turn; true if every one
// produced the Fibonacci numbers.
constexpr std::size_t kGens = 100, kSteps = 90;

bool run_round(stackres::stack_allocator &salloc, const char *name)
{
	std::vector<coro::pull_type> gens;
	std::uint64_t a = 0, b = 1;
	bool ok = true;

	gens.reserve(kGens);
	for (std::size_t i = 0; i < kGens; i++)
		gens.emplace_back(salloc.named(name), fibonacci);
	for (std::size_t step = 0; step < kSteps; step++) {
		for (auto &g : gens) {
			ok = ok && g && g.get() == a;
			g();
		}
		b += a;
		a = b - a;
	}
	return ok;
}

} // namespace

int main()
{
	char what[200];

	std::printf("TAP version 13\n1..3\n");

	stackres::pool_options o;
	o.size = 64 << 10;
	stackres::stack_allocator salloc(o);
	std::printf("# tier %s\n", sr_tier_name(salloc.pool().tier()));

	bool ok = run_round(salloc, "first");
	stackres::pool_stats st = salloc.pool().stats();
	std::snprintf(what, sizeof(what), "%zu generators at once, %zu Fibonacci numbers each (created %" PRIu64 ")",
		      kGens, kSteps, st.created);
	check(ok && st.created == kGens && st.out == 0, what);

	ok = run_round(salloc, "second");
	st = salloc.pool().stats();
	std::snprintf(what, sizeof(what), "%zu more on the same stacks (created %" PRIu64 ", reused %" PRIu64 ")",
		      kGens, st.created, st.reused);
	check(ok && st.created == kGens && st.reused == kGens, what);

	salloc.pool().trim();
	std::uint64_t c = salloc.pool().committed();
	std::snprintf(what, sizeof(what), "parked and trimmed: %" PRIu64 " KiB committed for %zu stacks",
		      c >> 10, st.parked);
	check(c <= st.parked * sr_ctx_page_size(salloc.pool().ctx()), what);
	return failed ? 1 : 0;
}
