package pulse

import "time"

// SetMemoAge lets a test keep a request's reading as long as it needs, on
// a machine of any speed.
func SetMemoAge(p *Pulse, d time.Duration) { p.memoAge = d }
