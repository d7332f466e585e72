package demo_test

import (
	"context"
	"slices"
	"testing"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/policy"
	"medguard/internal/training"
)

// checkTraining checks the year of training the demo made (issue 13): five
// courses, the privacy course required for record access, two versions of
// the commitment letter, sessions with results and assessments; and, when
// built for now, that the new doctor is refused records while every other
// member of staff with a clinical role may read (the demo's journeys sign
// them in), two nurses are warned, and a nurse flagged for removal from
// the post has appealed.
func checkTraining(t *testing.T, app *cli.App, sum *demo.Summary, live bool) {
	t.Helper()
	ctx := context.Background()
	office := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Department: "QCD", Roles: []string{policy.Auditor}}}
	cs, err := app.Training.ListCourses(ctx, office)
	if err != nil || len(cs) != 5 || sum.Courses != 5 {
		t.Fatalf("courses %d (%v), summary %d", len(cs), err, sum.Courses)
	}
	required := 0
	for _, c := range cs {
		if c.RequiredFrom != nil {
			required++
		}
	}
	ls, err := app.Training.ListLetters(ctx, office)
	if err != nil || required != 1 || len(ls) != 2 || !ls[0].Resign || sum.TrainingSessions < 10 || sum.TrainingResults < 100 || sum.Assessments == 0 {
		t.Fatalf("required %d, letters %+v (%v), summary %+v", required, ls, err, sum)
	}
	if sum.NewDoctor == "" {
		t.Fatal("no new doctor")
	}
	if !live {
		return
	}
	rows, err := app.Training.Coverage(ctx, office, training.CoverageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	warned := 0
	for _, r := range rows {
		switch {
		case r.Username == sum.NewDoctor:
			if !r.Standing.Gated {
				t.Errorf("the new doctor is not gated: %+v", r.Standing)
			}
		case r.Standing.Gated:
			t.Errorf("%s (%v) is gated: %+v", r.Username, r.Roles, r.Standing.Obligations)
		case r.Standing.Warned:
			warned++
		}
		if r.Username == sum.NewDoctor && !slices.Equal(r.Roles, []string{policy.Doctor}) {
			t.Errorf("the new doctor's roles %v", r.Roles)
		}
	}
	if warned < 2 {
		t.Errorf("%d warned, want the two late nurses at least", warned)
	}
	as, err := app.Training.ListAssessments(ctx, office, "")
	if err != nil {
		t.Fatal(err)
	}
	appealed := slices.ContainsFunc(as, func(a training.Assessment) bool { return a.Flagged && a.Status == training.AssessmentAppealed })
	if !appealed {
		t.Errorf("no flagged assessment appealed in %d", len(as))
	}
}
