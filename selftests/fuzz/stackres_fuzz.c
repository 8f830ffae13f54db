// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, reproducible fuzzer for the /dev/stackres ioctls (REGISTER,
 * ARENA, UNREGISTER, TRIM, QUERY and, of ABI version 1, FEATURES,
 * RECORD_SIZE, TRIM_VEC and LIST; unknown numbers, directions and sizes;
 * read()) and for exit_free(2).
 *
 *	stackres_fuzz [-s SEED] [-n CALLS] [-m MAPS_EVERY] [-v]
 *	(or FUZZ_SEED, FUZZ_CALLS, FUZZ_MAPS_EVERY in the environment)
 *
 * Every call's arguments come from one splitmix64 stream, so a seed and a
 * call index name one call.  Memory addresses differ between runs with ASLR;
 * the choices made from them do not.
 *
 * The fuzzer is not content with "some errno": it keeps a model of what it
 * registered and knows the regions it points into, and predicts the exact
 * outcome of every call from the rules of stackres(4) (and
 * Documentation/userspace-api/stackres.rst) and stackres(4)'s ERRORS
 * (EFAULT for the struct pointer first, then EINVAL, ENXIO, EEXIST, ...).
 * Where the rules leave a choice (the order of two unrelated checks, memory
 * that may or may not be grown by a GUP path), the prediction is a set of
 * errnos, always a subset of the errnos stackres(4) and exit_free(2) list.
 * A successful call is checked further: REGISTER's and ARENA's returned
 * fields and protections, QUERY's output against the model (committed,
 * peak, grow_faults, overflows, flags), exit_free's store (width, value,
 * neighbouring bytes, exit status).  After a failed call /proc/self/maps
 * must be unchanged: the fuzzer keeps a snapshot taken after its last
 * legitimate change and compares every MAPS_EVERY failed calls (a
 * difference names the calls since the last comparison).
 *
 * Dense mode: ARENA cuts caller memory (it can succeed in the REGISTER
 * region and the private half of the mixed one) or a STACKRES_MAP
 * mapping into a few slots of a few pages.  At most MAX_ARENAS of caller
 * memory live at once; they take part in the same model as reservations
 * (EEXIST both ways, ids, UNREGISTER, last close, struct pointers into a
 * slot or a slot's guard).  /proc/self/pagemap shows whether the guard
 * markers sit at the bottom of each slot, and nowhere else.  QUERY by
 * address answers the slot (STACKRES_QUERY_SLOT, committed = peak = slot -
 * guard, no growth steps); TRIM names a slot by sp in (slot start, slot
 * end], frees its pages below sp - keep (probe bytes show which) and leaves
 * the mapping as it was.  An arena that ends leaves its markers: the
 * fuzzer removes them (MADV_GUARD_REMOVE) so the memory can be reused.
 * STACKRES_MAP results, reservations and arenas alike, are checked, used
 * and unmapped at once: a mapping placed anywhere could fill a gap that
 * other targets count on being free.
 *
 * ABI version 1: the struct size of REGISTER, ARENA, TRIM, QUERY, FEATURES,
 * TRIM_VEC and LIST comes from the ioctl number, and every such call picks
 * one: version 0, version 1, a size in between, larger with a zero tail,
 * larger with a non-zero byte in the tail (E2BIG), smaller than version 0,
 * larger than a page (E2BIG).  A size other than version 0's, version 1's
 * or larger is no request of the four version 0 ioctls (ENOTTY, as
 * version 0 answered it); the new ones take version 1's or larger (EINVAL
 * below).  The module sees the caller's bytes up to its own size and zeros
 * beyond ("the kernel's view"), and the prediction is made from that view;
 * the module must write no byte beyond the caller's size (sentinels after
 * the struct show it).  user_data comes
 * back in QUERY, LIST and v1 records; align is honoured (checked on the
 * address, and the excess mapping must be gone); TRIM by address finds the
 * reservation or slot whose (start, end] holds sp and writes back the
 * committed size (an arena slot's resident bytes: within bounds); TRIM_VEC
 * is predicted entry by entry (the done index, the errno of the first bad
 * entry, the model trimmed up to it); LIST's entries, totals and
 * pagination match the model; QUERY by address with STACKRES_QUERY_ANY
 * through either file finds the other file's reservations (FOREIGN), and
 * GUARD says whether the address lies in a guard.  Resident bytes are
 * checked against bounds (at most the range, at most committed for a
 * STACKRES_MAP reservation, equal to it with STACKRES_POPULATE), since
 * caller memory may hold pages from before it was registered (until a
 * trim down to the committed bottom discarded them).  A failed call
 * changes nothing, including one whose answer (TRIM's committed,
 * TRIM_VEC's done or committed) cannot be stored.  STACKRES_LARGE_FOLIOS
 * reservations grow and are trimmed at 64 KiB boundaries.
 *
 * exit_free() runs in a task that shares our memory (CLONE_VM, not a
 * thread, so its exit status is visible): a failing call returns and that
 * task goes on with the next call; a successful one ends it, and a new task
 * continues with the next index.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/exit_free.h>
#include <linux/stackres.h>

#include "../kselftest.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define DEV		"/dev/stackres"
#define ARENA_PAGES	64	/* private anonymous memory that REGISTER may use */
#define FD2_PAGES	8	/* its top pages: two reservations of a second fd */
#define HOLE_PAGES	32	/* a free range (STACKRES_MAP with a start) */
#define MAX_LIVE	24
#define SENTINEL	0xa5

/* ------------------------------------------------------------------ */
/* Random numbers: splitmix64, one stream for the whole run.           */

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool pct(unsigned int p)
{
	return rn(100) < p;
}

/* ------------------------------------------------------------------ */
/* The ABI we run in.                                                  */

static uint64_t PG, task_size, mmap_min;
static bool is64, is_compat;
static pid_t mytid;

/* Values of interest for any 64-bit field. */
static uint64_t boundary(void)
{
	static const uint64_t fixed[] = {
		0, 1, 2, 7, 8, 0xfff, 0x1000, 0x1001, 0x2000, 0x10000,
		0x7fffffff, 0x80000000, 0xfffff000, 0xffffffff,
		0x100000000ULL, 0x100001000ULL, 0x7ffffffff000ULL,
		0x800000000000ULL, 0x8000000000000000ULL,
		0xfffffffffffff000ULL, 0xffffffffffffffffULL,
		0xffff888000000000ULL,
	};

	switch (rn(5)) {
	case 0:
		return task_size + PG * rn(3) - PG;
	case 1:
		return rnd();
	case 2:
		return PG * rn(1 << 20);
	default:
		return fixed[rn(sizeof(fixed) / sizeof(fixed[0]))];
	}
}

/* Addresses at or above task_size that fit in a pointer of this ABI. */
static uint64_t kernel_addr(void)
{
	static const uint64_t k64[] = {
		0xffff888000000000ULL, 0xffffffff81000000ULL,
		0xffffffffff600000ULL, 0xfffffffffffff000ULL,
		0xffffffffffffffc0ULL, 0xffffc90000000000ULL,
	};
	static const uint64_t k32[] = {
		0xc0000000, 0xc1000000, 0xf0000000, 0xfffff000, 0xffffffc0,
		0xffffe000,
	};
	uint64_t a;

	if (is64)
		a = k64[rn(6)];
	else
		a = k32[rn(6)];
	if (a < task_size)
		a = task_size + (pct(50) ? 0 : PG * rn(2));
	return a;
}

static uint64_t noncanonical(void)
{
	static const uint64_t nc[] = {
		0x0000800000000000ULL, 0x0000800000001000ULL,
		0x8000000000000000ULL, 0x7fffffffffffffc0ULL,
		0x0001000000000000ULL,
	};

	return nc[rn(5)];
}

/* ------------------------------------------------------------------ */
/* Raw system calls: the exit_free task shares our TLS (and errno).     */

static inline long raw_syscall(long nr, long a, long b, long c, long d)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;

	__asm__ volatile ("syscall"
			  : "=a" (ret)
			  : "a" (nr), "D" (a), "S" (b), "d" (c), "r" (r10)
			  : "rcx", "r11", "memory");
#elif defined(__i386__)
	__asm__ volatile ("int $0x80"
			  : "=a" (ret)
			  : "a" (nr), "b" (a), "c" (b), "d" (c), "S" (d)
			  : "memory");
#else
#error "x86 only"
#endif
	return ret;
}

/* ------------------------------------------------------------------ */
/* /proc/self/maps snapshots, read with raw syscalls (no allocation).   */

#define MAPS_SIZE	(128 * 1024)
static char maps_snap[MAPS_SIZE], maps_now[MAPS_SIZE];
static bool maps_dirty = true;
static unsigned int maps_every = 8, maps_pending;
static uint64_t maps_checks;
static long maps_since;		/* first call index not yet compared */

static long raw_read_file(const char *path, char *buf, size_t size)
{
	long fd, n, off = 0;

#ifdef __NR_open
	fd = raw_syscall(__NR_open, (long)path, O_RDONLY | O_CLOEXEC, 0, 0);
#else
	fd = raw_syscall(__NR_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0);
#endif
	if (fd < 0)
		return fd;
	while ((size_t)off < size - 1) {
		n = raw_syscall(__NR_read, fd, (long)(buf + off), size - 1 - off, 0);
		if (n <= 0) {
			if (n < 0)
				off = n;
			break;
		}
		off += n;
	}
	raw_syscall(__NR_close, fd, 0, 0, 0);
	if (off >= 0)
		buf[off] = 0;
	return off;
}

static void maps_take(void)
{
	if (raw_read_file("/proc/self/maps", maps_snap, MAPS_SIZE) <= 0)
		maps_snap[0] = 0;
	maps_dirty = false;
	maps_pending = 0;
}

/* Before a call: make sure the snapshot describes the memory now. */
static void maps_before(long idx)
{
	if (maps_dirty) {
		maps_take();
		maps_since = idx;
	}
}

/* After a failed call: returns false if the maps changed. */
static bool maps_after_failure(long idx, bool force)
{
	if (++maps_pending < maps_every && !force)
		return true;
	maps_pending = 0;
	maps_checks++;
	if (raw_read_file("/proc/self/maps", maps_now, MAPS_SIZE) <= 0)
		return false;
	if (strcmp(maps_snap, maps_now))
		return false;
	maps_since = idx + 1;
	return true;
}

/* Permissions of the VMA that contains @addr ("" if none), from maps_now. */
static const char *perms_at(uint64_t addr)
{
	static char p[5];
	char *line = maps_now;

	while (*line) {
		unsigned long long s, e;
		char *nl = strchr(line, '\n');

		if (sscanf(line, "%llx-%llx %4s", &s, &e, p) == 3 &&
		    addr >= s && addr < e)
			return p;
		if (!nl)
			break;
		line = nl + 1;
	}
	return "";
}

/* ------------------------------------------------------------------ */
/* The regions the fuzzer points into.                                  */

/*
 * Pointer arena, page by page:
 *   0,1 rw private anon       2 PROT_NONE        3 read-only (shared memfd)
 *   4   rw private anon       5 hole             6 rw private anon
 *   7   rw shared memfd       8 hole
 * so that a struct can lie across VMAs that all allow the access (6|7),
 * across a read-only and a writable one (3|4), or run into memory that
 * faults (1|2, 2|3, 4|5).
 */
static char *pa, *ro_alias;
static char *arena, *hole, *shared_r, *file_r, *mix_r, *top_page;
static uint64_t vdso_page, text_page, stack_page;

/*
 * Arrays of TRIM_VEC and LIST: VEC_PAGES read/write pages followed by a
 * PROT_NONE page, and VEC_RO_PAGES read-only ones (written through an
 * alias).
 */
#define VEC_PAGES	64
#define VEC_RO_PAGES	4
static char *vecbuf, *vec_ro, *vec_ro_alias;

static int stackres_fd = -1, fd2 = -1, ef_fd = -1;

static bool setup_regions(void)
{
	int mfd = memfd_create("fuzz", 0), vmfd;
	char *p;

	if (mfd < 0 || ftruncate(mfd, 8 * PG))
		return false;

	pa = mmap(NULL, 9 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pa == MAP_FAILED)
		return false;
	if (mprotect(pa, 2 * PG, PROT_READ | PROT_WRITE) ||
	    mprotect(pa + 4 * PG, PG, PROT_READ | PROT_WRITE) ||
	    mprotect(pa + 6 * PG, PG, PROT_READ | PROT_WRITE) ||
	    munmap(pa + 5 * PG, PG) || munmap(pa + 8 * PG, PG))
		return false;
	if (mmap(pa + 3 * PG, PG, PROT_READ, MAP_SHARED | MAP_FIXED, mfd, 0) == MAP_FAILED ||
	    mmap(pa + 7 * PG, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, PG) ==
	    MAP_FAILED)
		return false;
	ro_alias = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (ro_alias == MAP_FAILED)
		return false;

	/* Each REGISTER target region is followed by a hole. */
	p = mmap(NULL, (ARENA_PAGES + 1) * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p + ARENA_PAGES * PG, PG))
		return false;
	arena = p;

	p = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p + 4 * PG, PG))
		return false;
	shared_r = p;

	p = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 2 * PG);
	if (p == MAP_FAILED || munmap(p + 4 * PG, PG))
		return false;
	file_r = p;

	/* [2 pages private anon][2 pages shared anon][hole] */
	p = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p + 4 * PG, PG) ||
	    mmap(p + 2 * PG, 2 * PG, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return false;
	mix_r = p;

	p = mmap(NULL, (VEC_PAGES + 1) * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + VEC_PAGES * PG, PG, PROT_NONE))
		return false;
	vecbuf = p;
	vmfd = memfd_create("fuzz-vec", 0);
	if (vmfd < 0 || ftruncate(vmfd, VEC_RO_PAGES * PG))
		return false;
	vec_ro = mmap(NULL, VEC_RO_PAGES * PG, PROT_READ, MAP_SHARED, vmfd, 0);
	vec_ro_alias = mmap(NULL, VEC_RO_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			    vmfd, 0);
	close(vmfd);
	if (vec_ro == MAP_FAILED || vec_ro_alias == MAP_FAILED)
		return false;

	/* The last page of the user address space, if it is free (ASLR). */
	p = mmap((void *)(uintptr_t)(task_size - PG), PG, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	top_page = (p == (void *)(uintptr_t)(task_size - PG)) ? p : NULL;
	if (p != MAP_FAILED && !top_page)
		munmap(p, PG);

	/* Last, so that no later mapping of ours lands in the free range. */
	p = mmap(NULL, (HOLE_PAGES + 2) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, (HOLE_PAGES + 2) * PG))
		return false;
	hole = p + PG;

	vdso_page = getauxval(AT_SYSINFO_EHDR);
	text_page = (uintptr_t)&setup_regions & ~(PG - 1);
	stack_page = (uintptr_t)&p & ~(PG - 1);
	if (!vdso_page)
		vdso_page = text_page;
	close(mfd);
	return true;
}

/* ------------------------------------------------------------------ */
/* Where a struct pointer points.                                       */

enum pcls { P_OK, P_RO, P_BAD };

enum pkind {
	K_OK, K_ACROSS, K_RO, K_RO_ACROSS, K_NONE_TAIL, K_NONE, K_NONE_HEAD,
	K_HOLE_TAIL, K_HOLE, K_NULL, K_LOW, K_KERNEL, K_TOP, K_NONCANON,
	K_RES, K_GUARD, K_SLOT, K_NR
};

static const char *const kind_name[K_NR] = {
	"ok", "across-vmas", "read-only", "read-only|rw", "rw|none", "none",
	"none|ro", "rw|hole", "hole", "NULL", "low", "kernel", "top-straddle",
	"non-canonical", "uncommitted-res", "guard", "arena-slot",
};

struct place {
	uint64_t addr;
	enum pcls cls;
	enum pkind kind;
	int res;		/* live[] index for K_RES, K_GUARD, K_SLOT */
};

/* ------------------------------------------------------------------ */
/* The model of our registrations.                                      */

/*
 * A reservation, or an arena (slot != 0): [start, end) cut into slots of
 * slot bytes whose bottom guard_top - start bytes are guard markers.  An
 * arena has no committed bottom: chunk, bottom, peak and steps are unused.
 */
struct res {
	int fd;			/* 1: stackres_fd, 2: fd2 */
	uint32_t id;
	bool mapped;		/* made by STACKRES_MAP: unmapped soon */
	uint64_t start, end, guard_top, chunk, bottom, peak, steps;
	uint64_t slot;		/* arena: bytes per slot; reservation: 0 */
	uint64_t ovf_lo, ovf_hi;
	long last_hit;		/* call index of the last guard hit foreseen */
	uint64_t user_data;	/* as the module saw it at REGISTER or ARENA */
	bool below;		/* may hold pages below its committed bottom */
	uint32_t flags;
};

static struct res live[MAX_LIVE];
static int nlive;
static uint32_t dead_ids[64];
static unsigned int ndead;

static int find_res_addr(uint64_t a, int fd)
{
	int i;

	for (i = 0; i < nlive; i++)
		if (live[i].fd == fd && a >= live[i].start && a < live[i].end)
			return i;
	return -1;
}

static int find_res_id_fd(uint32_t id, int fd)
{
	int i;

	for (i = 0; i < nlive; i++)
		if (live[i].fd == fd && live[i].id == id)
			return i;
	return -1;
}

static int find_res_id(uint32_t id)
{
	return find_res_id_fd(id, 1);
}

/* TRIM by address: the reservation or arena of file @fd whose (start, end] holds @sp. */
static int find_res_sp(uint64_t sp, int fd)
{
	int i;

	for (i = 0; i < nlive; i++)
		if (live[i].fd == fd && sp > live[i].start && sp <= live[i].end)
			return i;
	return -1;
}

/* Any file's reservation that holds @a (QUERY with STACKRES_QUERY_ANY). */
static int find_res_any(uint64_t a)
{
	int i;

	for (i = 0; i < nlive; i++)
		if (a >= live[i].start && a < live[i].end)
			return i;
	return -1;
}

static bool overlaps_live(uint64_t s, uint64_t e)
{
	int i;

	for (i = 0; i < nlive; i++)
		if (s < live[i].end && live[i].start < e)
			return true;
	return false;
}

static void drop_res(int i)
{
	dead_ids[ndead++ % 64] = live[i].id;
	live[i] = live[--nlive];
}

/* The growth rule: stackres(4), Reservations. */
static void model_touch(struct res *r, uint64_t a)
{
	uint64_t nb;

	/* A slot is read/write above its guard: nothing to commit. */
	if (r->slot || a >= r->bottom || a < r->guard_top)
		return;
	nb = a & ~(PG - 1);
	if (r->bottom - r->guard_top <= r->chunk)
		nb = r->guard_top;
	else if (r->bottom - r->chunk < nb)
		nb = r->bottom - r->chunk;
	/* Large folios: down to a folio boundary, never into the guard. */
	if (r->flags & STACKRES_LARGE_FOLIOS) {
		nb &= ~(uint64_t)(STACKRES_FOLIO_SIZE - 1);
		if (nb < r->guard_top)
			nb = r->guard_top;
	}
	r->bottom = nb;
	r->steps++;
	if (r->end - r->bottom > r->peak)
		r->peak = r->end - r->bottom;
}

static uint64_t nslots_of(const struct res *r)
{
	return (r->end - r->start) / r->slot;
}

static uint64_t guard_of(const struct res *r)
{
	return r->guard_top - r->start;
}

/* The start of a random slot of arena @r. */
static uint64_t any_slot(const struct res *r)
{
	return r->start + rn(nslots_of(r)) * r->slot;
}

static int pick_fd1_res(bool need_uncommitted, bool need_guard)
{
	int i, c = 0, pick = -1;

	for (i = 0; i < nlive; i++) {
		struct res *r = &live[i];

		if (r->fd != 1)
			continue;
		/* An arena's slots always have a page above the guard. */
		if (need_uncommitted && !r->slot && r->bottom - r->guard_top < PG)
			continue;
		if (need_guard && r->guard_top - r->start < PG)
			continue;
		if (rn(++c) == 0)
			pick = i;
	}
	return pick;
}

