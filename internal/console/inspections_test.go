package console_test

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard/internal/inspections"
	"medguard/internal/media"
)

// steadyHost is a server whose load and disk are fine, so that the pages
// show medguard's own readings the same on every machine.
type steadyHost struct{}

func (steadyHost) Load() (float64, int, error)    { return 1.2, 8, nil }
func (steadyHost) Space() (uint64, uint64, error) { return 300 << 30, 500 << 30, nil }

var inspectionLink = regexp.MustCompile(`/inspections/([0-9a-z]{26})`)

// TestInspectionPages: an IT engineer fills in today's form — every range
// shown, medguard's own readings filled in, the backups (no schedule here)
// by hand — with the temperature out of range, which is marked and
// alerted; the inspector is offered no countersignature, the security
// officer countersigns; the history and the weekly summary show it and
// export it; the checklist gets a new version; a day that ends without an
// inspection is missed, alerted and marked; the dashboard tells today's
// state. In Chinese, with a page in English.
func TestInspectionPages(t *testing.T) {
	h := newHospital(t)
	h.app.Inspections.SetSystem(steadyHost{}, nil)
	h.addStaff("chenjing", "陈静", "", "it_engineer")
	it := h.browser("zh-CN")
	it.signIn("chenjing", staffPassword)
	form := it.get("/inspections")
	contains(t, "today's form", form, "今日尚未巡查", `id="inspection-form"`, "病案库房温度", "20–24 °C", "45–60 %", "≤ 80 %", "≥ 15 %",
		"系统读取", "15 分钟平均负载 1.20，8 个 CPU 核", "剩余 300.0 GB，共 500.0 GB", "本服务器未配置 medguard 备份", `name="ok.backup_status"`,
		`name="value.room_temperature"`)
	if strings.Contains(form.body, `name="value.server_load"`) {
		t.Fatal("the form asks for the server's load, which medguard reads itself")
	}
	values := url.Values{"value.room_temperature": {"25.3"}, "value.room_humidity": {"52"}, "note.room_temperature": {"空调故障，已报修"},
		"ok.fire_devices": {"true"}, "ok.anti_theft_devices": {"true"}, "ok.access_devices": {"true"}, "ok.storage_devices": {"true"},
		"ok.backup_status": {"true"}, "note.backup_status": {"DBA 的 pgBackRest 备份已核对"}, "note": {"上午巡查"}}
	// A form missing an item is refused, naming it; nothing is kept.
	short := url.Values{}
	for k, v := range values {
		if k != "ok.fire_devices" {
			short[k] = v
		}
	}
	refused := it.post("/inspections", form, short)
	if refused.status != 422 {
		t.Fatalf("a form without the fire devices: %d %s", refused.status, refused.body)
	}
	contains(t, "the refused form", refused, `id="form-error"`, "请填写“消防设施（灭火器、烟感、气体灭火装置）完好”。",
		`value="25.3"`, "空调故障，已报修", `class="invalid"`)
	done := it.post("/inspections", form, values)
	contains(t, "the signed inspection", done, "巡查已签字；有读数超出范围，已告警。", "25.3 °C", "超出范围", "1 项超出范围", "尚未复核",
		"空调故障，已报修", "DBA 的 pgBackRest 备份已核对")
	if strings.Contains(done.body, `id="review-form"`) {
		t.Fatal("the inspector is offered the countersignature")
	}
	m := inspectionLink.FindStringSubmatch(done.url.Path)
	if m == nil {
		t.Fatalf("landed on %s", done.url)
	}
	id := m[1]
	if p := it.post("/inspections", form, values); p.status != 409 {
		t.Fatalf("a second inspection today: %d", p.status)
	}
	// The alert, in words.
	as := h.alerts("new", inspections.OutOfRangeRule)
	if len(as) != 1 || as[0].Key != inspections.RoomTemperature {
		t.Fatalf("alerts: %+v", as)
	}
	officer := h.browser("zh-CN")
	officer.signIn("zhouqiang", staffPassword)
	alerts := officer.get("/alerts?rule=" + inspections.OutOfRangeRule)
	contains(t, "the alert", alerts, "巡查读数超出范围", "病案库房温度", "2026-03-02 巡查：读数 25.3 °C，超出正常范围 20–24 °C。")
	dash := officer.get("/")
	contains(t, "the dashboard", dash, `id="tile-inspection"`, "已巡查，待复核签字", "1 项超出范围")

	// The security officer countersigns.
	page := officer.get("/inspections/" + id)
	contains(t, "the reviewer's page", page, `id="review-form"`, "待复核")
	signed := officer.post("/inspections/"+id+"/review", page, url.Values{"note": {"已通知后勤维修空调，明日复测"}})
	contains(t, "countersigned", signed, "已复核签字。", "已通知后勤维修空调，明日复测", "陈静")
	if p := officer.post("/inspections/"+id+"/review", page, url.Values{}); p.status != 409 {
		t.Fatalf("a second countersignature: %d", p.status)
	}
	// In English.
	en := h.browser("en")
	en.signIn("zhouqiang", staffPassword)
	contains(t, "the inspection in English", en.get("/inspections/"+id), "Countersigned", "out of range", "Readings")

	// The history and the weekly summary, with CSV.
	hist := officer.get("/inspections/history")
	contains(t, "the history", hist, "2026-03-02", "25.3 °C", `class="bad"`, "已复核签字")
	csv := officer.get("/inspections/history?format=csv")
	if !strings.Contains(csv.body, "2026-03-02") || !strings.Contains(csv.body, "25.3 °C") {
		t.Fatalf("the history's CSV: %s", csv.body)
	}
	weeks := officer.get("/inspections/weeks")
	contains(t, "the weekly summary", weeks, "2026-W10", "2026-03-02 至 2026-03-08")
	if csv := officer.get("/inspections/weeks?format=csv"); !strings.Contains(csv.body, "2026-W10") {
		t.Fatalf("the summary's CSV: %s", csv.body)
	}

	// The checklist: the humidity's range widened, an item added.
	tpl := officer.get("/inspections/templates")
	contains(t, "the checklist", tpl, "现行版本：第 1 版", `id="template-form"`)
	edit := url.Values{}
	for i, it := range inspections.DefaultTemplate().Items {
		n := strconv.Itoa(i)
		edit.Set("key."+n, it.Key)
		edit.Set("kind."+n, it.Kind)
		edit.Set("label."+n, it.Label)
		edit.Set("unit."+n, it.Unit)
		if it.Min != nil {
			edit.Set("min."+n, inspections.Figure(*it.Min))
		}
		if it.Max != nil {
			edit.Set("max."+n, inspections.Figure(*it.Max))
		}
	}
	edit.Set("max.1", "65")
	edit.Set("key.new", "dehumidifier")
	edit.Set("label.new", "除湿机运行正常")
	edit.Set("kind.new", "check")
	saved := officer.post("/inspections/templates", tpl, edit)
	contains(t, "the new version", saved, "巡查表新版本已生效。", "现行版本：第 2 版", "除湿机运行正常", `value="65"`)
	if p := it.get("/inspections/templates"); strings.Contains(p.body, `id="template-form"`) {
		t.Fatal("the IT engineer is offered the checklist's editor")
	}

	// Two days later: yesterday was missed.
	h.clock.Advance(48 * time.Hour)
	officer, it = h.browser("zh-CN"), h.browser("zh-CN")
	officer.signIn("zhouqiang", staffPassword)
	it.signIn("chenjing", staffPassword)
	if got, err := h.app.Inspections.CheckMissed(context.Background()); err != nil || len(got) != 1 || got[0].Day != "2026-03-03" {
		t.Fatalf("missed: %+v %v", got, err)
	}
	contains(t, "the missed day's alert", officer.get("/alerts?rule="+inspections.MissedRule), "漏巡", "2026-03-03 未完成日常巡查。")
	contains(t, "the history, a day missed", officer.get("/inspections/history?status=missed"), "2026-03-03", "漏巡")
	contains(t, "the dashboard, not yet today", officer.get("/"), "今日尚未巡查", "近 7 天漏巡 1 天")
	contains(t, "today's form, version 2", it.get("/inspections"), "除湿机运行正常", "65")
}

