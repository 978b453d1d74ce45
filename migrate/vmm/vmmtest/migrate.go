package vmmtest

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

// MigrateResult reports what Migrate did.
type MigrateResult struct {
	// RoundPages is the number of pages copied in each round: the first
	// full copy, the live rounds, and the final round with src paused.
	RoundPages []uint64
	// Source is the time data read from the paused source.
	Source timedata.Data
	// Adjusted is what Adjust made of it for the destination.
	Adjusted    timedata.Data
	Adjustments timedata.Adjustments
	// Write is what the destination's VMM did with Adjusted.
	Write vmm.TimeWrite
}

// copyChunkPages is how many pages one ReadPages/WritePages call moves.
const copyChunkPages = 256

// Migrate moves src into dst (created from src's spec, not started) the
// way the migration protocol does, in process and through the vmm
// interfaces alone: a full copy while src runs, liveRounds rounds of
// copying the pages dirtied meanwhile, then src is paused, the last dirty
// pages are copied, the time data is carried with timedata.Adjust against
// dst's clock, and the device state is imported. dst is left created and
// src paused; the caller resumes one of them.
//
// If src was not running, the copy rounds all happen with it stopped.
func Migrate(ctx context.Context, src, dst vmm.VM, liveRounds int) (MigrateResult, error) {
	var res MigrateResult
	if err := src.Spec().Compatible(dst.Spec()); err != nil {
		return res, fmt.Errorf("migrating: %w", err)
	}
	pages := src.Spec().Pages()
	bitmap := make([]uint64, (pages+63)/64)
	buf := make([]byte, copyChunkPages*vmm.PageSize)

	// Clear the dirty log first: everything is copied in round one, and
	// what the guest writes from now on is caught by the log.
	if err := src.TakeDirty(0, pages, bitmap); err != nil {
		return res, fmt.Errorf("migrating: clearing the dirty log: %w", err)
	}
	n, err := copyAll(src, dst, pages, buf)
	if err != nil {
		return res, err
	}
	res.RoundPages = append(res.RoundPages, n)
	for range liveRounds {
		if n, err = copyDirty(src, dst, pages, bitmap, buf); err != nil {
			return res, err
		}
		res.RoundPages = append(res.RoundPages, n)
	}
	if src.State() == vmm.StateRunning {
		if err := src.Pause(ctx); err != nil {
			return res, fmt.Errorf("migrating: %w", err)
		}
	}
	if n, err = copyDirty(src, dst, pages, bitmap, buf); err != nil {
		return res, err
	}
	res.RoundPages = append(res.RoundPages, n)

	if res.Source, err = src.ReadTimeData(ctx); err != nil {
		return res, fmt.Errorf("migrating: %w", err)
	}
	dstHrtime, dstWall := dst.Clock().Now()
	if res.Adjusted, res.Adjustments, err = timedata.Adjust(res.Source, dstHrtime, dstWall); err != nil {
		return res, fmt.Errorf("migrating: adjusting time data: %w", err)
	}
	if res.Write, err = dst.WriteTimeData(ctx, res.Adjusted); err != nil {
		return res, fmt.Errorf("migrating: %w", err)
	}
	states, err := src.ExportDevices(ctx)
	if err != nil {
		return res, fmt.Errorf("migrating: %w", err)
	}
	if err := dst.ImportDevices(ctx, states); err != nil {
		return res, fmt.Errorf("migrating: %w", err)
	}
	return res, nil
}

func copyAll(src, dst vmm.VM, pages uint64, buf []byte) (uint64, error) {
	for first := uint64(0); first < pages; first += copyChunkPages {
		n := min(copyChunkPages, pages-first)
		if err := copyRun(src, dst, first, n, buf); err != nil {
			return 0, err
		}
	}
	return pages, nil
}

// copyDirty takes the dirty log and copies each run of dirty pages.
func copyDirty(src, dst vmm.VM, pages uint64, bitmap []uint64, buf []byte) (uint64, error) {
	if err := src.TakeDirty(0, pages, bitmap); err != nil {
		return 0, fmt.Errorf("migrating: %w", err)
	}
	var copied uint64
	runStart, runLen := uint64(0), uint64(0)
	flush := func() error {
		if runLen == 0 {
			return nil
		}
		err := copyRun(src, dst, runStart, runLen, buf)
		copied += runLen
		runLen = 0
		return err
	}
	for w, word := range bitmap {
		for word != 0 {
			p := uint64(w)*64 + uint64(bits.TrailingZeros64(word))
			word &= word - 1
			if runLen > 0 && p == runStart+runLen && runLen < copyChunkPages {
				runLen++
				continue
			}
			if err := flush(); err != nil {
				return copied, err
			}
			runStart, runLen = p, 1
		}
	}
	return copied, flush()
}

func copyRun(src, dst vmm.VM, first, n uint64, buf []byte) error {
	chunk := buf[:n*vmm.PageSize]
	if err := src.ReadPages(first, chunk); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	if err := dst.WritePages(first, chunk); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}
