package policy

// RecordType describes a kind of medical record.
type RecordType struct {
	Name   string
	NameZH string
	NameEN string
	// Restricted types (psychiatric, HIV, reproductive health) open only to
	// the department that owns the record and to grants from it: never by a
	// care team elsewhere, hospital-wide scope, an API key or break-glass.
	Restricted bool
	// Classification is the default classification of records of this type.
	Classification string
}

// Record classifications (SPEC §3, §4).
const (
	Core      = "core"      // 核心
	Important = "important" // 重要
	General   = "general"   // 一般
)

// Classifications lists the valid classifications.
var Classifications = []string{Core, Important, General}

// RecordTypes lists the record types medguard knows.
//
// Diagnosis and treatment records and prescriptions are core data by
// default (seed 000 §1.4: 诊疗记录、处方 are 核心数据); results and nursing
// records are important; restricted types are always core.
var RecordTypes = []RecordType{
	{Name: "admission_note", NameZH: "入院记录", NameEN: "Admission note", Classification: Core},
	{Name: "progress_note", NameZH: "病程记录", NameEN: "Progress note", Classification: Core},
	{Name: "discharge_summary", NameZH: "出院小结", NameEN: "Discharge summary", Classification: Core},
	{Name: "operation_note", NameZH: "手术记录", NameEN: "Operation note", Classification: Core},
	{Name: "lab_report", NameZH: "检验报告", NameEN: "Laboratory report", Classification: Important},
	{Name: "imaging_report", NameZH: "影像报告", NameEN: "Imaging report", Classification: Important},
	{Name: "prescription", NameZH: "处方", NameEN: "Prescription", Classification: Core},
	{Name: "nursing_note", NameZH: "护理记录", NameEN: "Nursing note", Classification: Important},
	{Name: "consultation_note", NameZH: "会诊记录", NameEN: "Consultation note", Classification: Core},
	{Name: "outpatient_note", NameZH: "门诊病历", NameEN: "Outpatient note", Classification: Core},
	{Name: "psychiatric_note", NameZH: "精神科记录", NameEN: "Psychiatric note", Restricted: true, Classification: Core},
	{Name: "hiv_test", NameZH: "HIV检测", NameEN: "HIV test", Restricted: true, Classification: Core},
	{Name: "reproductive_note", NameZH: "生殖健康记录", NameEN: "Reproductive health note", Restricted: true, Classification: Core},
}

// LookupRecordType returns the record type with the given name.
func LookupRecordType(name string) (RecordType, bool) {
	for _, t := range RecordTypes {
		if t.Name == name {
			return t, true
		}
	}
	return RecordType{}, false
}

// KnownRecordType reports whether name is a record type medguard knows.
func KnownRecordType(name string) bool {
	_, ok := LookupRecordType(name)
	return ok
}

// Restricted reports whether records of the named type are restricted.
func Restricted(recordType string) bool {
	t, ok := LookupRecordType(recordType)
	return ok && t.Restricted
}

// Purposes are the purpose-of-use codes a request may declare in the
// X-Purpose-Of-Use header. They are codes, never free text, so that the audit
// log holds no patient data.
var Purposes = []string{
	"treatment",         // 诊疗
	"emergency",         // 急诊抢救
	"care_coordination", // 会诊协作
	"nursing",           // 护理
	"archiving",         // 病案归档
	"quality_control",   // 质控
	"billing",           // 医保结算
	"patient_request",   // 患者申请
	"legal",             // 司法/公安调阅
	"research",          // 科研
	"audit",             // 审计
	"operations",        // 运维
}

// KnownPurpose reports whether p is a valid purpose-of-use code.
func KnownPurpose(p string) bool {
	for _, q := range Purposes {
		if q == p {
			return true
		}
	}
	return false
}
