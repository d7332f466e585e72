// Package assets owns the asset register (资产台账) of issue 13: the
// hospital's servers, applications, workstations, mobile devices, medical
// devices, network and security devices, each with its inventory code,
// owner, department, location, network address, the classification of the
// data it holds (core, important, general), labels, end of support, and
// whether it is part of the records system (病案系统) — the assets whose
// critical vulnerabilities may suspend operations on patient records.
// Equipment past its end of support is flagged. Assets are registered one
// by one or imported from a CSV file (all rows or none).
//
// Other registers link to assets by id — vulnerabilities, risks,
// incidents — and learn what they need through Lookup and InUse, which
// read without a gate passage because the caller logs its own operation.
//
// Every change and every read that shows the register goes through the
// gate and into the audit log. This package holds no patient data, and
// reads people and departments only through the identity capability.
package assets

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the asset register's tables.
func Schema() storage.Schema { return storage.NewSchema("assets", migrations, "migrations") }

// The kinds of asset.
const (
	Server         = "server"
	Application    = "application"
	Workstation    = "workstation"
	MobileDevice   = "mobile_device"
	MedicalDevice  = "medical_device"
	NetworkDevice  = "network_device"
	SecurityDevice = "security_device"
)

// Kinds lists the kinds of asset.
var Kinds = []string{Server, Application, Workstation, MobileDevice, MedicalDevice, NetworkDevice, SecurityDevice}

// kindNamesZH are the kinds' Chinese names, which a CSV file may use.
var kindNamesZH = map[string]string{"服务器": Server, "应用系统": Application, "应用": Application, "工作站": Workstation,
	"终端": Workstation, "移动设备": MobileDevice, "医疗设备": MedicalDevice, "网络设备": NetworkDevice, "安全设备": SecurityDevice}

// The states of an asset: in use, or retired (no longer scanned or
// imported into).
const (
	InUse   = "in_use"
	Retired = "retired"
)

// Statuses lists the states of an asset.
var Statuses = []string{InUse, Retired}

// Limits of an asset's fields.
const (
	MaxLabels   = 10
	MaxLabelLen = 32
)

// Config holds the rules of the register.
type Config struct {
	// Location is the hospital's time zone: an asset is past its end of
	// support from the day after that date there (default UTC).
	Location *time.Location
}

// Directory is what the register needs of the identity capability: the
// members of staff (an owner is one) and the departments.
type Directory interface {
	Directory(ctx context.Context) ([]identity.StaffName, []identity.Department, error)
}

// Service is the asset register.
type Service struct {
	db    *storage.DB
	gate  *gate.Gate
	dir   Directory
	clock medguard.Clock
	cfg   Config
}

// New returns the asset register.
func New(db *storage.DB, g *gate.Gate, dir Directory, cfg Config) *Service {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Service{db: db, gate: g, dir: dir, clock: g.Clock(), cfg: cfg}
}

