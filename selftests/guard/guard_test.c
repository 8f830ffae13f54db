// SPDX-License-Identifier: GPL-2.0
/*
 * MADV_GUARD_INSTALL / MADV_GUARD_REMOVE (guard pages without a VMA of their
 * own), with the semantics of Linux 6.13: anonymous private memory only;
 * any access to a guard is SIGSEGV/SEGV_MAPERR at the exact address from
 * user mode and EFAULT from the kernel; installing throws populated pages
 * away; guards survive MADV_DONTNEED and mprotect(), are copied by fork()
 * and move with mremap(); munmap() clears them; EINVAL on mlock()ed,
 * shared and file mappings.  Every test SKIPs when the kernel does not
 * know the advice at all.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64	/* /proc/self/mem offsets above 2 GiB on -m32 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE	103
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC		0x0001U
#endif

/* /proc/pid/pagemap: a guard marker (since 6.15 in mainline; ours too). */
#define PM_GUARD_REGION		(1ULL << 58)
#define PM_SWAP			(1ULL << 62)
#define PM_PRESENT		(1ULL << 63)

#define NPAGES 10

static long pg;

/* ------------------------------------------------------------------------ */
/* Touching memory that may fault, and reporting how it faulted. */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed;
static volatile int fault_sig, fault_code;
static void *volatile fault_addr;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!fault_armed) {
		/* Not ours: die of it as we would have without a handler. */
		signal(sig, SIG_DFL);
		return;
	}
	fault_sig = sig;
	fault_code = si->si_code;
	fault_addr = si->si_addr;
	fault_armed = 0;
	siglongjmp(fault_jmp, 1);
}

static void install_fault_handler(void)
{
	struct sigaction sa = {
		.sa_sigaction = fault_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Read (or write, if @write) one byte at @p.  Returns 0 if the access
 * completed, else the signal number, with fault_code/fault_addr set.
 */
static int touch(char *p, bool write, char val, char *out)
{
	fault_sig = 0;
	fault_code = 0;
	fault_addr = NULL;
	if (sigsetjmp(fault_jmp, 1))
		return fault_sig;
	fault_armed = 1;
	if (write) {
		*(volatile char *)p = val;
	} else {
		char c = *(volatile char *)p;

		if (out)
			*out = c;
	}
	fault_armed = 0;
	return 0;
}

static bool faults_at(char *p, bool write)
{
	return touch(p, write, 1, NULL) == SIGSEGV &&
	       fault_code == SEGV_MAPERR && fault_addr == (void *)p;
}

static bool guarded(char *p)
{
	/* A read and a write, at the first, a middle and the last byte. */
	return faults_at(p, false) && faults_at(p + pg - 1, true) &&
	       faults_at(p + pg / 2, true) && faults_at(p + 123, false);
}

static bool accessible(char *p)
{
	char c;

	return touch(p, false, 0, &c) == 0 && touch(p, true, c, NULL) == 0;
}

static bool page_is(char *p, char val)
{
	long i;

	for (i = 0; i < pg; i++)
		if (p[i] != val)
			return false;
	return true;
}

static char *map_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int guard(char *p, long pages)
{
	return madvise(p, pages * pg, MADV_GUARD_INSTALL);
}

static int unguard(char *p, long pages)
{
	return madvise(p, pages * pg, MADV_GUARD_REMOVE);
}

/* Number of lines of /proc/self/maps (VMAs) that overlap [p, p + len). */
static int vmas_in(char *p, size_t len)
{
	unsigned long lo = (unsigned long)p, hi = lo + len, s, e;
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < hi && e > lo)
			n++;
	fclose(f);
	return n;
}

static int pagemap_entry(char *p, uint64_t *ent)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (off_t)((uintptr_t)p / pg) * sizeof(*ent);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, ent, sizeof(*ent), off);
	close(fd);
	return n == sizeof(*ent) ? 0 : -1;
}

/* ------------------------------------------------------------------------ */

