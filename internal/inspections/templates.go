package inspections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The kinds of checklist item: a reading (a number with its unit, within
// a range) or a check (in order or not).
const (
	KindReading = "reading"
	KindCheck   = "check"
)

// Kinds lists the kinds of checklist item.
var Kinds = []string{KindReading, KindCheck}

// The items every checklist holds (seed 003 §4.1.1): the archive room's
// climate, its fire, anti-theft and access devices, the storage devices,
// and the three items medguard fills in itself.
const (
	RoomTemperature  = "room_temperature"
	RoomHumidity     = "room_humidity"
	FireDevices      = "fire_devices"
	AntiTheftDevices = "anti_theft_devices"
	AccessDevices    = "access_devices"
	StorageDevices   = "storage_devices"
	ServerLoad       = "server_load"
	FreeSpace        = "free_space"
	BackupStatus     = "backup_status"
)

// SystemItems are the items medguard fills in itself from its own state:
// the server's load and free space (Host) and the backups' status
// (Backups).
var SystemItems = []string{ServerLoad, FreeSpace, BackupStatus}

// IsSystem reports whether medguard fills the item in itself.
func IsSystem(key string) bool { return key == ServerLoad || key == FreeSpace || key == BackupStatus }

// Item is one line of the checklist. A reading has a unit and a range —
// Min and Max, inclusive; either may be absent — and is out of range
// below Min or above Max; a check is in order or not.
type Item struct {
	Key   string   `json:"key"`
	Label string   `json:"label"`
	Kind  string   `json:"kind"`
	Unit  string   `json:"unit,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	// System is true for the items medguard fills in itself.
	System bool `json:"system"`
}

// InRange reports whether v is within the item's range (inclusive).
func (it Item) InRange(v float64) bool {
	return (it.Min == nil || v >= *it.Min) && (it.Max == nil || v <= *it.Max)
}

// Range says the item's range in figures: "20–24 °C", "≥ 15 %", "≤ 80 %";
// "" for a check.
func (it Item) Range() string {
	unit := ""
	if it.Unit != "" {
		unit = " " + it.Unit
	}
	switch {
	case it.Kind != KindReading:
		return ""
	case it.Min != nil && it.Max != nil:
		return Figure(*it.Min) + "–" + Figure(*it.Max) + unit
	case it.Min != nil:
		return "≥ " + Figure(*it.Min) + unit
	case it.Max != nil:
		return "≤ " + Figure(*it.Max) + unit
	}
	return ""
}

// Figure writes a number as people read it: no exponent, no trailing
// zeros ("22", "45.5", "0.05").
func Figure(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func f(v float64) *float64 { return &v }

// requiredItems are the built-in items, as the first checklist has them:
// a new version may change their labels and ranges, never drop them or
// change their kind (nor the unit of those medguard fills in).
var requiredItems = []Item{
	{Key: RoomTemperature, Label: "病案库房温度（22 ± 2 °C）", Kind: KindReading, Unit: "°C", Min: f(20), Max: f(24)},
	{Key: RoomHumidity, Label: "病案库房相对湿度（45–60 %）", Kind: KindReading, Unit: "%", Min: f(45), Max: f(60)},
	{Key: FireDevices, Label: "消防设施（灭火器、烟感、气体灭火装置）完好", Kind: KindCheck},
	{Key: AntiTheftDevices, Label: "防盗设施（防盗门窗、视频监控、报警器）正常", Kind: KindCheck},
	{Key: AccessDevices, Label: "门禁设施正常，出入登记完整", Kind: KindCheck},
	{Key: StorageDevices, Label: "存储设备（磁盘阵列、磁带库）运行正常，无告警", Kind: KindCheck},
	{Key: ServerLoad, Label: "服务器负载（15 分钟平均，按 CPU 核数折算）", Kind: KindReading, Unit: "%", Max: f(80), System: true},
	{Key: FreeSpace, Label: "数据目录所在磁盘剩余空间", Kind: KindReading, Unit: "%", Min: f(15), System: true},
	{Key: BackupStatus, Label: "备份状态（各备份目标按时完成，RPO 达标）", Kind: KindCheck, System: true},
}

// DefaultTemplate is the first version of the checklist, in force until
// the security office saves another.
func DefaultTemplate() Template {
	items := make([]Item, len(requiredItems))
	for i, it := range requiredItems {
		items[i] = it
		if it.Min != nil {
			items[i].Min = f(*it.Min)
		}
		if it.Max != nil {
			items[i].Max = f(*it.Max)
		}
	}
	return Template{Version: 1, Items: items, CreatedBy: "medguard", Current: true}
}

// Template is a version of the daily checklist.
type Template struct {
	Version int    `json:"version"`
	Items   []Item `json:"items"`
	// CreatedBy is who saved the version ("medguard" for the first one,
	// built in), CreatedAt when (absent for the built-in one).
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Current is true for the version in force.
	Current bool `json:"current"`
}

// Item returns the template's item with the key.
func (t *Template) Item(key string) (Item, bool) {
	for _, it := range t.Items {
		if it.Key == key {
			return it, true
		}
	}
	return Item{}, false
}

// NewTemplate is a new version of the checklist: its items, in order.
type NewTemplate struct {
	Items []Item `json:"items"`
}

// MaxItems is the most items a checklist holds.
const MaxItems = 40

var (
	keyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,31}$`)
	// bound is the largest figure a range or reading may hold.
	bound = 1e6
)

