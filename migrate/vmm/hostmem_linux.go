package vmm

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// HostMemory is how many bytes this process could still allocate for a
// guest: the kernel's MemAvailable estimate, capped by the address space
// left under RLIMIT_AS (a make or mmap beyond that fails, and a Go
// allocation that fails kills the process). how says where the figure
// came from. Without /proc/meminfo it is FallbackHostMemory.
func HostMemory() (bytes uint64, how string) {
	avail, ok := memAvailable()
	var lim unix.Rlimit
	limited := unix.Getrlimit(unix.RLIMIT_AS, &lim) == nil && lim.Cur != unix.RLIM_INFINITY
	var used uint64
	if limited {
		used, _ = procStatusBytes("VmSize:")
	}
	return hostMemory(avail, ok, limited, lim.Cur, used)
}

// hostMemory is HostMemory's arithmetic: avail (valid when availOK) capped
// by what an address-space limit asLimit leaves over the used bytes.
func hostMemory(avail uint64, availOK, limited bool, asLimit, used uint64) (uint64, string) {
	how := "MemAvailable in /proc/meminfo"
	if !availOK {
		avail, how = FallbackHostMemory, "a fixed guess: /proc/meminfo has no MemAvailable"
	}
	if limited {
		left := uint64(0)
		if asLimit > used {
			left = asLimit - used
		}
		if left < avail {
			avail, how = left, "address space left under RLIMIT_AS"
		}
	}
	return avail, how
}

func memAvailable() (uint64, bool) {
	return fieldKiB("/proc/meminfo", "MemAvailable:")
}

func procStatusBytes(key string) (uint64, bool) {
	return fieldKiB("/proc/self/status", key)
}

// fieldKiB reads a "Key:   123 kB" line of a /proc file, in bytes.
func fieldKiB(path, key string) (uint64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(key))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, false
		}
		kib, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil || kib > 1<<54 {
			return 0, false
		}
		return kib << 10, true
	}
	return 0, false
}
