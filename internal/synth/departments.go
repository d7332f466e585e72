package synth

// Department is a clinical department of the synthetic hospital.
type Department struct {
	// Code is a short ASCII code, e.g. "CARD".
	Code string
	// Name is the department's Chinese name, e.g. 心内科.
	Name string
	// NameEN is the department's English name.
	NameEN string
}

// Departments returns the hospital's departments in a fixed order. The
// slice is new on each call.
func Departments() []Department {
	out := make([]Department, len(deptTable))
	for i, d := range deptTable {
		out[i] = d.Department
	}
	return out
}

// profile says which patients a department treats.
type profile struct {
	minAge, maxAge int
	gender         string // "" for either
}

// vitalFlags bend a condition's vital signs away from normal.
type vitalFlags uint8

const (
	vFever vitalFlags = 1 << iota
	vHypertension
	vShock
	vTachy
	vBrady
	vHypoxia
	vDrowsy // consciousness impaired or sedated
)

// med is one drug as a prescriber writes it.
type med struct {
	name  string // 阿司匹林肠溶片
	spec  string // 规格: 100mg×30片
	dose  string // 单次剂量: 100mg (a template)
	route string // 口服, 静脉滴注 …
	freq  string // qd, bid … (see freqText) or free text
}

// imaging is an imaging study and what it showed.
type imaging struct {
	mod  string // CT, MRI, DR, 超声 …
	part string // 检查部位 and technique: 头颅MRI平扫+DWI
	find string // 检查所见 (a template)
	imp  string // 诊断意见 (a template)
}

// procedure is an operation or bedside procedure.
type procedure struct {
	name       string
	anesthesia string
	steps      string // 手术经过 (a template)
	loss       string // 出血量 (a template)
	specimen   bool   // tissue is removed and sent to pathology
}

// condition is one presentation a department sees: complaint, history,
// findings, diagnoses, treatment. Its strings are templates (template.go).
type condition struct {
	cc      string   // 主诉
	sym     string   // the symptoms in a few words, for progress notes
	hpi     string   // 现病史, without the leading 患者
	history string   // 既往史 relevant to the condition; "" for 既往体健
	exam    string   // 专科查体 (for psychiatry: 精神检查)
	ddx     string   // 鉴别诊断
	dx      []string // diagnoses, main first
	meds    []med
	labs    []string // lab panels, most telling first
	abn     string   // abnormal lab results: "KEY lo-hi; KEY lo-hi" or "KEY a|b"
	img     imaging
	op      *procedure // nil: the department's usual procedure
	vit     vitalFlags
	minAge  int
	maxAge  int    // 0 for no limit
	gender  string // "" for either
	scale   string // psychiatry: rating scales
	risk    string // psychiatry: risk assessment
}

// deptData is a department with everything needed to write its records.
type deptData struct {
	Department
	profile
	conds    []condition
	ops      []*procedure // usual procedures for conditions without their own
	nursing  []string     // nursing actions (templates)
	surgical bool
}

