package backup

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"
	"time"
)

// The stream's generations: the serve schedule starts a new one with every
// full backup (Scheduler), so a generation spans at most one full-backup
// period, and prunes old ones (PruneStream) by the backup retention.

// Generation is a stream generation on a target.
type Generation struct {
	Name string `json:"name"`
	// Start and End are the times of its first and newest segments (the
	// span a restore --at can replay into).
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Segments int       `json:"segments"`
	Bytes    int64     `json:"bytes"`
	// Seals are the verified incremental backups that name it, oldest
	// first: the last one restores any moment of it.
	Seals []string `json:"seals,omitempty"`
}

// Generations lists the stream generations on a target, oldest first,
// with the seals (signatures checked) that name them.
func Generations(ctx context.Context, t Target, verifierKey string) ([]Generation, error) {
	entries, err := List(ctx, t, verifierKey)
	if err != nil {
		return nil, err
	}
	objs, err := t.List(ctx, streamDir)
	if err != nil {
		return nil, err
	}
	return generations(entries, objs), nil
}

func generations(entries []Entry, objs []Object) []Generation {
	byName := map[string]*Generation{}
	var out []*Generation
	get := func(name string) *Generation {
		g := byName[name]
		if g == nil {
			g = &Generation{Name: name}
			byName[name] = g
			out = append(out, g)
		}
		return g
	}
	for _, o := range objs {
		name, _, ok := strings.Cut(strings.TrimPrefix(o.Name, streamDir), "/")
		if !ok || name == "" {
			continue
		}
		g := get(name)
		g.Bytes += o.Size
		if _, _, _, ts, ok := parseSegment(o.Name); ok {
			g.Segments++
			at := time.UnixMilli(ts).UTC()
			if g.Start.IsZero() || at.Before(g.Start) {
				g.Start = at
			}
			if at.After(g.End) {
				g.End = at
			}
		}
	}
	for _, e := range entries {
		if e.Manifest != nil && e.Manifest.Kind == Incremental && e.Manifest.Base != "" {
			g := get(e.Manifest.Base)
			g.Seals = append(g.Seals, e.ID)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	res := make([]Generation, len(out))
	for i, g := range out {
		res[i] = *g
	}
	return res
}

// orphanGrace is how long a generation no kept seal names is left alone
// (as an incomplete backup is by Prune): it may be a generation whose
// first seal is on its way.
const orphanGrace = 24 * time.Hour

// PruneStream deletes the stream generations the backup retention keeps no
// longer, on one target, after Prune has applied the per-backup rule to the
// seals. A generation other than the ones named in current (the stream's
// own and DATA/backup/generation's) is deleted when either
//   - its newest data (newest segment) is older than RetentionLimit — then
//     with every seal that still names it, so no backup outlives the
//     promise of a destruction certificate; or
//   - no seal Prune kept names it (nothing can restore it) and its newest
//     data is more than a day old.
//
// The seals go first (each manifest first, as Prune does), then the
// segments: a run stopped half-way leaves incomplete backups and an
// unsealed generation, which the next run removes. It returns the
// generations and seals deleted.
func PruneStream(ctx context.Context, t Target, now time.Time, keepDaily, keepMonthly int, current ...string) (gens, seals []string, err error) {
	entries, err := List(ctx, t, "")
	if err != nil {
		return nil, nil, err
	}
	objs, err := t.List(ctx, streamDir)
	if err != nil {
		return nil, nil, err
	}
	keep := map[string]bool{}
	for _, c := range current {
		keep[c] = true
	}
	limit := RetentionLimit(keepDaily, keepMonthly)
	for _, g := range generations(entries, objs) {
		if keep[g.Name] {
			continue
		}
		newest := g.End
		if newest.IsZero() {
			if newest, _ = GenerationStart(g.Name); newest.IsZero() {
				continue // not a generation medguard made
			}
		}
		expired := now.Sub(newest) >= limit
		orphan := len(g.Seals) == 0 && now.Sub(newest) >= orphanGrace
		if !expired && !orphan {
			continue
		}
		for _, id := range g.Seals {
			if err := deleteBackup(ctx, t, id); err != nil {
				return gens, seals, err
			}
			seals = append(seals, id)
		}
		for _, o := range objs {
			if strings.HasPrefix(o.Name, streamDir+g.Name+"/") {
				if err := t.Delete(ctx, o.Name); err != nil {
					return gens, seals, err
				}
			}
		}
		gens = append(gens, g.Name)
	}
	return gens, seals, nil
}

// deleteBackup deletes one backup's objects, its manifest first: what is
// left is then "incomplete".
func deleteBackup(ctx context.Context, t Target, id string) error {
	objs, err := t.List(ctx, backupsDir+id+"/")
	if err != nil {
		return err
	}
	sort.SliceStable(objs, func(i, j int) bool {
		return path.Base(objs[i].Name) == manifestName && path.Base(objs[j].Name) != manifestName
	})
	var errs []error
	for _, o := range objs {
		if err := t.Delete(ctx, o.Name); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}