FIXTURE(guard) {
	char *p;	/* NPAGES pages of private anonymous memory */
};

FIXTURE_SETUP(guard)
{
	char *probe;
	int ret;

	pg = sysconf(_SC_PAGESIZE);
	install_fault_handler();

	probe = map_anon(pg);
	ASSERT_TRUE(probe != NULL);
	ret = madvise(probe, pg, MADV_GUARD_INSTALL);
	munmap(probe, pg);
	if (ret && errno == EINVAL)
		SKIP(return, "kernel lacks MADV_GUARD_INSTALL (EINVAL on a plain anonymous mapping)");
	ASSERT_EQ(0, ret);

	self->p = map_anon(NPAGES * pg);
	ASSERT_TRUE(self->p != NULL);
}

FIXTURE_TEARDOWN(guard)
{
	if (self->p)
		munmap(self->p, NPAGES * pg);
}

/* Reads and writes fault at the exact address, with SEGV_MAPERR. */
TEST_F(guard, access_faults_at_exact_address)
{
	char *p = self->p;
	int i;

	ASSERT_EQ(0, guard(p + 3 * pg, 3));
	for (i = 0; i < NPAGES; i++) {
		char *q = p + i * pg;

		if (i >= 3 && i < 6) {
			EXPECT_EQ(SIGSEGV, touch(q + 77, false, 0, NULL));
			EXPECT_EQ(SEGV_MAPERR, fault_code);
			EXPECT_EQ((uintptr_t)(q + 77), (uintptr_t)fault_addr);
			EXPECT_EQ(SIGSEGV, touch(q + pg - 1, true, 5, NULL));
			EXPECT_EQ(SEGV_MAPERR, fault_code);
			EXPECT_EQ((uintptr_t)(q + pg - 1), (uintptr_t)fault_addr);
			EXPECT_TRUE(guarded(q));
		} else {
			EXPECT_TRUE(accessible(q));
		}
	}
	/* A guard is no VMA: the mapping stays one VMA. */
	EXPECT_EQ(1, vmas_in(p, NPAGES * pg));
	/* Installing again is a no-op. */
	EXPECT_EQ(0, guard(p + 3 * pg, 3));
	EXPECT_TRUE(guarded(p + 4 * pg));
}

/* A guard on memory with data throws the data away. */
TEST_F(guard, install_zaps_populated_pages)
{
	char *p = self->p;
	int i;

	for (i = 0; i < NPAGES; i++)
		memset(p + i * pg, 'a' + i, pg);
	ASSERT_EQ(0, guard(p + 2 * pg, 2));
	EXPECT_TRUE(guarded(p + 2 * pg));
	EXPECT_TRUE(guarded(p + 3 * pg));
	ASSERT_EQ(0, unguard(p, NPAGES));
	for (i = 0; i < NPAGES; i++) {
		if (i == 2 || i == 3) {
			EXPECT_TRUE(page_is(p + i * pg, 0));
		} else {
			EXPECT_TRUE(page_is(p + i * pg, 'a' + i));
		}
	}
}

/* After REMOVE the range demand-faults again: zero-filled, writable. */
TEST_F(guard, remove_restores_demand_faulting)
{
	char *p = self->p;
	int i;

	ASSERT_EQ(0, guard(p, NPAGES));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_TRUE(guarded(p + i * pg));
	}
	ASSERT_EQ(0, unguard(p + 4 * pg, 2));
	for (i = 0; i < NPAGES; i++) {
		char *q = p + i * pg;

		if (i == 4 || i == 5) {
			EXPECT_TRUE(page_is(q, 0));
			memset(q, 'x', pg);
			EXPECT_TRUE(page_is(q, 'x'));
		} else {
			EXPECT_TRUE(guarded(q));
		}
	}
	/* REMOVE of pages with data and no guard keeps the data. */
	ASSERT_EQ(0, unguard(p, NPAGES));
	EXPECT_TRUE(page_is(p + 4 * pg, 'x'));
	EXPECT_TRUE(page_is(p + 5 * pg, 'x'));
	EXPECT_TRUE(page_is(p, 0));
}

