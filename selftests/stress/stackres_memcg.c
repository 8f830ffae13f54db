// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/stackres under a cgroup memory limit (part of make stress).
 *
 *	stackres_memcg [-t SECONDS] [-m LIMIT_MIB]
 *
 * Rounds of: a child process, moved into a cgroup v2 with memory.max =
 * LIMIT_MIB (default 24), opens /dev/stackres, registers reservations and a
 * dense arena whose stacks together want several times the limit, and lets
 * four threads dive into them (touching pages top-down), now and then trim
 * one, and dive again until it is killed or its time is up.  Under the limit the page
 * faults of growth are charged, and so are page tables and VMA splits.
 *
 * The documented outcomes, and only they, are accepted for each child:
 * it finishes (exit 0), the memcg OOM killer kills it (SIGKILL), or a
 * growth step fails (SIGSEGV with a FAILED record, err ENOMEM, queued
 * before the signal: the child's handler reads it and exits 3).  Anything
 * else fails the run: another signal, a SIGSEGV without that record, a
 * hang (the parent's deadline).  After every child the cgroup's
 * memory.current must fall back to (near) zero: nothing it charged stays
 * behind; at the end the module's reference count is back to where it
 * was, and memory.events must show that the limit was really hit.
 *
 * Prints "memcg: PASS", "memcg: FAIL: why" or "memcg: SKIP: why" (no
 * cgroup v2 memory controller in this kernel).
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/stackres.h>

#define DEV		"/dev/stackres"
#define CG_ROOT		"/sys/fs/cgroup"
#define CG		CG_ROOT "/stackres-memcg"
#define NRES		8
#define RES_LEN		(8u << 20)	/* 8 MiB each: 64 MiB of reservations */
#define NSLOTS		256
#define SLOT		(256u << 10)	/* 64 MiB of dense slots */
#define NTHREADS	4

static long pg;
static int srfd = -1;

/* ---- small file helpers ---- */

static int write_file(const char *path, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int fd, n, ret = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

/* The number after @key in a file of "key value" lines, or -1. */
static long long read_key(const char *path, const char *key)
{
	char buf[4096], *p;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (!*key)
		return strtoll(buf, NULL, 10);
	for (p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, strlen(key)) && p[strlen(key)] == ' ')
			return strtoll(p + strlen(key) + 1, NULL, 10);
	return -1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the child: stacks that want more than the limit ---- */

static atomic_flag handler_busy = ATOMIC_FLAG_INIT;
static volatile sig_atomic_t saw_failed;

/* Async-signal-safe: "what" and a number in hex on stderr. */
static void say(const char *what, unsigned long long v)
{
	char buf[80], *p = buf;
	int i;

	while (*what && p < buf + 40)
		*p++ = *what++;
	*p++ = ' ';
	for (i = 60; i >= 0; i -= 4)
		*p++ = "0123456789abcdef"[(v >> i) & 15];
	*p++ = '\n';
	if (write(2, buf, p - buf) < 0)
		return;
}

/*
 * SIGSEGV: only a failed growth step (a FAILED record, err ENOMEM, queued
 * before the signal) may cause it.  Handlers of several threads take turns:
 * the one that reads a record may not be the one whose fault queued it.
 */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct stackres_event ev[16];
	ssize_t n;
	int i;

	(void)sig;
	(void)uc;
	while (atomic_flag_test_and_set(&handler_busy))
		;
	while ((n = read(srfd, ev, sizeof(ev))) > 0)
		for (i = 0; i < n / (ssize_t)sizeof(ev[0]); i++) {
			if (ev[i].type == STACKRES_EV_FAILED && ev[i].err == ENOMEM)
				saw_failed = 1;
			else
				say("memcg: child: record type/err", (unsigned long long)ev[i].type << 32 | ev[i].err);
		}
	if (saw_failed)
		_exit(3);
	say("memcg: child: SIGSEGV without a FAILED record at", (uintptr_t)si->si_addr);
	say("memcg: child: si_code", (unsigned int)si->si_code);
	{
		struct stackres_query q = { .flags = STACKRES_QUERY_ADDR,
					    .addr = (uintptr_t)si->si_addr };
		char maps[8192];
		int fd;

		say("memcg: child: QUERY", ioctl(srfd, STACKRES_IOC_QUERY, &q) ? errno : 0);
		say("memcg: child: start", q.start);
		say("memcg: child: committed", q.committed);
		say("memcg: child: flags", q.flags);
		fd = open("/proc/self/maps", O_RDONLY);
		n = fd >= 0 ? read(fd, maps, sizeof(maps)) : 0;
		if (n > 0 && write(2, maps, n) < 0)
			n = 0;
	}
	_exit(5);
}

struct dive {
	uintptr_t top[NRES + NSLOTS];
	uintptr_t bottom[NRES + NSLOTS];
	uint32_t id[NRES + NSLOTS];	/* TRIM ids (the arena's for slots) */
	unsigned int n;
	double end;
};

static struct dive d_all;

/*
 * Thread @arg dives into stacks k with k % NTHREADS == @arg only: a TRIM
 * must never race with a dive into the same stack (a runtime trims parked
 * stacks only; trimming a running one may take back what a growing fault
 * just committed, and that fault then ends in SIGSEGV).
 */
static void *diver(void *arg)
{
	unsigned int me = (uintptr_t)arg;
	uint64_t s = (uintptr_t)&s ^ (uint64_t)now() ^ me;
	struct dive *d = &d_all;

	while (now() < d->end) {
		unsigned int k;
		uintptr_t a, low;
		struct stackres_trim t = { 0 };

		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		k = (s >> 33) % (d->n / NTHREADS) * NTHREADS + me;
		low = d->top[k] - ((s >> 17) % ((d->top[k] - d->bottom[k]) / pg)) * pg;
		for (a = d->top[k] - 1; a >= low && a > d->bottom[k]; a -= pg)
			*(volatile char *)a = 1;
		if ((s >> 60) & 7)
			continue;	/* mostly keep what was touched: pressure */
		t.id = d->id[k];
		t.sp = d->top[k] - pg;
		ioctl(srfd, STACKRES_IOC_TRIM, &t);	/* may race with a dive: fine */
	}
	return NULL;
}

static int child(double seconds)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	stack_t ss = { .ss_size = 64 * 1024 };
	struct dive *d = &d_all;
	pthread_t th[NTHREADS];
	struct stackres_arena ar = { .slot = SLOT, .nslots = NSLOTS, .flags = STACKRES_MAP };
	unsigned int i;

	ss.ss_sp = malloc(ss.ss_size);
	if (!ss.ss_sp || sigaltstack(&ss, NULL))
		return 6;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	srfd = open(DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (srfd < 0)
		return 6;
	for (i = 0; i < NRES; i++) {
		struct stackres_reg r = { .len = RES_LEN, .guard = pg, .commit = 16 * pg,
					  .flags = STACKRES_MAP };

		if (ioctl(srfd, STACKRES_IOC_REGISTER, &r))
			return errno == ENOMEM ? 0 : 7;
		d->top[d->n] = r.start + r.len;
		d->bottom[d->n] = r.start + r.guard;
		d->id[d->n++] = r.id;
	}
	ar.guard = pg;
	if (ioctl(srfd, STACKRES_IOC_ARENA, &ar))
		return errno == ENOMEM ? 0 : 8;
	for (i = 0; i < NSLOTS; i++) {
		d->top[d->n] = ar.start + (uint64_t)(i + 1) * SLOT;
		d->bottom[d->n] = ar.start + (uint64_t)i * SLOT + pg;
		d->id[d->n++] = ar.id;
	}
	d->end = now() + seconds;
	for (i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, diver, (void *)(uintptr_t)i))
			return 9;
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	return 0;
}

/* ---- the parent ---- */

static int setup_cgroup(long limit_mib, char *why, size_t whylen)
{
	struct stat st;
	int e;

	mkdir(CG_ROOT, 0755);
	if (stat(CG_ROOT "/cgroup.controllers", &st) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL)) {
		snprintf(why, whylen, "no cgroup2 (%s)", strerror(errno));
		return 4;
	}
	e = write_file(CG_ROOT "/cgroup.subtree_control", "+memory");
	if (e) {
		snprintf(why, whylen, "no memory controller (%s)", strerror(-e));
		return 4;
	}
	rmdir(CG);
	if (mkdir(CG, 0755) || write_file(CG "/memory.max", "%ld", limit_mib << 20)) {
		snprintf(why, whylen, "cannot make %s: %s", CG, strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = 60, t0 = now(), per_child = 5;
	long limit_mib = 24, refs0;
	unsigned long rounds = 0, done = 0, oom = 0, failed_growth = 0;
	long long oom_kills, high_cur = 0, cur;
	char why[256];
	int opt, rc;

	while ((opt = getopt(argc, argv, "t:m:")) != -1) {
		switch (opt) {
		case 't':
			seconds = atof(optarg);
			break;
		case 'm':
			limit_mib = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-t SECONDS] [-m LIMIT_MIB]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	pg = sysconf(_SC_PAGESIZE);
	if (access(DEV, F_OK)) {
		printf("memcg: SKIP: " DEV " absent\n");
		return 4;
	}
	rc = setup_cgroup(limit_mib, why, sizeof(why));
	if (rc) {
		printf("memcg: %s: %s\n", rc == 4 ? "SKIP" : "FAIL", why);
		return rc;
	}
	refs0 = read_key("/sys/module/stackres/refcnt", "");
	printf("memcg: %.0f s, children of %.0f s in a %ld MiB memory cgroup\n", seconds,
	       per_child, limit_mib);

	while (now() - t0 < seconds) {
		int status;
		pid_t pid = fork();
		double deadline;

		if (pid < 0) {
			printf("memcg: FAIL: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0) {
			if (write_file(CG "/cgroup.procs", "0"))
				_exit(10);
			_exit(child(per_child));
		}
		rounds++;
		deadline = now() + per_child + 60;
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (now() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				printf("memcg: FAIL: child %lu hung\n", rounds);
				return 1;
			}
			usleep(50000);
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			done++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
			failed_growth++;
		} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			oom++;
		} else {
			printf("memcg: FAIL: child %lu: %s %d\n", rounds,
			       WIFEXITED(status) ? "exit" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			return 1;
		}
		/* Whatever the child charged is uncharged once it is gone. */
		cur = read_key(CG "/memory.current", "");
		if (cur > high_cur)
			high_cur = cur;
		if (cur > 1 << 20) {
			printf("memcg: FAIL: %lld bytes still charged after child %lu\n", cur,
			       rounds);
			return 1;
		}
	}
	oom_kills = read_key(CG "/memory.events", "oom_kill");
	rmdir(CG);
	printf("memcg: %lu children: %lu finished, %lu OOM-killed, %lu failed growth (FAILED/ENOMEM + SIGSEGV); "
	       "oom_kill events %lld, max left charged %lld bytes\n",
	       rounds, done, oom, failed_growth, oom_kills, high_cur);
	if (read_key("/sys/module/stackres/refcnt", "") != refs0) {
		printf("memcg: FAIL: stackres refcnt %lld, was %ld\n",
		       read_key("/sys/module/stackres/refcnt", ""), refs0);
		return 1;
	}
	if (oom + failed_growth == 0) {
		printf("memcg: FAIL: the %ld MiB limit was never hit\n", limit_mib);
		return 1;
	}
	printf("memcg: PASS (%.0f s)\n", now() - t0);
	return 0;
}
