package tracingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"
)

// EnvJaegerBin overrides where StartJaeger looks for the jaeger binary.
const EnvJaegerBin = "MIGTRACE_JAEGER_BIN"

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 100 * time.Millisecond
)

// jaegerConfig is Jaeger's all-in-one setup (OTLP receiver, in-memory
// storage, query API) trimmed to what a test needs, with every listener on
// loopback at a port chosen here: the built-in configuration has fixed
// ports (4317, 4318, 16686, 13133, ...) that parallel test binaries or a
// developer's own Jaeger would collide on.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "127.0.0.1:%d"
    grpc:
      endpoint: "127.0.0.1:%d"
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "127.0.0.1:%d"
      status:
        enabled: true
        path: /status
receivers:
  otlp:
    protocols:
      http:
        endpoint: "127.0.0.1:%d"
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger starts Jaeger on loopback and returns its OTLP/HTTP base URL
// (for OTEL_EXPORTER_OTLP_ENDPOINT, e.g. "http://127.0.0.1:41234") and the
// base URL of its query API (for /api/v3/...). Jaeger is stopped when the
// test ends.
func StartJaeger(t testing.TB) (otlpHTTPEndpoint, queryBaseURL string) {
	t.Helper()
	bin := jaegerBinary(t)
	var lastErr error
	// A port picked free can be taken before Jaeger binds it; try again
	// with fresh ports rather than fail on that race.
	for range 3 {
		otlp, query, err := startJaeger(t, bin)
		if err == nil {
			return otlp, query
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("starting jaeger: %v", lastErr)
	return "", ""
}

var errExited = errors.New("jaeger exited during start-up")

func startJaeger(t testing.TB, bin string) (otlpHTTPEndpoint, queryBaseURL string, err error) {
	ports, err := freePorts(4)
	if err != nil {
		return "", "", err
	}
	queryPort, queryGRPCPort, healthPort, otlpPort := ports[0], ports[1], ports[2], ports[3]
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "jaeger.yaml")
	cfg := fmt.Sprintf(jaegerConfig, queryPort, queryGRPCPort, healthPort, otlpPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", "", err
	}
	logPath := filepath.Join(dir, "jaeger.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", "", err
	}

	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = append(os.Environ(), "JAEGER_LISTEN_HOST=127.0.0.1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", "", fmt.Errorf("running %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()

	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	health := fmt.Sprintf("http://127.0.0.1:%d/status", healthPort)
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case werr := <-exited:
			exited <- werr // let stop see it
			return "", "", fmt.Errorf("%w (%v); log:\n%s", errExited, werr, logTail(logPath))
		default:
		}
		if healthy(health) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", "", fmt.Errorf("not healthy at %s after %v; log:\n%s", health, startTimeout, logTail(logPath))
		}
		time.Sleep(pollEvery)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("jaeger log:\n%s", logTail(logPath))
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", otlpPort), fmt.Sprintf("http://127.0.0.1:%d", queryPort), nil
}

// jaegerBinary returns the jaeger binary's path or ends the test: skipped
// locally, failed under CI.
func jaegerBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvJaegerBin)
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("finding the repository root for bin/jaeger: %v", err)
		}
		path = filepath.Join(root, "bin", "jaeger")
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("jaeger binary %s not found; build it with tracing/jaeger/build.sh (make jaeger)", path)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// repoRoot walks up from the working directory to migtrace's go.mod,
// passing nested modules such as tracing/jaeger.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/migtrace/migtrace\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod for module github.com/migtrace/migtrace above the working directory")
		}
		dir = parent
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func healthy(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// FetchTrace polls GET {queryBaseURL}/api/v3/traces/{id} until Jaeger
// returns the trace with at least minSpans spans (its ingestion is
// asynchronous, so a trace can first appear partly), and returns it. It
// fails the test after timeout.
func FetchTrace(t testing.TB, queryBaseURL string, id trace.TraceID, minSpans int, timeout time.Duration) ptrace.Traces {
	t.Helper()
	url := fmt.Sprintf("%s/api/v3/traces/%s", strings.TrimRight(queryBaseURL, "/"), id)
	deadline := time.Now().Add(timeout)
	var last string
	for {
		td, status, err := getTrace(url)
		switch {
		case err != nil:
			last = err.Error()
		case status != http.StatusOK:
			last = fmt.Sprintf("HTTP %d", status)
		case td.SpanCount() < minSpans:
			last = fmt.Sprintf("%d of %d spans", td.SpanCount(), minSpans)
		default:
			return td
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s not in jaeger after %v: %s", id, timeout, last)
		}
		time.Sleep(pollEvery)
	}
}

func getTrace(url string) (ptrace.Traces, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ptrace.Traces{}, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ptrace.Traces{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return ptrace.Traces{}, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return ptrace.Traces{}, resp.StatusCode, nil
	}
	td, err := DecodeTraceResponse(body)
	return td, resp.StatusCode, err
}

// DecodeTraceResponse parses a Jaeger API v3 trace response,
// {"result": <OTLP TracesData JSON>}.
func DecodeTraceResponse(body []byte) (ptrace.Traces, error) {
	var envelope struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return ptrace.Traces{}, fmt.Errorf("decoding jaeger response: %w", err)
	}
	if len(envelope.Result) == 0 {
		return ptrace.Traces{}, errors.New("decoding jaeger response: no \"result\" field")
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(envelope.Result)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("decoding jaeger result as OTLP JSON: %w", err)
	}
	return td, nil
}
