//go:build !race

package cli_test

// underRace is true in a build with the race detector (see race_on_test.go).
const underRace = false
