package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/idnum"
	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
)

// runKeys runs a "medguard keys" command in this process and returns its
// output.
func runKeys(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), append([]string{"keys"}, args...), func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("keys %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
	return out.String()
}

// The blind-index key is rotated while the server serves: "keys
// rotate-index-key" adds version 2 to the key file and re-indexes a batch,
// then stops (as an interrupted run does); the server, which started with
// version 1 only, still finds every patient by ID number, name, phone and
// 病案号 through the old index or the new one, registers new patients under
// version 2, and "keys status" and /metrics show the re-index half done.
// Run again, the command resumes, finishes, retires version 1 and deletes
// it from the key file; every patient is still found, and the audit log
// holds the rotation, the re-index runs and the retirement.
func TestIndexKeyRotationWhileServing(t *testing.T) {
	var dbArgs []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		dbArgs = []string{"--db", storagetest.FreshSchema(t, dsn)}
	}
	s := start(t, dbArgs...)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "BAS", "name": "病案室"})
	s.staff("zhaomin", "赵敏", "BAS", "records_clerk", "Bingan#Dengji2026")
	clerk := s.token("zhaomin", "Bingan#Dengji2026")
	names := []string{"王秀英", "李娜", "张伟", "欧阳娜娜", "司马光"}
	type patient struct{ id, name, idNumber, phone, mrn string }
	var ps []patient
	for i := 0; i < 12; i++ {
		idn, err := idnum.Make("440305", time.Date(1960+i, 5, 20, 0, 0, 0, 0, time.UTC), 200+i)
		if err != nil {
			t.Fatal(err)
		}
		p := patient{name: names[i%len(names)], idNumber: idn, phone: fmt.Sprintf("1380013%04d", i), mrn: fmt.Sprintf("MRN-S%04d", i)}
		got := s.json(201, "POST", "/api/v1/patients", clerk, map[string]any{"name": p.name, "gender": "unknown",
			"id_number": p.idNumber, "phone": p.phone, "mrn": p.mrn, "address": "深圳市南山区科技园"})
		p.id = got["id"].(string)
		ps = append(ps, p)
	}
	search := func(q map[string]string) []string {
		got := s.json(200, "POST", "/api/v1/patients/search", clerk, q)
		var ids []string
		for _, m := range got["items"].([]any) {
			ids = append(ids, m.(map[string]any)["id"].(string))
		}
		return ids
	}
	findsEveryone := func(when string) {
		t.Helper()
		sameName := map[string]int{}
		for _, p := range ps {
			sameName[p.name]++
		}
		for _, p := range ps {
			for _, q := range []map[string]string{{"id_number": p.idNumber}, {"phone": p.phone}, {"mrn": p.mrn}} {
				if q[firstKey(q)] == "" {
					continue
				}
				if ids := search(q); len(ids) != 1 || ids[0] != p.id {
					t.Fatalf("%s: search %v found %v, want %s", when, q, ids, p.id)
				}
			}
			if ids := search(map[string]string{"name": p.name}); len(ids) != sameName[p.name] {
				t.Fatalf("%s: search by name %s found %d, want %d", when, p.name, len(ids), sameName[p.name])
			}
		}
	}
	findsEveryone("before")
	dataArgs := append([]string{"--data", s.dir}, dbArgs...)
	if st := keysStatus(t, dataArgs...); st.IndexKey == nil || st.IndexKey.Active != 1 || st.IndexKey.Rows != 12 || st.IndexKey.Rotating {
		t.Fatalf("before: %+v", st.IndexKey)
	}

	// The first run re-indexes one batch of 5 and stops.
	out := runKeys(t, append([]string{"rotate-index-key", "--batch", "5", "--batches", "1"}, dataArgs...)...)
	if !strings.Contains(out, "index key version 2 added") || !strings.Contains(out, "7 left") {
		t.Fatalf("first run: %s", out)
	}
	st := keysStatus(t, dataArgs...).IndexKey
	if !st.Rotating || st.Active != 2 || st.Remaining != 7 || st.Rows != 12 {
		t.Fatalf("half-way: %+v", st)
	}
	findsEveryone("half-way")
	// A patient registered now is indexed under version 2 and found.
	idn, _ := idnum.Make("440305", time.Date(1999, 9, 9, 0, 0, 0, 0, time.UTC), 300)
	got := s.json(201, "POST", "/api/v1/patients", clerk, map[string]any{"name": "张伟", "gender": "unknown", "id_number": idn,
		"phone": "13900139000", "mrn": "MRN-S9999"})
	ps = append(ps, patient{id: got["id"].(string), name: "张伟", idNumber: idn, phone: "13900139000", mrn: "MRN-S9999"})
	// The same ID number as a patient still under version 1 is taken.
	s.problem(409, "POST", "/api/v1/patients", clerk, map[string]any{"name": "李四", "gender": "unknown", "id_number": ps[11].idNumber})
	findsEveryone("half-way, after a write")
	if _, _, body := s.do("GET", "/metrics", "", nil); !bytes.Contains(body, []byte("medguard_index_reindex_remaining_patients 7")) ||
		!bytes.Contains(body, []byte("medguard_index_key_active_version 2")) {
		t.Fatalf("metrics half-way:\n%s", grepLines(body, "medguard_index"))
	}
	status := runKeys(t, append([]string{"status"}, dataArgs...)...)
	if !strings.Contains(status, "re-index: 7 patients left") {
		t.Fatalf("keys status: %s", status)
	}

	// The second run resumes, finishes and retires version 1.
	out = runKeys(t, append([]string{"rotate-index-key", "--batch", "5"}, dataArgs...)...)
	if strings.Contains(out, "added") || !strings.Contains(out, "re-indexed 7 patients") ||
		!strings.Contains(out, "index key version 1 retired and deleted from the key file") {
		t.Fatalf("second run: %s", out)
	}
	st = keysStatus(t, dataArgs...).IndexKey
	if st.Rotating || st.Active != 2 || st.Rows != 13 || st.Versions[0].State != keys.IndexKeyRetired || st.Versions[0].InKeyFile ||
		st.Versions[1].Rows != 13 {
		t.Fatalf("after: %+v", st)
	}
	kf, err := keys.LoadKeyFile(filepath.Join(s.dir, "keys", "medguard.keys"))
	if err != nil {
		t.Fatal(err)
	}
	if vs := kf.IndexKeyVersions(); len(vs) != 1 || vs[0].Version != 2 {
		t.Fatalf("key file index keys: %+v", vs)
	}
	findsEveryone("after")
	if _, _, body := s.do("GET", "/metrics", "", nil); !bytes.Contains(body, []byte("medguard_index_reindex_remaining_patients 0")) {
		t.Fatalf("metrics after:\n%s", grepLines(body, "medguard_index"))
	}

	var exp, errb bytes.Buffer
	if err := cli.Run(context.Background(), append([]string{"audit", "export"}, dataArgs...), func(string) string { return "" }, &exp, &errb); err != nil {
		t.Fatalf("audit export: %v %s", err, errb.String())
	}
	for _, want := range []string{`"action":"keys.index_rotate"`, `"target_id":"index-key-v2"`, `"action":"keys.reindex"`,
		`"outcome":"stopped"`, `"outcome":"finished"`, `"action":"keys.index_key_retire"`, `"target_id":"index-key-v1"`} {
		if !strings.Contains(exp.String(), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	// No identifying value reached the audit log.
	for _, p := range ps {
		if strings.Contains(exp.String(), p.idNumber) || strings.Contains(exp.String(), p.phone) {
			t.Fatalf("audit log holds a patient's ID number or phone")
		}
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
