package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"

	"medguard/internal/audit"
	"medguard/internal/incidents"
)

// raw makes a request with the body as given.
func (s *incidentServer) raw(method, path, token, contentType string, body []byte) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// lastEntry is the newest audit entry.
func (s *incidentServer) lastEntry() audit.Fields {
	s.t.Helper()
	size, _, err := s.log.Head(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	st, err := s.log.Entries(context.Background(), size-1, size)
	if err != nil || len(st) != 1 {
		s.t.Fatal(err)
	}
	return st[0].Entry.Fields()
}

// TestAnonymousChannelOverHTTP: the channel's routes read no credentials
// and no request id, and every request — filed, refused, unknown — is in
// the log as anonymous, with no address.
func TestAnonymousChannelOverHTTP(t *testing.T) {
	s := startIncidentServer(t)
	doctor := s.tokens["zhangwei"]
	var rc incidents.ReportReceipt
	h := s.ok(201, &rc, "POST", "/api/v1/anonymous/reports", doctor, map[string]string{"category": "unauthorized_access",
		"text": "有同事借用他人账号查阅病历。"}, "X-Request-Id", "zhangwei-anonymous-1", "X-Forwarded-For", "10.77.66.55")
	if rc.Receipt == "" || h.Get("X-Request-Id") != "" {
		t.Fatalf("%+v %v", rc, h)
	}
	check := func(action, outcome string) {
		t.Helper()
		e := s.lastEntry()
		if e.Action != action || e.Outcome != outcome || e.Actor != "anonymous" || e.IP != "" || e.RequestID != "" || e.TargetID != "" {
			t.Errorf("%+v", e)
		}
	}
	check("anonymous_report.file", "success")
	var v incidents.ReceiptView
	s.ok(200, &v, "POST", "/api/v1/anonymous/reports/status", "", map[string]string{"receipt": rc.Receipt})
	check("anonymous_report.status", "success")
	s.ok(201, &v, "POST", "/api/v1/anonymous/reports/messages", doctor, map[string]string{"receipt": rc.Receipt, "text": "补充：在夜班。"})
	if len(v.Messages) != 2 {
		t.Fatalf("%+v", v)
	}
	// Refused before the service: logged as anonymous, still.
	st, _, _ := s.raw("POST", "/api/v1/anonymous/reports", doctor, "application/json", []byte("{"))
	if st != 400 {
		t.Fatalf("status %d", st)
	}
	check("anonymous_report.file", "invalid")
	st, hdr, _ := s.do("GET", "/api/v1/anonymous/reports", doctor, nil)
	if st != 405 || hdr.Get("Allow") == "" {
		t.Fatalf("status %d", st)
	}
	check("request.unknown_route", "not_found")
	if st, _, _ := s.do("GET", "/api/v1/anonymous/nothing", doctor, nil); st != 404 {
		t.Fatalf("status %d", st)
	}
	// The triage is the office's.
	s.problemOf(403, "GET", "/api/v1/anonymous-reports", doctor, nil)
	var list List[incidents.AnonymousReport]
	s.ok(200, &list, "GET", "/api/v1/anonymous-reports?status=new", s.tokens["wuyan"], nil)
	if len(list.Items) != 1 || list.Items[0].MessageCount != 2 {
		t.Fatalf("%+v", list)
	}
	if p := s.problemOf(422, "GET", "/api/v1/anonymous-reports?status=x", s.tokens["wuyan"], nil); p.Field != "status" {
		t.Errorf("%+v", p)
	}
}

// TestEvidenceFileOverHTTP: an evidence file goes up as multipart and
// comes back with its SHA-256 in a header.
func TestEvidenceFileOverHTTP(t *testing.T) {
	s := startIncidentServer(t)
	so := s.tokens["zhouqiang"]
	var in incidents.Incident
	s.ok(201, &in, "POST", "/api/v1/incidents", so, map[string]any{"title": "疑似勒索病毒", "description": "放射科工作站文件被加密",
		"grade": 2, "criterion": "department_affected", "type": "malware"})
	body := func(name string, content []byte) ([]byte, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		hdr := textproto.MIMEHeader{}
		hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
		hdr.Set("Content-Type", "text/plain")
		p, _ := w.CreatePart(hdr)
		p.Write(content)
		w.Close()
		return b.Bytes(), w.FormDataContentType()
	}
	content := []byte("2026-11-23 09:12 终端防护日志：检测到 .locked 扩展名批量写入。\n")
	b, ct := body("终端防护日志.txt", content)
	var f incidents.EvidenceFile
	st, _, out := s.raw("POST", "/api/v1/incidents/"+in.ID+"/files?kind=log_excerpt", so, ct, b)
	if st != 201 || json.Unmarshal(out, &f) != nil {
		t.Fatalf("%d %s", st, out)
	}
	if f.Kind != "log_excerpt" || f.Size != int64(len(content)) {
		t.Fatalf("%+v", f)
	}
	if st, _, _ := s.raw("POST", "/api/v1/incidents/"+in.ID+"/files", s.tokens["wuyan"], ct, b); st != 403 {
		t.Errorf("an auditor uploads: %d", st)
	}
	st, _, _ = s.raw("POST", "/api/v1/incidents/"+in.ID+"/files", so, "application/json", []byte(`{}`))
	if st != http.StatusUnsupportedMediaType {
		t.Errorf("a JSON body: %d", st)
	}
	st, _, _ = s.raw("POST", "/api/v1/incidents/"+in.ID+"/files?kind=video", so, ct, b)
	if st != 422 {
		t.Errorf("a bad kind: %d", st)
	}
	st, hdr, got := s.do("GET", "/api/v1/incidents/"+in.ID+"/files/"+f.ID, s.tokens["wuyan"], nil)
	if st != 200 || !bytes.Equal(got, content) || hdr.Get("X-Content-SHA256") != f.SHA256 ||
		hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("%d %v", st, hdr)
	}
	s.problemOf(403, "GET", "/api/v1/incidents/"+in.ID+"/files/"+f.ID, s.tokens["zhangwei"], nil)
}
