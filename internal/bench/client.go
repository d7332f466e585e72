// Package bench is medguard's load generator: it sets up a small hospital
// through the HTTPS API (a department, doctors who enrol TOTP, patients and
// records) and then loads it, in a closed or an open loop, with a doctor's
// operations in the shares a Mix gives: record reads (GET
// /api/v1/records/{id}, which signs the caller in, asks the policy,
// decrypts and appends a durable audit entry before answering), new
// records and new versions, patient searches, worklists and charts. It
// reports throughput, latency, errors, CPU per operation and memory, and
// prints the figures of the audit log's own benchmark, which the CLI
// measures through the audit library.
//
// It is a client like any other: it speaks only the public API, never opens
// the database, and knows nothing of how the server is run. Starting a
// server for it (or pointing it at one) is the CLI's business.
package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Client is the API as the load generator sees it: the server's base URL
// (https://host:port) and an HTTP client that trusts its certificate.
type Client struct {
	Base string
	HTTP *http.Client
}

// NewTransport returns a keep-alive transport for conns connections to one
// host: enough idle connections that none is closed between requests.
// tlsCfg (which may be nil) says which certificates to trust. The
// transport speaks HTTP/1.1, one request at a time per connection.
func NewTransport(conns int, tlsCfg *tls.Config) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     tlsCfg,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 30 * time.Second,
		DisableCompression:  true,
	}
}

// apiError is an answer other than the one expected.
type apiError struct {
	method, path string
	status       int
	body         []byte
}

func (e *apiError) Error() string {
	b := e.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.status, bytes.TrimSpace(b))
}

// call makes one API request with an optional JSON body and bearer token,
// expects the status want and decodes the answer into out (if not nil). A
// 429 is waited out (Retry-After, at most a minute) and tried again.
func (c *Client) call(ctx context.Context, method, path, token string, body any, want int, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if raw != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
		if err != nil {
			return err
		}
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return err
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 10 {
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 && s <= 60 {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if resp.StatusCode != want {
			return &apiError{method: method, path: path, status: resp.StatusCode, body: answer}
		}
		if out != nil {
			if err := json.Unmarshal(answer, out); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		return nil
	}
}
