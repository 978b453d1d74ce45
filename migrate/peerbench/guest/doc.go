// Package guest holds peerbench's QEMU guest: guest.asm, a multiboot
// flat binary that enters long mode, drops to ring 3 with SYSEXIT and
// dirties memory at a chosen rate, and its assembled bytes (guest.bin,
// embedded here so that tests and benchmarks need no assembler; `go
// generate` or `make bench-peer` reassembles it and a test fails when
// the two differ).
//
// Its serial output is parsed by ParseLine; Params builds its command
// line. Errors from Params.Validate name the parameter.
package guest
