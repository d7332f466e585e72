package trail

import (
	"fmt"
	"strings"
	"time"

	"medguard/internal/audit"
	"medguard/internal/policy"
)

// The words of the access report, in Simplified Chinese and English side by
// side, so that no phrase exists in one language only (the tests check it).

// bilingual is one phrase in both report languages.
type bilingual struct{ zh, en string }

// action is what an audit action did to a patient's data: the past tense
// for what happened ("查看了病历", "viewed a medical record") and the bare
// phrase for what was only attempted ("查看病历", "view a medical record").
type action struct {
	category string
	did, do  bilingual
}

// actions are the audit actions that carry a patient's id: every
// AuditAction (or permission, when none is given) that records and the
// trail pass to the gate with a patient's id, and record.export, the
// permission exports will be logged under (SPEC §3). Any other action
// falls back to phrases that name its code.
var actions = map[string]action{
	// Reads.
	"patient.read": {CategoryRead,
		bilingual{"查看了您的基本信息", "viewed your personal details"},
		bilingual{"查看您的基本信息", "view your personal details"}},
	"patient.search_match": {CategoryRead,
		bilingual{"在患者查询中查到了您（只显示部分姓名、性别、出生年份或年龄、病案号末四位和就诊科室等区分患者所需的信息）",
			"found you in a patient search (only part of your name and what tells patients apart — your sex, year of birth or age, the last four characters of your medical record number, your departments — was shown)"},
		bilingual{"在患者查询中查找您", "look you up in a patient search"}},
	"patient.list": {CategoryRead,
		bilingual{"在患者列表中看到了您（姓名、病案号末四位、年龄、性别和住院状态）",
			"saw you in a list of patients (your name, the last four characters of your medical record number, your age, sex and admission state)"},
		bilingual{"在患者列表中查看您", "see you in a list of patients"}},
	"record.read": {CategoryRead,
		bilingual{"查看了病历", "viewed a medical record"},
		bilingual{"查看病历", "view a medical record"}},
	"record.read_history": {CategoryRead,
		bilingual{"查看了病历的历史版本", "viewed an earlier version of a medical record"},
		bilingual{"查看病历的历史版本", "view an earlier version of a medical record"}},
	"record.list": {CategoryRead,
		bilingual{"查看了您的病历目录", "viewed the list of your medical records"},
		bilingual{"查看您的病历目录", "view the list of your medical records"}},
	"record.versions": {CategoryRead,
		bilingual{"查看了病历的修改历史", "viewed the change history of a medical record"},
		bilingual{"查看病历的修改历史", "view the change history of a medical record"}},
	"record.attachment_read": {CategoryRead,
		bilingual{"查看了病历附件", "viewed an attachment to a medical record"},
		bilingual{"查看病历附件", "view an attachment to a medical record"}},
	"record.export": {CategoryRead,
		bilingual{"导出了病历", "exported medical records"},
		bilingual{"导出病历", "export medical records"}},
	"record.export_approved": {CategoryRead,
		bilingual{"在经医务科审批的导出中导出了您的病历", "exported your medical records in an export approved by medical affairs"},
		bilingual{"在经审批的导出中导出您的病历", "export your medical records in an approved export"}},
	"deid.read_source": {CategoryRead,
		bilingual{"在经医务科审批的去标识化任务中读取了您的病历（交付的数据已去除可识别您的信息）",
			"read your medical records for a de-identification job approved by medical affairs (what was handed over no longer identifies you)"},
		bilingual{"在去标识化任务中读取您的病历", "read your medical records for a de-identification job"}},
	"use.request": {CategoryAccessControl,
		bilingual{"申请借阅您的病历", "asked to consult your medical records"},
		bilingual{"申请借阅您的病历", "ask to consult your medical records"}},
	"use.withdraw": {CategoryAccessControl,
		bilingual{"撤回了借阅您病历的申请", "withdrew a request to consult your medical records"},
		bilingual{"撤回借阅您病历的申请", "withdraw a request to consult your medical records"}},
	"copy.record": {CategoryRead,
		bilingual{"登记了您病历的复印", "recorded a copy of your medical records"},
		bilingual{"登记您病历的复印", "record a copy of your medical records"}},
	"folder.register": {CategoryChange,
		bilingual{"登记了您的纸质病案", "registered your paper record folder"},
		bilingual{"登记您的纸质病案", "register your paper record folder"}},
	"folder.update": {CategoryChange,
		bilingual{"更新了您纸质病案的存放信息", "updated where your paper record folder is kept"},
		bilingual{"更新您纸质病案的存放信息", "update where your paper record folder is kept"}},
	"folder.lend": {CategoryRead,
		bilingual{"借出了您的纸质病案", "lent out your paper record folder"},
		bilingual{"借出您的纸质病案", "lend out your paper record folder"}},
	"folder.return": {CategoryAccessControl,
		bilingual{"归还了您的纸质病案", "returned your paper record folder"},
		bilingual{"归还您的纸质病案", "return your paper record folder"}},
	"admission.list": {CategoryRead,
		bilingual{"查看了您的住院记录", "viewed your hospital stays"},
		bilingual{"查看您的住院记录", "view your hospital stays"}},
	"careteam.list": {CategoryRead,
		bilingual{"查看了您的诊疗组", "viewed your care team"},
		bilingual{"查看您的诊疗组", "view your care team"}},

	// Changes.
	"patient.create": {CategoryChange,
		bilingual{"建立了您的患者档案", "registered you as a patient"},
		bilingual{"建立您的患者档案", "register you as a patient"}},
	"patient.update": {CategoryChange,
		bilingual{"修改了您的基本信息", "changed your personal details"},
		bilingual{"修改您的基本信息", "change your personal details"}},
	"record.create": {CategoryChange,
		bilingual{"新建了一份病历", "added a medical record"},
		bilingual{"新建病历", "add a medical record"}},
	"record.update": {CategoryChange,
		bilingual{"修改了病历", "changed a medical record"},
		bilingual{"修改病历", "change a medical record"}},
	"record.attachment_add": {CategoryChange,
		bilingual{"为病历添加了附件", "added an attachment to a medical record"},
		bilingual{"为病历添加附件", "add an attachment to a medical record"}},
	"admission.create": {CategoryChange,
		bilingual{"办理了入院登记", "registered a hospital admission"},
		bilingual{"办理入院登记", "register a hospital admission"}},
	"admission.discharge": {CategoryChange,
		bilingual{"办理了出院登记", "registered a discharge from hospital"},
		bilingual{"办理出院登记", "register a discharge from hospital"}},
	"admission.archive": {CategoryChange,
		bilingual{"归档了住院病历", "archived the records of a hospital stay"},
		bilingual{"归档住院病历", "archive the records of a hospital stay"}},

	// Who may see the data.
	"careteam.add": {CategoryAccessControl,
		bilingual{"将一名医务人员加入了您的诊疗组", "added a member of staff to your care team"},
		bilingual{"将一名医务人员加入您的诊疗组", "add a member of staff to your care team"}},
	"careteam.remove": {CategoryAccessControl,
		bilingual{"将一名医务人员移出了您的诊疗组", "removed a member of staff from your care team"},
		bilingual{"将一名医务人员移出您的诊疗组", "remove a member of staff from your care team"}},
	"grant.create": {CategoryAccessControl,
		bilingual{"授权了一名医务人员查看您的病历", "gave a member of staff access to your records"},
		bilingual{"授权一名医务人员查看您的病历", "give a member of staff access to your records"}},
	"grant.revoke": {CategoryAccessControl,
		bilingual{"撤销了一项查看您病历的授权", "withdrew a member of staff's access to your records"},
		bilingual{"撤销一项查看您病历的授权", "withdraw a member of staff's access to your records"}},

	"breakglass.declare": {CategoryAccessControl,
		bilingual{"声明了紧急访问（破窗），以便在 30 分钟内查看您的病历", "declared an emergency access (break-glass) to read your records for 30 minutes"},
		bilingual{"声明紧急访问（破窗）以查看您的病历", "declare an emergency access (break-glass) to read your records"}},

	// Oversight.
	"breakglass.review": {CategoryOversight,
		bilingual{"复核了一次紧急访问", "reviewed an emergency access"},
		bilingual{"复核一次紧急访问", "review an emergency access"}},
	ReportAction: {CategoryReport,
		bilingual{"调阅了您的访问记录报告", "looked up your access report"},
		bilingual{"调阅您的访问记录报告", "look up your access report"}},
}

