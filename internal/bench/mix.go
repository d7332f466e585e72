package bench

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind is a kind of operation the load generator makes, each one a
// request a doctor's client makes in a day's work.
type Kind int

// The kinds of operation.
const (
	// Read is GET /api/v1/records/{id}: a record opened.
	Read Kind = iota
	// Create is POST /api/v1/patients/{id}/records: a new record of 1–2 KB
	// of Chinese text.
	Create
	// Update is PATCH /api/v1/records/{id}: a new version of a record's
	// text, with the version it replaces when the worker knows it.
	Update
	// Search is POST /api/v1/patients/search by 病案号 or by name.
	Search
	// List is GET /api/v1/patients?department=…&limit=20: the first page of
	// the department's patients, the ward's worklist (every patient listed
	// is an audit entry of its own).
	List
	// Chart is GET /api/v1/patients/{id}/records: a patient's records
	// listed, as when a chart is opened.
	Chart
	numKinds
)

var kindNames = [numKinds]string{"read", "create", "update", "search", "list", "chart"}

// kindRoutes are the server's routes of the kinds, as its metrics label
// them.
var kindRoutes = [numKinds]string{"GET /api/v1/records/{id}", "POST /api/v1/patients/{id}/records",
	"PATCH /api/v1/records/{id}", "POST /api/v1/patients/search", "GET /api/v1/patients", "GET /api/v1/patients/{id}/records"}

// Route is the server's route for the kind, as the route label of its
// medguard_http_requests_total metric gives it.
func (k Kind) Route() string {
	if k < 0 || k >= numKinds {
		return ""
	}
	return kindRoutes[k]
}

// String is the kind's name as --mix spells it.
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Mix is the share of each kind of operation, as weights (percentages,
// say); the zero Mix reads only.
type Mix [numKinds]float64

// ReadsOnly is the mix of "bench reads".
var ReadsOnly = Mix{Read: 1}

// ParseMix reads "read=80,write=10,search=5,list=5": a weight for each
// kind named (read, create, update, search, list, chart; "write" is create
// and update in equal parts). Kinds not named are not made.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, v, ok := strings.Cut(part, "=")
		w, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || w < 0 || w > 1e6 {
			return Mix{}, fmt.Errorf("mix: %q: want KIND=WEIGHT with a weight from 0 to 1000000", part)
		}
		switch name = strings.TrimSpace(name); name {
		case "write":
			m[Create] += w / 2
			m[Update] += w / 2
			continue
		}
		k := Kind(-1)
		for i, n := range kindNames {
			if n == name {
				k = Kind(i)
			}
		}
		if k < 0 {
			return Mix{}, fmt.Errorf("mix: unknown kind %q (want read, write, create, update, search, list or chart)", name)
		}
		m[k] += w
	}
	if m.total() == 0 {
		return Mix{}, errors.New("mix: no operation has a weight")
	}
	return m, nil
}

func (m Mix) total() float64 {
	var t float64
	for _, w := range m {
		t += w
	}
	return t
}

// orDefault is m, or ReadsOnly for the zero Mix.
func (m Mix) orDefault() Mix {
	if m.total() == 0 {
		return ReadsOnly
	}
	return m
}

// Kinds are the kinds with a weight, in order.
func (m Mix) Kinds() []Kind {
	var ks []Kind
	for k, w := range m {
		if w > 0 {
			ks = append(ks, Kind(k))
		}
	}
	return ks
}

// Share is the part of all operations that are of kind k, from 0 to 1.
func (m Mix) Share(k Kind) float64 {
	t := m.total()
	if t == 0 || k < 0 || k >= numKinds {
		return 0
	}
	return m[k] / t
}

// String writes the mix as percentages: "read=80,create=5,…".
func (m Mix) String() string {
	var parts []string
	for _, k := range m.Kinds() {
		parts = append(parts, k.String()+"="+strconv.FormatFloat(math.Round(m.Share(k)*1e4)/100, 'f', -1, 64))
	}
	return strings.Join(parts, ",")
}

// Bench is the benchmark the mix makes: "reads" for reads only, "writes"
// for creates and updates only, else "mixed".
func (m Mix) Bench() string {
	m = m.orDefault()
	switch {
	case m.Share(Read) == 1:
		return "reads"
	case m.Share(Create)+m.Share(Update) > 0.9999:
		return "writes"
	}
	return "mixed"
}

// unitOf is what a bench counts: "reads", "writes" or "ops".
func unitOf(bench string) string {
	if bench == "reads" || bench == "writes" {
		return bench
	}
	return "ops"
}

// pick chooses a kind for a number r drawn uniformly from [0, 1).
func (m Mix) pick(r float64) Kind {
	x := r * m.total()
	last := Read
	for k, w := range m {
		if w <= 0 {
			continue
		}
		if x < w {
			return Kind(k)
		}
		x -= w
		last = Kind(k)
	}
	return last
}