// Asset is one entry of the register.
type Asset struct {
	ID string `json:"id"`
	// Code is the inventory number (资产编号), unique.
	Code string `json:"code"`
	Name string `json:"name"`
	// Kind is one of Kinds.
	Kind string `json:"kind"`
	// Owner is the username of the member of staff responsible ("" for
	// none yet).
	Owner string `json:"owner"`
	// Department is the code of the department it belongs to ("" for the
	// hospital as a whole).
	Department string `json:"department"`
	// Location is where it stands (机房, 科室, 楼层).
	Location string `json:"location"`
	// Address is its network address or host name, as scanners name it.
	Address string `json:"address"`
	// Classification is the classification of the data it holds: core,
	// important or general.
	Classification string   `json:"classification"`
	Labels         []string `json:"labels"`
	// EndOfSupport is the date (YYYY-MM-DD) its maker's support ends, or
	// "" when unknown; PastEndOfSupport is true from the next day on.
	EndOfSupport     string `json:"end_of_support"`
	PastEndOfSupport bool   `json:"past_end_of_support"`
	// RecordsSystem is true for the assets of the records system: a
	// critical vulnerability of one may suspend operations on records.
	RecordsSystem bool      `json:"records_system"`
	Status        string    `json:"status"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedBy     string    `json:"updated_by"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// NewAsset registers an asset.
type NewAsset struct {
	Code           string   `json:"code"`
	Name           string   `json:"name"`
	Kind           string   `json:"kind"`
	Owner          string   `json:"owner,omitempty"`
	Department     string   `json:"department,omitempty"`
	Location       string   `json:"location,omitempty"`
	Address        string   `json:"address,omitempty"`
	Classification string   `json:"classification,omitempty"`
	Labels         []string `json:"labels,omitempty"`
	EndOfSupport   string   `json:"end_of_support,omitempty"`
	RecordsSystem  bool     `json:"records_system,omitempty"`
}

// Changes changes an asset: only the fields given.
type Changes struct {
	Name           *string   `json:"name,omitempty"`
	Kind           *string   `json:"kind,omitempty"`
	Owner          *string   `json:"owner,omitempty"`
	Department     *string   `json:"department,omitempty"`
	Location       *string   `json:"location,omitempty"`
	Address        *string   `json:"address,omitempty"`
	Classification *string   `json:"classification,omitempty"`
	Labels         *[]string `json:"labels,omitempty"`
	EndOfSupport   *string   `json:"end_of_support,omitempty"`
	RecordsSystem  *bool     `json:"records_system,omitempty"`
	Status         *string   `json:"status,omitempty"`
}

var errNoAsset = &medguard.Error{Kind: medguard.NotFound, Message: "no such asset"}

// ParseKind reads a kind by its code or its Chinese name.
func ParseKind(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if slices.Contains(Kinds, strings.ToLower(v)) {
		return strings.ToLower(v), true
	}
	k, ok := kindNamesZH[v]
	return k, ok
}

var classNamesZH = map[string]string{"核心": policy.Core, "重要": policy.Important, "一般": policy.General}

// parseClassification reads a classification by its code or Chinese name
// ("" is general).
func parseClassification(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return policy.General, true
	}
	if slices.Contains(policy.Classifications, strings.ToLower(v)) {
		return strings.ToLower(v), true
	}
	c, ok := classNamesZH[v]
	return c, ok
}

// checkLabels normalises labels: trimmed, no empty ones or duplicates, at
// most MaxLabels of at most MaxLabelLen characters each.
func checkLabels(field string, in []string) ([]string, error) {
	out := []string{}
	for _, l := range in {
		l, err := medguard.Line(field, l, MaxLabelLen, false)
		if err != nil {
			return nil, medguard.InvalidField(field, "each label is at most %d characters, without control characters", MaxLabelLen)
		}
		if l == "" || slices.Contains(out, l) {
			continue
		}
		if strings.ContainsAny(l, ",;|") {
			return nil, medguard.InvalidField(field, "a label may not hold ',', ';' or '|'")
		}
		out = append(out, l)
	}
	if len(out) > MaxLabels {
		return nil, medguard.InvalidField(field, "at most %d labels", MaxLabels)
	}
	return out, nil
}

// checkDate reads an end of support (YYYY-MM-DD, or "" for unknown).
func checkDate(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	d, err := time.Parse("2006-01-02", v)
	if err != nil || d.Year() < 1990 || d.Year() > 2100 {
		return "", medguard.InvalidField(field, "%s must be a date (YYYY-MM-DD) between 1990 and 2100", field)
	}
	return d.Format("2006-01-02"), nil
}

// directory is the staff's usernames and the departments' codes, read
// once per operation.
type directory struct {
	users map[string]bool
	depts map[string]bool
}

func (s *Service) directory(ctx context.Context) (*directory, error) {
	staff, depts, err := s.dir.Directory(ctx)
	if err != nil {
		return nil, medguard.Wrap("assets.directory", err)
	}
	d := &directory{users: map[string]bool{}, depts: map[string]bool{}}
	for _, u := range staff {
		d.users[u.Username] = true
	}
	for _, dp := range depts {
		d.depts[dp.Code] = true
	}
	return d, nil
}