static struct place place_struct(size_t size)
{
	struct place pl = { .cls = P_OK, .res = -1 };
	uint64_t base = (uintptr_t)pa;
	unsigned int w = rn(100);

	if (w < 62)
		pl.kind = K_OK;
	else if (w < 67)
		pl.kind = K_ACROSS;
	else if (w < 75)
		pl.kind = K_RES;
	else
		pl.kind = K_RO + rn(K_GUARD + 1 - K_RO);

	switch (pl.kind) {
	case K_OK:
		pl.addr = base + rn(2 * PG - size + 1);
		if (pct(50))
			pl.addr &= ~7ULL;
		break;
	case K_ACROSS:
		pl.addr = base + 7 * PG - 1 - rn(size - 1);
		break;
	case K_RO:
		pl.addr = base + 3 * PG + rn(PG - size + 1);
		pl.cls = P_RO;
		break;
	case K_RO_ACROSS:
		pl.addr = base + 4 * PG - 1 - rn(size - 1);
		pl.cls = P_RO;
		break;
	case K_NONE_TAIL:
		pl.addr = base + 2 * PG - 1 - rn(size - 1);
		pl.cls = P_BAD;
		break;
	case K_NONE:
		pl.addr = base + 2 * PG + rn(PG - size + 1);
		pl.cls = P_BAD;
		break;
	case K_NONE_HEAD:
		pl.addr = base + 3 * PG - 1 - rn(size - 1);
		pl.cls = P_BAD;
		break;
	case K_HOLE_TAIL:
		pl.addr = base + 5 * PG - 1 - rn(size - 1);
		pl.cls = P_BAD;
		break;
	case K_HOLE:
		pl.addr = base + 5 * PG + rn(PG - size + 1);
		pl.cls = P_BAD;
		break;
	case K_NULL:
		pl.addr = 0;
		pl.cls = P_BAD;
		break;
	case K_LOW:
		pl.addr = 1 + rn(mmap_min > 1 ? mmap_min - 1 : 1);
		pl.cls = P_BAD;
		break;
	case K_KERNEL:
		pl.addr = kernel_addr() + (pct(50) ? 0 : rn(64));
		pl.cls = P_BAD;
		break;
	case K_TOP:
		pl.addr = task_size - 1 - rn(size - 1);
		pl.cls = P_BAD;
		break;
	case K_NONCANON:
		if (!is64) {
			pl.kind = K_KERNEL;
			pl.addr = kernel_addr();
		} else {
			pl.addr = noncanonical();
		}
		pl.cls = P_BAD;
		break;
	case K_RES:
		pl.res = pick_fd1_res(true, false);
		if (pl.res < 0) {
			pl.kind = K_OK;
			pl.addr = base + rn(PG);
		} else if (live[pl.res].slot) {
			/* Plain read/write memory of a slot, above its guard. */
			struct res *r = &live[pl.res];
			uint64_t s = any_slot(r) + guard_of(r);

			pl.kind = K_SLOT;
			pl.addr = s + rn(r->slot - guard_of(r) - size + 1);
		} else {
			struct res *r = &live[pl.res];
			uint64_t hi = r->bottom;

			if (hi > r->end - size)
				hi = r->end - size;
			if (hi <= r->guard_top) {
				pl.kind = K_OK;
				pl.addr = base + rn(PG);
				pl.res = -1;
			} else {
				pl.addr = r->guard_top + rn(hi - r->guard_top);
			}
		}
		break;
	case K_GUARD:
		pl.res = pick_fd1_res(false, true);
		if (pl.res < 0) {
			pl.kind = K_NONE;
			pl.addr = base + 2 * PG + rn(PG - size + 1);
		} else {
			struct res *r = &live[pl.res];
			uint64_t s = r->slot ? any_slot(r) : r->start;

			pl.addr = s + rn(guard_of(r) - size + 1);
		}
		pl.cls = P_BAD;
		break;
	default:
		break;
	}
	return pl;
}

/* Store the struct at pl->addr as far as user space can. */
static void put_struct(struct place *pl, const void *s, size_t size)
{
	uint64_t a = pl->addr, base = (uintptr_t)pa;

	switch (pl->kind) {
	case K_OK:
	case K_ACROSS:
	case K_SLOT:
		memcpy((void *)(uintptr_t)a, s, size);
		break;
	case K_RO:
		memcpy(ro_alias + (a - base - 3 * PG), s, size);
		break;
	case K_RO_ACROSS: {
		size_t head = base + 4 * PG - a;

		memcpy(ro_alias + (a - base - 3 * PG), s, head);
		memcpy((void *)(uintptr_t)(a + head), (const char *)s + head, size - head);
		break;
	}
	case K_RES:
		/* The first byte first: one growth step, as the model says. */
		*(volatile char *)(uintptr_t)a = *(const char *)s;
		model_touch(&live[pl->res], a);
		maps_dirty = true;
		memcpy((void *)(uintptr_t)a, s, size);
		break;
	default:
		break;	/* faults: the content does not matter */
	}
}

static void get_struct(struct place *pl, void *s, size_t size)
{
	memcpy(s, (void *)(uintptr_t)pl->addr, size);
}

static long cur_idx;		/* the call in flight, for messages */

/* A kernel-mode access to the guard: one OVERFLOW per fault taken. */
static void guard_hit(struct place *pl)
{
	if (pl->kind == K_GUARD && pl->res >= 0) {
		live[pl->res].last_hit = cur_idx;
		live[pl->res].ovf_lo += 1;
		live[pl->res].ovf_hi += 2;	/* a copy routine may retry bytewise */
	}
}

/* ------------------------------------------------------------------ */
/* Expectations and statistics.                                         */

#define E_OK	0	/* bit 0 of an expectation set: success */
#define BIT(e)	(1ULL << (e))

static const char *ename(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "OK";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ENXIO: return "ENXIO";
	case EEXIST: return "EEXIST";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	case ENOENT: return "ENOENT";
	case ENOTTY: return "ENOTTY";
	case EPERM: return "EPERM";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case ENOSYS: return "ENOSYS";
	case E2BIG: return "E2BIG";
	}
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

static void eset_str(uint64_t set, char *buf, size_t size)
{
	int e;

	buf[0] = 0;
	for (e = 0; e < 64; e++)
		if (set & BIT(e))
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
				 buf[0] ? "|" : "", ename(e));
}

enum op { OP_REG, OP_UNREG, OP_TRIM, OP_QUERY, OP_ARENA, OP_TRIMVEC, OP_LIST,
	  OP_FEATURES, OP_RECSIZE, OP_UNKNOWN, OP_READ, OP_TOUCH, OP_REOPEN,
	  OP_EXIT_FREE, OP_NR };
static const char *const op_name[OP_NR] = {
	"REGISTER", "UNREGISTER", "TRIM", "QUERY", "ARENA", "TRIM_VEC", "LIST",
	"FEATURES", "RECORD_SIZE", "unknown-ioctl", "read", "touch", "reopen",
	"exit_free",
};

/* counts[op][errno], errno < 64 (0 = success); acounts: those on an arena */
static uint64_t counts[OP_NR][64], acounts[OP_NR][64];
static bool on_arena;		/* the call in flight names a live arena */
static uint64_t slot_answers, arenas_made[2], probes;
static uint64_t kind_counts[K_NR];
static bool verbose;
static uint64_t seed;
static long ncalls = 10000;
static char failmsg[1024];

#define FAIL(...) do {							\
	snprintf(failmsg, sizeof(failmsg), __VA_ARGS__);		\
	return false;							\
} while (0)

static void print_counts_of(uint64_t (*c)[64], int op, const char *prefix)
{
	char line[512];
	uint64_t tot = 0;
	int e;

	line[0] = 0;
	for (e = 0; e < 64; e++) {
		if (!c[op][e])
			continue;
		tot += c[op][e];
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " %s %" PRIu64,
			 ename(e), c[op][e]);
	}
	if (tot)
		ksft_print_msg("  %s%-*s %7" PRIu64 ":%s\n", prefix, 13 - (int)strlen(prefix),
			       op_name[op], tot, line);
}

static void print_counts(int op)
{
	print_counts_of(counts, op, "");
}

/*
 * A failed call that legitimately changed memory (TRIM_VEC: the entries
 * before the bad one are trimmed): the maps are taken again, not compared.
 */
static bool failure_changes;

/* Common tail of one call: errno against the set, maps after failure. */
static bool check_outcome(long idx, int op, long ret, int err, uint64_t expect,
			  const char *what)
{
	char want[128];
	int got = ret < 0 ? err : 0;
	bool changes = failure_changes;

	failure_changes = false;

	if (got < 64) {
		counts[op][got]++;
		if (on_arena)
			acounts[op][got]++;
	}
	on_arena = false;
	if (verbose)
		ksft_print_msg("%ld %s %s: %s\n", idx, op_name[op], what, ename(got));
	if (got >= 64 || !(expect & BIT(got))) {
		eset_str(expect, want, sizeof(want));
		FAIL("call %ld %s: got %s, expected %s (%s)", idx, op_name[op],
		     ename(got), want, what);
	}
	if (got && changes)
		maps_dirty = true;
	else if (got && !maps_after_failure(idx, false))
		FAIL("calls %ld..%ld: /proc/self/maps changed by a failed call "
		     "(last: %s %s)", maps_since, idx, op_name[op], what);
	if (!got)
		maps_dirty = true;
	return true;
}

/* ------------------------------------------------------------------ */
/* Size-extensible structs (ABI version 1)                              */

/*
 * The size a call passes in its ioctl number: what the module reads of
 * the struct, and what it may write back.
 */
enum szcls { SZ_V0, SZ_V1, SZ_MID, SZ_BIG0, SZ_BIGX, SZ_SMALL, SZ_HUGE, SZ_NR };
static const char *const sz_name[SZ_NR] = {
	"v0", "v1", "between", "larger", "larger-nonzero", "too-small", "over-a-page",
};

static uint64_t sz_counts[OP_NR][SZ_NR];

struct ext {
	size_t usize, ver0, ksize;
	enum szcls cls;
	size_t bad_at;		/* SZ_BIGX: the non-zero byte of the tail */
	unsigned int cmd;
};

#define IOC_SIZE_MAX	((1u << _IOC_SIZEBITS) - 1)

static void ext_pick(struct ext *x, unsigned int known, size_t ver0, size_t ksize)
{
	unsigned int w = rn(100);

	x->ver0 = ver0;
	x->ksize = ksize;
	if (w < 32 && ver0 < ksize) {
		x->cls = SZ_V0;
		x->usize = ver0;
	} else if (w < 35 && ver0 + 1 < ksize) {
		x->cls = SZ_MID;
		x->usize = ver0 + 1 + rn(ksize - ver0 - 1);
	} else if (w < 84) {
		x->cls = SZ_V1;
		x->usize = ksize;
	} else if (w < 96) {
		x->cls = w < 92 ? SZ_BIG0 : SZ_BIGX;
		x->usize = ksize + 1 + (pct(80) ? rn(64) : rn(PG - ksize));
		x->bad_at = ksize + rn(x->usize - ksize);
	} else if (w < 98) {
		x->cls = SZ_SMALL;
		x->usize = rn(ver0);
	} else {
		x->cls = SZ_HUGE;
		x->usize = PG + 1 + rn(IOC_SIZE_MAX - PG);
	}
	x->cmd = _IOC(_IOC_DIR(known), _IOC_TYPE(known), _IOC_NR(known), x->usize);
}

/* Bytes of the struct that place_struct() lays out and put_struct() stores. */
static size_t ext_psize(const struct ext *x)
{
	if (x->usize < 8)
		return 8;
	return x->usize > PG ? PG : x->usize;
}

/* The caller's bytes: the struct cut to usize, or with a tail (zero but one). */
static void ext_bytes(const struct ext *x, const void *full, unsigned char *buf)
{
	size_t n = ext_psize(x);

	memset(buf, 0, n);
	memcpy(buf, full, n < x->ksize ? n : x->ksize);
	if (x->cls == SZ_BIGX)
		buf[x->bad_at] = 1 + rn(255);
}

/* What the module sees: the caller's bytes up to its size, zero beyond. */
static void ext_view(const struct ext *x, void *kv, const void *full)
{
	memset(kv, 0, x->ksize);
	memcpy(kv, full, x->usize < x->ksize ? x->usize : x->ksize);
}

/*
 * Placements of which a part before the end can be read (the top page
 * only by an ia32 task: access_ok() of a 64-bit kernel lets it through).
 */
static bool partly_readable(enum pkind k)
{
	return k == K_NONE_TAIL || k == K_NONE_HEAD || k == K_HOLE_TAIL ||
	       (k == K_TOP && is_compat && top_page);
}

/*
 * The size rules, checked before the module looks at a field
 * (copy_struct_from_user()): 0 when they pass.  The four requests of
 * version 0 take the size of version 0, of version 1 or larger: any other
 * size is no request of the module (ENOTTY, as version 0 answered it).
 * Those of version 1 take its size or larger (EINVAL below).  A tail that
 * cannot all be read fails with EFAULT, unless check_zeroed_user() meets
 * a non-zero word before the fault.
 */
static uint64_t ext_expect(const struct ext *x, const struct place *pl)
{
	if (x->ver0 < x->ksize && x->usize != x->ver0 && x->usize < x->ksize)
		return BIT(ENOTTY);
	if (x->usize < x->ver0)
		return BIT(EINVAL);
	if (x->usize > PG)
		return BIT(E2BIG);
	if (pl->cls == P_BAD)
		return x->usize > x->ksize && partly_readable(pl->kind) ?
		       BIT(EFAULT) | BIT(E2BIG) : BIT(EFAULT);
	if (x->cls == SZ_BIGX)
		return BIT(E2BIG);
	return 0;
}

/* Whether the module can store @len bytes at offset @off of the struct. */
static bool struct_writable(const struct place *pl, size_t off, size_t len)
{
	if (pl->cls == P_BAD)
		return false;
	if (pl->kind == K_RO)
		return false;
	if (pl->kind == K_RO_ACROSS)
		return pl->addr + off >= (uintptr_t)pa + 4 * PG;
	(void)len;
	return true;
}

/* Bytes after the struct that must stay as they are (the module writes usize at most). */
#define SENT_LEN	16
#define SENT_BYTE	0xc3
static uint64_t sent_addr;
static size_t sent_len;
static uint64_t sent_checks;

static void sentinel_set(const struct place *pl, size_t usize)
{
	uint64_t base = (uintptr_t)pa, end = pl->addr + usize, lim;

	sent_len = 0;
	if (pl->kind == K_OK)
		lim = base + 2 * PG;
	else if (pl->kind == K_ACROSS)
		lim = base + 8 * PG;
	else
		return;
	if (usize > PG || end >= lim)
		return;
	sent_addr = end;
	sent_len = lim - end < SENT_LEN ? lim - end : SENT_LEN;
	memset((void *)(uintptr_t)sent_addr, SENT_BYTE, sent_len);
}

static bool sentinel_check(long idx, int op, const char *what)
{
	const unsigned char *p = (const unsigned char *)(uintptr_t)sent_addr;

	if (sent_len)
		sent_checks++;
	for (size_t j = 0; j < sent_len; j++)
		if (p[j] != SENT_BYTE)
			FAIL("call %ld %s (%s): byte %zu after the caller's struct written "
			     "(%#x)", idx, op_name[op], what, j, p[j]);
	sent_len = 0;
	return true;
}

/* ------------------------------------------------------------------ */
/* QUERY output against the model.                                      */

/*
 * What QUERY answers for @r through file @fd (1 or 2), asked with the
 * input flags @qflags and a struct of @usize bytes: the reservation, or
 * for an arena the whole arena by id and the slot holding @qaddr by
 * address (STACKRES_QUERY_SLOT, committed = peak = slot - guard, no growth
 * steps, the slot's index).  A version 1 struct also gets GUARD (the
 * address lies in a guard), FOREIGN (another file's, through
 * STACKRES_QUERY_ANY) and resident bytes, checked against bounds.
 */
static uint64_t guard_answers, foreign_answers, resident_checks;

static bool check_query(long idx, const struct stackres_query *q, struct res *r,
			uint32_t qflags, uint64_t qaddr, size_t usize, int fd,
			uint64_t in_resident)
{
	bool v1 = usize >= STACKRES_QUERY_SIZE_VER1;
	struct stackres_query e = {
		.id = r->id, .addr = qaddr, .start = r->start, .len = r->end - r->start,
		.guard = guard_of(r), .committed = r->end - r->bottom, .peak = r->peak,
		.grow_faults = r->steps, .user_data = r->user_data,
	};
	uint64_t rmax = e.len, rmin = 0;
	size_t n = usize < sizeof(e) ? usize : sizeof(e);

	e.flags = qflags & (STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY);
	if (r->slot) {
		e.committed = (r->slot - guard_of(r)) * nslots_of(r);
		if (qflags & STACKRES_QUERY_ADDR) {
			e.slot = (qaddr - r->start) / r->slot;
			e.start += e.slot * r->slot;
			e.len = r->slot;
			e.committed = r->slot - guard_of(r);
			e.flags |= STACKRES_QUERY_SLOT;
			if (v1 && qaddr - e.start < guard_of(r))
				e.flags |= STACKRES_QUERY_GUARD;
			slot_answers++;
		}
		e.peak = e.committed;
		e.grow_faults = 0;
		rmax = e.committed;
	} else {
		if (v1 && (qflags & STACKRES_QUERY_ADDR) && qaddr < r->guard_top)
			e.flags |= STACKRES_QUERY_GUARD;
		/*
		 * No page below the committed part but in the guard (of caller
		 * memory) once a trim cleared it, none at all in a fresh mapping.
		 */
		if (!r->below)
			rmax = e.committed + (r->mapped ? 0 : guard_of(r));
		if (r->mapped && (r->flags & STACKRES_POPULATE))
			rmin = e.committed;
	}
	if (v1 && r->fd != fd)
		e.flags |= STACKRES_QUERY_FOREIGN;
	guard_answers += !!(e.flags & STACKRES_QUERY_GUARD);
	foreign_answers += !!(e.flags & STACKRES_QUERY_FOREIGN);
	if (q->overflows < r->ovf_lo || q->overflows > r->ovf_hi)
		FAIL("call %ld QUERY id %u (%s): overflows %llu, expected %llu..%llu "
		     "(last guard hit foreseen at call %ld)", idx, r->id,
		     r->slot ? "arena" : "reservation", (unsigned long long)q->overflows,
		     (unsigned long long)r->ovf_lo, (unsigned long long)r->ovf_hi,
		     r->last_hit);
	e.overflows = q->overflows;
	if (v1) {
		resident_checks++;
		if (q->resident % PG || q->resident < rmin || q->resident > rmax)
			FAIL("call %ld QUERY id %u (flags %#x addr %#llx, %s%s): resident %#llx, "
			     "expected a page multiple in %#llx..%#llx", idx, r->id, qflags,
			     (unsigned long long)qaddr, r->slot ? "arena" : "reservation",
			     r->mapped ? ", STACKRES_MAP" : "",
			     (unsigned long long)q->resident, (unsigned long long)rmin,
			     (unsigned long long)rmax);
		e.resident = q->resident;
	} else {
		/* Not computed: the caller's bytes of it (if any) come back. */
		e.resident = in_resident;
	}
	if (memcmp(q, &e, n))
		FAIL("call %ld QUERY (fd %d flags %#x addr %#llx, %zu bytes): id %u start %#llx "
		     "len %#llx guard %#llx flags %#x committed %#llx peak %#llx grow_faults "
		     "%llu user_data %#llx slot %llu; expected id %u start %#llx len %#llx "
		     "guard %#llx flags %#x committed %#llx peak %#llx grow_faults %llu "
		     "user_data %#llx slot %llu", idx, fd, qflags, (unsigned long long)qaddr,
		     usize, q->id, (unsigned long long)q->start, (unsigned long long)q->len,
		     (unsigned long long)q->guard, q->flags, (unsigned long long)q->committed,
		     (unsigned long long)q->peak, (unsigned long long)q->grow_faults,
		     (unsigned long long)q->user_data, (unsigned long long)q->slot, e.id,
		     (unsigned long long)e.start, (unsigned long long)e.len,
		     (unsigned long long)e.guard, e.flags, (unsigned long long)e.committed,
		     (unsigned long long)e.peak, (unsigned long long)e.grow_faults,
		     (unsigned long long)e.user_data, (unsigned long long)e.slot);
	r->ovf_lo = r->ovf_hi = q->overflows;
	return true;
}

