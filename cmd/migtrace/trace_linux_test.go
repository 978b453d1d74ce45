package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
)

// runTraceLive starts the probe target's seed migration, runs `migtrace
// trace ARGS --pid P` against it in-process and returns its stdout.
func runTraceLive(t *testing.T, args ...string) string {
	t.Helper()
	p := probetest.Start(t, probetest.BuildTarget(t), "seed", "-side", "both")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	errR, errW := io.Pipe()
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(errW)
	root.SetArgs(append(args, "--pid", itoa(p.PID)))
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		errW.CloseWithError(io.EOF)
		done <- err
	}()
	var stderr strings.Builder
	var once sync.Once
	attached := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "tracing live migration probes") {
				once.Do(func() { close(attached) })
			}
		}
	}()
	select {
	case <-attached:
	case err := <-done:
		probetest.SkipIfNotSupported(t, err)
		t.Fatalf("trace ended before attaching: %v\n%s", err, stderr.String())
	}
	p.Go(t)
	if err := <-done; err != nil {
		t.Fatalf("trace: %v\n%s", err, stderr.String())
	}
	return out.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

func readSeed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../probes/events/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTraceLivePhases(t *testing.T) {
	out := runTraceLive(t, "trace", "phases", "--count", "2")
	if strings.Count(out, "PHASE ") != 2 || !strings.Contains(out, readSeed(t, "seed-phases.txt")) {
		t.Errorf("want both sides' tables, the source's being the seed capture; got:\n%s", out)
	}
}

func TestTraceLiveAdjustments(t *testing.T) {
	out := runTraceLive(t, "trace", "adjustments", "--count", "1")
	if want := readSeed(t, "seed-adjustments.txt"); out != want {
		t.Errorf("got:\n%s\nwant the seed capture:\n%s", out, want)
	}
}

func TestTraceLiveOTLP(t *testing.T) {
	var mu sync.Mutex
	spans := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := ptraceotlp.NewExportRequest()
		if r.URL.Path != "/v1/traces" || req.UnmarshalProto(body) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		spans += req.Traces().SpanCount()
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	runTraceLive(t, "trace", "phases", "--count", "2", "--otlp", "-o", "json")
	mu.Lock()
	defer mu.Unlock()
	// Each side: a root span and 8 phase spans.
	if spans != 18 {
		t.Errorf("collector received %d spans, want 18", spans)
	}
}

func TestTraceNoSuchProcess(t *testing.T) {
	_, stderr, code := run(t, "trace", "phases", "--pid", "1073741824")
	if code != exitFailure || !strings.Contains(stderr, uprobe.ErrNoProcess.Error()) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
