package cli

import (
	"context"
	"errors"
	"io"

	load "medguard/internal/bench"
)

const benchWritesSynopsis = `usage: medguard bench writes [--db DSN [--servers N]] [--url https://HOST:PORT --admin-password P --security-password P]
       [--new 50] [--concurrency 32] [--duration 20s] [--warmup 3s] [--rate 0]
       [--doctors 8] [--patients 500] [--records 5000] [--json] [--cpuprofile FILE] [--memprofile FILE] [--trace FILE]

Measures record writes by the department's doctors, over HTTPS with
keep-alive: --new percent of them are new records (POST
/api/v1/patients/{id}/records, 1-2 KB of Chinese text, to a random patient),
the rest new versions of existing records (PATCH /api/v1/records/{id}, a new
text). Each write is signed in, decided by the access policy, encrypted, and
committed together with its audit entry, durably, before it is answered.

Each worker updates only records no other worker writes (those of the
set-up whose index is its own modulo the number of workers, and the ones it
created), sending the version it replaces ("version", the optimistic check):
a 409 would mean someone else wrote the record, and counts as an error.

` + loadSynopsis

// benchWrites runs "medguard bench writes".
func benchWrites(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runLoadBench(ctx, loadBench{name: "writes", synopsis: benchWritesSynopsis,
		flags: func(fs *flagSet) func() (load.Mix, error) {
			newShare := fs.Float64("new", 50, "percent of writes that are new records; the rest are new versions of existing ones")
			return func() (load.Mix, error) {
				if *newShare < 0 || *newShare > 100 {
					return load.Mix{}, errors.New("--new: want a percentage from 0 to 100")
				}
				return load.Mix{load.Create: *newShare, load.Update: 100 - *newShare}, nil
			}
		}}, args, getenv, stdout, stderr)
}
