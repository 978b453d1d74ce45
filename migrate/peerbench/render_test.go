package peerbench

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenReport is a fixed report: every case and system, one system with
// a failed run, one case where a system never succeeded.
func goldenReport() Report {
	msr := func(total, down, black float64, pages, zero uint64, rounds int, load float64) Sample {
		return Sample{
			Total: time.Duration(total * float64(time.Millisecond)), Downtime: time.Duration(down * float64(time.Millisecond)),
			Blackout: time.Duration(black * float64(time.Millisecond)), GuestBytes: pages * 4096, ZeroPages: zero, Rounds: rounds, Load1: load,
		}
	}
	return Report{
		Date:    time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC),
		Command: "make bench-peer PEER_RUNS=3",
		Runs:    3, MaxBandwidth: 1 << 30, DowntimeTarget: 30 * time.Millisecond,
		LoadBefore: [3]float64{1.5, 1.25, 0.75}, LoadAfter: [3]float64{2, 1.5, 1},
		Cases: []CaseResult{
			{Case: CaseIdle256, Systems: []SystemResult{
				{System: systemQEMU, Samples: []Sample{msr(71, 5, 28.4, 65546, 65546, 2, 1.5), msr(80, 4, 9.9, 65546, 65540, 2, 1.6), msr(75, 6, 12.25, 65546, 65546, 3, 1.7)}},
				{System: systemSim, Samples: []Sample{msr(138, 33.6, 34.1, 65536, 65534, 3, 1.5), msr(120, 30.1, 30.7, 65536, 65534, 3, 1.6), msr(131.5, 29, 29.5, 65536, 65534, 3, 1.6)}},
				{System: systemSimSkip, Samples: []Sample{msr(93.2, 1.03, 1.35, 65536, 65534, 3, 1.5), msr(90, 1.1, 1.4, 65536, 65534, 3, 1.6)},
					Errors: []string{"migtrace migrate: exit status 1: phase RamPushPrePause: connection reset"}},
				{System: systemKVM, Samples: []Sample{msr(189, 25.9, 29.3, 65536, 65499, 3, 1.5), msr(170, 24, 27, 65536, 65499, 3, 1.5), msr(180, 25, 28, 65536, 65499, 3, 1.5)}},
			}},
			{Case: CaseDirty256, Systems: []SystemResult{
				{System: systemQEMU, Samples: []Sample{msr(2353, 13, 39.8, 126000, 15753, 5, 1.5), msr(2100, 12, 35, 120000, 15000, 5, 1.5), msr(2200, 14, 36, 121000, 15100, 5, 1.5)}},
				{System: systemSim, Samples: []Sample{msr(2213, 126, 127, 180000, 18406, 13, 1.5), msr(1500, 25, 26, 150000, 18000, 6, 1.5), msr(1600, 28, 29, 151000, 18100, 7, 1.5)}},
				{System: systemSimSkip, Samples: []Sample{msr(1400, 10, 11, 140000, 15476, 5, 1.5), msr(1450, 11, 12, 141000, 15400, 5, 1.5), msr(1420, 9, 10, 139000, 15300, 5, 1.5)}},
				{System: systemKVM, Errors: []string{"starting the migtrace source: no /dev/kvm", "starting the migtrace source: no /dev/kvm", "starting the migtrace source: no /dev/kvm"}},
			}},
			{Case: CaseIdle4G, Systems: []SystemResult{
				{System: systemQEMU, Samples: []Sample{msr(918, 4, 4.8, 1048586, 1048586, 3, 1.5), msr(900, 4, 5, 1048586, 1048586, 3, 1.5), msr(950, 5, 5.2, 1048586, 1048586, 3, 1.5)}},
				{System: systemSim, Samples: []Sample{msr(2026, 569, 569, 1048576, 1048574, 3, 1.5), msr(2000, 560, 561, 1048576, 1048574, 3, 1.5), msr(2050, 570, 571, 1048576, 1048574, 3, 1.5)}},
				{System: systemSimSkip, Samples: []Sample{msr(1741, 1.5, 1.63, 1048576, 1048574, 3, 1.5), msr(1700, 1.2, 1.4, 1048576, 1048574, 3, 1.5), msr(1750, 1.3, 1.5, 1048576, 1048574, 3, 1.5)}},
				{System: systemKVM, Samples: []Sample{msr(4136, 644, 660, 1048576, 1048536, 3, 1.5), msr(4000, 640, 650, 1048576, 1048536, 3, 1.5), msr(4100, 650, 655, 1048576, 1048536, 3, 1.5)}},
			}},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "render.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("Render output differs from %s (rerun with -update after checking the change by eye):\n%s", path, diffLines(string(want), got))
	}
}

// diffLines names the first differing line.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\nwant: " + wl + "\ngot:  " + gl
		}
	}
	return "(same lines)"
}

func itoa(i int) string { return strconv.Itoa(i) }
