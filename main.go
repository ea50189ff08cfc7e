// Command blip implements BLIP (Li et al. 2022) end to end on Vulkan compute:
// see `blip help`.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"blip/blip"
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
			&cli.StringFlag{Name: "precision", Value: "fp32", Usage: "inference storage: fp32, fp16 or bf16 (16-bit weights and encoder activations, fp32 accumulation); training is fp32", EnvVars: []string{"BLIP_PRECISION"}},
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

// applyPrecision gives loaded models the weight storage of --precision.
func applyPrecision(c *cli.Context, ms ...*blip.Model) error {
	dt, err := blip.ParsePrecision(c.String("precision"))
	if err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	noted := false
	for _, m := range ms {
		if m == nil {
			continue
		}
		if err := m.SetPrecision(dt); err != nil {
			return err
		}
		if be := m.Params.Backend(); dt != gpu.F32 && be != nil && be.Info().Backend == "cpu" && !noted {
			fmt.Fprintf(os.Stderr, "blip: --precision %s on the CPU backend widens the weights in every product: slower than fp32 here (it halves weight bytes on GPUs)\n", c.String("precision"))
			noted = true
		}
	}
	return nil
}

// trainingPrecision applies an explicitly given --precision to a training
// config's precision setting (mixed precision: 16-bit weight copies for the
// products, fp32 master weights).
func trainingPrecision(c *cli.Context, setting *string) error {
	if !c.IsSet("precision") {
		return nil
	}
	if _, err := blip.ParsePrecision(c.String("precision")); err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	*setting = c.String("precision")
	return nil
}

// fp32Only refuses --precision other than fp32 for commands that train.
func fp32Only(c *cli.Context, cmd string) error {
	dt, err := blip.ParsePrecision(c.String("precision"))
	if err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	if dt != gpu.F32 {
		return fmt.Errorf("%s: --precision %s applies to inference; training runs in fp32", cmd, c.String("precision"))
	}
	return nil
}

// openBackend opens the backend the global flags choose.
func openBackend(c *cli.Context) (gpu.Backend, error) {
	return gpu.Open(options(c))
}
