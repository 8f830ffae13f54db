// SPDX-License-Identifier: MIT
/*
 * fibers: 10,000 Boost.Fiber fibers on libstackres stacks, one of which
 * runs off the bottom of its stack; the SIGSEGV is classified, the fiber
 * named, and the fiber carries on.  Then the pool's parked stacks are
 * trimmed and the memory left is measured.
 *
 *   fibers [NFIBERS]          (10000; the overflowing one is fiber 7777,
 *                              or NFIBERS * 7 / 9 for other counts)
 *
 * Prints TAP: each line is one thing checked, with exact expected values.
 * Environment: FIBERS_EXPECT_TIER (stackres, guard or mprotect: the tier the
 * pool must get here); LIBSTACKRES_TIER caps the tier (libstackres(3)).
 */
#include <stackres/boost.hpp>

#include <boost/fiber/all.hpp>

#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr std::size_t kStack = 256 << 10;	// usable bytes per fiber stack
constexpr std::size_t kGuard = 64 << 10;
constexpr std::size_t kParked = 1024;		// the pool keeps this many
constexpr std::size_t kSecond = 1000;		// fibers of the second round
constexpr std::size_t kBuf = 8192;		// each fiber's buffer on its stack

struct job {
	char name[32];
	unsigned long sum = 0;
	int ran = 0;
	int caught = 0;
	const void *local = nullptr;	// an address on the fiber's stack
	sigjmp_buf env;
};

// What the handler saw: written on the signal stack, read afterwards.
struct sighting {
	int count;
	int kind;
	int on_stack;
	const void *addr;
	const void *guard_start;
	const void *guard_end;
	const char *name;
	const job *owner;
	stackres::stack_label label;
};
sighting seen;

int tests, failed;

void check(bool ok, const char *what)
{
	std::printf("%sok %d %s\n", ok ? "" : "not ", ++tests, what);
	failed += !ok;
}

/*
 * The SIGSEGV callback, on the thread's alternate stack.  label_of() turns
 * the fault's user_data into the stack's label: the name the stack was
 * allocated under and the tag, here the job whose fiber is on it.  Leave
 * the overflowed stack for the point the fiber saved; anything that is not
 * one of the pool's stacks returns, and libstackres reports it and lets the
 * fault kill the process.
 */
void on_fault(const sr_fault *f, void *, void *, void *)
{
	const stackres::stack_label *l = stackres::label_of(*f);

	if (!l || !l->tag)
		return;
	seen.count++;
	seen.kind = f->kind;
	seen.on_stack = f->on_stack;
	seen.addr = f->addr;
	seen.guard_start = f->guard_start;
	seen.guard_end = f->guard_end;
	seen.name = l->name;
	seen.owner = static_cast<const job *>(l->tag);
	seen.label = *l;
	siglongjmp(static_cast<job *>(l->tag)->env, 1);
}

/*
 * A runaway write down the stack, as an unbounded on-stack buffer would
 * do: byte by byte, so the first byte it cannot write is the top byte of
 * the guard, exactly the stack's base - 1.
 */
__attribute__((noinline)) void runaway()
{
	volatile char *p = static_cast<char *>(__builtin_frame_address(0)) - 256;

	for (;;)
		*p-- = 1;
}

void work(job &j, bool overflow)
{
	volatile char buf[kBuf];

	j.local = const_cast<const char *>(&buf[0]);
	for (std::size_t i = 0; i < sizeof(buf); i += 64)
		buf[i] = static_cast<char>(i);
	boost::this_fiber::yield();	// every fiber is alive at once
	if (overflow) {
		if (!sigsetjmp(j.env, 1))
			runaway();
		j.caught = 1;
	}
	for (std::size_t i = 0; i < sizeof(buf); i += 64)
		j.sum += static_cast<unsigned char>(buf[i]);
	boost::this_fiber::yield();
	j.ran = 1;
}

