//go:build race

package cli_test

// underRace is true in a build with the race detector: the slow browser
// and demo tests, which exercise no concurrency the other tests do not,
// run in the plain runs only (CI runs both).
const underRace = true
