package servertest

import (
	"context"
	"fmt"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
)

// Await asks c for the instance's status every 5 ms until ok accepts it,
// and returns that status. A failed request is asked again. If ctx ends
// first it returns an error with the last status or request error. The
// short interval catches a migration in a given phase; WaitMigration
// polls more slowly.
func Await(ctx context.Context, c *server.Client, ok func(server.InstanceStatus) bool) (server.InstanceStatus, error) {
	return await(ctx, c, 5*time.Millisecond, true, ok)
}

// WaitState waits until the instance is in state want.
func WaitState(ctx context.Context, c *server.Client, want server.State) (server.InstanceStatus, error) {
	st, err := Await(ctx, c, func(st server.InstanceStatus) bool { return st.State == want })
	if err != nil {
		return st, fmt.Errorf("waiting for state %s: %w", want, err)
	}
	return st, nil
}

// WaitMigration waits until migration id, on the server c talks to, has
// ended, successfully or not, and returns the status that says so. The
// server must answer throughout: a failed request ends the wait with its
// error. It polls every 50 ms, so that many concurrent waits add little
// load.
func WaitMigration(ctx context.Context, c *server.Client, id string) (server.InstanceStatus, error) {
	st, err := await(ctx, c, 50*time.Millisecond, false, func(st server.InstanceStatus) bool {
		return st.Migration != nil && st.Migration.ID == id && st.Migration.Result != server.ResultRunning
	})
	if err != nil {
		return st, fmt.Errorf("waiting for migration %s to end: %w", id, err)
	}
	return st, nil
}

func await(ctx context.Context, c *server.Client, every time.Duration, retry bool, ok func(server.InstanceStatus) bool) (server.InstanceStatus, error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var (
		st  server.InstanceStatus
		err error
	)
	for {
		st, err = c.Instance(ctx)
		if err == nil && ok(st) {
			return st, nil
		}
		if err != nil && !retry && ctx.Err() == nil {
			return st, err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return st, fmt.Errorf("%s: status never as wanted: last request: %w", c.Addr(), err)
			}
			return st, fmt.Errorf("%s: status never as wanted: last %+v, migration %+v", c.Addr(), st, st.Migration)
		case <-tick.C:
		}
	}
}