unsigned long expected_sum()
{
	unsigned long s = 0;

	for (std::size_t i = 0; i < kBuf; i += 64)
		s += static_cast<unsigned char>(static_cast<char>(i));
	return s;
}

} // namespace

int main(int argc, char **argv)
{
	const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 0) : 10000;
	const std::size_t victim = n == 10000 ? 7777 : n * 7 / 9;
	const std::size_t page = sysconf(_SC_PAGESIZE);
	const char *want = std::getenv("FIBERS_EXPECT_TIER");
	char what[256];

	if (!n) {
		std::fprintf(stderr, "usage: fibers [NFIBERS >= 1]\n");
		return 2;
	}
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	std::printf("TAP version 13\n1..13\n");

	stackres::pool_options o;
	o.size = kStack;
	o.guard = kGuard;
	o.max_parked = kParked;
	o.trim_batch = 64;
	stackres::stack_allocator salloc(o);
	stackres::stack_pool &pool = salloc.pool();
	const char *tier = sr_tier_name(pool.tier());

	std::printf("# tier %s%s%s\n", tier, *sr_ctx_tier_reason(pool.ctx()) ? ": " : "",
		    sr_ctx_tier_reason(pool.ctx()));
	int want_tier = !want ? SR_TIER_BEST :
		!std::strcmp(want, "stackres") ? SR_TIER_STACKRES :
		!std::strcmp(want, "guard") ? SR_TIER_GUARD_MARKERS :
		!std::strcmp(want, "mprotect") ? SR_TIER_MPROTECT : -1;
	std::snprintf(what, sizeof(what), "tier %s (expected %s)", tier, want ? want : "any");
	check(want_tier == SR_TIER_BEST || want_tier == pool.tier(), what);

	if (sr_install_segv_handler(pool.ctx(), on_fault, nullptr) || sr_thread_altstack(0)) {
		check(false, "SIGSEGV handler and alternate signal stack");
		return 1;
	}

	// Round one: n fibers, all alive at once (launch::post: none runs
	// before main joins the first), one of them overflowing.
	std::vector<job> jobs(n);
	std::vector<boost::fibers::fiber> fs;
	fs.reserve(n);
	for (std::size_t i = 0; i < n; i++) {
		std::snprintf(jobs[i].name, sizeof(jobs[i].name), "fiber %zu", i);
		fs.emplace_back(std::allocator_arg, salloc.named(jobs[i].name, &jobs[i]),
				work, std::ref(jobs[i]), i == victim);
	}
	// Let each run to its first yield: its stack holds its frames now.
	boost::this_fiber::yield();
	stackres::pool_stats st = pool.stats();
	std::uint64_t peak = pool.committed();
	std::snprintf(what, sizeof(what), "%zu stacks out at once, all new (out %zu, created %" PRIu64 ")",
		      n, st.out, st.created);
	check(st.out == n && st.created == n && st.reused == 0, what);
	for (auto &f : fs)
		f.join();
	fs.clear();

	std::size_t ran = 0, right = 0;
	for (const job &j : jobs) {
		ran += j.ran;
		right += j.sum == expected_sum();
	}
	std::snprintf(what, sizeof(what), "all %zu fibers ran to the end (%zu did, %zu with the right sum)",
		      n, ran, right);
	check(ran == n && right == n, what);

	const job &v = jobs[victim];
	const char *base = static_cast<const char *>(seen.label.base);
	std::printf("# caught: %s overflowed: write at %p, guard %p-%p, stack %p-%p, %s\n",
		    seen.name ? seen.name : "(none)", seen.addr, seen.guard_start, seen.guard_end,
		    static_cast<const void *>(base),
		    static_cast<const void *>(base + seen.label.size),
		    sr_tier_name(pool.tier()));
	std::snprintf(what, sizeof(what), "one overflow caught, an overflow on its own stack (count %d, kind %d, on_stack %d)",
		      seen.count, seen.kind, seen.on_stack);
	check(seen.count == 1 && seen.kind == SR_FAULT_OVERFLOW && seen.on_stack == 1, what);
	std::snprintf(what, sizeof(what), "it is %s's (named \"%s\", tag job %td)", v.name,
		      seen.name ? seen.name : "", seen.owner ? seen.owner - jobs.data() : -1);
	check(seen.owner == &v && seen.name == v.name && v.caught == 1, what);
	std::snprintf(what, sizeof(what), "on the stack it ran on (a local at %p in %p-%p)",
		      v.local, static_cast<const void *>(base),
		      static_cast<const void *>(base + seen.label.size));
	check(static_cast<const char *>(v.local) >= base &&
	      static_cast<const char *>(v.local) < base + seen.label.size, what);
	std::snprintf(what, sizeof(what), "at the guard's top byte: %p == base - 1, guard [base - %zu KiB, base)",
		      seen.addr, kGuard >> 10);
	check(seen.addr == base - 1 && seen.guard_end == base &&
	      seen.guard_start == base - kGuard, what);

	// Every stack is back: up to kParked parked, the rest destroyed.
	const std::size_t parked = n < kParked ? n : kParked;
	const std::size_t second = parked < kSecond ? parked : kSecond;
	st = pool.stats();
	std::snprintf(what, sizeof(what), "after round one: %zu parked, %zu destroyed (parked %zu, destroyed %" PRIu64 ", out %zu)",
		      parked, n - parked, st.parked, st.destroyed, st.out);
	check(st.out == 0 && st.parked == parked && st.destroyed == n - parked, what);

	// Round two: fibers on parked stacks only.
	std::vector<job> jobs2(second);
	for (std::size_t i = 0; i < second; i++) {
		std::snprintf(jobs2[i].name, sizeof(jobs2[i].name), "second %zu", i);
		fs.emplace_back(std::allocator_arg, salloc.named(jobs2[i].name, &jobs2[i]),
				work, std::ref(jobs2[i]), false);
	}
	for (auto &f : fs)
		f.join();
	fs.clear();
	ran = 0;
	for (const job &j : jobs2)
		ran += j.ran && j.sum == expected_sum();
	st = pool.stats();
	std::snprintf(what, sizeof(what), "round two: %zu fibers ran on reused stacks (ran %zu, reused %" PRIu64 ", created %" PRIu64 ")",
		      second, ran, st.reused, st.created);
	check(ran == second && st.reused == second && st.created == n, what);

	// Trim what the batches have not: each parked stack keeps its top page.
	pool.trim();
	st = pool.stats();
	std::uint64_t after = pool.committed();
	std::printf("# committed: %" PRIu64 " KiB with %zu fibers alive, %" PRIu64 " KiB for %zu parked stacks after trimming\n",
		    peak >> 10, n, after >> 10, st.parked);
	std::snprintf(what, sizeof(what), "with %zu alive: a page and the buffer each (%" PRIu64 " >= %zu KiB)",
		      n, peak >> 10, n * (page + kBuf) >> 10);
	check(peak >= n * (page + kBuf), what);
	std::snprintf(what, sizeof(what), "every parked stack trimmed (trimmed %" PRIu64 ", parked %zu)",
		      st.trimmed, st.parked);
	check(st.parked == parked && st.trimmed >= parked, what);
	std::snprintf(what, sizeof(what), "committed after trimming: %" PRIu64 " KiB <= %zu parked x 1 page = %zu KiB",
		      after >> 10, st.parked, st.parked * page >> 10);
	check(after <= st.parked * page, what);

	// The stacks go back when the last allocator copy does.
	pool.release();
	std::snprintf(what, sizeof(what), "released: nothing committed (%" PRIu64 " bytes)",
		      pool.committed());
	check(pool.committed() == 0, what);

	sr_uninstall_segv_handler(pool.ctx());
	std::printf("# %d of %d failed\n", failed, tests);
	return failed ? 1 : 0;
}
