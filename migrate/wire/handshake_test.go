package wire_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name         string
		ours, theirs []uint32
		want         uint32
		wantErr      bool
	}{
		{"same single version", []uint32{1}, []uint32{1}, 1, false},
		{"newest common wins", []uint32{0, 1, 2}, []uint32{0, 1, 2, 3, 4}, 2, false},
		{"order does not matter", []uint32{65, 0, 27, 42}, []uint32{42, 27}, 42, false},
		{"version 0 can be common", []uint32{0}, []uint32{0, 9}, 0, false},
		{"no overlap", []uint32{1, 2}, []uint32{3, 4}, 0, true},
		{"we offer nothing", nil, []uint32{1}, 0, true},
		{"they offer nothing", []uint32{1}, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.Negotiate(tt.ours, tt.theirs)
			if tt.wantErr {
				var vm *wire.VersionMismatchError
				if !errors.Is(err, wire.ErrNoCommonVersion) || !errors.As(err, &vm) {
					t.Fatalf("err = %v, want a VersionMismatchError", err)
				}
				if !reflect.DeepEqual(vm.Ours, tt.ours) || !reflect.DeepEqual(vm.Theirs, tt.theirs) {
					t.Fatalf("error lists %v / %v, want %v / %v", vm.Ours, vm.Theirs, tt.ours, tt.theirs)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Negotiate = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func handshake(t *testing.T, client, server []uint32) (cv uint32, cerr error, sv uint32, serr error) {
	t.Helper()
	a, b := wiretest.TCPPair(t)
	cc, sc := wire.NewConn(a), wire.NewConn(b)
	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sv, serr = wire.HandshakeServer(ctx, sc, server)
	}()
	cv, cerr = wire.HandshakeClient(ctx, cc, client)
	<-done
	return cv, cerr, sv, serr
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name           string
		client, server []uint32
		want           uint32
	}{
		{"this package", wire.SupportedVersions, wire.SupportedVersions, wire.ProtocolVersion},
		{"newest common", []uint32{1, 2, 3}, []uint32{2, 3, 5}, 3},
		{"client older", []uint32{1}, []uint32{1, 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cv, cerr, sv, serr := handshake(t, tt.client, tt.server)
			if cerr != nil || serr != nil {
				t.Fatalf("client %v, server %v", cerr, serr)
			}
			if cv != tt.want || sv != tt.want {
				t.Fatalf("client chose %d, server %d; want %d", cv, sv, tt.want)
			}
		})
	}
}

func TestHandshakeNoCommonVersion(t *testing.T) {
	_, cerr, _, serr := handshake(t, []uint32{1, 2}, []uint32{3, 4})
	var vm *wire.VersionMismatchError
	if !errors.Is(serr, wire.ErrNoCommonVersion) || !errors.As(serr, &vm) ||
		!reflect.DeepEqual(vm.Ours, []uint32{3, 4}) || !reflect.DeepEqual(vm.Theirs, []uint32{1, 2}) {
		t.Fatalf("server err = %v, want a mismatch listing ours [3 4] and theirs [1 2]", serr)
	}
	var re *wire.RemoteError
	if !errors.As(cerr, &re) {
		t.Fatalf("client err = %v, want a RemoteError", cerr)
	}
	for _, list := range []string{"[1 2]", "[3 4]"} {
		if !strings.Contains(cerr.Error(), list) {
			t.Errorf("client error %q does not name %s", cerr, list)
		}
	}
}

func TestHandshakeClientRefusesUnofferedVersion(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	cc, sc := wire.NewConn(a), wire.NewConn(b)
	ctx := context.Background()
	go func() {
		if _, err := wire.Expect[*wire.Hello](ctx, sc); err == nil {
			_ = sc.Send(ctx, &wire.HelloReply{Version: 9})
		}
	}()
	_, err := wire.HandshakeClient(ctx, cc, []uint32{1})
	if !errors.Is(err, wire.ErrNoCommonVersion) {
		t.Fatalf("err = %v, want ErrNoCommonVersion", err)
	}
}
