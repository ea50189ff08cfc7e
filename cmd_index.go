package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/blip/index"
	"blip/data/preprocess"
)

func indexCmd() *cli.Command {
	return &cli.Command{
		Name:      "index",
		Usage:     "embed every image of a photo folder (ITC, retrieval model) into an index file for blip search and blip serve; re-runs embed only new or changed files",
		ArgsUsage: "PHOTOS_DIR",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder of a BlipForImageTextRetrieval model"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "index file to create or update (written atomically)"},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "images per device batch"},
			&cli.Int64Flag{Name: "max-pixels", Value: 100_000_000, Usage: "skip images with more pixels (decompression-bomb guard)"},
			&cli.DurationFlag{Name: "checkpoint", Value: 0, Usage: "how often the partial index is saved (0: every 30s)"},
		},
		Action: indexAction,
	}
}

func indexAction(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return fmt.Errorf("index: give one PHOTOS_DIR")
	}
	root := c.Args().First()
	if st, err := os.Stat(root); err != nil {
		return fmt.Errorf("index: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("index: %s is not a folder", root)
	}
	fp, err := index.Fingerprint(c.String("model"))
	if err != nil {
		return err
	}
	modelDir, err := filepath.Abs(c.String("model"))
	if err != nil {
		return err
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	m, _, proc, err := openKind(c, be, "index", blip.KindRetrieval)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ix, st, err := index.Build(ctx, index.BuildOptions{
		Root: root, Out: c.String("out"), Model: modelDir, Fingerprint: fp,
		Dim: m.Config.ImageTextHiddenSize, Batch: c.Int("batch"), MaxPixels: c.Int64("max-pixels"),
		CheckpointEvery: c.Duration("checkpoint"), Progress: os.Stderr, Log: os.Stderr,
	}, func(imgs []image.Image) ([]float32, error) {
		px, err := proc.Batch(imgs)
		if err != nil {
			return nil, err
		}
		return m.ImageEmbeddings(be, px, len(imgs))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "blip: index: %s: %v; %d searchable\n", c.String("out"), st, ix.Len())
	return nil
}

func searchCmd() *cli.Command {
	return &cli.Command{
		Name:      "search",
		Usage:     "search an index from `blip index` for the images that best match a text (ITC, optional ITM re-rank)",
		ArgsUsage: "TEXT",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "index", Required: true, Usage: "index file"},
			&cli.StringFlag{Name: "model", Usage: "retrieval model folder (default: the one the index was built with)"},
			&cli.IntFlag{Name: "k", Value: 10, Usage: "results to print"},
			&cli.IntFlag{Name: "rerank", Value: 0, Usage: "re-rank the best N by ITM match probability"},
			&cli.BoolFlag{Name: "json", Usage: "JSON Lines on stdout"},
		},
		Action: searchAction,
	}
}

func searchAction(c *cli.Context) error {
	query := strings.TrimSpace(strings.Join(c.Args().Slice(), " "))
	if query == "" {
		return fmt.Errorf("search: give the text to search for")
	}
	k, rerank := c.Int("k"), c.Int("rerank")
	if k < 1 || rerank < 0 {
		return fmt.Errorf("search: --k must be >= 1 and --rerank >= 0")
	}
	ix, err := index.Load(c.String("index"))
	if err != nil {
		return err
	}
	dir := c.String("model")
	if dir == "" {
		dir = ix.Model
	}
	if fp, err := index.Fingerprint(dir); err != nil {
		return fmt.Errorf("search: %w (give --model)", err)
	} else if fp != ix.Fingerprint {
		return fmt.Errorf("search: %s was built with other weights than %s's; rebuild it with blip index --model %s", c.String("index"), dir, dir)
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	c.Set("model", dir)
	m, tok, proc, err := openKind(c, be, "search", blip.KindRetrieval)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.Config.ImageTextHiddenSize != ix.Dim {
		return fmt.Errorf("search: the index holds %d-wide embeddings, %s makes %d-wide ones", ix.Dim, dir, m.Config.ImageTextHiddenSize)
	}
	ids := encodeText(tok, query)
	if n := m.Config.TextConfig.MaxPositionEmbeddings; len(ids) > n {
		return fmt.Errorf("search: the query is %d tokens long; the model takes at most %d", len(ids), n)
	}
	q, err := m.TextEmbeddings(be, [][]int32{ids})
	if err != nil {
		return err
	}
	hits := ix.Search(q, max(k, rerank))
	type result struct {
		Path      string   `json:"path"`
		Score     float32  `json:"score"`
		ITCCosine float32  `json:"itc_cosine"`
		ITMScore  *float32 `json:"itm_score,omitempty"`
	}
	res := make([]result, len(hits))
	for i, h := range hits {
		res[i] = result{ix.AbsPath(h.I), h.Score, h.Score, nil}
	}
	if n := min(rerank, len(res)); n > 0 {
		var imgs []image.Image
		var which []int
		for i := range n {
			img, err := preprocess.Load(res[i].Path)
			if err != nil {
				fmt.Fprintln(os.Stderr, "blip: search: re-rank skips", err)
				continue
			}
			imgs, which = append(imgs, img), append(which, i)
		}
		if len(imgs) > 0 {
			px, err := proc.Batch(imgs)
			if err != nil {
				return err
			}
			match, err := m.MatchTexts(be, px, len(imgs), [][]int32{ids})
			if err != nil {
				return err
			}
			for j, i := range which {
				v := match[j][0].ITMScore
				res[i].ITMScore, res[i].Score = &v, v
			}
			head := res[:n]
			sort.SliceStable(head, func(a, b int) bool {
				ha, hb := head[a].ITMScore != nil, head[b].ITMScore != nil
				if ha != hb {
					return ha
				}
				return ha && *head[a].ITMScore > *head[b].ITMScore
			})
		}
	}
	res = res[:min(k, len(res))]
	enc := json.NewEncoder(os.Stdout)
	for i, r := range res {
		if c.Bool("json") {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		fmt.Printf("%d\t%.4f\t%s\n", i+1, r.Score, r.Path)
	}
	return nil
}
