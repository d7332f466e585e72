package synth

import (
	"strconv"
	"strings"
)

// labItem is one line of a laboratory report.
type labItem struct {
	key      string  // unique key used in conditions' abn strings
	name     string  // as printed: 白细胞计数(WBC)
	unit     string  // ×10^9/L
	lo, hi   float64 // reference range; hi 0 means no upper limit
	flo, fhi float64 // women's range, when it differs
	places   int     // decimal places printed
	ref      string  // reference range as printed, when not lo-hi
	typLo    float64 // usual values of healthy people, when the range
	typHi    float64 // is one-sided (<5.2) and lo-hi would look odd
	normal   string  // qualitative items: the normal result, e.g. 阴性(-)
}

// panel is a set of tests ordered and reported together.
type panel struct {
	name     string
	specimen string
	items    []labItem
}

var panels = map[string]panel{
	"血常规": {"血常规", "静脉血（EDTA抗凝）", []labItem{
		{key: "WBC", name: "白细胞计数(WBC)", unit: "×10^9/L", lo: 3.5, hi: 9.5, places: 2},
		{key: "NEUT%", name: "中性粒细胞百分比(NEUT%)", unit: "%", lo: 40, hi: 75, places: 1},
		{key: "LYMPH%", name: "淋巴细胞百分比(LYMPH%)", unit: "%", lo: 20, hi: 50, places: 1},
		{key: "RBC", name: "红细胞计数(RBC)", unit: "×10^12/L", lo: 4.3, hi: 5.8, flo: 3.8, fhi: 5.1, places: 2},
		{key: "HGB", name: "血红蛋白(HGB)", unit: "g/L", lo: 130, hi: 175, flo: 115, fhi: 150},
		{key: "PLT", name: "血小板计数(PLT)", unit: "×10^9/L", lo: 125, hi: 350},
	}},
	"肝功能": {"肝功能", "血清", []labItem{
		{key: "ALT", name: "丙氨酸氨基转移酶(ALT)", unit: "U/L", lo: 9, hi: 50, flo: 7, fhi: 40},
		{key: "AST", name: "天门冬氨酸氨基转移酶(AST)", unit: "U/L", lo: 15, hi: 40, flo: 13, fhi: 35},
		{key: "GGT", name: "γ-谷氨酰转移酶(GGT)", unit: "U/L", lo: 10, hi: 60, flo: 7, fhi: 45},
		{key: "TBIL", name: "总胆红素(TBIL)", unit: "μmol/L", lo: 0, hi: 21, places: 1, typLo: 5, typHi: 18},
		{key: "DBIL", name: "直接胆红素(DBIL)", unit: "μmol/L", lo: 0, hi: 8, places: 1, typLo: 1, typHi: 6},
		{key: "ALB", name: "白蛋白(ALB)", unit: "g/L", lo: 40, hi: 55, places: 1},
	}},
	"肾功能": {"肾功能", "血清", []labItem{
		{key: "UREA", name: "尿素(UREA)", unit: "mmol/L", lo: 3.1, hi: 8.0, places: 2},
		{key: "CREA", name: "肌酐(CREA)", unit: "μmol/L", lo: 57, hi: 97, flo: 41, fhi: 73},
		{key: "UA", name: "尿酸(UA)", unit: "μmol/L", lo: 208, hi: 428, flo: 155, fhi: 357},
	}},
	"电解质": {"电解质", "血清", []labItem{
		{key: "K", name: "钾(K)", unit: "mmol/L", lo: 3.5, hi: 5.3, places: 2},
		{key: "Na", name: "钠(Na)", unit: "mmol/L", lo: 137, hi: 147, places: 1},
		{key: "Cl", name: "氯(Cl)", unit: "mmol/L", lo: 99, hi: 110, places: 1},
		{key: "Ca", name: "钙(Ca)", unit: "mmol/L", lo: 2.11, hi: 2.52, places: 2},
	}},
	"血脂": {"血脂", "血清", []labItem{
		{key: "TC", name: "总胆固醇(TC)", unit: "mmol/L", lo: 0, hi: 5.2, places: 2, ref: "<5.20", typLo: 3.2, typHi: 5.1},
		{key: "TG", name: "甘油三酯(TG)", unit: "mmol/L", lo: 0, hi: 1.7, places: 2, ref: "<1.70", typLo: 0.6, typHi: 1.65},
		{key: "LDL-C", name: "低密度脂蛋白胆固醇(LDL-C)", unit: "mmol/L", lo: 0, hi: 3.4, places: 2, ref: "<3.40", typLo: 1.8, typHi: 3.3},
		{key: "HDL-C", name: "高密度脂蛋白胆固醇(HDL-C)", unit: "mmol/L", lo: 1.04, places: 2, ref: ">1.04", typLo: 1.05, typHi: 1.8},
	}},
	"血糖": {"血糖", "血清", []labItem{
		{key: "GLU", name: "空腹血糖(GLU)", unit: "mmol/L", lo: 3.9, hi: 6.1, places: 2},
		{key: "HbA1c", name: "糖化血红蛋白(HbA1c)", unit: "%", lo: 4.0, hi: 6.0, places: 1},
	}},
	"心肌标志物": {"心肌标志物", "血清", []labItem{
		{key: "cTnT", name: "高敏肌钙蛋白T(hs-cTnT)", unit: "ng/L", lo: 0, hi: 14, places: 1, ref: "<14", typLo: 3, typHi: 12},
		{key: "CKMB", name: "肌酸激酶同工酶(CK-MB)", unit: "U/L", lo: 0, hi: 24, places: 1, ref: "<24", typLo: 6, typHi: 20},
		{key: "MYO", name: "肌红蛋白(MYO)", unit: "ng/mL", lo: 0, hi: 70, places: 1, ref: "<70", typLo: 15, typHi: 55},
		{key: "NTproBNP", name: "N末端B型利钠肽原(NT-proBNP)", unit: "pg/mL", lo: 0, hi: 125, ref: "<125", typLo: 20, typHi: 110},
	}},
	"凝血功能": {"凝血功能", "静脉血（枸橼酸钠抗凝）", []labItem{
		{key: "PT", name: "凝血酶原时间(PT)", unit: "s", lo: 9.4, hi: 12.5, places: 1},
		{key: "INR", name: "国际标准化比值(INR)", lo: 0.8, hi: 1.2, places: 2},
		{key: "APTT", name: "活化部分凝血活酶时间(APTT)", unit: "s", lo: 25.1, hi: 36.5, places: 1},
		{key: "FIB", name: "纤维蛋白原(FIB)", unit: "g/L", lo: 2.0, hi: 4.0, places: 2},
		{key: "DD", name: "D-二聚体(D-D)", unit: "mg/L FEU", lo: 0, hi: 0.55, places: 2, ref: "<0.55", typLo: 0.1, typHi: 0.45},
	}},
	"炎症指标": {"炎症指标", "血清", []labItem{
		{key: "CRP", name: "C反应蛋白(CRP)", unit: "mg/L", lo: 0, hi: 10, places: 1, ref: "<10", typLo: 0.5, typHi: 6},
		{key: "PCT", name: "降钙素原(PCT)", unit: "ng/mL", lo: 0, hi: 0.05, places: 2, ref: "<0.05", typLo: 0.01, typHi: 0.04},
		{key: "ESR", name: "红细胞沉降率(ESR)", unit: "mm/h", lo: 0, hi: 15, flo: 0, fhi: 20, typLo: 2, typHi: 14},
	}},
	"甲状腺功能": {"甲状腺功能", "血清", []labItem{
		{key: "FT3", name: "游离三碘甲状腺原氨酸(FT3)", unit: "pmol/L", lo: 3.1, hi: 6.8, places: 2},
		{key: "FT4", name: "游离甲状腺素(FT4)", unit: "pmol/L", lo: 12.0, hi: 22.0, places: 2},
		{key: "TSH", name: "促甲状腺激素(TSH)", unit: "mIU/L", lo: 0.27, hi: 4.2, places: 2},
	}},
	"肿瘤标志物": {"肿瘤标志物", "血清", []labItem{
		{key: "CEA", name: "癌胚抗原(CEA)", unit: "ng/mL", lo: 0, hi: 5, places: 2, ref: "<5.00", typLo: 0.8, typHi: 4.2},
		{key: "AFP", name: "甲胎蛋白(AFP)", unit: "ng/mL", lo: 0, hi: 7, places: 2, ref: "<7.00", typLo: 1, typHi: 6},
		{key: "CA199", name: "糖类抗原19-9(CA19-9)", unit: "U/mL", lo: 0, hi: 37, places: 2, ref: "<37.00", typLo: 3, typHi: 30},
		{key: "CA125", name: "糖类抗原125(CA125)", unit: "U/mL", lo: 0, hi: 35, places: 2, ref: "<35.00", typLo: 5, typHi: 30},
		{key: "CYFRA", name: "细胞角蛋白19片段(CYFRA21-1)", unit: "ng/mL", lo: 0, hi: 3.3, places: 2, ref: "<3.30", typLo: 0.8, typHi: 3},
	}},
	"血气分析": {"血气分析", "动脉血", []labItem{
		{key: "pH", name: "酸碱度(pH)", lo: 7.35, hi: 7.45, places: 3},
		{key: "PaCO2", name: "二氧化碳分压(PaCO2)", unit: "mmHg", lo: 35, hi: 45, places: 1},
		{key: "PaO2", name: "氧分压(PaO2)", unit: "mmHg", lo: 80, hi: 100, places: 1},
		{key: "HCO3", name: "碳酸氢根(HCO3-)", unit: "mmol/L", lo: 22, hi: 27, places: 1},
		{key: "Lac", name: "乳酸(Lac)", unit: "mmol/L", lo: 0.5, hi: 1.6, places: 1},
		{key: "SaO2", name: "动脉血氧饱和度(SaO2)", unit: "%", lo: 95, hi: 100, places: 1, typLo: 95.5, typHi: 99.5},
	}},
	"碳氧血红蛋白": {"碳氧血红蛋白", "动脉血", []labItem{
		{key: "COHb", name: "碳氧血红蛋白(COHb)", unit: "%", lo: 0, hi: 2, places: 1, ref: "<2.0", typLo: 0.4, typHi: 1.8},
	}},
	"尿常规": {"尿常规", "尿液", []labItem{
		{key: "U-SG", name: "尿比重(SG)", lo: 1.003, hi: 1.030, places: 3},
		{key: "U-pH", name: "尿酸碱度(pH)", lo: 4.5, hi: 8.0, places: 1},
		{key: "U-PRO", name: "尿蛋白(PRO)", normal: "阴性(-)"},
		{key: "U-GLU", name: "尿葡萄糖(GLU)", normal: "阴性(-)"},
		{key: "U-KET", name: "酮体(KET)", normal: "阴性(-)"},
		{key: "U-BLD", name: "隐血(BLD)", normal: "阴性(-)"},
		{key: "U-WBC", name: "白细胞(WBC)", unit: "/μL", lo: 0, hi: 25, ref: "0-25", typLo: 1, typHi: 15},
		{key: "U-RBC", name: "红细胞(RBC)", unit: "/μL", lo: 0, hi: 17, ref: "0-17", typLo: 0, typHi: 10},
	}},
	"便常规": {"便常规", "粪便", []labItem{
		{key: "S-COL", name: "颜色", normal: "黄色"},
		{key: "S-FORM", name: "性状", normal: "软便"},
		{key: "S-WBC", name: "白细胞", normal: "未见"},
		{key: "S-RBC", name: "红细胞", normal: "未见"},
		{key: "S-OB", name: "隐血试验", normal: "阴性(-)"},
		{key: "S-RV", name: "轮状病毒抗原", normal: "阴性(-)"},
	}},
	"淀粉酶": {"淀粉酶", "血清", []labItem{
		{key: "AMY", name: "淀粉酶(AMY)", unit: "U/L", lo: 35, hi: 135},
		{key: "LPS", name: "脂肪酶(LPS)", unit: "U/L", lo: 13, hi: 60},
	}},
	"乙肝病毒学": {"乙肝病毒学", "血清", []labItem{
		{key: "HBsAg", name: "乙肝表面抗原(HBsAg)", unit: "IU/mL", lo: 0, hi: 0.05, places: 2, ref: "<0.05", typLo: 0, typHi: 0.03},
		{key: "HBeAg", name: "乙肝e抗原(HBeAg)", unit: "S/CO", lo: 0, hi: 1, places: 2, ref: "<1.00", typLo: 0.2, typHi: 0.5},
		{key: "HBVDNA", name: "乙肝病毒DNA(HBV-DNA)", unit: "IU/mL", normal: "<20（低于检测下限）"},
	}},
	"丙戊酸血药浓度": {"丙戊酸血药浓度", "血清（服药后谷浓度）", []labItem{
		{key: "VPA", name: "丙戊酸(VPA)", unit: "μg/mL", lo: 50, hi: 100, places: 1},
	}},
	"血锂浓度": {"血锂浓度", "血清（末次服药后12小时）", []labItem{
		{key: "Li", name: "锂(Li)", unit: "mmol/L", lo: 0.6, hi: 1.2, places: 2},
	}},
	"血HCG": {"血HCG", "血清", []labItem{
		{key: "HCG", name: "β-人绒毛膜促性腺激素(β-HCG)", unit: "mIU/mL", lo: 0, hi: 5, places: 1, ref: "<5.0（非孕期）", typLo: 0.1, typHi: 2},
	}},
}