// purposes are the purpose-of-use codes (policy.Purposes) in words.
var purposes = map[string]bilingual{
	"treatment":         {"诊疗", "treatment"},
	"emergency":         {"急诊抢救", "emergency care"},
	"care_coordination": {"会诊协作", "consultation between doctors"},
	"nursing":           {"护理", "nursing care"},
	"archiving":         {"病案归档", "archiving of medical records"},
	"quality_control":   {"医疗质量控制", "quality control of care"},
	"billing":           {"费用与医保结算", "billing and medical insurance"},
	"patient_request":   {"您本人的申请", "your own request"},
	"legal":             {"司法或公安机关依法调阅", "a request by a court or the police"},
	"research":          {"科研", "research"},
	"audit":             {"审计", "audit"},
	"operations":        {"系统运维", "running the hospital's systems"},
}

var noPurpose = bilingual{"未说明", "not stated"}

// rolesEN are the roles' English names; their Chinese names are
// policy.Role.NameZH.
var rolesEN = map[string]string{
	policy.Admin:           "system administrator",
	policy.RecordsClerk:    "medical records clerk",
	policy.Doctor:          "doctor",
	policy.Nurse:           "nurse",
	policy.DeptHead:        "head of department",
	policy.ITEngineer:      "IT engineer",
	policy.SecurityOfficer: "information security officer",
	policy.Auditor:         "quality auditor",
	policy.Researcher:      "researcher",
	policy.Leadership:      "leadership group",
	policy.MedicalAffairs:  "medical affairs office",
}

