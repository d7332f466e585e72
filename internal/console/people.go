package console

import (
	"context"
	"strings"
	"sync"
	"time"

	"medguard"
	"medguard/internal/identity"
)

// People and departments are shown by name — 李强（信息科）, 心内科 —
// never by username or code alone. The names come from the staff
// directory, read at most every directoryTTL and shared by every page.

// directoryTTL is how long the directory is kept before it is read again.
const directoryTTL = 30 * time.Second

// directory is the cached staff directory.
type directory struct {
	read  func(context.Context) ([]identity.StaffName, []identity.Department, error)
	clock medguard.Clock

	mu      sync.Mutex
	at      time.Time
	byName  map[string]identity.StaffName // username → name
	byID    map[string]identity.StaffName // user id → name
	depts   map[string]string             // code → name
	ordered []identity.Department
}

func newDirectory(id *identity.Service, clock medguard.Clock) *directory {
	d := &directory{clock: clock}
	if id != nil {
		d.read = id.Directory
	}
	return d
}

// load refreshes the directory when it is older than directoryTTL. A
// failed read keeps the last one (names are a convenience, never a
// decision).
func (d *directory) load() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.read == nil || d.byName != nil && d.now().Sub(d.at) < directoryTTL && !d.now().Before(d.at) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	staff, deps, err := d.read(ctx)
	if err != nil {
		return
	}
	d.at = d.now()
	d.byName, d.byID, d.depts = map[string]identity.StaffName{}, map[string]identity.StaffName{}, map[string]string{}
	for _, s := range staff {
		d.byName[s.Username], d.byID[s.ID] = s, s
	}
	for _, dep := range deps {
		d.depts[dep.Code] = dep.Name
	}
	d.ordered = deps
}

// forget makes the next lookup read the directory again (after a page
// changed it: a new user, a new department).
func (d *directory) forget() {
	d.mu.Lock()
	d.byName = nil
	d.mu.Unlock()
}

// staff returns the entry of a username, or of a user id.
func (d *directory) staff(who string) (identity.StaffName, bool) {
	d.load()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.byName[who]; ok {
		return s, true
	}
	s, ok := d.byID[who]
	return s, ok
}

// department returns a department's name, or its code if unknown.
func (d *directory) department(code string) string {
	if code == "" {
		return ""
	}
	d.load()
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.depts[code]; ok {
		return n
	}
	return code
}

// departments returns every department, by code.
func (d *directory) departments() []identity.Department {
	d.load()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ordered
}

// person names who (a username or a user id) for lang: "李强（信息科）" /
// "Li Qiang (IT)", the name alone for staff without a department,
// "系统" for medguard itself and "接口密钥 his" for an API key; who
// itself when the directory does not know it.
func (d *directory) person(cat *catalog, lang, who string) string {
	switch {
	case who == "":
		return ""
	case who == "system":
		return cat.text(lang, "who.system")
	case strings.HasPrefix(who, "apikey:"):
		return cat.text(lang, "who.apikey", strings.TrimPrefix(who, "apikey:"))
	}
	s, ok := d.staff(who)
	if !ok {
		return who
	}
	name := s.DisplayName
	if name == "" {
		name = s.Username
	}
	if s.Department == "" {
		return name
	}
	return cat.text(lang, "who.person", name, d.department(s.Department))
}

// now is the directory's clock's time (the console's clock).
func (d *directory) now() time.Time {
	if d.clock == nil {
		return time.Now()
	}
	return d.clock.Now()
}
