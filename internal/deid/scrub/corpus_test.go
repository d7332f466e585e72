package scrub

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard/internal/deid/mask"
	"medguard/internal/synth"
)

var update = flag.Bool("update", false, "rewrite testdata/synth.jsonl from internal/synth")

// Labels the generator knows from how internal/synth writes notes: every
// mobile number, every date in its layouts, every age over 89.
var (
	reSynthMobile = regexp.MustCompile(`1[3-9]\d{9}`)
	reSynthDate   = regexp.MustCompile(`\d{4}-\d{2}-\d{2}|\d{4}年\d{1,2}月\d{1,2}日`)
	reSynthAge    = regexp.MustCompile(`(?:9\d|1\d\d)岁`)
	reContact     = regexp.MustCompile(`联系人：(\p{Han}+)（`)
	reDiagNumber  = regexp.MustCompile(`^\d+\.`)
)

type span struct {
	Kind Kind   `json:"kind"`
	Text string `json:"text"`
}

type note struct {
	ID    string   `json:"id"`
	Lang  Lang     `json:"lang"`
	Text  string   `json:"text"`
	Spans []span   `json:"spans"`
	Keep  []string `json:"keep"`
}

// TestWriteSynthCorpus rewrites testdata/synth.jsonl when run with
// -update: notes from internal/synth with identifiers planted in them
// (another person's name, phone, address, ID number; institutions, dates
// in several layouts, insurance and admission numbers, emails), labelled
// from what the generator knows, not from what the scrubber finds.
func TestWriteSynthCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/synth.jsonl")
	}
	g := synth.New(12)
	rng := rand.New(rand.NewPCG(12, 34))
	at := synth.ReferenceDate.AddDate(0, -1, 0)
	var out []note
	depts := synth.Departments()
	for i := 0; i < 300; i++ {
		dept := depts[i%len(depts)]
		p := g.PersonFor(dept)
		other := g.Person()
		rt := g.RecordType(dept)
		rec := g.Record(dept, rt, p, at.AddDate(0, 0, -rng.IntN(300)))
		n := note{ID: fmt.Sprintf("synth-%03d", i+1), Lang: Chinese, Text: rec.Text}
		add := func(k Kind, s string) {
			if s != "" {
				n.Spans = append(n.Spans, span{k, s})
			}
		}
		// Plant one to three sentences after sentence ends.
		for k := 0; k < 1+rng.IntN(3); k++ {
			sent, spans := plant(rng, g, other)
			cut := strings.Index(n.Text, "。")
			if cut < 0 || rng.IntN(3) == 0 {
				n.Text += sent
			} else {
				stops := []int{}
				for j := 0; j < len(n.Text); {
					m := strings.Index(n.Text[j:], "。")
					if m < 0 {
						break
					}
					stops = append(stops, j+m+len("。"))
					j += m + len("。")
				}
				c := stops[rng.IntN(len(stops))]
				n.Text = n.Text[:c] + sent + n.Text[c:]
			}
			n.Spans = append(n.Spans, spans...)
		}
		add(Name, p.Name)
		add(IDNumber, p.IDNumber)
		add(Address, p.Address)
		add(RecordNumber, p.MRN)
		for _, m := range reContact.FindAllStringSubmatch(n.Text, -1) {
			add(Name, m[1])
		}
		for _, m := range reSynthMobile.FindAllString(n.Text, -1) {
			if !strings.Contains(p.IDNumber, m) && !strings.Contains(other.IDNumber, m) {
				add(Phone, m)
			}
		}
		for _, m := range reSynthDate.FindAllString(n.Text, -1) {
			add(Date, m)
		}
		for _, m := range reSynthAge.FindAllString(n.Text, -1) {
			add(Age, m)
		}
		for k, v := range rec.Fields {
			if !strings.Contains(k, "诊断") {
				continue
			}
			for _, d := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune("　 ；;，,", r) }) {
				d = reDiagNumber.ReplaceAllString(d, "")
				if d != "" && strings.Contains(n.Text, d) && !strings.Contains(d, p.Name) {
					n.Keep = append(n.Keep, d)
				}
			}
		}
		out = append(out, dedupe(n))
	}
	f, err := os.Create(filepath.Join("testdata", "synth.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, n := range out {
		if err := enc.Encode(n); err != nil {
			t.Fatal(err)
		}
	}
}

