package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp/totp"

	"medguard/internal/idnum"
)

// Hospital is what Setup made: one department, its doctors (each signed in
// with a full session) and the records of the department, which every one
// of its doctors may read.
type Hospital struct {
	Department string // the department's code
	Doctors    []Doctor
	Patients   int
	PatientIDs []string
	Records    []string // record ids
	Took       time.Duration

	// What the load generator may search for and the versions of the
	// records it may update (see ops.go).
	searches []map[string]string // one search body per patient
	versions []int               // Records' versions, as written
}

// Doctor is a doctor of the department with a full session.
type Doctor struct {
	Username string
	Token    string
}

// SetupOptions say how big a hospital to set up and as whom: the
// administrator asks for the doctors' roles, the security administrator
// approves them (four eyes). Each signs in with a password and enrols a
// second factor at the first sign-in; an account that has one already
// needs its TOTP secret (base32).
type SetupOptions struct {
	AdminUser          string // default "admin"
	AdminPassword      string
	AdminTOTPSecret    string
	SecurityUser       string // default "security"
	SecurityPassword   string
	SecurityTOTPSecret string
	Doctors            int
	Patients           int
	Records            int
	// Parallel is how many API calls setup makes at once (default 16).
	Parallel int
	// Progress, if not nil, receives a line per step.
	Progress io.Writer
}

