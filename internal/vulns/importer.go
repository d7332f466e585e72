package vulns

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

// Scan is one scanner report imported for an asset, with what it did: the
// answer to an import.
type Scan struct {
	ID      string `json:"id"`
	AssetID string `json:"asset_id"`
	Format  string `json:"format"`
	// Tool is the scanner, as the report names it.
	Tool string `json:"tool"`
	// Full is true for a full scan of the asset by the tool: what it does
	// not find of that tool's earlier findings is proposed as fixed.
	Full bool `json:"full"`
	// ScannedAt is when the scan ran (the report's time, never later than
	// the import); the due dates of what it finds count from it.
	ScannedAt    time.Time `json:"scanned_at"`
	ImportedAt   time.Time `json:"imported_at"`
	ImportedBy   string    `json:"imported_by"`
	ReportSHA256 string    `json:"report_sha256"`
	// Findings counts the report's findings after duplicates were merged:
	// New were not known on the asset, SeenAgain were (Reopened of them
	// had been fixed, and are open again), ProposedFixed are open ones a
	// full scan did not find.
	Findings      int `json:"findings"`
	New           int `json:"new"`
	SeenAgain     int `json:"seen_again"`
	Reopened      int `json:"reopened"`
	ProposedFixed int `json:"proposed_fixed"`
}

// Import is a scanner report to import for an asset.
type Import struct {
	AssetID string
	Format  string
	// Partial says the scan covered part of the asset only: nothing it
	// lacks is proposed as fixed.
	Partial bool
	Report  []byte
}

// known is what an import needs of a vulnerability the asset has.
type known struct {
	id, status, severity      string
	firstSeen, lastSeen, due  time.Time
	proposed, fixed, sameTool bool
	fixedAt                   time.Time
	seenNow                   bool
}

