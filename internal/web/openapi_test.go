package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/backuphealth"
	"medguard/internal/compliance"
	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/detect"
	"medguard/internal/exports"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/keys"
	"medguard/internal/partners"
	"medguard/internal/plans"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/retention"
	"medguard/internal/risks"
	"medguard/internal/trail"
	"medguard/internal/training"
	"medguard/internal/vulns"
)

// The OpenAPI document is checked against the server itself: the route
// table, the request types' json tags, the response types' json tags and the
// fixed values the services accept. A route or field added to the server and
// not to openapi.json (or the other way round) fails here.

// openAPIExtraRoutes are the endpoints New registers outside the route table.
var openAPIExtraRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json"}

// openAPIMethods are the keys of a path item that are operations.
var openAPIMethods = map[string]string{"get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE",
	"options": "OPTIONS", "head": "HEAD", "patch": "PATCH", "trace": "TRACE"}

// openAPIAuth is how the document names each auth level (x-medguard-auth).
var openAPIAuth = map[authLevel]string{public: "public", enrolment: "enrolment", userOnly: "user",
	signedIn: "user_or_api_key"}

// openAPIDoc is the parsed document with helpers to walk it.
type openAPIDoc struct {
	root map[string]any
	ops  map[string]map[string]any // "METHOD /path" → operation
	// pathParams are the parameters declared on each path item.
	pathParams map[string][]any
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(OpenAPI(), &root); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	d := &openAPIDoc{root: root, ops: map[string]map[string]any{}, pathParams: map[string][]any{}}
	paths, ok := root["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for key, v := range item {
			if key == "parameters" {
				d.pathParams[path], _ = v.([]any)
				continue
			}
			method, ok := openAPIMethods[key]
			if !ok {
				if key != "summary" && key != "description" && key != "servers" && !strings.HasPrefix(key, "x-") {
					t.Errorf("path %s: unexpected key %q", path, key)
				}
				continue
			}
			op, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s %s: the operation is not an object", method, path)
			}
			d.ops[method+" "+path] = op
		}
	}
	return d
}

// resolve follows $ref (within the document) until it reaches a non-reference.
func (d *openAPIDoc) resolve(v any) (any, bool) {
	for range 16 {
		m, ok := v.(map[string]any)
		if !ok {
			return v, true
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v, true
		}
		if v, ok = d.pointer(ref); !ok {
			return nil, false
		}
	}
	return nil, false
}

// pointer resolves a local JSON pointer reference like #/components/schemas/X.
func (d *openAPIDoc) pointer(ref string) (any, bool) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var v any = d.root
	for _, tok := range strings.Split(p, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}

// object resolves v and returns it as an object, or nil.
func (d *openAPIDoc) object(v any) map[string]any {
	r, _ := d.resolve(v)
	m, _ := r.(map[string]any)
	return m
}

// schema returns the named component schema.
func (d *openAPIDoc) schema(t *testing.T, name string) map[string]any {
	t.Helper()
	s := d.object(map[string]any{"$ref": "#/components/schemas/" + name})
	if s == nil {
		t.Fatalf("components/schemas/%s is missing", name)
	}
	return s
}

// openAPIJSONFields returns the JSON names of the fields of type typ as
// encoding/json sees them, following embedded structs (an outer field hides
// an embedded one of the same name), and the subset that is always present
// (neither omitempty nor omitzero).
func openAPIJSONFields(typ reflect.Type) (names, always []string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	seen := map[string]bool{}
	var embedded []reflect.Type
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case f.Anonymous && ft.Kind() == reflect.Struct && name == "":
			embedded = append(embedded, ft)
			continue
		case f.Anonymous && ft.Kind() == reflect.Struct:
			// An embedded struct with a name in its tag is a named field,
			// exported or not.
		case !f.IsExported():
			continue
		}
		if name == "" {
			name = f.Name
		}
		seen[name] = true
		names = append(names, name)
		optList := strings.Split(opts, ",")
		if !slices.Contains(optList, "omitempty") && !slices.Contains(optList, "omitzero") {
			always = append(always, name)
		}
	}
	for _, et := range embedded {
		n, a := openAPIJSONFields(et)
		for _, name := range n {
			if !seen[name] {
				names = append(names, name)
				if slices.Contains(a, name) {
					always = append(always, name)
				}
			}
		}
	}
	sort.Strings(names)
	sort.Strings(always)
	return names, always
}