// checkItems validates a checklist's items: keys unique, the built-in
// items all present with their kinds, labels one line, readings with a
// unit and a range, checks with neither. System is set from the key.
func checkItems(items []Item) ([]Item, error) {
	switch {
	case len(items) == 0:
		return nil, medguard.InvalidField("items", "the checklist needs items")
	case len(items) > MaxItems:
		return nil, medguard.InvalidField("items", "a checklist holds at most %d items", MaxItems)
	}
	out := make([]Item, 0, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		field := fmt.Sprintf("items[%d]", i)
		if !keyPattern.MatchString(it.Key) {
			return nil, medguard.InvalidField(field+".key", "a key is 2 to 32 lower-case letters, digits or '_', a letter first")
		}
		if seen[it.Key] {
			return nil, medguard.InvalidField(field+".key", "the key %s is there twice", it.Key)
		}
		seen[it.Key] = true
		var err error
		if it.Label, err = medguard.Line(field+".label", it.Label, 64, true); err != nil {
			return nil, err
		}
		it.System = IsSystem(it.Key)
		req, builtIn := requiredItem(it.Key)
		switch {
		case it.Kind != KindReading && it.Kind != KindCheck:
			return nil, medguard.InvalidField(field+".kind", "kind must be reading or check")
		case builtIn && it.Kind != req.Kind:
			return nil, medguard.InvalidField(field+".kind", "the item %s is a %s", it.Key, req.Kind)
		case it.Kind == KindCheck && (it.Unit != "" || it.Min != nil || it.Max != nil):
			return nil, medguard.InvalidField(field+".unit", "a check has no unit and no range")
		}
		if it.Kind == KindReading {
			if it.System {
				it.Unit = req.Unit
			}
			if n := utf8.RuneCountInString(it.Unit); n == 0 || n > 8 || !utf8.ValidString(it.Unit) ||
				containsControl(it.Unit) {
				return nil, medguard.InvalidField(field+".unit", "a reading has a unit of 1 to 8 characters")
			}
			for name, v := range map[string]*float64{"min": it.Min, "max": it.Max} {
				if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || math.Abs(*v) > bound) {
					return nil, medguard.InvalidField(field+"."+name, "%s must be a number between -%g and %g", name, bound, bound)
				}
			}
			switch {
			case it.Min == nil && it.Max == nil:
				return nil, medguard.InvalidField(field+".min", "a reading needs a range: min, max or both")
			case it.Min != nil && it.Max != nil && *it.Min > *it.Max:
				return nil, medguard.InvalidField(field+".max", "max must not be below min")
			}
		}
		out = append(out, it)
	}
	for _, req := range requiredItems {
		if !seen[req.Key] {
			return nil, medguard.InvalidField("items", "the checklist must keep the item %s", req.Key)
		}
	}
	return out, nil
}

func requiredItem(key string) (Item, bool) {
	for _, it := range requiredItems {
		if it.Key == key {
			return it, true
		}
	}
	return Item{}, false
}

func containsControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// current reads the checklist in force: the newest saved version, or the
// built-in first one.
func (s *Service) current(ctx context.Context) (*Template, error) {
	var t Template
	var items string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT version, items, created_by, created_at FROM inspection_templates
		ORDER BY version DESC LIMIT 1`).Scan(&t.Version, &items, &t.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		d := DefaultTemplate()
		return &d, nil
	}
	if err != nil {
		return nil, medguard.Wrap("inspections.current", err)
	}
	if err := json.Unmarshal([]byte(items), &t.Items); err != nil {
		return nil, medguard.Wrap("inspections.current", err)
	}
	t.CreatedAt, t.Current = medguard.FromMillis(at), true
	return &t, nil
}

// Templates lists the checklist's versions, newest first, the one in
// force marked (inspection.read).
func (s *Service) Templates(ctx context.Context, call *medguard.Call) ([]Template, error) {
	out := []Template{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionRead, AuditAction: "inspection.templates",
		Resource: policy.Resource{Type: "inspection_template"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT version, items, created_by, created_at FROM inspection_templates
			ORDER BY version DESC LIMIT 200`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var t Template
			var items string
			var at int64
			if err := rows.Scan(&t.Version, &items, &t.CreatedBy, &at); err != nil {
				return nil, err
			}
			if err := json.Unmarshal([]byte(items), &t.Items); err != nil {
				return nil, err
			}
			t.CreatedAt, t.Current = medguard.FromMillis(at), len(out) == 0
			out = append(out, t)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		d := DefaultTemplate()
		d.Current = len(out) == 0
		out = append(out, d)
		return nil, nil
	})
	if err != nil {
		return nil, medguard.Wrap("inspections.Templates", err)
	}
	return out, nil
}

// SaveTemplate puts a new version of the checklist in force
// (inspection.manage); inspections already signed keep the items and
// ranges they were made with.
func (s *Service) SaveTemplate(ctx context.Context, call *medguard.Call, in NewTemplate) (*Template, error) {
	items, err := checkItems(in.Items)
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(items)
	now := s.clock.Now().Truncate(time.Millisecond)
	var t *Template
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionManage, AuditAction: "inspection.template_save",
		Resource: policy.Resource{Type: "inspection_template"}}, func(policy.Decision) (audit.Mutation, error) {
		cur, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		t = &Template{Version: cur.Version + 1, Items: items, CreatedBy: call.Actor.Name, CreatedAt: now, Current: true}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO inspection_templates (version, items, created_by, created_at) VALUES ($1, $2, $3, $4)`,
				t.Version, string(raw), call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Message: "another version was saved meanwhile: reload and try again"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
