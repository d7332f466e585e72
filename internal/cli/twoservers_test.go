package cli_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/audit"
	"medguard/internal/keys"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// Two servers on one PostgreSQL database, both answering writes at once,
// build one audit tree: no gaps, no forks, and the checkpoints each signed
// (in the database and in its own checkpoints.log) agree with it.
func TestTwoServersOneLog(t *testing.T) {
	a, b, schema, skey := twoServers(t, "--checkpoint-every", "20ms")
	tokens := []string{a.admin(), b.login("admin", adminPassword, b.code("admin"))["token"].(string)}

	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			srv := []*server{a, b}[w%2]
			for i := 0; i < 25; i++ {
				code := fmt.Sprintf("W%dN%d", w, i)
				if st, _, out := srv.do("POST", "/api/v1/departments", tokens[w%2], map[string]string{"code": code, "name": "科室" + code}); st != 201 {
					t.Errorf("%s: %d %s", code, st, out)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	rep, outside := verifyOneTree(t, schema, skey, a, b)
	// 200 department creations, each one entry, plus the sign-ins.
	if rep.Size < 200 || rep.External != len(outside) || rep.Checkpoints < 2 {
		t.Fatalf("report %+v", rep)
	}
}

// Servers sharing PostgreSQL count one user's reads together: a doctor
// whose reads a load balancer spreads over two servers is frozen at the
// same read as on one — the 51st patient — and frozen on both.
func TestTwoServersOneWindow(t *testing.T) {
	a, b, _, _ := twoServers(t)
	a.json(201, "POST", "/api/v1/departments", a.admin(), map[string]string{"code": "CARD", "name": "心内科"})
	a.staff("zhangwei", "张建国", "CARD", "doctor", staffPassword)
	doc := a.token("zhangwei", staffPassword)
	var recs []string
	for i := 0; i < 60; i++ {
		p := a.json(201, "POST", "/api/v1/patients", doc, map[string]any{"name": fmt.Sprintf("患者%02d", i), "gender": "female"})
		recs = append(recs, a.json(201, "POST", "/api/v1/patients/"+p["id"].(string)+"/records", doc, map[string]any{
			"type": "progress_note", "department": "CARD", "title": "病程记录", "text": "病情平稳。"})["id"].(string))
	}
	for i, id := range recs {
		srv := []*server{a, b}[i%2]
		st, _, body := srv.do("GET", "/api/v1/records/"+id, doc, nil)
		if st == 423 {
			if i != 50 {
				t.Fatalf("frozen at read %d", i+1)
			}
			a.problem(423, "GET", "/api/v1/records/"+recs[0], doc, nil)
			b.problem(423, "GET", "/api/v1/records/"+recs[0], doc, nil)
			return
		}
		if st != 200 {
			t.Fatalf("read %d on server %d: %d %s", i+1, i%2, st, body)
		}
	}
	t.Fatal("60 patients read over two servers, never frozen")
}

// twoServers starts two servers on one fresh PostgreSQL schema with the
// same key file and audit signing key (skipping without PostgreSQL), and
// returns them, the schema's DSN and the signing key.
func twoServers(t *testing.T, args ...string) (a, b *server, schema, skey string) {
	t.Helper()
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("needs PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	schema = storagetest.FreshSchema(t, dsn)
	env, skey := fleetKeys(t)
	a = startEnv(t, env, append([]string{"--db", schema}, args...)...)
	b = startEnv(t, env, append([]string{"--db", schema}, args...)...)
	b.book = a.book
	return a, b, schema, skey
}

// fleetKeys makes what every server of one installation shares: the key
// file and the audit log's signing key, as the environment that gives
// them to "medguard serve", and the signing key.
func fleetKeys(t *testing.T) (env map[string]string, skey string) {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "hospital.example/medguard")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"MEDGUARD_KEYS":      string(keys.NewKeyFile(keys.SM4GCM, time.Now()).Marshal()),
		"MEDGUARD_AUDIT_KEY": skey,
	}, skey
}

// A server keeps who a session belongs to in memory (identity's session
// cache): whatever the other server changes about a signed-in member of
// staff — a role taken away, a move to another department, a sign-out, a
// deactivation — is in force on this one at the next request.
func TestTwoServersSeeEveryChange(t *testing.T) {
	a, b, _, _ := twoServers(t)
	admin := a.admin()
	a.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	a.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "NEUR", "name": "神经内科"})
	id, doc, rec := cardDoctorRead(a, b, "zhaomin", "赵敏", "孙丽华", "患者胸闷好转。")
	if me := b.json(200, "GET", "/api/v1/auth/me", doc, nil); fmt.Sprint(me["department"]) != "CARD" {
		t.Fatalf("me on b: %v", me)
	}

	// A move to another department (four-eyes), on a: b answers as for
	// the new one.
	ap := a.json(202, "POST", "/api/v1/users/"+id+"/department", admin, map[string]string{"department": "NEUR"})["approval"].(map[string]any)
	a.json(200, "POST", "/api/v1/approvals/"+ap["id"].(string)+"/approve", a.security(), map[string]string{"note": "同意调岗"})
	if me := b.json(200, "GET", "/api/v1/auth/me", doc, nil); fmt.Sprint(me["department"]) != "NEUR" {
		t.Fatalf("me on b after the move on a: %v", me)
	}
	// The doctor role taken away on a: b refuses the read.
	if st, _, body := a.do("DELETE", "/api/v1/users/"+id+"/roles/doctor", admin, nil); st != 204 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	b.problem(403, "GET", "/api/v1/records/"+rec, doc, nil)

	// A sign-out on a ends the session on b.
	nurse := a.staff("qianli", "钱丽", "CARD", "nurse", staffPassword)
	tok := a.token("qianli", staffPassword)
	b.json(200, "GET", "/api/v1/auth/me", tok, nil)
	b.json(200, "GET", "/api/v1/auth/me", tok, nil)
	a.do("POST", "/api/v1/auth/logout", tok, nil)
	b.problem(401, "GET", "/api/v1/auth/me", tok, nil)

	// A deactivation on a ends every session on b.
	tok = a.relogin("qianli", staffPassword)
	b.json(200, "GET", "/api/v1/auth/me", tok, nil)
	a.json(200, "POST", "/api/v1/users/"+nurse+"/deactivate", admin, nil)
	b.problem(401, "GET", "/api/v1/auth/me", tok, nil)
}

