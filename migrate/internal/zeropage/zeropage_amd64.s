#include "textflag.h"

// func isZeroAVX2(p *byte, n int) bool
//
// n is a positive multiple of 256. Eight 32-byte loads are ORed together
// per step and tested once, so the loop is bound by loads, not branches.
TEXT ·isZeroAVX2(SB), NOSPLIT, $0-17
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VPOR    128(SI), Y0, Y0
	VPOR    160(SI), Y1, Y1
	VPOR    192(SI), Y2, Y2
	VPOR    224(SI), Y3, Y3
	VPOR    Y1, Y0, Y0
	VPOR    Y3, Y2, Y2
	VPOR    Y2, Y0, Y0
	VPTEST  Y0, Y0
	JNZ     nonzero
	ADDQ    $256, SI
	SUBQ    $256, CX
	JNZ     loop
	VZEROUPPER
	MOVB    $1, ret+16(FP)
	RET

nonzero:
	VZEROUPPER
	MOVB $0, ret+16(FP)
	RET
