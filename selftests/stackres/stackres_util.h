/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the /dev/stackres selftests.
 *
 * Every test opens /dev/stackres through SR_OPEN_OR_SKIP(), so that a guest
 * without the module reports SKIP with the reason instead of a pass.  Helpers
 * return -errno so that tests can assert the exact error in one line.
 */
#ifndef STACKRES_UTIL_H
#define STACKRES_UTIL_H

#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/stackres.h>

#include "../kselftest_harness.h"

#define SR_DEV "/dev/stackres"

/*
 * The ABI is only usable by ia32 tasks if both compilers lay the structures
 * out identically; these numbers are the same for -m32 and -m64 builds.
 * They are the version 0 layout: the programs including this file are built
 * against uapi-v0/, and these fail the build of one that picks up the newer
 * header by mistake.  abi_v1_test (SR_ABI_V1), built against the version 1
 * header, checks the version 1 layout itself.
 */
#ifndef SR_ABI_V1
_Static_assert(sizeof(struct stackres_reg) == 56, "stackres_reg size");
_Static_assert(offsetof(struct stackres_reg, start) == 0, "reg.start");
_Static_assert(offsetof(struct stackres_reg, len) == 8, "reg.len");
_Static_assert(offsetof(struct stackres_reg, guard) == 16, "reg.guard");
_Static_assert(offsetof(struct stackres_reg, commit) == 24, "reg.commit");
_Static_assert(offsetof(struct stackres_reg, chunk) == 32, "reg.chunk");
_Static_assert(offsetof(struct stackres_reg, watermark) == 40, "reg.watermark");
_Static_assert(offsetof(struct stackres_reg, flags) == 48, "reg.flags");
_Static_assert(offsetof(struct stackres_reg, id) == 52, "reg.id");

_Static_assert(sizeof(struct stackres_trim) == 24, "stackres_trim size");
_Static_assert(offsetof(struct stackres_trim, id) == 0, "trim.id");
_Static_assert(offsetof(struct stackres_trim, pad) == 4, "trim.pad");
_Static_assert(offsetof(struct stackres_trim, sp) == 8, "trim.sp");
_Static_assert(offsetof(struct stackres_trim, keep) == 16, "trim.keep");

_Static_assert(sizeof(struct stackres_query) == 72, "stackres_query size");
_Static_assert(offsetof(struct stackres_query, id) == 0, "query.id");
_Static_assert(offsetof(struct stackres_query, flags) == 4, "query.flags");
_Static_assert(offsetof(struct stackres_query, addr) == 8, "query.addr");
_Static_assert(offsetof(struct stackres_query, start) == 16, "query.start");
_Static_assert(offsetof(struct stackres_query, len) == 24, "query.len");
_Static_assert(offsetof(struct stackres_query, guard) == 32, "query.guard");
_Static_assert(offsetof(struct stackres_query, committed) == 40, "query.committed");
_Static_assert(offsetof(struct stackres_query, peak) == 48, "query.peak");
_Static_assert(offsetof(struct stackres_query, grow_faults) == 56, "query.grow_faults");
_Static_assert(offsetof(struct stackres_query, overflows) == 64, "query.overflows");

_Static_assert(sizeof(struct stackres_event) == 32, "stackres_event size");
_Static_assert(offsetof(struct stackres_event, type) == 0, "event.type");
_Static_assert(offsetof(struct stackres_event, id) == 4, "event.id");
_Static_assert(offsetof(struct stackres_event, tid) == 8, "event.tid");
_Static_assert(offsetof(struct stackres_event, err) == 12, "event.err");
_Static_assert(offsetof(struct stackres_event, addr) == 16, "event.addr");
_Static_assert(offsetof(struct stackres_event, committed) == 24, "event.committed");

/* The ioctl numbers carry the structure size, so they match across ABIs. */
_Static_assert(_IOC_SIZE(STACKRES_IOC_REGISTER) == sizeof(struct stackres_reg), "reg ioc");
_Static_assert(_IOC_SIZE(STACKRES_IOC_UNREGISTER) == sizeof(__u32), "unreg ioc");
_Static_assert(_IOC_SIZE(STACKRES_IOC_TRIM) == sizeof(struct stackres_trim), "trim ioc");
_Static_assert(_IOC_SIZE(STACKRES_IOC_QUERY) == sizeof(struct stackres_query), "query ioc");
#endif /* !SR_ABI_V1 */

#define PG	((uint64_t)sr_page_size())
#define KIB	1024ULL
#define MIB	(1024ULL * 1024ULL)

