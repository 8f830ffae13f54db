/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86_64 primitives of libgreenrt: raw system call, context switch.
 * The System V ABI makes rbx, rbp and r12-r15 callee-saved, plus the MXCSR
 * control bits and the x87 control word: that is all a switch has to keep.
 */
#ifdef __x86_64__
	.text

/* long gr_syscall(long nr, long a, long b, long c, long d, long e, long f) */
	.globl	gr_syscall
	.type	gr_syscall, @function
gr_syscall:
	movq	%rdi, %rax
	movq	%rsi, %rdi
	movq	%rdx, %rsi
	movq	%rcx, %rdx
	movq	%r8, %r10
	movq	%r9, %r8
	movq	8(%rsp), %r9
	syscall
	ret
	.size	gr_syscall, .-gr_syscall

/* void gr_switch(struct gr_ctx *from, struct gr_ctx *to) */
	.globl	gr_switch
	.type	gr_switch, @function
gr_switch:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size	gr_switch, .-gr_switch

/* First "return" of a new coroutine: gr_coro_main(r12), which never returns. */
	.globl	gr_coro_trampoline
	.type	gr_coro_trampoline, @function
gr_coro_trampoline:
	movq	%r12, %rdi
	call	gr_coro_main
	ud2
	.size	gr_coro_trampoline, .-gr_coro_trampoline
#endif
	.section .note.GNU-stack,"",@progbits
