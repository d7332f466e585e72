package vulns

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// openvasResult is one result of a Greenbone/OpenVAS XML report (GMP's
// get_reports answer, or the report downloaded as XML from the web
// interface), as medguard reads it.
type openvasResult struct {
	Name string `xml:"name"`
	Host struct {
		Address  string `xml:",chardata"`
		Hostname string `xml:"hostname"`
	} `xml:"host"`
	Port string `xml:"port"`
	NVT  struct {
		OID      string `xml:"oid,attr"`
		Name     string `xml:"name"`
		CVSSBase string `xml:"cvss_base"`
		Tags     string `xml:"tags"`
		Solution string `xml:"solution"`
		CVE      string `xml:"cve"` // GMP 7 and older
		Refs     struct {
			Ref []struct {
				Type string `xml:"type,attr"`
				ID   string `xml:"id,attr"`
			} `xml:"ref"`
		} `xml:"refs"`
	} `xml:"nvt"`
	Threat      string `xml:"threat"`
	Severity    string `xml:"severity"`
	Description string `xml:"description"`
}

// ParseOpenVAS reads a Greenbone/OpenVAS XML report with encoding/xml.
// The document's root is <get_reports_response> or <report>; every
// <result> of its <results> is a finding, except log-level results and
// those overridden as false positives (severity 0 or below). Severity
// follows the result's score (≥ 9 critical, ≥ 7 high, ≥ 4 medium, else
// low); the rule is the NVT's OID, the location the host and port, which
// with the OID make the fingerprint. A document type declaration is
// refused: no entity is ever defined, let alone fetched.
func ParseOpenVAS(data []byte) (*Report, error) {
	if head, _, _ := bytes.Cut(data, []byte("?>")); bytes.HasPrefix(bytes.TrimSpace(data), []byte("<?xml")) &&
		bytes.Contains(bytes.ToLower(head), []byte("encoding")) && !bytes.Contains(bytes.ToLower(head), []byte("utf-8")) {
		return nil, bad("the report must be UTF-8")
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	r := &Report{Tool: "openvas"}
	var stack []string
	rooted := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("the report is not well-formed XML: line %d", line(d, data))
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, bad("the report declares a document type; OpenVAS reports have none and external entities are refused")
		case xml.StartElement:
			name := t.Name.Local
			if len(stack) == 0 {
				if name != "get_reports_response" && name != "report" {
					return nil, bad("the report is not an OpenVAS report (its root is <%s>)", clean(name, 32, false))
				}
				rooted = true
			}
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			switch {
			case name == "result" && parent == "results":
				var res openvasResult
				if err := d.DecodeElement(&res, &t); err != nil {
					return nil, bad("result %d is not well-formed: line %d", len(r.Findings)+1, line(d, data))
				}
				f, ok, err := openvasFinding(&res)
				if err != nil {
					return nil, bad("result at line %d: %s", line(d, data), err)
				}
				if ok {
					r.Findings = append(r.Findings, f)
					if len(r.Findings) > MaxFindings {
						return nil, bad("the report holds more than %d findings", MaxFindings)
					}
				}
				continue
			case (name == "scan_start" || name == "creation_time" || name == "timestamp") && r.ScannedAt.IsZero():
				var s string
				if err := d.DecodeElement(&s, &t); err != nil {
					return nil, bad("the report is not well-formed XML: line %d", line(d, data))
				}
				r.ScannedAt = parseTime(s)
				continue
			}
			stack = append(stack, name)
			if len(stack) > 64 {
				return nil, bad("the report nests elements too deeply")
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if !rooted {
		return nil, bad("the report is empty")
	}
	return r, nil
}

func openvasFinding(res *openvasResult) (Finding, bool, error) {
	if strings.EqualFold(strings.TrimSpace(res.Threat), "false positive") {
		return Finding{}, false, nil
	}
	sev := strings.TrimSpace(res.Severity)
	if sev == "" {
		sev = strings.TrimSpace(res.NVT.CVSSBase)
	}
	score, err := strconv.ParseFloat(sev, 64)
	if err != nil {
		return Finding{}, false, errors.New("no numeric severity")
	}
	if score <= 0 || score > 10 {
		return Finding{}, false, nil // log level, or overridden
	}
	oid := strings.TrimSpace(res.NVT.OID)
	if oid == "" {
		return Finding{}, false, errors.New("no NVT oid")
	}
	host := strings.TrimSpace(res.Host.Address)
	if host == "" {
		host = strings.TrimSpace(res.Host.Hostname)
	}
	port := strings.TrimSpace(res.Port)
	f := Finding{RuleID: oid, Title: res.Name, Severity: SeverityOf(score), Score: score, Location: strings.TrimSpace(host + " " + port),
		Key: host + "\x00" + port}
	if f.Title == "" {
		f.Title = res.NVT.Name
	}
	var ids []string
	for _, ref := range res.NVT.Refs.Ref {
		switch strings.ToLower(ref.Type) {
		case "cve":
			ids = append(ids, ref.ID)
		case "url":
			if f.Reference == "" {
				f.Reference = ref.ID
			}
		}
	}
	f.CVEs = cves(append(ids, res.NVT.CVE)...)
	tags := map[string]string{}
	for _, kv := range strings.Split(res.NVT.Tags, "|") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			tags[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var desc []string
	for _, s := range []string{tags["summary"], strings.TrimSpace(res.Description), tags["impact"]} {
		if s != "" {
			desc = append(desc, s)
		}
	}
	solution := strings.TrimSpace(res.NVT.Solution)
	if solution == "" {
		solution = tags["solution"]
	}
	if solution != "" {
		desc = append(desc, "Solution: "+solution)
	}
	f.Description = strings.Join(desc, "\n\n")
	return f, true, nil
}

// line is the line the decoder stopped on, for an error.
func line(d *xml.Decoder, data []byte) int {
	off := min(int(d.InputOffset()), len(data))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}