// Import reads a scanner report and records its findings on the asset
// (vuln.manage), in one transaction with its audit entry (vuln.import): a
// finding already known on the asset is the same vulnerability, seen
// again (once fixed, it is reopened: found by a scan after its fix); a
// new one is due by its severity from the scan's time; and — for a full
// scan — every open vulnerability the same tool found before and does not
// find now is proposed as fixed. A report that does not parse changes
// nothing. What the import makes overdue is announced at once.
func (s *Service) Import(ctx context.Context, call *medguard.Call, in Import) (*Scan, error) {
	if !slices.Contains(Formats, in.Format) {
		return nil, medguard.InvalidField("format", "format must be one of %s", strings.Join(Formats, ", "))
	}
	if int64(len(in.Report)) > s.cfg.MaxReport {
		return nil, &medguard.Error{Kind: medguard.TooLarge, Field: "report", Message: "the report is larger than the limit"}
	}
	var asset assets.Ref
	if medguard.ValidID(in.AssetID) {
		refs, err := s.assets.Lookup(ctx, in.AssetID)
		if err != nil {
			return nil, err
		}
		asset = refs[in.AssetID]
	}
	if asset.ID == "" {
		if in.AssetID == "" {
			return nil, medguard.InvalidField("asset", "asset is required: the id of the asset scanned")
		}
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: policy.VulnManage, AuditAction: "vuln.import",
			Resource: policy.Resource{Type: "asset", ID: in.AssetID}},
			&medguard.Error{Kind: medguard.NotFound, Field: "asset", Message: "no such asset"})
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sum := sha256.Sum256(in.Report)
	scan := &Scan{ID: medguard.NewID(now), AssetID: asset.ID, Format: in.Format, Full: !in.Partial, ImportedAt: now,
		ImportedBy: call.Actor.Name, ReportSHA256: hex.EncodeToString(sum[:])}
	var rep *Report
	k, err := s.sealer(ctx)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnManage, AuditAction: "vuln.import",
		Resource: policy.Resource{Type: "asset", ID: asset.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if asset.Status == assets.Retired {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "asset", Message: "the asset is retired"}
		}
		var err error
		if rep, err = Parse(in.Format, in.Report); err != nil {
			return nil, err
		}
		scan.Tool, scan.Findings = rep.Tool, len(rep.Findings)
		scan.ScannedAt = rep.ScannedAt.Truncate(time.Millisecond)
		if scan.ScannedAt.IsZero() || scan.ScannedAt.After(now) {
			scan.ScannedAt = now
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			return s.record(ctx, tx, index, k, scan, rep, call.Actor.Name, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.CheckOverdue(ctx) // a failure is retried by Run
	return scan, nil
}

// record writes a scan's findings, inside the import's transaction.
func (s *Service) record(ctx context.Context, tx *sql.Tx, index uint64, k *keys.DataKey, scan *Scan, rep *Report, actor string, now time.Time) error {
	at := scan.ScannedAt
	rows, err := tx.QueryContext(ctx, `SELECT v.id, v.fingerprint, v.status, v.severity, v.first_seen, v.last_seen, v.due_at,
		v.proposed_fixed_at, v.fixed_at,
		(SELECT count(*) FROM vuln_sightings g JOIN vuln_scans c ON c.id = g.scan_id WHERE g.vuln_id = v.id AND c.tool = $2)
		FROM vulns v WHERE v.asset_id = $1`+s.db.ForUpdate(), scan.AssetID, scan.Tool)
	if err != nil {
		return err
	}
	byFP := map[string]*known{}
	for rows.Next() {
		var kn known
		var fp string
		var first, last, due int64
		var proposed, fixed sql.NullInt64
		var sameTool int
		if err := rows.Scan(&kn.id, &fp, &kn.status, &kn.severity, &first, &last, &due, &proposed, &fixed, &sameTool); err != nil {
			rows.Close()
			return err
		}
		kn.firstSeen, kn.lastSeen, kn.due = medguard.FromMillis(first), medguard.FromMillis(last), medguard.FromMillis(due)
		kn.proposed, kn.fixed, kn.sameTool = proposed.Valid, fixed.Valid, sameTool > 0
		if fixed.Valid {
			kn.fixedAt = medguard.FromMillis(fixed.Int64)
		}
		byFP[fp] = &kn
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO vuln_scans (id, asset_id, format, tool, full_scan, scanned_at, imported_at, imported_by,
		report_sha256, findings, new_count, seen_again, reopened, proposed_fixed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, 0, 0)`,
		scan.ID, scan.AssetID, scan.Format, scan.Tool, boolInt(scan.Full), medguard.Millis(at), medguard.Millis(now), actor,
		scan.ReportSHA256, scan.Findings); err != nil {
		return err
	}
	event := func(vulnID, kind, from, to string) error {
		return addEvent(ctx, tx, index, medguard.NewID(now), vulnID, now, actor, kind, from, to, scan.ID, nil)
	}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		fp := f.Fingerprint()
		kn := byFP[fp]
		if kn == nil {
			id := medguard.NewID(now)
			var desc []byte
			if f.Description != "" {
				desc = k.SealString(keys.Location{Table: "vulns", Row: id, Column: "description"}, f.Description)
			}
			cveList, _ := json.Marshal(f.CVEs)
			if _, err := tx.ExecContext(ctx, `INSERT INTO vulns (id, asset_id, fingerprint, tool, rule_id, cves, title, severity, score,
				location, package, installed_version, fixed_version, reference, description, status, first_seen, last_seen, due_at,
				updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, $20)`,
				id, scan.AssetID, fp, scan.Tool, f.RuleID, string(cveList), f.Title, f.Severity, int(f.Score*10+0.5), f.Location, f.Package,
				f.InstalledVersion, f.FixedVersion, f.Reference, desc, StatusNew, medguard.Millis(at), medguard.Millis(at.Add(s.cfg.SLA(f.Severity))),
				medguard.Millis(now), actor); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO vuln_sightings (vuln_id, scan_id) VALUES ($1, $2)`, id, scan.ID); err != nil {
				return err
			}
			byFP[fp] = &known{id: id, status: StatusNew, seenNow: true, sameTool: true}
			scan.New++
			continue
		}
		if kn.seenNow {
			continue
		}
		kn.seenNow = true
		scan.SeenAgain++
		if _, err := tx.ExecContext(ctx, `INSERT INTO vuln_sightings (vuln_id, scan_id) VALUES ($1, $2)`, kn.id, scan.ID); err != nil {
			return err
		}
		set, args := []string{}, []any{}
		arg := func(col string, v any) {
			args = append(args, v)
			set = append(set, col+" = $"+strconv.Itoa(len(args)))
		}
		if at.After(kn.lastSeen) {
			arg("last_seen", medguard.Millis(at))
		}
		status, reopened := kn.status, false
		switch {
		case kn.fixed && (status == StatusFixed || status == StatusVerified || status == StatusDeployed) && at.After(kn.fixedAt):
			// Found by a scan after its fix: open again, due afresh.
			arg("status", StatusConfirmed)
			arg("due_at", medguard.Millis(at.Add(s.cfg.SLA(worse(kn.severity, f.Severity)))))
			set = append(set, "fixed_at = NULL", "fixed_by = NULL", "closed_at = NULL", "overdue_notified_at = NULL", "proposed_fixed_at = NULL")
			if err := event(kn.id, EventReopened, status, StatusConfirmed); err != nil {
				return err
			}
			status, reopened = StatusConfirmed, true
			scan.Reopened++
		case kn.proposed && Open(status):
			set = append(set, "proposed_fixed_at = NULL", "proposed_by = NULL")
			if err := event(kn.id, EventProposalWithdrawn, status, status); err != nil {
				return err
			}
		}
		if rank(f.Severity) < rank(kn.severity) {
			// Rated more severe: due sooner, never later.
			arg("severity", f.Severity)
			arg("score", int(f.Score*10+0.5))
			if due := kn.firstSeen.Add(s.cfg.SLA(f.Severity)); Open(status) && !reopened && due.Before(kn.due) {
				arg("due_at", medguard.Millis(due))
			}
			if err := event(kn.id, EventSeverity, kn.severity, f.Severity); err != nil {
				return err
			}
		}
		if len(set) > 0 {
			args = append(args, kn.id)
			if _, err := tx.ExecContext(ctx, `UPDATE vulns SET `+strings.Join(set, ", ")+` WHERE id = $`+strconv.Itoa(len(args)), args...); err != nil {
				return err
			}
		}
	}
	if scan.Full {
		for _, kn := range byFP {
			if kn.seenNow || !kn.sameTool || !Open(kn.status) || kn.proposed || !kn.lastSeen.Before(at) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE vulns SET proposed_fixed_at = $1, proposed_by = $2 WHERE id = $3`,
				medguard.Millis(at), scan.ID, kn.id); err != nil {
				return err
			}
			if err := event(kn.id, EventProposedFixed, kn.status, kn.status); err != nil {
				return err
			}
			scan.ProposedFixed++
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE vuln_scans SET new_count = $1, seen_again = $2, reopened = $3, proposed_fixed = $4 WHERE id = $5`,
		scan.New, scan.SeenAgain, scan.Reopened, scan.ProposedFixed, scan.ID)
	return err
}

