package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
)

// keysStatus runs "medguard keys status --json" against a data directory
// (while a server may be running on it).
func keysStatus(t *testing.T, args ...string) keys.KEKStatus {
	t.Helper()
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), append([]string{"keys", "status", "--json"}, args...), func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("keys status: %v\n%s", err, errb.String())
	}
	var st keys.KEKStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	return st
}

// The root key is rotated with four eyes while the server serves: an IT
// engineer asks, cannot approve it alone, a security officer approves; the
// server rewraps every data key in the background while patients are read
// and registered, old data stays readable throughout, the old KEK version
// is retired when nothing uses it, and every step is in the audit log.
func TestKeyRotationWhileServing(t *testing.T) {
	var dbArgs []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		dbArgs = []string{"--db", storagetest.FreshSchema(t, dsn)}
	}
	s := start(t, dbArgs...)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "XXK", "name": "信息科"})
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "BAS", "name": "病案室"})
	s.staff("wanggong", "王工", "XXK", "it_engineer", "Xinxike#Lunhuan2026")
	s.staff("zhaomin", "赵敏", "BAS", "records_clerk", "Bingan#Dengji2026")
	it := s.token("wanggong", "Xinxike#Lunhuan2026")
	clerk := s.token("zhaomin", "Bingan#Dengji2026")
	names := []string{"王秀英", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄丽", "周杰", "吴芳"}
	var ids []string
	for i := 0; i < 40; i++ {
		p := s.json(201, "POST", "/api/v1/patients", clerk, map[string]any{"name": names[i%len(names)], "gender": "female",
			"birth_date": "1980-03-12", "mrn": fmt.Sprintf("MRN-K%04d", i), "address": "北京市朝阳区建国路88号"})
		ids = append(ids, p["id"].(string))
	}
	dataArgs := append([]string{"--data", s.dir}, dbArgs...)
	before := keysStatus(t, dataArgs...)
	if before.Active != 1 || before.Rotating || before.Source != keys.SourceFile {
		t.Fatalf("before: %+v", before)
	}

	// Readers and writers go on all through the rotation.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, writes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st, _, body := s.do("GET", "/api/v1/patients/"+ids[i%len(ids)], clerk, nil)
			if st != 200 || !strings.Contains(string(body), names[i%len(ids)%len(names)]) {
				t.Errorf("read during rotation: %d %s", st, body)
				return
			}
			reads++
			if i%5 == 0 {
				if st, _, body := s.do("POST", "/api/v1/patients", clerk, map[string]any{"name": "孙丽娟", "gender": "female",
					"birth_date": "1991-07-01", "mrn": fmt.Sprintf("MRN-R%05d", i)}); st != 201 {
					t.Errorf("write during rotation: %d %s", st, body)
					return
				}
				writes++
			}
		}
	}()

	req := s.json(201, "POST", "/api/v1/approvals", it, map[string]any{"kind": "keys.rotate", "payload": map[string]any{},
		"reason": "年度根密钥轮换"})
	id := req["id"].(string)
	if req["status"] != "pending" {
		t.Fatalf("request %v", req)
	}
	s.problem(403, "POST", "/api/v1/approvals/"+id+"/approve", it, map[string]string{"note": "自己批准"})
	s.problem(403, "POST", "/api/v1/approvals", clerk, map[string]any{"kind": "keys.rotate", "payload": map[string]any{}, "reason": "越权"})
	if st := keysStatus(t, dataArgs...); st.Active != 1 {
		t.Fatalf("rotated before approval: %+v", st)
	}
	s.json(200, "POST", "/api/v1/approvals/"+id+"/approve", s.security(), map[string]string{"note": "同意轮换"})

	var st keys.KEKStatus
	for i := 0; ; i++ {
		st = keysStatus(t, dataArgs...)
		if st.Active == 2 && !st.Rotating && len(st.Versions) == 2 && st.Versions[0].State == keys.KEKRetired {
			break
		}
		if i > 600 {
			t.Fatalf("rotation did not finish: %+v\n%s", st, s.logs)
		}
		time.Sleep(50 * time.Millisecond) // polling the background job's progress, not timing it
	}
	close(stop)
	wg.Wait()
	if reads == 0 {
		t.Fatal("no reads during the rotation")
	}
	if st.Versions[1].ApprovalID != id || st.Versions[0].DataKeys != 0 || st.Versions[1].DataKeys != st.DataKeys {
		t.Fatalf("after: %+v", st)
	}
	for i, pid := range ids {
		if got := s.json(200, "GET", "/api/v1/patients/"+pid, clerk, nil); got["name"] != names[i%len(names)] {
			t.Fatalf("after rotation %s: %v", pid, got)
		}
	}
	// The status is in the API for the IT engineer and the security
	// officer, not for the clerk.
	for _, tok := range []string{it, s.security()} {
		got := s.json(200, "GET", "/api/v1/keys", tok, nil)
		if got["active_version"] != float64(2) || got["rotating"] != false || got["source"] != "file" {
			t.Fatalf("GET /api/v1/keys: %v", got)
		}
	}
	s.problem(403, "GET", "/api/v1/keys", clerk, nil)
	// The audit log holds the request, the approval, the run, the rewrap
	// and the retirement.
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), append([]string{"audit", "export"}, dataArgs...), func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("audit export: %v %s", err, errb.String())
	}
	for _, want := range []string{`"action":"keys.rotate"`, `"action":"keys.rewrap"`, `"outcome":"finished"`, `"action":"keys.kek_retire"`, `"target_id":"kek-v1"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	// A second rotation cannot run over an unfinished one, but may follow it.
	s.json(201, "POST", "/api/v1/approvals", it, map[string]any{"kind": "keys.rotate", "payload": map[string]any{}, "reason": "再次轮换"})
}

// keysChildEnv makes the test binary run "medguard keys rotate" as a child.
const keysChildEnv = "MEDGUARD_KEYS_CHILD_ARGS"

// TestKeysChild is not a test: it is the process TestKeyRotationSurvivesKill kills.
func TestKeysChild(t *testing.T) {
	raw := os.Getenv(keysChildEnv)
	if raw == "" {
		t.Skip("run by TestKeyRotationSurvivesKill")
	}
	var args []string
	json.Unmarshal([]byte(raw), &args)
	if err := cli.Run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// kill -9 during a rotation: nothing half-made is kept (each batch is one
// transaction), the next run finishes, and every data key opens.
func TestKeyRotationSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	var dbArgs []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		dbArgs = []string{"--db", storagetest.FreshSchema(t, dsn)}
	}
	ctx := context.Background()
	cfg := cli.Config{DataDir: dir}
	if len(dbArgs) > 0 {
		cfg.DB = dbArgs[1]
	}
	app, err := cli.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000
	var sealedNames [][]byte
	for i := 0; i < n; i += 500 {
		var args []any
		for j := i; j < i+500; j++ {
			k, err := app.Keys.NewDataKey(fmt.Sprintf("patient:kill%06d", j))
			if err != nil {
				t.Fatal(err)
			}
			if j%1000 == 0 {
				sealedNames = append(sealedNames, k.SealString(keys.Location{Table: "patients", Row: k.Owner, Column: "name"}, "王秀英"))
			}
			args = append(args, k.Owner, 1, "SM4-GCM", 1, k.Wrapped(), 0)
		}
		if _, err := app.DB.ExecContext(ctx, `INSERT INTO data_keys (owner, version, algorithm, kek_version, wrapped, created_at) VALUES `+
			app.DB.Placeholders(6, 500), args...); err != nil {
			t.Fatal(err)
		}
	}
	_, activate, err := app.Keys.NewKEKVersion(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.DB.InTx(ctx, func(tx *sql.Tx) error { return activate(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	app.Close()

	argv, _ := json.Marshal(append([]string{"keys", "rotate", "--data", dir, "--batch", "500"}, dbArgs...))
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeysChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), keysChildEnv+"="+string(argv))
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		var done, total int
		if _, err := fmt.Sscanf(sc.Text(), "rewrapped %d of %d", &done, &total); err == nil && done >= 2000 {
			cmd.Process.Kill() // SIGKILL, in the middle of the rotation
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the child finished before it could be killed:\n%s", stderr.String())
	}
	mid := keysStatus(t, append([]string{"--data", dir}, dbArgs...)...)
	if !mid.Rotating || mid.Remaining <= 0 || mid.Remaining >= n || mid.Active != 2 {
		t.Fatalf("after the kill: %+v", mid)
	}
	var out, errb bytes.Buffer
	if err := cli.Run(ctx, append([]string{"keys", "rotate", "--data", dir}, dbArgs...), func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("rewrapped %d data keys", mid.Remaining)) {
		t.Fatalf("resume said: %s", out.String())
	}
	st := keysStatus(t, append([]string{"--data", dir}, dbArgs...)...)
	// Every data key (the test's, and medguard's own system keys made at
	// start) is under the new version.
	if st.Rotating || st.Versions[0].State != keys.KEKRetired || st.Versions[1].DataKeys != st.DataKeys || st.DataKeys < n {
		t.Fatalf("after resume: %+v", st)
	}
	app, err = cli.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for i, ct := range sealedNames {
		owner := fmt.Sprintf("patient:kill%06d", i*1000)
		if got, err := app.Keys.OpenString(ctx, owner, keys.Location{Table: "patients", Row: owner, Column: "name"}, ct); err != nil || got != "王秀英" {
			t.Fatalf("%s: %q %v", owner, got, err)
		}
	}
	var verr bytes.Buffer
	if err := cli.Run(ctx, append([]string{"audit", "verify", "--data", dir}, dbArgs...), func(string) string { return "" }, &bytes.Buffer{}, &verr); err != nil {
		t.Fatalf("audit verify: %v %s", err, verr.String())
	}
}
