package console_test

import (
	"os"
	"testing"

	"medguard/internal/identity/identitytest"
)

// TestMain hashes passwords at a test cost: the servers of the end-to-end
// tests run in this process (see identitytest.CheapPasswords).
func TestMain(m *testing.M) {
	identitytest.CheapPasswords()
	os.Exit(m.Run())
}
