//go:build !unix

package fulltext

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
