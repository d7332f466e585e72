// Package identitytest holds what tests of other packages need of the
// identity service.
package identitytest

import "medguard/internal/identity"

// Cheap is a password-hashing cost for tests: argon2id with 1 MiB and one
// pass instead of the production 46 MiB (identity.DefaultArgon2).
var Cheap = identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}

// CheapPasswords makes every identity service of this test process that
// is not given a cost of its own hash passwords at the Cheap cost. Call it
// from TestMain in packages whose end-to-end tests run whole servers in the
// test process (the CLI, the console, the demo): at the production cost
// password hashing and the garbage it leaves were more than half of their
// CPU. Hashes name their parameters, so nothing else changes; identity's
// own tests and benchmarks cover the production cost.
func CheapPasswords() { identity.DefaultArgon2 = Cheap }
