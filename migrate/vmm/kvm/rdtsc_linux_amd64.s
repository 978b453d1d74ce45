//go:build linux

#include "textflag.h"

// func hostRDTSC() uint64
TEXT ·hostRDTSC(SB), NOSPLIT, $0-8
	RDTSC
	SHLQ $32, DX
	ORQ  DX, AX
	MOVQ AX, ret+0(FP)
	RET
