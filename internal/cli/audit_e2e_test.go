package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"medguard/internal/cli"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// auditor checks what the server says with public libraries only, as an
// outside auditor would: x/mod/sumdb/note and transparency-dev/merkle.
type auditor struct {
	t        *testing.T
	verifier note.Verifier
}

type signedHead struct {
	size uint64
	root []byte
	note []byte
}

func (a *auditor) open(msg []byte) signedHead {
	a.t.Helper()
	n, err := note.Open(msg, note.VerifierList(a.verifier))
	if err != nil {
		a.t.Fatalf("checkpoint does not verify: %v\n%s", err, msg)
	}
	lines := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseUint(lines[1], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(lines[2])
	return signedHead{size: size, root: root, note: msg}
}

func TestAuditorVerifiesTheLogWithPublicTools(t *testing.T) {
	s := start(t, "--checkpoint-every", "50ms")
	admin := s.admin()

	_, h, _ := s.do("POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"},
		"X-Request-Id", "e2e-dept-create")
	myIndex, err := strconv.ParseUint(h.Get("X-Audit-Index"), 10, 64)
	if err != nil {
		t.Fatalf("no X-Audit-Index: %v", h)
	}
	// The verifier key and a checkpoint that covers the request just answered.
	_, _, vkey := s.do("GET", "/api/v1/audit/verifier-key", admin, nil)
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatalf("verifier key %q: %v", vkey, err)
	}
	a := &auditor{t: t, verifier: v}
	st, _, msg := s.do("GET", "/api/v1/audit/checkpoint", admin, nil)
	if st != 200 {
		t.Fatalf("checkpoint: %d %s", st, msg)
	}
	cp1 := a.open(msg)
	if cp1.size <= myIndex {
		t.Fatalf("checkpoint of size %d does not cover entry %d", cp1.size, myIndex)
	}

	// The entries: recompute the root from the leaves.
	leaves := entriesUpTo(t, s, admin, cp1.size)
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil)
	}
	if root, _ := r.GetRootHash(nil); !bytes.Equal(root, cp1.root) {
		t.Fatal("the root recomputed from the exported leaves does not match the checkpoint")
	}
	var mine map[string]any
	json.Unmarshal(leaves[myIndex], &mine)
	if mine["request_id"] != "e2e-dept-create" || mine["action"] != "department.create" {
		t.Fatalf("entry %d is %s", myIndex, leaves[myIndex])
	}

	// An inclusion proof of my own entry.
	var incl struct{ Hashes [][]byte }
	if err := json.Unmarshal(s.body(200, "GET", "/api/v1/audit/proof/inclusion?index="+strconv.FormatUint(myIndex, 10)+
		"&size="+strconv.FormatUint(cp1.size, 10), admin), &incl); err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, myIndex, cp1.size, rfc6962.DefaultHasher.HashLeaf(leaves[myIndex]), incl.Hashes, cp1.root); err != nil {
		t.Fatalf("inclusion proof: %v", err)
	}

	// The log grows; a later checkpoint is consistent with the earlier one.
	for i := 0; i < 5; i++ {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "D" + strconv.Itoa(i), "name": "科室" + strconv.Itoa(i)})
	}
	_, _, msg = s.do("GET", "/api/v1/audit/checkpoint", admin, nil)
	cp2 := a.open(msg)
	var cons struct{ Hashes [][]byte }
	json.Unmarshal(s.body(200, "GET", "/api/v1/audit/proof/consistency?old="+strconv.FormatUint(cp1.size, 10)+
		"&new="+strconv.FormatUint(cp2.size, 10), admin), &cons)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp1.size, cp2.size, cons.Hashes, cp1.root, cp2.root); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}
	// Bad proof parameters are the client's error, named.
	if p := s.problem(422, "GET", "/api/v1/audit/proof/inclusion?index=5", admin, nil); p["field"] != "size" {
		t.Fatalf("%v", p)
	}
	if p := s.problem(422, "GET", "/api/v1/audit/proof/consistency?old=9&new=3", admin, nil); p["field"] != "old" {
		t.Fatalf("%v", p)
	}
	// Proofs and checkpoints need audit.read.
	s.staff("lina", "李娜", "CARD", "doctor", "Yiyuan#Ceshi2026")
	lina, _ := s.enrol("lina", "Yiyuan#Ceshi2026")
	s.problem(403, "GET", "/api/v1/audit/checkpoint", lina, nil)

	// Stopped, the log verifies offline, against the checkpoints inside
	// and outside the database and the one the auditor kept.
	s.stop()
	s.stop = nil
	kept := filepath.Join(t.TempDir(), "kept-checkpoint")
	os.WriteFile(kept, cp2.note, 0o600)
	args := []string{"audit", "verify", "--data", s.dir, "--checkpoint", kept}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		t.Skip("the offline checks below read the SQLite file; PostgreSQL is covered by the audit package's tests")
	}
	var out bytes.Buffer
	if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "audit log intact") {
		t.Fatalf("%s", out.String())
	}

	// The export verifies with the stand-alone public tool.
	exported := filepath.Join(t.TempDir(), "entries.jsonl")
	cpFile := filepath.Join(t.TempDir(), "checkpoint")
	out.Reset()
	if err := cli.Run(context.Background(), []string{"audit", "export", "--data", s.dir, "--out", exported, "--checkpoint-out", cpFile},
		func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("export: %v\n%s", err, out.String())
	}
	out.Reset()
	cli.Run(context.Background(), []string{"audit", "key", "--data", s.dir}, func(string) string { return "" }, &out, &out)
	tool := exec.Command("go", "run", "medguard/tools/auditcheck", "-key", strings.TrimSpace(out.String()),
		"-checkpoint", cpFile, "-entries", exported)
	if res, err := tool.CombinedOutput(); err != nil || !bytes.Contains(res, []byte("matches the checkpoint")) {
		t.Fatalf("auditcheck: %v\n%s", err, res)
	}

	// The search index changed in the database, so that searches for the
	// admin's actions would miss the entry: caught, and named.
	indexTamper := func(actor string) {
		t.Helper()
		db, err := storage.Open(context.Background(), "", s.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// (as someone with the database's owner rights could)
		db.ExecContext(context.Background(), `DROP TRIGGER IF EXISTS audit_index_no_update`)
		res, err := db.ExecContext(context.Background(), `UPDATE audit_index SET actor = $1 WHERE idx = $2`, actor, int64(myIndex))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("index row %d: %d rows", myIndex, n)
		}
	}
	indexTamper("nobody")
	out.Reset()
	err = cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out)
	var ee *cli.ExitError
	if !errors.As(err, &ee) || ee.Code != cli.ExitTampered || !strings.Contains(out.String(), "search index") ||
		!strings.Contains(out.String(), "first bad index: "+strconv.FormatUint(myIndex, 10)) {
		t.Fatalf("tampered search index: %v\n%s", err, out.String())
	}
	indexTamper("admin")
	out.Reset()
	if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("restored search index: %v\n%s", err, out.String())
	}

	// One byte changed directly in the database file: caught, and named.
	dbFile := filepath.Join(s.dir, "medguard.db")
	raw, _ := os.ReadFile(dbFile)
	at := bytes.Index(raw, []byte("e2e-dept-create"))
	if at < 0 {
		t.Fatal("the entry's bytes are not in the database file")
	}
	raw[at] ^= 0x20
	os.WriteFile(dbFile, raw, 0o600)
	out.Reset()
	err = cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out)
	if !errors.As(err, &ee) || ee.Code != cli.ExitTampered ||
		!strings.Contains(out.String(), "first bad index: "+strconv.FormatUint(myIndex, 10)) {
		t.Fatalf("tampered log: %v\n%s", err, out.String())
	}
}

// entriesUpTo reads entries [0, size) through the API.
func entriesUpTo(t *testing.T, s *server, token string, size uint64) [][]byte {
	t.Helper()
	var leaves [][]byte
	for uint64(len(leaves)) < size {
		body := s.body(200, "GET", "/api/v1/audit/entries?start="+strconv.Itoa(len(leaves))+"&end="+strconv.FormatUint(size, 10), token)
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			var e struct {
				Index uint64 `json:"index"`
				Leaf  []byte `json:"leaf"`
			}
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatal(err)
			}
			if e.Index != uint64(len(leaves)) {
				t.Fatalf("entry %d missing", len(leaves))
			}
			leaves = append(leaves, e.Leaf)
		}
	}
	return leaves
}

// body makes a request that must answer want and returns the body.
func (s *server) body(want int, method, path, token string) []byte {
	s.t.Helper()
	st, _, out := s.do(method, path, token, nil)
	if st != want {
		s.t.Fatalf("%s %s: %d %s", method, path, st, out)
	}
	return out
}