/* MADV_DONTNEED and MADV_FREE empty the range but keep its guards. */
TEST_F(guard, survives_dontneed_and_free)
{
	char *p = self->p;
	int i;

	memset(p, 'z', NPAGES * pg);
	ASSERT_EQ(0, guard(p + pg, 1));
	ASSERT_EQ(0, guard(p + 8 * pg, 1));
	ASSERT_EQ(0, madvise(p, NPAGES * pg, MADV_DONTNEED));
	EXPECT_TRUE(guarded(p + pg));
	EXPECT_TRUE(guarded(p + 8 * pg));
	for (i = 0; i < NPAGES; i++) {
		if (i != 1 && i != 8) {
			EXPECT_TRUE(page_is(p + i * pg, 0));
		}
	}

	memset(p + 2 * pg, 'y', pg);
	ASSERT_EQ(0, madvise(p, NPAGES * pg, MADV_FREE));
	EXPECT_TRUE(guarded(p + pg));
	EXPECT_TRUE(guarded(p + 8 * pg));
}

/* mprotect() there and back leaves guards in place; so does PROT_NONE. */
TEST_F(guard, survives_mprotect)
{
	char *p = self->p;

	ASSERT_EQ(0, guard(p + 5 * pg, 1));
	ASSERT_EQ(0, mprotect(p, NPAGES * pg, PROT_READ));
	EXPECT_TRUE(faults_at(p + 5 * pg, false));
	ASSERT_EQ(0, mprotect(p, NPAGES * pg, PROT_NONE));
	ASSERT_EQ(0, mprotect(p, NPAGES * pg, PROT_READ | PROT_WRITE));
	EXPECT_TRUE(guarded(p + 5 * pg));
	EXPECT_TRUE(accessible(p + 4 * pg));
	EXPECT_TRUE(accessible(p + 6 * pg));
}

/* Guards on a read-only mapping work, and reads of it fault MAPERR. */
TEST_F(guard, read_only_mapping)
{
	char *p = self->p;

	ASSERT_EQ(0, mprotect(p, NPAGES * pg, PROT_READ));
	ASSERT_EQ(0, guard(p + 2 * pg, 1));
	EXPECT_TRUE(faults_at(p + 2 * pg + 9, false));
	EXPECT_EQ(0, touch(p + 3 * pg, false, 0, NULL));
}

static int child_checks(char *p)
{
	/* Exit codes name the first check that failed. */
	if (!guarded(p + 2 * pg))
		return 10;
	if (!guarded(p + 7 * pg))
		return 11;
	if (!accessible(p + 3 * pg))
		return 12;
	/* The child's guards are its own: removing them here ... */
	if (unguard(p, NPAGES))
		return 13;
	if (!page_is(p + 2 * pg, 0))
		return 14;
	return 0;
}

