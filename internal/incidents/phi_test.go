package incidents_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"medguard/internal/incidents"
	"medguard/internal/medguardtest"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// phi is patient data as someone might type it into any free-text field.
const phi = "患者张伟，身份证号11010519491231002X"

// TestNoPatientDataInDatabaseFiles writes patient data into every free-text
// field of incidents and accountability cases — title, description, every
// kind of update, the 5W1H analysis, a corrective action, the closing
// summary, a freeze's reason, a case's summary, findings, statement,
// decision, appeal and review — reads each back, and then reads every byte
// of the SQLite database, its WAL and its shared-memory file: the patient
// data appears in none of them, in UTF-8 or any common encoding. An
// action's owner, stored in clear, is refused unless it is an identifier.
func TestNoPatientDataInDatabaseFiles(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("checks the SQLite files; the sealing is the same code on both engines")
	}
	f := setup(t)
	ctx := context.Background()
	so := f.calls["zhouqiang"]
	text := func(field string) string { return phi + "（" + field + "）" }

	in, err := f.svc.Report(ctx, so, incidents.NewIncident{Title: text("标题"), Description: text("描述"),
		Grade: 1, Criterion: "core_data_leak"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range incidents.UpdateKinds {
		f.clock.Advance(time.Minute)
		if _, err := f.svc.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: kind, Text: text(kind)}); err != nil {
			t.Fatal(err)
		}
	}
	rc := incidents.RootCause{What: text("what"), When: text("when"), Where: text("where"), Who: text("who"),
		Why: text("why"), How: text("how")}
	if _, err := f.svc.SetAnalysis(ctx, so, in.ID, rc); err != nil {
		t.Fatal(err)
	}
	due := f.clock.Now().Add(7 * 24 * time.Hour)
	_, err = f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: "核对", Owner: phi, DueAt: due})
	medguardtest.WantField(t, err, "owner")
	a, err := f.svc.AddAction(ctx, so, in.ID, incidents.NewAction{Description: text("整改措施"), Owner: "xinxike", DueAt: due})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetActionState(ctx, so, in.ID, a.ID, incidents.ActionDone); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetActionState(ctx, f.calls["sunli"], in.ID, a.ID, incidents.ActionVerified); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ConfirmGrade(ctx, so, in.ID, incidents.GradeConfirmation{Grade: 1, Criterion: "core_data_leak",
		Commander: "liuhua"}); err != nil {
		t.Fatal(err)
	}
	f.confirmSteps(t, f.get(t, in.ID))
	if _, err := f.svc.Close(ctx, so, in.ID, text("关闭总结")); err != nil {
		t.Fatal(err)
	}
	frozen, err := f.svc.OpenForFreeze(ctx, "zhangwei", "01jd0000000000000000000009", text("冻结原因"))
	if err != nil {
		t.Fatal(err)
	}

	wuyan, zhaomin, zhang := f.calls["wuyan"], f.calls["zhaomin"], f.calls["zhangwei"]
	c, err := f.svc.OpenCase(ctx, wuyan, incidents.NewCase{SubjectUserID: zhang.Actor.ID, Criterion: "deliberate_leak",
		Summary: text("立案摘要")})
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() (*incidents.Case, error){
		func() (*incidents.Case, error) { return f.svc.AddFinding(ctx, wuyan, c.ID, text("调查结论")) },
		func() (*incidents.Case, error) { return f.svc.Statement(ctx, zhang, c.ID, text("本人陈述")) },
		func() (*incidents.Case, error) {
			return f.svc.Decide(ctx, wuyan, c.ID, incidents.CaseDecision{Outcome: incidents.Upheld, Text: text("处理决定")})
		},
		func() (*incidents.Case, error) {
			return f.svc.Opinion(ctx, wuyan, c.ID, incidents.CaseOpinion{Sanction: incidents.SanctionTermination, Text: text("处理意见")})
		},
		func() (*incidents.Case, error) { return f.svc.Appeal(ctx, zhang, c.ID, text("申诉")) },
		func() (*incidents.Case, error) {
			return f.svc.ReviewAppeal(ctx, zhaomin, c.ID, incidents.CaseReview{Outcome: incidents.Upheld, Text: text("复核意见")})
		},
	}
	for _, step := range steps {
		if c, err = step(); err != nil {
			t.Fatal(err)
		}
	}

	// Everything reads back in clear to those allowed.
	got := f.get(t, in.ID)
	if got.Title != text("标题") || got.Description != text("描述") || got.Analysis == nil || got.Analysis.How != text("how") ||
		len(got.Actions) != 1 || got.Actions[0].Description != text("整改措施") {
		t.Fatalf("%+v", got)
	}
	texts := map[string]bool{}
	for _, u := range got.Timeline {
		texts[u.Text] = true
	}
	for _, kind := range append(incidents.UpdateKinds, "关闭总结") {
		if !texts[text(kind)] {
			t.Errorf("the timeline lacks the %s text", kind)
		}
	}
	if got := f.get(t, frozen.ID); got.Description != text("冻结原因") {
		t.Errorf("freeze reason %q", got.Description)
	}
	if c.Summary != text("立案摘要") || len(c.Findings) != 1 || c.Findings[0].Text != text("调查结论") ||
		c.Statement.Text != text("本人陈述") || c.Decision.Text != text("处理决定") || c.Opinion.Text != text("处理意见") ||
		c.Appeal.Text != text("申诉") ||
		c.Review.Text != text("复核意见") {
		t.Fatalf("%+v", c)
	}

	secrets := testkit.PHI(phi, "11010519491231002X", "身份证号")
	files, _ := filepath.Glob(filepath.Join(f.dir, "*"))
	if len(files) < 2 {
		t.Fatalf("expected the database and its WAL, found %v", files)
	}
	for _, file := range files {
		if fi, err := os.Stat(file); err != nil || fi.IsDir() {
			continue
		}
		testkit.AssertNoPHI(t, file, secrets)
	}
}
