// Package pagebits holds the one page-bitmap layout migtrace uses, that of
// vmm.VM.TakeDirty: bit i%64 of word i/64 is page i. Bitmap is the
// protocol's working set; Take, Extract and Put move a run of up to 64
// bits at any bit offset, which is how the VMM backends copy between their
// dirty logs and a caller's bitmap that starts at another page.
package pagebits