// check validates an asset (its code included) against the directory.
func (d *directory) check(a *Asset) error {
	var err error
	if a.Code, err = medguard.Line("code", a.Code, 64, true); err != nil {
		return err
	}
	if strings.ContainsAny(a.Code, " /\\?#%") {
		return medguard.InvalidField("code", "code may not hold spaces or / \\ ? # %%")
	}
	if a.Name, err = medguard.Line("name", a.Name, 100, true); err != nil {
		return err
	}
	k, ok := ParseKind(a.Kind)
	if !ok {
		return medguard.InvalidField("kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	}
	a.Kind = k
	if a.Owner = strings.TrimSpace(a.Owner); a.Owner != "" && !d.users[a.Owner] {
		return medguard.InvalidField("owner", "owner must be the username of a member of staff")
	}
	if a.Department = strings.TrimSpace(a.Department); a.Department != "" && !d.depts[a.Department] {
		return medguard.InvalidField("department", "department must be the code of a department")
	}
	if a.Location, err = medguard.Line("location", a.Location, 100, false); err != nil {
		return err
	}
	if a.Address, err = medguard.Line("address", a.Address, 253, false); err != nil {
		return err
	}
	c, ok := parseClassification(a.Classification)
	if !ok {
		return medguard.InvalidField("classification", "classification must be one of %s", strings.Join(policy.Classifications, ", "))
	}
	a.Classification = c
	if a.Labels, err = checkLabels("labels", a.Labels); err != nil {
		return err
	}
	if a.EndOfSupport, err = checkDate("end_of_support", a.EndOfSupport); err != nil {
		return err
	}
	if a.Status == "" {
		a.Status = InUse
	}
	if !slices.Contains(Statuses, a.Status) {
		return medguard.InvalidField("status", "status must be one of %s", strings.Join(Statuses, ", "))
	}
	return nil
}

func resource(id string) policy.Resource { return policy.Resource{Type: "asset", ID: id} }

// Create registers an asset (asset.manage).
func (s *Service) Create(ctx context.Context, call *medguard.Call, in NewAsset) (*Asset, error) {
	d, err := s.directory(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	a := &Asset{ID: medguard.NewID(now), Code: in.Code, Name: in.Name, Kind: in.Kind, Owner: in.Owner, Department: in.Department,
		Location: in.Location, Address: in.Address, Classification: in.Classification, Labels: in.Labels, EndOfSupport: in.EndOfSupport,
		RecordsSystem: in.RecordsSystem, Status: InUse, CreatedBy: call.Actor.Name, CreatedAt: now, UpdatedBy: call.Actor.Name, UpdatedAt: now}
	if err := d.check(a); err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AssetManage, AuditAction: "asset.create",
		Resource: resource(a.ID)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error { return insert(ctx, tx, a) }, nil
	})
	if err != nil {
		return nil, err
	}
	s.complete(a, now)
	return a, nil
}

func insert(ctx context.Context, tx *sql.Tx, a *Asset) error {
	labels, _ := json.Marshal(a.Labels)
	_, err := tx.ExecContext(ctx, `INSERT INTO assets (id, code, name, kind, owner, department, location, address, classification,
		labels, end_of_support, records_system, status, created_by, created_at, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		a.ID, a.Code, a.Name, a.Kind, a.Owner, a.Department, a.Location, a.Address, a.Classification, string(labels), a.EndOfSupport,
		flag(a.RecordsSystem), a.Status, a.CreatedBy, medguard.Millis(a.CreatedAt), a.UpdatedBy, medguard.Millis(a.UpdatedAt))
	if storage.IsConflict(err) {
		return &medguard.Error{Kind: medguard.Conflict, Field: "code", Message: "another asset has this code"}
	}
	return err
}

func update(ctx context.Context, tx *sql.Tx, a *Asset) error {
	labels, _ := json.Marshal(a.Labels)
	res, err := tx.ExecContext(ctx, `UPDATE assets SET name = $1, kind = $2, owner = $3, department = $4, location = $5, address = $6,
		classification = $7, labels = $8, end_of_support = $9, records_system = $10, status = $11, updated_by = $12, updated_at = $13
		WHERE id = $14`, a.Name, a.Kind, a.Owner, a.Department, a.Location, a.Address, a.Classification, string(labels), a.EndOfSupport,
		flag(a.RecordsSystem), a.Status, a.UpdatedBy, medguard.Millis(a.UpdatedAt), a.ID)
	return storage.Affected(res, err, errNoAsset)
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Update changes an asset (asset.manage): the fields given, checked as at
// registration; its code never changes.
func (s *Service) Update(ctx context.Context, call *medguard.Call, id string, ch Changes) (*Asset, error) {
	a, err := s.load(ctx, call, policy.AssetManage, "asset.update", id)
	if err != nil {
		return nil, err
	}
	d, err := s.directory(ctx)
	if err != nil {
		return nil, err
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.Name, ch.Name)
	set(&a.Kind, ch.Kind)
	set(&a.Owner, ch.Owner)
	set(&a.Department, ch.Department)
	set(&a.Location, ch.Location)
	set(&a.Address, ch.Address)
	set(&a.Classification, ch.Classification)
	set(&a.EndOfSupport, ch.EndOfSupport)
	set(&a.Status, ch.Status)
	if ch.Labels != nil {
		a.Labels = *ch.Labels
	}
	if ch.RecordsSystem != nil {
		a.RecordsSystem = *ch.RecordsSystem
	}
	if err := d.check(a); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	a.UpdatedBy, a.UpdatedAt = call.Actor.Name, now
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AssetManage, AuditAction: "asset.update",
		Resource: resource(a.ID)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error { return update(ctx, tx, a) }, nil
	})
	if err != nil {
		return nil, err
	}
	s.complete(a, now)
	return a, nil
}

const columns = `id, code, name, kind, owner, department, location, address, classification, labels, end_of_support, records_system,
	status, created_by, created_at, updated_by, updated_at`

func scan(sc interface{ Scan(...any) error }) (*Asset, error) {
	var a Asset
	var labels string
	var records int
	var created, updated int64
	if err := sc.Scan(&a.ID, &a.Code, &a.Name, &a.Kind, &a.Owner, &a.Department, &a.Location, &a.Address, &a.Classification, &labels,
		&a.EndOfSupport, &records, &a.Status, &a.CreatedBy, &created, &a.UpdatedBy, &updated); err != nil {
		return nil, err
	}
	a.Labels = []string{}
	json.Unmarshal([]byte(labels), &a.Labels)
	a.RecordsSystem, a.CreatedAt, a.UpdatedAt = records != 0, medguard.FromMillis(created), medguard.FromMillis(updated)
	return &a, nil
}

// complete adds what is computed at a time: whether support has ended.
func (s *Service) complete(a *Asset, now time.Time) {
	a.PastEndOfSupport = PastEndOfSupport(a.EndOfSupport, now, s.cfg.Location)
}

// PastEndOfSupport reports whether support that ends on date (YYYY-MM-DD)
// has ended at now in the zone: from the day after that date.
func PastEndOfSupport(date string, now time.Time, zone *time.Location) bool {
	if date == "" {
		return false
	}
	d, err := time.ParseInLocation("2006-01-02", date, zone)
	return err == nil && !now.Before(d.AddDate(0, 0, 1))
}

func (s *Service) get(ctx context.Context, id string) (*Asset, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	a, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM assets WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("assets.get", err)
	}
	s.complete(a, s.clock.Now())
	return a, nil
}

// load reads an asset for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Asset, error) {
	a, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "asset", ID: id}}, errNoAsset)
	}
	return a, nil
}

// Get returns an asset (asset.read).
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Asset, error) {
	a, err := s.load(ctx, call, policy.AssetRead, "asset.read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AssetRead, AuditAction: "asset.read",
		Resource: resource(a.ID)}, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Query filters the register.
type Query struct {
	Kind       string
	Department string
	Status     string
	// RecordsSystem, if set, keeps the assets of the records system (true)
	// or the others (false).
	RecordsSystem *bool
	// PastEndOfSupport keeps the equipment past its end of support.
	PastEndOfSupport bool
	Label            string
	// Text keeps the assets whose code, name, location or address holds it.
	Text string
	// After is the code of the last asset of the previous page; Limit is
	// the page's size (default and at most MaxList).
	After string
	Limit int
}

// MaxList is the longest page of the register.
const MaxList = 2000

// List lists the register by code (asset.read); next is the cursor of the
// next page, "" at the end.
func (s *Service) List(ctx context.Context, call *medguard.Call, q Query) (out []Asset, next string, err error) {
	if q.Kind != "" && !slices.Contains(Kinds, q.Kind) {
		return nil, "", medguard.InvalidField("kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	}
	if q.Status != "" && !slices.Contains(Statuses, q.Status) {
		return nil, "", medguard.InvalidField("status", "status must be one of %s", strings.Join(Statuses, ", "))
	}
	if utf8.RuneCountInString(q.Text) > 100 || utf8.RuneCountInString(q.Label) > MaxLabelLen || len(q.After) > 64 || len(q.Department) > 32 {
		return nil, "", medguard.InvalidField("q", "the filters are too long")
	}
	if q.Limit <= 0 || q.Limit > MaxList {
		q.Limit = MaxList
	}
	out = []Asset{}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AssetRead, AuditAction: "asset.list",
		Resource: policy.Resource{Type: "asset"}}, func(policy.Decision) (audit.Mutation, error) {
		where, args := []string{"code > $1"}, []any{q.After}
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
		}
		if q.Kind != "" {
			add("kind = ?", q.Kind)
		}
		if q.Department != "" {
			add("department = ?", q.Department)
		}
		if q.Status != "" {
			add("status = ?", q.Status)
		}
		if q.RecordsSystem != nil {
			add("records_system = ?", flag(*q.RecordsSystem))
		}
		if q.PastEndOfSupport {
			add("end_of_support <> '' AND end_of_support < ?", s.clock.Now().In(s.cfg.Location).Format("2006-01-02"))
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM assets WHERE `+strings.Join(where, " AND ")+` ORDER BY code`, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		now := s.clock.Now()
		text := strings.ToLower(strings.TrimSpace(q.Text))
		label := strings.TrimSpace(q.Label)
		for rows.Next() {
			a, err := scan(rows)
			if err != nil {
				return nil, err
			}
			if label != "" && !slices.Contains(a.Labels, label) {
				continue
			}
			if text != "" && !strings.Contains(strings.ToLower(a.Code+"\n"+a.Name+"\n"+a.Location+"\n"+a.Address), text) {
				continue
			}
			if len(out) == q.Limit {
				next = out[len(out)-1].Code
				break
			}
			s.complete(a, now)
			out = append(out, *a)
		}
		return nil, rows.Err()
	})
	return out, next, err
}

