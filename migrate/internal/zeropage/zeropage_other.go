//go:build !amd64

package zeropage

const blockSize = 64

const useAsm = false

func isZeroAsm(p []byte) bool { return isZeroGeneric(p) }
