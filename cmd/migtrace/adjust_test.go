package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// run executes the CLI in-process and returns stdout, stderr and the exit
// status main would use.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

var seedArgs = []string{
	"--guest-freq", "2649958945", "--guest-tsc", "2330632597459",
	"--src-hrtime", "18028032305249", "--src-boot-hrtime", "17148534696948",
	"--src-wallclock", "1683850713.581965192",
	"--dst-hrtime", "18018796793122", "--dst-wallclock", "1683850713.582072774",
}

// withFlag returns seedArgs with one flag's value replaced.
func withFlag(name, value string) []string {
	args := append([]string(nil), seedArgs...)
	for i := 0; i < len(args); i += 2 {
		if args[i] == name {
			args[i+1] = value
			return args
		}
	}
	return append(args, name, value)
}

func TestAdjustTextSeed(t *testing.T) {
	out, _, code := run(t, append([]string{"adjust"}, seedArgs...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"guest TSC freq: 2649958945 Hz = 2.649958945 GHz",
		"guest uptime ns: 879497608301",
		"migration time delta: 107.582µs",
		"guest_tsc adjustment = 2330632597459 + 285087 = 2330632882546",
		"boot_hrtime adjustment = 17148534696948 ---> 18018796793122 - 879497715883 = 17139299077239",
		"dest highres clock time: 18018796793122",
		"dest wall clock time: 1683850713.582072774s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("unexpected warning:\n%s", out)
	}
}

func TestAdjustJSONSeed(t *testing.T) {
	out, _, code := run(t, append([]string{"adjust", "-o", "json"}, seedArgs...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	want := map[string]string{
		"guest_freq":             "2649958945",
		"guest_tsc":              "2330632882546",
		"guest_tsc_delta":        "285087",
		"boot_hrtime":            "17139299077239",
		"boot_hrtime_delta":      "-9235619709",
		"guest_uptime_ns":        "879497608301",
		"migrate_delta_ns":       "107582",
		"migrate_delta_negative": "false",
		"hrtime":                 "18018796793122",
		"wallclock":              "1683850713.582072774",
	}
	if len(got) != len(want) {
		t.Errorf("keys = %v, want exactly %d keys", got, len(want))
	}
	for k, v := range want {
		if s := strings.TrimSpace(toString(got[k])); s != v {
			t.Errorf("%s = %s, want %s", k, s, v)
		}
	}
	if _, ok := got["guest_tsc"].(json.Number); !ok {
		t.Errorf("guest_tsc is not a JSON number: %T", got["guest_tsc"])
	}
}

func TestAdjustFullUint64InJSON(t *testing.T) {
	// A TSC near 2^64 wraps on purpose and must come out exact: float64
	// would lose the low digits. 18446744073709551000 + 285087 − 2^64 = 284471.
	out, _, code := run(t, append([]string{"adjust", "-o", "json"}, withFlag("--guest-tsc", "18446744073709551000")...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if !strings.Contains(out, `"guest_tsc": 284471,`) {
		t.Errorf("wrapped TSC not exact:\n%s", out)
	}
	out, _, _ = run(t, append([]string{"adjust", "-o", "json"}, withFlag("--guest-tsc", "18446744073709000000")...)...)
	if !strings.Contains(out, `"guest_tsc": 18446744073709285087,`) {
		t.Errorf("large TSC not exact:\n%s", out)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

func TestAdjustNegativeDeltaWarns(t *testing.T) {
	out, _, code := run(t, append([]string{"adjust"}, withFlag("--dst-wallclock", "1683850713.5")...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "WARNING") || !strings.Contains(out, "migration time delta: 0s") {
		t.Errorf("clamped delta not reported:\n%s", out)
	}
}

// Every adjustment error kind is reachable from the CLI, with exit 1, a
// JSON error object in json mode and a message on stderr in text mode.
func TestAdjustErrorKinds(t *testing.T) {
	tests := []struct {
		kind string
		args []string
	}{
		{"invalid_hrtime", withFlag("--dst-hrtime", "-1")},
		{"invalid_guest_freq", withFlag("--guest-freq", "0")},
		{"invalid_migrate_delta", withFlag("--dst-wallclock", "18446744073709551615.0")},
		{"guest_uptime_overflow", withFlag("--src-boot-hrtime", "18028032305250")},
		{"time_delta_overflow", append(withFlag("--src-hrtime", "9223372036854775807"),
			"--src-boot-hrtime", "0", "--src-wallclock", "0", "--dst-wallclock", "1")},
		{"boot_hrtime_overflow", nil}, // see below
		{"tsc_adjust_overflow", append(withFlag("--guest-freq", "18446744073709551615"),
			"--src-wallclock", "0", "--dst-wallclock", "10")},
	}
	// boot_hrtime overflow: with no uptime, a maximal delta and a
	// destination at hrtime 0, new minus old boot_hrtime is below -2^63.
	tests[5].args = append(withFlag("--src-boot-hrtime", "9223372036854775807"),
		"--src-hrtime", "9223372036854775807", "--dst-hrtime", "0",
		"--src-wallclock", "0", "--dst-wallclock", "9223372036.854775807")
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			out, _, code := run(t, append([]string{"adjust", "-o", "json"}, tc.args...)...)
			if code != 1 {
				t.Fatalf("json: exit %d, want 1; out %s", code, out)
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("json error object: %v in %q", err, out)
			}
			if e.Error != tc.kind || e.Message == "" {
				t.Errorf("got %+v, want kind %s", e, tc.kind)
			}
			out, errOut, code := run(t, append([]string{"adjust"}, tc.args...)...)
			if code != 1 || out != "" || !strings.Contains(errOut, "adjusting time data") {
				t.Errorf("text: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

func TestAdjustUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing one", seedArgs[2:], "--guest-freq"},
		{"missing all", nil, "--dst-wallclock"},
		{"malformed int", withFlag("--guest-freq", "fast"), "--guest-freq"},
		{"negative unsigned", withFlag("--guest-tsc", "-5"), "--guest-tsc"},
		{"malformed wall clock", withFlag("--src-wallclock", "12:30"), "--src-wallclock"},
		{"too many digits", withFlag("--dst-wallclock", "1.1234567891"), "--dst-wallclock"},
		{"bad output", append(append([]string(nil), seedArgs...), "-o", "yaml"), "--output"},
		{"unknown flag", append(append([]string(nil), seedArgs...), "--bogus"), "--bogus"},
		{"positional", append(append([]string(nil), seedArgs...), "extra"), "extra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"adjust"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stdout %q stderr %q)", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not name %s", errOut, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "migtrace ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
