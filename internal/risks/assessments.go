package risks

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// A risk assessment (风险评估) is the risks assessed for one system, recorded
// as risks of the register that name it; it is completed once it holds at
// least one risk and no acceptance of its risks waits for the leadership.
// A new system's introduction (新系统上线检查) keeps a checklist; its
// risk-assessment item is satisfied only by linking a completed assessment,
// and the leadership approves the go-live once every item is done.

// The states of an assessment.
const (
	AssessmentDraft     = "draft"
	AssessmentCompleted = "completed"
)

// AssessmentStatuses lists the states of an assessment.
var AssessmentStatuses = []string{AssessmentDraft, AssessmentCompleted}

// Assessment is a risk assessment of one system.
type Assessment struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// System is the system assessed (e.g. 新版电子病历系统), and AssetID
	// and AssetName its asset, if it is one already.
	System      string     `json:"system"`
	AssetID     string     `json:"asset_id,omitempty"`
	AssetName   string     `json:"asset_name,omitempty"`
	Assessor    string     `json:"assessor"`
	CreatedAt   time.Time  `json:"created_at"`
	Status      string     `json:"status"`
	CompletedBy string     `json:"completed_by,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// Summary is the assessment's conclusion (sealed at rest).
	Summary string `json:"summary,omitempty"`
	// RiskCount counts its risks and HighRisks the high and critical ones.
	RiskCount int `json:"risk_count"`
	HighRisks int `json:"high_risks"`
	// Risks are its risks (a single assessment only).
	Risks []Risk `json:"risks,omitempty"`
}

// NewAssessment starts a risk assessment (the body of POST
// /api/v1/risk-assessments).
type NewAssessment struct {
	Title     string `json:"title"`
	System    string `json:"system"`
	AssetID   string `json:"asset_id,omitempty"`
	AssetName string `json:"asset_name,omitempty"`
}

// AssessmentCompletion completes an assessment with its conclusion (the
// body of POST /api/v1/risk-assessments/{id}/complete).
type AssessmentCompletion struct {
	Summary string `json:"summary"`
}

var errNoAssessment = &medguard.Error{Kind: medguard.NotFound, Message: "no such risk assessment"}

// CreateAssessment starts a risk assessment of a system (risk.manage);
// its risks are recorded with its id.
func (s *Service) CreateAssessment(ctx context.Context, call *medguard.Call, in NewAssessment) (*Assessment, error) {
	var err error
	if in.Title, err = medguard.Line("title", in.Title, 200, true); err != nil {
		return nil, err
	}
	if in.System, err = medguard.Line("system", in.System, 100, true); err != nil {
		return nil, err
	}
	if in.AssetID, in.AssetName, err = s.asset(ctx, in.AssetID, in.AssetName); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	a := &Assessment{ID: medguard.NewID(now), Title: in.Title, System: in.System, AssetID: in.AssetID, AssetName: in.AssetName,
		Assessor: call.Actor.Name, CreatedAt: now, Status: AssessmentDraft}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.assessment_create",
		Resource: policy.Resource{Type: "risk_assessment", ID: a.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO risk_assessments (id, title, system, asset_id, asset_name, assessor, created_at,
				status, completed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')`, a.ID, a.Title, a.System, a.AssetID, a.AssetName,
				a.Assessor, medguard.Millis(now), AssessmentDraft)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

const assessmentColumns = `id, title, system, asset_id, asset_name, assessor, created_at, status, completed_by, completed_at, summary`

func (s *Service) scanAssessment(ctx context.Context, sc interface{ Scan(...any) error }) (*Assessment, error) {
	var a Assessment
	var created int64
	var completed sql.NullInt64
	var summary []byte
	if err := sc.Scan(&a.ID, &a.Title, &a.System, &a.AssetID, &a.AssetName, &a.Assessor, &created, &a.Status, &a.CompletedBy,
		&completed, &summary); err != nil {
		return nil, err
	}
	a.CreatedAt = medguard.FromMillis(created)
	if completed.Valid {
		t := medguard.FromMillis(completed.Int64)
		a.CompletedAt = &t
	}
	var err error
	a.Summary, err = s.open(ctx, "risk_assessments", a.ID, "summary", summary)
	return &a, err
}

