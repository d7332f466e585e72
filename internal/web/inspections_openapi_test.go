package web

import (
	"reflect"
	"slices"
	"testing"

	"medguard/internal/inspections"
	"medguard/internal/media"
)

// TestOpenAPIInspectionsAndMedia checks the schemas of the daily
// inspection and the removable media register against the types the
// server encodes, and their enums against the values it accepts.
func TestOpenAPIInspectionsAndMedia(t *testing.T) {
	d := loadOpenAPI(t)
	for name, v := range map[string]any{
		"InspectionItem":         inspections.Item{},
		"InspectionTemplate":     inspections.Template{},
		"InspectionTemplateList": List[inspections.Template]{},
		"InspectionReading":      inspections.Reading{},
		"Inspection":             inspections.Inspection{},
		"InspectionDay":          inspections.Day{},
		"InspectionDayList":      List[inspections.Day]{},
		"InspectionToday":        inspections.Today{},
		"InspectionWeek":         inspections.Week{},
		"InspectionWeekList":     List[inspections.Week]{},
		"InspectionReadingInput": inspections.ReadingInput{},
		"MediaDevice":            media.Device{},
		"MediaDeviceList":        List[media.Device]{},
		"MediaLoan":              media.Loan{},
		"MediaLoanList":          List[media.Loan]{},
		"MediaErasure":           media.Erasure{},
		"MediaDisposal":          media.Disposal{},
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
	days := append(slices.Clone(inspections.DayStatuses), inspections.OutOfRangeFilter)
	devices := append(slices.Clone(media.Statuses), media.OverdueFilter, media.UnencryptedFilter)
	loans := append(slices.Clone(media.LoanStatuses), media.OverdueFilter)
	for _, c := range []struct {
		pointer string
		want    []string
	}{
		{"#/components/schemas/InspectionItem/properties/kind/enum", inspections.Kinds},
		{"#/components/schemas/InspectionReading/properties/source/enum", []string{inspections.SourceInspector, inspections.SourceSystem}},
		{"#/components/schemas/Inspection/properties/status/enum", []string{inspections.AwaitingReview, inspections.Signed}},
		{"#/components/schemas/InspectionDay/properties/status/enum", inspections.DayStatuses},
		{"#/components/schemas/MediaDevice/properties/kind/enum", media.Kinds},
		{"#/components/schemas/NewMediaDevice/properties/kind/enum", media.Kinds},
		{"#/components/schemas/MediaDevice/properties/status/enum", media.Statuses},
		{"#/components/schemas/MediaLoan/properties/status/enum", media.LoanStatuses},
		{"#/components/schemas/MediaErasure/properties/method/enum", media.ErasureMethods},
		{"#/components/schemas/NewMediaErasure/properties/method/enum", media.ErasureMethods},
		{"#/components/schemas/MediaDisposal/properties/method/enum", media.DisposalMethods},
		{"#/components/schemas/NewMediaDisposal/properties/method/enum", media.DisposalMethods},
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
	// The query parameters' values.
	for _, c := range []struct {
		op, param string
		want      []string
	}{
		{"GET /api/v1/inspections", "status", days}, {"GET /api/v1/media", "status", devices}, {"GET /api/v1/media/loans", "status", loans},
	} {
		var got []string
		for _, p := range openAPIAnySlice(d.ops[c.op]["parameters"]) {
			if param := d.object(p); param["name"] == c.param {
				got = openAPIStrings(param["schema"].(map[string]any)["enum"])
			}
		}
		if !slices.Equal(openAPISorted(got), openAPISorted(c.want)) {
			t.Errorf("%s ?%s = %v, want %v", c.op, c.param, got, c.want)
		}
	}
}
