//go:build !linux

package main

// threadCPU is 0 where it is not measured: uprobes are Linux only.
func threadCPU() int64 { return 0 }
