package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"blip/blip/index"
	"blip/blip/serve"
)

func serveCmd() *cli.Command {
	d := serve.DefaultConfig()
	return &cli.Command{
		Name:  "serve",
		Usage: "serve captioning, VQA, ITM, embeddings, zero-shot classification and photo search over HTTP, with a web page at /",
		Description: "Endpoints: POST /v1/caption, /v1/vqa, /v1/itm, /v1/embed, /v1/classify; GET /v1/search, /v1/info,\n" +
			"/v1/thumb/ID, /healthz, /readyz, /metrics (Prometheus). SIGTERM or SIGINT stops accepting\n" +
			"connections and finishes the requests in flight.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "HF folder of a captioning model (or of any kind: it fills its own slot)"},
			&cli.StringFlag{Name: "retrieval", Usage: "HF folder of a BlipForImageTextRetrieval model (itm, embed, classify, search)"},
			&cli.StringFlag{Name: "vqa", Usage: "HF folder of a BlipForQuestionAnswering model"},
			&cli.StringFlag{Name: "index", Usage: "index file from `blip index` to search (needs --retrieval, the model that built it)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "listen address"},
			&cli.IntFlag{Name: "max-batch", Value: d.MaxBatch, Usage: "caption requests decoded together (1: no grouping)"},
			&cli.DurationFlag{Name: "max-wait", Value: d.MaxWait, Usage: "how long a caption request may wait for others to batch with"},
			&cli.IntFlag{Name: "queue", Value: d.QueueSize, Usage: "requests waiting for the device before 503"},
			&cli.Int64Flag{Name: "max-body", Value: d.MaxBodyBytes, Usage: "request body limit in bytes"},
			&cli.Int64Flag{Name: "max-pixels", Value: d.MaxPixels, Usage: "image width*height limit"},
			&cli.IntFlag{Name: "max-new-tokens", Value: d.MaxNewTokens, Usage: "generation length limit"},
			&cli.IntFlag{Name: "max-beams", Value: d.MaxBeams, Usage: "num_beams limit"},
			&cli.DurationFlag{Name: "timeout", Value: d.RequestTimeout, Usage: "per-request timeout, queueing included"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: d.ShutdownTimeout, Usage: "how long shutdown waits for requests in flight"},
		},
		Action: serveAction,
	}
}

func serveAction(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", c.Args().Slice())
	}
	dirs := serve.ModelDirs{Any: c.String("model"), Retrieval: c.String("retrieval"), VQA: c.String("vqa")}
	if dirs.Any == "" && dirs.Retrieval == "" && dirs.VQA == "" {
		return fmt.Errorf("serve: give at least one of --model, --retrieval, --vqa")
	}
	var ix *index.Index
	if p := c.String("index"); p != "" {
		if dirs.Retrieval == "" {
			return fmt.Errorf("serve: --index needs --retrieval, the model the index was built with")
		}
		var err error
		if ix, err = index.Load(p); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if fp, err := index.Fingerprint(dirs.Retrieval); err == nil && fp != ix.Fingerprint {
			fmt.Fprintf(os.Stderr, "blip: serve: warning: %s was built with %s, whose weights differ from %s: searches compare embeddings of different models\n", p, ix.Model, dirs.Retrieval)
		}
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	ms, err := serve.LoadModels(be, dirs)
	if err != nil {
		return err
	}
	defer ms.Close()
	for _, l := range []*serve.Loaded{ms.Caption, ms.Retrieval, ms.VQA} {
		if l != nil {
			if err := applyPrecision(c, l.Model); err != nil {
				return err
			}
		}
	}
	cfg := serve.Config{
		MaxBatch: c.Int("max-batch"), MaxWait: c.Duration("max-wait"), QueueSize: c.Int("queue"),
		MaxBodyBytes: c.Int64("max-body"), MaxPixels: c.Int64("max-pixels"),
		MaxNewTokens: c.Int("max-new-tokens"), MaxBeams: c.Int("max-beams"),
		RequestTimeout: c.Duration("timeout"), ShutdownTimeout: c.Duration("shutdown-timeout"),
		Log: os.Stderr,
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = -1 // no waiting (0 would mean the default)
	}
	srv, err := serve.New(be, ms, ix, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Fprintf(os.Stderr, "blip: serving on http://%s (backend %s)\n", ln.Addr(), be.Name())
	err = srv.Serve(ctx, ln)
	fmt.Fprintln(os.Stderr, "blip: server stopped")
	return err
}