// A record read may be judged by the session a server keeps in memory and
// confirmed by the counters its own query reads with the record (one round
// trip instead of two): a sign-out or a deactivation on the other server
// still refuses the very next read — of a record or of one that does not
// exist — with nothing of the record in the answer, and the read is answered
// again from the start rather than served.
func TestTwoServersRecordReadsSeeEveryChange(t *testing.T) {
	a, b, _, _ := twoServers(t)
	admin := a.admin()
	a.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	id, doc, rec := cardDoctorRead(a, b, "lijing", "李静", "周晓梅", "患者诉胸闷三天，夜间加重。")
	if b.metric("medguard_pulse_deferred_total") < 1 {
		t.Fatal("no read on b was judged by its session in memory: the path under test was not taken")
	}
	refused := func(tok string) {
		t.Helper()
		for _, path := range []string{"/api/v1/records/" + rec, "/api/v1/records/06h516zwace87efbwjz0ae4gcc"} {
			st, _, body := b.do("GET", path, tok, nil)
			if st != 401 || strings.Contains(string(body), "胸闷") {
				t.Fatalf("GET %s on b: %d %s", path, st, body)
			}
		}
	}

	// A sign-out on a.
	stale := b.metric("medguard_pulse_stale_total")
	a.do("POST", "/api/v1/auth/logout", doc, nil)
	refused(doc)
	if b.metric("medguard_pulse_stale_total") <= stale {
		t.Fatal("the read after the sign-out was not answered again")
	}

	// The doctor role taken away on a.
	doc = a.relogin("lijing", staffPassword)
	b.json(200, "GET", "/api/v1/records/"+rec, doc, nil)
	b.json(200, "GET", "/api/v1/records/"+rec, doc, nil)
	if st, _, body := a.do("DELETE", "/api/v1/users/"+id+"/roles/doctor", admin, nil); st != 204 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	if st, _, body := b.do("GET", "/api/v1/records/"+rec, doc, nil); st != 403 || strings.Contains(string(body), "胸闷") {
		t.Fatalf("read on b without the role: %d %s", st, body)
	}

	// A deactivation on a.
	b.do("GET", "/api/v1/records/"+rec, doc, nil)
	a.json(200, "POST", "/api/v1/users/"+id+"/deactivate", admin, nil)
	refused(doc)
}

// cardDoctorRead makes a doctor of CARD on a, who writes a progress note
// about a new patient there and reads it three times on b (which then keeps
// the session in memory), and returns the doctor's id, token and record.
func cardDoctorRead(a, b *server, username, name, patient, text string) (id, token, record string) {
	id = a.staff(username, name, "CARD", "doctor", staffPassword)
	token = a.token(username, staffPassword)
	p := a.json(201, "POST", "/api/v1/patients", token, map[string]any{"name": patient, "gender": "female"})
	record = a.json(201, "POST", "/api/v1/patients/"+p["id"].(string)+"/records", token, map[string]any{
		"type": "progress_note", "department": "CARD", "title": "病程记录", "text": text})["id"].(string)
	for i := 0; i < 3; i++ {
		b.json(200, "GET", "/api/v1/records/"+record, token, nil)
	}
	return id, token, record
}