func TestOpenAPIJSONFields(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string `json:"b,omitempty"`
		F string `json:"f"`
	}
	type named struct {
		C string `json:"c"`
	}
	type outer struct {
		*inner
		named   `json:"named"`
		A       string `json:"a,omitempty"`
		D       int    `json:",omitempty"`
		Skipped string `json:"-"`
		hidden  string
		E       *string `json:"e,omitzero"`
		Plain   bool
	}
	_ = outer{}.hidden
	names, always := openAPIJSONFields(reflect.TypeOf(outer{}))
	if want := []string{"D", "Plain", "a", "b", "e", "f", "named"}; !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if want := []string{"Plain", "f", "named"}; !slices.Equal(always, want) {
		t.Errorf("always = %v, want %v", always, want)
	}
}

func openAPIKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func openAPIStrings(v any) []string {
	xs, _ := v.([]any)
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func openAPISorted(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

func openAPIRouteTable() []Route { return (&Server{}).buildRoutes() }

func TestOpenAPIDocument(t *testing.T) {
	d := loadOpenAPI(t)
	if v := d.root["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	info, _ := d.root["info"].(map[string]any)
	if info["title"] != "medguard API" {
		t.Errorf("info.title = %v, want medguard API", info["title"])
	}
	if s, _ := d.root["servers"].([]any); len(s) == 0 || d.object(s[0])["url"] != "https://127.0.0.1:8443" {
		t.Errorf("servers = %v, want https://127.0.0.1:8443 first", d.root["servers"])
	}
	bearer := d.object(map[string]any{"$ref": "#/components/securitySchemes/bearer"})
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
		t.Errorf("components/securitySchemes/bearer = %v, want an http bearer scheme", bearer)
	}
	if sec, _ := d.root["security"].([]any); len(sec) != 1 || d.object(sec[0])["bearer"] == nil {
		t.Errorf("top-level security = %v, want [{bearer: []}]", d.root["security"])
	}
}

// TestOpenAPIRoutes checks that the document has exactly the server's
// operations, with the route's auth level and audit action.
func TestOpenAPIRoutes(t *testing.T) {
	d := loadOpenAPI(t)
	want := map[string]bool{}
	for _, rt := range openAPIRouteTable() {
		key := rt.Method + " " + rt.Pattern
		want[key] = true
		op, ok := d.ops[key]
		if !ok {
			t.Errorf("route %s is served but missing from openapi.json", key)
			continue
		}
		if got := op["x-medguard-auth"]; got != openAPIAuth[rt.auth] {
			t.Errorf("%s: x-medguard-auth = %v, want %s (routes.go)", key, got, openAPIAuth[rt.auth])
		}
		if got := op["x-audit-action"]; got != rt.Action {
			t.Errorf("%s: x-audit-action = %v, want %s (routes.go)", key, got, rt.Action)
		}
		sec, declared := op["security"].([]any)
		switch {
		case rt.auth == public && (!declared || len(sec) != 0):
			t.Errorf("%s: a public route must have security: []", key)
		case rt.auth != public && declared && len(sec) == 0:
			t.Errorf("%s: needs authentication but has security: []", key)
		}
	}
	for _, key := range openAPIExtraRoutes {
		want[key] = true
		op, ok := d.ops[key]
		if !ok {
			t.Errorf("endpoint %s (registered in New) is missing from openapi.json", key)
			continue
		}
		if sec, declared := op["security"].([]any); !declared || len(sec) != 0 {
			t.Errorf("%s: a public endpoint must have security: []", key)
		}
	}
	for key := range d.ops {
		if !want[key] {
			t.Errorf("openapi.json documents %s, which the server does not serve", key)
		}
	}
}

// TestOpenAPIRequestBodies checks every request body against the Go type
// the handler decodes.
func TestOpenAPIRequestBodies(t *testing.T) {
	d := loadOpenAPI(t)
	for _, rt := range openAPIRouteTable() {
		key := rt.Method + " " + rt.Pattern
		op, ok := d.ops[key]
		if !ok {
			continue // reported by TestOpenAPIRoutes
		}
		body := d.object(op["requestBody"])
		if rt.Body == nil {
			if body == nil {
				continue
			}
			if content, _ := body["content"].(map[string]any); content["application/json"] != nil {
				t.Errorf("%s: documents a JSON request body, but the route has no Body", key)
			}
			continue
		}
		if body == nil {
			t.Errorf("%s: the route takes a %T body, but openapi.json documents no requestBody", key, rt.Body)
			continue
		}
		content, _ := body["content"].(map[string]any)
		media := d.object(content["application/json"])
		if media == nil {
			t.Errorf("%s: requestBody has no application/json content", key)
			continue
		}
		schema := d.object(media["schema"])
		if schema == nil {
			t.Errorf("%s: the request body schema does not resolve", key)
			continue
		}
		if schema["additionalProperties"] != false {
			t.Errorf("%s: the request body schema must have additionalProperties: false (the server refuses unknown fields)", key)
		}
		props, _ := schema["properties"].(map[string]any)
		names, _ := openAPIJSONFields(reflect.TypeOf(rt.Body))
		if got := openAPIKeys(props); !slices.Equal(got, names) {
			t.Errorf("%s: request body properties = %v, want the json tags of %T = %v", key, got, rt.Body, names)
		}
		for _, r := range openAPIStrings(schema["required"]) {
			if _, ok := props[r]; !ok {
				t.Errorf("%s: required names %q, which is not a property", key, r)
			}
		}
	}
}

// TestOpenAPIResponseSchemas checks that response schemas name exactly the
// fields the server's response types encode, and require those always present.
func TestOpenAPIResponseSchemas(t *testing.T) {
	d := loadOpenAPI(t)
	for name, v := range map[string]any{
		"Problem":                Problem{},
		"SignIn":                 identity.SignIn{},
		"TOTPEnrollment":         identity.TOTPEnrollment{},
		"Department":             identity.Department{},
		"User":                   identity.User{},
		"UserCreated":            userCreated{},
		"Role":                   roleView{},
		"APIKey":                 identity.APIKey{},
		"Approval":               approvals.Approval{},
		"Patient":                records.Patient{},
		"PatientSummary":         records.PatientSummary{},
		"PatientMatch":           records.Match{},
		"Record":                 records.Record{},
		"RecordSummary":          records.RecordSummary{},
		"RecordVersion":          records.VersionInfo{},
		"Attachment":             records.AttachmentInfo{},
		"BreakGlassNotice":       records.BreakGlassNotice{},
		"Admission":              records.Admission{},
		"CareTeamMember":         records.CareTeamMember{},
		"AccessGrant":            records.AccessGrant{},
		"BreakGlassEvent":        records.BreakGlassEvent{},
		"AuditEntry":             trail.Entry{},
		"AuditFields":            audit.Fields{},
		"DepartmentList":         List[identity.Department]{},
		"AccessReportPage":       AccessReportPage{},
		"RetentionPeriod":        records.RetentionPeriod{},
		"RetentionChange":        retentionChange{},
		"ExpiredRecord":          records.ExpiredRecord{},
		"LegalHold":              records.Hold{},
		"CertificateSummary":     records.CertificateSummary{},
		"Destruction":            records.Destruction{},
		"DestructionCertificate": retention.Signed{},
		"PostureReport":          reports.Report{},
		"AccessSummary":          trail.AccessSummary{},
		"AccessLine":             trail.AccessLine{},
		"Incident":               incidents.Incident{},
		"IncidentList":           List[incidents.Incident]{},
		"Deadline":               incidents.Deadline{},
		"Facts":                  incidents.Facts{},
		"Analysis":               incidents.Analysis{},
		"IncidentUpdate":         incidents.Update{},
		"Evidence":               incidents.Evidence{},
		"EvidenceList":           List[incidents.Evidence]{},
		"IncidentAction":         incidents.Action{},
		"OverdueItem":            incidents.OverdueItem{},
		"OverdueList":            List[incidents.OverdueItem]{},
		"Case":                   incidents.Case{},
		"CaseList":               List[incidents.Case]{},
		"CaseNote":               incidents.CaseNote{},
		"Candidate":              incidents.Candidate{},
		"CandidateList":          List[incidents.Candidate]{},
		"Alert":                  detect.Alert{},
		"DetectionRule":          detect.Rule{},
		"Freeze":                 identity.Freeze{},
		"KeyStatus":              keys.KEKStatus{},
		"KEKVersion":             keys.KEKVersion{},
		"BackupHealth":           backuphealth.Health{},
		"BackupTarget":           backuphealth.Target{},
		"Backup321":              backup.State{},
		"BackupDrill":            backuphealth.Drill{},
		"BackupDrillStep":        backuphealth.Step{},
		"BackupDrillList":        List[backuphealth.Drill]{},
		"UseRequest":             datause.UseRequest{},
		"UseRequestList":         List[datause.UseRequest]{},
		"Folder":                 datause.Folder{},
		"FolderList":             List[datause.Folder]{},
		"Loan":                   datause.Loan{},
		"Reconciliation":         datause.Reconciliation{},
		"FolderGap":              datause.FolderGap{},
		"Copy":                   datause.Copy{},
		"CopyList":               List[datause.Copy]{},
		"Partner":                partners.Partner{},
		"PartnerList":            List[partners.Partner]{},
		"PartnerAccount":         partners.Account{},
		"Agreement":              partners.Agreement{},
		"DeletionConfirmation":   partners.DeletionConfirmation{},
		"PartnerActivity":        partners.Activity{},
		"PartnerActivityEntry":   partners.ActivityEntry{},
		"DeidJob":                deidjobs.Job{},
		"DeidJobList":            List[deidjobs.Job]{},
		"DeidSpec":               deidjobs.Spec{},
		"DeidManifest":           deidjobs.SignedManifest{},
		"DeidManifestContent":    deidjobs.Manifest{},
		"Export":                 exports.Export{},
		"ExportCreated":          exportAnswer{},
		"ExportList":             List[exports.Export]{},
		"Manifest":               exports.Manifest{},
		"ManifestPatient":        exports.ManifestPatient{},
		// Training and staff assessment (issue 13).
		"TrainingSettings":       training.Settings{},
		"TrainingCourse":         training.Course{},
		"TrainingCourseList":     List[training.Course]{},
		"TrainingSession":        training.Session{},
		"TrainingSessionList":    List[training.Session]{},
		"TrainingAttendance":     training.Attendance{},
		"CommitmentLetter":       training.Letter{},
		"CommitmentLetterList":   List[training.Letter]{},
		"LetterSignature":        training.Signature{},
		"MyCommitmentLetter":     training.MyLetter{},
		"TrainingObligation":     training.Obligation{},
		"TrainingStanding":       training.Standing{},
		"RetrainingOrder":        training.Order{},
		"RetrainingOrderList":    List[training.Order]{},
		"StaffAssessment":        training.Assessment{},
		"StaffAssessmentDetails": training.AssessmentDetails{},
		"StaffAssessmentList":    List[training.Assessment]{},
		"TrainingRecord":         training.Record{},
		"TrainingCoverageRow":    training.CoverageRow{},
		"TrainingCoverageList":   List[training.CoverageRow]{},
		"TrainingSummary":        training.Summary{},
		"Asset":                  assets.Asset{},
		"AssetList":              List[assets.Asset]{},
		"AssetImportSummary":     assets.ImportSummary{},
		"Vuln":                   vulns.Vuln{},
		"VulnList":               List[vulns.Vuln]{},
		"VulnDetail":             vulns.Detail{},
		"VulnSighting":           vulns.Sighting{},
		"VulnEvent":              vulns.Event{},
		"VulnScan":               vulns.Scan{},
		"VulnScanList":           List[vulns.Scan]{},
		"Suspension":             vulns.Suspension{},
		"SuspensionList":         List[vulns.Suspension]{},
		"VulnCadenceItem":        vulns.CadenceItem{},
		"VulnCadenceList":        List[vulns.CadenceItem]{},
		"VulnSummary":            vulns.Summary{},
		// The risk register, emergency plans and drills (issue 13).
		"Risk":                       risks.Risk{},
		"Rectification":              rectify.Item{},
		"RectificationEvent":         rectify.Event{},
		"RectificationList":          List[rectify.Item]{},
		"RectificationImportSummary": rectify.ImportSummary{},
		"RectificationMonth":         rectify.MonthFigures{},
		"RectificationMonthCount":    rectify.MonthCount{},
		"RectificationReview":        rectify.Review{},
		"QuarterlyRun":               rectify.Run{},
		"QuarterlyFinding":           rectify.Finding{},
		"QuarterlySummary":           rectify.Summary{},
		"QuarterlyItemSummary":       rectify.ItemSummary{},
		"QuarterlyRecipient":         rectify.Recipient{},
		"RiskEvent":                  risks.Event{},
		"RiskList":                   List[risks.Risk]{},
		"HeatMap":                    risks.HeatMap{},
		"HeatCell":                   risks.HeatCell{},
		"LevelCount":                 risks.LevelCount{},
		"RiskAssessment":             risks.Assessment{},
		"RiskAssessmentList":         List[risks.Assessment]{},
		"SystemIntroduction":         risks.Introduction{},
		"SystemIntroductionList":     List[risks.Introduction]{},
		"ChecklistItem":              risks.ChecklistItem{},
		"Plan":                       plans.Plan{},
		"PlanList":                   List[plans.Plan]{},
		"PlanVersion":                plans.Version{},
		"PlanEvent":                  plans.Event{},
		"PlanResponder":              plans.Responder{},
		"PlanStep":                   plans.Step{},
		"Drill":                      plans.Drill{},
		"DrillList":                  List[plans.Drill]{},
		"DrillDepartment":            plans.DepartmentResult{},
		"DrillParticipant":           plans.Participant{},
		"DrillStepResult":            plans.StepResult{},
		"DrillGap":                   plans.Gap{},
		"DrillImprovement":           plans.Improvement{},
		"DrillStepTime":              plans.StepTime{},
		"NewDrillGap":                plans.NewGap{},
		"NewDrillImprovement":        plans.NewImprovement{},
		"DrillCadence":               plans.Cadence{},
		"RetrainingFlag":             plans.RetrainingFlag{},
		"DrillStatus":                plans.Status{},
		"ComplianceReport":           compliance.Report{},
		"ComplianceResult":           compliance.Result{},
		"ComplianceRun":              compliance.Run{},
		"ComplianceScore":            compliance.ScorePoint{},
		"ComplianceAttestation":      compliance.Attestation{},
		"ComplianceItem":             compliance.Item{},
		"ComplianceEvidence":         compliance.Evidence{},
		"ComplianceDepartmentFigure": compliance.DepartmentFigure{},
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
	// Appendix A's fields, named exactly.
	for name, fields := range map[string][]string{
		"SignIn":           {"token", "expires_at", "mfa_enrollment_required"},
		"TOTPEnrollment":   {"secret", "otpauth_url"},
		"Session":          {"token", "expires_at"},
		"Department":       {"id", "code", "name"},
		"Record":           {"id", "patient_id", "type", "department", "title", "text"},
		"Incident":         {"id", "grade", "status", "deadlines"},
		"Deadline":         {"name", "due_at"},
		"ComplianceReport": {"generated_at", "checks"},
		"ComplianceResult": {"id", "clauses", "status", "value", "evidence"},
		"AuditFields": {"time", "actor", "actor_department", "actor_roles", "ip", "action", "target_type",
			"target_id", "patient_id", "purpose", "decision", "rule", "outcome", "break_glass", "request_id"},
	} {
		props, _ := d.schema(t, name)["properties"].(map[string]any)
		for _, f := range fields {
			if _, ok := props[f]; !ok {
				t.Errorf("components/schemas/%s: lacks Appendix A field %q", name, f)
			}
		}
	}
}

// TestOpenAPIEnums checks the fixed values the document lists against the
// ones the server accepts.
func TestOpenAPIEnums(t *testing.T) {
	d := loadOpenAPI(t)
	var roles, types []string
	for _, r := range policy.DefaultRoles {
		roles = append(roles, r.Name)
	}
	for _, rt := range policy.RecordTypes {
		types = append(types, rt.Name)
	}
	for _, c := range []struct {
		pointer string
		want    []string
	}{
		{"#/components/schemas/NewPatient/properties/gender/enum", records.Genders},
		{"#/components/schemas/PatientChanges/properties/gender/enum", records.Genders},
		{"#/components/schemas/NewRecord/properties/classification/enum", policy.Classifications},
		{"#/components/schemas/RecordChanges/properties/classification/enum", policy.Classifications},
		{"#/components/schemas/NewRecord/properties/type/enum", types},
		{"#/components/parameters/X-Purpose-Of-Use/schema/enum", policy.Purposes},
		{"#/components/schemas/ReviewRequest/properties/outcome/enum", []string{records.Justified, records.Unjustified}},
		{"#/components/schemas/NewUser/properties/roles/items/enum", roles},
		{"#/components/schemas/RoleRequest/properties/role/enum", roles},
		{"#/components/schemas/ApprovalRequest/properties/kind/enum", []string{approvals.RoleGrant}},
		{"#/components/schemas/AccessLine/properties/category/enum", []string{trail.CategoryRead, trail.CategoryChange,
			trail.CategoryAccessControl, trail.CategoryOversight, trail.CategoryReport, trail.CategoryOther}},
		{"#/components/schemas/AccessLine/properties/status/enum", []string{trail.StatusCompleted, trail.StatusDenied,
			trail.StatusIncomplete}},
		{"#/components/schemas/AccessLine/properties/actor_kind/enum", []string{trail.ActorStaff, trail.ActorSystem}},
		{"#/components/schemas/AccessReportPage/properties/language/enum", []string{string(trail.Chinese), string(trail.English)}},
		{"#/components/schemas/Incident/properties/criterion/enum", incidents.CriterionCodes()},
		{"#/components/schemas/NewIncident/properties/criterion/enum", incidents.CriterionCodes()},
		{"#/components/schemas/GradeConfirmation/properties/criterion/enum", incidents.CriterionCodes()},
		{"#/components/schemas/IncidentUpdateRequest/properties/kind/enum", incidents.UpdateKinds},
		{"#/components/schemas/Deadline/properties/name/enum", incidents.DeadlineNames},
		{"#/components/schemas/ActionStateRequest/properties/state/enum", incidents.ActionStates},
		{"#/components/schemas/IncidentAction/properties/state/enum", incidents.ActionStates},
		{"#/components/schemas/Case/properties/criterion/enum", incidents.CaseCriterionCodes()},
		{"#/components/schemas/NewCase/properties/criterion/enum", incidents.CaseCriterionCodes()},
		{"#/components/schemas/CaseDecision/properties/outcome/enum", []string{incidents.Upheld, incidents.Dismissed}},
		{"#/components/schemas/CaseReview/properties/outcome/enum", []string{incidents.Upheld, incidents.Overturned}},
		{"#/components/schemas/NewUseRequest/properties/purpose/enum", datause.UsePurposes},
		{"#/components/schemas/UseRequest/properties/status/enum", datause.UseStatuses},
		{"#/components/schemas/Folder/properties/status/enum", datause.FolderStatuses},
		{"#/components/schemas/NewLoan/properties/purpose/enum", datause.LoanPurposes},
		{"#/components/schemas/NewCopy/properties/relation/enum", datause.Relations},
		{"#/components/schemas/NewCopy/properties/purpose/enum", datause.CopyPurposes},
		{"#/components/schemas/NewAgreement/properties/purposes/items/enum", partners.AgreementPurposes},
		{"#/components/schemas/NewAgreement/properties/dataset_kinds/items/enum", partners.DatasetKinds},
		{"#/components/schemas/Partner/properties/status/enum", partners.PartnerStatuses},
		{"#/components/schemas/PartnerActivityEntry/properties/flags/items/enum", partners.ActivityFlags},
		{"#/components/schemas/NewDeidJob/properties/purpose/enum", deidjobs.Purposes},
		{"#/components/schemas/DeidLDiverse/properties/attribute/enum", deidjobs.SensitiveAttributes},
		{"#/components/schemas/NewExport/properties/purpose/enum", exports.Purposes},
		{"#/components/schemas/NewExport/properties/format/enum", exports.Formats},
		{"#/components/schemas/NewExport/properties/cipher/enum", exports.Ciphers},
		{"#/components/schemas/NewExport/properties/fields/items/enum", exports.AllFields},
		{"#/components/schemas/NewTrainingCourse/properties/kind/enum", training.CourseKinds},
		{"#/components/schemas/TrainingCourse/properties/kind/enum", training.CourseKinds},
		{"#/components/schemas/NewTrainingCourse/properties/audience/items/enum", roles},
		{"#/components/schemas/TrainingObligation/properties/kind/enum", training.ObligationKinds},
		{"#/components/schemas/RetrainingOrder/properties/source/enum", training.OrderSources},
		{"#/components/schemas/StaffAssessment/properties/status/enum", training.AssessmentStatuses},
		{"#/components/schemas/AssessmentAppealDecision/properties/outcome/enum", []string{training.AppealUpheld, training.AppealOverturned}},
		{"#/components/schemas/TrainingCoverageRow/properties/status/enum", training.Statuses},
		{"#/components/schemas/Asset/properties/kind/enum", assets.Kinds},
		{"#/components/schemas/Asset/properties/status/enum", assets.Statuses},
		{"#/components/schemas/Asset/properties/classification/enum", policy.Classifications},
		{"#/components/schemas/AssetChanges/properties/status/enum", assets.Statuses},
		{"#/components/schemas/Vuln/properties/severity/enum", vulns.Severities},
		{"#/components/schemas/Vuln/properties/status/enum", vulns.Statuses},
		{"#/components/schemas/VulnTransition/properties/status/enum", vulns.Statuses},
		{"#/components/schemas/VulnScan/properties/format/enum", vulns.Formats},
		{"#/components/schemas/NewVulnException/properties/outcome/enum", vulns.Exceptions},
		{"#/components/schemas/NewSuspension/properties/actions/items/enum", permStrings(vulns.Suspendable)},
		{"#/components/schemas/Suspension/properties/actions/items/enum", permStrings(vulns.Suspendable)},
		{"#/components/schemas/VulnEvent/properties/kind/enum", []string{vulns.EventState, vulns.EventReopened, vulns.EventProposedFixed,
			vulns.EventProposalWithdrawn, vulns.EventSeverity, vulns.EventException}},
		{"#/components/schemas/Risk/properties/level/enum", risks.Levels},
		{"#/components/schemas/Rectification/properties/kind/enum", rectify.Kinds},
		{"#/components/schemas/Rectification/properties/severity/enum", rectify.Severities},
		{"#/components/schemas/Rectification/properties/status/enum", rectify.Statuses},
		{"#/components/schemas/RectificationEvent/properties/kind/enum", rectify.EventKinds},
		{"#/components/schemas/QuarterlyFinding/properties/item/enum", rectify.ChecklistIDs()},
		{"#/components/schemas/QuarterlyFinding/properties/result/enum", rectify.Results},
		{"#/components/schemas/QuarterlyRun/properties/status/enum", rectify.RunStatuses},
		{"#/components/schemas/Risk/properties/treatment/enum", risks.Treatments},
		{"#/components/schemas/Risk/properties/acceptance/enum", risks.AcceptanceStates},
		{"#/components/schemas/Risk/properties/status/enum", risks.Statuses},
		{"#/components/schemas/RiskEvent/properties/kind/enum", risks.EventKinds},
		{"#/components/schemas/NewRisk/properties/treatment/enum", risks.Treatments},
		{"#/components/schemas/RiskReview/properties/treatment/enum", risks.Treatments},
		{"#/components/schemas/RiskAssessment/properties/status/enum", risks.AssessmentStatuses},
		{"#/components/schemas/SystemIntroduction/properties/status/enum", risks.IntroductionStatuses},
		{"#/components/schemas/ChecklistItem/properties/item/enum", risks.ChecklistItems},
		{"#/components/schemas/Plan/properties/type/enum", plans.Types},
		{"#/components/schemas/NewPlan/properties/type/enum", plans.Types},
		{"#/components/schemas/PlanVersion/properties/status/enum", plans.VersionStatuses},
		{"#/components/schemas/PlanEvent/properties/action/enum", plans.EventActions},
		{"#/components/schemas/NewDrill/properties/kind/enum", plans.DrillKinds},
		{"#/components/schemas/Drill/properties/kind/enum", append(slices.Clone(plans.DrillKinds), plans.Restore)},
		{"#/components/schemas/DrillGap/properties/severity/enum", plans.Severities},
		{"#/components/schemas/DrillImprovement/properties/status/enum", plans.ImprovementStatuses},
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
	// Required fields the services insist on.
	for name, want := range map[string][]string{
		"LoginRequest":       {"username", "password"},
		"TOTPConfirmRequest": {"code"},
		"NewPatient":         {"name"},
		"NewRecord":          {"type", "department", "title"},
		"ReviewRequest":      {"outcome"},
		"NewIncident":        {"title", "description"},
		"GradeConfirmation":  {"grade", "criterion"},
		"EvidenceRequest":    {"indexes"},
		"RootCause":          {"what", "when", "where", "who", "why", "how"},
		"NewCase":            {"subject_user_id", "criterion", "summary"},
		"NoteRequest":        {"text"},
	} {
		got := openAPIStrings(d.schema(t, name)["required"])
		for _, f := range want {
			if !slices.Contains(got, f) {
				t.Errorf("components/schemas/%s: %q must be required", name, f)
			}
		}
	}
}

func permStrings(ps []policy.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

var openAPIPathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPIOperations checks each operation's shape: a unique operationId,
// summaries, known tags, declared path parameters and the error responses
// that apply.
func TestOpenAPIOperations(t *testing.T) {
	d := loadOpenAPI(t)
	tags := map[string]bool{}
	for _, tag := range openAPIAnySlice(d.root["tags"]) {
		tags[d.object(tag)["name"].(string)] = true
	}
	ids := map[string]string{}
	for key, op := range d.ops {
		id, _ := op["operationId"].(string)
		switch {
		case id == "":
			t.Errorf("%s: no operationId", key)
		case ids[id] != "":
			t.Errorf("%s: operationId %q is also used by %s", key, id, ids[id])
		default:
			ids[id] = key
		}
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s: no summary", key)
		}
		if s, _ := op["x-summary-zh"].(string); s == "" {
			t.Errorf("%s: no Chinese summary (x-summary-zh)", key)
		}
		opTags := openAPIStrings(op["tags"])
		if len(opTags) == 0 {
			t.Errorf("%s: no tags", key)
		}
		for _, tag := range opTags {
			if !tags[tag] {
				t.Errorf("%s: tag %q is not declared in the top-level tags", key, tag)
			}
		}

		// Path parameters: every {name} declared, and nothing else declared "in: path".
		_, path, _ := strings.Cut(key, " ")
		declared := map[string]bool{}
		for _, p := range append(slices.Clone(d.pathParams[path]), openAPIAnySlice(op["parameters"])...) {
			param := d.object(p)
			if param == nil {
				t.Errorf("%s: a parameter does not resolve", key)
				continue
			}
			if param["in"] == "path" {
				name, _ := param["name"].(string)
				declared[name] = true
				if param["required"] != true {
					t.Errorf("%s: path parameter %q must be required", key, name)
				}
			}
		}
		inPath := map[string]bool{}
		for _, m := range openAPIPathParam.FindAllStringSubmatch(path, -1) {
			inPath[m[1]] = true
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", key, m[1])
			}
		}
		for name := range declared {
			if !inPath[name] {
				t.Errorf("%s: declares path parameter %q, which is not in the path", key, name)
			}
		}

		// Responses.
		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s: no responses", key)
		}
		success := false
		for code, r := range responses {
			if strings.HasPrefix(code, "2") {
				success = true
			}
			resp := d.object(r)
			if resp == nil {
				t.Errorf("%s: response %s does not resolve", key, code)
				continue
			}
			if code >= "400" && code < "500" {
				content, _ := resp["content"].(map[string]any)
				media := d.object(content["application/problem+json"])
				if media == nil {
					t.Errorf("%s: error response %s is not application/problem+json", key, code)
					continue
				}
				if ref, _ := media["schema"].(map[string]any)["$ref"].(string); ref != "#/components/schemas/Problem" {
					t.Errorf("%s: error response %s must use the shared Problem schema", key, code)
				}
			}
		}
		if !success {
			t.Errorf("%s: no success response", key)
		}
		sec, declaredSec := op["security"].([]any)
		needsAuth := !declaredSec || len(sec) > 0
		if needsAuth && responses["401"] == nil {
			t.Errorf("%s: requires authentication but lists no 401 response", key)
		}
		if op["requestBody"] != nil && responses["422"] == nil {
			t.Errorf("%s: takes a request body but lists no 422 response", key)
		}
	}
	for _, rt := range openAPIRouteTable() {
		key := rt.Method + " " + rt.Pattern
		op := d.ops[key]
		if op == nil {
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		if rt.Body != nil {
			for _, code := range []string{"400", "413", "415", "422"} {
				if responses[code] == nil {
					t.Errorf("%s: decodes a JSON body but lists no %s response", key, code)
				}
			}
		}
		if rt.auth != public {
			for _, code := range []string{"401", "403", "423"} {
				if responses[code] == nil {
					t.Errorf("%s: authenticates the caller but lists no %s response", key, code)
				}
			}
		}
	}
}

func openAPIAnySlice(v any) []any {
	xs, _ := v.([]any)
	return xs
}

// TestOpenAPIRefs checks that every $ref in the document resolves.
func TestOpenAPIRefs(t *testing.T) {
	d := loadOpenAPI(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := d.pointer(ref); !ok {
					t.Errorf("%s: $ref %q does not resolve", where, ref)
				}
			}
			for k, x := range v {
				walk(where+"/"+k, x)
			}
		case []any:
			for _, x := range v {
				walk(where, x)
			}
		}
	}
	walk("#", d.root)
}

// TestOpenAPIProblems checks the shared error responses against problem.go.
func TestOpenAPIProblems(t *testing.T) {
	d := loadOpenAPI(t)
	responses, _ := d.root["components"].(map[string]any)["responses"].(map[string]any)
	byStatus := map[int]map[string]any{}
	for name, r := range responses {
		content, _ := d.object(r)["content"].(map[string]any)
		ex, _ := d.object(content["application/problem+json"])["example"].(map[string]any)
		if ex == nil {
			t.Errorf("components/responses/%s: no problem example", name)
			continue
		}
		status, _ := ex["status"].(float64)
		byStatus[int(status)] = ex
	}
	for _, pk := range problemKinds {
		if pk.status >= 500 {
			continue
		}
		ex := byStatus[pk.status]
		if ex == nil {
			t.Errorf("no shared response documents status %d (%s)", pk.status, pk.name)
			continue
		}
		typ, _ := ex["type"].(string)
		if typ != ProblemBase+pk.name && !strings.HasPrefix(typ, ProblemBase+pk.name+":") {
			t.Errorf("the %d example's type is %q, want %s[:code]", pk.status, typ, ProblemBase+pk.name)
		}
		if ex["title"] != pk.title {
			t.Errorf("the %d example's title is %q, want %q", pk.status, ex["title"], pk.title)
		}
	}
}

// TestOpenAPIServed checks the handler serves the embedded document.
func TestOpenAPIServed(t *testing.T) {
	rec := httptest.NewRecorder()
	(&Server{}).openAPI(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !json.Valid(rec.Body.Bytes()) || rec.Body.Len() != len(OpenAPI()) {
		t.Error("GET /api/v1/openapi.json does not serve the embedded document")
	}
}