// Ref is what another register needs to know of an asset it links to.
type Ref struct {
	ID, Code, Name, Kind, Department, Classification, Status string
	RecordsSystem                                            bool
	EndOfSupport                                             string
}

func refOf(a *Asset) Ref {
	return Ref{ID: a.ID, Code: a.Code, Name: a.Name, Kind: a.Kind, Department: a.Department, Classification: a.Classification,
		Status: a.Status, RecordsSystem: a.RecordsSystem, EndOfSupport: a.EndOfSupport}
}

// Lookup returns the assets with the given ids that exist, by id, for a
// register that links to them (vulnerabilities, risks, incidents) and
// logs its own operation. It reads without a gate passage: it shows
// nothing by itself.
func (s *Service) Lookup(ctx context.Context, ids ...string) (map[string]Ref, error) {
	out := map[string]Ref{}
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		a, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if a != nil {
			out[id] = refOf(a)
		}
	}
	return out, nil
}

// InUse returns every asset in use, by code, for the registers that watch
// them all (the weekly scan cadence), without a gate passage: the caller
// logs its own read.
func (s *Service) InUse(ctx context.Context) ([]Ref, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM assets WHERE status = $1 ORDER BY code`, InUse)
	if err != nil {
		return nil, medguard.Wrap("assets.InUse", err)
	}
	defer rows.Close()
	var out []Ref
	for rows.Next() {
		a, err := scan(rows)
		if err != nil {
			return nil, medguard.Wrap("assets.InUse", err)
		}
		out = append(out, refOf(a))
	}
	return out, medguard.Wrap("assets.InUse", rows.Err())
}
