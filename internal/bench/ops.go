package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// hospitalURLs are what every worker requests, made once and shared
// read-only.
type hospitalURLs struct {
	records  []string // /api/v1/records/{id}, one per record
	charts   []string // /api/v1/patients/{id}/records, one per patient
	search   string
	worklist string
	record   string   // the records' URL, to which a new record's id is added
	searches [][]byte // one search body per patient
	dept     string
}

func newHospitalURLs(base string, h *Hospital) *hospitalURLs {
	u := &hospitalURLs{search: base + "/api/v1/patients/search", dept: h.Department, record: base + "/api/v1/records/",
		worklist: base + "/api/v1/patients?department=" + url.QueryEscape(h.Department) + "&limit=20"}
	for _, id := range h.Records {
		u.records = append(u.records, u.record+id)
	}
	for _, id := range h.PatientIDs {
		u.charts = append(u.charts, base+"/api/v1/patients/"+id+"/records")
	}
	for _, s := range h.searches {
		b, _ := json.Marshal(s)
		u.searches = append(u.searches, b)
	}
	return u
}

// owned is a record a worker alone updates, and its version as the worker
// last saw it (0: unknown), so that its updates can carry the version they
// replace (the server answers 409 if another wrote in between).
type owned struct {
	url     string // PATCH target
	version int
}

// maxOwned bounds the records a worker remembers.
const maxOwned = 4096

// worker is one client: a doctor's credentials, its own random numbers,
// and what it measured.
type worker struct {
	client *http.Client
	urls   *hospitalURLs
	auth   []string // the Authorization header's value
	rng    *mrand.Rand
	// owned are the records this worker updates with their version: the
	// setup's records of index i mod workers, and those it created.
	owned []owned

	answers  []answer // every measured success
	svc      []time.Duration
	errs     [numKinds]map[string]int64
	sample   string
	lastDone time.Time
}

var jsonType = []string{"application/json"}

// ownConnection returns a client with a connection of its own: c with a
// copy of its transport that keeps one connection open.
func ownConnection(c *http.Client) *http.Client {
	t, ok := c.Transport.(*http.Transport)
	if !ok {
		return c
	}
	t = t.Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost, t.MaxIdleConns = 1, 1, 1
	return &http.Client{Transport: t, Timeout: c.Timeout}
}

// do makes one operation of kind k and reports its status (0 for a
// transport error, whose class it returns).
func (w *worker) do(ctx context.Context, k Kind) (int, string, error) {
	u := w.urls
	switch k {
	case Read:
		return w.send(ctx, "GET", u.records[w.rng.IntN(len(u.records))], nil, nil)
	case Chart:
		return w.send(ctx, "GET", u.charts[w.rng.IntN(len(u.charts))], nil, nil)
	case List:
		return w.send(ctx, "GET", u.worklist, nil, nil)
	case Search:
		return w.send(ctx, "POST", u.search, u.searches[w.rng.IntN(len(u.searches))], nil)
	case Create:
		body, _ := json.Marshal(record(w.rng, u.dept))
		var out struct {
			ID      string `json:"id"`
			Version int    `json:"version"`
		}
		status, class, err := w.send(ctx, "POST", u.charts[w.rng.IntN(len(u.charts))], body, &out)
		if status == http.StatusCreated && out.ID != "" {
			w.own(owned{url: u.record + out.ID, version: out.Version})
		}
		return status, class, err
	case Update:
		return w.update(ctx)
	}
	return 0, "unknown kind", errors.New("bench: unknown kind " + k.String())
}

// update writes a new version of one of the worker's own records, with
// the version it replaces.
func (w *worker) update(ctx context.Context) (int, string, error) {
	if len(w.owned) == 0 {
		return 0, "no record to update", errors.New("bench: the worker has no record of its own to update")
	}
	rec := record(w.rng, w.urls.dept)
	ch := map[string]any{"text": rec["text"], "fields": rec["fields"]}
	o := &w.owned[w.rng.IntN(len(w.owned))]
	if o.version > 0 {
		ch["version"] = o.version
	}
	body, _ := json.Marshal(ch)
	var out struct {
		Version int `json:"version"`
	}
	status, class, err := w.send(ctx, "PATCH", o.url, body, &out)
	switch {
	case status == http.StatusOK:
		o.version = out.Version
	case status == http.StatusConflict:
		o.version = 0 // someone else wrote it: the next update learns the version
	}
	return status, class, err
}

// own remembers a record the worker updates from now on.
func (w *worker) own(o owned) {
	if len(w.owned) < maxOwned {
		w.owned = append(w.owned, o)
		return
	}
	w.owned[w.rng.IntN(len(w.owned))] = o
}

// send makes one request with an optional JSON body and decodes a 2xx
// answer into out (if not nil); other answers are read and dropped.
func (w *worker) send(ctx context.Context, method, target string, body []byte, out any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header["Authorization"] = w.auth
	if body != nil {
		req.Header["Content-Type"] = jsonType
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, classify(err), err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	if _, cerr := io.Copy(io.Discard, resp.Body); err == nil {
		err = cerr
	}
	resp.Body.Close()
	if err != nil {
		return 0, classify(err), err
	}
	return resp.StatusCode, "", nil
}

// classify names a transport error's cause without its addresses.
func classify(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &se):
		return "bad answer"
	}
	return "transport error"
}

// note records one operation's outcome if it belongs to the measured
// window.
func (w *worker) note(measured bool, k Kind, status int, class string, err error, lat, svc time.Duration, done time.Time) {
	if !measured {
		return
	}
	switch {
	case status >= 200 && status < 300:
		w.answers = append(w.answers, answer{kind: k, end: done, took: lat})
		if svc >= 0 {
			w.svc = append(w.svc, svc)
		}
	case status != 0:
		w.errs[k]["HTTP "+strconv.Itoa(status)]++
	default:
		w.errs[k][class]++
		if w.sample == "" {
			w.sample = err.Error()
		}
	}
	if done.After(w.lastDone) {
		w.lastDone = done
	}
}