// Setup creates the hospital through the API, as the administrator and
// then as its doctors: a department with a name unique to this run, the
// doctors (who sign in and enrol TOTP, as the server requires of doctors),
// patients spread over the doctors, and records spread over the patients.
// It uses only the public API, so it works against any server.
func Setup(ctx context.Context, c *Client, o SetupOptions) (*Hospital, error) {
	if o.AdminUser == "" {
		o.AdminUser = "admin"
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Doctors < 1 || o.Patients < 1 || o.Records < 1 {
		return nil, errors.New("bench: at least one doctor, one patient and one record are needed")
	}
	start := time.Now()
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	var runID [4]byte
	rand.Read(runID[:])
	run := hex.EncodeToString(runID[:])
	rng := mrand.New(mrand.NewPCG(uint64(runID[0])<<24|uint64(runID[1])<<16|uint64(runID[2])<<8|uint64(runID[3]), 2026))

	if o.SecurityUser == "" {
		o.SecurityUser = "security"
	}
	admin, err := staffSignIn(ctx, c, o.AdminUser, o.AdminPassword, o.AdminTOTPSecret)
	if err != nil {
		return nil, fmt.Errorf("administrator sign-in: %w", err)
	}
	security, err := staffSignIn(ctx, c, o.SecurityUser, o.SecurityPassword, o.SecurityTOTPSecret)
	if err != nil {
		return nil, fmt.Errorf("security administrator sign-in: %w", err)
	}

	h := &Hospital{Department: "BENCH-" + strings.ToUpper(run), Patients: o.Patients}
	if err := c.call(ctx, "POST", "/api/v1/departments", admin,
		map[string]string{"code": h.Department, "name": "基准测试科 " + run}, 201, nil); err != nil {
		return nil, fmt.Errorf("department: %w", err)
	}

	// Doctors: created by the administrator, their role approved by the
	// security administrator, then each signs in and enrols TOTP.
	h.Doctors = make([]Doctor, o.Doctors)
	password := "Bench#" + run + "Yisheng9"
	err = parallel(ctx, o.Doctors, o.Parallel, func(ctx context.Context, i int) error {
		d := &h.Doctors[i]
		d.Username = fmt.Sprintf("bench-%s-%03d", run, i+1)
		var created struct {
			Pending []struct {
				ID string `json:"id"`
			} `json:"pending_approvals"`
		}
		if err := c.call(ctx, "POST", "/api/v1/users", admin, map[string]any{"username": d.Username,
			"display_name": chineseName(mrand.New(mrand.NewPCG(uint64(i), 7))), "department": h.Department,
			"roles": []string{"doctor"}, "password": password}, 201, &created); err != nil {
			return err
		}
		for _, a := range created.Pending {
			if err := c.call(ctx, "POST", "/api/v1/approvals/"+a.ID+"/approve", security,
				map[string]string{"note": "基准测试"}, 200, nil); err != nil {
				return err
			}
		}
		var err error
		d.Token, err = staffSignIn(ctx, c, d.Username, password, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("doctors: %w", err)
	}
	progress("setup: department %s, %d doctors signed in with TOTP", h.Department, o.Doctors)

	// Patients: patient i is registered by doctor i mod N.
	pats := make([]map[string]any, o.Patients)
	for i := range pats {
		pats[i] = patient(rng, run, i)
	}
	patientIDs := make([]string, o.Patients)
	h.searches = make([]map[string]string, o.Patients)
	err = parallel(ctx, o.Patients, o.Parallel, func(ctx context.Context, i int) error {
		tok := h.Doctors[i%o.Doctors].Token
		var out struct {
			ID string `json:"id"`
		}
		err := c.call(ctx, "POST", "/api/v1/patients", tok, pats[i], 201, &out)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == 409 {
			// An existing server may already hold this ID number or 病案号.
			p := pats[i]
			delete(p, "id_number")
			delete(p, "mrn")
			err = c.call(ctx, "POST", "/api/v1/patients", tok, p, 201, &out)
		}
		patientIDs[i] = out.ID
		// Searched for by 病案号 when it has one, else by name.
		if mrn, ok := pats[i]["mrn"].(string); ok {
			h.searches[i] = map[string]string{"mrn": mrn}
		} else {
			h.searches[i] = map[string]string{"name": pats[i]["name"].(string)}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("patients: %w", err)
	}
	h.PatientIDs = patientIDs
	progress("setup: %d patients registered", o.Patients)

	// Records: record j is patient j mod P's, written by that patient's doctor.
	recs := make([]map[string]any, o.Records)
	for j := range recs {
		recs[j] = record(rng, h.Department)
	}
	h.Records = make([]string, o.Records)
	h.versions = make([]int, o.Records)
	var done atomic.Int64
	err = parallel(ctx, o.Records, o.Parallel, func(ctx context.Context, j int) error {
		p := j % o.Patients
		var out struct {
			ID      string `json:"id"`
			Version int    `json:"version"`
		}
		err := c.call(ctx, "POST", "/api/v1/patients/"+patientIDs[p]+"/records", h.Doctors[p%o.Doctors].Token, recs[j], 201, &out)
		h.Records[j], h.versions[j] = out.ID, out.Version
		if n := done.Add(1); o.Records >= 10000 && n%5000 == 0 {
			progress("setup: %d of %d records", n, o.Records)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	h.Took = time.Since(start)
	progress("setup: %d records written in %.1f s", o.Records, h.Took.Seconds())
	return h, nil
}

// staffSignIn signs a member of staff in and returns a full session's
// token: at the first sign-in it enrols TOTP; afterwards it needs the TOTP
// secret to make a code.
func staffSignIn(ctx context.Context, c *Client, username, password, secret string) (string, error) {
	var in struct {
		Token      string `json:"token"`
		Enrollment bool   `json:"mfa_enrollment_required"`
	}
	body := map[string]string{"username": username, "password": password}
	if secret != "" {
		code, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			return "", err
		}
		body["totp"] = code
	}
	if err := c.call(ctx, "POST", "/api/v1/auth/login", "", body, 200, &in); err != nil {
		return "", err
	}
	if !in.Enrollment {
		return in.Token, nil
	}
	var enr struct {
		Secret string `json:"secret"`
	}
	if err := c.call(ctx, "POST", "/api/v1/auth/totp", in.Token, nil, 200, &enr); err != nil {
		return "", err
	}
	code, err := totp.GenerateCode(enr.Secret, time.Now())
	if err != nil {
		return "", err
	}
	var full struct {
		Token string `json:"token"`
	}
	if err := c.call(ctx, "POST", "/api/v1/auth/totp/confirm", in.Token, map[string]string{"code": code}, 200, &full); err != nil {
		return "", err
	}
	return full.Token, nil
}

// parallel calls f(ctx, i) for i in [0, n) with at most workers calls at
// once, and returns the first error (cancelling the rest).
func parallel(ctx context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// Synthetic patients and records, in Chinese.

var (
	surnames   = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	givenChars = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美兰红霞平刚桂英建国志宏玉珍文斌波鹏辉婷雪琳晨浩宇欣怡子涵梓萱俊杰嘉怡雨轩一诺思远")
	places     = []struct{ area, city string }{
		{"110105", "北京市朝阳区"}, {"110108", "北京市海淀区"}, {"310104", "上海市徐汇区"}, {"440106", "广州市天河区"},
		{"330106", "杭州市西湖区"}, {"510107", "成都市武侯区"}, {"420106", "武汉市武昌区"}, {"320102", "南京市玄武区"},
	}
	roads = []string{"建国路", "中山路", "人民路", "解放路", "长江路", "和平街", "文化路", "青年路", "光明街", "幸福路"}
)

func chineseName(r *mrand.Rand) string {
	var b strings.Builder
	b.WriteRune(surnames[r.IntN(len(surnames))])
	for range 1 + r.IntN(2) {
		b.WriteRune(givenChars[r.IntN(len(givenChars))])
	}
	return b.String()
}

// patient makes the i-th synthetic patient with a valid resident ID number.
func patient(r *mrand.Rand, run string, i int) map[string]any {
	place := places[r.IntN(len(places))]
	birth := time.Date(1935, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(85*365))
	seq := r.IntN(1000)
	gender := "female"
	if seq%2 == 1 {
		gender = "male"
	}
	p := map[string]any{
		"name": chineseName(r), "gender": gender, "birth_date": birth.Format(time.DateOnly),
		"phone":   fmt.Sprintf("1%d%09d", 3+r.IntN(7), r.IntN(1_000_000_000)),
		"address": fmt.Sprintf("%s%s%d号%d号楼%d室", place.city, roads[r.IntN(len(roads))], 1+r.IntN(300), 1+r.IntN(20), 101+r.IntN(2000)),
		"mrn":     fmt.Sprintf("B%s%07d", run, i+1),
	}
	if id, err := idnum.Make(place.area, birth, seq); err == nil {
		p["id_number"] = id
	}
	return p
}

var recordKinds = []struct{ typ, title string }{
	{"admission_note", "入院记录"}, {"progress_note", "病程记录"}, {"discharge_summary", "出院小结"},
	{"operation_note", "手术记录"}, {"lab_report", "检验报告"}, {"imaging_report", "影像报告"}, {"prescription", "处方"},
}

var complaints = []string{"反复胸闷胸痛3年，加重2天", "咳嗽咳痰伴发热5天", "上腹部疼痛1周", "头晕头痛伴恶心3天",
	"双下肢水肿1月", "活动后气促半年", "右膝关节疼痛2年", "血糖控制不佳1月"}

var diagnoses = []string{"冠状动脉粥样硬化性心脏病", "社区获得性肺炎", "慢性胃炎", "高血压病3级（很高危）",
	"慢性心力衰竭", "2型糖尿病", "膝关节骨性关节炎", "慢性阻塞性肺疾病急性加重"}

var paragraphs = []string{
	"患者于入院前出现上述症状，休息后可稍缓解，无放射痛，无大汗淋漓，无晕厥黑矇。门诊查心电图示窦性心律，ST-T改变。为进一步诊治收入我科。",
	"既往史：高血压病史十余年，最高血压180/100mmHg，规律口服苯磺酸氨氯地平片5mg每日一次，血压控制尚可。否认糖尿病史，否认肝炎、结核等传染病史，否认手术外伤史，否认输血史，否认药物及食物过敏史。",
	"体格检查：体温36.8℃，脉搏78次/分，呼吸18次/分，血压142/86mmHg。神志清楚，精神可，双肺呼吸音清，未闻及干湿啰音。心率78次/分，律齐，各瓣膜听诊区未闻及病理性杂音。腹软，无压痛及反跳痛，肝脾肋下未触及。双下肢无水肿。",
	"辅助检查：血常规白细胞7.2×10^9/L，中性粒细胞百分比65%，血红蛋白132g/L，血小板218×10^9/L。肝肾功能、电解质未见明显异常。肌钙蛋白I阴性。胸部X线片示双肺纹理增粗。",
	"诊疗计划：完善相关检查，予抗血小板、调脂稳定斑块、控制血压等对症支持治疗，监测生命体征变化，必要时行冠状动脉造影检查。向患者及家属交代病情，表示理解并同意。",
	"今日查房，患者诉症状较前明显好转，夜间睡眠可，饮食二便正常。查体同前。继续当前治疗方案，密切观察病情变化，复查血常规及生化指标。",
	"出院医嘱：低盐低脂饮食，适当活动，避免劳累；规律服药，不可自行停药；监测血压、心率；出院后两周心内科门诊复诊，如有不适随时就诊。",
}

// record makes a synthetic record for the department: about 1–2 KB of text.
func record(r *mrand.Rand, dept string) map[string]any {
	k := recordKinds[r.IntN(len(recordKinds))]
	c, d := complaints[r.IntN(len(complaints))], diagnoses[r.IntN(len(diagnoses))]
	var b strings.Builder
	b.WriteString("主诉：" + c + "。\n")
	first := r.IntN(len(paragraphs))
	for i := range 3 + r.IntN(3) {
		b.WriteString(paragraphs[(first+i)%len(paragraphs)])
		b.WriteByte('\n')
	}
	b.WriteString("初步诊断：" + d + "。")
	class := "general"
	switch n := r.IntN(10); {
	case n < 2:
		class = "core"
	case n < 6:
		class = "important"
	}
	return map[string]any{"type": k.typ, "department": dept, "title": k.title, "text": b.String(),
		"classification": class, "fields": map[string]string{"主诉": c, "诊断": d}}
}