static int fork_and_check(struct __test_metadata *_metadata, char *p)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(child_checks(p));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	EXPECT_TRUE(WIFEXITED(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* fork() copies guards, also on a range that was never touched. */
TEST_F(guard, fork_copies_untouched)
{
	char *p = self->p;

	ASSERT_EQ(0, guard(p + 2 * pg, 1));
	ASSERT_EQ(0, guard(p + 7 * pg, 1));
	EXPECT_EQ(0, fork_and_check(_metadata, p));
	/* ... leaves the parent's in place. */
	EXPECT_TRUE(guarded(p + 2 * pg));
	EXPECT_TRUE(guarded(p + 7 * pg));
}

TEST_F(guard, fork_copies_populated)
{
	char *p = self->p;

	memset(p, 'q', NPAGES * pg);
	ASSERT_EQ(0, guard(p + 2 * pg, 1));
	ASSERT_EQ(0, guard(p + 7 * pg, 1));
	EXPECT_EQ(0, fork_and_check(_metadata, p));
	EXPECT_TRUE(guarded(p + 2 * pg));
	EXPECT_TRUE(guarded(p + 7 * pg));
	EXPECT_TRUE(page_is(p + 3 * pg, 'q'));
}

/* munmap() clears guards: a new mapping at the same address is usable. */
TEST_F(guard, munmap_clears)
{
	char *p = self->p, *q;
	int i;

	ASSERT_EQ(0, guard(p, NPAGES));
	ASSERT_EQ(0, munmap(p, NPAGES * pg));
	q = mmap(p, NPAGES * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ((uintptr_t)p, (uintptr_t)q);
	for (i = 0; i < NPAGES; i++) {
		EXPECT_TRUE(accessible(p + i * pg));
		EXPECT_TRUE(page_is(p + i * pg, 0));
	}

	/* So does mapping over it with MAP_FIXED. */
	ASSERT_EQ(0, guard(p + pg, 2));
	q = mmap(p, NPAGES * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ((uintptr_t)p, (uintptr_t)q);
	EXPECT_TRUE(accessible(p + pg));
	EXPECT_TRUE(accessible(p + 2 * pg));
}

/* mremap() moves guards with the range. */
TEST_F(guard, mremap_moves_guards)
{
	char *p = self->p, *dst, *q;

	memset(p, 'm', NPAGES * pg);
	ASSERT_EQ(0, guard(p + 4 * pg, 1));
	dst = mmap(NULL, NPAGES * pg, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(dst != MAP_FAILED);
	q = mremap(p, NPAGES * pg, NPAGES * pg,
		   MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ((uintptr_t)dst, (uintptr_t)q);
	self->p = q;
	EXPECT_TRUE(guarded(q + 4 * pg));
	EXPECT_TRUE(page_is(q + 3 * pg, 'm'));
	EXPECT_TRUE(page_is(q + 5 * pg, 'm'));
}

/* The kernel's own accesses to a guard fail with EFAULT. */
TEST_F(guard, kernel_access_efault)
{
	char *p = self->p, *g = p + 6 * pg, buf[16];
	struct iovec local, remote;
	int fds[2], fd;

	ASSERT_EQ(0, guard(g, 1));
	ASSERT_EQ(0, pipe(fds));

	/* copy_to_user: read() into a guard. */
	ASSERT_EQ(10, write(fds[1], "0123456789", 10));
	errno = 0;
	EXPECT_EQ(-1, read(fds[0], g + 100, 10));
	EXPECT_EQ(EFAULT, errno);
	/* The data is still in the pipe for a good buffer. */
	EXPECT_EQ(10, read(fds[0], p + 100, 10));
	EXPECT_EQ(0, memcmp(p + 100, "0123456789", 10));

	/* copy_from_user: write() from a guard. */
	errno = 0;
	EXPECT_EQ(-1, write(fds[1], g, 10));
	EXPECT_EQ(EFAULT, errno);

	/* get_user_pages: process_vm_readv() from and writev into a guard. */
	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = g + 8;
	remote.iov_len = sizeof(buf);
	errno = 0;
	EXPECT_EQ(-1, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);

	/* access_remote_vm: /proc/self/mem gives EIO at a guard. */
	fd = open("/proc/self/mem", O_RDWR);
	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, pread(fd, buf, sizeof(buf), (off_t)(uintptr_t)(g + 8)));
	EXPECT_EQ(EIO, errno);
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, buf, sizeof(buf), (off_t)(uintptr_t)(g + 8)));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ((ssize_t)sizeof(buf),
		  pread(fd, buf, sizeof(buf), (off_t)(uintptr_t)(p + 8)));
	close(fd);

	/* MADV_POPULATE_READ cannot populate a guard. */
	errno = 0;
	EXPECT_EQ(-1, madvise(g, pg, MADV_POPULATE_READ));
	EXPECT_EQ(EFAULT, errno);

	/* The guard is unharmed by all this. */
	EXPECT_TRUE(guarded(g));
	close(fds[0]);
	close(fds[1]);
}

/* mlock()ed ranges: EINVAL to install (it would zap), REMOVE is allowed. */
TEST_F(guard, mlocked_einval)
{
	char *p = self->p;

	ASSERT_EQ(0, guard(p + pg, 1));
	ASSERT_EQ(0, mlock(p + 2 * pg, 4 * pg));
	errno = 0;
	EXPECT_EQ(-1, guard(p + 3 * pg, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(accessible(p + 3 * pg));
	ASSERT_EQ(0, munlock(p + 2 * pg, 4 * pg));

	/* A guard installed before mlock() is removable while locked. */
	ASSERT_EQ(0, mlock(p, pg));
	ASSERT_EQ(0, mlock(p + 2 * pg, pg));
	EXPECT_EQ(0, unguard(p, 3));
	EXPECT_TRUE(accessible(p + pg));
	ASSERT_EQ(0, munlock(p, NPAGES * pg));
}

/* mlock() cannot populate a guard: ENOMEM, the guard stays. */
TEST_F(guard, mlock_over_guard_enomem)
{
	char *p = self->p;

	ASSERT_EQ(0, guard(p + 4 * pg, 1));
	errno = 0;
	EXPECT_EQ(-1, mlock(p, NPAGES * pg));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_TRUE(guarded(p + 4 * pg));
	ASSERT_EQ(0, munlock(p, NPAGES * pg));
}

/* MADV_WIPEONFORK: the child's range is empty, guards included. */
TEST_F(guard, wipeonfork_child_has_no_guards)
{
	char *p = self->p;
	int status;
	pid_t pid;

	memset(p, 'w', NPAGES * pg);
	ASSERT_EQ(0, guard(p + 2 * pg, 1));
	ASSERT_EQ(0, madvise(p, NPAGES * pg, MADV_WIPEONFORK));
	pid = fork();
	if (pid == 0)
		_exit(accessible(p + 2 * pg) && page_is(p + 2 * pg, 0) &&
		      page_is(p + 3 * pg, 0) ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(guarded(p + 2 * pg));
	EXPECT_TRUE(page_is(p + 3 * pg, 'w'));
}

/*
 * Shared anonymous, private file and shared file mappings: EINVAL as in
 * 6.13 (our kernel); 6.15 and later guard them too.  Either way the outcome
 * is exact: EINVAL and the page untouched, or a working, removable guard.
 */
static bool kernel_before_6_15(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return true;
	return major < 6 || (major == 6 && minor < 15);
}

static void check_other_mapping(struct __test_metadata *_metadata,
				char *m, const char *what)
{
	int ret;

	errno = 0;
	ret = guard(m, 1);
	/* Before 6.15 (our 6.12 included) only EINVAL is right. */
	if (kernel_before_6_15()) {
		EXPECT_EQ(-1, ret);
	}
	if (ret) {
		EXPECT_EQ(EINVAL, errno);
		EXPECT_TRUE(accessible(m));
		errno = 0;
		EXPECT_EQ(-1, unguard(m, 1));
		EXPECT_EQ(EINVAL, errno);
		TH_LOG("%s: EINVAL (6.13 semantics)", what);
	} else {
		EXPECT_TRUE(guarded(m));
		EXPECT_TRUE(accessible(m + pg));
		EXPECT_EQ(0, unguard(m, 1));
		EXPECT_TRUE(accessible(m));
		TH_LOG("%s: guarded (6.15+ semantics)", what);
	}
}

TEST_F(guard, shared_and_file_mappings)
{
	char *s, *fp, *fs;
	int fd;

	s = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(s != MAP_FAILED);
	check_other_mapping(_metadata, s, "MAP_SHARED|MAP_ANONYMOUS");
	munmap(s, 4 * pg);

	fd = syscall(__NR_memfd_create, "guard_test", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 4 * pg));
	fp = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_TRUE(fp != MAP_FAILED);
	fs = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(fs != MAP_FAILED);
	check_other_mapping(_metadata, fp, "MAP_PRIVATE file");
	check_other_mapping(_metadata, fs, "MAP_SHARED file");
	munmap(fp, 4 * pg);
	munmap(fs, 4 * pg);
	close(fd);
}

/* Holes in the range: ENOMEM, as for other advice; mapped parts guarded. */
TEST_F(guard, hole_enomem)
{
	char *p = self->p;

	ASSERT_EQ(0, munmap(p + 5 * pg, pg));
	errno = 0;
	EXPECT_EQ(-1, guard(p + 4 * pg, 3));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_TRUE(guarded(p + 4 * pg));
	EXPECT_TRUE(guarded(p + 6 * pg));
	errno = 0;
	EXPECT_EQ(-1, unguard(p + 4 * pg, 3));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_TRUE(accessible(p + 4 * pg));
	EXPECT_TRUE(accessible(p + 6 * pg));
}

/* /proc/self/pagemap shows a guard as PM_GUARD_REGION (bit 58). */
TEST_F(guard, pagemap_bit)
{
	char *p = self->p;
	uint64_t ent;
	int i;

	p[0] = 1;
	ASSERT_EQ(0, guard(p + 2 * pg, 2));
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, pagemap_entry(p + i * pg, &ent));
		if (i == 2 || i == 3) {
			EXPECT_EQ(PM_GUARD_REGION, ent & (PM_GUARD_REGION | PM_PRESENT));
		} else {
			EXPECT_EQ(0, ent & PM_GUARD_REGION);
			EXPECT_EQ(i == 0 ? PM_PRESENT : 0, ent & PM_PRESENT);
		}
	}
	ASSERT_EQ(0, unguard(p + 2 * pg, 2));
	ASSERT_EQ(0, pagemap_entry(p + 2 * pg, &ent));
	EXPECT_EQ(0, ent & PM_GUARD_REGION);
}

/* VmPTE of /proc/self/status, in KiB: the page tables of the process. */
static long vm_pte_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPTE: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Many guards in one mapping stay one VMA: 4096 slots of 64 KiB (256 MiB
 * of address space), each with a guard page at its bottom, each usable
 * right above its guard.
 */
TEST_F(guard, dense_slots_one_vma)
{
	const size_t slot = 64 * 1024, nslots = 4096, len = slot * nslots;
	long pte_before, pte_after;
	char *base;
	size_t i;

	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_TRUE(base != MAP_FAILED);
	pte_before = vm_pte_kib();
	for (i = 0; i < nslots; i++) {
		ASSERT_EQ(0, guard(base + i * slot, 1));
	}
	pte_after = vm_pte_kib();
	EXPECT_EQ(1, vmas_in(base, len));
	/*
	 * The remaining cost is page tables: one 4 KiB PTE table per 2 MiB
	 * (4 MiB on i386 without PAE) of guarded address space, plus at most
	 * a few upper-level tables.
	 */
	TH_LOG("%zu guards in %zu MiB: VmPTE +%ld KiB (%ld bytes per slot)",
	       nslots, len >> 20, pte_after - pte_before,
	       (pte_after - pte_before) * 1024 / (long)nslots);
	EXPECT_LE((long)(len >> 22) * 4, pte_after - pte_before);
	EXPECT_GE((long)(len >> 21) * 4 + 16, pte_after - pte_before);
	for (i = 0; i < nslots; i += 97) {
		char *s = base + i * slot;

		EXPECT_TRUE(faults_at(s + pg - 1, true));
		EXPECT_EQ(0, touch(s + pg, true, 7, NULL));
		EXPECT_EQ(0, touch(s + slot - 1, true, 7, NULL));
	}
	/* One REMOVE over the whole mapping clears them all. */
	ASSERT_EQ(0, madvise(base, len, MADV_GUARD_REMOVE));
	EXPECT_TRUE(accessible(base + (nslots - 1) * slot));
	EXPECT_EQ(0, munmap(base, len));
}

TEST_HARNESS_MAIN
