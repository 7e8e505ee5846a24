package dlq

import (
	"context"
	"errors"
	"fmt"
)

// startLocked starts the migrator unless it runs or the store is closed.
// f.mu is held.
func (f *Failover) startLocked() {
	if f.migrating || f.closed {
		return
	}
	f.migrating = true
	f.wg.Add(1)
	go f.migrate()
}

// migrate is the migrator: it makes passes over the local store until one
// finds it empty with the primary up, waiting RetryInterval after a pass
// that could not finish (the primary still down, a message it could not
// move).
func (f *Failover) migrate() {
	defer f.wg.Done()
	ctx := f.ctx
	for {
		if f.pass(ctx) {
			return
		}
		t := f.clock.NewTimer(f.opt.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			f.mu.Lock()
			f.migrating = false
			f.mu.Unlock()
			return
		case <-t.C():
		}
	}
}

// pass reaches the primary if it is down, moves every local message to it,
// and reports (ending the migrator) whether the store is back in shared
// mode: nothing left locally and no local put since the pass began.
func (f *Failover) pass(ctx context.Context) (done bool) {
	f.mu.Lock()
	gen, down := f.gen, f.down
	f.mu.Unlock()
	if down {
		// Any answer but unreachable will do: the zero ID is never stored.
		err := f.onPrimary(ctx, func(ctx context.Context) error { _, err := f.primary.Get(ctx, ID{}); return err })
		if err != nil && f.failed(ctx, err) || ctx.Err() != nil {
			return false
		}
		f.up()
	}
	left := false
	for after := (ID{}); ; {
		ms, err := f.local.List(ctx, Query{After: after, Limit: f.opt.MigrateBatch})
		if err != nil {
			return false
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			perr, lerr := f.move(ctx, m.ID)
			switch {
			case lerr != nil || ctx.Err() != nil || f.failed(ctx, perr):
				return false
			case perr != nil: // the primary refused it (full, too large): try again later
				f.mu.Lock()
				f.lastErr = fmt.Errorf("dlq: failover: moving message %s to the primary: %w", m.ID, perr)
				f.mu.Unlock()
				left = true
			}
		}
		after = ms[len(ms)-1].ID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if left || f.down || f.gen != gen || f.pending > 0 {
		return false
	}
	f.mayLocal, f.migrating = false, false
	return true
}

// up records that the primary answers again: calls use it once more.
func (f *Failover) up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

// move copies one local message to the primary and then deletes it
// locally, holding f.moving so that no call sees it in neither store or
// changes it in between. A crash between the two leaves the message in
// both; with an Importer primary the next move of it does nothing on the
// primary but delete the local copy, otherwise the primary gets it twice.
// It returns the primary's error or the local store's.
func (f *Failover) move(ctx context.Context, id ID) (primaryErr, localErr error) {
	f.moving.Lock()
	defer f.moving.Unlock()
	m, err := f.local.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // deleted or moved since it was listed
	}
	if err != nil {
		return nil, err
	}
	err = f.onPrimary(ctx, func(ctx context.Context) error {
		if f.importer != nil {
			return f.importer.Import(ctx, m)
		}
		_, err := f.primary.Put(ctx, m)
		return err
	})
	if err != nil {
		return err, nil
	}
	if err := f.local.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	f.moved.Add(1)
	return nil, nil
}
