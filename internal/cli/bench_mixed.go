package cli

import (
	"context"
	"fmt"
	"io"

	load "medguard/internal/bench"
)

const benchMixedSynopsis = `usage: medguard bench mixed [--db DSN [--servers N]] [--url https://HOST:PORT --admin-password P --security-password P]
       [--mix read=80,write=10,search=5,list=5] [--concurrency 32] [--duration 20s] [--warmup 3s] [--rate 0]
       [--doctors 8] [--patients 500] [--records 5000] [--json] [--cpuprofile FILE] [--memprofile FILE] [--trace FILE]

Measures a hospital's day as load: the department's doctors, over HTTPS with
keep-alive, make the operations --mix names in its shares (weights, usually
percentages), each drawn at random:

  read    GET /api/v1/records/{id}: a record opened
  write   create and update in equal parts
  create  POST /api/v1/patients/{id}/records: a new record (1-2 KB of Chinese text)
  update  PATCH /api/v1/records/{id}: a new version, with the version it
          replaces (see "medguard bench writes --help")
  search  POST /api/v1/patients/search by 病案号 (or by name)
  list    GET /api/v1/patients?department=…&limit=20: the department's
          worklist, its first page (each patient listed is an audit entry)
  chart   GET /api/v1/patients/{id}/records: a patient's records listed

All are a doctor's (the audit log's search is not: it needs audit.read).
Every one is signed in, decided by the access policy and audited durably
before its answer.

` + loadSynopsis

// benchMixed runs "medguard bench mixed".
func benchMixed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runLoadBench(ctx, loadBench{name: "mixed", synopsis: benchMixedSynopsis,
		flags: func(fs *flagSet) func() (load.Mix, error) {
			mix := fs.String("mix", "read=80,write=10,search=5,list=5", "the share of each kind of operation: read, write (create and update in equal parts), create, update, search, list, chart")
			return func() (load.Mix, error) {
				m, err := load.ParseMix(*mix)
				if err != nil {
					return load.Mix{}, fmt.Errorf("--%w", err)
				}
				return m, nil
			}
		}}, args, getenv, stdout, stderr)
}
