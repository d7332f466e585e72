package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
)

// Issue 4's story, as a new user would try it: a doctor reading 70
// patients' records in a burst is stopped by read 51 (the default
// threshold), gets 423 everywhere including sign-in, an alert names them, a
// security officer releases the account with a reason, and all of it is in
// the audit log; replaying the log raises exactly the live alerts.
func TestBulkReaderIsFrozenAndReleased(t *testing.T) {
	dbArgs := []string{}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		dbArgs = []string{"--db", storagetest.FreshSchema(t, dsn)}
	}
	s := start(t, dbArgs...)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	docID := s.staff("zhangwei", "张建国", "CARD", "doctor", "Yiyuan#Ceshi2026")
	doc := map[string]any{"id": docID}
	s.staff("liuyang", "刘洋", "CARD", "dept_head", "Yiyuan#Ceshi2026")
	s.staff("zhouqiang", "周强", "", "security_officer", "Anquan#Zhuanyuan26")
	officer := s.token("zhouqiang", "Anquan#Zhuanyuan26")
	head := s.token("liuyang", "Yiyuan#Ceshi2026")

	zhang := s.token("zhangwei", "Yiyuan#Ceshi2026")
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	var recs []string
	for i := 0; i < 70; i++ {
		p := s.json(201, "POST", "/api/v1/patients", zhang, map[string]any{"name": string(surnames[i%len(surnames)]) + "秀英",
			"address": fmt.Sprintf("北京市朝阳区建国路%d号", i+1)})
		r := s.json(201, "POST", "/api/v1/patients/"+p["id"].(string)+"/records", zhang, map[string]any{"type": "progress_note",
			"department": "CARD", "title": "病程记录", "text": "患者胸闷好转，继续观察。", "classification": "general"})
		recs = append(recs, r["id"].(string))
	}
	stoppedAt := 0
	for i, id := range recs {
		st, _, body := s.do("GET", "/api/v1/records/"+id, zhang, nil, "X-Purpose-Of-Use", "treatment")
		if st == 423 {
			stoppedAt = i + 1
			if !bytes.Contains(body, []byte("urn:medguard:problem:")) || !bytes.Contains(body, []byte("frozen")) {
				t.Fatalf("423 body: %s", body)
			}
			break
		}
		if st != 200 {
			t.Fatalf("read %d: %d %s", i+1, st, body)
		}
	}
	if stoppedAt != 51 { // reads 1-50 answered; the 51st patient is one too many
		t.Fatalf("70 patients read, stopped at %d", stoppedAt)
	}
	// Frozen everywhere: the next read, any request, sign-in with the right
	// password (a wrong one is still 401: a freeze reveals nothing).
	s.problem(423, "GET", "/api/v1/records/"+recs[0], zhang, nil, "X-Purpose-Of-Use", "treatment")
	s.problem(423, "GET", "/api/v1/auth/me", zhang, nil)
	s.problem(423, "POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": "Yiyuan#Ceshi2026"})
	s.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": "Cuowu#Mima2026"})

	// The security officer sees the alert that names the doctor.
	alerts := s.json(200, "GET", "/api/v1/alerts?status=new", officer, nil)["items"].([]any)
	var alert map[string]any
	for _, a := range alerts {
		if a := a.(map[string]any); a["rule"] == "bulk_read_user" {
			alert = a
		}
	}
	if alert == nil || alert["username"] != "zhangwei" || alert["frozen"] != true || alert["count"].(float64) != 51 {
		t.Fatalf("alerts %v", alerts)
	}
	// The freeze opened a grade-2 incident, with its deadlines.
	incs := s.json(200, "GET", "/api/v1/incidents", officer, nil)["items"].([]any)
	if len(incs) != 1 {
		t.Fatalf("incidents %v", incs)
	}
	inc := incs[0].(map[string]any)
	if inc["grade"].(float64) != 2 || len(inc["deadlines"].([]any)) == 0 || alert["incident_id"] != inc["id"] {
		t.Fatalf("incident %v, alert %v", inc, alert)
	}
	// A doctor may not see alerts or release anyone.
	s.problem(403, "GET", "/api/v1/alerts", head, nil)
	p := s.problem(422, "POST", "/api/v1/users/"+doc["id"].(string)+"/release", officer, map[string]string{"reason": " "})
	if p["field"] != "reason" {
		t.Fatalf("release without reason: %v", p)
	}
	if p := s.problem(422, "POST", "/api/v1/users/"+doc["id"].(string)+"/release", officer, map[string]string{"reason": "已核实\u0007"}); p["field"] != "reason" {
		t.Fatalf("release with a control character in its reason: %v", p)
	}
	s.json(200, "POST", "/api/v1/users/"+doc["id"].(string)+"/release", officer, map[string]string{"reason": "经核实为病案质控抽查，已与科室主任确认"})
	s.problem(409, "POST", "/api/v1/users/"+doc["id"].(string)+"/release", officer, map[string]string{"reason": "再次解除"})
	s.json(200, "POST", "/api/v1/alerts/"+alert["id"].(string)+"/acknowledge", officer, nil)
	s.problem(409, "POST", "/api/v1/alerts/"+alert["id"].(string)+"/acknowledge", officer, nil)

	// Released: the doctor signs in again and works.
	zhang = s.relogin("zhangwei", "Yiyuan#Ceshi2026")
	s.json(200, "GET", "/api/v1/records/"+recs[0], zhang, nil, "X-Purpose-Of-Use", "treatment")

	// All of it is in the audit log. (Other rules may raise alerts of
	// their own on the way — reads at night or at the weekend are off
	// hours —: the bulk reader's alert is counted by its rule.)
	for _, action := range []string{"alert.raise", "account.freeze", "account.release", "alert.acknowledged"} {
		items := s.json(200, "GET", "/api/v1/audit/search?action="+action, officer, nil)["items"].([]any)
		ok := 0
		for _, it := range items {
			e := it.(map[string]any)["entry"].(map[string]any)
			if e["outcome"] == "success" && (action != "alert.raise" || e["rule"] == "detect.bulk_read_user") {
				ok++
			}
		}
		if ok != 1 {
			t.Fatalf("%s: %d successful entries of %d: %v", action, ok, len(items), items)
		}
	}

	// Replaying the log raises exactly what the live path raised.
	var out, errOut bytes.Buffer
	if err := cli.Run(context.Background(), append([]string{"detect", "replay", "--data", s.dir}, dbArgs...),
		func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	var replayed []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var f struct {
			Rule      string `json:"rule"`
			Username  string `json:"username"`
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(sc.Bytes(), &f)
		replayed = append(replayed, f.Rule+"/"+f.Username+"/"+f.RequestID)
	}
	var live []string
	for _, a := range s.json(200, "GET", "/api/v1/alerts", officer, nil)["items"].([]any) {
		a := a.(map[string]any)
		live = append([]string{a["rule"].(string) + "/" + a["username"].(string) + "/" + a["request_id"].(string)}, live...)
	}
	if strings.Join(replayed, "\n") != strings.Join(live, "\n") || len(live) == 0 {
		t.Fatalf("replay:\n%s\nlive:\n%s", strings.Join(replayed, "\n"), strings.Join(live, "\n"))
	}
}

