package web

import (
	"reflect"
	"slices"
	"testing"

	"medguard/internal/incidents"
)

// TestOpenAPIIncidentsCompleted checks the schemas of issue 13's incidents
// and accountability, and the anonymous channel's, against the types the
// server encodes, and their fixed values against the ones it accepts.
func TestOpenAPIIncidentsCompleted(t *testing.T) {
	d := loadOpenAPI(t)
	for name, v := range map[string]any{
		"EvidenceFile":        incidents.EvidenceFile{},
		"Proposal":            incidents.Proposal{},
		"PriorOffence":        incidents.PriorOffence{},
		"ReportReceipt":       incidents.ReportReceipt{},
		"ReceiptView":         incidents.ReceiptView{},
		"ReportMessage":       incidents.ReportMessage{},
		"AnonymousReport":     incidents.AnonymousReport{},
		"AnonymousReportList": List[incidents.AnonymousReport]{},
	} {
		s := d.schema(t, name)
		props, _ := s["properties"].(map[string]any)
		names, always := openAPIJSONFields(reflect.TypeOf(v))
		if got := openAPIKeys(props); !slices.Equal(got, names) {
			t.Errorf("components/schemas/%s: properties = %v, want the json tags of %T = %v", name, got, v, names)
		}
		if got := openAPISorted(openAPIStrings(s["required"])); !slices.Equal(got, always) {
			t.Errorf("components/schemas/%s: required = %v, want the fields %T always encodes = %v", name, got, v, always)
		}
	}
	for _, c := range []struct {
		pointer string
		want    []string
	}{
		{"#/components/schemas/Incident/properties/type/enum", incidents.TypeCodes()},
		{"#/components/schemas/NewIncident/properties/type/enum", incidents.TypeCodes()},
		{"#/components/schemas/GradeConfirmation/properties/type/enum", incidents.TypeCodes()},
		{"#/components/schemas/Incident/properties/source/enum", []string{incidents.SourceReport, incidents.SourceFreeze, incidents.SourceAnonymous}},
		{"#/components/schemas/CaseOpinion/properties/sanction/enum", incidents.SanctionCodes()},
		{"#/components/schemas/Case/properties/sanction/enum", incidents.SanctionCodes()},
		{"#/components/schemas/Proposal/properties/sanction/enum", incidents.SanctionCodes()},
		{"#/components/schemas/EvidenceFile/properties/kind/enum", incidents.FileKinds},
		{"#/components/schemas/EvidenceFile/properties/content_type/enum", incidents.EvidenceFileTypes},
		{"#/components/schemas/NewAnonymousReport/properties/category/enum", incidents.ReportCategoryCodes()},
		{"#/components/schemas/AnonymousReport/properties/status/enum", incidents.ReportStatuses},
		{"#/components/schemas/ReceiptView/properties/status/enum", incidents.ReportStatuses},
	} {
		v, ok := d.pointer(c.pointer)
		if !ok {
			t.Errorf("%s is missing", c.pointer)
			continue
		}
		if got := openAPIStrings(v); !slices.Equal(openAPISorted(got), openAPISorted(c.want)) {
			t.Errorf("%s = %v, want %v", c.pointer, got, c.want)
		}
	}
	kinds, _ := d.pointer("#/components/schemas/IncidentUpdate/properties/kind/enum")
	for _, k := range append(slices.Clone(incidents.UpdateKinds), "commander", "step_confirmed", "evidence_file") {
		if !slices.Contains(openAPIStrings(kinds), k) {
			t.Errorf("IncidentUpdate kind %s is not documented", k)
		}
	}
	for name, want := range map[string][]string{
		"CommanderChange":    {"commander", "reason"},
		"CaseOpinion":        {"sanction", "text"},
		"NewAnonymousReport": {"category", "text"},
		"ReceiptRequest":     {"receipt"},
		"ReceiptMessage":     {"receipt", "text"},
		"CloseReportRequest": {"reason"},
	} {
		got := openAPIStrings(d.schema(t, name)["required"])
		for _, f := range want {
			if !slices.Contains(got, f) {
				t.Errorf("components/schemas/%s: %q must be required", name, f)
			}
		}
	}
	// The channel's routes are public and anonymous; no other route is.
	for _, rt := range openAPIRouteTable() {
		if rt.anonymous != AnonymousPath(rt.Pattern) || rt.anonymous && rt.auth != public {
			t.Errorf("%s %s: anonymous %v, public %v", rt.Method, rt.Pattern, rt.anonymous, rt.auth == public)
		}
	}
}
