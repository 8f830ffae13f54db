// SPDX-License-Identifier: GPL-2.0
/*
 * The gcbarrier workload of bench/gcbarrier.c for bench/fcount: N mprotect
 * toggles (write to a PROT_NONE page, the SIGSEGV handler makes it
 * read/write, mprotect back to PROT_NONE), then N mprotect() pairs alone,
 * each loop in a window of its own, in a process without /dev/stackres
 * (nofd), with it open (fd) and with one reservation grown once (outside;
 * the toggled page is outside it).  Each configuration runs in a fresh
 * process.  Prints "fcount-window NAME" before each window.
 *
 *   toggle [N [CONFIGURATIONS]]    (defaults: 10000 toggles, all three)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <linux/stackres.h>

#define PG 4096

void fcount_start(void);
void fcount_stop(void);

static const char *const mode_name[] = { "nofd", "fd", "outside" };
static char *volatile page;
static volatile unsigned long faults;

static void handler(int sig, siginfo_t *si, void *uc)
{
	if ((char *)si->si_addr != page ||
	    mprotect(page, PG, PROT_READ | PROT_WRITE)) {
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	faults++;
}

static void window(const char *mode, const char *what)
{
	printf("fcount-window %s-%s\n", what, mode);
	fflush(stdout);
}

static int child(int mode, int n)
{
	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_SIGINFO };
	char *area = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long f0;

	if (area == MAP_FAILED)
		return 1;
	page = area + PG;
	sigaction(SIGSEGV, &sa, NULL);
	if (mode) {
		int fd = open("/dev/stackres", O_RDWR);
		struct stackres_reg r = {
			.len = 64 * 1024 + PG, .guard = PG, .flags = STACKRES_MAP,
		};

		if (fd < 0) {
			printf("toggle: %s: no /dev/stackres\n", mode_name[mode]);
			return 1;
		}
		if (mode == 2) {
			if (ioctl(fd, STACKRES_IOC_REGISTER, &r)) {
				perror("toggle: REGISTER");
				return 1;
			}
			((volatile char *)(unsigned long)r.start)[64 * 1024] = 1;
		}
	}
	/* Resident, warmed up. */
	mprotect(page, PG, PROT_READ | PROT_WRITE);
	*page = 1;
	mprotect(page, PG, PROT_NONE);
	for (int i = 0; i < 100; i++) {
		*page = (char)i;
		mprotect(page, PG, PROT_NONE);
	}
	f0 = faults;
	window(mode_name[mode], "toggle");
	fcount_start();
	for (int i = 0; i < n; i++) {
		*page = (char)i;
		mprotect(page, PG, PROT_NONE);
	}
	fcount_stop();
	window(mode_name[mode], "mprotect");
	fcount_start();
	for (int i = 0; i < n; i++) {
		mprotect(page, PG, PROT_READ | PROT_WRITE);
		mprotect(page, PG, PROT_NONE);
	}
	fcount_stop();
	if (faults - f0 != (unsigned long)n) {
		printf("toggle: %s: %lu faults for %d toggles\n", mode_name[mode],
		       faults - f0, n);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	int modes = argc > 2 ? atoi(argv[2]) : 3, status, rc = 0;

	for (int m = 0; m < modes && m < 3; m++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(child(m, n));
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || status)
			rc = 1;
	}
	return rc;
}