// The root key rotated through one server (four eyes) is the root key of
// every server: the other keeps reading what it read before, and wraps
// the data keys it makes afterwards under the new version, never the
// retired one (each save reads the active version in its transaction).
func TestTwoServersRotateOneKey(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("needs PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	schema := storagetest.FreshSchema(t, dsn)
	skey, _, err := note.GenerateKey(rand.Reader, "hospital.example/medguard")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MEDGUARD_AUDIT_KEY": skey}
	a := startEnv(t, env, "--db", schema)
	b := startEnv(t, env, "--db", schema, "--key-file", filepath.Join(a.dir, "keys", "medguard.keys"))
	b.book = a.book
	admin := a.admin()
	a.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "XXK", "name": "信息科"})
	a.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "BAS", "name": "病案室"})
	a.staff("wanggong", "王工", "XXK", "it_engineer", staffPassword)
	a.staff("zhaomin", "赵敏", "BAS", "records_clerk", staffPassword)
	clerk := a.token("zhaomin", staffPassword)
	var before []string
	for i := 0; i < 5; i++ {
		before = append(before, b.json(201, "POST", "/api/v1/patients", clerk, map[string]any{"name": "周秀兰", "gender": "female",
			"mrn": fmt.Sprintf("MRN-B%04d", i), "address": "上海市徐汇区漕溪北路"})["id"].(string))
	}
	for _, id := range before { // b keeps their data keys in memory
		b.json(200, "GET", "/api/v1/patients/"+id, clerk, nil)
	}

	req := a.json(201, "POST", "/api/v1/approvals", a.token("wanggong", staffPassword), map[string]any{"kind": "keys.rotate",
		"payload": map[string]any{}, "reason": "年度根密钥轮换"})
	a.json(200, "POST", "/api/v1/approvals/"+req["id"].(string)+"/approve", a.security(), map[string]string{"note": "同意轮换"})
	dataArgs := []string{"--data", a.dir, "--db", schema}
	for i := 0; ; i++ {
		st := keysStatus(t, dataArgs...)
		if st.Active == 2 && !st.Rotating && len(st.Versions) == 2 && st.Versions[0].State == keys.KEKRetired {
			break
		}
		if i > 600 {
			t.Fatalf("rotation did not finish: %+v", st)
		}
		time.Sleep(50 * time.Millisecond) // polling the background job's progress, not timing it
	}
	for _, id := range before {
		if got := b.json(200, "GET", "/api/v1/patients/"+id, clerk, nil); got["name"] != "周秀兰" {
			t.Fatalf("b after the rotation: %v", got)
		}
	}
	for i := 0; i < 5; i++ {
		id := b.json(201, "POST", "/api/v1/patients", clerk, map[string]any{"name": "吴建华", "gender": "male",
			"mrn": fmt.Sprintf("MRN-A%04d", i)})["id"].(string)
		a.json(200, "GET", "/api/v1/patients/"+id, clerk, nil)
	}
	st := keysStatus(t, dataArgs...)
	if st.Versions[0].DataKeys != 0 || st.Versions[1].DataKeys != st.DataKeys {
		t.Fatalf("data keys made on b after the rotation on a: %+v", st)
	}
}

// verifyOneTree stops the servers and verifies the audit tree in schema
// against the checkpoints every one of them signed (in the database and in
// its own checkpoints.log); it returns the report and those checkpoints.
func verifyOneTree(t *testing.T, schema, skey string, servers ...*server) (*audit.VerifyReport, []audit.Checkpoint) {
	t.Helper()
	for _, s := range servers {
		s.stop()
		s.stop = nil
	}
	ctx := context.Background()
	db, err := storage.Open(ctx, schema, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var outside []audit.Checkpoint
	for _, s := range servers {
		f, err := os.Open(filepath.Join(s.dir, "checkpoints.log"))
		if err != nil {
			t.Fatal(err)
		}
		cps, err := audit.ReadCheckpointFile(f)
		f.Close()
		if err != nil || len(cps) == 0 {
			t.Fatalf("server checkpoints: %d %v", len(cps), err)
		}
		outside = append(outside, cps...)
	}
	signer, _ := audit.NewSigner(skey)
	rep, err := audit.Verify(ctx, db, audit.VerifyOptions{VerifierKey: signer.VerifierKey(), Checkpoints: outside})
	if err != nil {
		t.Fatal(err)
	}
	return rep, outside
}
