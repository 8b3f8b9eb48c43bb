package cli

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressBar shows bytes, rate and ETA on a terminal. It is nil (and
// every method a no-op) when stderr is not a terminal or output is JSON.
type progressBar struct {
	bar *progressbar.ProgressBar
}

func newProgress(output, desc string, total int64) *progressBar {
	if output == outputJSON || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	if total <= 0 {
		total = -1
	}
	return &progressBar{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)}
}

// Add implements repository.Progress.
func (p *progressBar) Add(n int64) {
	if p != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *progressBar) finish() {
	if p != nil {
		_ = p.bar.Finish()
	}
}