var deptTable = []*deptData{
	{Department: Department{"CARD", "心内科", "Cardiology"}, profile: profile{18, 95, ""},
		conds: cardConds, ops: []*procedure{&opCAG},
		nursing: []string{
			"予持续心电监护及低流量吸氧，指导低盐低脂饮食，保持大便通畅，避免用力",
			"观察胸闷、胸痛发作情况及心律变化，床旁备好急救药品及除颤仪",
			"遵医嘱记录24小时出入量，每日晨起空腹测体重",
		}},
	{Department: Department{"NEUR", "神经内科", "Neurology"}, profile: profile{18, 95, ""},
		conds: neurConds, ops: []*procedure{&opLumbar},
		nursing: []string{
			"抬高床头15°～30°，密切观察意识、瞳孔及肢体活动变化",
			"协助良肢位摆放，指导肢体被动及主动功能锻炼，床栏保护，防跌倒坠床",
			"洼田饮水试验{1|2}级，指导进食时取坐位，防呛咳误吸",
		}},
	{Department: Department{"EMER", "急诊科", "Emergency"}, profile: profile{0, 95, ""},
		conds: emerConds, ops: []*procedure{&opCVC},
		nursing: []string{
			"予留观，建立静脉通道，持续心电监护，密切观察生命体征变化",
			"伤口敷料干燥，无明显渗血，嘱患者勿自行揭除",
			"做好急诊交接班，协助完善相关检查，家属陪同",
		}},
	{Department: Department{"RESP", "呼吸内科", "Respiratory Medicine"}, profile: profile{15, 95, ""},
		conds: respConds, ops: []*procedure{&opBronch},
		nursing: []string{
			"予鼻导管吸氧{2-3}L/min，指导有效咳嗽、咳痰及缩唇腹式呼吸",
			"协助翻身拍背，遵医嘱予雾化吸入，观察痰液颜色、性状及量",
			"取半卧位，保持呼吸道通畅，监测指脉氧饱和度",
		}},
	{Department: Department{"GAST", "消化内科", "Gastroenterology"}, profile: profile{15, 95, ""},
		conds: gastConds, ops: []*procedure{&opGastroscopy},
		nursing: []string{
			"观察大便颜色、性状及量，准确记录24小时出入量",
			"指导清淡、易消化、少渣饮食，少量多餐，忌辛辣刺激食物",
			"观察腹痛、腹胀情况，遵医嘱禁食水，保持静脉通路通畅",
		}},
	{Department: Department{"ORTH", "骨科", "Orthopaedics"}, profile: profile{5, 95, ""},
		conds: orthConds, surgical: true,
		nursing: []string{
			"患肢抬高，观察末梢血运、感觉及活动情况，指导踝泵运动，预防下肢深静脉血栓",
			"切口敷料干燥，无渗血渗液，引流管通畅，引流出暗红色液体约{20-80}ml",
			"协助轴线翻身，指导床上功能锻炼，预防压力性损伤",
		}},
	{Department: Department{"GSUR", "普外科", "General Surgery"}, profile: profile{15, 95, ""},
		conds: gsurConds, surgical: true,
		nursing: []string{
			"保持腹腔引流管通畅，妥善固定，观察引流液颜色、性状及量",
			"切口敷料干燥，无渗血，肛门已排气，指导流质饮食",
			"指导早期床上翻身及下床活动，预防肠粘连及下肢深静脉血栓",
		}},
	{Department: Department{"PEDS", "儿科", "Paediatrics"}, profile: profile{0, 14, ""},
		conds: pedsConds, ops: []*procedure{&opLumbarChild},
		nursing: []string{
			"监测体温变化，指导家长温水擦浴等物理降温，多饮水",
			"指导家长合理喂养，注意手卫生，保持患儿皮肤及口腔清洁",
			"观察患儿精神反应、进食及尿量情况，留置针固定良好",
		}},
	{Department: Department{"OBGY", "妇产科", "Obstetrics and Gynaecology"}, profile: profile{18, 60, "female"},
		conds: obgyConds, surgical: true,
		nursing: []string{
			"观察阴道流血及腹部切口情况，保持会阴部清洁，每日会阴擦洗2次",
			"观察宫底高度及子宫收缩情况，指导母乳喂养及产后康复",
			"留置导尿管通畅，尿色清亮，指导术后早期下床活动",
		}},
	{Department: Department{"ONCO", "肿瘤科", "Oncology"}, profile: profile{18, 90, ""},
		conds: oncoConds, ops: []*procedure{&opPICC},
		nursing: []string{
			"PICC导管维护，穿刺点无红肿渗出，导管外露{3-5}cm",
			"化疗药物输注顺利，无外渗，观察有无恶心、呕吐等不良反应",
			"指导高蛋白、高维生素饮食，注意口腔卫生，预防感染",
		}},
	{Department: Department{"PSYC", "精神科", "Psychiatry"}, profile: profile{14, 85, ""},
		conds: psycConds, ops: []*procedure{&opMECT},
		nursing: []string{
			"专人看护，做好病房安全检查，防自伤、自杀及冲动行为",
			"督促按时服药，服药后检查口腔，防藏药、吐药",
			"观察情绪变化及睡眠情况，夜间睡眠约{4-7}小时，做好心理护理",
		}},
	{Department: Department{"INFD", "感染科", "Infectious Diseases"}, profile: profile{14, 95, ""},
		conds: infdConds, ops: []*procedure{&opBoneMarrow},
		nursing: []string{
			"予{接触|飞沫|呼吸道}隔离，做好病房消毒隔离及医疗废物处置",
			"监测体温，高热时予物理降温，指导多饮水，保证营养摄入",
			"指导患者及家属做好个人防护及手卫生，限制探视",
		}},
	{Department: Department{"ICU", "重症医学科", "Intensive Care"}, profile: profile{15, 95, ""},
		conds: icuConds, ops: []*procedure{&opCVC, &opTracheostomy},
		nursing: []string{
			"呼吸机辅助通气，按需吸痰，气囊压力维持在25～30cmH2O",
			"每2小时翻身拍背，床头抬高30°，预防呼吸机相关性肺炎及压力性损伤",
			"记录每小时尿量及出入量，中心静脉导管通畅，血管活性药物泵入中",
		}},
}

// deptByCode finds a department's data; an unknown code gets 急诊科's.
func deptByCode(code string) *deptData {
	for _, d := range deptTable {
		if d.Code == code {
			return d
		}
	}
	return deptTable[2] // EMER
}

// profileOf returns which patients the department with code treats.
func profileOf(code string) profile { return deptByCode(code).profile }
