package compliance

import (
	"context"
	"strings"

	"go.yaml.in/yaml/v3"

	"medguard"
)

// The catalogue as a library an outside GRC tool can import: the YAML
// framework format of CISO Assistant (a library holding one framework
// whose requirement nodes are the checks, grouped by standard; each
// check's clauses are its annotation). Chinese first, English as the
// translation.

type cisoNode struct {
	URN          string                     `yaml:"urn"`
	Assessable   bool                       `yaml:"assessable"`
	Depth        int                        `yaml:"depth"`
	ParentURN    string                     `yaml:"parent_urn,omitempty"`
	RefID        string                     `yaml:"ref_id"`
	Name         string                     `yaml:"name,omitempty"`
	Description  string                     `yaml:"description,omitempty"`
	Annotation   string                     `yaml:"annotation,omitempty"`
	Translations map[string]cisoTranslation `yaml:"translations,omitempty"`
}

type cisoTranslation struct {
	Name        string `yaml:"name,omitempty"`
	Description string `yaml:"description,omitempty"`
	Annotation  string `yaml:"annotation,omitempty"`
}

type cisoFramework struct {
	URN              string                     `yaml:"urn"`
	RefID            string                     `yaml:"ref_id"`
	Name             string                     `yaml:"name"`
	Description      string                     `yaml:"description"`
	Translations     map[string]cisoTranslation `yaml:"translations"`
	RequirementNodes []cisoNode                 `yaml:"requirement_nodes"`
}

type cisoLibrary struct {
	URN          string                     `yaml:"urn"`
	Locale       string                     `yaml:"locale"`
	RefID        string                     `yaml:"ref_id"`
	Name         string                     `yaml:"name"`
	Description  string                     `yaml:"description"`
	Copyright    string                     `yaml:"copyright"`
	Version      int                        `yaml:"version"`
	Provider     string                     `yaml:"provider"`
	Packager     string                     `yaml:"packager"`
	Translations map[string]cisoTranslation `yaml:"translations"`
	Objects      struct {
		Framework cisoFramework `yaml:"framework"`
	} `yaml:"objects"`
}

// cisoGroups are the requirement groups, by the prefix of a check's
// first clause.
var cisoGroups = []struct{ prefix, ref, zh, en string }{
	{"GB/T 22239-2019", "gbt22239", "GB/T 22239-2019 网络安全等级保护基本要求（第三级）", "GB/T 22239-2019 MLPS 2.0 baseline, level 3"},
	{"GB/T 39786-2021", "gbt39786", "GB/T 39786-2021 信息系统密码应用基本要求（第三级）", "GB/T 39786-2021 cryptography application, level 3"},
	{"seed", "hospital", "医院自身制度", "The hospital's own rules"},
}

// CISOAssistant returns the catalogue as a CISO Assistant library (YAML).
func (c *Catalogue) CISOAssistant() ([]byte, error) {
	const base = "urn:medguard:risk:"
	var lib cisoLibrary
	lib.URN, lib.Locale, lib.RefID, lib.Version = base+"library:medguard-compliance-checks", "zh", "medguard-compliance-checks", 1
	lib.Name, lib.Provider, lib.Packager, lib.Copyright = "medguard 合规检查目录", "medguard", "medguard", "medguard"
	lib.Description = "medguard 的合规检查目录（版本 " + c.Version + "）：实测项由实时数据计算，证据项由责任人提交、另一人复核。"
	lib.Translations = map[string]cisoTranslation{"en": {Name: "medguard compliance checks",
		Description: "medguard's catalogue of compliance checks (version " + c.Version + "): measured checks are computed from live data, attested ones are evidence a second person signs."}}
	fw := &lib.Objects.Framework
	fw.URN, fw.RefID, fw.Name, fw.Description = base+"framework:medguard-compliance-checks", "medguard-"+c.Version, lib.Name, lib.Description
	fw.Translations = lib.Translations
	for _, g := range cisoGroups {
		parent := base + "req_node:medguard-compliance-checks:" + g.ref
		var children []cisoNode
		for _, ch := range c.Checks {
			if len(ch.Clauses) == 0 || !strings.HasPrefix(ch.Clauses[0], g.prefix) {
				continue
			}
			kind := map[string][2]string{Measured: {"实测", "measured"}, Attested: {"证据", "attested"}}[ch.Kind]
			children = append(children, cisoNode{URN: parent + ":" + strings.ReplaceAll(ch.ID, "_", "-"), Assessable: true, Depth: 2,
				ParentURN: parent, RefID: ch.ID, Name: ch.Title.ZH,
				Description: ch.How.ZH + "（要求：" + ch.Threshold.ZH + "；" + kind[0] + "）",
				Annotation:  strings.Join(ch.Clauses, "; "),
				Translations: map[string]cisoTranslation{"en": {Name: ch.Title.EN,
					Description: ch.How.EN + " (threshold: " + ch.Threshold.EN + "; " + kind[1] + ")", Annotation: strings.Join(ch.Clauses, "; ")}}})
		}
		if len(children) == 0 {
			continue
		}
		fw.RequirementNodes = append(fw.RequirementNodes, cisoNode{URN: parent, Depth: 1, RefID: g.prefix, Name: g.zh,
			Translations: map[string]cisoTranslation{"en": {Name: g.en}}})
		fw.RequirementNodes = append(fw.RequirementNodes, children...)
	}
	return yaml.Marshal(&lib)
}

// ExportCatalogue returns the catalogue in force (compliance.read): as
// it is, or — ciso true — as a CISO Assistant library (YAML).
func (s *Service) ExportCatalogue(ctx context.Context, call *medguard.Call, ciso bool) (*Catalogue, []byte, error) {
	var out []byte
	err := s.read(ctx, call, "compliance.catalogue", "", func() error {
		if !ciso {
			return nil
		}
		var err error
		out, err = s.cfg.Catalogue.CISOAssistant()
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return s.cfg.Catalogue, out, nil
}
