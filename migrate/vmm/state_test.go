package vmm

import (
	"errors"
	"strings"
	"testing"
)

func TestRequireState(t *testing.T) {
	tests := []struct {
		s       State
		want    []State
		wantErr error
		text    string
	}{
		{StateRunning, []State{StateRunning}, nil, ""},
		{StateCreated, []State{StatePaused, StateCreated}, nil, ""},
		{StatePaused, []State{StateRunning}, ErrInvalidState, "pausing vm: vm is not in a state that allows this: vm is paused, want running"},
		{StateRunning, []State{StatePaused, StateCreated}, ErrInvalidState, "vm is running, want paused or created"},
		{StateDestroyed, []State{StateRunning}, ErrDestroyed, "pausing vm: vm destroyed"},
	}
	for _, tc := range tests {
		err := RequireState("pausing vm", tc.s, tc.want...)
		if tc.wantErr == nil {
			if err != nil {
				t.Errorf("%v in %v: %v", tc.s, tc.want, err)
			}
			continue
		}
		if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%v in %v: %v, want %v containing %q", tc.s, tc.want, err, tc.wantErr, tc.text)
		}
	}
}
