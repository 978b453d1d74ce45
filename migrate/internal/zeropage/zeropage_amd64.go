package zeropage

import "golang.org/x/sys/cpu"

// blockSize is what one step of the vector loop reads.
const blockSize = 256

// useAsm is set where the vector loop can run (AVX2; the OS saves the
// YMM registers, which cpu.X86.HasAVX2 includes).
var useAsm = cpu.X86.HasAVX2

// isZeroAVX2 reports whether the n bytes at p are all zero; n is a
// positive multiple of blockSize (zeropage_amd64.s).
//
//go:noescape
func isZeroAVX2(p *byte, n int) bool

// isZeroAsm is isZeroAVX2 over p, whose length is a positive multiple of
// blockSize.
func isZeroAsm(p []byte) bool { return isZeroAVX2(&p[0], len(p)) }
