package cli_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// The daily inspection and the removable media register over HTTPS (issue
// 13): an IT engineer who is also a security officer signs today's
// inspection — the archive room at 25.3 °C, out of its 22 ± 2 °C — the
// server's load and free space read by medguard itself, the backups (no
// schedule on this server) checked by hand; the reading raises an alert
// the security office sees, in the API and the console; the inspector may
// not countersign his own inspection (refused and logged), another
// security officer does, once; the history, the weekly summary (CSV too)
// and the inspection show it. A USB drive is lent by an IT engineer and
// signed for by the records clerk herself — nobody else may sign for her.
func TestInspectionsOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin, security := s.admin(), s.security()
	for _, d := range [][2]string{{"ITD", "信息科"}, {"MRD", "病案室"}, {"CARD", "心内科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"wufang", "吴芳", "ITD", "it_engineer"}, {"chenjing", "陈静", "ITD", "it_engineer"},
		{"zhouqiang", "周强", "ITD", "security_officer"}, {"zhaomin", "赵敏", "MRD", "records_clerk"}, {"zhangwei", "张建国", "CARD", "doctor"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	// 吴芳 also becomes a security officer (the administrator asks, the
	// security administrator approves).
	ask := s.json(202, "POST", "/api/v1/users/"+ids["wufang"]+"/roles", admin, map[string]string{"role": "security_officer", "reason": "兼任信息安全专员"})
	s.approve(security, ask["approval"].(map[string]any)["id"].(string))
	wufang, officer := s.token("wufang", staffPassword), s.token("zhouqiang", staffPassword)
	clerk, doctor, it := s.token("zhaomin", staffPassword), s.token("zhangwei", staffPassword), s.token("chenjing", staffPassword)

	// Today's form: the ranges, medguard's own readings.
	today := s.json(200, "GET", "/api/v1/inspections/today", wufang, nil)
	if today["status"] != "due" || today["template"].(map[string]any)["version"] != float64(1) {
		t.Fatalf("today %v", today)
	}
	sources := map[string]string{}
	for _, r := range today["system"].([]any) {
		m := r.(map[string]any)
		sources[m["key"].(string)] = m["source"].(string)
	}
	if sources["server_load"] != "system" || sources["free_space"] != "system" || sources["backup_status"] != "inspector" {
		t.Fatalf("medguard's own readings: %v", sources)
	}
	reading := func(key string, v any) map[string]any {
		if b, ok := v.(bool); ok {
			return map[string]any{"key": key, "ok": b}
		}
		return map[string]any{"key": key, "value": v}
	}
	body := map[string]any{"note": "上午巡查病案库房与机房", "readings": []any{
		map[string]any{"key": "room_temperature", "value": 25.3, "note": "空调制冷不足，已报修"}, reading("room_humidity", 52),
		reading("fire_devices", true), reading("anti_theft_devices", true), reading("access_devices", true), reading("storage_devices", true),
		map[string]any{"key": "backup_status", "ok": true, "note": "核对了数据库管理员的备份记录"}}}
	rule(t, s.problem(403, "POST", "/api/v1/inspections", doctor, body), "deny.no_permission")
	short := map[string]any{"readings": body["readings"].([]any)[1:]}
	if e := s.problem(422, "POST", "/api/v1/inspections", wufang, short); e["field"] != "readings.room_temperature" {
		t.Fatalf("the temperature left out: %v", e)
	}
	ins := s.json(201, "POST", "/api/v1/inspections", wufang, body)
	id, day := ins["id"].(string), ins["day"].(string)
	if ins["status"] != "awaiting_review" || ins["inspector"] != "wufang" {
		t.Fatalf("recorded %v", ins)
	}
	for _, r := range ins["readings"].([]any) {
		m := r.(map[string]any)
		switch m["key"] {
		case "room_temperature":
			if m["out_of_range"] != true || m["min"] != float64(20) || m["max"] != float64(24) || m["source"] != "inspector" {
				t.Errorf("the temperature: %v", m)
			}
		case "room_humidity", "backup_status":
			if m["out_of_range"] != false {
				t.Errorf("%v out of range", m)
			}
		case "server_load", "free_space":
			if m["source"] != "system" || m["value"] == nil {
				t.Errorf("medguard's reading: %v", m)
			}
		}
	}
	if e := s.problem(409, "POST", "/api/v1/inspections", it, body); e["code"] != "inspected_already" {
		t.Fatalf("a second inspection today: %v", e)
	}

	// The alert.
	alerts := s.json(200, "GET", "/api/v1/alerts?rule=inspection_out_of_range", officer, nil)["items"].([]any)
	found := false
	for _, a := range alerts {
		m := a.(map[string]any)
		found = found || m["key"] == "room_temperature" && m["status"] == "new" && strings.Contains(m["explanation"].(string), "25.3 °C (range 20–24 °C)")
	}
	if !found {
		t.Fatalf("no alert of the temperature: %v", alerts)
	}
	st, _, page := s.consolePage("/alerts?rule=inspection_out_of_range", officer, "zh-CN")
	if st != 200 || !strings.Contains(page, "巡查读数超出范围") || !strings.Contains(page, "读数 25.3 °C，超出正常范围 20–24 °C") {
		t.Fatalf("the alert in the console: %d %s", st, page)
	}

	// Two signatures, two people.
	rule(t, s.problem(403, "POST", "/api/v1/inspections/"+id+"/review", wufang, map[string]string{"note": "自己复核"}), "deny.same_signatory")
	rule(t, s.problem(403, "POST", "/api/v1/inspections/"+id+"/review", it, map[string]string{}), "deny.no_permission")
	signed := s.json(200, "POST", "/api/v1/inspections/"+id+"/review", officer, map[string]string{"note": "已通知后勤维修空调"})
	if signed["status"] != "signed" || signed["reviewer"] != "zhouqiang" || signed["reviewed_at"] == nil {
		t.Fatalf("countersigned %v", signed)
	}
	if e := s.problem(409, "POST", "/api/v1/inspections/"+id+"/review", security, map[string]string{}); e["code"] != "signed_already" {
		t.Fatalf("a second countersignature: %v", e)
	}
	refused := s.json(200, "GET", "/api/v1/audit/search?"+url.Values{"actor": {"wufang"}, "action": {"inspection.review"}}.Encode(), security, nil)["items"].([]any)
	if len(refused) != 1 || refused[0].(map[string]any)["entry"].(map[string]any)["rule"] != "deny.same_signatory" {
		t.Fatalf("the refused countersignature in the log: %v", refused)
	}

	// The record, the history, the weekly summary.
	got := s.json(200, "GET", "/api/v1/inspections/"+id, clerk, nil)
	if got["review_note"] != "已通知后勤维修空调" || got["note"] != "上午巡查病案库房与机房" || got["out_of_range"].(float64) < 1 {
		t.Fatalf("read back %v", got)
	}
	days := s.json(200, "GET", "/api/v1/inspections?from="+day+"&to="+day, clerk, nil)["items"].([]any)
	if len(days) != 1 || days[0].(map[string]any)["status"] != "signed" {
		t.Fatalf("the day %v", days)
	}
	weeks := s.json(200, "GET", "/api/v1/inspections/weeks?from="+day+"&to="+day, officer, nil)["items"].([]any)
	if w := weeks[0].(map[string]any); len(weeks) != 1 || w["inspected"] != float64(1) || w["unsigned"] != float64(0) || w["out_of_range"].(float64) < 1 {
		t.Fatalf("the week %v", weeks)
	}
	status, header, csv := s.do("GET", "/api/v1/inspections/weeks?format=csv&from="+day+"&to="+day, officer, nil)
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/csv") || !strings.Contains(string(csv), "week,from,to,days,inspected,missed,out_of_range,unsigned") {
		t.Fatalf("the weekly CSV: %d %s", status, csv)
	}
	st, _, page = s.consolePage("/inspections/"+id, officer, "zh-CN")
	if st != 200 || !strings.Contains(page, "已复核签字") || !strings.Contains(page, "25.3 °C") || !strings.Contains(page, "已通知后勤维修空调") {
		t.Fatalf("the inspection in the console: %d %s", st, page)
	}

	// A USB drive: the lender's signature, then the borrower's own.
	dev := s.json(201, "POST", "/api/v1/media", it, map[string]any{"label": "YD-2026-007", "kind": "usb_drive", "model": "金士顿 IronKey D500S",
		"serial": "IK500S-88231", "capacity_gb": 64, "encrypted": true, "encryption": "硬件 AES-256"})
	due := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	rule(t, s.problem(403, "POST", "/api/v1/media/"+dev["id"].(string)+"/loans", it, map[string]string{"borrower": "chenjing",
		"purpose": "自借", "due_at": due}), "deny.same_signatory")
	loan := s.json(201, "POST", "/api/v1/media/"+dev["id"].(string)+"/loans", it, map[string]string{"borrower": "zhaomin",
		"purpose": "为患者刻录出院病历复印件", "due_at": due})
	if loan["status"] != "awaiting_borrower" || loan["signed_at"] != nil {
		t.Fatalf("lent %v", loan)
	}
	rule(t, s.problem(403, "POST", "/api/v1/media/loans/"+loan["id"].(string)+"/sign", officer, nil), "deny.not_borrower")
	mine := s.json(200, "GET", "/api/v1/media/loans?mine=true", clerk, nil)["items"].([]any)
	if len(mine) != 1 || mine[0].(map[string]any)["status"] != "awaiting_borrower" {
		t.Fatalf("the clerk's loans %v", mine)
	}
	if out := s.json(200, "POST", "/api/v1/media/loans/"+loan["id"].(string)+"/sign", clerk, nil); out["status"] != "out" {
		t.Fatalf("signed %v", out)
	}
	s.problem(403, "GET", "/api/v1/media", clerk, nil)
}