func dedupe(n note) note {
	seen := map[span]bool{}
	var spans []span
	for _, s := range n.Spans {
		if !seen[s] && strings.Contains(n.Text, s.Text) {
			seen[s] = true
			spans = append(spans, s)
		}
	}
	n.Spans = spans
	keep := map[string]bool{}
	var ks []string
	for _, k := range n.Keep {
		if !keep[k] {
			keep[k] = true
			ks = append(ks, k)
		}
	}
	n.Keep = ks
	return n
}

var (
	relations   = []string{"女儿", "儿子", "妻子", "丈夫", "侄子", "外甥女", "朋友"}
	instKinds   = []string{"第一人民医院", "人民医院", "中心医院", "中医医院", "妇幼保健院", "第三医院", "骨科医院", "口腔医院"}
	planSurname = []string{"欧阳", "司马", "上官", "诸葛", "皇甫", "令狐"}
)

// plant returns a sentence carrying other's identifiers in one of several
// shapes, and its labels.
func plant(rng *rand.Rand, g *synth.Generator, other synth.Person) (string, []span) {
	phone := other.Phone
	switch rng.IntN(4) {
	case 1:
		phone = phone[:3] + "-" + phone[3:7] + "-" + phone[7:]
	case 2:
		phone = phone[:3] + " " + phone[3:7] + " " + phone[7:]
	case 3:
		phone = "+86 " + phone
	}
	name := other.Name
	if rng.IntN(8) == 0 { // now and then a compound surname
		name = planSurname[rng.IntN(len(planSurname))] + string([]rune(other.Name)[len([]rune(other.Name))-1:])
	}
	day := time.Date(2015+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	var date string
	switch rng.IntN(5) {
	case 0:
		date = day.Format("2006年1月2日")
	case 1:
		date = day.Format("2006/01/02")
	case 2:
		date = day.Format("2006.1.2")
	case 3:
		date = day.Format("1月2日")
	default:
		date = day.Format("2006-01-02")
	}
	district := mask.MaskAddress(other.Address)
	inst := district + instKinds[rng.IntN(len(instKinds))]
	id := other.IDNumber
	if rng.IntN(6) == 0 {
		id = id[:6] + id[8:17] // the old 15-digit form
	}
	rec := fmt.Sprintf("%s%08d", []string{"ZY", "", "BJ", "A"}[rng.IntN(4)], rng.IntN(100000000))
	email := fmt.Sprintf("%s%d@%s", []string{"wang", "li.na", "zhangwei", "chen_x"}[rng.IntN(4)], rng.IntN(1000), []string{"163.com", "qq.com", "126.com", "hospital.cn"}[rng.IntN(4)])
	landline := fmt.Sprintf("0%d-%d", 10+rng.IntN(890), 20000000+rng.IntN(79999999))
	rel := relations[rng.IntN(len(relations))]
	switch rng.IntN(8) {
	case 0:
		return fmt.Sprintf("患者%s%s陪同就诊，联系电话%s。", rel, name, phone), []span{{Name, name}, {Phone, phone}}
	case 1:
		return fmt.Sprintf("%s曾在%s就诊。", date, inst), []span{{Date, date}, {Institution, inst}}
	case 2:
		adm := fmt.Sprintf("%08d", rng.IntN(100000000))
		return fmt.Sprintf("医保卡号：%s，住院号%s。", rec, adm), []span{{RecordNumber, rec}, {RecordNumber, adm}}
	case 3:
		return fmt.Sprintf("家属%s现住%s，邮箱%s。", name, other.Address, email), []span{{Name, name}, {Address, other.Address}, {Email, email}}
	case 4:
		return fmt.Sprintf("委托人身份证号%s，电话%s。", id, landline), []span{{IDNumber, id}, {Phone, landline}}
	case 5:
		return fmt.Sprintf("由%s医生于%s电话随访。", name, date), []span{{Name, name}, {Date, date}}
	case 6:
		return fmt.Sprintf("%s（%s）签署知情同意书。", name, rel), []span{{Name, name}}
	default:
		return fmt.Sprintf("转自%s，%s入院。", inst, date), []span{{Institution, inst}, {Date, date}}
	}
}