static int do_ioctl(int fd, unsigned long cmd, uint64_t arg, int *err)
{
	int ret = ioctl(fd, cmd, (void *)(uintptr_t)arg);

	*err = ret < 0 ? errno : 0;
	return ret;
}

/*
 * The call's struct as its size class @x makes it from @full, written to its
 * place @pl with a sentinel after it; counted by place kind and size class.
 */
static void stage_struct(int op, const struct ext *x, struct place *pl,
			 const void *full, unsigned char *buf)
{
	kind_counts[pl->kind]++;
	sz_counts[op][x->cls]++;
	ext_bytes(x, full, buf);
	put_struct(pl, buf, ext_psize(x));
	sentinel_set(pl, x->usize);
}

/*
 * Make the staged call on @fd: its errno must be one of @expect and the
 * bytes after the struct untouched.  *@ret is the ioctl's return value.
 */
static bool issue(long idx, int op, int fd, const struct ext *x,
		  const struct place *pl, uint64_t expect, const char *what, long *ret)
{
	int err;

	maps_before(idx);
	*ret = do_ioctl(fd, x->cmd, pl->addr, &err);
	return check_outcome(idx, op, *ret, err, expect, what) &&
	       sentinel_check(idx, op, what);
}

static bool query_id_now(long idx, int i, const char *when)
{
	struct stackres_query q = { .id = live[i].id };
	int err;

	if (do_ioctl(stackres_fd, STACKRES_IOC_QUERY, (uintptr_t)&q, &err))
		FAIL("call %ld: QUERY id %u %s: %s", idx, live[i].id, when, ename(err));
	return check_query(idx, &q, &live[i], 0, 0, sizeof(q), 1, 0);
}

static bool query_addr_now(long idx, int i, uint64_t addr, const char *when)
{
	struct stackres_query q = { .flags = STACKRES_QUERY_ADDR, .addr = addr };
	int err;

	if (do_ioctl(stackres_fd, STACKRES_IOC_QUERY, (uintptr_t)&q, &err))
		FAIL("call %ld: QUERY addr %#llx %s: %s", idx, (unsigned long long)addr,
		     when, ename(err));
	return check_query(idx, &q, &live[i], STACKRES_QUERY_ADDR, addr, sizeof(q), 1, 0);
}

/* ------------------------------------------------------------------ */
/* Guard markers of arenas, seen through /proc/self/pagemap.            */

#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE	103
#endif
#define PM_GUARD_REGION		(1ULL << 58)	/* pagemap: a guard marker */

static int pagemap_fd = -1;
static uint64_t guard_checks;

/* 1 if the page at @a holds a guard marker, 0 if not, -1 if unknown. */
static int guard_at(uint64_t a)
{
	uint64_t e;

	if (pagemap_fd < 0 ||
	    pread(pagemap_fd, &e, sizeof(e), (off_t)(a / PG * sizeof(e))) != sizeof(e))
		return -1;
	return !!(e & PM_GUARD_REGION);
}

/*
 * Arena @r has guard markers exactly at the bottom of its slots (first,
 * last and one more): its first and last guard page, not the page above.
 * With @gone, no marker is left anywhere in those pages.
 */
static bool check_guards(long idx, const struct res *r, bool gone, const char *when)
{
	uint64_t k[3] = { 0, nslots_of(r) - 1, rn(nslots_of(r)) }, g = guard_of(r);
	int j;

	if (pagemap_fd < 0)
		return true;
	guard_checks++;
	for (j = 0; j < 3; j++) {
		uint64_t s = r->start + k[j] * r->slot;
		int lo = g ? guard_at(s) : 0, hi = g ? guard_at(s + g - PG) : 0;
		int above = guard_at(s + g);

		if (lo != (g && !gone) || hi != (g && !gone) || above)
			FAIL("call %ld: arena id %u %s: slot %llu (%#llx, guard %#llx): "
			     "guard marker at its bottom %d, top of guard %d, above %d",
			     idx, r->id, when, (unsigned long long)k[j],
			     (unsigned long long)s, (unsigned long long)g, lo, hi, above);
	}
	return true;
}

/*
 * An arena of caller memory ended (UNREGISTER, last close): its markers
 * stay, so take them away, or a later REGISTER of that memory would fault.
 */
static bool unguard(long idx, const struct res *r)
{
	if (madvise((void *)(uintptr_t)r->start, r->end - r->start, MADV_GUARD_REMOVE))
		FAIL("call %ld: MADV_GUARD_REMOVE of arena %#llx: %s", idx,
		     (unsigned long long)r->start, strerror(errno));
	return check_guards(idx, r, true, "after MADV_GUARD_REMOVE");
}

/* A store above the guard of a slot: plain demand paging, no model change. */
static void touch_slot(const struct res *r)
{
	uint64_t s = any_slot(r) + guard_of(r);

	*(volatile char *)(uintptr_t)(s + rn(r->slot - guard_of(r))) = 1;
}

/*
 * A reservation or an arena made with STACKRES_MAP: check, grow, unmap
 * part, gone.  It does not stay: a mapping placed anywhere may fill a gap
 * the other targets count on being free.
 */
static bool retire_mapped(long idx, int i)
{
	struct res *r = &live[i];
	struct stackres_query q = { .flags = STACKRES_QUERY_ADDR };
	uint64_t cut;
	int err;

	if (!query_id_now(idx, i, "after STACKRES_MAP"))
		return false;
	if (r->slot) {
		if (!query_addr_now(idx, i, any_slot(r) + rn(r->slot), "after ARENA|MAP"))
			return false;
		if (pct(50))
			touch_slot(r);
		if (pct(30)) {
			/* UNREGISTER: the markers stay, until the munmap. */
			if (do_ioctl(stackres_fd, STACKRES_IOC_UNREGISTER, (uintptr_t)&r->id,
				     &err))
				FAIL("call %ld: UNREGISTER of arena id %u: %s", idx, r->id,
				     ename(err));
			if (!check_guards(idx, r, false, "after UNREGISTER"))
				return false;
			q.addr = r->start;
			if (do_ioctl(stackres_fd, STACKRES_IOC_QUERY, (uintptr_t)&q, &err) != -1 ||
			    err != ENOENT)
				FAIL("call %ld: QUERY by addr after UNREGISTER: %s, expected "
				     "ENOENT", idx, ename(err));
			if (munmap((void *)(uintptr_t)r->start, r->end - r->start))
				FAIL("call %ld: munmap: %s", idx, strerror(errno));
			drop_res(i);
			maps_dirty = true;
			return true;
		}
	} else if (r->bottom - r->guard_top >= PG && pct(50)) {
		uint64_t a = r->guard_top + rn(r->bottom - r->guard_top);

		*(volatile char *)(uintptr_t)a = 1;
		model_touch(r, a);
		if (!query_id_now(idx, i, "after growth"))
			return false;
	}
	/* munmap of any part ends the whole reservation. */
	cut = r->start + PG * rn((r->end - r->start) / PG);
	if (munmap((void *)(uintptr_t)cut, PG))
		FAIL("call %ld: munmap %#llx: %s", idx, (unsigned long long)cut,
		     strerror(errno));
	q.addr = r->start == cut ? r->end - 1 : r->start;
	if (do_ioctl(stackres_fd, STACKRES_IOC_QUERY, (uintptr_t)&q, &err) != -1 ||
	    err != ENOENT)
		FAIL("call %ld: QUERY by addr after munmap of a part: %s, expected ENOENT",
		     idx, ename(err));
	q.flags = 0;
	q.id = r->id;
	if (do_ioctl(stackres_fd, STACKRES_IOC_QUERY, (uintptr_t)&q, &err) != -1 ||
	    err != ENOENT)
		FAIL("call %ld: QUERY by id after munmap of a part: %s, expected ENOENT",
		     idx, ename(err));
	if (munmap((void *)(uintptr_t)r->start, r->end - r->start))
		FAIL("call %ld: munmap: %s", idx, strerror(errno));
	drop_res(i);
	maps_dirty = true;
	return true;
}

/* ------------------------------------------------------------------ */
/* REGISTER                                                             */

/* A cookie: mostly random, some 0, some boundary values. */
static uint64_t pick_user_data(void)
{
	return pct(15) ? 0 : pct(80) ? rnd() : boundary();
}

/*
 * align of REGISTER and ARENA: mostly 0, else mostly a valid one (*@valid:
 * the caller makes the request STACKRES_MAP anywhere, most of the time),
 * else one that is never valid.
 */
static uint64_t pick_align(bool *valid)
{
	unsigned int w = rn(100);

	*valid = false;
	if (w < 65)
		return 0;
	if (w < 90) {
		*valid = true;
		return PG << (pct(85) ? rn(10) : rn(is64 ? 35 : 20));
	}
	switch (rn(6)) {
	case 0:
		return 1 + rn(PG - 1);
	case 1:
		return PG * (3 + 2 * rn(8));
	case 2:
		return (PG << rn(8)) + PG;
	case 3:		/* the first power of two above the address space */
		return is64 ? 1ULL << 47 : 1ULL << 32;
	case 4:
		return 1ULL << 63;
	default:
		return boundary();
	}
}

/* align_check(): 0 or a power of two >= PG, <= TASK_SIZE, only for MAP anywhere. */
static bool align_bad(uint64_t align, uint64_t start, uint32_t flags)
{
	if (!align)
		return false;
	if (!(flags & STACKRES_MAP) || start)
		return true;
	return align < PG || align > task_size || (align & (align - 1));
}

/* res_map() placing @len bytes anywhere, aligned to @align. */
static uint64_t map_anywhere_expect(uint64_t len, uint64_t align)
{
	uint64_t mlen = len;

	if (align > PG) {
		if (len > task_size - (align - PG))
			return BIT(ENOMEM);
		mlen = len + align - PG;
	}
	/* A huge charge-free mapping may still find no room. */
	return mlen <= task_size / 8 ? BIT(E_OK) : BIT(E_OK) | BIT(ENOMEM);
}

/* Whether @a lies in a mapping of the maps text @buf. */
static bool maps_has(const char *buf, uint64_t a)
{
	const char *line = buf;

	while (*line) {
		unsigned long long s, e;
		const char *nl = strchr(line, '\n');

		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && a >= s && a < e)
			return true;
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}

static uint64_t aligned_maps;

/*
 * STACKRES_MAP anywhere made [start, end): aligned as asked, and nothing
 * new next to it (the excess of an aligned mapping is unmapped, as no
 * unmap came between).  maps_snap is the memory before the call.
 */
static bool check_map_anywhere(long idx, const char *op, uint64_t start, uint64_t end,
			       uint64_t align)
{
	if (align > PG) {
		aligned_maps++;
		if (start % align)
			FAIL("call %ld %s|MAP: start %#llx not aligned to %#llx", idx, op,
			     (unsigned long long)start, (unsigned long long)align);
	}
	if (raw_read_file("/proc/self/maps", maps_now, MAPS_SIZE) <= 0)
		return true;
	if ((maps_has(maps_now, start - PG) && !maps_has(maps_snap, start - PG)) ||
	    (maps_has(maps_now, end) && !maps_has(maps_snap, end)))
		FAIL("call %ld %s|MAP [%#llx, %#llx) align %#llx: a new mapping next to it "
		     "(the excess left mapped?)", idx, op, (unsigned long long)start,
		     (unsigned long long)end, (unsigned long long)align);
	return true;
}

enum tgt { T_ARENA, T_ARENA_OVER, T_SHARED, T_FILE, T_MIX, T_HOLE, T_STACK, T_VDSO,
	   T_TEXT, T_ZERO, T_KERNEL, T_TOP, T_LOW, T_NR };

static bool fuzz_register(long idx)
{
	static const unsigned int tw[T_NR] = { 40, 5, 5, 5, 5, 8, 2, 2, 3, 7, 5, 6, 7 };
	static unsigned char ubuf[4 * 4096];
	struct stackres_reg r, out, kv;
	struct place pl;
	struct ext x;
	unsigned int w = rn(100), t = 0, s;
	uint64_t expect, start, len, end;
	bool inval, map, align_valid;
	char what[400];
	size_t n;
	long ret;

	while (w >= tw[t]) {
		w -= tw[t];
		t++;
	}
	memset(&r, 0, sizeof(r));
	r.id = rnd();
	r.flags = (pct(15) ? STACKRES_MAP : 0) | (pct(20) ? STACKRES_POPULATE : 0) |
		  (pct(30) ? STACKRES_NOTIFY_GROW : 0) | (pct(15) ? STACKRES_LARGE_FOLIOS : 0);
	if (pct(6))
		r.flags |= 1u << (4 + rn(28));
	if (pct(2))
		r.flags = rnd();

	switch (t) {
	case T_ARENA:
		s = rn(ARENA_PAGES);
		start = (uintptr_t)arena + s * PG;
		len = PG * (1 + rn(ARENA_PAGES - s));
		break;
	case T_ARENA_OVER:
		s = rn(ARENA_PAGES);
		start = (uintptr_t)arena + s * PG;
		len = (ARENA_PAGES - s + 1 + rn(4)) * PG;
		break;
	case T_SHARED:
	case T_FILE:
		s = rn(4);
		start = (uintptr_t)(t == T_SHARED ? shared_r : file_r) + s * PG;
		len = PG * (1 + rn(4 - s));
		break;
	case T_MIX:
		s = rn(2);
		start = (uintptr_t)mix_r + s * PG;
		len = (3 - s + rn(2)) * PG;
		break;
	case T_HOLE:
		s = rn(HOLE_PAGES);
		start = (uintptr_t)hole + s * PG;
		len = PG * (1 + rn(HOLE_PAGES - s));
		break;
	case T_STACK:
		start = stack_page;
		len = PG;
		break;
	case T_VDSO:
		start = vdso_page;
		len = PG;
		break;
	case T_TEXT:
		start = text_page;
		len = PG * (1 + rn(2));
		break;
	case T_ZERO:
		start = 0;
		len = PG * (1 + rn(16));
		if (pct(10))
			len = PG << (12 + rn(8));
		break;
	case T_KERNEL:
		start = kernel_addr() & ~(PG - 1);
		len = PG * (1 + rn(4));
		break;
	case T_TOP:
		start = task_size - PG * (1 + rn(4));
		len = PG * (1 + rn(6));
		break;
	default: /* T_LOW */
		start = PG * rn(16);
		len = PG * (1 + rn(4));
		break;
	}
	if (pct(10)) {
		uint64_t m = boundary();

		/* Keep the mixed range mixed; shorter arena ranges are arena ones. */
		if (!(t == T_MIX && !(m & (PG - 1)) && m && start + m <= (uintptr_t)mix_r + 2 * PG))
			len = m;
		if (t == T_ARENA_OVER && start + len > start &&
		    start + len <= (uintptr_t)arena + ARENA_PAGES * PG)
			t = T_ARENA;
	}
	if (pct(5))
		start += 1 + rn(PG - 1);	/* misaligned: EINVAL */
	else if (pct(3))
		start = kernel_addr() & ~(PG - 1);
	r.start = start;
	r.len = len;

	if (t == T_ARENA && pct(50)) {
		/* A well-formed request: only the pointer and overlaps decide. */
		uint64_t pages = len / PG;

		r.guard = PG * rn(pages / 2 + 1);
		r.commit = PG * rn(pages - r.guard / PG + 1);
		r.chunk = pct(50) ? 0 : PG * (1 + rn(8));
		if (r.flags & STACKRES_LARGE_FOLIOS)
			r.chunk = pct(50) ? 0 : STACKRES_FOLIO_SIZE * (1 + rn(2));
		r.watermark = pct(50) ? 0 : PG * rn(pages + 1);
		r.flags &= STACKRES_POPULATE | STACKRES_NOTIFY_GROW | STACKRES_LARGE_FOLIOS;
		goto generated;
	}
	if (pct(20))
		r.guard = 0;
	else if (pct(75) && len <= 1ULL << 40)
		r.guard = PG * rn(len / PG / 2 + 1);
	else
		r.guard = boundary();
	if (pct(20))
		r.commit = 0;
	else if (pct(75) && r.guard <= len && len <= 1ULL << 40)
		r.commit = PG * rn((len - r.guard) / PG + 1);
	else
		r.commit = boundary();
	if (pct(30))
		r.chunk = 0;
	else if ((r.flags & STACKRES_LARGE_FOLIOS) && pct(80))
		r.chunk = STACKRES_FOLIO_SIZE * (1 + rn(4));
	else if (pct(60))
		r.chunk = PG * (1 + rn(32));
	else
		r.chunk = boundary();
	if (pct(40))
		r.watermark = 0;
	else if (pct(70))
		r.watermark = PG * rn(len / PG + 1);
	else
		r.watermark = rnd();
generated:
	r.user_data = pick_user_data();
	r.align = pick_align(&align_valid);
	if (align_valid && pct(80)) {
		r.flags |= STACKRES_MAP;
		r.start = 0;
	}
	/*
	 * Populating gigabytes would only measure the OOM killer: neither the
	 * commit nor a growth (a store anywhere below it) may be that large.
	 */
	if ((r.flags & STACKRES_POPULATE) &&
	    (r.commit > 4 * 1024 * 1024 || r.len > 4 * 1024 * 1024))
		r.flags &= ~STACKRES_POPULATE;
	/* Keep live[] bounded: no new reservation when it is full. */
	if (nlive >= MAX_LIVE - 1)
		r.len = 0;

	ext_pick(&x, STACKRES_IOC_REGISTER, STACKRES_REG_SIZE_VER0, sizeof(r));
	pl = place_struct(ext_psize(&x));
	ext_view(&x, &kv, &r);
	map = kv.flags & STACKRES_MAP;
	inval = (kv.flags & ~(STACKRES_MAP | STACKRES_POPULATE | STACKRES_NOTIFY_GROW |
			      STACKRES_LARGE_FOLIOS)) ||
		((kv.flags & STACKRES_LARGE_FOLIOS) && kv.chunk % STACKRES_FOLIO_SIZE) ||
		/* version 0 refused the flags that came with version 1 */
		(x.usize < STACKRES_REG_SIZE_VER1 && (kv.flags & STACKRES_LARGE_FOLIOS)) ||
		((kv.start | kv.len | kv.guard | kv.commit | kv.chunk) & (PG - 1)) ||
		!kv.len || kv.guard > kv.len || kv.commit > kv.len - kv.guard ||
		kv.len > task_size ||
		((kv.start || !map) && kv.start > task_size - kv.len) ||
		align_bad(kv.align, kv.start, kv.flags);
	end = kv.start + kv.len;

	expect = ext_expect(&x, &pl);
	if (expect) {
		if (expect & BIT(EFAULT))
			guard_hit(&pl);
	} else if (pl.cls != P_OK) {
		expect = BIT(EFAULT);	/* the result could not be stored */
	} else if (inval) {
		expect = BIT(EINVAL);
	} else if (map) {
		if (!kv.start)
			expect = map_anywhere_expect(kv.len, kv.align);
		else if (kv.start < mmap_min)
			expect = BIT(EINVAL);
		else if ((t == T_HOLE && end <= (uintptr_t)hole + HOLE_PAGES * PG) ||
			 (t == T_LOW && end <= 0x100000))
			expect = BIT(E_OK);
		else if (t == T_HOLE || t == T_LOW || t == T_TOP)
			/* runs past what we know to be free */
			expect = BIT(E_OK) | BIT(EEXIST) | BIT(ENOMEM);
		else
			expect = BIT(EEXIST);
	} else if (t == T_ARENA && end <= (uintptr_t)arena + ARENA_PAGES * PG) {
		expect = overlaps_live(kv.start, end) ? BIT(EEXIST) : BIT(E_OK);
	} else {
		expect = BIT(ENXIO);
	}
	/* A page-multiple chunk beyond the address space may be refused. */
	if (!(expect & (BIT(EFAULT) | BIT(E2BIG))) && !inval && kv.chunk > task_size)
		expect |= BIT(EINVAL);

	snprintf(what, sizeof(what),
		 "ptr %s %#llx size %zu (%s), target %u, start %#llx len %#llx guard %#llx "
		 "commit %#llx chunk %#llx wm %#llx flags %#x user_data %#llx align %#llx",
		 kind_name[pl.kind], (unsigned long long)pl.addr, x.usize, sz_name[x.cls], t,
		 (unsigned long long)kv.start, (unsigned long long)kv.len,
		 (unsigned long long)kv.guard, (unsigned long long)kv.commit,
		 (unsigned long long)kv.chunk, (unsigned long long)kv.watermark, kv.flags,
		 (unsigned long long)kv.user_data, (unsigned long long)kv.align);
	stage_struct(OP_REG, &x, &pl, &r, ubuf);
	if (!issue(idx, OP_REG, stackres_fd, &x, &pl, expect, what, &ret))
		return false;
	if (ret)
		return true;

	/* Success: the struct comes back with id (and start for MAP) set. */
	n = x.usize < sizeof(out) ? x.usize : sizeof(out);
	memset(&out, 0, sizeof(out));
	get_struct(&pl, &out, n);
	if (!out.id || find_res_id(out.id) >= 0)
		FAIL("call %ld REGISTER: id %u (0 or in use)", idx, out.id);
	kv.id = out.id;
	kv.start = out.start;
	if (memcmp(&out, &kv, n))
		FAIL("call %ld REGISTER: input fields changed (%s)", idx, what);
	if (map && !r.start) {
		if ((out.start & (PG - 1)) || out.start < mmap_min ||
		    out.start > task_size - kv.len)
			FAIL("call %ld REGISTER|MAP: start %#llx", idx,
			     (unsigned long long)out.start);
		if (!check_map_anywhere(idx, "REGISTER", out.start, out.start + kv.len,
					kv.align))
			return false;
	} else if (out.start != r.start) {
		FAIL("call %ld REGISTER: start %#llx, passed %#llx", idx,
		     (unsigned long long)out.start, (unsigned long long)r.start);
	}
	live[nlive] = (struct res) {
		.fd = 1, .id = out.id, .mapped = map, .start = out.start,
		.end = out.start + kv.len, .guard_top = out.start + kv.guard,
		.chunk = kv.chunk ? kv.chunk : STACKRES_DEFAULT_CHUNK,
		.bottom = out.start + kv.len - kv.commit, .peak = kv.commit,
		.flags = kv.flags, .user_data = kv.user_data,
		/* Caller memory may have held pages where it is PROT_NONE now. */
		.below = !map,
	};
	nlive++;

	/* Protections: committed top read/write, the rest PROT_NONE. */
	if (raw_read_file("/proc/self/maps", maps_now, MAPS_SIZE) > 0) {
		struct res *n = &live[nlive - 1];

		if (kv.commit && strncmp(perms_at(n->end - 1), "rw", 2))
			FAIL("call %ld REGISTER: committed top is '%s', not rw", idx,
			     perms_at(n->end - 1));
		if (kv.commit < kv.len && strncmp(perms_at(n->start), "---", 3))
			FAIL("call %ld REGISTER: uncommitted bottom is '%s', not ---",
			     idx, perms_at(n->start));
	}
	if (map)
		return retire_mapped(idx, nlive - 1);
	return true;
}

