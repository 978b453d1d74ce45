package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/migtrace/migtrace/migrate/internal/zeropage"
	"github.com/migtrace/migtrace/migrate/vmm"
)

var zeroPage [vmm.PageSize]byte

// zeroPageHash is the hash of an all-zero page.
var zeroPageHash = xxhash.Sum64(zeroPage[:])

// pageHash is the xxhash64 of one page. A zero page is recognised first:
// the check runs at memory bandwidth and answers a page with data from its
// first word, while hashing costs about twice as much as reading, and
// most of an idle guest is zero.
func pageHash(p []byte) uint64 {
	if zeropage.IsZero(p) {
		return zeroPageHash
	}
	return xxhash.Sum64(p)
}

// pageHashes holds one xxhash64 per guest page. The memory checksum both
// sides compare at the handoff is SHA-256 over these hashes in page order:
// the source computes them from its paused memory in one parallel scan; the
// destination keeps them up to date as pages arrive, so its side of the
// check costs nothing at the end.
type pageHashes []uint64

func newPageHashes(pages uint64) pageHashes {
	h := make(pageHashes, pages)
	for i := range h {
		h[i] = zeroPageHash
	}
	return h
}

// update records the hashes of count pages starting at first, held in data.
func (h pageHashes) update(first uint64, data []byte) {
	for i := 0; len(data) >= vmm.PageSize; i++ {
		h[first+uint64(i)] = pageHash(data[:vmm.PageSize])
		data = data[vmm.PageSize:]
	}
}

func (h pageHashes) zero(first, count uint64) {
	for i := first; i < first+count; i++ {
		h[i] = zeroPageHash
	}
}

func (h pageHashes) sum() [32]byte {
	buf := make([]byte, 8*len(h))
	for i, v := range h {
		binary.LittleEndian.PutUint64(buf[8*i:], v)
	}
	return sha256.Sum256(buf)
}

// scanHashes hashes every page of a paused VM. The work is split across
// workers; VMs that show their pages in place (vmm.PageVisitor) are hashed
// without a copy, which is most of the cost.
func scanHashes(vm vmm.VM, workers int) (pageHashes, error) {
	pages := vm.Spec().Pages()
	h := make(pageHashes, pages)
	const chunk = 1024 // pages per call: 4 MiB
	visitor, direct := vm.(vmm.PageVisitor)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     uint64
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			if !direct {
				buf = make([]byte, chunk*vmm.PageSize)
			}
			for {
				mu.Lock()
				start := next
				next += chunk
				failed := firstErr != nil
				mu.Unlock()
				if failed || start >= pages {
					return
				}
				n := min(chunk, pages-start)
				var err error
				if direct {
					err = visitor.VisitPages(start, n, func(p uint64, data []byte) { h[p] = pageHash(data) })
				} else if err = vm.ReadPages(start, buf[:n*vmm.PageSize]); err == nil {
					h.update(start, buf[:n*vmm.PageSize])
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return h, firstErr
}

// deviceDigest is SHA-256 over the device states in order, each field
// length-prefixed so that no two different lists collide.
func deviceDigest(states []vmm.DeviceState) [32]byte {
	d := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		d.Write(n[:])
		d.Write(b)
	}
	for _, s := range states {
		put([]byte(s.Name))
		put([]byte(s.Kind))
		binary.LittleEndian.PutUint64(n[:], uint64(s.Version))
		d.Write(n[:])
		put(s.Data)
	}
	var out [32]byte
	copy(out[:], d.Sum(nil))
	return out
}
