package detect

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// BenchmarkObserve is the rule-evaluation throughput: entries a second
// through every default rule, for a hospital's mix — 2,000 staff, 50,000
// patients, 200 workstations, mostly reads, some denials and sign-ins —
// on an injected clock advancing 2 ms an entry (500 entries/s).
func BenchmarkObserve(b *testing.B) {
	e := NewEngine(DefaultRules(), time.UTC)
	t0 := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	entries := make([]*audit.Entry, 1<<16)
	for i := range entries {
		en := &audit.Entry{Time: t0, Actor: fmt.Sprintf("staff%04d", i*7919%2000), IP: fmt.Sprintf("10.1.%d.%d", i%200/100, i%100),
			Action: "record.read", PatientID: fmt.Sprintf("pat%05d", i*104729%50000), Decision: audit.Allow,
			Rule: "allow.same_department", Outcome: audit.Success, RequestID: "r"}
		switch i % 20 {
		case 0:
			en.Decision, en.Rule, en.Outcome = audit.Deny, "deny.no_relation", audit.Denied
		case 1:
			en.Action, en.PatientID = "auth.login", ""
		case 2:
			en.Rule = "allow.break_glass"
		}
		entries[i] = en
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		en := *entries[n%len(entries)]
		en.Time = t0.Add(time.Duration(n) * 2 * time.Millisecond)
		if en.Decision == audit.Allow {
			e.Screen([]*audit.Entry{&en})
		}
		e.Observe(&en)
		n++
		if n%sweepEvery == 0 {
			e.Sweep(en.Time)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkFreezeLatency measures, for a doctor whose next read is the 51st
// patient in 5 minutes, the time from the read entering the gate until the
// account is frozen (alert stored, account frozen, sessions ended, all
// audited and durable) and the read refused: the freeze is in force before
// that answer, so before the next request. Reported as p50 and p99.
func BenchmarkFreezeLatency(b *testing.B) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))
	db := storagetest.Open(b, keys.Schema(), audit.Schema(), identity.Schema(), Schema())
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	g := gate.New(log, clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, clock.Now()), clock)
	id := identity.New(db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1}})
	adminID, err := id.Bootstrap(ctx, identity.BootstrapAccounts("Guanli#Mima2026", "")[0])
	if err != nil {
		b.Fatal(err)
	}
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	if _, err := id.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		b.Fatal(err)
	}
	s, err := New(ctx, db, g, id, time.UTC, nil)
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := fmt.Sprintf("doctor%05d", i)
		u, _, err := id.CreateUser(ctx, admin, identity.NewUser{Username: name, DisplayName: "张医生", Department: "CARD",
			Roles: []string{policy.Doctor}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			b.Fatal(err)
		}
		call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: name, Department: "CARD",
			Roles: []string{policy.Doctor}}, IP: "10.1.1.1", Purpose: "treatment", RequestID: fmt.Sprintf("req%d", i)}
		read := func(p int) error {
			_, _, err := g.Enter(ctx, gate.Passage{Call: call, Action: policy.RecordRead, Resource: policy.Resource{Type: "record",
				ID: fmt.Sprintf("rec%d", p), PatientID: fmt.Sprintf("pat%d", p), Departments: []string{"CARD"}}},
				func(policy.Decision) (audit.Mutation, error) { return nil, nil })
			return err
		}
		for p := 0; p < 50; p++ {
			clock.Advance(time.Millisecond)
			if err := read(p); err != nil {
				b.Fatal(err)
			}
		}
		clock.Advance(time.Millisecond)
		b.StartTimer()
		start := time.Now()
		err = read(50)
		took = append(took, time.Since(start))
		b.StopTimer()
		if !medguard.IsKind(err, medguard.Locked) {
			b.Fatalf("read 51: %v", err)
		}
		if frozen, _ := id.IsFrozen(ctx, name); !frozen {
			b.Fatal("not frozen")
		}
		clock.Advance(10 * time.Minute) // the next doctor starts with empty windows
		b.StartTimer()
	}
	_ = s
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}
