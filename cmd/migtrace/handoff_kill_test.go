package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// killRow is one row of docs/protocol.md §9's failure table that kills a
// side: the stream stops at a cut point (a proxy holds the frame), one
// serve process is SIGKILLed, and the survivor must end where the table
// says, by itself or by the operator's `migtrace resolve`.
type killRow struct {
	cut  string
	dir  servertest.Direction
	msg  wire.Type
	act  servertest.Action // Hold: the frame is lost; ForwardThenHold: it arrives
	kill schema.Role
	// pending: the survivor holds the paused guest in handoff-pending until
	// resolve settles it with resolution.
	pending    bool
	resolution migrate.Resolution
	// guestOnSurvivor: the guest runs on the survivor in the end; else it
	// died with the killed process, and the survivor has no VM.
	guestOnSurvivor bool
}

var killRows = []killRow{
	{"before Finish", servertest.ToDestination, wire.TypeFinish, servertest.Hold, schema.RoleSource, false, "", false},
	{"after Finish, before Okay", servertest.ToSource, wire.TypeOkay, servertest.Hold, schema.RoleSource, true, migrate.ResolveCommit, true},
	{"after Okay, before Handoff", servertest.ToDestination, wire.TypeHandoff, servertest.Hold, schema.RoleSource, true, migrate.ResolveCommit, true},
	{"after Handoff, before Resumed", servertest.ToSource, wire.TypeResumed, servertest.Hold, schema.RoleSource, false, "", true},
	{"after Resumed", servertest.ToSource, wire.TypeResumed, servertest.ForwardThenHold, schema.RoleSource, false, "", true},

	{"before Finish", servertest.ToDestination, wire.TypeFinish, servertest.Hold, schema.RoleDestination, false, "", true},
	{"after Finish, before Okay", servertest.ToSource, wire.TypeOkay, servertest.Hold, schema.RoleDestination, false, "", true},
	{"after Okay, before Handoff", servertest.ToDestination, wire.TypeHandoff, servertest.Hold, schema.RoleDestination, true, migrate.ResolveAbort, true},
	{"after Handoff, before Resumed", servertest.ToSource, wire.TypeResumed, servertest.Hold, schema.RoleDestination, true, migrate.ResolveAbort, true},
	{"after Resumed", servertest.ToSource, wire.TypeResumed, servertest.ForwardThenHold, schema.RoleDestination, false, "", false},
}

func TestHandoffKillTable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := servertest.Binary(t)
	for _, row := range killRows {
		t.Run("kill "+row.kill.String()+"/"+row.cut, func(t *testing.T) {
			t.Parallel()
			testHandoffKill(t, bin, row)
		})
	}
}

func testHandoffKill(t *testing.T, bin string, row killRow) {
	src := servertest.Start(t, bin, servertest.Options{Name: "src",
		Args: []string{"--boot", "--memory", "16MiB", "--dirty-rate", "1MiB", "--io-timeout", "3s"}})
	dst := servertest.Start(t, bin, servertest.Options{Name: "dst", Args: []string{"--io-timeout", "3s"}})
	proxy := servertest.NewFrameProxy(t, src.Addr())
	var (
		mu         sync.Mutex
		finishSeen bool
	)
	hit := make(chan struct{})
	var once sync.Once
	proxy.SetOnFrame(func(dir servertest.Direction, typ wire.Type) servertest.Action {
		mu.Lock()
		defer mu.Unlock()
		if dir == servertest.ToDestination && typ == wire.TypeFinish && row.msg != wire.TypeFinish {
			finishSeen = true
			return servertest.Forward
		}
		// Okay answers other phases too: the cut is the one after Finish.
		if dir != row.dir || typ != row.msg || (typ == wire.TypeOkay && !finishSeen) {
			return servertest.Forward
		}
		once.Do(func() { close(hit) })
		return row.act
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The destination reaches the source, API and stream, through the proxy.
	id, err := dst.Client().StartMigration(ctx, server.MigrateRequest{Source: proxy.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-hit:
	case <-time.After(time.Minute):
		t.Fatalf("the migration never reached the cut point; destination: %+v", dst.Status(t).Migration)
	}
	victim, survivor := src, dst
	if row.kill == schema.RoleDestination {
		victim, survivor = dst, src
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // the dead process's connections end

	// The survivor settles on its own, or stays pending with the guest.
	settled := func(st server.InstanceStatus) bool {
		return st.State != server.StateMigratingIn && st.State != server.StateMigratingOut
	}
	st := survivor.Await(t, time.Minute, settled)
	t.Logf("survivor %s: state %s, handoff %q, error %q", survivor, st.State, st.Migration.Handoff, st.Migration.Error)
	if row.pending {
		if st.State != server.StateHandoffPending {
			t.Fatalf("survivor state %s, want %s (migration %+v)", st.State, server.StateHandoffPending, st.Migration)
		}
		// It stays pending while its peer cannot answer: no guessing.
		time.Sleep(2 * time.Second)
		if st := survivor.Status(t); st.State != server.StateHandoffPending {
			t.Fatalf("survivor left %s on its own: %s", server.StateHandoffPending, st.State)
		}
		out := servertest.Run(t, bin, "status", "--server", survivor.Addr())
		if !strings.Contains(out.Stdout, "handoff-pending") || !strings.Contains(out.Stdout, "migtrace resolve") {
			t.Errorf("status does not show the pending handoff:\n%s", out)
		}
		res := servertest.Run(t, bin, "resolve", "--server", survivor.Addr(), "--migration", id, string(row.resolution))
		if res.Code != 0 {
			t.Fatalf("resolve: %s", res)
		}
		st = survivor.Await(t, 30*time.Second, func(st server.InstanceStatus) bool {
			return st.State != server.StateHandoffPending && st.Migration != nil && st.Migration.Detail != nil
		})
		if d := st.Migration.Detail; d.HandoffSettledBy != migrate.SettledByOperator {
			t.Errorf("the survivor's record says the handoff was settled by %q, want %q", d.HandoffSettledBy, migrate.SettledByOperator)
		}
	}
	if row.guestOnSurvivor {
		if st.State != server.StateRunning {
			t.Fatalf("survivor state %s, want running (migration %+v)", st.State, st.Migration)
		}
		// The guest runs: its TSC moves on.
		t0 := st.GuestTSC
		st = survivor.Await(t, 10*time.Second, func(st server.InstanceStatus) bool { return st.GuestTSC > t0 })
	} else if st.State == server.StateRunning || st.State == server.StatePaused || st.State == server.StateHandoffPending {
		t.Fatalf("survivor holds a VM (%s), but the guest should have died with the %s", st.State, row.kill)
	}
}