// assessment reads an assessment with its counts; nil when there is none.
func (s *Service) assessment(ctx context.Context, id string) (*Assessment, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	a, err := s.scanAssessment(ctx, s.db.QueryRowContext(ctx, `SELECT `+assessmentColumns+` FROM risk_assessments WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("risks.assessment", err)
	}
	return a, s.count(ctx, a)
}

// count adds an assessment's risk counts.
func (s *Service) count(ctx context.Context, a *Assessment) error {
	err := s.db.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(CASE WHEN score >= 10 THEN 1 ELSE 0 END), 0) FROM risks
		WHERE assessment_id = $1 AND status = $2`, a.ID, Open).Scan(&a.RiskCount, &a.HighRisks)
	return medguard.Wrap("risks.count", err)
}

func (s *Service) loadAssessment(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Assessment, error) {
	a, err := s.assessment(ctx, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "risk_assessment", ID: id}}, errNoAssessment)
	}
	return a, nil
}

// GetAssessment returns an assessment with its risks (risk.read).
func (s *Service) GetAssessment(ctx context.Context, call *medguard.Call, id string) (*Assessment, error) {
	a, err := s.loadAssessment(ctx, call, policy.RiskRead, "risk.assessment_read", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.assessment_read",
		Resource: policy.Resource{Type: "risk_assessment", ID: a.ID}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+riskColumns+` FROM risks WHERE assessment_id = $1 ORDER BY score DESC, id`, a.ID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		a.Risks = []Risk{}
		for rows.Next() {
			r, err := s.scanRisk(ctx, rows, now)
			if err != nil {
				return nil, err
			}
			a.Risks = append(a.Risks, r.Risk)
		}
		return nil, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ListAssessments lists the assessments, newest first (risk.read).
func (s *Service) ListAssessments(ctx context.Context, call *medguard.Call) ([]Assessment, error) {
	out := []Assessment{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.assessment_list",
		Resource: policy.Resource{Type: "risk_assessment"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+assessmentColumns+` FROM risk_assessments ORDER BY id DESC LIMIT 1000`)
		if err != nil {
			return nil, err
		}
		var as []*Assessment
		for rows.Next() {
			a, err := s.scanAssessment(ctx, rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			as = append(as, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, a := range as {
			if err := s.count(ctx, a); err != nil {
				return nil, err
			}
			out = append(out, *a)
		}
		return nil, nil
	})
	return out, err
}

// CompleteAssessment completes an assessment with its conclusion
// (risk.manage): it must hold at least one open risk, and no acceptance of
// its risks may wait for the leadership.
func (s *Service) CompleteAssessment(ctx context.Context, call *medguard.Call, id string, in AssessmentCompletion) (*Assessment, error) {
	var err error
	if in.Summary, err = medguard.Text("summary", in.Summary, MaxText, true); err != nil {
		return nil, err
	}
	a, err := s.loadAssessment(ctx, call, policy.RiskManage, "risk.assessment_complete", id)
	if err != nil {
		return nil, err
	}
	var pending int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM risks WHERE assessment_id = $1 AND status = $2 AND acceptance = $3`,
		a.ID, Open, AcceptancePending).Scan(&pending); err != nil {
		return nil, medguard.Wrap("risks.CompleteAssessment", err)
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	summary, err := s.seal(ctx, "risk_assessments", a.ID, "summary", in.Summary)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.assessment_complete",
		Resource: policy.Resource{Type: "risk_assessment", ID: a.ID}}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case a.Status != AssessmentDraft:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the assessment is completed already"}
		case a.RiskCount == 0:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the assessment holds no risk: record its risks first"}
		case pending > 0:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "an acceptance of its risks waits for the leadership's decision"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE risk_assessments SET status = $1, completed_by = $2, completed_at = $3, summary = $4
				WHERE id = $5 AND status = $6`, AssessmentCompleted, call.Actor.Name, medguard.Millis(now), summary, a.ID, AssessmentDraft)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the assessment is completed already"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	a.Status, a.CompletedBy, a.CompletedAt, a.Summary = AssessmentCompleted, call.Actor.Name, &now, in.Summary
	return a, nil
}

// The items of a new system's checklist (新系统上线检查表).
const (
	// ItemRiskAssessment is satisfied only by linking a completed risk
	// assessment (风险评估).
	ItemRiskAssessment = "risk_assessment"
	// ItemSecurityConfig: the security configuration checked against the
	// baseline (安全配置核查).
	ItemSecurityConfig = "security_config"
	// ItemDataClassification: the data it holds classified (数据分级).
	ItemDataClassification = "data_classification"
	// ItemAccessControl: its accounts and roles follow least privilege
	// (账号与权限).
	ItemAccessControl = "access_control"
	// ItemBackupRestore: backed up, a restore tested (备份与恢复).
	ItemBackupRestore = "backup_restore"
	// ItemEmergencyPlan: an emergency plan covers it (应急预案).
	ItemEmergencyPlan = "emergency_plan"
	// ItemStaffTraining: its users trained (操作培训).
	ItemStaffTraining = "staff_training"
)

// ChecklistItems lists the items of the checklist, in order; every one is
// required.
var ChecklistItems = []string{ItemRiskAssessment, ItemSecurityConfig, ItemDataClassification, ItemAccessControl,
	ItemBackupRestore, ItemEmergencyPlan, ItemStaffTraining}

// The states of an introduction.
const (
	IntroductionOpen     = "open"
	IntroductionApproved = "approved"
)

// IntroductionStatuses lists the states of an introduction.
var IntroductionStatuses = []string{IntroductionOpen, IntroductionApproved}

// Introduction is a new system's introduction with its checklist.
type Introduction struct {
	ID          string    `json:"id"`
	System      string    `json:"system"`
	AssetID     string    `json:"asset_id,omitempty"`
	AssetName   string    `json:"asset_name,omitempty"`
	RequestedBy string    `json:"requested_by"`
	CreatedAt   time.Time `json:"created_at"`
	// PlannedAt is when it is to go live.
	PlannedAt time.Time       `json:"planned_at"`
	Status    string          `json:"status"`
	Items     []ChecklistItem `json:"items"`
	// Ready says every item is done: the leadership may approve the
	// go-live.
	Ready      bool       `json:"ready"`
	ApprovedBy string     `json:"approved_by,omitempty"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	// Note is the go-live decision's note (sealed at rest).
	Note string `json:"note,omitempty"`
}

// ChecklistItem is one item of the checklist: done by whom and when, with
// a note, and for the risk assessment the assessment linked.
type ChecklistItem struct {
	Item         string     `json:"item"`
	Done         bool       `json:"done"`
	DoneBy       string     `json:"done_by,omitempty"`
	DoneAt       *time.Time `json:"done_at,omitempty"`
	AssessmentID string     `json:"assessment_id,omitempty"`
	Note         string     `json:"note,omitempty"`
}

// NewIntroduction starts a new system's introduction (the body of POST
// /api/v1/system-introductions).
type NewIntroduction struct {
	System    string    `json:"system"`
	AssetID   string    `json:"asset_id,omitempty"`
	AssetName string    `json:"asset_name,omitempty"`
	PlannedAt time.Time `json:"planned_at"`
}

// ItemCheck marks an item of the checklist done (the body of POST
// /api/v1/system-introductions/{id}/items/{item}); the risk assessment's
// item needs AssessmentID, a completed assessment.
type ItemCheck struct {
	Note         string `json:"note,omitempty"`
	AssessmentID string `json:"assessment_id,omitempty"`
}

// GoLive approves a new system's go-live (the body of POST
// /api/v1/system-introductions/{id}/approve).
type GoLive struct {
	Note string `json:"note"`
}

var errNoIntroduction = &medguard.Error{Kind: medguard.NotFound, Message: "no such system introduction"}

// CreateIntroduction starts a new system's introduction (risk.manage).
func (s *Service) CreateIntroduction(ctx context.Context, call *medguard.Call, in NewIntroduction) (*Introduction, error) {
	var err error
	if in.System, err = medguard.Line("system", in.System, 100, true); err != nil {
		return nil, err
	}
	if in.AssetID, in.AssetName, err = s.asset(ctx, in.AssetID, in.AssetName); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	if in.PlannedAt.IsZero() {
		return nil, medguard.InvalidField("planned_at", "planned_at is required")
	}
	in.PlannedAt = in.PlannedAt.UTC().Truncate(time.Millisecond)
	if in.PlannedAt.After(now.Add(3 * 366 * 24 * time.Hour)) {
		return nil, medguard.InvalidField("planned_at", "planned_at may be at most three years ahead")
	}
	in.PlannedAt = in.PlannedAt.UTC().Truncate(time.Millisecond)
	it := &Introduction{ID: medguard.NewID(now), System: in.System, AssetID: in.AssetID, AssetName: in.AssetName,
		RequestedBy: call.Actor.Name, CreatedAt: now, PlannedAt: in.PlannedAt, Status: IntroductionOpen}
	for _, item := range ChecklistItems {
		it.Items = append(it.Items, ChecklistItem{Item: item})
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.introduction_create",
		Resource: policy.Resource{Type: "system_introduction", ID: it.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO system_introductions (id, system, asset_id, asset_name, requested_by,
				requested_by_id, created_at, planned_at, status, approved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '')`,
				it.ID, it.System, it.AssetID, it.AssetName, it.RequestedBy, call.Actor.ID, medguard.Millis(now),
				medguard.Millis(in.PlannedAt), IntroductionOpen)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// introduction reads an introduction with its checklist, and the ids of
// who asked for it and who checked its items; nil when there is none.
func (s *Service) introduction(ctx context.Context, id string) (*Introduction, []string, error) {
	if !medguard.ValidID(id) {
		return nil, nil, nil
	}
	var it Introduction
	var requester string
	var created, planned int64
	var approved sql.NullInt64
	var note []byte
	err := s.db.QueryRowContext(ctx, `SELECT id, system, asset_id, asset_name, requested_by, requested_by_id, created_at, planned_at,
		status, approved_by, approved_at, note FROM system_introductions WHERE id = $1`, id).Scan(&it.ID, &it.System, &it.AssetID,
		&it.AssetName, &it.RequestedBy, &requester, &created, &planned, &it.Status, &it.ApprovedBy, &approved, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, medguard.Wrap("risks.introduction", err)
	}
	it.CreatedAt, it.PlannedAt = medguard.FromMillis(created), medguard.FromMillis(planned)
	if approved.Valid {
		t := medguard.FromMillis(approved.Int64)
		it.ApprovedAt = &t
	}
	if it.Note, err = s.open(ctx, "system_introductions", it.ID, "note", note); err != nil {
		return nil, nil, err
	}
	signers := []string{requester}
	done := map[string]ChecklistItem{}
	rows, err := s.db.QueryContext(ctx, `SELECT item, done_by, done_by_id, done_at, assessment_id, note FROM introduction_items
		WHERE introduction_id = $1`, id)
	if err != nil {
		return nil, nil, medguard.Wrap("risks.introduction", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c ChecklistItem
		var by string
		var at int64
		var note []byte
		if err := rows.Scan(&c.Item, &c.DoneBy, &by, &at, &c.AssessmentID, &note); err != nil {
			return nil, nil, medguard.Wrap("risks.introduction", err)
		}
		t := medguard.FromMillis(at)
		c.Done, c.DoneAt = true, &t
		if c.Note, err = s.open(ctx, "introduction_items", id+"/"+c.Item, "note", note); err != nil {
			return nil, nil, err
		}
		done[c.Item] = c
		if c.Item == ItemRiskAssessment {
			signers = append(signers, by)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, medguard.Wrap("risks.introduction", err)
	}
	it.Ready = true
	for _, item := range ChecklistItems {
		c, ok := done[item]
		if !ok {
			c = ChecklistItem{Item: item}
			it.Ready = false
		}
		it.Items = append(it.Items, c)
	}
	return &it, signers, nil
}

func (s *Service) loadIntroduction(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Introduction, []string, error) {
	it, signers, err := s.introduction(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if it == nil {
		return nil, nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "system_introduction", ID: id}}, errNoIntroduction)
	}
	return it, signers, nil
}

// GetIntroduction returns an introduction with its checklist (risk.read).
func (s *Service) GetIntroduction(ctx context.Context, call *medguard.Call, id string) (*Introduction, error) {
	it, _, err := s.loadIntroduction(ctx, call, policy.RiskRead, "risk.introduction_read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.introduction_read",
		Resource: policy.Resource{Type: "system_introduction", ID: it.ID}}, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
	if err != nil {
		return nil, err
	}
	return it, nil
}

// ListIntroductions lists the introductions, newest first (risk.read).
func (s *Service) ListIntroductions(ctx context.Context, call *medguard.Call) ([]Introduction, error) {
	out := []Introduction{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.introduction_list",
		Resource: policy.Resource{Type: "system_introduction"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT id FROM system_introductions ORDER BY id DESC LIMIT 1000`)
		if err != nil {
			return nil, err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, id := range ids {
			it, _, err := s.introduction(ctx, id)
			if err != nil {
				return nil, err
			}
			if it != nil {
				out = append(out, *it)
			}
		}
		return nil, nil
	})
	return out, err
}

// CheckItem marks an item of an open introduction's checklist done
// (risk.manage). The risk assessment's item is satisfied only by linking a
// completed assessment (assessment_id); an item is done once.
func (s *Service) CheckItem(ctx context.Context, call *medguard.Call, id, item string, in ItemCheck) (*Introduction, error) {
	if !slices.Contains(ChecklistItems, item) {
		return nil, medguard.InvalidField("item", "item must be one of %s", strings.Join(ChecklistItems, ", "))
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, item != ItemRiskAssessment); err != nil {
		return nil, err
	}
	in.AssessmentID = strings.TrimSpace(in.AssessmentID)
	switch {
	case item == ItemRiskAssessment && in.AssessmentID == "":
		return nil, medguard.InvalidField("assessment_id", "the risk assessment's item is done only by linking a completed risk assessment")
	case item != ItemRiskAssessment && in.AssessmentID != "":
		return nil, medguard.InvalidField("assessment_id", "only the risk assessment's item links an assessment")
	}
	if item == ItemRiskAssessment {
		a, err := s.assessment(ctx, in.AssessmentID)
		if err != nil {
			return nil, err
		}
		switch {
		case a == nil:
			return nil, medguard.InvalidField("assessment_id", "no such risk assessment")
		case a.Status != AssessmentCompleted:
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "assessment_id", Message: "the risk assessment is not completed"}
		}
	}
	it, _, err := s.loadIntroduction(ctx, call, policy.RiskManage, "risk.introduction_check", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var note []byte
	if in.Note != "" {
		if note, err = s.seal(ctx, "introduction_items", it.ID+"/"+item, "note", in.Note); err != nil {
			return nil, err
		}
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.introduction_check",
		Resource: policy.Resource{Type: "system_introduction", ID: it.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if it.Status != IntroductionOpen {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the go-live is approved already"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO introduction_items (introduction_id, item, done_by, done_by_id, done_at,
				assessment_id, note) VALUES ($1, $2, $3, $4, $5, $6, $7)`, it.ID, item, call.Actor.Name, call.Actor.ID,
				medguard.Millis(now), in.AssessmentID, note)
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "item", Message: "the item is done already"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	it, _, err = s.introduction(ctx, it.ID)
	return it, err
}

// ApproveGoLive approves a new system's go-live (risk.accept: the
// leadership group) once every item of its checklist is done; never by
// whoever asked for the introduction or linked its risk assessment
// (deny.separation_of_duties).
func (s *Service) ApproveGoLive(ctx context.Context, call *medguard.Call, id string, in GoLive) (*Introduction, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, true); err != nil {
		return nil, err
	}
	it, signers, err := s.loadIntroduction(ctx, call, policy.RiskAccept, "risk.introduction_approve", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	note, err := s.seal(ctx, "system_introductions", it.ID, "note", in.Note)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskAccept, AuditAction: "risk.introduction_approve",
		Resource: policy.Resource{Type: "system_introduction", ID: it.ID, Signers: nonEmpty(signers...)}},
		func(policy.Decision) (audit.Mutation, error) {
			switch {
			case it.Status != IntroductionOpen:
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the go-live is approved already"}
			case !it.Ready:
				return nil, &medguard.Error{Kind: medguard.Conflict, Code: "checklist_incomplete",
					Message: "the checklist is not complete: every item, the risk assessment first, must be done"}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE system_introductions SET status = $1, approved_by = $2, approved_at = $3, note = $4
					WHERE id = $5 AND status = $6`, IntroductionApproved, call.Actor.Name, medguard.Millis(now), note, it.ID, IntroductionOpen)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the go-live is approved already"})
			}, nil
		})
	if err != nil {
		return nil, err
	}
	it.Status, it.ApprovedBy, it.ApprovedAt, it.Note = IntroductionApproved, call.Actor.Name, &now, in.Note
	return it, nil
}