// apiKeyRole is the role the gate records for an API key.
const apiKeyRole = "api_key"

var (
	systemInterface = bilingual{"医院信息系统接口", "hospital system interface"}
	medguardItself  = bilingual{"medguard 系统自身", "medguard itself"}
	breakGlassNote  = bilingual{
		"紧急访问（破窗）：在紧急情况下超出常规权限的访问，事后须经科室主任复核",
		"emergency access (break-glass): access beyond the usual permissions in an emergency, reviewed afterwards by the head of department"}
	results = map[string]bilingual{
		StatusCompleted:  {"已完成", "completed"},
		StatusDenied:     {"被系统拒绝", "denied — the system refused"},
		StatusIncomplete: {"未完成", "did not complete"},
	}
)

// words writes the report in one language and time zone.
type words struct {
	lang Lang
	zone *time.Location
}

func wordsFor(lang Lang, zone *time.Location) words { return words{lang: lang, zone: zone} }

func (w words) pick(b bilingual) string {
	if w.lang == English {
		return b.en
	}
	return b.zh
}

// localTime is t in the report's zone, to the minute: "2026年3月5日 14:32"
// or "5 March 2026, 14:32".
func (w words) localTime(t time.Time) string {
	t = t.In(w.zone)
	if w.lang == English {
		return t.Format("2 January 2006, 15:04")
	}
	return fmt.Sprintf("%d年%d月%d日 %02d:%02d", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute())
}

// action returns the words of an audit action, or for an action without
// words, phrases that name its code.
func (w words) action(code string) action {
	if a, ok := actions[code]; ok {
		return a
	}
	return action{category: CategoryOther,
		did: bilingual{"进行了操作「" + code + "」", "performed the operation “" + code + "”"},
		do:  bilingual{"进行操作「" + code + "」", "perform the operation “" + code + "”"}}
}