/* ------------------------------------------------------------------ */
/* ARENA (dense mode)                                                   */

#define MAX_ARENAS	4	/* live arenas of caller memory at most */
#define ARENA_SLOTS_OK	64	/* slots of an ARENA that may succeed, at most */

static int nr_arenas(void)
{
	int i, n = 0;

	for (i = 0; i < nlive; i++)
		n += live[i].slot != 0;
	return n;
}

/*
 * ARENA's outcome once the struct pointer is good, in stackres_arena()'s
 * order: EINVAL (arena_check), then for STACKRES_MAP a fixed start that is
 * not free (EEXIST) or mmap's errors (EPERM below mmap_min_addr is EINVAL),
 * then ENXIO outside private anonymous memory, EEXIST on a reservation.
 * Of the targets only the REGISTER region and the first half of the mixed
 * region are private anonymous memory.
 */
static uint64_t arena_expect(const struct stackres_arena *a, enum tgt t)
{
	uint64_t region = (uintptr_t)arena, hole_end = (uintptr_t)hole + HOLE_PAGES * PG;
	uint64_t mix = (uintptr_t)mix_r;
	bool map = a->flags & STACKRES_MAP;
	uint64_t len, end;

	if ((a->flags & ~STACKRES_MAP) || ((a->start | a->slot | a->guard) & (PG - 1)) ||
	    !a->slot || !a->nslots || a->guard >= a->slot ||
	    a->slot > task_size || a->nslots > task_size / a->slot)
		return BIT(EINVAL);
	len = a->slot * a->nslots;
	if ((a->start || !map) && a->start > task_size - len)
		return BIT(EINVAL);
	if (align_bad(a->align, a->start, a->flags))
		return BIT(EINVAL);
	end = a->start + len;
	if (map) {
		if (!a->start)
			return map_anywhere_expect(len, a->align);
		if (a->start < mmap_min)	/* nothing of ours below 1 MiB */
			return end <= 0x100000 ? BIT(EINVAL) : BIT(EINVAL) | BIT(EEXIST);
		if ((t == T_HOLE && end <= hole_end) || (t == T_LOW && end <= 0x100000))
			return BIT(E_OK);
		if (t == T_HOLE || t == T_LOW || t == T_TOP)
			/* runs past what we know to be free */
			return BIT(E_OK) | BIT(EEXIST) | BIT(ENOMEM);
		return BIT(EEXIST);
	}
	if ((a->start >= region && end <= region + ARENA_PAGES * PG) ||
	    (a->start >= mix && end <= mix + 2 * PG))
		return overlaps_live(a->start, end) ? BIT(EEXIST) : BIT(E_OK);
	return BIT(ENXIO);
}

