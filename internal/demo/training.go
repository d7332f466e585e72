package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/training"
)

//go:embed training.json
var trainingData []byte

// trainingTable is the demo's training data: the courses, the two
// versions of the commitment letter, places and trainers.
type trainingTable struct {
	Courses   []training.NewCourse `json:"courses"`
	Letters   []training.NewLetter `json:"letters"`
	Locations []string             `json:"locations"`
	Trainers  []string             `json:"trainers"`
}

// training fills the training register with the year (培训考核): the
// courses; the onboarding privacy session on day 5 (the failures and the
// absent retake it two weeks later), after which the privacy course is
// required for record access; the commitment letter signed by everyone,
// and its revision signed again; the information-security session in the
// spring, the special courses of the sensitive posts, the nurses' course
// and the annual privacy refresher in the autumn, each with a few
// failures retaken and passed; a retraining ordered by the office and
// satisfied; two nurses who missed the autumn (their training overdue, in
// its grace period: warned, not refused); a nurse who fails two quarters
// in a row (flagged for removal from the post, her appeal waiting); the
// last three quarters' assessments; a session scheduled; and a new doctor
// in psychiatry who joined yesterday and is not trained yet — refused
// records until trained. Every other member of staff may read at the end,
// so that the demo's journeys work as before.
func (l *loader) training(ctx context.Context) error {
	tr := l.svc.Training
	affairs := l.roles["medical_affairs"]
	if tr == nil || len(affairs) == 0 || len(l.roles["nurse"]) < 4 || len(l.roles["doctor"]) < 2 {
		return nil
	}
	var data trainingTable
	if err := json.Unmarshal(trainingData, &data); err != nil {
		return fmt.Errorf("training.json: %w", err)
	}
	ma, sec := affairs[0].call, l.security
	at := func(day int, hour time.Duration) { l.clock.Set(l.dayStart(day).Add(workStart + hour)) }
	// Everyone of the hospital's staff, in a fixed order: the researchers
	// of partners are not staff.
	var everyone []*Staff
	for _, role := range []string{"admin", "security_officer", "records_clerk", "doctor", "nurse", "dept_head", "auditor", "it_engineer",
		"medical_affairs", "leadership"} {
		everyone = append(everyone, l.roles[role]...)
	}
	nurses := l.roles["nurse"]
	struggling := nurses[len(nurses)-1]
	late := []*Staff{nurses[len(nurses)-2], nurses[len(nurses)-3]}
	retrained := l.roles["doctor"][len(l.roles["doctor"])-1]

	zone := hospitalZone
	// quarter names the quarter back quarters before now's, with the days
	// it starts and ends (the next one's first) and its end.
	quarter := func(back int) (string, int, int, time.Time) {
		q := training.QuarterOf(l.opts.Now.In(zone).AddDate(0, -3*back, 0), zone)
		from, to, _ := training.QuarterBounds(q, zone)
		return q, l.dayOf(from), l.dayOf(to), to
	}
	_, q2from, _, _ := quarter(2)
	_, _, q1to, _ := quarter(1)
	flagging := func(day int) bool { return day >= q2from && day < q1to }

	// Day 1: the rules (the hospital's pass mark of the assessment is 80)
	// and the courses.
	at(1, time.Hour)
	if _, err := tr.SetSettings(ctx, sec, training.Settings{PeriodDays: 182, GraceDays: 14, AssessmentPassMark: 80}); err != nil {
		return err
	}
	courses := map[string]*training.Course{}
	for _, c := range data.Courses {
		made, err := tr.CreateCourse(ctx, ma, c)
		if err != nil {
			return err
		}
		courses[c.Code] = made
		l.sum.Courses++
	}
	at(2, time.Hour)
	letter, err := tr.PublishLetter(ctx, sec, data.Letters[0])
	if err != nil {
		return err
	}

	// session holds a session of a course on day at hour, enrols who and
	// enters their results: score(s) gives a score, or -1 for absent.
	n := 0
	session := func(code string, day int, who []*Staff, score func(*Staff) int) error {
		at(day, 2*time.Hour)
		c := courses[code]
		s, err := tr.CreateSession(ctx, ma, training.NewSession{CourseID: c.ID, HeldAt: l.clock.Now().Add(-time.Hour),
			Location: data.Locations[n%len(data.Locations)], Trainer: data.Trainers[n%len(data.Trainers)]})
		if err != nil {
			return err
		}
		n++
		l.sum.TrainingSessions++
		var ids []string
		for _, p := range who {
			ids = append(ids, p.call.Actor.ID)
		}
		if _, err := tr.Enrol(ctx, ma, s.ID, training.Enrolment{UserIDs: ids}); err != nil {
			return err
		}
		l.clock.Set(l.clock.Now().Add(2 * time.Hour))
		for _, p := range who {
			in := training.NewResult{Attended: true}
			if sc := score(p); sc < 0 {
				in = training.NewResult{Note: "未到场，已通知补训"}
			} else {
				in.Score = &sc
				if sc < c.PassMark {
					in.Note = "未达合格分，安排补考"
				}
			}
			by := ma
			if p.call.Actor.ID == ma.Actor.ID {
				by = sec // nobody enters their own score
			}
			if _, err := tr.RecordResult(ctx, by, s.ID, p.call.Actor.ID, in); err != nil {
				return err
			}
			l.sum.TrainingResults++
		}
		return nil
	}
	// mostly: a score of 80 to 100, failing 1 in 20 and absent 1 in 40.
	mostly := func(pass int) func(*Staff) int {
		return func(*Staff) int {
			switch x := l.rnd.IntN(40); {
			case x == 0:
				return -1
			case x <= 2:
				return pass - 5 - l.rnd.IntN(20)
			}
			return max(pass, 80) + l.rnd.IntN(101-max(pass, 80))
		}
	}
	passes := func(*Staff) int { return 82 + l.rnd.IntN(18) }
	// In the struggling nurse's two quarters she misses every session but
	// the retakes she fails.
	absentThen := func(day int, f func(*Staff) int) func(*Staff) int {
		return func(p *Staff) int {
			if p == struggling && flagging(day) {
				return -1
			}
			return f(p)
		}
	}

	// retake holds the retake of a session for those who did not pass it:
	// they all pass.
	retake := func(code string, day int, who []*Staff, first func(*Staff) int) error {
		var again []*Staff
		scores := map[*Staff]int{}
		for _, p := range who {
			scores[p] = first(p)
		}
		if err := session(code, day, who, func(p *Staff) int { return scores[p] }); err != nil {
			return err
		}
		for _, p := range who {
			if scores[p] < courses[code].PassMark {
				again = append(again, p)
			}
		}
		if len(again) == 0 {
			return nil
		}
		return session(code, day+14, again, absentThen(day+14, passes))
	}
	without := func(list []*Staff, out ...*Staff) []*Staff {
		return slices.DeleteFunc(slices.Clone(list), func(s *Staff) bool { return slices.Contains(out, s) })
	}
	// Onboarding (岗前培训), day 5: the privacy course and the letter.
	if err := retake("PRIV-101", 5, everyone, mostly(80)); err != nil {
		return err
	}
	for i, p := range everyone {
		l.clock.Set(l.dayStart(5 + i%3).Add(workStart + 6*time.Hour + time.Duration(i)*time.Minute))
		if _, err := tr.Sign(ctx, p.call, letter.Version, training.SignLetter{SHA256: letter.SHA256}); err != nil {
			return err
		}
	}
	// Everyone passed by day 19: from then on the course is required for
	// record access.
	at(19, 9*time.Hour)
	if _, err := tr.SetRequired(ctx, sec, courses["PRIV-101"].ID, training.Requirement{Required: true}); err != nil {
		return err
	}
	clerks, it := l.roles["records_clerk"], append(slices.Clone(l.roles["it_engineer"]), l.roles["security_officer"]...)
	for _, s := range []struct {
		code string
		day  int
		who  []*Staff
	}{
		{"MRD-301", 60, clerks}, {"ITD-302", 90, it}, {"SEC-201", 120, everyone}, {"NUR-401", 150, nurses},
		{"MRD-301", 250, clerks}, {"ITD-302", 270, it},
	} {
		who := s.who
		if s.day > lastDay-189 {
			who = without(who, late...)
		}
		if err := retake(s.code, s.day, who, absentThen(s.day, mostly(courses[s.code].PassMark))); err != nil {
			return err
		}
	}
	// The two late nurses' make-up session, 189 days ago: their training
	// falls due a week before the end, and closes their access a week
	// after it unless they are trained.
	if err := session("SEC-201", lastDay-189, late, passes); err != nil {
		return err
	}
	// The revised letter, day 240: everyone signs it again by day 260.
	at(240, time.Hour)
	revised, err := tr.PublishLetter(ctx, sec, training.NewLetter{Title: data.Letters[1].Title, Body: data.Letters[1].Body, Resign: true,
		EffectiveFrom: l.dayStart(260).Add(workStart)})
	if err != nil {
		return err
	}
	for i, p := range everyone {
		l.clock.Set(l.dayStart(241 + i%15).Add(workStart + time.Duration(i%480)*time.Minute))
		if _, err := tr.Sign(ctx, p.call, revised.Version, training.SignLetter{SHA256: revised.SHA256}); err != nil {
			return err
		}
	}
	// The annual privacy refresher, day 300, without the late nurses.
	if err := retake("PRIV-101", 300, without(everyone, late...), absentThen(300, mostly(80))); err != nil {
		return err
	}
	// The struggling nurse: failed retakes in two quarters in a row, then
	// passed, in the last days.
	for _, back := range []int{2, 1} {
		_, from, to, _ := quarter(back)
		mid := max(0, min((from+to)/2, lastDay-10))
		if err := session("NUR-401", mid, []*Staff{struggling}, func(*Staff) int { return 55 + back }); err != nil {
			return err
		}
		if err := session("NUR-401", min(mid+7, lastDay-9), []*Staff{struggling}, func(*Staff) int { return -1 }); err != nil {
			return err
		}
	}
	if err := session("NUR-401", lastDay-5, []*Staff{struggling}, func(*Staff) int { return 84 }); err != nil {
		return err
	}
	// A retraining ordered by the office after an accountability case
	// (越权查询), with a week to pass: passed in time.
	at(320, 3*time.Hour)
	if _, err := tr.Retrain(ctx, ma, training.NewOrder{UserID: retrained.call.Actor.ID, Reason: "问责处理：越权查询病历 3 次，警告并限期重新培训",
		GatesFrom: l.dayStart(334).Add(workStart)}); err != nil {
		return err
	}
	if err := session("PRIV-101", 327, []*Staff{retrained}, passes); err != nil {
		return err
	}

	// The last three quarters' assessments, computed two days after each
	// ended; the struggling nurse appeals the second failure.
	for _, back := range []int{3, 2, 1} {
		q, _, to, end := quarter(back)
		when := minTime(l.dayStart(to+2).Add(workStart), l.opts.Now.Add(-2*time.Hour))
		if when.Before(end) {
			continue // ended less than two hours ago: computed tomorrow
		}
		l.clock.Set(when)
		as, err := tr.ComputeAssessments(ctx, sec, training.NewAssessments{Quarter: q})
		if err != nil {
			return err
		}
		for _, a := range as {
			l.sum.Assessments++
			if a.Flagged && a.UserID == struggling.call.Actor.ID {
				l.clock.Set(l.clock.Now().Add(time.Hour))
				if _, err := tr.AppealAssessment(ctx, struggling.call, a.ID, training.AssessmentAppeal{
					Text: "第三季度曾脱产参加进修，未能按时参加补考；现已补考合格，请求撤销调岗建议。"}); err != nil {
					return err
				}
			}
		}
	}

	// The next privacy session, in twelve days, for the late nurses.
	at(lastDay, 4*time.Hour)
	next, err := tr.CreateSession(ctx, ma, training.NewSession{CourseID: courses["PRIV-101"].ID, HeldAt: l.dayStart(lastDay + 12).Add(workStart + time.Hour),
		Location: data.Locations[0], Trainer: data.Trainers[0]})
	if err != nil {
		return err
	}
	l.sum.TrainingSessions++
	ids := []string{late[0].call.Actor.ID, late[1].call.Actor.ID}

	// A new doctor joined psychiatry yesterday: not trained, no letter.
	at(lastDay, 5*time.Hour)
	newbie, err := l.newDoctor(ctx)
	if err != nil {
		return err
	}
	ids = append(ids, newbie.call.Actor.ID)
	if _, err := tr.Enrol(ctx, ma, next.ID, training.Enrolment{UserIDs: ids}); err != nil {
		return err
	}
	// Their first try at a patient's records is refused.
	at(lastDay, 6*time.Hour)
	for _, v := range l.visits {
		if v.patientID != "" && v.dept.Code == newbie.Department {
			if _, _, err := l.svc.Records.ListRecords(ctx, newbie.call, v.patientID, "", 10); !medguard.IsKind(err, medguard.Forbidden) {
				return fmt.Errorf("the untrained doctor was not refused: %v", err)
			}
			break
		}
	}
	// Overdue training is announced, as the server would.
	at(lastDay, 7*time.Hour)
	_, err = tr.CheckOverdue(ctx)
	return err
}

// newDoctor makes the doctor who joined yesterday: the administrator asks
// for the role, the security administrator approves it.
func (l *loader) newDoctor(ctx context.Context) (*Staff, error) {
	name := "林晓雨"
	s := &Staff{Username: "linxiaoyu", Name: name, Department: "PSYC", Role: "doctor"}
	u, pending, err := l.svc.Identity.CreateUser(ctx, l.admin, identity.NewUser{Username: s.Username, DisplayName: name,
		Department: s.Department, Roles: []string{s.Role}, Password: l.opts.StaffPassword})
	if err != nil {
		return nil, err
	}
	for _, role := range pending {
		a, err := l.svc.Approvals.GrantRole(ctx, l.admin, u.ID, role, "新入职医生："+name)
		if err != nil {
			return nil, err
		}
		if _, err := l.svc.Approvals.Approve(ctx, l.security, a.ID, "同意任命"); err != nil {
			return nil, err
		}
	}
	s.call = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: s.Username, Department: s.Department,
		Roles: []string{s.Role}}, IP: "10.20.9.99"}
	l.sum.Staff++
	l.sum.NewDoctor = s.Username
	return s, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
