package keys

// WrappedForTest returns a new data key's wrapped form, for tests that
// insert many keys at once.
func WrappedForTest(k *DataKey) []byte { return k.wrapped }
