package pretrain

import (
	"errors"
	"fmt"
	"io"

	"blip/blip"
	"blip/data/augment"
	"blip/data/dataset"
	"blip/data/preprocess"
	"blip/data/tokenizer"
)

// example is one decoded training pair.
type example struct {
	patches []float32
	ids     []int32
	mask    []float32
}

// ErrEpochEnd is returned by Batcher.Next when an epoch's data ran out
// before its step count (samples were skipped): the run moves on to the
// next epoch.
var ErrEpochEnd = errors.New("pretrain: the epoch's data ran out")

// Batcher turns a dataset into training batches: each sample decoded,
// augmented (RandomResizedCrop, flip, RandAugment, seeded by run seed,
// epoch and index), patchified, its caption cleaned by pre_caption and
// tokenised to max_length, on several workers in order, shuffled per
// epoch (index-addressable datasets), incomplete last batches dropped.
type Batcher struct {
	cfg    *Config
	ds     dataset.Dataset
	tok    *tokenizer.Tokenizer
	tr     *augment.Transform
	strict bool
	loader *dataset.Loader[example]
	epoch  int // the loader's epoch
	stats  dataset.Stats
}

// NewBatcher prepares batches of ds for cfg; strict makes a bad sample
// (unreadable image, empty caption) fatal instead of skipped and counted.
func NewBatcher(cfg *Config, ds dataset.Dataset, tok *tokenizer.Tokenizer, strict bool) *Batcher {
	size := cfg.model.VisionConfig.ImageSize
	tr := augment.NewTrain(size, cfg.MinScale)
	if !cfg.RandAugment {
		tr.Aug = nil
	}
	return &Batcher{cfg: cfg, ds: ds, tok: tok, tr: tr, strict: strict, epoch: -1}
}

// EpochSteps is the number of steps of an epoch: the samples over the
// batch size (drop_last), capped by steps_per_epoch. A streaming dataset
// is counted by reading it once unless steps_per_epoch is set.
func (b *Batcher) EpochSteps() (int, error) {
	n := 0
	if ix, ok := b.ds.(dataset.Indexed); ok {
		n = ix.Len()
	} else if b.cfg.StepsPerEpoch > 0 {
		return b.cfg.StepsPerEpoch, nil
	} else {
		src, err := b.ds.Open()
		if err != nil {
			return 0, err
		}
		for {
			_, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, err
			}
			n++
		}
		if c, ok := src.(io.Closer); ok {
			c.Close()
		}
	}
	steps := n / b.cfg.BatchSize
	if s := b.cfg.StepsPerEpoch; s > 0 && s < steps {
		steps = s
	}
	return steps, nil
}

func (b *Batcher) decode(s dataset.Sample, pos dataset.Position) (example, error) {
	caption := tokenizer.PreCaption(s.Caption, b.cfg.MaxWords)
	if caption == "" {
		return example{}, fmt.Errorf("empty caption")
	}
	data, err := s.Image()
	if err != nil {
		return example{}, err
	}
	img, err := preprocess.Decoder{}.Decode(s.Key, data)
	if err != nil {
		return example{}, err
	}
	px, err := b.tr.Apply(img, augment.SampleSeed(b.cfg.Seed, pos.Epoch, pos.Index))
	if err != nil {
		return example{}, err
	}
	patches, err := blip.Patchify(px, 1, &b.cfg.model.VisionConfig)
	if err != nil {
		return example{}, err
	}
	enc := b.tok.EncodeWith(caption, tokenizer.Options{MaxLength: b.cfg.MaxLength, PadTo: b.cfg.MaxLength})
	ex := example{patches: patches, ids: make([]int32, len(enc.IDs)), mask: make([]float32, len(enc.IDs))}
	for i, id := range enc.IDs {
		ex.ids[i] = int32(id)
		ex.mask[i] = float32(enc.AttentionMask[i])
	}
	return ex, nil
}

// start (re)opens the loader at pos.
func (b *Batcher) start(pos dataset.Position) error {
	b.Close()
	l, err := dataset.NewLoaderPos(b.ds, b.decode, dataset.Options{
		Workers: b.cfg.Workers, Prefetch: 2 * b.cfg.Workers * max(1, b.cfg.BatchSize/b.cfg.Workers),
		Epochs: pos.Epoch + 1, Shuffle: isIndexed(b.ds), Seed: b.cfg.Seed, Strict: b.strict, Start: pos,
	})
	if err != nil {
		return err
	}
	b.loader, b.epoch = l, pos.Epoch
	return nil
}

func isIndexed(ds dataset.Dataset) bool {
	_, ok := ds.(dataset.Indexed)
	return ok
}

// Next returns the next batch of epoch from pos (the position after the
// previous batch; {epoch, 0} at an epoch's start) and the position after
// it. ErrEpochEnd says the epoch has no full batch left.
func (b *Batcher) Next(pos dataset.Position) (*Batch, dataset.Position, error) {
	if b.loader == nil || b.epoch != pos.Epoch || b.loader.Position() != pos {
		if err := b.start(pos); err != nil {
			return nil, pos, err
		}
	}
	bs, tl := b.cfg.BatchSize, b.cfg.MaxLength
	batch := &Batch{}
	for len(batch.Keys) < bs {
		it, err := b.loader.Next()
		if err == io.EOF {
			b.Close()
			return nil, pos, ErrEpochEnd
		}
		if err != nil {
			return nil, pos, err
		}
		batch.Patches = append(batch.Patches, it.Value.patches...)
		batch.IDs = append(batch.IDs, it.Value.ids...)
		batch.Mask = append(batch.Mask, it.Value.mask...)
		batch.Keys = append(batch.Keys, it.Sample.Key)
	}
	if len(batch.IDs) != bs*tl {
		return nil, pos, fmt.Errorf("pretrain: batch of %d ids, want %d", len(batch.IDs), bs*tl)
	}
	return batch, b.loader.Position(), nil
}

// collect adds the finished loader's counts to the totals.
func (b *Batcher) collect() {
	if b.loader != nil {
		b.stats.Merge(b.loader.Stats())
	}
}

// Stats returns the samples seen and skipped so far (with reasons).
func (b *Batcher) Stats() dataset.Stats {
	s := b.stats.Clone()
	if b.loader != nil {
		s.Merge(b.loader.Stats())
	}
	return s
}

// Close stops the workers.
func (b *Batcher) Close() {
	if b.loader != nil {
		b.collect()
		b.loader.Close()
		b.loader = nil
	}
}
