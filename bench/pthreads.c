// SPDX-License-Identifier: GPL-2.0
/*
 * The libc group's helper (bench/libc.c runs it): pthread create + exit
 * throughput of the libc it is linked with. Built three times by bench/run,
 * static: with Debian's musl (pthreads-musl), with musl + the exit_free
 * stack cache of examples/musl (pthreads-musl-exit_free) and with glibc
 * (pthreads-glibc, NPTL and its stack cache).
 *
 *   pthreads detached|joinable THREADS SAMPLES
 *
 * prints one line per sample: threads per second. THREADS threads, at most
 * 4 alive at a time, default attributes; detached threads are created
 * detached and post a semaphore as their last act, joinable ones are joined
 * by the creator before it reuses their slot. Each sample ends when every
 * thread of it has finished its body (and for joinable ones, been joined).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INFLIGHT 4

static sem_t slots;

static void *body(void *arg)
{
	sem_post(&slots);
	return arg;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sample(int detached, long n, double *rate)
{
	pthread_t ring[INFLIGHT];
	pthread_attr_t attr;
	double t0;
	long i;

	sem_init(&slots, 0, INFLIGHT);
	pthread_attr_init(&attr);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	t0 = now();
	for (i = 0; i < n; i++) {
		while (sem_wait(&slots))
			;
		if (!detached && i >= INFLIGHT &&
		    pthread_join(ring[i % INFLIGHT], NULL))
			return -1;
		if (pthread_create(&ring[i % INFLIGHT], &attr, body, NULL))
			return -1;
	}
	if (!detached)
		for (i = n - INFLIGHT; i < n; i++)
			if (i >= 0 && pthread_join(ring[i % INFLIGHT], NULL))
				return -1;
	/* The last bodies have run once all slots are back. */
	for (i = 0; i < INFLIGHT; i++)
		while (sem_wait(&slots))
			;
	*rate = n / (now() - t0);
	sem_destroy(&slots);
	return 0;
}

int main(int argc, char **argv)
{
	int detached, samples, s;
	double rate;
	long n;

	if (argc != 4 || (strcmp(argv[1], "detached") &&
			  strcmp(argv[1], "joinable"))) {
		fprintf(stderr, "usage: %s detached|joinable THREADS SAMPLES\n",
			argv[0]);
		return 2;
	}
	detached = !strcmp(argv[1], "detached");
	n = atol(argv[2]);
	samples = atoi(argv[3]);
	for (s = 0; s < samples; s++) {
		if (sample(detached, n, &rate)) {
			fprintf(stderr, "pthreads: pthread call failed\n");
			return 1;
		}
		printf("%.1f\n", rate);
	}
	return 0;
}
