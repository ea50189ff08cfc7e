package blip

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// checkOutputDir fails early when dir exists, is not empty and may not be
// replaced.
func checkOutputDir(dir string, overwrite bool) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blip: write: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("blip: write: %s exists and is not a folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("blip: write: %w", err)
	}
	if len(entries) > 0 && !overwrite {
		return fmt.Errorf("blip: write: %s exists and is not empty (allow overwriting to replace it)", dir)
	}
	return nil
}

// WriteFolderAtomic builds a folder in a temporary sibling of dir with fill,
// then renames it into place, so that dir is either absent/old or complete:
// never half written. An existing dir is replaced only when overwrite is set
// (an empty one always).
func WriteFolderAtomic(dir string, overwrite bool, fill func(tmp string) error) (err error) {
	if err := checkOutputDir(dir, overwrite); err != nil {
		return err
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("blip: write: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("blip: write: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("blip: write: %w", err)
	}
	if err := fill(tmp); err != nil {
		return err
	}
	var backup string
	if _, statErr := os.Stat(dir); statErr == nil {
		backup = tmp + ".old"
		if err := os.Rename(dir, backup); err != nil {
			return fmt.Errorf("blip: write: moving the old %s aside: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if backup != "" {
			os.Rename(backup, dir)
		}
		return fmt.Errorf("blip: write: %w", err)
	}
	if backup != "" {
		os.RemoveAll(backup)
	}
	syncDir(parent)
	return nil
}

// WriteFileSync writes data to path and syncs it to disk.
func WriteFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFileSync copies src to dst and syncs dst.
func copyFileSync(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncDir makes renames in dir durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