// With two servers on one PostgreSQL database, a freeze decided by one is
// in force on the other at the next request, sign-in included.
func TestFreezeHoldsOnEveryServer(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("needs PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	schema := storagetest.FreshSchema(t, dsn)
	env := map[string]string{"MEDGUARD_KEYS": string(keys.NewKeyFile(keys.SM4GCM, time.Now()).Marshal())}
	a := startEnv(t, env, "--db", schema)
	b := startEnv(t, env, "--db", schema)
	b.book = a.book
	admin := a.admin()
	a.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	a.staff("zhangwei", "张建国", "CARD", "doctor", "Yiyuan#Ceshi2026")
	onA := a.token("zhangwei", "Yiyuan#Ceshi2026")
	onB := b.login("zhangwei", "Yiyuan#Ceshi2026", b.code("zhangwei"))["token"].(string)
	var recs []string
	for i := 0; i < 52; i++ {
		p := a.json(201, "POST", "/api/v1/patients", onA, map[string]any{"name": "李秀兰" + strconv.Itoa(i)})
		r := a.json(201, "POST", "/api/v1/patients/"+p["id"].(string)+"/records", onA, map[string]any{"type": "progress_note",
			"department": "CARD", "title": "病程记录", "text": "夜间平稳。", "classification": "general"})
		recs = append(recs, r["id"].(string))
	}
	b.json(200, "GET", "/api/v1/records/"+recs[0], onB, nil, "X-Purpose-Of-Use", "treatment")
	for i, id := range recs {
		st, _, body := a.do("GET", "/api/v1/records/"+id, onA, nil, "X-Purpose-Of-Use", "treatment")
		if st == 423 {
			break
		}
		if st != 200 || i == len(recs)-1 {
			t.Fatalf("read %d: %d %s", i+1, st, body)
		}
	}
	b.problem(423, "GET", "/api/v1/records/"+recs[0], onB, nil, "X-Purpose-Of-Use", "treatment")
	b.problem(423, "POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": "Yiyuan#Ceshi2026"})
}
