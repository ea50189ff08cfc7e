package capfilt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// journal is the append-only record of finished batches: a header line
// {"settings": ...} and then one record per image. Each batch is written
// with one write and fsynced; a torn last line (a crash mid-write) is cut
// off when the journal is reopened.
type journal struct {
	f *os.File
}

type journalHeader struct {
	Settings *settings `json:"settings"`
}

// openJournal opens (or creates) path and returns the records it holds by
// image index. A journal written with other settings is an error: resuming
// it would mix two runs.
func openJournal(path string, st settings) (*journal, map[int]record, error) {
	done := map[int]record{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("capfilt: journal: %w", err)
		}
		j := &journal{f: f}
		head, _ := json.Marshal(journalHeader{Settings: &st})
		if err := j.write(append(head, '\n')); err != nil {
			f.Close()
			return nil, nil, err
		}
		return j, done, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("capfilt: journal: %w", err)
	}
	// Keep whole lines only.
	good := bytes.LastIndexByte(data, '\n') + 1
	sc := bufio.NewScanner(bytes.NewReader(data[:good]))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			var h journalHeader
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Settings == nil {
				return nil, nil, fmt.Errorf("capfilt: %s is not a capfilt journal (delete it to start over)", path)
			}
			if *h.Settings != st {
				a, _ := json.Marshal(h.Settings)
				b, _ := json.Marshal(st)
				return nil, nil, fmt.Errorf("capfilt: %s was written with other settings (%s; now %s): delete it to start over, or rerun with the same settings to resume", path, a, b)
			}
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, nil, fmt.Errorf("capfilt: %s: line %d: %v (delete the journal to start over)", path, line, err)
		}
		done[r.Index] = r
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("capfilt: journal: %w", err)
	}
	if line == 0 {
		// Only a torn header: start afresh.
		os.Remove(path)
		return openJournal(path, st)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("capfilt: journal: %w", err)
	}
	if err := f.Truncate(int64(good)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("capfilt: journal: %w", err)
	}
	if _, err := f.Seek(int64(good), 0); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("capfilt: journal: %w", err)
	}
	return &journal{f: f}, done, nil
}

// append writes one batch of records and syncs them.
func (j *journal) append(recs []record) error {
	var b bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return j.write(b.Bytes())
}

func (j *journal) write(b []byte) error {
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("capfilt: journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("capfilt: journal: %w", err)
	}
	return nil
}

// Close closes the file (twice is harmless).
func (j *journal) Close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
