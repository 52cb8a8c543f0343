package docsync

// SetTestBeforeCollect makes fn run in push before each batch of dirty
// documents is taken (where a local write may land during a sync).
func (e *Engine) SetTestBeforeCollect(fn func()) { e.testBeforeCollect = fn }