func (w words) purpose(code string) string {
	if code == "" {
		return w.pick(noPurpose)
	}
	if p, ok := purposes[code]; ok {
		return w.pick(p)
	}
	return code
}

func (w words) role(name string) string {
	if name == apiKeyRole {
		return w.pick(systemInterface)
	}
	r, ok := policy.LookupRole(name)
	if !ok {
		return name
	}
	if w.lang == English {
		if en, ok := rolesEN[name]; ok {
			return en
		}
		return name
	}
	return r.NameZH
}

// actorKind says whether an entry's actor is a member of staff or a system.
func actorKind(e *audit.Entry) string {
	if e.Actor == "system" || strings.HasPrefix(e.Actor, "apikey:") {
		return ActorSystem
	}
	for _, r := range e.ActorRoles {
		if r == apiKeyRole {
			return ActorSystem
		}
	}
	return ActorStaff
}

// who names the actor: "心内科 医生 zhangwei", "zhangwei (doctor, 心内科)",
// "医院信息系统接口 his", "hospital system interface “his”".
func (w words) who(e *audit.Entry, kind, dept string, roles []string) string {
	if kind == ActorSystem {
		if name, ok := strings.CutPrefix(e.Actor, "apikey:"); ok {
			if w.lang == English {
				return w.pick(systemInterface) + " “" + name + "”"
			}
			return w.pick(systemInterface) + " " + name
		}
		if e.Actor == "system" {
			return w.pick(medguardItself)
		}
	}
	if w.lang == English {
		var about []string
		if len(roles) > 0 {
			about = append(about, strings.Join(roles, " / "))
		}
		if dept != "" {
			about = append(about, dept)
		}
		if len(about) == 0 {
			return e.Actor
		}
		return e.Actor + " (" + strings.Join(about, ", ") + ")"
	}
	var parts []string
	if dept != "" {
		parts = append(parts, dept)
	}
	if len(roles) > 0 {
		parts = append(parts, strings.Join(roles, "、"))
	}
	return strings.Join(append(parts, e.Actor), " ")
}

// line writes one entry; deptName is the name of the actor's department.
func (w words) line(st audit.Stored, deptName string) AccessLine {
	e := st.Entry
	a := w.action(e.Action)
	l := AccessLine{Index: st.Index, Time: e.Time, LocalTime: w.localTime(e.Time), Actor: e.Actor, ActorKind: actorKind(e),
		Department: e.ActorDepartment, DepartmentName: deptName, Roles: []string{}, Action: e.Action,
		Category: a.category, TargetType: e.TargetType, TargetID: e.TargetID, Purpose: e.Purpose, Why: w.purpose(e.Purpose),
		BreakGlass: e.BreakGlass, Status: status(e)}
	for _, r := range e.ActorRoles {
		if l.ActorKind == ActorSystem && r == apiKeyRole {
			continue // said by who
		}
		l.Roles = append(l.Roles, w.role(r))
	}
	dept := deptName
	if dept == "" {
		dept = e.ActorDepartment
	}
	l.Who = w.who(e, l.ActorKind, dept, l.Roles)
	l.Denied = l.Status == StatusDenied
	l.Result = w.pick(results[l.Status])
	if l.BreakGlass {
		l.BreakGlassNote = w.pick(breakGlassNote)
	}
	l.What, l.Text = w.sentence(l, a)
	return l
}

