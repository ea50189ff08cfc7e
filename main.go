// Command blip implements BLIP (Li et al. 2022) end to end on Vulkan compute:
// see `blip help`.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"blip/gpu"
	_ "blip/gpu/cpu"
	_ "blip/gpu/vk"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "blip:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "blip",
		Usage: "BLIP vision-language pretraining, CapFilt, fine-tuning, evaluation and serving on Vulkan",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backend", Value: "auto", Usage: "auto, vulkan or cpu", EnvVars: []string{"BLIP_BACKEND"}},
			&cli.IntFlag{Name: "device", Value: -1, Usage: "device index from `blip devices` (-1: best)", EnvVars: []string{"BLIP_DEVICE"}},
			&cli.BoolFlag{Name: "validate", Usage: "enable the Khronos validation layer; any message is an error", EnvVars: []string{"BLIP_VALIDATE"}},
			&cli.BoolFlag{Name: "verbose", Usage: "more detail (e.g. checkpoint tensors the model does not use)"},
		},
		Commands: []*cli.Command{
			devicesCmd(),
			benchCmd(),
			shapesCmd(),
			convertCmd(),
			captionCmd(),
			vqaCmd(),
			itmCmd(),
			embedCmd(),
			pretrainCmd(),
			serveCmd(),
			indexCmd(),
			searchCmd(),
			demoCmd(),
			evalCmd(),
			classifyCmd(),
			capfiltCmd(),
			finetuneCmd(),
			experimentCmd(),
		},
	}
}

// options reads the global device flags.
func options(c *cli.Context) gpu.Options {
	return gpu.Options{
		Backend:  c.String("backend"),
		Device:   c.Int("device"),
		Validate: c.Bool("validate"),
	}
}

// openBackend opens the backend the global flags choose.
func openBackend(c *cli.Context) (gpu.Backend, error) {
	return gpu.Open(options(c))
}