/* Every page of [start, end) is mapped read/write (maps_now). */
static bool range_rw(uint64_t start, uint64_t end)
{
	uint64_t next = start;
	char *line = maps_now;

	while (*line && next < end) {
		unsigned long long s, e;
		char p[5], *nl = strchr(line, '\n');

		if (sscanf(line, "%llx-%llx %4s", &s, &e, p) == 3 && e > next) {
			if (s > next || strncmp(p, "rw", 2))
				return false;
			next = e;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return next >= end;
}

static bool fuzz_arena(long idx)
{
	static const unsigned int tw[T_NR] = { 40, 8, 4, 4, 5, 8, 2, 2, 3, 10, 4, 5, 5 };
	static unsigned char ubuf[4 * 4096];
	struct stackres_arena a, out, kv;
	struct place pl;
	struct ext x;
	unsigned int w = rn(100), t = 0, s;
	uint64_t expect, npages, pre;
	bool map, align_valid;
	char what[400];
	size_t n;
	long ret;

	while (w >= tw[t]) {
		w -= tw[t];
		t++;
	}
	memset(&a, 0, sizeof(a));
	a.id = rnd();
	a.flags = pct((t == T_ZERO || t == T_HOLE) ? 70 : 20) ? STACKRES_MAP : 0;
	if (pct(4))
		a.flags |= pct(50) ? STACKRES_POPULATE : STACKRES_NOTIFY_GROW;
	if (pct(4))
		a.flags |= 1u << (1 + rn(31));
	if (pct(2))
		a.flags = rnd();
	a.slot = PG * (1 + rn(4));
	a.nslots = 1 + rn(4);
	a.guard = pct(20) ? 0 : PG * rn(a.slot / PG);

	switch (t) {
	case T_ARENA:
		npages = a.slot * a.nslots / PG;
		a.start = (uintptr_t)arena + rn(ARENA_PAGES - npages + 1) * PG;
		break;
	case T_ARENA_OVER:	/* runs into the hole after the region: ENXIO */
		if (a.slot * a.nslots < 2 * PG)
			a.nslots = 2;
		npages = a.slot * a.nslots / PG;
		a.start = (uintptr_t)arena + (ARENA_PAGES - npages + 1 + rn(npages - 1)) * PG;
		break;
	case T_SHARED:
	case T_FILE:
		a.start = (uintptr_t)(t == T_SHARED ? shared_r : file_r) + rn(4) * PG;
		break;
	case T_MIX:		/* into the shared half (unless nslots changes below) */
		s = rn(2);
		a.start = (uintptr_t)mix_r + s * PG;
		a.nslots = (2 - s) * PG / a.slot + 1 + rn(2);
		break;
	case T_HOLE:
		a.start = (uintptr_t)hole + rn(HOLE_PAGES) * PG;
		break;
	case T_STACK:
		a.start = stack_page;
		break;
	case T_VDSO:
		a.start = vdso_page;
		break;
	case T_TEXT:
		a.start = text_page;
		break;
	case T_ZERO:
		a.start = 0;
		break;
	case T_KERNEL:
		a.start = kernel_addr() & ~(PG - 1);
		break;
	case T_TOP:
		a.start = task_size - PG * (1 + rn(4));
		break;
	default: /* T_LOW */
		a.start = PG * rn(16);
		break;
	}
	if (pct(6))
		a.slot = boundary();
	else if (pct(4))
		a.slot += 1 + rn(PG - 1);
	if (pct(6))
		a.nslots = pct(30) ? 0 : boundary();
	if (pct(8))
		a.guard = (uint64_t[]){ a.slot, a.slot + PG, a.guard + 1 + rn(PG - 1),
					boundary() }[rn(4)];
	if (pct(5))
		a.start += 1 + rn(PG - 1);
	else if (pct(3))
		a.start = kernel_addr() & ~(PG - 1);
	a.user_data = pick_user_data();
	a.align = pick_align(&align_valid);
	if (align_valid && pct(80)) {
		a.flags |= STACKRES_MAP;
		a.start = 0;
	}
	ext_pick(&x, STACKRES_IOC_ARENA, STACKRES_ARENA_SIZE_VER0, sizeof(a));
	pl = place_struct(ext_psize(&x));
	ext_view(&x, &kv, &a);

	/* Keep what may succeed small: a few slots, a few guard pages each. */
	expect = arena_expect(&kv, t);
	if ((expect & BIT(E_OK)) &&
	    (kv.nslots > ARENA_SLOTS_OK || kv.nslots * (kv.guard / PG) > 4 * ARENA_SLOTS_OK)) {
		kv.nslots = 1 + rn(4);
		a.nslots = kv.nslots;
		if (kv.guard > 4 * PG) {
			kv.guard = PG * rn(5);
			a.guard = kv.guard;
		}
		expect = arena_expect(&kv, t);
	}
	/* Keep live[] bounded, and the arenas few: then no new one. */
	if ((expect & BIT(E_OK)) &&
	    (nlive >= MAX_LIVE - 1 || (!(kv.flags & STACKRES_MAP) && nr_arenas() >= MAX_ARENAS))) {
		a.nslots = 0;
		kv.nslots = 0;
		expect = BIT(EINVAL);
	}
	map = kv.flags & STACKRES_MAP;
	pre = ext_expect(&x, &pl);
	if (pre) {
		expect = pre;
		if (pre & BIT(EFAULT))
			guard_hit(&pl);
	} else if (pl.cls != P_OK) {
		expect = BIT(EFAULT);	/* the result could not be stored */
	}

	snprintf(what, sizeof(what),
		 "ptr %s %#llx size %zu (%s), target %u, start %#llx slot %#llx nslots %#llx "
		 "guard %#llx flags %#x user_data %#llx align %#llx", kind_name[pl.kind],
		 (unsigned long long)pl.addr, x.usize, sz_name[x.cls], t,
		 (unsigned long long)kv.start, (unsigned long long)kv.slot,
		 (unsigned long long)kv.nslots, (unsigned long long)kv.guard, kv.flags,
		 (unsigned long long)kv.user_data, (unsigned long long)kv.align);
	stage_struct(OP_ARENA, &x, &pl, &a, ubuf);
	if (!issue(idx, OP_ARENA, stackres_fd, &x, &pl, expect, what, &ret))
		return false;
	if (ret)
		return true;

	/* Success: the struct comes back with id (and start for MAP) set. */
	n = x.usize < sizeof(out) ? x.usize : sizeof(out);
	memset(&out, 0, sizeof(out));
	get_struct(&pl, &out, n);
	if (!out.id || find_res_id(out.id) >= 0)
		FAIL("call %ld ARENA: id %u (0 or in use)", idx, out.id);
	kv.id = out.id;
	kv.start = out.start;
	if (memcmp(&out, &kv, n))
		FAIL("call %ld ARENA: input fields changed (%s)", idx, what);
	if (map && !a.start) {
		if ((out.start & (PG - 1)) || out.start < mmap_min ||
		    out.start > task_size - kv.slot * kv.nslots)
			FAIL("call %ld ARENA|MAP: start %#llx", idx,
			     (unsigned long long)out.start);
		if (!check_map_anywhere(idx, "ARENA", out.start,
					out.start + kv.slot * kv.nslots, kv.align))
			return false;
	} else if (out.start != a.start) {
		FAIL("call %ld ARENA: start %#llx, passed %#llx", idx,
		     (unsigned long long)out.start, (unsigned long long)a.start);
	}
	live[nlive] = (struct res) {
		.fd = 1, .id = out.id, .mapped = map, .start = out.start,
		.end = out.start + kv.slot * kv.nslots, .guard_top = out.start + kv.guard,
		.bottom = out.start, .slot = kv.slot, .flags = kv.flags,
		.user_data = kv.user_data,
	};
	nlive++;
	arenas_made[map]++;

	/* One read/write range (the protections ARENA defines), guards in place. */
	if (raw_read_file("/proc/self/maps", maps_now, MAPS_SIZE) > 0 &&
	    !range_rw(live[nlive - 1].start, live[nlive - 1].end))
		FAIL("call %ld ARENA: [%#llx, %#llx) not all read/write", idx,
		     (unsigned long long)live[nlive - 1].start,
		     (unsigned long long)live[nlive - 1].end);
	if (!check_guards(idx, &live[nlive - 1], false, "after ARENA"))
		return false;
	if (map)
		return retire_mapped(idx, nlive - 1);
	return true;
}

/* ------------------------------------------------------------------ */
/* UNREGISTER, TRIM, QUERY                                              */

/* An id to pass: mostly live, some dead, fd2's, 0, random. */
static uint32_t pick_id(void)
{
	unsigned int w = rn(100);
	int i;

	if (w < 50 && nlive) {
		i = rn(nlive);
		return live[i].id;
	}
	if (w < 70 && ndead)
		return dead_ids[rn(ndead < 64 ? ndead : 64)];
	if (w < 80)
		return 0;
	if (w < 90)
		return ~0u - rn(2);
	return rn(4) ? rn(64) : (uint32_t)rnd();
}

static bool fuzz_unregister(long idx)
{
	struct place pl = place_struct(sizeof(uint32_t));
	uint32_t id = pick_id();
	int i = find_res_id(id), err;
	uint64_t expect;
	char what[128];
	long ret;

	if (pl.cls == P_BAD) {
		expect = BIT(EFAULT);
		guard_hit(&pl);
	} else {
		expect = i >= 0 ? BIT(E_OK) : BIT(ENOENT);
	}
	on_arena = i >= 0 && live[i].slot;
	snprintf(what, sizeof(what), "ptr %s %#llx id %u", kind_name[pl.kind],
		 (unsigned long long)pl.addr, id);
	kind_counts[pl.kind]++;
	put_struct(&pl, &id, sizeof(id));
	maps_before(idx);
	ret = do_ioctl(stackres_fd, STACKRES_IOC_UNREGISTER, pl.addr, &err);
	if (!check_outcome(idx, OP_UNREG, ret, err, expect, what))
		return false;
	if (!ret) {
		struct res r = live[i];

		maps_dirty = false;	/* UNREGISTER leaves the mapping as it is */
		if (!maps_after_failure(idx, true))
			FAIL("call %ld: UNREGISTER changed /proc/self/maps", idx);
		drop_res(i);
		/* An arena's guard markers stay too. */
		if (r.slot && (!check_guards(idx, &r, false, "after UNREGISTER") ||
			       !unguard(idx, &r)))
			return false;
	}
	return true;
}

/*
 * TRIM of an arena (kmod/dense.c, dense_trim_range()): sp names the slot
 * whose range (slot start, slot end] holds it, and must not lie below that
 * slot's guard top.  The pages of [*lo, *hi) are freed.
 */
static bool arena_trim_ok(const struct res *r, uint64_t sp, uint64_t keep,
			  uint64_t *lo, uint64_t *hi)
{
	if (sp <= r->start || sp > r->end)
		return false;
	*lo = r->start + (sp - 1 - r->start) / r->slot * r->slot + guard_of(r);
	if (sp < *lo)
		return false;
	*hi = *lo;
	if (keep < sp - *lo && ((sp - keep) & ~(PG - 1)) > *lo)
		*hi = (sp - keep) & ~(PG - 1);
	return true;
}

/*
 * Bytes that show what a TRIM of an arena did: one in the pages it frees
 * (zero afterwards), one above them in the same slot and one in another
 * slot (both kept).
 */
struct trim_probe {
	uint64_t addr[3];
	unsigned char want[3];
	int n;
};

static void trim_probe_set(struct trim_probe *tp, const struct res *r, uint64_t lo,
			   uint64_t hi)
{
	uint64_t s0 = lo - guard_of(r), other = any_slot(r);

	tp->n = 0;
	if (hi > lo) {
		tp->addr[tp->n] = lo + rn(hi - lo);
		tp->want[tp->n++] = 0;
	}
	if (hi < s0 + r->slot) {
		tp->addr[tp->n] = hi + rn(s0 + r->slot - hi);
		tp->want[tp->n++] = 1 + rn(255);
	}
	if (other != s0) {
		tp->addr[tp->n] = other + guard_of(r) + rn(r->slot - guard_of(r));
		tp->want[tp->n++] = 1 + rn(255);
	}
	/* A byte to be freed holds something first, or zero would prove nothing. */
	for (int j = 0; j < tp->n; j++)
		*(volatile unsigned char *)(uintptr_t)tp->addr[j] =
			tp->want[j] ? tp->want[j] : 0x5a;
}

static bool trim_probe_check(long idx, const struct trim_probe *tp, const char *what)
{
	for (int j = 0; j < tp->n; j++) {
		unsigned char got = *(volatile unsigned char *)(uintptr_t)tp->addr[j];

		if (got != tp->want[j])
			FAIL("call %ld TRIM of an arena (%s): byte at %#llx is %#x, expected %#x",
			     idx, what, (unsigned long long)tp->addr[j], got, tp->want[j]);
	}
	return true;
}

/* One TRIM (or TRIM_VEC entry): by id as in version 0, or by address. */
static void gen_trim(struct stackres_trim *t)
{
	unsigned int w = rn(100);
	struct res *r;
	int i;

	memset(t, 0, sizeof(*t));
	if (w < 70)
		t->flags = 0;
	else if (w < 92)
		t->flags = STACKRES_TRIM_ADDR;
	else if (w < 96)
		t->flags = STACKRES_TRIM_ADDR | 1u << (1 + rn(31));
	else
		t->flags = pct(50) ? 1u << (1 + rn(31)) : (uint32_t)rnd();
	if (t->flags & STACKRES_TRIM_ADDR) {
		/* Any file's reservation: the second file's are not found. */
		t->id = pct(90) ? 0 : pick_id();
		i = nlive && pct(85) ? (int)rn(nlive) : -1;
	} else {
		/* Some of the first file's, else any id. */
		i = pct(35) ? pick_fd1_res(false, false) : -1;
		t->id = i >= 0 ? live[i].id : pick_id();
		i = find_res_id(t->id);
	}
	r = i >= 0 ? &live[i] : NULL;
	if (r && r->slot) {
		uint64_t s0 = any_slot(r), g = guard_of(r);

		if (pct(70))
			t->sp = s0 + g + rn(r->slot - g + 1);
		else if (pct(50))
			t->sp = (uint64_t[]){ r->start, r->start + 1, s0 + g - 1, s0, s0 + 1,
					      r->end, r->end + 1, s0 + g,
					      r->end + (1ULL << 32) }[rn(9)];
		else
			t->sp = boundary();
	} else if (r && pct(70)) {
		t->sp = r->guard_top + rn(r->end - r->guard_top + 1);
	} else if (r && pct(50)) {
		t->sp = (uint64_t[]){ r->guard_top - 1, r->end + 1, r->start, r->end,
				      r->guard_top, r->end + (1ULL << 32) }[rn(6)];
	} else {
		t->sp = boundary();
	}
	if (pct(40))
		t->keep = 0;
	else if (pct(60) && r)
		t->keep = rn((r->slot ? r->slot : r->end - r->start) + PG);
	else
		t->keep = boundary();
	/* An answer: what a reused struct brings in does not matter. */
	if (pct(30))
		t->committed = rnd();
	if (pct(3))
		t->reserved = pct(50) ? rnd() : 1;
}

/*
 * The errno of TRIM @t through the first file (0: it trims), the
 * reservation or arena it names (*@ri) and for an arena the range it frees.
 */
static int trim_errno(const struct stackres_trim *t, int *ri, uint64_t *lo, uint64_t *hi)
{
	int i;

	*ri = -1;
	*lo = *hi = 0;
	if ((t->flags & ~STACKRES_TRIM_ADDR) || t->reserved)
		return EINVAL;
	if (t->flags & STACKRES_TRIM_ADDR) {
		if (t->id)
			return EINVAL;
		i = find_res_sp(t->sp, 1);
	} else {
		i = find_res_id(t->id);
	}
	if (i < 0)
		return ENOENT;
	*ri = i;
	if (live[i].slot)
		return arena_trim_ok(&live[i], t->sp, t->keep, lo, hi) ? 0 : EINVAL;
	return t->sp >= live[i].guard_top && t->sp <= live[i].end ? 0 : EINVAL;
}

/*
 * A reservation's pages entirely below sp - keep, above the guard, go;
 * a cut at or above the committed bottom leaves no page below it.
 */
static void model_trim(struct res *r, const struct stackres_trim *t)
{
	uint64_t x;

	if (r->slot || t->keep >= t->sp - r->guard_top)
		return;
	x = (t->sp - t->keep) & ~(PG - 1);
	/* Large folios: whole ones stay. */
	if (r->flags & STACKRES_LARGE_FOLIOS)
		x &= ~(uint64_t)(STACKRES_FOLIO_SIZE - 1);
	if (x <= r->guard_top)
		return;
	if (x >= r->bottom)
		r->below = false;
	if (x > r->bottom)
		r->bottom = x;
}

/*
 * The committed bytes a trim of @r writes back: a reservation's exactly;
 * for an arena the resident bytes of the slot, which lie above the pages
 * freed (from @hi) and above its guard, and include the pages @tp wrote.
 */
static uint64_t trim_committed_checks;

static bool check_trim_committed(long idx, const struct res *r, uint64_t got,
				 uint64_t committed, uint64_t lo, uint64_t hi,
				 const struct trim_probe *tp, const char *what)
{
	uint64_t top = lo - guard_of(r) + r->slot, rmin = 0;

	trim_committed_checks++;
	if (!r->slot) {
		if (got != committed)
			FAIL("call %ld TRIM (%s): committed %#llx written back, model %#llx",
			     idx, what, (unsigned long long)got, (unsigned long long)committed);
		return true;
	}
	for (int j = 0; tp && j < tp->n; j++)
		if (tp->want[j] && tp->addr[j] >= hi && tp->addr[j] < top)
			rmin = PG;
	if (got % PG || got < rmin || got > top - hi)
		FAIL("call %ld TRIM of an arena (%s): resident %#llx written back, expected a "
		     "page multiple in %#llx..%#llx", idx, what, (unsigned long long)got,
		     (unsigned long long)rmin, (unsigned long long)(top - hi));
	return true;
}

static uint64_t trim_addr_calls;

static bool fuzz_trim(long idx)
{
	static unsigned char ubuf[4 * 4096], back[4 * 4096];
	struct stackres_trim t, kv;
	struct place pl;
	struct ext x;
	int i, e, err;
	uint64_t expect, lo = 0, hi = 0, got, committed;
	struct res *r;
	struct trim_probe tp = { .n = 0 };
	bool want, self;
	char what[300];
	size_t n;
	long ret;

	gen_trim(&t);
	ext_pick(&x, STACKRES_IOC_TRIM, STACKRES_TRIM_SIZE_VER0, sizeof(t));
	pl = place_struct(ext_psize(&x));
	ext_view(&x, &kv, &t);
	want = x.usize >= STACKRES_TRIM_SIZE_VER1;
	e = trim_errno(&kv, &i, &lo, &hi);
	expect = ext_expect(&x, &pl);
	if (expect) {
		if (expect & BIT(EFAULT))
			guard_hit(&pl);
	} else if (!want && kv.flags) {
		expect = BIT(EINVAL);	/* version 0 refused a non-zero pad */
	} else if (want && !struct_writable(&pl, offsetof(struct stackres_trim, committed),
					    sizeof(t.committed))) {
		/* Bad input, changes nothing: the store is tried first. */
		expect = BIT(EFAULT);
	} else if (e) {
		expect = BIT(e);
	} else {
		expect = BIT(E_OK);
	}
	trim_addr_calls += !!(kv.flags & STACKRES_TRIM_ADDR);
	snprintf(what, sizeof(what), "ptr %s %#llx size %zu (%s) id %u flags %#x sp %#llx "
		 "keep %#llx", kind_name[pl.kind], (unsigned long long)pl.addr, x.usize,
		 sz_name[x.cls], kv.id, kv.flags, (unsigned long long)kv.sp,
		 (unsigned long long)kv.keep);
	stage_struct(OP_TRIM, &x, &pl, &t, ubuf);
	r = i >= 0 ? &live[i] : NULL;	/* put_struct may have grown it */
	/* Whether it frees the right pages (unless the struct lies in them). */
	if (expect == BIT(E_OK) && r->slot && !(pl.kind == K_SLOT && pl.res == i) &&
	    pct(50))
		trim_probe_set(&tp, r, lo, hi);
	on_arena = r && r->slot;
	probes += tp.n > 0;
	maps_before(idx);
	ret = do_ioctl(stackres_fd, x.cmd, pl.addr, &err);
	if (!check_outcome(idx, OP_TRIM, ret, err, expect, what) ||
	    !sentinel_check(idx, OP_TRIM, what))
		return false;
	if (ret)
		return true;
	model_trim(r, &kv);
	committed = r->end - r->bottom;
	/*
	 * A struct in what the trim freed: the store of committed commits
	 * it again (a reservation), or faults a fresh page in (a slot), and
	 * the rest of it reads as zero.
	 */
	self = (pl.kind == K_RES || pl.kind == K_SLOT) && pl.res == i;
	if (self && want && !r->slot)
		model_touch(r, pl.addr + offsetof(struct stackres_trim, committed));
	/* The caller's bytes as they were, but committed (version 1 size). */
	n = ext_psize(&x);
	if (want) {
		memcpy(&got, (const void *)(uintptr_t)(pl.addr +
		       offsetof(struct stackres_trim, committed)), sizeof(got));
		if (!check_trim_committed(idx, r, got, committed, lo, hi, &tp, what))
			return false;
		memcpy(ubuf + offsetof(struct stackres_trim, committed), &got, sizeof(got));
	}
	if (!self) {
		get_struct(&pl, back, n);
		if (memcmp(back, ubuf, n))
			FAIL("call %ld TRIM (%s): the struct changed beyond committed", idx,
			     what);
	}
	if (r->slot) {
		/* MADV_DONTNEED: the mapping is as it was, the guards too. */
		maps_dirty = false;
		if (!maps_after_failure(idx, true))
			FAIL("call %ld: TRIM of an arena changed /proc/self/maps (%s)", idx,
			     what);
		if (!trim_probe_check(idx, &tp, what))
			return false;
		if (pct(25))
			return check_guards(idx, r, false, "after TRIM") &&
			       query_addr_now(idx, i, kv.sp - 1, "after TRIM");
	} else if (pct(25)) {
		return query_id_now(idx, i, "after TRIM");
	}
	return true;
}

static bool fuzz_query(long idx)
{
	static unsigned char ubuf[4 * 4096];
	struct stackres_query q, kv, out;
	struct place pl;
	struct ext x;
	unsigned int w = rn(100);
	int i = -1, fd = pct(85) ? 1 : 2;
	uint64_t expect;
	uint32_t in;
	char what[300];
	size_t n;
	long ret;

	memset(&q, 0x5a, sizeof(q));
	q.id = pick_id();
	q.flags = pct(50) ? STACKRES_QUERY_ADDR : 0;
	if ((q.flags & STACKRES_QUERY_ADDR) && pct(35))
		q.flags |= STACKRES_QUERY_ANY;
	else if (pct(3))
		q.flags |= STACKRES_QUERY_ANY;		/* without ADDR: EINVAL */
	/* Answers that a reused struct may carry: ignored. */
	if (pct(8))
		q.flags |= (uint32_t[]){ STACKRES_QUERY_SLOT, STACKRES_QUERY_GUARD,
					 STACKRES_QUERY_FOREIGN }[rn(3)];
	if (pct(8))
		q.flags = rnd() & (pct(50) ? 0xff : ~0u);
	if (w < 50 && nlive) {
		struct res *r = &live[rn(nlive)];

		q.addr = r->start + rn(r->end - r->start);
		/* An arena: often the first or last byte of a slot, or its guard. */
		if (r->slot && pct(30))
			q.addr = any_slot(r) + (pct(50) ? 0 : r->slot - 1);
		else if (guard_of(r) && pct(20))
			q.addr = (r->slot ? any_slot(r) : r->start) + rn(guard_of(r));
	} else if (w < 60 && nlive) {
		q.addr = live[rn(nlive)].end;
	} else if (w < 70 && nlive) {
		q.addr = live[rn(nlive)].start - 1;
	} else if (w < 80 && nlive) {
		/* Only the low 32 bits name a reservation on a 32-bit ABI. */
		q.addr = live[rn(nlive)].start + (1ULL << 32);
	} else {
		q.addr = boundary();
	}

	ext_pick(&x, STACKRES_IOC_QUERY, STACKRES_QUERY_SIZE_VER0, sizeof(q));
	pl = place_struct(ext_psize(&x));
	ext_view(&x, &kv, &q);
	in = kv.flags & ~(STACKRES_QUERY_SLOT | STACKRES_QUERY_GUARD | STACKRES_QUERY_FOREIGN);
	if (!(in & STACKRES_QUERY_ADDR))
		i = find_res_id_fd(kv.id, fd);
	else if (in & STACKRES_QUERY_ANY)
		i = find_res_any(kv.addr);
	else
		i = find_res_addr(kv.addr, fd);
	expect = ext_expect(&x, &pl);
	if (expect) {
		if (expect & BIT(EFAULT))
			guard_hit(&pl);
	} else if (x.usize < STACKRES_QUERY_SIZE_VER1 &&
		   (kv.flags & ~(STACKRES_QUERY_ADDR | STACKRES_QUERY_SLOT))) {
		expect = BIT(EINVAL);	/* as version 0 refused them */
	} else if ((in & ~(STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY)) ||
		   ((in & STACKRES_QUERY_ANY) && !(in & STACKRES_QUERY_ADDR))) {
		expect = BIT(EINVAL);
	} else if (i < 0) {
		expect = BIT(ENOENT);
	} else if (pl.cls == P_RO) {
		expect = BIT(EFAULT);
	} else {
		expect = BIT(E_OK);
	}
	snprintf(what, sizeof(what), "fd %d ptr %s %#llx size %zu (%s) id %u flags %#x "
		 "addr %#llx", fd, kind_name[pl.kind], (unsigned long long)pl.addr, x.usize,
		 sz_name[x.cls], kv.id, kv.flags, (unsigned long long)kv.addr);
	stage_struct(OP_QUERY, &x, &pl, &q, ubuf);
	on_arena = i >= 0 && live[i].slot;
	if (!issue(idx, OP_QUERY, fd == 1 ? stackres_fd : fd2, &x, &pl, expect, what, &ret))
		return false;
	if (!ret) {
		maps_dirty = false;	/* QUERY changes nothing */
		n = x.usize < sizeof(out) ? x.usize : sizeof(out);
		memset(&out, 0, sizeof(out));
		get_struct(&pl, &out, n);
		return check_query(idx, &out, &live[i], in, kv.addr, x.usize, fd,
				   kv.resident);
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* FEATURES                                                             */

static uint32_t max_res_param(void)
{
	char buf[32];

	if (raw_read_file("/sys/module/stackres/parameters/max_reservations", buf,
			  sizeof(buf)) > 0)
		return strtoul(buf, NULL, 0);
	return 32768;
}

/*
 * FEATURES (_IOR): every field as ABI version 1 defines it; a larger
 * struct's tail is zeroed, whatever it held (the module does not read it).
 */
static bool fuzz_features(long idx)
{
	static unsigned char ubuf[4 * 4096], back[4 * 4096];
	const struct stackres_features e = {
		.version = 1, .record_size = STACKRES_RECORD_SIZE_VER1, .ioctls = 0x3fe,
		.reg_flags = STACKRES_MAP | STACKRES_POPULATE | STACKRES_NOTIFY_GROW |
			     STACKRES_LARGE_FOLIOS,
		.arena_flags = STACKRES_MAP, .trim_flags = STACKRES_TRIM_ADDR,
		.query_flags = STACKRES_QUERY_ADDR | STACKRES_QUERY_ANY,
		.reg_size = STACKRES_REG_SIZE_VER1, .arena_size = STACKRES_ARENA_SIZE_VER1,
		.trim_size = STACKRES_TRIM_SIZE_VER1, .query_size = STACKRES_QUERY_SIZE_VER1,
		.entry_size = STACKRES_ENTRY_SIZE_VER1, .trim_vec_max = 1024,
		.max_reservations = max_res_param(), .queue_len = 256, .page_size = PG,
		.chunk_max = task_size,
	};
	struct place pl;
	struct ext x;
	uint64_t expect;
	char what[100];
	size_t n;
	long ret;
	int err;

	ext_pick(&x, STACKRES_IOC_FEATURES, sizeof(e), sizeof(e));
	pl = place_struct(ext_psize(&x));
	/* What comes in does not matter: junk, up to the caller's size. */
	n = ext_psize(&x);
	for (size_t j = 0; j < n; j++)
		ubuf[j] = pct(50) ? 0 : rnd();
	if (x.usize < sizeof(e)) {
		expect = BIT(EINVAL);
	} else if (x.usize > PG) {
		expect = BIT(E2BIG);
	} else if (pl.cls != P_OK) {
		expect = BIT(EFAULT);
		guard_hit(&pl);
	} else {
		expect = BIT(E_OK);
	}
	snprintf(what, sizeof(what), "ptr %s %#llx size %zu (%s)", kind_name[pl.kind],
		 (unsigned long long)pl.addr, x.usize, sz_name[x.cls]);
	kind_counts[pl.kind]++;
	sz_counts[OP_FEATURES][x.cls]++;
	put_struct(&pl, ubuf, n);
	sentinel_set(&pl, x.usize);
	maps_before(idx);
	ret = do_ioctl(stackres_fd, x.cmd, pl.addr, &err);
	if (!check_outcome(idx, OP_FEATURES, ret, err, expect, what) ||
	    !sentinel_check(idx, OP_FEATURES, what))
		return false;
	if (ret)
		return true;
	maps_dirty = false;	/* changes no memory */
	get_struct(&pl, back, n);
	if (memcmp(back, &e, sizeof(e))) {
		const struct stackres_features *g = (const void *)back;

		FAIL("call %ld FEATURES (%s): version %u record_size %u ioctls %#llx flags "
		     "%#llx %#llx %#llx %#llx sizes %u %u %u %u %u trim_vec_max %u "
		     "max_reservations %u queue_len %u page_size %#llx chunk_max %#llx", idx,
		     what, g->version, g->record_size, (unsigned long long)g->ioctls,
		     (unsigned long long)g->reg_flags, (unsigned long long)g->arena_flags,
		     (unsigned long long)g->trim_flags, (unsigned long long)g->query_flags,
		     g->reg_size, g->arena_size, g->trim_size, g->query_size, g->entry_size,
		     g->trim_vec_max, g->max_reservations, g->queue_len,
		     (unsigned long long)g->page_size, (unsigned long long)g->chunk_max);
	}
	for (size_t j = sizeof(e); j < n; j++)
		if (back[j])
			FAIL("call %ld FEATURES (%s): byte %zu beyond the struct not zeroed",
			     idx, what, j);
	return true;
}

/* ------------------------------------------------------------------ */
/* TRIM_VEC and LIST: arrays in vecbuf                                  */

/* Where an array lies. */
enum akind { A_OK, A_TAIL, A_RO, A_BAD, A_HIGH, A_NR };
static const char *const akind_name[A_NR] = {
	"ok", "into-none", "read-only", "bad", "high-bits",
};

/* An array of @bytes: its address, where it can be read and written. */
static uint64_t place_array(enum akind *k, uint64_t bytes)
{
	uint64_t room = VEC_PAGES * PG, over;

	if (*k == A_RO && bytes > VEC_RO_PAGES * PG)
		*k = A_OK;
	if ((*k == A_TAIL && !bytes) || (*k == A_HIGH && is64))
		*k = A_BAD;
	switch (*k) {
	case A_OK:
		if (pct(80))
			return (uintptr_t)vecbuf + 8 * rn((room - bytes) / 8 + 1);
		return (uintptr_t)vecbuf + rn(room - bytes + 1);
	case A_TAIL:	/* the last 1..PG bytes run into the PROT_NONE page */
		over = 1 + rn(bytes < PG ? bytes : PG);
		return (uintptr_t)vecbuf + room - bytes + over;
	case A_RO:
		return (uintptr_t)vec_ro + rn(VEC_RO_PAGES * PG - bytes + 1);
	case A_HIGH:	/* a 32-bit ABI: the low bits name good memory */
		return ((uintptr_t)vecbuf | 1ULL << 32) + 8 * rn(8);
	default:
		return (uint64_t[]){ 0, (uintptr_t)vecbuf + room, kernel_addr(),
				     is64 ? noncanonical() : kernel_addr() }[rn(4)];
	}
}

/* Store @n bytes of @src at the array address @a, as far as user space can. */
static void put_array(enum akind k, uint64_t a, const void *src, uint64_t n)
{
	uint64_t room_end = (uintptr_t)vecbuf + VEC_PAGES * PG;

	if (k == A_OK)
		memcpy((void *)(uintptr_t)a, src, n);
	else if (k == A_RO)
		memcpy(vec_ro_alias + (a - (uintptr_t)vec_ro), src, n);
	else if (k == A_TAIL && a < room_end)
		memcpy((void *)(uintptr_t)a, src, room_end - a);
}

static uint64_t vec_done_mid, vec_entries_trimmed, vec_e2big_entries;

/* A good TRIM of a live reservation or slot of the first file, or not. */
static void gen_vec_entry(struct stackres_trim *t, bool good)
{
	int i = good ? pick_fd1_res(false, false) : -1;
	struct res *r;

	if (i < 0) {
		gen_trim(t);
		return;
	}
	r = &live[i];
	memset(t, 0, sizeof(*t));
	if (pct(40))
		t->flags = STACKRES_TRIM_ADDR;
	else
		t->id = r->id;
	if (r->slot) {
		uint64_t s0 = any_slot(r), g = guard_of(r);

		t->sp = s0 + g + 1 + rn(r->slot - g);
	} else {
		t->sp = r->guard_top + 1 + rn(r->end - r->guard_top);
		if (r->end == r->guard_top)	/* all guard: no good sp */
			t->sp = r->end;
	}
	t->keep = pct(40) ? 0 : rn((r->slot ? r->slot : r->end - r->start) + PG);
	if (pct(30))
		t->committed = rnd();
}

static bool fuzz_trim_vec(long idx)
{
	static unsigned char arr[VEC_PAGES * 4096], back[VEC_PAGES * 4096];
	static struct stackres_trim ents[1024];
	static uint64_t want_c[1024], lo_c[1024], hi_c[1024];
	static int res_c[1024];
	static unsigned char ubuf[4 * 4096];
	struct stackres_trim_vec v, kv;
	struct place pl;
	struct ext x;
	struct stackres_trim_vec got;
	enum akind ak;
	unsigned int w, k, count, esize, nread, done = 0, bad_at = ~0u, e2big_at = ~0u;
	uint64_t expect, bytes, trims = 0, room = VEC_PAGES * PG;
	bool want, content, changes = false, went, done_ro;
	char what[300];
	int err, e = 0;
	long ret;

	memset(&v, 0, sizeof(v));
	w = rn(100);
	if (w < 5)
		count = 0;
	else if (w < 75)
		count = 1 + rn(8);
	else if (w < 90)
		count = 1 + rn(64);
	else if (w < 95)
		count = 1 + rn(1024);
	else
		count = (uint32_t[]){ 1024, 1025, 4096, 0xffffffff, (uint32_t)rnd() }[rn(5)];
	w = rn(100);
	if (w < 35)
		esize = STACKRES_TRIM_SIZE_VER0;
	else if (w < 80)
		esize = STACKRES_TRIM_SIZE_VER1;
	else if (w < 88)
		esize = STACKRES_TRIM_SIZE_VER1 + 1 + rn(64);
	else if (w < 92)	/* between the versions: EINVAL */
		esize = STACKRES_TRIM_SIZE_VER0 + 1 + rn(STACKRES_TRIM_SIZE_VER1 -
							  STACKRES_TRIM_SIZE_VER0 - 1);
	else if (w < 95)
		esize = rn(STACKRES_TRIM_SIZE_VER0);
	else if (w < 97)
		esize = PG;
	else
		esize = PG + 1 + rn(1 << 16);
	w = rn(100);
	ak = w < 85 ? A_OK : w < 90 ? A_TAIL : w < 94 ? A_RO : w < 98 ? A_BAD : A_HIGH;
	/* Only what is read is generated: keep a good array in vecbuf. */
	content = count && count <= 1024 && esize <= PG &&
		  (esize == STACKRES_TRIM_SIZE_VER0 || esize >= STACKRES_TRIM_SIZE_VER1);
	if (content && (uint64_t)count * esize > room)
		count = room / esize;
	bytes = content ? (uint64_t)count * esize : 0;
	if (content || pct(50))
		trims = place_array(&ak, bytes);
	else
		trims = boundary();
	v.trims = trims;
	v.count = count;
	v.entry_size = esize;
	if (pct(3))
		v.flags = pct(50) ? 1u << rn(32) : (uint32_t)rnd();
	if (pct(20))
		v.done = rnd();		/* an answer: ignored */
	want = esize >= STACKRES_TRIM_SIZE_VER1;

	/* The entries: good ones, one of them maybe not, or any. */
	if (content) {
		w = rn(100);
		if (w < 40)
			bad_at = rn(count);
		for (k = 0; k < count; k++)
			gen_vec_entry(&ents[k], w < 90 && k != bad_at);
		memset(arr, 0, bytes);
		for (k = 0; k < count; k++)
			memcpy(arr + (uint64_t)k * esize, &ents[k],
			       esize < sizeof(ents[k]) ? esize : sizeof(ents[k]));
		if (esize > sizeof(ents[0]) && ak == A_OK && pct(15)) {
			e2big_at = rn(count);
			arr[(uint64_t)e2big_at * esize + sizeof(ents[0]) +
			    rn(esize - sizeof(ents[0]))] = 1 + rn(255);
		}
		/* The module's view of each entry. */
		for (k = 0; k < count; k++)
			if (esize < sizeof(ents[k]))
				memset((char *)&ents[k] + esize, 0, sizeof(ents[k]) - esize);
	}

	ext_pick(&x, STACKRES_IOC_TRIM_VEC, sizeof(v), sizeof(v));
	pl = place_struct(ext_psize(&x));
	done_ro = !struct_writable(&pl, offsetof(struct stackres_trim_vec, done),
				   sizeof(v.done));
	ext_view(&x, &kv, &v);
	/* Stored first: a struct in a reservation grows it, and the model with it. */
	if (content)
		put_array(ak, trims, arr, bytes);
	ext_bytes(&x, &v, ubuf);
	put_struct(&pl, ubuf, ext_psize(&x));
	expect = ext_expect(&x, &pl);
	/*
	 * Past the size rules the module stores done (0) first, and nothing
	 * changes if it cannot; from then on done is 0 but for the entries.
	 */
	went = !expect && !done_ro;
	if (expect) {
		if (expect & BIT(EFAULT))
			guard_hit(&pl);
	} else if (done_ro) {
		expect = BIT(EFAULT);
	} else if (kv.flags || kv.count > 1024 ||
		   (kv.entry_size != STACKRES_TRIM_SIZE_VER0 &&
		    kv.entry_size < STACKRES_TRIM_SIZE_VER1)) {
		expect = BIT(EINVAL);
	} else if (kv.entry_size > PG) {
		expect = BIT(E2BIG);
	} else if (!is64 && !is_compat && kv.trims >> 32) {
		expect = BIT(EFAULT);	/* not a pointer of the kernel */
	} else if (!kv.count) {
		expect = BIT(E_OK);
	} else if ((ak != A_OK && ak != A_RO) || (ak == A_RO && want)) {
		/* Reading the array, or trying the store of an answer. */
		expect = BIT(EFAULT);
	} else {
		/* In order: the entries before the first bad one are trimmed. */
		nread = e2big_at < count ? e2big_at : count;
		for (k = 0; k < nread; k++) {
			e = trim_errno(&ents[k], &res_c[k], &lo_c[k], &hi_c[k]);
			if (e)
				break;
			model_trim(&live[res_c[k]], &ents[k]);
			want_c[k] = live[res_c[k]].end - live[res_c[k]].bottom;
		}
		done = k;
		if (!e && nread < count)
			e = E2BIG;
		changes = done > 0;
		expect = e ? BIT(e) : BIT(E_OK);
	}
	snprintf(what, sizeof(what), "ptr %s %#llx size %zu (%s) trims %s %#llx count %u "
		 "entry_size %u flags %#x (bad entry %d, non-zero tail %d)", kind_name[pl.kind],
		 (unsigned long long)pl.addr, x.usize, sz_name[x.cls], akind_name[ak],
		 (unsigned long long)kv.trims, kv.count, kv.entry_size, kv.flags,
		 (int)bad_at, (int)e2big_at);
	kind_counts[pl.kind]++;
	sz_counts[OP_TRIMVEC][x.cls]++;
	sentinel_set(&pl, x.usize);
	failure_changes = changes;
	maps_before(idx);
	ret = do_ioctl(stackres_fd, x.cmd, pl.addr, &err);
	if (!check_outcome(idx, OP_TRIMVEC, ret, err, expect, what) ||
	    !sentinel_check(idx, OP_TRIMVEC, what))
		return false;
	if (!went || done_ro)
		return true;
	/* done stored into a reservation the entries trimmed: it grows again. */
	if (pl.kind == K_RES)
		model_touch(&live[pl.res], pl.addr + offsetof(struct stackres_trim_vec, done));
	/* The module went through the entries: done, and the array written back. */
	vec_done_mid += done && done < count;
	vec_entries_trimmed += done;
	vec_e2big_entries += e == E2BIG;
	memset(&got, 0, sizeof(got));
	get_struct(&pl, &got, x.usize < sizeof(got) ? x.usize : sizeof(got));
	if (got.done != done)
		FAIL("call %ld TRIM_VEC (%s): done %u, expected %u (first error %s)",
		     idx, what, got.done, done, ename(e));
	if (content && (ak == A_OK || ak == A_RO)) {
		memcpy(back, ak == A_OK ? (void *)(uintptr_t)trims :
		       vec_ro_alias + (trims - (uintptr_t)vec_ro), bytes);
		for (k = 0; want && ak == A_OK && k < done; k++) {
			const size_t at = (size_t)k * esize +
					  offsetof(struct stackres_trim, committed);
			uint64_t c;

			memcpy(&c, back + at, sizeof(c));
			if (!check_trim_committed(idx, &live[res_c[k]], c, want_c[k], lo_c[k],
						  hi_c[k], NULL, what))
				return false;
			memcpy(arr + at, &c, sizeof(c));
		}
		for (uint64_t j = 0; j < bytes; j++)
			if (back[j] != arr[j])
				FAIL("call %ld TRIM_VEC (%s): byte %llu of the array (entry %llu) "
				     "changed", idx, what, (unsigned long long)j,
				     (unsigned long long)(j / esize));
	}
	if (done && pct(20))
		return query_id_now(idx, res_c[rn(done)], "after TRIM_VEC");
	return true;
}

/* One LIST entry against the model. */
static bool check_entry(long idx, const struct stackres_entry *g, const struct res *r,
			const char *what)
{
	uint64_t committed = r->end - r->bottom, cmax = committed;

	if (r->slot) {
		cmax = (r->slot - guard_of(r)) * nslots_of(r);
		committed = g->committed;
		if (committed % PG || committed > cmax)
			FAIL("call %ld LIST (%s): arena id %u resident %#llx, expected a page "
			     "multiple up to %#llx", idx, what, r->id,
			     (unsigned long long)committed, (unsigned long long)cmax);
	}
	if (g->id != r->id || g->user_data != r->user_data || g->start != r->start ||
	    g->len != r->end - r->start || g->committed != committed ||
	    g->flags != (r->slot ? STACKRES_ENTRY_ARENA : 0))
		FAIL("call %ld LIST (%s): entry id %u user_data %#llx start %#llx len %#llx "
		     "committed %#llx flags %#x; model id %u user_data %#llx start %#llx len "
		     "%#llx committed %#llx flags %#x", idx, what, g->id,
		     (unsigned long long)g->user_data, (unsigned long long)g->start,
		     (unsigned long long)g->len, (unsigned long long)g->committed, g->flags,
		     r->id, (unsigned long long)r->user_data, (unsigned long long)r->start,
		     (unsigned long long)(r->end - r->start), (unsigned long long)committed,
		     r->slot ? STACKRES_ENTRY_ARENA : 0);
	return true;
}

/* The live reservations of file @fd with id >= @from, in id order. */
static int list_model(int fd, uint32_t from, int *ix)
{
	int i, j, n = 0;

	for (i = 0; i < nlive; i++) {
		if (live[i].fd != fd || live[i].id < from)
			continue;
		for (j = n++; j > 0 && live[ix[j - 1]].id > live[i].id; j--)
			ix[j] = ix[j - 1];
		ix[j] = i;
	}
	return n;
}

/* Totals: nr_res and committed of every live reservation of @fd. */
static bool check_list_totals(long idx, const struct stackres_list *g, int fd,
			      const char *what)
{
	uint64_t lo = 0, hi = 0, nr = 0;
	int i;

	for (i = 0; i < nlive; i++) {
		if (live[i].fd != fd)
			continue;
		nr++;
		if (live[i].slot) {
			hi += (live[i].slot - guard_of(&live[i])) * nslots_of(&live[i]);
		} else {
			lo += live[i].end - live[i].bottom;
			hi += live[i].end - live[i].bottom;
		}
	}
	if (g->nr_res != nr || g->committed < lo || g->committed > hi || g->committed % PG)
		FAIL("call %ld LIST (%s): nr_res %llu committed %#llx, model %llu, %#llx..%#llx",
		     idx, what, (unsigned long long)g->nr_res,
		     (unsigned long long)g->committed, (unsigned long long)nr,
		     (unsigned long long)lo, (unsigned long long)hi);
	return true;
}

static uint64_t list_walks, list_entries_checked;

/* Every reservation of @fd, a few per call, in id order: the model's. */
static bool list_walk(long idx, int fd)
{
	static struct stackres_entry ents[4];
	int ix[MAX_LIVE], n = list_model(fd, 0, ix), got = 0, calls = 0, err;
	struct stackres_list l = { .entries = (uintptr_t)ents,
				   .entry_size = sizeof(ents[0]) };
	uint64_t sum = 0, total = 0;

	list_walks++;
	do {
		l.count = 1 + rn(4);
		if (do_ioctl(fd == 1 ? stackres_fd : fd2, STACKRES_IOC_LIST, (uintptr_t)&l,
			     &err))
			FAIL("call %ld LIST walk (fd %d, next_id %u): %s", idx, fd, l.next_id,
			     ename(err));
		if (!check_list_totals(idx, &l, fd, "walk"))
			return false;
		if (calls && l.committed != total)
			FAIL("call %ld LIST walk: committed %#llx, before %#llx", idx,
			     (unsigned long long)l.committed, (unsigned long long)total);
		total = l.committed;
		for (unsigned int j = 0; j < l.filled; j++, got++) {
			if (got >= n)
				FAIL("call %ld LIST walk (fd %d): more than %d entries", idx, fd,
				     n);
			if (!check_entry(idx, &ents[j], &live[ix[got]], "walk"))
				return false;
			sum += ents[j].committed;
		}
		if (l.filled > l.count || (l.next_id && l.filled < l.count) ||
		    (l.next_id && (got >= n || l.next_id != live[ix[got]].id)))
			FAIL("call %ld LIST walk (fd %d): count %u filled %u next_id %u after %d "
			     "of %d entries", idx, fd, l.count, l.filled, l.next_id, got, n);
	} while (l.next_id && ++calls < 2 * MAX_LIVE);
	if (got != n || sum != total)
		FAIL("call %ld LIST walk (fd %d): %d entries committed %#llx, model %d, "
		     "totals %#llx", idx, fd, got, (unsigned long long)sum, n,
		     (unsigned long long)total);
	return true;
}

static bool fuzz_list(long idx)
{
	static unsigned char ubuf[4 * 4096], pre[VEC_PAGES * 4096];
	struct stackres_list l, kv, out;
	struct place pl;
	struct ext x;
	enum akind ak = A_OK;
	int ix[MAX_LIVE], nm, fd = pct(85) ? 1 : 2;
	unsigned int w, n = 0, nfd = 0, k;
	uint64_t expect, ebytes = 0, room = VEC_PAGES * PG, fill = 0;
	bool writes;
	char what[300];
	size_t ncopy;
	long ret;

	for (int i = 0; i < nlive; i++)
		nfd += live[i].fd == fd;
	memset(&l, 0, sizeof(l));
	w = rn(100);
	if (w < 10)
		l.count = 0;
	else if (w < 70)
		l.count = 1 + rn(nfd + 2);
	else if (w < 85)
		l.count = rn(4);
	else
		l.count = pct(50) ? 0xffffffff : (uint32_t)rnd();
	w = rn(100);
	if (w < 60)
		l.entry_size = STACKRES_ENTRY_SIZE_VER1;
	else if (w < 75)
		l.entry_size = STACKRES_ENTRY_SIZE_VER1 + 8 * (1 + rn(8));
	else if (w < 80)
		l.entry_size = STACKRES_ENTRY_SIZE_VER1 + 1 + rn(7);
	else if (w < 85)
		l.entry_size = rn(STACKRES_ENTRY_SIZE_VER1);
	else if (w < 88)
		l.entry_size = PG;
	else if (w < 92)
		l.entry_size = PG + 1 + rn(1 << 16);
	else
		l.entry_size = rnd();
	w = rn(100);
	if (w < 50 || !nlive)
		l.next_id = 0;
	else if (w < 75)
		l.next_id = live[rn(nlive)].id;
	else if (w < 85)
		l.next_id = live[rn(nlive)].id + 1;
	else
		l.next_id = pick_id();
	if (pct(3))
		l.flags = 1u << rn(32);
	if (pct(3))
		l.pad = 1u << rn(32);
	if (pct(30)) {		/* answers: ignored */
		l.filled = rnd();
		l.nr_res = rnd();
		l.committed = rnd();
	}
	nm = list_model(fd, l.next_id, ix);
	w = rn(100);
	if (w < 20) {
		l.entries = 0;
	} else {
		ak = w < 85 ? A_OK : w < 90 ? A_TAIL : w < 94 ? A_RO : w < 98 ? A_BAD : A_HIGH;
		n = l.count < (unsigned int)nm ? l.count : (unsigned int)nm;
		/* Room for the entries written, and one more when it fits. */
		ebytes = l.entry_size <= PG ? (uint64_t)(n + 1) * l.entry_size : 0;
		if (ebytes > room)
			ebytes = room;
		if (ak == A_TAIL && n && l.entry_size <= PG)
			l.entries = (uintptr_t)vecbuf + room - (uint64_t)n * l.entry_size +
				    1 + rn(l.entry_size < PG ? l.entry_size : PG);
		else if (ak == A_TAIL)
			l.entries = place_array(&ak, 0);
		else
			l.entries = place_array(&ak, ebytes);
		if (ak == A_OK) {
			fill = (uintptr_t)vecbuf + room - l.entries;
			if (fill > ebytes)
				fill = ebytes;
			for (uint64_t j = 0; j < fill; j++)
				pre[j] = 0xa7 ^ (j & 0xff);
			memcpy((void *)(uintptr_t)l.entries, pre, fill);
		}
	}
	ext_pick(&x, STACKRES_IOC_LIST, sizeof(l), sizeof(l));
	pl = place_struct(ext_psize(&x));
	ext_view(&x, &kv, &l);
	/* What the module writes: min(count, live ones from next_id) entries. */
	n = 0;
	if (kv.entries)
		n = kv.count < (unsigned int)nm ? kv.count : (unsigned int)nm;
	writes = n && !(ak == A_OK && kv.entries == l.entries);
	expect = ext_expect(&x, &pl);
	if (expect) {
		if (expect & BIT(EFAULT))
			guard_hit(&pl);
	} else if (kv.flags || kv.pad) {
		expect = BIT(EINVAL);
	} else if (kv.entries && kv.entry_size < STACKRES_ENTRY_SIZE_VER1) {
		expect = BIT(EINVAL);
	} else if (kv.entries && kv.entry_size > PG) {
		expect = BIT(E2BIG);
	} else if (kv.entries && !is64 && !is_compat && kv.entries >> 32) {
		expect = BIT(EFAULT);
	} else if (writes || pl.cls == P_RO) {
		/* Entries into memory that cannot take them, or the answer. */
		expect = BIT(EFAULT);
	} else {
		expect = BIT(E_OK);
	}
	snprintf(what, sizeof(what), "fd %d ptr %s %#llx size %zu (%s) entries %s %#llx "
		 "count %u entry_size %u next_id %u flags %#x pad %#x", fd,
		 kind_name[pl.kind], (unsigned long long)pl.addr, x.usize, sz_name[x.cls],
		 kv.entries ? akind_name[ak] : "none", (unsigned long long)kv.entries,
		 kv.count, kv.entry_size, kv.next_id, kv.flags, kv.pad);
	stage_struct(OP_LIST, &x, &pl, &l, ubuf);
	if (!issue(idx, OP_LIST, fd == 1 ? stackres_fd : fd2, &x, &pl, expect, what, &ret))
		return false;
	if (ret)
		return true;
	maps_dirty = false;	/* changes no memory */
	ncopy = x.usize < sizeof(out) ? x.usize : sizeof(out);
	memset(&out, 0, sizeof(out));
	get_struct(&pl, &out, ncopy);
	if (!check_list_totals(idx, &out, fd, what))
		return false;
	kv.filled = n;
	kv.next_id = kv.entries && (unsigned int)nm > n ? live[ix[n]].id : 0;
	kv.nr_res = out.nr_res;
	kv.committed = out.committed;
	if (memcmp(&out, &kv, ncopy))
		FAIL("call %ld LIST (%s): filled %u next_id %u, expected %u %u (%d live from "
		     "next_id)", idx, what, out.filled, out.next_id, kv.filled, kv.next_id, nm);
	if (kv.entries) {
		const unsigned char *p = (const unsigned char *)(uintptr_t)kv.entries;
		uint64_t sum = 0;

		for (k = 0; k < n; k++) {
			struct stackres_entry g;

			memcpy(&g, p + (uint64_t)k * kv.entry_size, sizeof(g));
			list_entries_checked++;
			if (!check_entry(idx, &g, &live[ix[k]], what))
				return false;
			sum += g.committed;
			for (uint64_t j = sizeof(g); j < kv.entry_size; j++)
				if (p[(uint64_t)k * kv.entry_size + j])
					FAIL("call %ld LIST (%s): entry %u byte %llu not zeroed",
					     idx, what, k, (unsigned long long)j);
		}
		/* Beyond the entries written: as it was. */
		for (uint64_t j = (uint64_t)n * kv.entry_size; j < fill; j++)
			if (p[j] != pre[j])
				FAIL("call %ld LIST (%s): byte %llu after %u entries written", idx,
				     what, (unsigned long long)(j - (uint64_t)n * kv.entry_size),
				     n);
		if (n == (unsigned int)nm && nm == (int)out.nr_res && sum != out.committed)
			FAIL("call %ld LIST (%s): committed %#llx, the entries' sum %#llx", idx,
			     what, (unsigned long long)out.committed, (unsigned long long)sum);
	}
	if (pct(10))
		return list_walk(idx, fd);
	return true;
}

/* ------------------------------------------------------------------ */
/* Unknown ioctl numbers and sizes                                      */

static bool generic_cmd(unsigned int cmd)
{
	unsigned int type = _IOC_TYPE(cmd);

	/* fs/ioctl.c handles these for every file before the driver does. */
	return type == 0 || type == 'T' || type == 'X' || type == 'f' ||
	       type == 0x94 || type == 0x15;
}

/*
 * The requests the module knows: those with a size-extensible struct by
 * type, number and direction (any size), the two others exactly.
 */
static const unsigned int known_ext[] = {
	STACKRES_IOC_REGISTER, STACKRES_IOC_TRIM, STACKRES_IOC_QUERY, STACKRES_IOC_ARENA,
	STACKRES_IOC_FEATURES, STACKRES_IOC_TRIM_VEC, STACKRES_IOC_LIST,
};

static const unsigned int known_fixed[] = {
	STACKRES_IOC_UNREGISTER, STACKRES_IOC_RECORD_SIZE,
};

static bool known_cmd(unsigned int cmd)
{
	unsigned int j;

	for (j = 0; j < sizeof(known_fixed) / sizeof(known_fixed[0]); j++)
		if (cmd == known_fixed[j])
			return true;
	for (j = 0; j < sizeof(known_ext) / sizeof(known_ext[0]); j++)
		if (_IOC_TYPE(cmd) == _IOC_TYPE(known_ext[j]) &&
		    _IOC_NR(cmd) == _IOC_NR(known_ext[j]) &&
		    _IOC_DIR(cmd) == _IOC_DIR(known_ext[j]))
			return true;
	return false;
}

static bool fuzz_unknown(long idx)
{
	const unsigned int next = sizeof(known_ext) / sizeof(known_ext[0]);
	struct place pl = place_struct(8);
	unsigned int cmd, k, n;
	char what[100];
	uint64_t arg;
	long ret;
	int err;

	do {
		k = pct(30) ? known_fixed[rn(2)] : known_ext[rn(next)];
		switch (rn(5)) {
		case 0:	/* a fixed-size request with another size */
			k = known_fixed[rn(2)];
			do {
				n = pct(50) ? rn(256) : rn(1 << 14);
			} while (n == _IOC_SIZE(k));
			cmd = (k & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT)) | n << _IOC_SIZESHIFT;
			break;
		case 1:	/* another direction (for any size) */
			cmd = (k & ~(_IOC_DIRMASK << _IOC_DIRSHIFT)) |
			      (unsigned int)rn(4) << _IOC_DIRSHIFT;
			if (pct(50))
				cmd = (cmd & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT)) |
				      (unsigned int)rn(1 << 14) << _IOC_SIZESHIFT;
			break;
		case 2:	/* our magic, another number */
			cmd = _IOC(rn(4), STACKRES_IOC_MAGIC, rn(256), rn(1 << 14));
			break;
		case 3:
			cmd = rn(4) ? (uint32_t)rnd() : (uint32_t)boundary();
			break;
		default:	/* off by one */
			cmd = k + (pct(50) ? 1 : -1);
			break;
		}
		/* Never a request the module knows (ARENA would map memory). */
	} while (generic_cmd(cmd) || known_cmd(cmd));
	arg = pct(70) ? pl.addr : boundary();
	snprintf(what, sizeof(what), "cmd %#x arg %#llx", cmd, (unsigned long long)arg);
	maps_before(idx);
	ret = do_ioctl(stackres_fd, cmd, arg, &err);
	return check_outcome(idx, OP_UNKNOWN, ret, err, BIT(ENOTTY), what);
}

/* ------------------------------------------------------------------ */
/* read(): records are whole, and plausible user values                 */

static uint32_t rec_size = STACKRES_RECORD_SIZE_VER0;	/* the first file's, by the model */
static uint64_t records_seen[2];			/* version 0, version 1 */

/*
 * Records are plausible: types, ids, our tid, addresses in the reservation
 * they name.  Version 1 records also carry the reservation's user_data,
 * an arena's slot index (STACKRES_RECORD_SLOT), the origin of the access
 * (the fuzzer itself touches memory in user mode, and its guard hits all
 * come from the kernel: a struct pointer or read() buffer in a guard; it
 * never executes there) and zero reserved.
 */
static bool check_records(long idx, const unsigned char *buf, int n, size_t rsz)
{
	int j;

	for (j = 0; j < n; j++) {
		struct stackres_record rec = { 0 }, *e = &rec;
		bool bad, v1 = rsz == sizeof(rec);
		int i = -1;

		memcpy(&rec, buf + j * rsz, rsz);
		records_seen[v1]++;
		if (e->type == STACKRES_EV_LOST) {
			bad = e->id || e->tid || e->addr || !e->committed || e->err ||
			      e->user_data || e->slot || e->origin || e->flags || e->reserved;
		} else {
			bad = e->type < STACKRES_EV_GROW || e->type > STACKRES_EV_FAILED ||
			      !e->id || (pid_t)e->tid != mytid || e->addr >= task_size ||
			      e->committed >= task_size ||
			      (e->type != STACKRES_EV_FAILED && e->err) ||
			      (e->type == STACKRES_EV_FAILED && (!e->err || e->err > 4095));
			if (!bad) {
				i = find_res_id(e->id);

				/* A live reservation: the address lies in it. */
				if (i >= 0 && (e->addr < live[i].start ||
					       e->addr >= live[i].end ||
					       e->committed > live[i].end - live[i].start))
					bad = true;
				/* An arena: only OVERFLOW, in a slot's guard. */
				if (i >= 0 && live[i].slot &&
				    (e->type != STACKRES_EV_OVERFLOW ||
				     e->committed != live[i].slot - guard_of(&live[i]) ||
				     (e->addr - live[i].start) % live[i].slot >=
				     guard_of(&live[i])))
					bad = true;
			}
			if (!bad && v1) {
				bad = e->reserved || (e->flags & ~STACKRES_RECORD_SLOT) ||
				      (!(e->flags & STACKRES_RECORD_SLOT) && e->slot) ||
				      (e->origin != STACKRES_ORIGIN_USER &&
				       e->origin != STACKRES_ORIGIN_KERNEL) ||
				      (e->type == STACKRES_EV_OVERFLOW &&
				       e->origin != STACKRES_ORIGIN_KERNEL);
				if (!bad && i >= 0)
					bad = e->user_data != live[i].user_data ||
					      !(e->flags & STACKRES_RECORD_SLOT) != !live[i].slot ||
					      (live[i].slot &&
					       e->slot != (e->addr - live[i].start) / live[i].slot);
			}
		}
		if (bad)
			FAIL("call %ld read: implausible record (%zu bytes) type %u id %u tid %u "
			     "err %u addr %#llx committed %#llx user_data %#llx slot %llu "
			     "origin %u flags %#x reserved %#llx (model: %s, user_data %#llx)",
			     idx, rsz, e->type, e->id, e->tid, e->err,
			     (unsigned long long)e->addr, (unsigned long long)e->committed,
			     (unsigned long long)e->user_data, (unsigned long long)e->slot,
			     e->origin, e->flags, (unsigned long long)e->reserved,
			     i < 0 ? "not live" : live[i].slot ? "arena" : "reservation",
			     i < 0 ? 0ULL : (unsigned long long)live[i].user_data);
	}
	return true;
}

/* Where access_ok() ends: TASK_SIZE_MAX of the kernel (also for ia32 tasks). */
static uint64_t uaccess_limit(void)
{
	return is_compat ? 0x7ffffffff000ULL : task_size;
}

static bool fuzz_read(long idx)
{
	static unsigned char buf[512 * STACKRES_RECORD_SIZE_VER1];
	struct pollfd pfd = { .fd = stackres_fd, .events = POLLIN };
	const size_t rsz = rec_size;
	struct place pl = place_struct(rsz);
	bool avail, own = pct(40), in_res;
	uint64_t expect, addr;
	size_t count;
	char what[100];
	long ret;
	int err;

	switch (rn(4)) {
	case 0:
		count = rn(rsz);
		break;
	case 1:
		count = rsz * (1 + rn(8));
		break;
	case 2:
		count = rn(4096);
		break;
	default:
		count = pct(50) ? sizeof(buf) : (size_t)boundary();
		break;
	}
	if (poll(&pfd, 1, 0) < 0)
		FAIL("call %ld poll: %s", idx, strerror(errno));
	avail = pfd.revents & POLLIN;
	addr = own ? (uintptr_t)buf : pl.addr;
	if (own && count > sizeof(buf))
		count = sizeof(buf);
	/* Into a reservation or slot: one record, so nothing lands beyond its end. */
	in_res = pl.kind == K_RES || pl.kind == K_SLOT;
	if (!own && in_res && count >= rsz)
		count = rsz;
	if (count < rsz)
		expect = BIT(EINVAL);
	else if (!avail)
		expect = BIT(EAGAIN);
	else if (!own && pl.cls != P_OK)
		expect = BIT(EFAULT);
	else
		expect = BIT(E_OK);
	/* More than fits before the next unwritable page: EFAULT or a part. */
	if (expect == BIT(E_OK) && !own && !in_res) {
		uint64_t room = (uintptr_t)pa + (pl.kind == K_ACROSS ? 7 : 2) * PG - pl.addr;

		if (pl.kind == K_ACROSS)
			room += PG;
		if (count > room)
			expect |= BIT(EFAULT);
	}
	/*
	 * read(2) checks access_ok(buf, count) before the driver sees the
	 * call: a range past the top of the address space is EFAULT, and
	 * nothing is copied (no guard hit).  Then rw_verify_area(): a count
	 * that is negative as the kernel's ssize_t (an i386 kernel's is 32
	 * bits wide) is EINVAL.
	 */
	if (addr + count < addr || addr + count > uaccess_limit())
		expect = BIT(EFAULT);
	else if (!is64 && !is_compat && count > 0x7fffffff)
		expect = BIT(EINVAL);
	else if (!own && avail && expect == BIT(EFAULT))
		guard_hit(&pl);
	/* The copy out grows the reservation it lands in. */
	if (!own && avail && pl.kind == K_RES && count >= rsz) {
		model_touch(&live[pl.res], addr);
		maps_dirty = true;
	}
	snprintf(what, sizeof(what), "buf %s %#llx count %#zx avail %d record size %zu",
		 own ? "own" : kind_name[pl.kind], (unsigned long long)addr, count, avail, rsz);
	maps_before(idx);
	ret = read(stackres_fd, (void *)(uintptr_t)addr, count);
	err = ret < 0 ? errno : 0;
	if (!check_outcome(idx, OP_READ, ret, err, expect, what))
		return false;
	if (ret < 0)
		return true;
	maps_dirty = !own;
	if (!ret || ret % rsz || (size_t)ret > count)
		FAIL("call %ld read: %ld bytes for count %zu (record size %zu)", idx, ret,
		     count, rsz);
	if (own || pl.kind == K_OK || pl.kind == K_ACROSS || in_res) {
		static unsigned char copy[sizeof(buf)];
		size_t n = ret / rsz;

		if (n > sizeof(copy) / rsz)
			n = sizeof(copy) / rsz;
		memcpy(copy, (void *)(uintptr_t)addr, n * rsz);
		return check_records(idx, copy, n, rsz);
	}
	return true;
}

/*
 * RECORD_SIZE: 32 or 64 bytes per record from now on (EINVAL else), for
 * the records already queued too.  A __u32 that the module only reads.
 */
static bool fuzz_record_size(long idx)
{
	struct place pl = place_struct(sizeof(uint32_t));
	uint32_t v;
	uint64_t expect;
	char what[100];
	long ret;
	int err;

	if (pct(85))
		v = pct(50) ? STACKRES_RECORD_SIZE_VER0 : STACKRES_RECORD_SIZE_VER1;
	else
		v = (uint32_t[]){ 0, 1, 24, 31, 33, 40, 48, 63, 65, 96, 128, 4096,
				  (uint32_t)rnd() }[rn(13)];
	if (pl.cls == P_BAD) {
		expect = BIT(EFAULT);
		guard_hit(&pl);
	} else if (v != STACKRES_RECORD_SIZE_VER0 && v != STACKRES_RECORD_SIZE_VER1) {
		expect = BIT(EINVAL);
	} else {
		expect = BIT(E_OK);
	}
	snprintf(what, sizeof(what), "ptr %s %#llx size %u", kind_name[pl.kind],
		 (unsigned long long)pl.addr, v);
	kind_counts[pl.kind]++;
	put_struct(&pl, &v, sizeof(v));
	maps_before(idx);
	ret = do_ioctl(stackres_fd, STACKRES_IOC_RECORD_SIZE, pl.addr, &err);
	if (!check_outcome(idx, OP_RECSIZE, ret, err, expect, what))
		return false;
	if (!ret) {
		maps_dirty = false;	/* changes no memory */
		rec_size = v;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Direct memory use: growth from user mode.                            */

static bool fuzz_touch(long idx)
{
	int i = pick_fd1_res(true, false);
	struct res *r;
	uint64_t a;

	if (i < 0)
		return true;
	r = &live[i];
	if (r->slot) {
		touch_slot(r);
		counts[OP_TOUCH][0]++;
		if (pct(50))
			return query_addr_now(idx, i, any_slot(r) + rn(r->slot), "after a store");
		return true;
	}
	a = r->guard_top + rn(r->bottom - r->guard_top);
	*(volatile char *)(uintptr_t)a = 1;
	model_touch(r, a);
	counts[OP_TOUCH][0]++;
	maps_dirty = true;
	if (pct(50))
		return query_id_now(idx, i, "after growth");
	return true;
}

/* The last close ends the file's reservations. */
static bool fuzz_reopen(long idx)
{
	struct stackres_query q = { .flags = STACKRES_QUERY_ADDR };
	struct res gone[MAX_LIVE];
	uint64_t probe = 0;
	int i, err, ngone = 0;

	for (i = nlive - 1; i >= 0; i--) {
		if (live[i].fd == 1) {
			probe = live[i].start;
			gone[ngone++] = live[i];
			drop_res(i);
		}
	}
	close(stackres_fd);
	rec_size = STACKRES_RECORD_SIZE_VER0;	/* a new file's */
	/* The arenas ended with the file; their guard markers did not. */
	for (i = 0; i < ngone; i++)
		if (gone[i].slot && !unguard(idx, &gone[i]))
			return false;
	stackres_fd = open(DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (stackres_fd < 0)
		FAIL("call %ld: reopen " DEV ": %s", idx, strerror(errno));
	counts[OP_REOPEN][0]++;
	if (probe) {
		q.addr = probe;
		if (do_ioctl(stackres_fd, STACKRES_IOC_QUERY, (uintptr_t)&q, &err) != -1 ||
		    err != ENOENT)
			FAIL("call %ld: a reservation outlived its file (%s)", idx, ename(err));
	}
	return true;
}

/*
 * Two reservations of a second file: EEXIST across files, ENOENT by id,
 * FOREIGN through STACKRES_QUERY_ANY.
 */
static bool setup_fd2(void)
{
	struct stackres_reg r = { .len = 4 * PG, .guard = PG, .commit = PG };
	int k;

	fd2 = open(DEV, O_RDWR | O_CLOEXEC);
	if (fd2 < 0)
		return false;
	for (k = 0; k < 2; k++) {
		r.start = (uintptr_t)arena + (ARENA_PAGES - FD2_PAGES + 4 * k) * PG;
		r.user_data = 0xf2f2f2f200000000ULL + k;
		if (ioctl(fd2, STACKRES_IOC_REGISTER, &r))
			return false;
		live[nlive++] = (struct res) {
			.fd = 2, .id = r.id, .start = r.start, .end = r.start + r.len,
			.guard_top = r.start + r.guard, .chunk = STACKRES_DEFAULT_CHUNK,
			.bottom = r.start + r.len - r.commit, .peak = r.commit,
			.user_data = r.user_data, .below = true,
		};
	}
	return true;
}

static bool run_stackres(void)
{
	long idx;
	bool ok = true;

	for (idx = 0; idx < ncalls && ok; idx++) {
		unsigned int w = rn(100);

		cur_idx = idx;
		if (w < 20 && nlive >= MAX_LIVE - 2)
			ok = fuzz_unregister(idx);
		else if (w < 20)
			ok = fuzz_register(idx);
		else if (w < 29)
			ok = fuzz_arena(idx);
		else if (w < 39)
			ok = fuzz_unregister(idx);
		else if (w < 52)
			ok = fuzz_trim(idx);
		else if (w < 58)
			ok = fuzz_trim_vec(idx);
		else if (w < 73)
			ok = fuzz_query(idx);
		else if (w < 78)
			ok = fuzz_list(idx);
		else if (w < 80)
			ok = fuzz_features(idx);
		else if (w < 83)
			ok = fuzz_record_size(idx);
		else if (w < 89)
			ok = fuzz_unknown(idx);
		else if (w < 94)
			ok = fuzz_read(idx);
		else if (w < 99)
			ok = fuzz_touch(idx);
		else
			ok = fuzz_reopen(idx);
	}
	/* Whatever is still pending. */
	if (ok && !maps_dirty && !maps_after_failure(idx, true)) {
		snprintf(failmsg, sizeof(failmsg),
			 "calls %ld..%ld: /proc/self/maps changed by a failed call",
			 maps_since, idx - 1);
		ok = false;
	}
	/* The model and the module agree on every live reservation at the end. */
	for (int i = 0; ok && i < nlive; i++)
		if (live[i].fd == 1)
			ok = query_id_now(idx, i, "at the end");
	return ok;
}

/* ------------------------------------------------------------------ */
/* exit_free                                                            */

enum ekind { EK_NULL, EK_RW, EK_SHARED, EK_RO, EK_NONE, EK_HOLE, EK_TEXT, EK_VDSO,
	     EK_KERNEL, EK_TOP, EK_BEYOND, EK_NONCANON, EK_LOW, EK_RES_UNCOMMITTED,
	     EK_RES_GUARD, EK_RES_COMMITTED, EK_NR };
static const char *const ekind_name[EK_NR] = {
	"NULL", "rw", "shared", "read-only", "none", "hole", "text", "vdso",
	"kernel", "top", "beyond-top", "non-canonical", "low",
	"uncommitted-res", "guard", "committed-res",
};

/* Shared between this task and the exit_free task (CLONE_VM). */
struct ef_state {
	volatile long idx;		/* call in flight */
	volatile int phase;		/* EF_* */
	long from, to;
	/* the call in flight */
	uint64_t addr, val, expect;
	uint32_t flags;
	int status, width, kind;
	bool window;			/* sentinel window around addr */
};
enum { EF_RUNNING, EF_CALLING, EF_DONE, EF_FAILED };

static struct ef_state ef;
static uint64_t ef_kinds[EK_NR], ef_spawns, ef_uncommitted_ok;
static struct stackres_reg ef_res;
static bool ef_have_res;

static void ef_generate(void)
{
	uint64_t base = (uintptr_t)pa;
	unsigned int w = rn(100);
	uint32_t f;
	int kind;

	if (w < 45)
		f = rn(8);
	else if (w < 80)
		f = (uint32_t[]){ 0, EXIT_FREE_U32, EXIT_FREE_U32 | EXIT_FREE_WAKE,
				  EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE }[rn(4)];
	else if (w < 95)
		f = rn(8) | 1u << (3 + rn(29));
	else
		f = rnd();
	ef.flags = f;
	ef.width = (f & EXIT_FREE_U32) || !is64 ? 4 : 8;
	ef.val = rnd();
	if (!is64)
		ef.val &= 0xffffffffULL;
	if ((ef.val & 0xff) == SENTINEL)
		ef.val ^= 1;
	ef.status = rnd();
	ef.window = false;

	/*
	 * A call that may succeed costs a task: keep them to a few percent so
	 * that the run spends its time on the error paths.
	 */
	do {
		if (pct(8))
			kind = (int[]){ EK_RW, EK_SHARED, EK_TOP, EK_RES_COMMITTED,
					EK_RES_UNCOMMITTED, EK_NULL }[rn(6)];
		else
			kind = rn(EK_NR);
	} while (((kind == EK_RES_UNCOMMITTED || kind == EK_RES_GUARD ||
		   kind == EK_RES_COMMITTED) && !ef_have_res) ||
		 (kind == EK_NONCANON && !is64) ||
		 ((kind == EK_RW || kind == EK_SHARED || kind == EK_TOP ||
		   kind == EK_RES_COMMITTED || kind == EK_NULL) && pct(70)));
	ef.kind = kind;

	switch (kind) {
	case EK_NULL:
		ef.addr = 0;
		break;
	case EK_RW:
		ef.addr = base + 32 + rn(2 * PG - 64);
		break;
	case EK_SHARED:
		ef.addr = base + 7 * PG + 32 + rn(PG - 64);
		break;
	case EK_RO:
		ef.addr = base + 3 * PG + rn(PG);
		break;
	case EK_NONE:
		ef.addr = base + 2 * PG + rn(PG);
		break;
	case EK_HOLE:
		ef.addr = base + 5 * PG + rn(PG);
		break;
	case EK_TEXT:
		ef.addr = text_page + rn(PG);
		break;
	case EK_VDSO:
		ef.addr = vdso_page + rn(PG);
		break;
	case EK_KERNEL:
		ef.addr = kernel_addr() + rn(64);
		break;
	case EK_TOP:
		if (top_page)
			ef.addr = task_size - 16 - rn(PG - 48);
		else
			ef.addr = task_size + rn(64);
		break;
	case EK_BEYOND:
		ef.addr = task_size + rn(PG);
		break;
	case EK_NONCANON:
		ef.addr = noncanonical() + rn(64);
		break;
	case EK_LOW:
		ef.addr = 1 + rn(mmap_min - 1);
		break;
	case EK_RES_UNCOMMITTED:	/* above the guard, below the commit */
		ef.addr = ef_res.start + 4 * PG + rn(4 * PG);
		break;
	case EK_RES_GUARD:
		ef.addr = ef_res.start + rn(4 * PG);
		break;
	default:			/* EK_RES_COMMITTED */
		ef.addr = ef_res.start + ef_res.len - PG + 32 + rn(PG - 64);
		break;
	}
	if (!is64)
		ef.addr &= 0xffffffffULL;	/* what the pointer can hold */
	/* Alignment: mostly right for the width, sometimes not. */
	if (kind != EK_NULL && pct(75))
		ef.addr &= ~(uint64_t)(ef.width - 1);

	if (f & ~(EXIT_FREE_U32 | EXIT_FREE_WAKE | EXIT_FREE_PRIVATE))
		ef.expect = BIT(EINVAL);
	else if ((f & EXIT_FREE_WAKE) && !(f & EXIT_FREE_U32))
		ef.expect = BIT(EINVAL);
	else if ((f & EXIT_FREE_PRIVATE) && !(f & EXIT_FREE_WAKE))
		ef.expect = BIT(EINVAL);
	else if (!ef.addr)
		ef.expect = f ? BIT(EINVAL) : BIT(E_OK);
	else if (ef.addr & (ef.width - 1))
		ef.expect = BIT(EINVAL);
	else if (kind == EK_RW || kind == EK_SHARED || kind == EK_RES_COMMITTED ||
		 (kind == EK_TOP && top_page))
		ef.expect = BIT(E_OK);
	else if (kind == EK_RES_UNCOMMITTED)
		ef.expect = BIT(EFAULT) | BIT(E_OK);	/* exit_free(2) BUGS */
	else
		ef.expect = BIT(EFAULT);

	if (kind == EK_RW || kind == EK_SHARED || kind == EK_RES_COMMITTED ||
	    (kind == EK_TOP && top_page)) {
		memset((void *)(uintptr_t)(ef.addr - 16), SENTINEL, 32);
		ef.window = true;
	}
}

/* The exit_free task: calls from ef.from on, until one succeeds. */
static int ef_task(void *arg)
{
	long i, ret;

	(void)arg;
	maps_take();
	for (i = ef.from; i < ef.to; i++) {
		ef_generate();
		ef.idx = i;
		ef.phase = EF_CALLING;
		ret = raw_syscall(__NR_exit_free, ef.status, (long)ef.addr, (long)ef.val,
				  ef.flags);
		ef.phase = EF_RUNNING;
		/* Still here: it failed, or it returned success (a bug). */
		if (ret >= 0 || -ret >= 64 || !(ef.expect & BIT(-ret))) {
			char want[64];

			eset_str(ef.expect, want, sizeof(want));
			snprintf(failmsg, sizeof(failmsg),
				 "call %ld exit_free(%d, %#llx (%s), %#llx, %#x) returned %ld, "
				 "expected %s", i, ef.status, (unsigned long long)ef.addr,
				 ekind_name[ef.kind], (unsigned long long)ef.val, ef.flags,
				 ret, want);
			ef.phase = EF_FAILED;
			return 1;
		}
		counts[OP_EXIT_FREE][-ret]++;
		ef_kinds[ef.kind]++;
		if (ef.window) {
			unsigned char *p = (unsigned char *)(uintptr_t)(ef.addr - 16);
			int j;

			for (j = 0; j < 32; j++)
				if (p[j] != SENTINEL) {
					snprintf(failmsg, sizeof(failmsg),
						 "call %ld: failed exit_free wrote memory", i);
					ef.phase = EF_FAILED;
					return 1;
				}
		}
		if (!maps_after_failure(i, false)) {
			snprintf(failmsg, sizeof(failmsg),
				 "calls %ld..%ld: /proc/self/maps changed by a failed exit_free",
				 maps_since, i);
			ef.phase = EF_FAILED;
			return 1;
		}
	}
	ef.phase = EF_DONE;
	return 0;
}

static bool ef_check_store(void)
{
	unsigned char *p = (unsigned char *)(uintptr_t)(ef.addr - 16);
	unsigned char want[32];
	uint64_t v = ef.val;
	int j;

	if (!ef.window)
		return true;
	memset(want, SENTINEL, sizeof(want));
	for (j = 0; j < ef.width; j++, v >>= 8)
		want[16 + j] = v & 0xff;
	if (memcmp(p, want, sizeof(want)))
		FAIL("call %ld exit_free(%#llx (%s), %#llx, %#x): store of width %d wrong: "
		     "%02x%02x%02x%02x%02x%02x%02x%02x|%02x%02x%02x%02x%02x%02x%02x%02x|%02x",
		     ef.idx, (unsigned long long)ef.addr, ekind_name[ef.kind],
		     (unsigned long long)ef.val, ef.flags, ef.width,
		     p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15],
		     p[16], p[17], p[18], p[19], p[20], p[21], p[22], p[23], p[24]);
	return true;
}

static bool run_exit_free(void)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	int status, ctid;
	pid_t pid;

	ef.from = 0;
	ef.to = ncalls;
	for (;;) {
		ef.phase = EF_RUNNING;
		ctid = 1;
		ef_spawns++;
		pid = clone(ef_task, stack + sizeof(stack),
			    CLONE_VM | CLONE_CHILD_CLEARTID | SIGCHLD, NULL, NULL, NULL,
			    &ctid);
		if (pid < 0)
			FAIL("clone: %s", strerror(errno));
		if (waitpid(pid, &status, 0) != pid)
			FAIL("waitpid: %s", strerror(errno));
		if (ef.phase == EF_DONE)
			return true;
		if (ef.phase == EF_FAILED)
			return false;
		if (ef.phase != EF_CALLING)
			FAIL("exit_free task ended in phase %d, status %#x", ef.phase, status);
		/* The call at ef.idx ended the task: it must have been allowed to. */
		if (!(ef.expect & BIT(E_OK)))
			FAIL("call %ld exit_free(%d, %#llx (%s), %#llx, %#x) succeeded, "
			     "expected an error", ef.idx, ef.status,
			     (unsigned long long)ef.addr, ekind_name[ef.kind],
			     (unsigned long long)ef.val, ef.flags);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != (ef.status & 0xff))
			FAIL("call %ld exit_free: wait status %#x, expected exit %d", ef.idx,
			     status, ef.status & 0xff);
		if (ctid != 0)
			FAIL("call %ld exit_free: clear_child_tid not cleared", ef.idx);
		if (!ef_check_store())
			return false;
		counts[OP_EXIT_FREE][0]++;
		ef_kinds[ef.kind]++;
		ef_uncommitted_ok += ef.kind == EK_RES_UNCOMMITTED;
		/* A store into the uncommitted part grew it: put it back. */
		if (ef.kind == EK_RES_UNCOMMITTED && ef_have_res) {
			struct stackres_trim t = { .id = ef_res.id,
						   .sp = ef_res.start + ef_res.len,
						   .keep = PG };

			if (ioctl(ef_fd, STACKRES_IOC_TRIM, &t))
				FAIL("TRIM after exit_free growth: %s", strerror(errno));
		}
		ef.from = ef.idx + 1;
		if (ef.from >= ef.to)
			return true;
	}
}

static bool have_exit_free(void)
{
	return syscall(__NR_exit_free, 1, NULL, 0, 0x80000000u) == -1 && errno == EINVAL;
}

/* ------------------------------------------------------------------ */

static void dump_maps(void)
{
	char *line, *save = NULL;

	if (raw_read_file("/proc/self/maps", maps_now, MAPS_SIZE) <= 0)
		return;
	ksft_print_msg("/proc/self/maps now (pointer arena %p, REGISTER arena %p, "
		       "free range %p):\n", pa, arena, hole);
	for (line = strtok_r(maps_now, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		ksft_print_msg("  %s\n", line);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-s SEED] [-n CALLS] [-m MAPS_EVERY] [-v]\n"
		"  env: FUZZ_SEED, FUZZ_CALLS, FUZZ_MAPS_EVERY\n", argv0);
	exit(KSFT_FAIL);
}

static void setup_abi(void)
{
	struct utsname u;
	char buf[64];

	PG = sysconf(_SC_PAGESIZE);
	is64 = sizeof(long) == 8;
	is_compat = !is64 && !uname(&u) && !strcmp(u.machine, "x86_64");
	if (is64)
		task_size = 0x7ffffffff000ULL;	/* 4-level paging */
	else if (is_compat)
		task_size = 0xffffe000ULL;	/* IA32_PAGE_OFFSET */
	else
		task_size = 0xc0000000ULL;	/* VMSPLIT_3G */
	mmap_min = 4096;
	if (raw_read_file("/proc/sys/vm/mmap_min_addr", buf, sizeof(buf)) > 0)
		mmap_min = strtoull(buf, NULL, 0);
	if (mmap_min < PG)
		mmap_min = PG;
	mytid = syscall(SYS_gettid);
}

int main(int argc, char **argv)
{
	static char outbuf[8192];
	const char *env;
	bool have_dev, ok;
	double t0;
	int opt;

	setvbuf(stdout, outbuf, _IOLBF, sizeof(outbuf));
	seed = 0x5eedf00d;
	env = getenv("FUZZ_SEED");
	if (env)
		seed = strtoull(env, NULL, 0);
	env = getenv("FUZZ_CALLS");
	if (env)
		ncalls = strtol(env, NULL, 0);
	env = getenv("FUZZ_MAPS_EVERY");
	if (env)
		maps_every = strtoul(env, NULL, 0);
	while ((opt = getopt(argc, argv, "s:n:m:v")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			ncalls = strtol(optarg, NULL, 0);
			break;
		case 'm':
			maps_every = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (!maps_every)
		maps_every = 1;

	setup_abi();
	ksft_print_header();
	ksft_set_plan(2);
	ksft_print_msg("seed %#llx, %ld calls per part, maps compared every %u failed "
		       "call(s); rerun: %s -s %#llx -n %ld\n", (unsigned long long)seed,
		       ncalls, maps_every, argv[0], (unsigned long long)seed, ncalls);
	ksft_print_msg("ABI %s, task size %#llx, mmap_min_addr %#llx\n",
		       is64 ? "x86_64" : is_compat ? "ia32 compat" : "i386",
		       (unsigned long long)task_size, (unsigned long long)mmap_min);
	if (!setup_regions())
		ksft_exit_fail_msg("setting up the regions: %s\n", strerror(errno));

	/* Part 1: /dev/stackres ioctls. */
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	stackres_fd = open(DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	have_dev = stackres_fd >= 0;
	rng = seed;
	if (!have_dev) {
		ksft_test_result_skip("stackres_ioctls: " DEV " unavailable (%s): "
				      "stackres.ko not loaded\n", strerror(errno));
	} else if (!setup_fd2()) {
		ksft_test_result_fail("stackres_ioctls: setting up a second file: %s\n",
				      strerror(errno));
	} else {
		t0 = now_s();
		ok = run_stackres();
		t0 = now_s() - t0;
		ksft_print_msg("stackres ioctls: outcomes per request\n");
		for (opt = OP_REG; opt <= OP_REOPEN; opt++)
			print_counts(opt);
		ksft_print_msg("  of which on a live arena (%" PRIu64 " made in caller memory, "
			       "%" PRIu64 " with STACKRES_MAP):\n", arenas_made[0], arenas_made[1]);
		for (opt = OP_UNREG; opt <= OP_QUERY; opt++)
			print_counts_of(acounts, opt, "  ");
		ksft_print_msg("    QUERY answers naming a slot %" PRIu64 ", TRIMs checked byte "
			       "by byte %" PRIu64 "\n", slot_answers, probes);
		ksft_print_msg("  struct sizes passed (ABI version 1 rules):\n");
		for (opt = OP_REG; opt <= OP_FEATURES; opt++) {
			char line[300] = "";

			for (int c = 0; c < SZ_NR; c++)
				if (sz_counts[opt][c])
					snprintf(line + strlen(line), sizeof(line) - strlen(line),
						 " %s %" PRIu64, sz_name[c], sz_counts[opt][c]);
			if (line[0])
				ksft_print_msg("    %-11s%s\n", op_name[opt], line);
		}
		ksft_print_msg("  QUERY answers with GUARD %" PRIu64 ", FOREIGN %" PRIu64
			       ", resident checked %" PRIu64 "; TRIM by address %" PRIu64
			       ", committed written back checked %" PRIu64 "\n", guard_answers,
			       foreign_answers, resident_checks, trim_addr_calls,
			       trim_committed_checks);
		ksft_print_msg("  TRIM_VEC entries trimmed %" PRIu64 ", stopped part-way %"
			       PRIu64 ", at a non-zero tail %" PRIu64 "; LIST entries checked %"
			       PRIu64 ", walks %" PRIu64 "; aligned maps %" PRIu64 "\n",
			       vec_entries_trimmed, vec_done_mid, vec_e2big_entries,
			       list_entries_checked, list_walks, aligned_maps);
		ksft_print_msg("  records read: version 0 %" PRIu64 ", version 1 %" PRIu64
			       "; bytes after a struct checked %" PRIu64 " times\n",
			       records_seen[0], records_seen[1], sent_checks);
		ksft_print_msg("  struct pointers:");
		for (opt = 0; opt < K_NR; opt++)
			printf(" %s %" PRIu64, kind_name[opt], kind_counts[opt]);
		printf("\n");
		ksft_print_msg("  /proc/self/maps comparisons after failed calls: %" PRIu64
			       "; guard marker checks: %" PRIu64 "%s; %.1f s\n", maps_checks,
			       guard_checks, pagemap_fd < 0 ? " (no pagemap)" : "", t0);
		if (!ok) {
			ksft_print_msg("FAIL %s (seed %#llx)\n", failmsg,
				       (unsigned long long)seed);
			dump_maps();
		}
		ksft_test_result(ok, "stackres_ioctls (%ld calls)\n", ncalls);
	}

	/* Part 2: exit_free. */
	rng = seed ^ 0xef;
	maps_checks = 0;
	maps_dirty = true;
	if (!have_exit_free()) {
		ksft_test_result_skip("exit_free: not available (%s)\n", strerror(errno));
	} else {
		if (have_dev) {
			ef_fd = open(DEV, O_RDWR | O_CLOEXEC);
			memset(&ef_res, 0, sizeof(ef_res));
			ef_res.len = 16 * PG;
			ef_res.guard = 4 * PG;
			ef_res.commit = 4 * PG;
			ef_res.flags = STACKRES_MAP;
			ef_have_res = ef_fd >= 0 &&
				      !ioctl(ef_fd, STACKRES_IOC_REGISTER, &ef_res);
		}
		t0 = now_s();
		ok = run_exit_free();
		t0 = now_s() - t0;
		ksft_print_msg("exit_free: outcomes\n");
		print_counts(OP_EXIT_FREE);
		ksft_print_msg("  addresses:");
		for (opt = 0; opt < EK_NR; opt++)
			printf(" %s %" PRIu64, ekind_name[opt], ef_kinds[opt]);
		printf("\n");
		ksft_print_msg("  tasks %" PRIu64 ", maps comparisons %" PRIu64
			       "%s (stores into its uncommitted part: %" PRIu64 " succeeded, "
			       "%" PRIu64 " EFAULT); %.1f s\n", ef_spawns, maps_checks,
			       ef_have_res ? ", with a stackres reservation" : "",
			       ef_uncommitted_ok, ef_kinds[EK_RES_UNCOMMITTED] - ef_uncommitted_ok,
			       t0);
		if (!ok)
			ksft_print_msg("FAIL %s (seed %#llx)\n", failmsg,
				       (unsigned long long)seed);
		ksft_test_result(ok, "exit_free (%ld calls)\n", ncalls);
	}
	ksft_finished();
}