// sentence returns what the actor did (or tried to do) and the whole line
// as one sentence.
func (w words) sentence(l AccessLine, a action) (what, text string) {
	if w.lang == English {
		purpose := " (purpose: " + l.Why + ")"
		switch l.Status {
		case StatusDenied:
			what = "tried to " + a.do.en
			return what, l.LocalTime + ": " + l.Who + " " + what + purpose + "; " + w.pick(results[StatusDenied]) + "."
		case StatusIncomplete:
			what = "tried to " + a.do.en
			return what, l.LocalTime + ": " + l.Who + " " + what + purpose + ", but it did not complete."
		}
		how := ""
		if l.BreakGlass {
			how = " using emergency access (break-glass)"
		}
		return a.did.en, l.LocalTime + ": " + l.Who + " " + a.did.en + purpose + how + "."
	}
	purpose := "（用途：" + l.Why + "）"
	switch l.Status {
	case StatusDenied:
		what = "试图" + a.do.zh
		return what, l.LocalTime + "，" + l.Who + " " + what + purpose + "，被系统拒绝。"
	case StatusIncomplete:
		what = "试图" + a.do.zh
		return what, l.LocalTime + "，" + l.Who + " " + what + purpose + "，但未完成。"
	}
	how := ""
	if l.BreakGlass {
		how = "以紧急访问（破窗）方式"
	}
	return a.did.zh, l.LocalTime + "，" + l.Who + " " + how + a.did.zh + purpose + "。"
}

// period writes the report's period: "2026年3月1日 00:00 至 2026年4月1日
// 00:00", "from 1 March 2026, 00:00 to 1 April 2026, 00:00", or with no
// start "截至…", "up to …".
func (w words) period(from *time.Time, to time.Time) string {
	if w.lang == English {
		if from == nil {
			return "up to " + w.localTime(to)
		}
		return "from " + w.localTime(*from) + " to " + w.localTime(to)
	}
	if from == nil {
		return "截至 " + w.localTime(to)
	}
	return w.localTime(*from) + " 至 " + w.localTime(to)
}

// summary says the summary's counts in one sentence.
func (w words) summary(s AccessSummary) string {
	if w.lang == English {
		return w.summaryEN(s)
	}
	var b strings.Builder
	b.WriteString(s.Period + "，")
	if s.Entries == 0 {
		b.WriteString("没有人访问过您的数据。")
		return b.String()
	}
	if s.Accesses == 0 {
		b.WriteString("没有人成功访问您的数据")
	} else {
		var who []string
		if s.Staff > 0 {
			who = append(who, fmt.Sprintf("%d名工作人员", s.Staff))
		}
		if s.Systems > 0 {
			who = append(who, fmt.Sprintf("%d个医院信息系统", s.Systems))
		}
		fmt.Fprintf(&b, "共有%s访问了您的数据%d次", strings.Join(who, "和"), s.Accesses)
		if s.BreakGlass > 0 {
			fmt.Fprintf(&b, "，其中紧急访问（破窗）%d次", s.BreakGlass)
		}
	}
	if s.Denied > 0 {
		if s.Accesses > 0 {
			b.WriteString("；另有")
		} else {
			b.WriteString("；有")
		}
		fmt.Fprintf(&b, "%d次访问被系统拒绝", s.Denied)
	}
	if s.Incomplete > 0 {
		fmt.Fprintf(&b, "；%d次操作未完成", s.Incomplete)
	}
	b.WriteString("。")
	return b.String()
}

func (w words) summaryEN(s AccessSummary) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(s.Period[:1]) + s.Period[1:] + ", ")
	if s.Entries == 0 {
		b.WriteString("nobody accessed your data.")
		return b.String()
	}
	if s.Accesses == 0 {
		b.WriteString("nobody accessed your data successfully")
	} else {
		var who []string
		if s.Staff > 0 {
			who = append(who, count(s.Staff, "member of staff", "members of staff"))
		}
		if s.Systems > 0 {
			who = append(who, count(s.Systems, "hospital system", "hospital systems"))
		}
		b.WriteString(strings.Join(who, " and ") + " accessed your data " + times(s.Accesses))
		if s.BreakGlass > 0 {
			fmt.Fprintf(&b, ", %d of these by emergency access (break-glass)", s.BreakGlass)
		}
	}
	if s.Denied > 0 {
		b.WriteString("; " + count(s.Denied, "attempt was", "attempts were") + " denied by the system")
	}
	if s.Incomplete > 0 {
		b.WriteString("; " + count(s.Incomplete, "operation", "operations") + " did not complete")
	}
	b.WriteString(".")
	return b.String()
}

// count writes n with the singular or plural noun.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// times writes how often: once, twice, 3 times.
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}
