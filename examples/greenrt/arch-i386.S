/* SPDX-License-Identifier: GPL-2.0 */
/*
 * i386 primitives of libgreenrt: raw system call, context switch.
 * cdecl keeps ebx, esi, edi, ebp and the x87 control word across calls.
 * System calls go through int $0x80 (the vDSO entry would need %gs, which
 * raw clone threads share with the main thread anyway, so either works).
 */
#ifdef __i386__
	.text

/* long gr_syscall(long nr, long a, long b, long c, long d, long e, long f) */
	.globl	gr_syscall
	.type	gr_syscall, @function
gr_syscall:
	pushl	%ebp
	pushl	%edi
	pushl	%esi
	pushl	%ebx
	movl	20(%esp), %eax
	movl	24(%esp), %ebx
	movl	28(%esp), %ecx
	movl	32(%esp), %edx
	movl	36(%esp), %esi
	movl	40(%esp), %edi
	movl	44(%esp), %ebp
	int	$0x80
	popl	%ebx
	popl	%esi
	popl	%edi
	popl	%ebp
	ret
	.size	gr_syscall, .-gr_syscall

/* void gr_switch(struct gr_ctx *from, struct gr_ctx *to) */
	.globl	gr_switch
	.type	gr_switch, @function
gr_switch:
	movl	4(%esp), %eax
	movl	8(%esp), %edx
	pushl	%ebp
	pushl	%ebx
	pushl	%esi
	pushl	%edi
	subl	$4, %esp
	fnstcw	(%esp)
	movl	%esp, (%eax)
	movl	(%edx), %esp
	fldcw	(%esp)
	addl	$4, %esp
	popl	%edi
	popl	%esi
	popl	%ebx
	popl	%ebp
	ret
	.size	gr_switch, .-gr_switch

/* First "return" of a new coroutine: gr_coro_main(ebx), which never returns. */
	.globl	gr_coro_trampoline
	.type	gr_coro_trampoline, @function
gr_coro_trampoline:
	subl	$12, %esp
	pushl	%ebx
	call	gr_coro_main
	ud2
	.size	gr_coro_trampoline, .-gr_coro_trampoline
#endif
	.section .note.GNU-stack,"",@progbits
