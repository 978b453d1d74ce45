package kvm_test

import (
	"fmt"

	"github.com/migtrace/migtrace/migrate/vmm/kvm"
)

// A guest at 2 GHz whose TSC jumps 2 s + 4 µs over a 2 s blackout: the
// measurement reports the 4 µs it ran ahead of the wall clock.
func ExampleMeasureJump() {
	const freq = 2_000_000_000
	const ms = 1_000_000
	var before, after []kvm.ExitSample
	for i := range int64(60) {
		// One exit a millisecond; the OUT's round trip is 30 µs and the
		// host reads its clock in the middle of it.
		before = append(before, kvm.ExitSample{GuestTSC: uint64(i*ms*2 - 30_000), Realtime: i * ms, RoundTrip: 60_000})
		t := 2_000*ms + i*ms
		after = append(after, kvm.ExitSample{GuestTSC: uint64(t*2 + 8_000 - 30_000), Realtime: t, RoundTrip: 60_000})
	}
	m, err := kvm.MeasureJump(before, after, freq)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m)
	fmt.Println("enough samples:", m.Sufficient())
	// Output:
	// guest TSC continuity: median error 4.00 µs over 120 samples (TSC offset honoured: no)
	// enough samples: true
}