// worse is the more severe of two severities.
func worse(a, b string) string {
	if rank(b) < rank(a) {
		return b
	}
	return a
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ScanQuery filters the scans imported.
type ScanQuery struct {
	AssetID string
	Limit   int
}

// Scans lists the scans imported, newest first (vuln.read).
func (s *Service) Scans(ctx context.Context, call *medguard.Call, q ScanQuery) ([]Scan, error) {
	if q.AssetID != "" && !medguard.ValidID(q.AssetID) {
		return nil, medguard.InvalidField("asset", "asset must be an asset's id")
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 500
	}
	out := []Scan{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnRead, AuditAction: "vuln.scans",
		Resource: policy.Resource{Type: "vuln_scan", ID: q.AssetID}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT id, asset_id, format, tool, full_scan, scanned_at, imported_at, imported_by,
			report_sha256, findings, new_count, seen_again, reopened, proposed_fixed FROM vuln_scans
			WHERE ($1 = '' OR asset_id = $1) ORDER BY scanned_at DESC, id DESC LIMIT $2`, q.AssetID, q.Limit)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var c Scan
			var full int
			var at, imported int64
			if err := rows.Scan(&c.ID, &c.AssetID, &c.Format, &c.Tool, &full, &at, &imported, &c.ImportedBy, &c.ReportSHA256, &c.Findings,
				&c.New, &c.SeenAgain, &c.Reopened, &c.ProposedFixed); err != nil {
				return nil, err
			}
			c.Full, c.ScannedAt, c.ImportedAt = full != 0, medguard.FromMillis(at), medguard.FromMillis(imported)
			out = append(out, c)
		}
		return nil, rows.Err()
	})
	return out, err
}