static inline size_t sr_page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = sysconf(_SC_PAGESIZE);
	return ps;
}

static inline pid_t sr_gettid(void)
{
	return syscall(SYS_gettid);
}

static inline bool sr_is_64bit_task(void)
{
	return sizeof(long) == 8;
}

/* A 32-bit task on a 64-bit kernel (ia32 compat). */
static inline bool sr_is_compat_task(void)
{
	struct utsname u;

	if (sizeof(long) == 8 || uname(&u))
		return false;
	return !strcmp(u.machine, "x86_64");
}

#define SR_OPEN_OR_SKIP(_fd, _flags) do {					\
	(_fd) = open(SR_DEV, O_RDWR | O_CLOEXEC | (_flags));			\
	if ((_fd) < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO))	\
		SKIP(return, SR_DEV " unavailable (%s): stackres.ko not loaded",	\
		     strerror(errno));						\
	ASSERT_LE(0, (_fd)) TH_LOG("open " SR_DEV ": %s", strerror(errno));	\
} while (0)

static inline int sr_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int sr_register(int fd, struct stackres_reg *r)
{
	return sr_ioctl(fd, STACKRES_IOC_REGISTER, r);
}

static inline int sr_unregister(int fd, __u32 id)
{
	return sr_ioctl(fd, STACKRES_IOC_UNREGISTER, &id);
}

static inline int sr_trim(int fd, __u32 id, uint64_t sp, uint64_t keep)
{
	struct stackres_trim t = { .id = id, .sp = sp, .keep = keep };

	return sr_ioctl(fd, STACKRES_IOC_TRIM, &t);
}

static inline int sr_query(int fd, __u32 id, struct stackres_query *q)
{
	memset(q, 0, sizeof(*q));
	q->id = id;
	return sr_ioctl(fd, STACKRES_IOC_QUERY, q);
}

static inline int sr_query_addr(int fd, uint64_t addr, struct stackres_query *q)
{
	memset(q, 0, sizeof(*q));
	q->flags = STACKRES_QUERY_ADDR;
	q->addr = addr;
	return sr_ioctl(fd, STACKRES_IOC_QUERY, q);
}