// abnormal is one abnormal result a condition produces.
type abnormal struct{ key, tpl string }

// parseAbn reads a condition's abn string: "WBC 11.5-16.8; U-PRO 阳性(+)|阳性(++)".
func parseAbn(s string) []abnormal {
	var out []abnormal
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, tpl, _ := strings.Cut(part, " ")
		out = append(out, abnormal{key, strings.TrimSpace(tpl)})
	}
	return out
}

// labResult is one printed result.
type labResult struct {
	item  labItem
	value string
	flag  string // ↑, ↓, * or ""
	ref   string
}

// results fills in a panel for a patient; abn overrides the normal values.
func (g *Generator) results(p panel, female bool, abn []abnormal, e *expander) []labResult {
	out := make([]labResult, 0, len(p.items))
	for _, it := range p.items {
		lo, hi := it.lo, it.hi
		if female && (it.flo != 0 || it.fhi != 0) {
			lo, hi = it.flo, it.fhi
		}
		ref := it.ref
		if ref == "" && it.normal == "" {
			ref = strconv.FormatFloat(lo, 'f', it.places, 64) + "-" + strconv.FormatFloat(hi, 'f', it.places, 64)
		}
		if it.normal != "" && ref == "" {
			ref = it.normal
		}
		r := labResult{item: it, ref: ref}
		tpl, isAbn := "", false
		for _, a := range abn {
			if a.key == it.key {
				tpl, isAbn = a.tpl, true
			}
		}
		switch {
		case isAbn:
			if strings.ContainsAny(tpl, "|-") && !strings.Contains(tpl, "{") {
				tpl = "{" + tpl + "}"
			}
			r.value = e.expand(tpl)
		case it.normal != "":
			r.value = it.normal
		default:
			a, b := lo+(hi-lo)*0.05, hi-(hi-lo)*0.05
			if it.typLo != 0 || it.typHi != 0 {
				a, b = it.typLo, it.typHi
			}
			r.value = strconv.FormatFloat(a+(b-a)*g.rng.Float64(), 'f', it.places, 64)
		}
		if v, err := strconv.ParseFloat(r.value, 64); err == nil && it.normal == "" {
			switch {
			case hi != 0 && v > hi:
				r.flag = "↑"
			case v < lo:
				r.flag = "↓"
			}
		} else if isAbn {
			r.flag = "*"
		}
		out = append(out, r)
	}
	return out
}
