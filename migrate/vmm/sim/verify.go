package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// ErrCorruptPage means a workload page is neither all zero nor consistent
// with its own header.
var ErrCorruptPage = errors.New("corrupt guest page")

// MemoryReport is what VerifyMemory found.
type MemoryReport struct {
	// Pages is the number of workload pages checked (after the ring).
	Pages uint64
	// Zero counts pages never written; Stamped counts consistent ones.
	Zero, Stamped uint64
	// MaxSeq is the highest write sequence number seen.
	MaxSeq uint64
}

// verifyChunkPages is how many pages VerifyMemory reads per call.
const verifyChunkPages = 256

// maxReportedPages bounds how many bad pages an error lists.
const maxReportedPages = 8

// VerifyMemory checks, through vm.ReadPages only, that every workload page
// of a guest running the sim workload is either all zero or self-consistent:
// magic, its own page number, a vCPU the VM has, and a body matching its
// checksum. Use it on a paused VM or on a destination after the copy; it
// fails with ErrCorruptPage listing the first bad pages.
func VerifyMemory(vm vmm.VM) (MemoryReport, error) {
	spec := vm.Spec()
	pages := spec.Pages()
	if pages <= RingPages {
		return MemoryReport{}, fmt.Errorf("verifying guest memory: %d pages leave none after the %d-page ring", pages, RingPages)
	}
	rep := MemoryReport{Pages: pages - RingPages}
	buf := make([]byte, verifyChunkPages*vmm.PageSize)
	var bad []error
	var badCount uint64
	zero := make([]byte, vmm.PageSize)
	for first := uint64(RingPages); first < pages; first += verifyChunkPages {
		n := min(verifyChunkPages, pages-first)
		chunk := buf[:n*vmm.PageSize]
		if err := vm.ReadPages(first, chunk); err != nil {
			return rep, fmt.Errorf("verifying guest memory: %w", err)
		}
		for i := range n {
			page := chunk[i*vmm.PageSize : (i+1)*vmm.PageSize]
			if bytes.Equal(page, zero) {
				rep.Zero++
				continue
			}
			seq, err := checkStampedPage(page, first+i, spec.VCPUs)
			if err != nil {
				badCount++
				if len(bad) < maxReportedPages {
					bad = append(bad, fmt.Errorf("page %d: %w", first+i, err))
				}
				continue
			}
			rep.Stamped++
			rep.MaxSeq = max(rep.MaxSeq, seq)
		}
	}
	if badCount > 0 {
		return rep, fmt.Errorf("verifying guest memory: %w: %d of %d pages: %w",
			ErrCorruptPage, badCount, rep.Pages, errors.Join(bad...))
	}
	return rep, nil
}

// checkStampedPage checks one non-zero workload page and returns its write
// sequence number.
func checkStampedPage(page []byte, pageNumber uint64, vcpus int) (uint64, error) {
	if m := binary.LittleEndian.Uint64(page[hdrMagic:]); m != pageMagic {
		return 0, fmt.Errorf("magic %#x, want %#x", m, uint64(pageMagic))
	}
	if p := binary.LittleEndian.Uint64(page[hdrPage:]); p != pageNumber {
		return 0, fmt.Errorf("header names page %d", p)
	}
	if v := binary.LittleEndian.Uint64(page[hdrVCPU:]); v >= uint64(vcpus) {
		return 0, fmt.Errorf("written by vcpu %d of %d", v, vcpus)
	}
	want := binary.LittleEndian.Uint64(page[hdrChecksum:])
	if got := bodyChecksum(page[pageHeaderSize:]); got != want {
		return 0, fmt.Errorf("body checksum %#x, header says %#x", got, want)
	}
	return binary.LittleEndian.Uint64(page[hdrSeq:]), nil
}
