// SPDX-License-Identifier: GPL-2.0
/*
 * The window markers of bench/fcount: two functions in a section of their
 * own, linked at a fixed address (FCOUNT_MARKER_ADDR in bench/fcount/run)
 * that no other program of the guest uses, so the plugin can watch for
 * them.  Also opens and closes the window of bench/pthreads.c without
 * changing that file: it is compiled with -Dpthread_attr_init=fcount_attr_init
 * -Dsem_destroy=fcount_sem_destroy, and sample() calls pthread_attr_init()
 * just before its clock starts and sem_destroy() just after it stops.
 */
#include <pthread.h>
#include <semaphore.h>

#define MARKER __attribute__((noinline, used, section(".fcount_marker")))

MARKER void fcount_start(void)
{
	__asm__ volatile("" ::: "memory");
}

/* 16 bytes on: its own translation block start. */
MARKER __attribute__((aligned(16))) void fcount_stop(void)
{
	__asm__ volatile("" ::: "memory");
}

int fcount_attr_init(pthread_attr_t *attr);
int fcount_sem_destroy(sem_t *sem);

int fcount_attr_init(pthread_attr_t *attr)
{
	int ret = pthread_attr_init(attr);

	fcount_start();
	return ret;
}

int fcount_sem_destroy(sem_t *sem)
{
	fcount_stop();
	return sem_destroy(sem);
}