static inline uint64_t sr_u64(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static inline void *sr_ptr(uint64_t a)
{
	return (void *)(uintptr_t)a;
}

/*
 * Private anonymous memory of @len bytes with an unmapped page on either
 * side, so that nothing merges with it and QUERY just outside finds nothing.
 */
static inline char *sr_map_isolated(size_t len, int prot)
{
	char *p = mmap(NULL, len + 2 * PG, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, PG);
	munmap(p + PG + len, PG);
	p += PG;
	if (prot != PROT_NONE && mprotect(p, len, prot)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

/* A page-aligned address range that is free right now. */
static inline char *sr_free_range(size_t len)
{
	char *p = sr_map_isolated(len, PROT_NONE);

	if (p)
		munmap(p, len);
	return p;
}

/* Fill *r for [p, p+len) without registering it (@fd is unused). */
static inline void sr_fill_reg(int fd, struct stackres_reg *r, void *p, uint64_t len,
			       uint64_t guard, uint64_t commit, uint64_t chunk,
			       uint64_t watermark, __u32 flags)
{
	memset(r, 0, sizeof(*r));
	r->start = sr_u64(p);
	r->len = len;
	r->guard = guard;
	r->commit = commit;
	r->chunk = chunk;
	r->watermark = watermark;
	r->flags = flags;
}

/* Register [p, p+len) as a reservation; returns -errno. */
static inline int sr_reg_range(int fd, struct stackres_reg *r, void *p, uint64_t len,
			       uint64_t guard, uint64_t commit, uint64_t chunk,
			       uint64_t watermark, __u32 flags)
{
	sr_fill_reg(fd, r, p, len, guard, commit, chunk, watermark, flags);
	return sr_register(fd, r);
}

/* Resident pages in [p, p+len) according to mincore(). */
static inline long sr_resident(const void *p, size_t len)
{
	static unsigned char vec[(64 * 1024 * 1024) / 4096];
	size_t n = len / PG, i;
	long cnt = 0;

	if (n > sizeof(vec) || mincore((void *)p, len, vec))
		return -1;
	for (i = 0; i < n; i++)
		cnt += vec[i] & 1;
	return cnt;
}

/*
 * Read a /proc file into a static buffer with raw syscalls: stdio would
 * allocate, and an allocation can change /proc/self/maps between two
 * snapshots that are meant to be compared.
 */
static inline ssize_t sr_read_file(const char *path, char *buf, size_t size)
{
	ssize_t n, off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while ((size_t)off < size - 1) {
		n = read(fd, buf + off, size - 1 - off);
		if (n < 0) {
			off = -errno;
			break;
		}
		if (n == 0)
			break;
		off += n;
	}
	close(fd);
	if (off >= 0)
		buf[off] = 0;
	return off;
}

#define SR_MAPS_SIZE	(256 * 1024)
static char sr_maps_a[SR_MAPS_SIZE], sr_maps_b[SR_MAPS_SIZE];

/* Snapshot /proc/self/maps into sr_maps_a (which == 0) or sr_maps_b. */
static inline int sr_snap_maps(int which)
{
	return sr_read_file("/proc/self/maps", which ? sr_maps_b : sr_maps_a,
			    SR_MAPS_SIZE) > 0 ? 0 : -1;
}

static inline bool sr_maps_same(void)
{
	return !strcmp(sr_maps_a, sr_maps_b);
}

/*
 * Permissions ("rw-p", "---p", ...) and bounds of the VMA containing @addr,
 * from /proc/self/maps.  Returns false if @addr is not mapped.
 */
static inline bool sr_vma_at(uint64_t addr, char perms[5], uint64_t *vs, uint64_t *ve)
{
	static char buf[SR_MAPS_SIZE];
	char *line, *save = NULL;

	if (sr_read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		return false;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long s, e;
		char p[5];

		if (sscanf(line, "%llx-%llx %4s", &s, &e, p) != 3)
			continue;
		if (addr >= s && addr < e) {
			memcpy(perms, p, 5);
			if (vs)
				*vs = s;
			if (ve)
				*ve = e;
			return true;
		}
	}
	return false;
}

/* Sum of the smaps "Rss:" lines, in KiB, of the VMAs that lie in [start, end). */
static inline long sr_smaps_rss_kb(uint64_t start, uint64_t end)
{
	static char buf[2 * 1024 * 1024];
	char *line, *save = NULL;
	bool in = false;
	long sum = 0;

	if (sr_read_file("/proc/self/smaps", buf, sizeof(buf)) <= 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long s, e;
		long kb;

		if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') &&
		    line[strspn(line, "0123456789abcdef")] == '-') {
			in = s >= start && e <= end;
			continue;
		}
		if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			sum += kb;
	}
	return sum;
}

/* Number of VMAs in this process. */
static inline int sr_map_count(void)
{
	static char buf[SR_MAPS_SIZE];
	int n = 0;
	char *c;

	if (sr_read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		return -1;
	for (c = buf; *c; c++)
		n += *c == '\n';
	return n;
}

/*
 * The growth rule of stackres(4), Reservations (and
 * Documentation/userspace-api/stackres.rst, The model), as a model the
 * tests compare QUERY with:
 * an access below the committed bottom and above the guard moves the bottom
 * to min(page_down(addr), bottom - chunk), never below start + guard.
 */
struct sr_model {
	uint64_t start, top, guard, chunk, bottom, peak, steps;
};

static inline void sr_model_init(struct sr_model *m, const struct stackres_reg *r)
{
	m->start = r->start;
	m->top = r->start + r->len;
	m->guard = r->guard;
	m->chunk = r->chunk ? r->chunk : STACKRES_DEFAULT_CHUNK;
	m->bottom = m->top - r->commit;
	m->peak = r->commit;
	m->steps = 0;
}

static inline uint64_t sr_model_committed(const struct sr_model *m)
{
	return m->top - m->bottom;
}

/* Returns true if the access at @a is a growth step. */
static inline bool sr_model_touch(struct sr_model *m, uint64_t a)
{
	uint64_t floor = m->start + m->guard, nb;

	if (a >= m->bottom || a < floor)
		return false;
	nb = a & ~(PG - 1);
	if (m->bottom - floor < m->chunk)
		nb = floor;
	else if (m->bottom - m->chunk < nb)
		nb = m->bottom - m->chunk;
	m->bottom = nb;
	m->steps++;
	if (sr_model_committed(m) > m->peak)
		m->peak = sr_model_committed(m);
	return true;
}

/* TRIM(sp, keep): pages entirely below sp - keep go back to uncommitted. */
static inline void sr_model_trim(struct sr_model *m, uint64_t sp, uint64_t keep)
{
	uint64_t x = sp - keep;

	if (keep > sp - m->start)
		return;
	x &= ~(PG - 1);
	if (x > m->bottom)
		m->bottom = x;
}

/*
 * Signal capture: the handler records what it saw and jumps back to the
 * point armed by SR_TRY(); a fault outside SR_TRY() ends the test process.
 * Per thread, so worker threads can take their own guard hits.
 */
struct sr_sig {
	int signo, code, count;
	uint64_t addr;
	/* QUERY by si_addr from inside the handler (sr_handler_fd >= 0). */
	int qret;
	struct stackres_query q;
	/* read() of the fd from inside the handler (sr_handler_read). */
	ssize_t rret;
	struct stackres_event ev;
};

static __thread struct sr_sig sr_sig;
static __thread sigjmp_buf sr_jmp;
static __thread volatile sig_atomic_t sr_jmp_armed;
static int sr_handler_fd = -1;
static bool sr_handler_read;

static inline void sr_fault_handler(int sig, siginfo_t *si, void *uc)
{
	int e = errno;

	sr_sig.signo = sig;
	sr_sig.code = si->si_code;
	sr_sig.addr = sr_u64(si->si_addr);
	sr_sig.count++;
	if (sr_handler_fd >= 0) {
		sr_sig.qret = sr_query_addr(sr_handler_fd, sr_sig.addr, &sr_sig.q);
		if (sr_handler_read) {
			sr_sig.rret = read(sr_handler_fd, &sr_sig.ev, sizeof(sr_sig.ev));
			if (sr_sig.rret < 0)
				sr_sig.rret = -errno;
		}
	}
	errno = e;
	if (sr_jmp_armed) {
		sr_jmp_armed = 0;
		siglongjmp(sr_jmp, 1);
	}
	/* Not expected here: report and die with a distinct status. */
	{
		char msg[] = "# unexpected signal 00 code 00 at 0x0000000000000000\n";
		uint64_t a = sr_sig.addr;
		int i;

		msg[20] = '0' + sig / 10;
		msg[21] = '0' + sig % 10;
		msg[28] = '0' + (si->si_code / 10) % 10;
		msg[29] = '0' + si->si_code % 10;
		for (i = 0; i < 16; i++, a >>= 4)
			msg[51 - i] = "0123456789abcdef"[a & 15];
		if (write(2, msg, sizeof(msg) - 1) < 0)
			errno = e;
	}
	_exit(90 + (sig == SIGBUS));
}

/* A per-thread alternate signal stack, as a runtime's fault handler has. */
static inline int sr_altstack(void)
{
	stack_t ss = { .ss_size = 64 * 1024 };

	ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ss.ss_sp == MAP_FAILED)
		return -1;
	return sigaltstack(&ss, NULL);
}

static inline int sr_install_fault_handler(void)
{
	struct sigaction sa = { .sa_sigaction = sr_fault_handler,
				.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	if (sr_altstack())
		return -1;
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		return -1;
	return 0;
}

/*
 * Run one access; evaluates to true if it raised a signal (then sr_sig
 * says which).  The access must be a single volatile load or store.
 */
#define SR_TRY(access) ({						\
	bool __faulted;							\
	memset(&sr_sig, 0, sizeof(sr_sig));				\
	if (sigsetjmp(sr_jmp, 1) == 0) {				\
		sr_jmp_armed = 1;					\
		access;							\
		sr_jmp_armed = 0;					\
		__faulted = false;					\
	} else {							\
		__faulted = true;					\
	}								\
	__faulted;							\
})

#define SR_WRITE(a, v)	(*(volatile char *)sr_ptr(a) = (v))
#define SR_READ(a)	((void)*(volatile char *)sr_ptr(a))

/* Read whatever records are queued (O_NONBLOCK fd); returns count or -errno. */
static inline int sr_read_events(int fd, struct stackres_event *ev, int max)
{
	ssize_t n = read(fd, ev, max * sizeof(*ev));

	if (n < 0)
		return -errno;
	if (n % sizeof(*ev))
		return -EPROTO;
	return n / sizeof(*ev);
}

static inline uint8_t sr_pattern(uint64_t a)
{
	return (uint8_t)((a >> 12) * 131 + 7);
}

/* Pass an fd over a unix socket (SCM_RIGHTS): 0 or -errno. */
static inline int sr_send_fd(int sock, int fd)
{
	char data = 'F';
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

/* Receive an fd sent by sr_send_fd(): the fd or -errno. */
static inline int sr_recv_fd(int sock)
{
	char data;
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -errno;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Write "v\n" to a sysctl or module parameter file: 0 or -errno. */
static inline int sr_write_long(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), n, ret;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld\n", v);
	ret = write(fd, buf, n) == n ? 0 : -errno;
	close(fd);
	return ret;
}

#endif /* STACKRES_UTIL_H */
