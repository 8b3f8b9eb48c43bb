package repository

import "fmt"

// closeFile releases t's descriptor; reopenFile takes it up again.
func (o *confinedOutput) closeFile(t *tempFile) error {
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	if err != nil {
		return fmt.Errorf("close %s in %s: %w", t.rel, o.rootPath, err)
	}
	return nil
}
