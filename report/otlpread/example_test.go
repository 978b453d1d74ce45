package otlpread_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/reporttest"
)

func ExampleReader_Read() {
	// A trace file as migtrace --trace-file writes it: OTLP JSON Lines.
	var file bytes.Buffer
	_ = reporttest.WriteJSONL(&file, reporttest.Traces(reporttest.SeedSource(), reporttest.SeedDestination()))

	r := otlpread.New()
	if err := r.Read(context.Background(), &file, "trace.jsonl"); err != nil {
		fmt.Println(err)
		return
	}
	ms, err := r.Migrations()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range ms {
		fmt.Println(m.ID, m.Role, len(m.Phases), "phases, time data:", m.HasTimeData())
	}
	// Output:
	// 5eed0359-0000-4000-8000-000000000359 destination 8 phases, time data: true
	// 5eed0359-0000-4000-8000-000000000359 source 8 phases, time data: false
}

func ExampleLineError() {
	r := otlpread.New()
	err := r.Read(context.Background(), bytes.NewReader([]byte("{\"resourceSpans\":[\n")), "trace.jsonl")
	fmt.Println(err != nil)
	var le *otlpread.LineError
	if errors.As(err, &le) {
		fmt.Println(le.Name, le.Line)
	}
	// Output:
	// true
	// trace.jsonl 1
}