// TestMediaPages: an IT engineer registers an encrypted USB drive and an
// unencrypted disk (flagged, with no lending form), lends the drive to
// the security officer, who signs for it on the loans page; the drive
// comes back late (alerted, in words), is taken back by the engineer and
// erased before the officer as witness; its page tells the whole history.
func TestMediaPages(t *testing.T) {
	h := newHospital(t)
	h.addStaff("chenjing", "陈静", "", "it_engineer")
	it := h.browser("zh-CN")
	it.signIn("chenjing", staffPassword)
	reg := it.get("/media")
	p := it.post("/media", reg, url.Values{"label": {"yd-2026-007"}, "kind": {"usb_drive"}, "model": {"金士顿 IronKey D500S"},
		"serial": {"IK500S-88231"}, "capacity_gb": {"64"}, "encrypted": {"true"}, "encryption": {"硬件 AES-256"}})
	contains(t, "the registered drive", p, "介质已登记。", "YD-2026-007", "硬件 AES-256", "在库", `id="lend-form"`, `id="erase-form"`)
	drive := strings.TrimPrefix(p.url.Path, "/media/")
	p = it.post("/media", reg, url.Values{"label": {"YD-2019-003"}, "kind": {"portable_disk"}, "model": {"希捷移动硬盘"},
		"serial": {"NAB1X2Y3"}, "capacity_gb": {"2000"}, "encrypted": {"false"}})
	contains(t, "the unencrypted disk", p, "未加密", "不得借出。")
	if strings.Contains(p.body, `id="lend-form"`) {
		t.Fatal("an unencrypted disk offers a lending form")
	}
	contains(t, "the register, flagged", it.get("/media?status=unencrypted"), "YD-2019-003", `class="bad"`)

	page := it.get("/media/" + drive)
	due := h.clock.Now().Add(3 * 24 * time.Hour).In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	if p := it.post("/media/"+drive+"/lend", page, url.Values{"borrower": {"chenjing"}, "purpose": {"自借"}, "due_at": {due}}); p.status != 403 {
		t.Fatalf("lent to oneself: %d", p.status)
	}
	lent := it.post("/media/"+drive+"/lend", page, url.Values{"borrower": {"zhouqiang"}, "purpose": {"导出安全事件证据"}, "due_at": {due}})
	contains(t, "lent", lent, "已登记借出，等待借用人签字。", "待借用人签字", "导出安全事件证据")

	officer := h.browser("zh-CN")
	officer.signIn("zhouqiang", staffPassword)
	loans := officer.get("/media/loans")
	contains(t, "the officer's loans", loans, "待您签字的借用", "YD-2026-007", "导出安全事件证据")
	m := regexp.MustCompile(`/media/loans/([0-9a-z]{26})/sign`).FindStringSubmatch(loans.body)
	if m == nil {
		t.Fatalf("no signing form: %s", loans.body)
	}
	contains(t, "signed", officer.post("/media/loans/"+m[1]+"/sign", loans, nil), "已签字，可以领取介质。", "借出中")

	// Late: the alert, then the return and the erasure.
	h.clock.Advance(4 * 24 * time.Hour)
	if got, err := h.app.Media.CheckOverdue(context.Background()); err != nil || len(got) != 1 {
		t.Fatalf("overdue: %+v %v", got, err)
	}
	officer, it = h.browser("zh-CN"), h.browser("zh-CN")
	officer.signIn("zhouqiang", staffPassword)
	it.signIn("chenjing", staffPassword)
	contains(t, "the overdue alert", officer.get("/alerts?rule="+media.OverdueRule), "移动存储介质逾期未还", "移动存储介质 YD-2026-007 逾期未还。")
	contains(t, "the register, overdue", it.get("/media?status=overdue"), "YD-2026-007", "逾期")
	page = it.get("/media/" + drive)
	back := it.post("/media/loans/"+m[1]+"/return", page, nil)
	contains(t, "returned", back, "已归还，请擦除后再借出。", "已归还，待擦除")
	if len(h.alerts("new", media.OverdueRule)) != 0 {
		t.Fatal("the overdue alert stays after the return")
	}
	erased := it.post("/media/"+drive+"/erase", back, url.Values{"method": {"crypto_erase"}, "witness": {"zhouqiang"}, "note": {"销毁密钥后全盘覆写"}})
	contains(t, "erased", erased, "擦除已登记，介质已入库。", "销毁加密密钥", "销毁密钥后全盘覆写", "在库")
	contains(t, "the loans grid", officer.get("/media/loans"), "YD-2026-007", "已归还")
	if csv := officer.get("/media?format=csv"); !strings.Contains(csv.body, "YD-2026-007") || !strings.Contains(csv.body, "YD-2019-003") {
		t.Fatalf("the register's CSV: %s", csv.body)
	}
	// A doctor sees none of it.
	doc := h.browser("zh-CN")
	doc.signIn("zhangwei", staffPassword)
	if p := doc.get("/media"); p.status != 403 {
		t.Fatalf("a doctor on /media: %d", p.status)
	}
	if p := doc.get("/inspections"); p.status != 403 {
		t.Fatalf("a doctor on /inspections: %d", p.status)
	}
}
